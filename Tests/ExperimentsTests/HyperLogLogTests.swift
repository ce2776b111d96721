// The distinct-unit sketch: counts within the stated error from ten units to a million, merges
// that equal the union's sketch, and a text form that survives a round trip and refuses
// anything malformed.
@testable import Experiments
import TestSupport
import XCTest

final class HyperLogLogTests: XCTestCase {
    /// One sketch grown to a million sequential ids, read at each decade. Three standard errors
    /// above 10,000 units; below that the estimate is near exact (linear-counting range).
    func testCountsWithinStatedError() {
        var sketch = HyperLogLog()
        XCTAssertEqual(sketch.count, 0)
        var added: UInt64 = 0
        let start = monotonicSeconds()
        for checkpoint: UInt64 in [10, 100, 1_000, 10_000, 100_000, 1_000_000] {
            while added < checkpoint {
                sketch.add(unit: added)
                added += 1
            }
            let n = Double(checkpoint)
            let error = abs(Double(sketch.count) - n)
            let allowed = checkpoint <= 1_000 ? max(1, 0.005 * n) : 3 * HyperLogLog.relativeStandardError * n
            XCTAssertLessThanOrEqual(error, allowed, "\(checkpoint) units counted as \(sketch.count)")
        }
        let seconds = monotonicSeconds() - start
        print("hyperloglog: 1,000,000 adds and 6 counts in \(Int(seconds * 1_000)) ms")
    }

    /// SipHash outputs (the unit ids the proxy adds) count as well as mixed sequential ids.
    func testCountsSipHashedKeys() {
        var sketch = HyperLogLog()
        for i in 0..<50_000 {
            let key = Array("user-\(i)".utf8)
            sketch.add(key.withUnsafeBytes { SipHash.hash(key: (0x1234, 0x5678), bytes: $0) })
        }
        XCTAssertLessThanOrEqual(abs(Double(sketch.count) - 50_000), 3 * HyperLogLog.relativeStandardError * 50_000)
    }

    func testDuplicatesDoNotCount() {
        var once = HyperLogLog()
        for unit: UInt64 in 0..<20_000 { once.add(unit: unit) }
        var many = once
        for _ in 0..<5 {
            for unit: UInt64 in 0..<20_000 { many.add(unit: unit) }
        }
        XCTAssertEqual(many, once)
        XCTAssertEqual(many.count, once.count)
    }

    func testMergeOfDisjointAndOverlappingSetsIsTheUnionsSketch() {
        for (a, b) in [(0..<50_000, 50_000..<100_000), (0..<60_000, 40_000..<100_000), (0..<100_000, 10..<20)] {
            var left = HyperLogLog(), right = HyperLogLog(), union = HyperLogLog()
            for unit in a { left.add(unit: UInt64(unit)) }
            for unit in b { right.add(unit: UInt64(unit)) }
            for unit in Set(a).union(b) { union.add(unit: UInt64(unit)) }
            var merged = left
            merged.merge(right)
            var mergedOtherWay = right
            mergedOtherWay.merge(left)
            XCTAssertEqual(merged, union, "\(a) ∪ \(b)")
            XCTAssertEqual(mergedOtherWay, union, "\(a) ∪ \(b)")
            XCTAssertLessThanOrEqual(abs(Double(merged.count) - 100_000), 3 * HyperLogLog.relativeStandardError * 100_000)
        }
    }

    func testEmptyAndReset() {
        var sketch = HyperLogLog()
        XCTAssertTrue(sketch.isEmpty)
        sketch.add(unit: 42)
        XCTAssertFalse(sketch.isEmpty)
        XCTAssertEqual(sketch.count, 1)
        sketch.reset()
        XCTAssertTrue(sketch.isEmpty)
        XCTAssertEqual(sketch, HyperLogLog())
        XCTAssertEqual(sketch.count, 0)
    }

