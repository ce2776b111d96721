// A real Prometheus (Debian's `prometheus`, installed by .ci/run) scraping a proxy's admin
// listener every second: its data in the test's temporary directory, its process killed in
// tearDown with the test's others, asked over its HTTP API on a fresh connection per question.
import Foundation
import Glibc
import TestSupport
import XCTest

struct RealPrometheus {
    static let binary = "/usr/bin/prometheus"
    let process: ChildProcess
    let port: UInt16

    /// What /api/v1/query answered: `status` ("success" or "error"), the series of a vector
    /// result (or one for a scalar), and the error text.
    struct Answer {
        var status: String
        var series: [[String: Any]]
        var error: String
    }

    /// Runs `expression` as an instant query at the current time.
    func query(_ expression: String) throws -> Answer {
        let object = try get("/api/v1/query?query=" + Self.encode(expression))
        let data = object["data"] as? [String: Any]
        var series = data?["result"] as? [[String: Any]] ?? []
        if data?["resultType"] as? String == "scalar", let value = data?["result"] { series = [["value": value]] }
        return Answer(status: object["status"] as? String ?? "?", series: series,
                      error: (object["error"] as? String).map { "\(object["errorType"] ?? ""): \($0)" } ?? "")
    }

    /// The values of `label` on the series `selector` matches (what Grafana's label_values asks).
    func labelValues(_ label: String, matching selector: String) throws -> [String] {
        let object = try get("/api/v1/label/\(Self.encode(label))/values?match%5B%5D=" + Self.encode(selector))
        guard object["status"] as? String == "success" else { throw TestError("label values of \(label) on \(selector): \(object)") }
        return object["data"] as? [String] ?? []
    }

    private func get(_ target: String) throws -> [String: Any] {
        let r = try RawClient(port: port, timeout: 10).exchange("GET \(target) HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n")
        guard let object = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
            throw TestError("Prometheus answered \(r.status) without a JSON object: \(r.bodyText)")
        }
        return object
    }

    private static func encode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? s
    }
}

extension EndToEndTestCase {
    /// Starts Prometheus scraping 127.0.0.1:`adminPort` every second and waits until it serves
    /// its API. Fails (not skips) when it is not installed.
    func startPrometheus(scraping adminPort: UInt16, file: StaticString = #filePath, line: UInt = #line) throws -> RealPrometheus {
        guard FileManager.default.isExecutableFile(atPath: RealPrometheus.binary) else {
            XCTFail("\(RealPrometheus.binary) is not installed (apt-get install prometheus)", file: file, line: line)
            throw TestError("prometheus is not installed")
        }
        let dir = try temporaryDirectory() + "/prometheus"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = try writeFile("prometheus.yml", """
            global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: switchyard
                static_configs: [ { targets: ["127.0.0.1:\(adminPort)"] } ]
            """)
        // Prometheus cannot report a port the kernel chose: take a free one and release it just
        // before. Another process may take it meanwhile; then Prometheus exits and we try again.
        var last = ""
        for _ in 0..<3 {
            let (fd, port) = try Sockets.bound(listen: false)
            close(fd)
            let p = adopt(try ChildProcess(executable: RealPrometheus.binary, arguments: [
                "--config.file=\(config)", "--storage.tsdb.path=\(dir)/data", "--web.listen-address=127.0.0.1:\(port)",
            ]))
            if p.waitForStderrLine(containing: "Server is ready to receive web requests", timeout: 60) != nil {
                return RealPrometheus(process: p, port: port)
            }
            last = p.stderr
            p.kill()
        }
        XCTFail("prometheus did not start: \(last)", file: file, line: line)
        throw TestError("prometheus did not start")
    }
}
