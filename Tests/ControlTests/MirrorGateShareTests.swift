// Each worker's share of a shadow upstream's maxInFlight and maxBufferBytes: the shares add up to
// the limit exactly, never more, whatever the number of workers.
@testable import Proxy
import XCTest

final class MirrorGateShareTests: XCTestCase {
    func testSharesSumToTheLimitExactly() {
        for workers in 1...9 {
            for total in [0, 1, 2, 3, 5, 7, 8, 100, 101, 16 << 20, (16 << 20) + 3] {
                let shares = (0..<workers).map { MirrorGate.share(of: total, worker: $0, workers: workers) }
                XCTAssertEqual(shares.reduce(0, +), total, "\(workers) workers, limit \(total): \(shares)")
                XCTAssertLessThanOrEqual(shares.max()! - shares.min()!, 1, "shares differ by at most one: \(shares)")
            }
        }
    }

    func testFewerCopiesThanWorkers() {
        // maxInFlight 2 over 4 workers: two workers may hold one copy each, two hold none.
        XCTAssertEqual((0..<4).map { MirrorGate.share(of: 2, worker: $0, workers: 4) }, [1, 1, 0, 0])
        // Rounding up gave every worker 1: 4 copies in flight against a limit of 2.
        XCTAssertEqual((0..<4).map { MirrorGate.share(of: 5, worker: $0, workers: 4) }, [2, 1, 1, 1])
    }

    func testAZeroShareAdmitsNoCopy() {
        let gate = MirrorGate(cap: MirrorGate.share(of: 1, worker: 1, workers: 2),
                              byteCap: MirrorGate.share(of: 1, worker: 1, workers: 2))
        XCTAssertFalse(gate.admitsCopy(bodyBytes: 0))
    }
}