    /// The rank is capped at 51 (64 - 14 + 1): a hash whose low 50 bits are zero.
    func testRankIsCappedAtTheLargestRegisterValue() {
        var sketch = HyperLogLog()
        sketch.add(0)
        sketch.add(UInt64(5) << 50 | 1)
        XCTAssertEqual(sketch.registers[0], HyperLogLog.maxRegister)
        XCTAssertEqual(sketch.registers[5], 50)
    }

    func testEncodingRoundTripsSparseAndDense() throws {
        for n in [0, 1, 100, 3_000, 10_000, 1_000_000] {
            var sketch = HyperLogLog()
            for unit in 0..<UInt64(n) { sketch.add(unit: unit) }
            let text = sketch.encoded()
            let decoded = try XCTUnwrap(HyperLogLog(encoded: text), "\(n) units")
            XCTAssertEqual(decoded, sketch, "\(n) units")
            XCTAssertEqual(decoded.encoded(), text, "\(n) units")
            if n <= 3_000 {
                XCTAssertTrue(text.hasPrefix("hll1:s:"), "\(n) units")
                XCTAssertLessThanOrEqual(text.utf8.count, 7 + 4 * n, "\(n) units")
            } else {
                XCTAssertTrue(text.hasPrefix("hll1:d:"), "\(n) units")
                XCTAssertEqual(text.utf8.count, 7 + HyperLogLog.registerCount)
            }
        }
        XCTAssertEqual(HyperLogLog().encoded(), "hll1:s:")
    }

    /// A hand-written text: register 1 at 3 ("AABD" = 1 << 6 | 3), register 16,383 at 51 ("D__z").
    func testSparseEntriesAreIndexAndValue() throws {
        let sketch = try XCTUnwrap(HyperLogLog(encoded: "hll1:s:AABDD__z"))
        XCTAssertEqual(sketch.registers[1], 3)
        XCTAssertEqual(sketch.registers[HyperLogLog.registerCount - 1], 51)
        XCTAssertEqual(sketch.registers.filter { $0 != 0 }.count, 2)
    }

    func testMalformedEncodingsAreRejected() {
        var full = HyperLogLog()
        for unit: UInt64 in 0..<100_000 { full.add(unit: unit) }
        let dense = full.encoded()
        let denseBody = String(dense.dropFirst(7))
        let cases: [(String, String)] = [
            ("", "empty"),
            ("hll1", "no form"),
            ("hll1:", "no form"),
            ("hll1:x:", "unknown form"),
            ("hll2:s:", "another version"),
            ("HLL1:s:", "uppercase version"),
            ("hll1:s", "prefix cut short"),
            (" hll1:s:", "leading space"),
            ("hll1:s:AAB", "sparse entry cut short"),
            ("hll1:s:AABD ", "trailing space"),
            ("hll1:s:AAB=", "padding"),
            ("hll1:s:AAB/", "standard alphabet's slash"),
            ("hll1:s:AABé", "non-ASCII"),
            ("hll1:s:AABA", "register value 0"),
            ("hll1:s:AABDA", "entry cut short after a whole one"),
            ("hll1:s:AAB0", "value 52"),
            ("hll1:s:AAB_", "value 63"),
            ("hll1:s:EAAB", "index 16384"),
            ("hll1:s:____", "index past the end"),
            ("hll1:s:AACBAABB", "indices out of order"),
            ("hll1:s:AABBAABB", "index repeated"),
            ("hll1:d:", "dense with no registers"),
            ("hll1:d:" + denseBody.dropLast(), "dense cut short"),
            (dense + "A", "dense one too long"),
            ("hll1:d:" + denseBody.dropLast() + "0", "dense value 52"),
            ("hll1:d:" + denseBody.dropLast() + "=", "dense padding"),
            ("hll1:d:" + String(repeating: "A", count: 1 << 20), "huge"),
            ("hll1:s:" + String(repeating: "AABB", count: 1 << 18), "huge sparse"),
        ]
        for (text, why) in cases {
            XCTAssertNil(HyperLogLog(encoded: text), why)
        }
        XCTAssertNotNil(HyperLogLog(encoded: dense))
    }
}
