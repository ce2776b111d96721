// Mirror sampling: which of a route's shadow copies a request gets. Each mirror has its own
// draw derived from the request's random input, so mirrors sample independently.

extension Route {
    /// Most mirrors a route can have: one bit each in `Decision.mirrorMask`. Mirrors past this
    /// are never selected (the snapshot builder rejects them).
    public static let maxMirrors = 64
}

extension RoutingTable {
    /// Bit i set when mirror i allows `method` (an empty list allows every method) and its
    /// draw in [0, 1_000_000) is below its ppm.
    @inline(__always)
    func mirrorMask(_ route: TableRoute, method: UnsafeRawBufferPointer, random: UInt64) -> UInt64 {
        var mask: UInt64 = 0
        for i in 0..<Int(route.mirrors.count) {
            let mirror = mirrors[Int(route.mirrors.offset) + i]
            if mirror.ppm > 0 && methodAllowed(method, mirror.methods) {
                let draw = SplitMix64.draw(random, Draw.firstMirror + i) % 1_000_000
                if draw < UInt64(mirror.ppm) { mask |= 1 << UInt64(i) }
            }
        }
        return mask
    }
}
