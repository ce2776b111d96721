// The routing decision: the first matching route, then its variant (pin, sticky bucket or
// fresh bucket), the blue/green color and the mirror mask. A pure function of
// (snapshot, request, random); reads only the snapshot's frozen table, allocates nothing.

/// Decides where `request` goes. `random` is the request's only source of randomness: the
/// fresh bucket and each mirror's draw are derived from it with splitmix64.
public func decide<R: RoutingRequest>(_ snapshot: Snapshot, _ request: R, random: UInt64) -> Decision {
    withExtendedLifetime(snapshot) { snapshot.table.decide(request, random: random) }
}

extension RoutingTable {
    @inline(__always)
    func decide<R: RoutingRequest>(_ request: R, random: UInt64) -> Decision {
        var decision = Decision()
        let method = request.method
        let host = hostWithoutPort(request.host)
        let path = request.path
        var index = 0
        while index < routes.count {
            if matches(routes[index], request, method: method, host: host, path: path) { break }
            index += 1
        }
        guard index < routes.count else { return decision }
        let route = routes[index]
        decision.route = index
        if route.split >= 0 {
            chooseVariant(splits[Int(route.split)], request, random: random, into: &decision)
        } else {
            decision.upstream = Int(route.upstream)
        }
        if decision.upstream >= 0 && decision.upstream < upstreams.count {
            decision.color = color(upstreams[decision.upstream], request)
        }
        decision.mirrorMask = mirrorMask(route, method: method, random: random)
        return decision
    }

    /// Pinned requests carry bucket -1 and never set a cookie. Without sticky, every request
    /// gets a fresh bucket and no cookie.
    @inline(__always)
    private func chooseVariant<R: RoutingRequest>(_ split: TableSplit, _ request: R, random: UInt64,
                                                  into decision: inout Decision) {
        let pinned = pinnedVariant(split, request)
        if pinned >= 0 {
            decision.variant = pinned
        } else {
            if split.sticky {
                (decision.bucket, decision.setCookie) = assign(split, request, random: random)
            } else {
                decision.bucket = freshBucket(random)
            }
            decision.variant = bucketOwner(decision.bucket, thresholds(split))
        }
        if decision.variant >= 0 {
            decision.upstream = Int(variants[Int(split.variants.offset) + decision.variant].upstream)
        }
    }

    /// The live color, or the idle one when the preview header names it (case-insensitively).
    @inline(__always)
    private func color<R: RoutingRequest>(_ upstream: TableUpstream, _ request: R) -> Color? {
        guard upstream.blueGreen else { return nil }
        let idle = upstream.live.other
        guard upstream.previewHeader >= 0 else { return upstream.live }
        let idleName: StaticString = idle == .blue ? "blue" : "green"
        let idleBytes = UnsafeRawBufferPointer(start: idleName.utf8Start, count: idleName.utf8CodeUnitCount)
        let previewsIdle = anyHeader(request, upstream.previewHeader) { value in
            value.bytesEqualIgnoringCase(lowercased: idleBytes)
        }
        return previewsIdle ? idle : upstream.live
    }
}
