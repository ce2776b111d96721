// A split's bucket ranges (10,000 buckets shared out by weight, precomputed when the snapshot
// is built) and the pins that bypass them: rules, then the override header.

extension Split {
    /// Weights above this are treated as this, so the arithmetic below cannot overflow.
    public static let maxWeight = Int(Int32.max)

    /// The exclusive end of each variant's range, for `weights` in config order. Cumulative
    /// rounding, `round(10000 * cumsum_i / total)` with halves up, so the ranges are
    /// consecutive, sum to exactly 10,000, and a weight-0 variant has an empty range. Negative
    /// weights count as 0; a total of 0 gives every variant an empty range.
    public static func computeThresholds(_ weights: [Int]) -> [Int32] {
        let clamped = weights.map { UInt64(min(max($0, 0), maxWeight)) }
        let total = clamped.reduce(0, +)
        guard total > 0 else { return Array(repeating: 0, count: weights.count) }
        var cumulative: UInt64 = 0
        return clamped.map { weight in
            cumulative += weight
            // (2 * buckets * cumulative + total) / (2 * total), in 128 bits.
            let product = cumulative.multipliedFullWidth(by: 2 * UInt64(buckets))
            let (low, carry) = product.low.addingReportingOverflow(total)
            let high = product.high + (carry ? 1 : 0)
            return Int32((2 * total).dividingFullWidth((high: high, low: low)).quotient)
        }
    }

    /// The variant whose range holds `bucket`, or -1 when none does (bucket out of range, or
    /// no variant has a positive weight).
    public func variant(forBucket bucket: Int32) -> Int {
        thresholds.withUnsafeBufferPointer { bucketOwner(bucket, $0) }
    }

    /// The buckets variant `index` owns (empty for a weight-0 variant).
    public func range(ofVariant index: Int) -> Range<Int32> {
        let start = index == 0 ? 0 : thresholds[index - 1]
        return start..<thresholds[index]
    }
}

extension Route {
    /// The route's split, or nil for a plain upstream route.
    public var split: Split? {
        if case .split(let split) = target { return split }
        return nil
    }
}

/// The first range (by exclusive end) holding `bucket`, or -1. Weight-0 variants have empty
/// ranges and are skipped by construction.
@inline(__always)
func bucketOwner(_ bucket: Int32, _ thresholds: UnsafeBufferPointer<Int32>) -> Int {
    guard bucket >= 0 else { return -1 }
    var i = 0
    while i < thresholds.count {
        if bucket < thresholds[i] { return i }
        i += 1
    }
    return -1
}

extension RoutingTable {
    /// The variant a rule or the override header pins this request to, or -1 (-2: the override
    /// header named a variant, from a source the trust does not accept). Rules first, in
    /// order (cookie rules were matched by the one Cookie scan in `finds`); then the override
    /// header, whose value must equal a variant name exactly and which counts only for a request
    /// the split's override trust accepts. Pins may name a weight-0 variant: that is how a dark
    /// variant is reached before it gets users.
    @inline(__always)
    func pinnedVariant<R: RoutingRequest>(_ split: TableSplit, _ request: R, _ finds: CookieFinds,
                                          client: ClientAddress) -> Int {
        var i = Int(split.headerRules.offset)
        let end = i + Int(split.headerRules.count)
        while i < end {
            let index = ruleIndexes[i]
            if index > finds.rule { break }
            let rule = rules[Int(index)]
            let value = bytes(rule.value)
            if anyHeader(request, rule.headerName, { $0.bytesEqual(value) }) { return Int(rule.variant) }
            i += 1
        }
        if finds.rule != Int32.max { return Int(rules[Int(finds.rule)].variant) }
        guard split.overrideHeader >= 0 else { return -1 }
        var pinned = -1
        _ = anyHeader(request, split.overrideHeader) { value in
            pinned = variantIndex(split, named: value)
            return pinned >= 0
        }
        guard pinned >= 0 else { return -1 }
        return trusts(split.overrideTrust, request, client: client) ? pinned : -2
    }

    @inline(__always)
    private func variantIndex(_ split: TableSplit, named name: UnsafeRawBufferPointer) -> Int {
        for i in 0..<Int(split.variants.count) where name.bytesEqual(bytes(variants[Int(split.variants.offset) + i].name)) {
            return i
        }
        return -1
    }
}
