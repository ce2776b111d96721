// Fleet mode with a locked-down etcd: TLS with client certificates (etcd accepts no client
// without one), and username/password auth read from files. Instances converge through it; an
// instance without the credential is refused and keeps serving its config file's state.
import Foundation
import Glibc
import TestSupport
import XCTest

final class EtcdFleetSecurityTests: EndToEndTestCase {
    func testEtcdWithClientCertificates() throws {
        guard EtcdCluster.available else { throw TestError("etcd is not installed (apt-get install etcd-server etcd-client)") }
        let dir = try temporaryDirectory()
        let pki = try TestPKI(directory: dir)
        let server = try pki.issue("etcd", names: ["127.0.0.1", "localhost"])
        let client = try pki.issue("fleet-client", names: ["switchyard"])
        let cluster = try EtcdCluster(tls: EtcdCluster.ClientTLS(cert: server.cert, key: server.key, clientCA: pki.caCert))
        addTeardownBlock { cluster.stop() }
        XCTAssertTrue(cluster.clientURLs[0].hasPrefix("https://"))
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let tls = #", "tls": { "caFile": "\#(pki.caCert)", "cert": "\#(client.cert)", "key": "\#(client.key)" }"#
        var members: [FleetMember] = []
        for name in ["a", "b"] {
            let socket = "\(dir)/\(name).sock"
            let text = fleetConfig(name: name, socket: socket, blue: blue, green: green, etcd: cluster, etcdExtra: tls)
            members.append(FleetMember(proxy: try startProxy(json: text), socket: socket, name: name))
        }
        let flip = try ctl(members[0], ["--wait=10", "flip", "checkout"])
        XCTAssertEqual(flip.termination, .exited(0), flip.stdout + flip.stderr)
        for m in members { XCTAssertEqual(try served(m, "/shop"), "green", m.name) }

        // Without a client certificate etcd refuses the instance: it serves its file's state
        // and says why.
        let socket = "\(dir)/c.sock"
        let noCert = #", "tls": { "caFile": "\#(pki.caCert)" }"#
        let lonely = try startProxy(json: fleetConfig(name: "c", socket: socket, blue: blue, green: green, etcd: cluster, etcdExtra: noCert))
        XCTAssertEqual(try served(FleetMember(proxy: lonely, socket: socket, name: "c"), "/shop"), "blue")
        XCTAssertNotNil(lonely.process.waitForStderrLine(containing: "fleet: etcd unreachable"), lonely.process.stderr)
    }

    func testEtcdWithUsernameAndPassword() throws {
        let cluster = try etcd()
        let url = cluster.clientURLs[0]
        for args in [["user", "add", "root:rootpw"], ["user", "add", "fleet:fleet-password"], ["role", "add", "fleet"],
                     ["role", "grant-permission", "fleet", "--prefix=true", "readwrite", "/sy/test/"],
                     ["user", "grant-role", "fleet", "fleet"], ["auth", "enable"]] {
            let r = try ChildProcess.run(executable: "/usr/bin/etcdctl",
                                         arguments: ["--endpoints", url] + (args[0] == "auth" ? ["--user", "root:rootpw"] : []) + args)
            XCTAssertEqual(r.termination, .exited(0), "etcdctl \(args): \(r.stdout) \(r.stderr)")
        }
        let dir = try temporaryDirectory()
        let username = try writeFile("etcd-user", "fleet\n")
        let password = try writeFile("etcd-password", "fleet-password\n")
        chmod(username, 0o600)
        chmod(password, 0o600)
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let auth = #", "usernameFile": "\#(username)", "passwordFile": "\#(password)""#
        var members: [FleetMember] = []
        for name in ["a", "b"] {
            let socket = "\(dir)/\(name).sock"
            members.append(FleetMember(proxy: try startProxy(json: fleetConfig(name: name, socket: socket, blue: blue, green: green,
                                                                          etcd: cluster, etcdExtra: auth)),
                                  socket: socket, name: name))
        }
        let change = try ctl(members[1], ["--wait=10", "set", "weights", "api", "stable=0", "canary=100"])
        XCTAssertEqual(change.termination, .exited(0), change.stdout + change.stderr)
        for m in members { XCTAssertEqual(try served(m, "/"), "green", m.name) }
        let show = try ctl(members[0], ["show", "fleet"])
        XCTAssertFalse(show.stdout.contains("fleet-password"), "the password is never shown: \(show.stdout)")
    }
}
