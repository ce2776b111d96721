// The reference the statistics are checked against: scipy, in one python3 subprocess per test,
// fed a JSON table on stdin and answering a JSON table of floats on stdout. scipy is required
// (CI installs it): a missing scipy fails the test, it never skips it.
import Foundation
import TestSupport
import XCTest

enum Scipy {
    /// Runs `script` (which reads `data = json.load(sys.stdin)` and prints one JSON list of lists
    /// of floats) with `input` as stdin.
    static func run(_ script: String, input: String) throws -> [[Double]] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import json, math, sys\nimport scipy.stats\n" + script]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        try p.run()
        // python reads all of stdin before it writes, so writing first cannot deadlock.
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestError("python3 with scipy is required (pip install scipy): exit \(p.terminationStatus): "
                            + String(decoding: err, as: UTF8.self))
        }
        guard let rows = try JSONSerialization.jsonObject(with: out) as? [[Any]] else {
            throw TestError("scipy answered no table: \(String(decoding: out, as: UTF8.self).prefix(500))")
        }
        return try rows.map { row in
            try row.map { cell in
                guard let n = cell as? NSNumber else { throw TestError("not a number: \(cell)") }
                return n.doubleValue
            }
        }
    }

    /// A JSON list of lists; Swift's description of a Double reads back to the same Double.
    static func table(_ rows: [[Double]]) -> String {
        "[" + rows.map { "[" + $0.map { "\($0)" }.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
    }
}

/// `actual` equals `expected` to `relative` (relative where |expected| is below 1, so tiny
/// p-values are compared by their digits, not by being near 0).
func assertClose(_ actual: Double, _ expected: Double, relative: Double, _ message: @autoclosure () -> String,
                 file: StaticString = #filePath, line: UInt = #line) {
    let scale = max(abs(expected), expected == 0 ? 1 : .leastNormalMagnitude)
    let error = abs(actual - expected) / min(1, scale)
    XCTAssert(error <= relative || actual == expected, "\(message()): \(actual) vs \(expected)", file: file, line: line)
}
