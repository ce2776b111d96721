// The README and Benchmarks/README.md link into each other and into themselves by heading
// anchors; moving a section must not leave a link that goes nowhere.
import Foundation
import XCTest

final class ReadmeLinksTests: EndToEndTestCase {
    /// GitHub's anchor of each heading: lowercased, punctuation but `-` and `_` dropped, spaces as `-`.
    private func anchors(_ text: String) -> Set<String> {
        var found: Set<String> = []
        var inCode = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            guard !inCode, line.hasPrefix("#"), let space = line.firstIndex(of: " ") else { continue }
            let title = line[line.index(after: space)...].lowercased()
            found.insert(String(title.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == " " })
                .replacingOccurrences(of: " ", with: "-"))
        }
        return found
    }

    func testEveryAnchorLinkHasItsHeading() throws {
        let files = ["README.md": "Benchmarks/README.md", "Benchmarks/README.md": "README.md"]
        var texts: [String: String] = [:]
        for name in files.keys {
            texts[name] = try String(contentsOf: RepoPaths.root.appendingPathComponent(name), encoding: .utf8)
        }
        for (name, other) in files {
            let text = texts[name]!
            let here = anchors(text), there = anchors(texts[other]!)
            let otherLink = name == "README.md" ? "Benchmarks/README.md" : "../README.md"
            for match in text.matches(of: /\]\(([^)#\s]*)#([^)\s]+)\)/) {
                let (target, anchor) = (String(match.output.1), String(match.output.2))
                if target.isEmpty {
                    XCTAssertTrue(here.contains(anchor), "\(name) links to #\(anchor), which no heading of it has")
                } else if target == otherLink {
                    XCTAssertTrue(there.contains(anchor), "\(name) links to \(target)#\(anchor), which no heading there has")
                }
            }
        }
        XCTAssertTrue(texts["README.md"]!.contains("## Contents"), "the README has a table of contents")
    }
}
