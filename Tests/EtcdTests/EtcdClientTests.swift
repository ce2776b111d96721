// The etcd client against a real etcd on loopback: key-value, transactions that compare mod
// revisions, leases, watches (one message per revision, progress notifications, compaction),
// failover between members, and username/password auth.
@testable import Etcd
import Foundation
import Routing
import TestSupport
import XCTest

final class EtcdClientTests: XCTestCase {
    private func client(_ cluster: EtcdCluster, username: String? = nil, password: String? = nil) -> EtcdClient {
        EtcdClient(EtcdClient.Settings(endpoints: cluster.clientURLs.compactMap { HTTPURL($0) }, username: username, password: password))
    }

    private func cluster(size: Int = 1) throws -> EtcdCluster {
        // .ci/run installs etcd: without it these tests fail rather than skip.
        guard EtcdCluster.available else { throw TestError("etcd is not installed (apt-get install etcd-server etcd-client)") }
        let c = try EtcdCluster(size: size)
        addTeardownBlock { c.stop() }
        return c
    }

    func testPutRangeDeleteUnderAPrefix() throws {
        let etcd = client(try cluster())
        let r1 = try etcd.put("/sy/prod/weights/api", Array("{\"stable\":90}".utf8))
        try etcd.put("/sy/prod/live/shop", Array("blue".utf8))
        try etcd.put("/sy/prodx/other", Array("x".utf8))
        let (revision, kvs) = try etcd.range("/sy/prod/")
        XCTAssertGreaterThan(revision, r1)
        XCTAssertEqual(kvs.map(\.key), ["/sy/prod/live/shop", "/sy/prod/weights/api"], "keys in order, the other prefix left out")
        XCTAssertEqual(String(decoding: kvs[1].value, as: UTF8.self), "{\"stable\":90}")
        XCTAssertEqual(kvs[1].modRevision, r1)
        try etcd.delete("/sy/prod/", prefix: true)
        XCTAssertEqual(try etcd.range("/sy/prod/").kvs.count, 0)
        XCTAssertEqual(try etcd.range("/sy/prodx/other", prefix: false).kvs.count, 1)
    }

    func testTransactionComparesModRevisions() throws {
        let etcd = client(try cluster())
        let r = try etcd.put("/sy/a", Array("1".utf8))
        // A writer that read revision r wins; one that read before it (0: absent) loses.
        let first = try etcd.txn([EtcdCompare(key: "/sy/a", .modRevision(r))], success: [.put("/sy/a", Array("2".utf8), lease: 0), .put("/sy/b", Array("2".utf8), lease: 0)])
        XCTAssertTrue(first.succeeded)
        let second = try etcd.txn([EtcdCompare(key: "/sy/a", .modRevision(r))], success: [.put("/sy/a", Array("3".utf8), lease: 0)])
        XCTAssertFalse(second.succeeded, "the key changed since revision \(r)")
        XCTAssertEqual(String(decoding: try etcd.range("/sy/a", prefix: false).kvs[0].value, as: UTF8.self), "2")
        let absent = try etcd.txn([EtcdCompare(key: "/sy/new", .modRevision(0))], success: [.put("/sy/new", [1], lease: 0)])
        XCTAssertTrue(absent.succeeded, "mod revision 0 means the key does not exist")
        XCTAssertEqual(try etcd.range("/sy/", prefix: true).kvs.filter { $0.modRevision == first.revision }.count, 2,
                       "both puts of the transaction carry its one revision")
    }

    func testLeaseKeepsAKeyAliveUntilRevoked() throws {
        let etcd = client(try cluster())
        let lease = try etcd.grantLease(ttl: 5)
        XCTAssertEqual(lease.ttl, 5)
        try etcd.put("/sy/instances/a", Array("{}".utf8), lease: lease.id)
        XCTAssertGreaterThan(try etcd.keepAlive(lease: lease.id), 0)
        XCTAssertEqual(try etcd.range("/sy/instances/").kvs.first?.lease, lease.id)
        try etcd.revoke(lease: lease.id)
        XCTAssertEqual(try etcd.range("/sy/instances/").kvs.count, 0, "revoking the lease deletes its keys")
        XCTAssertEqual(try etcd.keepAlive(lease: lease.id), 0, "an expired lease renews to TTL 0")
    }

