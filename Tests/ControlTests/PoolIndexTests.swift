// Config.Pool's address index agrees with a scan of its endpoints after every kind of edit,
// duplicates and host names as written included.
@testable import Admin
@testable import CommandSocket
@testable import Config
@testable import Rollouts
@testable import Runtime
import XCTest

final class PoolIndexTests: XCTestCase {
    private func endpoint(_ text: String, draining: Bool = false) throws -> Config.Endpoint {
        Config.Endpoint(address: try Address(parsing: text), draining: draining)
    }

    /// The definition the index replaces: the first endpoint matching as resolved or as written.
    private func assertAgrees(_ pool: Config.Pool, _ keys: [String], line: UInt = #line) {
        for key in keys {
            let scanned = pool.endpoints.firstIndex { $0.address.description == key || $0.address.written == key }
            XCTAssertEqual(pool.endpointIndex(address: key), scanned, key, line: line)
        }
        XCTAssertEqual(pool.servingCount, pool.endpoints.filter { !$0.draining }.count, line: line)
    }

    func testTheIndexFollowsEveryEdit() throws {
        let keys = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "localhost:4", "127.0.0.1:4", "[::1]:5", "127.0.0.1:9"]
        var pool = Config.Pool(endpoints: [try endpoint("127.0.0.1:1"), try endpoint("127.0.0.1:2", draining: true),
                                           try endpoint("127.0.0.1:1"), try endpoint("localhost:4")])
        assertAgrees(pool, keys)
        pool.append(try endpoint("[::1]:5"))
        pool.append(try endpoint("127.0.0.1:4"))
        assertAgrees(pool, keys)
        pool.remove(at: 0)  // the duplicate 127.0.0.1:1 becomes the first
        assertAgrees(pool, keys)
        pool.remove(at: 2)  // localhost:4: 127.0.0.1:4 later in the list now answers for the resolved name
        assertAgrees(pool, keys)
        pool.setDraining(true, at: 0)
        pool.setDraining(false, at: 1)
        assertAgrees(pool, keys)
        pool.endpoints[0].draining = false
        pool.endpoints.append(try endpoint("127.0.0.1:3"))
        assertAgrees(pool, keys)
        while !pool.endpoints.isEmpty { pool.remove(at: pool.endpoints.count / 2); assertAgrees(pool, keys) }
        XCTAssertEqual(pool, Config.Pool(endpoints: []))
    }
}
