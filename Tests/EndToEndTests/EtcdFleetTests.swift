// Fleet mode against a real etcd: instances that share their runtime state through it. A change
// made on any instance's control socket is one etcd transaction that every instance applies as
// one snapshot swap; concurrent conflicting changes make one fail; with etcd away the instances
// keep serving and refuse writes.
import Foundation
import Glibc
import TestSupport
import XCTest

final class EtcdFleetTests: EndToEndTestCase {
    struct Member {
        var proxy: RunningProxy
        var socket: String
        var name: String
    }

    private func etcd(size: Int = 1) throws -> EtcdCluster {
        guard EtcdCluster.available else { throw TestError("etcd is not installed (apt-get install etcd-server etcd-client)") }
        let c = try EtcdCluster(size: size)
        addTeardownBlock { c.stop() }
        return c
    }

    /// `count` instances in front of the same blue and green, sharing state under one prefix.
    private func startFleet(_ count: Int, etcd: EtcdCluster, prefix: String = "/sy/test/") throws -> [Member] {
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let dir = try temporaryDirectory()
        var members: [Member] = []
        for i in 0..<count {
            let name = "i\(i)"
            let socket = "\(dir)/\(name).sock"
            let checkout = #"{ "blue": \#(pool(blue.endpoint)), "green": \#(pool(green.endpoint)), "live": "blue" }"#
            var text = routingConfig(upstreams: [("checkout", checkout), ("stable", pool(blue.endpoint)), ("canary", pool(green.endpoint))],
                                     routes: [#"{ "name": "shop", "match": { "pathPrefix": "/shop" }, "upstream": "checkout" }"#,
                                              #"{ "name": "api", "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 }, { "variant": "canary", "upstream": "canary", "weight": 0 } ] }"#],
                                     controlSocket: socket)
            let endpoints = etcd.clientURLs.map { "\"\($0)\"" }.joined(separator: ", ")
            text = String(text.dropLast(2)) + #",  "fleet": { "etcd": { "endpoints": [\#(endpoints)], "prefix": "\#(prefix)" }, "instance": "\#(name)", "leaseSeconds": 2 }"# + "\n}\n"
            members.append(Member(proxy: try startProxy(json: text), socket: socket, name: name))
        }
        return members
    }

    private func ctl(_ m: Member, _ args: [String]) throws -> (termination: Termination, stdout: String, stderr: String) {
        try ChildProcess.run(switchyard: ["ctl", "--socket", m.socket] + args)
    }

    private func shop(_ m: Member) throws -> String? { try servedBy(m.proxy, []) .flatMap { _ in try servedPath(m.proxy, "/shop") } }

    private func servedPath(_ proxy: RunningProxy, _ path: String) throws -> String? {
        let r = try connect(proxy).exchange(get(path))
        return r.status == 200 ? r.header("X-Echo-Name") : "status \(r.status)"
    }

    func testAFlipOnOneInstanceReachesEveryInstance() throws {
        let cluster = try etcd()
        let fleet = try startFleet(3, etcd: cluster)
        for m in fleet { XCTAssertEqual(try servedPath(m.proxy, "/shop"), "blue") }
        let flip = try ctl(fleet[1], ["--json", "flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        XCTAssertTrue(flip.stdout.contains("\"revision\""), flip.stdout)
        XCTAssertEqual(try servedPath(fleet[1].proxy, "/shop"), "green", "the instance that committed serves it when it answers")
        for m in fleet {
            XCTAssertTrue(waitUntil(timeout: 10) { (try? self.servedPath(m.proxy, "/shop")) == "green" }, "\(m.name) did not follow")
        }
        let show = try ctl(fleet[0], ["--json", "show", "fleet"])
        XCTAssertEqual(show.termination, .exited(0), show.stdout + show.stderr)
        for m in fleet { XCTAssertTrue(show.stdout.contains("\"\(m.name)\""), show.stdout) }
        XCTAssertTrue(show.stdout.contains("\"storeUp\":true"), show.stdout)
    }
}