    func testWatchSeesOneMessagePerRevisionAndProgress() throws {
        let etcd = client(try cluster())
        let start = try etcd.put("/other", [0])
        let watch = try EtcdWatch(etcd, prefix: "/sy/", startRevision: start + 1, idleTimeout: 10)
        defer { watch.close() }
        XCTAssertEqual(try watch.next(), .created(revision: start))
        let t = try etcd.txn([], success: [.put("/sy/x", Array("1".utf8), lease: 0), .put("/sy/y", Array("2".utf8), lease: 0)])
        guard case .changes(let revision, let events) = try watch.next() else { return XCTFail("expected changes") }
        XCTAssertEqual(revision, t.revision)
        XCTAssertEqual(events.map(\.kv.key), ["/sy/x", "/sy/y"], "one transaction, one message")
        try etcd.put("/elsewhere", [1])
        let d = try etcd.delete("/sy/x")
        XCTAssertEqual(try watch.next(), .changes(revision: d, [EtcdEvent(kind: .delete, kv: EtcdKeyValue(key: "/sy/x", value: [], modRevision: d))]))
        // Nothing more under the prefix: progress notifications (every second here) carry the revision.
        var progressed: Int64 = 0
        while progressed < d {
            guard case .progress(let r) = try watch.next() else { return XCTFail("expected a progress notification") }
            progressed = r
        }
        XCTAssertEqual(progressed, d)
    }

    func testWatchFromACompactedRevisionFails() throws {
        let cluster = try cluster()
        let etcd = client(cluster)
        for i in 0..<5 { try etcd.put("/sy/k", Array("\(i)".utf8)) }
        let last = try etcd.put("/sy/k", [9])
        XCTAssertNotNil(EtcdCluster.post(port: cluster.members[0].clientPort, path: "/v3/kv/compaction", body: "{\"revision\":\"\(last)\",\"physical\":true}"))
        let watch = try EtcdWatch(etcd, prefix: "/sy/", startRevision: 2, idleTimeout: 10)
        defer { watch.close() }
        XCTAssertThrowsError(try { while true { _ = try watch.next() } }()) { error in
            XCTAssertEqual((error as? EtcdError)?.kind, .compacted(compactRevision: last), "\(error)")
        }
        XCTAssertThrowsError(try etcd.range("/sy/", revision: 2)) { error in
            guard case .compacted = (error as? EtcdError)?.kind else { return XCTFail("\(error)") }
        }
    }

    func testRequestsMoveToAMemberThatAnswers() throws {
        let cluster = try cluster(size: 3)
        let etcd = client(cluster)
        try etcd.put("/sy/a", [1])
        cluster.kill(cluster.members[0])
        // The first endpoint refuses; the others still have a quorum.
        var written: Int64 = 0
        XCTAssertTrue(waitUntil(timeout: 20, interval: 0.05) { (try? etcd.put("/sy/a", [2])).map { written = $0 } != nil })
        XCTAssertEqual(try etcd.range("/sy/a", prefix: false).kvs.first?.modRevision, written)
        cluster.kill(cluster.members[1])
        cluster.kill(cluster.members[2])
        XCTAssertThrowsError(try etcd.range("/sy/")) { error in
            XCTAssertEqual((error as? EtcdError)?.kind, .unreachable, "\(error)")
        }
    }

    func testUsernameAndPassword() throws {
        let cluster = try cluster()
        let url = cluster.clientURLs[0]
        for args in [["user", "add", "root:rootpw"], ["user", "add", "fleet:fleetpw"], ["role", "add", "fleet"],
                     ["role", "grant-permission", "fleet", "--prefix=true", "readwrite", "/sy/"], ["user", "grant-role", "fleet", "fleet"],
                     ["auth", "enable"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
            p.arguments = ["--endpoints", url] + (args[0] == "auth" ? ["--user", "root:rootpw"] : []) + args
            p.environment = ["ETCDCTL_API": "3"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "etcdctl \(args)")
        }
        let fleet = client(cluster, username: "fleet", password: "fleetpw")
        try fleet.put("/sy/a", [1])
        XCTAssertEqual(try fleet.range("/sy/").kvs.count, 1)
        XCTAssertThrowsError(try fleet.put("/elsewhere", [1]), "no permission outside /sy/")
        XCTAssertThrowsError(try client(cluster).range("/sy/"), "no token: refused")
        XCTAssertThrowsError(try client(cluster, username: "fleet", password: "wrong").range("/sy/")) { error in
            XCTAssertTrue("\(error)".contains("authentication failed"), "\(error)")
        }
    }

    func testHostileWatchLines() {
        let cases = ["not json", "[]", "{\"result\":{}}", "{\"result\":{\"header\":{\"revision\":\"99999999999999999999999\"}}}",
                     "{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":[{\"type\":\"PUT\"}]}}",
                     "{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":[{\"type\":\"X\",\"kv\":{}}]}}",
                     "{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":[{\"kv\":{\"key\":\"!!notbase64\"}}]}}",
                     "{\"result\":{\"header\":{\"revision\":1e300}}}"]
        for line in cases {
            XCTAssertThrowsError(try EtcdWatch.message(Array(line.utf8)), line)
        }
    }
}
