// Distinct units seen by one experiment variant, in 16 KiB whatever the traffic: a HyperLogLog
// sketch of precision 14 (16,384 registers). Sketches from several instances merge into the
// sketch of the union, so a fleet's distinct units are counted once, not once per instance.
//
// The estimate is Ertl's improved estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017, algorithm 6): it corrects both the small range (where it tends to
// linear counting) and the large range without empirical bias tables, so counts from 0 up to
// billions read from one formula.

/// A HyperLogLog sketch of precision 14: one 6-bit register per byte, 16,384 of them.
///
/// `add` is O(1) and does not allocate (after the first write to a copy of a shared sketch, as
/// for any copy-on-write value). The relative standard error of `count` is
/// `relativeStandardError`, 1.04 / √16384 ≈ 0.81%.
public struct HyperLogLog: Sendable, Equatable {
    /// Index bits: 2^14 registers.
    public static let precision = 14
    public static let registerCount = 1 << precision
    /// The largest register value: a 64-bit hash leaves 64 - 14 bits for the rank, plus one.
    public static let maxRegister = UInt8(64 - precision + 1)
    /// 1.04 / √m, the relative standard error of `count` for m = 16,384 registers (≈ 0.81%).
    public static let relativeStandardError = 1.04 / Double(registerCount).squareRoot()

    /// Register i holds the largest rank seen among hashes whose top 14 bits are i.
    var registers: [UInt8]

    public init() {
        registers = [UInt8](repeating: 0, count: Self.registerCount)
    }

    /// Registers as read from an encoding; the codec has checked count and range.
    init(validRegisters: [UInt8]) {
        registers = validRegisters
    }

    /// Adds a well-mixed 64-bit hash (a SipHash output, a unit id): its top 14 bits choose the
    /// register, the position of the first set bit in the other 50 is the rank.
    @inline(__always)
    public mutating func add(_ hash: UInt64) {
        let index = Int(truncatingIfNeeded: hash >> UInt64(64 - Self.precision))
        // The marker bit caps the rank at 51 when the 50 low bits are all zero.
        let rest = hash << UInt64(Self.precision) | 1 << UInt64(Self.precision - 1)
        let rank = UInt8(truncatingIfNeeded: rest.leadingZeroBitCount + 1)
        registers.withUnsafeMutableBufferPointer { r in
            if rank > r[index] { r[index] = rank }
        }
    }

    /// Adds a raw id (a sequence number, a database key) after mixing it with splitmix64's
    /// finalizer, so ids that differ in a few low bits land in unrelated registers.
    @inline(__always)
    public mutating func add(unit: UInt64) {
        add(Self.mix(unit))
    }

    /// splitmix64's output function: a bijection on UInt64 with full avalanche.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Folds `other` in: each register becomes the larger of the two, which is exactly the
    /// sketch of the union of both unit sets.
    public mutating func merge(_ other: HyperLogLog) {
        registers.withUnsafeMutableBufferPointer { mine in
            other.registers.withUnsafeBufferPointer { theirs in
                for i in 0..<mine.count where theirs[i] > mine[i] { mine[i] = theirs[i] }
            }
        }
    }

    public var isEmpty: Bool { registers.allSatisfy { $0 == 0 } }

    public mutating func reset() {
        registers.withUnsafeMutableBufferPointer { r in r.update(repeating: 0) }
    }

    /// The estimated number of distinct hashes added.
    public var count: Int {
        let estimate = Self.estimate(histogram: histogram())
        // The estimate is finite and at most ~m·2^50 by construction; clamp all the same.
        guard estimate.isFinite, estimate < Double(Int.max / 2) else { return Int.max / 2 }
        return Int(estimate.rounded())
    }

    /// How many registers hold each value 0...51.
    func histogram() -> [Int] {
        var counts = [Int](repeating: 0, count: Int(Self.maxRegister) + 1)
        for value in registers { counts[Int(value)] += 1 }
        return counts
    }

    /// Ertl 2017, algorithm 6: α∞·m² / (m·σ(C₀/m) + Σ_{k=1..q} C_k·2^-k + m·τ(1 - C_{q+1}/m)·2^-q)
    /// with q = 50, C_k the number of registers at k; the sum is evaluated Horner-style from the
    /// top down.
    static func estimate(histogram c: [Int]) -> Double {
        let m = Double(registerCount)
        let q = Int(maxRegister) - 1
        var z = m * tau(1 - Double(c[q + 1]) / m)
        for k in stride(from: q, through: 1, by: -1) {
            z = 0.5 * (z + Double(c[k]))
        }
        z += m * sigma(Double(c[0]) / m)
        let alphaInfinity = 1 / (2 * 0.693_147_180_559_945_3)  // 1 / (2 ln 2)
        return alphaInfinity * m * m / z
    }

    /// σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k-1), for the registers still at zero; infinite at x = 1,
    /// which makes the empty sketch's estimate 0.
    static func sigma(_ x: Double) -> Double {
        guard x < 1 else { return .infinity }
        var x = x
        var y = 1.0
        var z = x
        while true {
            x *= x
            let previous = z
            z += x * y
            y += y
            if z == previous { return z }
        }
    }

    /// τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))²·2^-k) / 3, for registers at the maximum rank.
    static func tau(_ x: Double) -> Double {
        guard x > 0, x < 1 else { return 0 }
        var x = x
        var y = 1.0
        var z = 1 - x
        while true {
            x = x.squareRoot()
            let previous = z
            y *= 0.5
            z -= (1 - x) * (1 - x) * y
            if z == previous { return z / 3 }
        }
    }
}
