// Who can reach the admin listener: `check` and `run` warn about a non-loopback admin address,
// and the shipped Kubernetes manifest gives the admin port to the kubelet's probes only.
import Foundation
import XCTest

final class AdminExposureTests: EndToEndTestCase {
    private func config(admin: String) -> String {
        """
        { "listeners": [ { "address": "127.0.0.1:0" } ], "admin": { "address": "\(admin)" },
          "upstreams": { "app": { "endpoints": ["127.0.0.1:9"] } }, "routes": [ { "name": "r", "upstream": "app" } ] }
        """
    }

    func testCheckWarnsAboutANonLoopbackAdminAddress() throws {
        let open = try writeFile("open.json", config(admin: "0.0.0.0:0"))
        let result = try ChildProcess.run(switchyard: ["check", "--config", open])
        XCTAssertEqual(result.termination, .exited(0), "a warning, not an error: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("warning:") && result.stderr.contains("admin.address: 0.0.0.0:0 is not a loopback address"),
                      result.stderr)

        let closed = try writeFile("closed.json", config(admin: "127.0.0.1:0"))
        let quiet = try ChildProcess.run(switchyard: ["check", "--config", closed])
        XCTAssertEqual(quiet.termination, .exited(0))
        XCTAssertFalse(quiet.stderr.contains("loopback"), quiet.stderr)
    }

    func testRunWarnsAtStart() throws {
        let proxy = try startProxy(json: config(admin: "0.0.0.0:0"))
        XCTAssertNotNil(proxy.process.waitForStderrLine(containing: "is not a loopback address"), proxy.process.stderr)
    }

    func testKubernetesManifestKeepsTheAdminPortOffTheService() throws {
        let text = try String(contentsOf: RepoPaths.root.appendingPathComponent("deploy/kubernetes/switchyard.yaml"), encoding: .utf8)
        let documents = text.components(separatedBy: "\n---\n")
        func document(kind: String) -> String? { documents.first { $0.contains("\nkind: \(kind)\n") || $0.hasPrefix("kind: \(kind)\n") } }

        let service = try XCTUnwrap(document(kind: "Service"))
        let servicePorts = service.components(separatedBy: "\n").filter { $0.contains("port") }
        XCTAssertFalse(servicePorts.contains { $0.contains("admin") || $0.contains("9901") },
                       "no Service port reaches the admin listener: \(servicePorts)")

        let deployment = try XCTUnwrap(document(kind: "Deployment"))
        XCTAssertTrue(deployment.contains("httpGet: { path: /readyz, port: admin }"), "the kubelet probes the admin port")
        let activeLines = deployment.components(separatedBy: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        XCTAssertFalse(activeLines.contains { $0.contains("prometheus.io/scrape") }, "no scrape annotation the policy would block")

        let policy = try XCTUnwrap(document(kind: "NetworkPolicy"), "a NetworkPolicy limits who reaches the pod")
        let rules = policy.components(separatedBy: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        XCTAssertTrue(rules.contains { $0.contains("port: http") })
        XCTAssertFalse(rules.contains { $0.contains("admin") || $0.contains("9901") }, "other pods never reach the admin port")
    }
}
