// The routing decision: the first matching route, then its variant (pin, sticky bucket or
// fresh bucket), the blue/green color and the mirror mask. A pure function of
// (snapshot, request, random); reads only the snapshot's frozen table, allocates nothing.

/// Decides where `request` goes. `random` is the request's only source of randomness: the
/// fresh bucket and each mirror's draw are derived from it with splitmix64. `client` is the
/// peer's address, for the trust of override and preview headers; unknown, only a secret header
/// (or a trust of every client) makes them count.
public func decide<R: RoutingRequest>(_ snapshot: Snapshot, _ request: R, random: UInt64,
                                      client: ClientAddress = .unknown) -> Decision {
    withExtendedLifetime(snapshot) { snapshot.table.decide(request, random: random, client: client) }
}

extension RoutingTable {
    @inline(__always)
    func decide<R: RoutingRequest>(_ request: R, random: UInt64, client: ClientAddress) -> Decision {
        let path = request.path
        guard matchesPaths && pathNeedsNormalizing(path) else {
            return decide(request, random: random, client: client, path: path)
        }
        return withUnsafeTemporaryAllocation(byteCount: path.count, alignment: 1) { scratch in
            let n = normalizePath(path, into: scratch)
            return decide(request, random: random, client: client, path: UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
        }
    }

    /// `path` is the normalised path prefixes match against.
    @inline(__always)
    private func decide<R: RoutingRequest>(_ request: R, random: UInt64, client: ClientAddress,
                                           path: UnsafeRawBufferPointer) -> Decision {
        var decision = Decision()
        let method = request.method
        let host = withoutTrailingDot(hostWithoutPort(request.host))
        var index = 0
        while index < routes.count {
            if matches(routes[index], request, method: method, host: host, path: path) { break }
            index += 1
        }
        guard index < routes.count else { return decision }
        let route = routes[index]
        decision.route = index
        var idleVariant = false
        if route.split >= 0 {
            idleVariant = chooseVariant(splits[Int(route.split)], request, random: random, client: client, into: &decision)
        } else {
            decision.upstream = Int(route.upstream)
        }
        if decision.upstream >= 0 && decision.upstream < upstreams.count {
            let upstream = upstreams[decision.upstream]
            // A variant of the idle color is the next version, canaried before its flip.
            decision.color = idleVariant && upstream.blueGreen
                ? upstream.live.other : color(upstream, request, client: client, untrusted: &decision.untrustedSteering)
        }
        decision.mirrorMask = mirrorMask(route, method: method, random: random)
        if !goals.isEmpty { matchGoals(request, method: method, path: path, client: client, into: &decision) }
        return decision
    }

    /// Pinned requests carry bucket -1 and never set a cookie. Without sticky, every request
    /// gets a fresh bucket and no cookie. True when the variant chosen is of the idle color.
    @inline(__always)
    private func chooseVariant<R: RoutingRequest>(_ split: TableSplit, _ request: R, random: UInt64,
                                                  client: ClientAddress, into decision: inout Decision) -> Bool {
        let finds = scanCookies(split, request)
        var pinned = pinnedVariant(split, request, finds, client: client)
        if pinned == -2 {
            decision.untrustedSteering = true
            pinned = -1
        }
        if pinned >= 0 {
            decision.variant = pinned
            // An experiment's unit keeps a bucket even while pinned: it is counted where it is
            // served, and keeps its place when the pin goes.
            if split.experiment >= 0 {
                (decision.bucket, decision.setCookie) = assign(split, request, finds, random: random)
            }
        } else {
            if split.sticky {
                (decision.bucket, decision.setCookie) = assign(split, request, finds, random: random)
            } else {
                decision.bucket = freshBucket(random)
            }
            decision.variant = bucketOwner(decision.bucket, thresholds(split))
        }
        if split.experiment >= 0 { assignUnit(split, request, finds, random: random, into: &decision) }
        guard decision.variant >= 0 else { return false }
        let variant = variants[Int(split.variants.offset) + decision.variant]
        decision.upstream = Int(variant.upstream)
        return variant.idle
    }

    /// The live color, or the idle one when the preview header names it (case-insensitively)
    /// on a request the upstream's preview trust accepts.
    @inline(__always)
    private func color<R: RoutingRequest>(_ upstream: TableUpstream, _ request: R, client: ClientAddress,
                                          untrusted: inout Bool) -> Color? {
        guard upstream.blueGreen else { return nil }
        let idle = upstream.live.other
        guard upstream.previewHeader >= 0 else { return upstream.live }
        let idleName: StaticString = idle == .blue ? "blue" : "green"
        let idleBytes = UnsafeRawBufferPointer(start: idleName.utf8Start, count: idleName.utf8CodeUnitCount)
        let previewsIdle = anyHeader(request, upstream.previewHeader) { value in
            value.bytesEqualIgnoringCase(lowercased: idleBytes)
        }
        guard previewsIdle else { return upstream.live }
        if trusts(upstream.previewTrust, request, client: client) { return idle }
        untrusted = true
        return upstream.live
    }
}
