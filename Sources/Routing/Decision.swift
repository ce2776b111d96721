// What a request looks like to the router, and what the router decides. The proxy only
// executes decisions; deciding is a pure function of (snapshot, request, random).

/// A parsed request as the router sees it. Buffers are valid only during the call that
/// received them; implementations point into the connection's read buffer (no copies).
public protocol RoutingRequest {
    /// The method token, as sent (uppercase for standard methods).
    var method: UnsafeRawBufferPointer { get }
    /// The Host header's host part (no port), as sent; the router compares case-insensitively.
    var host: UnsafeRawBufferPointer { get }
    /// The request path, without the query.
    var path: UnsafeRawBufferPointer { get }
    /// Calls `body` with the value of every header named `lowercasedName`, in order, until it
    /// returns false.
    func forEachHeader(_ lowercasedName: Bytes, _ body: (UnsafeRawBufferPointer) -> Bool)
}

public struct Decision: Sendable, Equatable {
    /// Index into `Snapshot.routes`, or -1 when no route matched (the proxy answers 404).
    public var route: Int = -1
    /// Index into the route's split variants, or -1 for a plain upstream route.
    public var variant: Int = -1
    /// Index into `Snapshot.upstreams`, or -1 when no route matched or the route's split has
    /// no variant with a positive weight (the proxy answers 503).
    public var upstream: Int = -1
    /// For a blue/green upstream, the color that serves this request.
    public var color: Color? = nil
    /// The request's bucket in [0, 10000), or -1 when the route has no split or a rule or the
    /// override header pinned the variant (a pinned request is not bucketed).
    public var bucket: Int32 = -1
    /// True when the proxy must send a Set-Cookie with `bucket` (new user, or a missing,
    /// stale, forged or malformed cookie).
    public var setCookie: Bool = false
    /// Bit i set: copy this request to `route.mirrors[i]`.
    public var mirrorMask: UInt64 = 0
    /// An override or preview header named a variant or the idle color, from a source its trust
    /// does not accept: ignored, and counted so that a newcomer can see why it "does nothing".
    public var untrustedSteering: Bool = false
    /// On a route whose split runs an experiment: the request's unit id (its cookie's, the
    /// keyed hash of its sticky key, or a new one), else 0.
    public var unit: UInt64 = 0
    /// The unit was made for this request (a new user, or a cookie from before units): the
    /// Set-Cookie stores it, and it is the unit's first exposure.
    public var newUnit: Bool = false
    /// The unit is the hash of the sticky key: the same on every instance with no cookie.
    public var keyedUnit: Bool = false
    /// The experiments whose goals this request may reach (ExperimentUnits.swift).
    public var goalHits = GoalHits()

    public init() {}
}
