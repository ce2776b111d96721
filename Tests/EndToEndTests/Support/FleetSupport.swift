// Fleet mode tests' shared parts: a real etcd, and instances of the proxy in front of the
// same blue and green that share their state under one prefix.
import Foundation
import Glibc
import TestSupport
import XCTest

struct FleetMember {
    var proxy: RunningProxy
    var socket: String
    var name: String
}

struct FleetSetup {
    var members: [FleetMember]
    var configs: [String]
}

extension EndToEndTestCase {
    func etcd(size: Int = 1) throws -> EtcdCluster {
        guard EtcdCluster.available else { throw TestError("etcd is not installed (apt-get install etcd-server etcd-client)") }
        let c = try EtcdCluster(size: size)
        addTeardownBlock { c.stop() }
        return c
    }

    /// The config of instance `name`: `checkout` blue/green on /shop, route `api` split between
    /// `stable` (blue) and `canary` (green) 100/0, state under `prefix`. `fleetExtra` goes into
    /// the fleet section.
    func fleetConfig(name: String, socket: String, blue: EchoUpstream, green: EchoUpstream, etcd: EtcdCluster,
                     prefix: String = "/sy/test/", fleetExtra: String = "", etcdExtra: String = "", admin: Bool = false,
                     canaryEndpoint: String? = nil) -> String {
        let checkout = #"{ "blue": \#(pool(blue.endpoint)), "green": \#(pool(green.endpoint)), "live": "blue" }"#
        let text = routingConfig(upstreams: [("checkout", checkout), ("stable", pool(blue.endpoint)), ("canary", pool(canaryEndpoint ?? green.endpoint))],
                                 routes: [#"{ "name": "shop", "match": { "pathPrefix": "/shop" }, "upstream": "checkout" }"#,
                                          #"{ "name": "api", "split": [ { "variant": "stable", "upstream": "stable", "weight": 100 }, { "variant": "canary", "upstream": "canary", "weight": 0 } ] }"#],
                                 controlSocket: socket, admin: admin)
        let endpoints = etcd.clientURLs.map { "\"\($0)\"" }.joined(separator: ", ")
        return String(text.dropLast(2)) + #",  "fleet": { "etcd": { "endpoints": [\#(endpoints)], "prefix": "\#(prefix)"\#(etcdExtra) }, "instance": "\#(name)"\#(fleetExtra.contains("leaseSeconds") ? "" : #", "leaseSeconds": 2"#)\#(fleetExtra) }"# + "\n}\n"
    }

    /// `count` instances in front of the same blue and green.
    func startFleet(_ count: Int, etcd: EtcdCluster, admin: Bool = false, canaryEndpoint: String? = nil,
                    fleetExtra: String = "") throws -> (FleetSetup, EchoUpstream, EchoUpstream) {
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let dir = try temporaryDirectory()
        var setup = FleetSetup(members: [], configs: [])
        for i in 0..<count {
            let name = "i\(i)"
            let socket = "\(dir)/\(name).sock"
            let text = fleetConfig(name: name, socket: socket, blue: blue, green: green, etcd: etcd, fleetExtra: fleetExtra, admin: admin,
                                   canaryEndpoint: canaryEndpoint)
            setup.members.append(FleetMember(proxy: try startProxy(json: text), socket: socket, name: name))
            setup.configs.append(text)
        }
        return (setup, blue, green)
    }

    func ctl(_ m: FleetMember, _ args: [String]) throws -> (termination: Termination, stdout: String, stderr: String) {
        try ChildProcess.run(switchyard: ["ctl", "--socket", m.socket] + args)
    }

    func served(_ m: FleetMember, _ path: String) throws -> String? {
        let r = try connect(m.proxy).exchange(get(path))
        return r.status == 200 ? r.header("X-Echo-Name") : "status \(r.status)"
    }
}
