// The frozen form of a Snapshot that `decide` reads: flat buffers of plain structs and one
// byte arena, built once with the snapshot. Reading it retains nothing, which matters more
// than anything else on the request path (copying a Route would retain a dozen arrays).

/// A run of elements: bytes in the arena, or entries in one of the table's buffers.
struct Span {
    var offset: Int32 = 0
    var count: Int32 = 0
    static let empty = Span()
}

struct TableRoute {
    var hosts = Span.empty           // into hosts
    var pathPrefix = Span.empty      // arena
    var hasPathPrefix = false
    var methods = Span.empty         // into lists (each an arena span)
    var headers = Span.empty         // into headers
    var upstream: Int32 = -1         // plain upstream route
    var split: Int32 = -1            // into splits
    var mirrors = Span.empty         // into mirrors
    var rewrite = RewriteKind.none
    var rewriteBytes = Span.empty    // arena

    enum RewriteKind: UInt8 { case none, stripPrefix, prefix }
}

struct TableHost {
    var suffix: Bool
    var name: Span                   // arena, lowercase
}

struct TableHeader {
    var name: Int32                  // into names
    var value: Span                  // arena
    var presence: Bool
}

struct TableSplit {
    var variants = Span.empty        // into variants; thresholds share the same offsets
    var rules = Span.empty           // into rules
    var headerRules = Span.empty     // into ruleIndexes: the header rules, in order
    var overrideHeader: Int32 = -1   // into names, -1 = disabled
    var overrideTrust: Int32 = -1    // into trusts
    var cookies = TableCookies()
    var sticky = false
    var preferCookie = false
    var cookieName = Span.empty      // arena
    var maxAgeSeconds = 0
    var keyKind = KeyKind.none
    var keyName: Int32 = -1          // into names (header key)
    var keyCookie = Span.empty       // arena (cookie key)
    var salt = Span.empty            // arena
    var saltTag: UInt32 = 0
    var signatures: UnsafeRawPointer? = nil   // owned by the route's Sticky
    var experiment: Int32 = -1       // into experimentRoutes, -1: none
    var unitKey = UnitKey(0, 0)      // SipHash key of keyed units

    enum KeyKind: UInt8 { case none, header, cookie }
}

/// A goal: which requests may convert (method, path prefix) and with which statuses.
struct TableGoal {
    var experiment: Int32
    var split: Int32                 // into splits: the experiment's split
    var methods: Span                // into lists
    var pathPrefix: Span             // arena
    var hasPathPrefix: Bool
    var statusMin: Int32
    var statusMax: Int32
}

struct TableVariant {
    var name: Span                   // arena
    var upstream: Int32
    var idle = false                 // served by the blue/green upstream's idle color
}

struct TableRule {
    var cookie: Bool
    var headerName: Int32            // into names, for header rules
    var cookieName: Span             // arena, for cookie rules
    var value: Span                  // arena
    var variant: Int32
}

struct TableMirror {
    var ppm: Int
    var methods: Span                // into lists
}

struct TableUpstream {
    var blueGreen = false
    var live = Color.blue
    var previewHeader: Int32 = -1    // into names
    var previewTrust: Int32 = -1     // into trusts
    var hostHeader = Span.empty      // arena: the plain pool's or blue's; empty = the client's
    var greenHostHeader = Span.empty // arena
    var setHeaders = Span.empty      // into setHeaders: the plain pool's or blue's
    var greenSetHeaders = Span.empty // into setHeaders
}

struct TableSetHeader {
    var name: Span                   // arena, lowercased
    var line: Span                   // arena, "Name: value\r\n" with the name as written
}

struct TableTrust {
    var prefixes = Span.empty        // into prefixes
    var everyone = false
    var secretHeader: Int32 = -1     // into names
    var secret = Span.empty          // arena
}

/// The cookie names a split reads, found in one pass over the Cookie header (CookieScan.swift).
struct TableCookies {
    var names = Span.empty           // into cookieNames (arena spans); local slot = index in this run
    var nameSlots = Span.empty       // into cookieSlots: open-addressed by FNV-1a of the name, -1 empty
    var ruleSlots = Span.empty       // into cookieRules: open-addressed by (slot, value)
    var assignment: Int32 = -1       // local slot of the assignment cookie
    var key: Int32 = -1              // local slot of the key cookie
    var any: Bool { names.count > 0 }
}

/// A cookie rule as a hash entry: the first rule (lowest index) for each (name, value).
struct TableCookieRule {
    var slot: Int32 = -1             // local name slot; -1 = empty entry
    var value = Span.empty           // arena
    var rule: Int32 = -1             // into rules
}

final class RoutingTable: @unchecked Sendable {
    // Immutable after init; freed with the snapshot.
    let arena: UnsafeMutableRawBufferPointer
    let routes: UnsafeMutableBufferPointer<TableRoute>
    let hosts: UnsafeMutableBufferPointer<TableHost>
    let lists: UnsafeMutableBufferPointer<Span>
    let headers: UnsafeMutableBufferPointer<TableHeader>
    let splits: UnsafeMutableBufferPointer<TableSplit>
    let variants: UnsafeMutableBufferPointer<TableVariant>
    let thresholds: UnsafeMutableBufferPointer<Int32>
    let rules: UnsafeMutableBufferPointer<TableRule>
    let mirrors: UnsafeMutableBufferPointer<TableMirror>
    let upstreams: UnsafeMutableBufferPointer<TableUpstream>
    let setHeaders: UnsafeMutableBufferPointer<TableSetHeader>
    let trusts: UnsafeMutableBufferPointer<TableTrust>
    let prefixes: UnsafeMutableBufferPointer<AddressSet.Prefix>
    let ruleIndexes: UnsafeMutableBufferPointer<Int32>
    let cookieNames: UnsafeMutableBufferPointer<Span>
    let cookieSlots: UnsafeMutableBufferPointer<Int32>
    let cookieRules: UnsafeMutableBufferPointer<TableCookieRule>
    /// Lowercased names of the headers that steer Switchyard (override, preview, their secret
    /// headers, and the default names): never forwarded upstream.
    let strippedHeaders: UnsafeMutableBufferPointer<Span>
    let goals: UnsafeMutableBufferPointer<TableGoal>
    /// Per experiment, its route; and every goal with its experiment, as configured.
    let experimentRoutes: [Int]
    let goalList: [(experiment: Int, goal: ExperimentGoal)]
    /// Some route matches on a path prefix: only then is the request path normalised.
    let matchesPaths: Bool
    /// Header names in the form `RoutingRequest.forEachHeader` takes; index 0 is "cookie".
    /// Read through unmanaged references so passing one to the request retains nothing.
    let headerNames: UnsafeMutableBufferPointer<Unmanaged<HeaderNameBox>>
    private let headerNameBoxes: [HeaderNameBox]

    static let cookieHeader: Int32 = 0

    init(routes sourceRoutes: [Route], upstreams sourceUpstreams: [Upstream]) {
        var b = Builder()
        for route in sourceRoutes { b.add(route) }
        for upstream in sourceUpstreams { b.add(upstream) }
        routes = freeze(b.routes)
        hosts = freeze(b.hosts)
        lists = freeze(b.lists)
        headers = freeze(b.headers)
        splits = freeze(b.splits)
        variants = freeze(b.variants)
        thresholds = freeze(b.thresholds)
        rules = freeze(b.rules)
        mirrors = freeze(b.mirrors)
        upstreams = freeze(b.upstreams)
        setHeaders = freeze(b.setHeaders)
        trusts = freeze(b.trusts)
        prefixes = freeze(b.prefixes)
        ruleIndexes = freeze(b.ruleIndexes)
        cookieNames = freeze(b.cookieNames)
        cookieSlots = freeze(b.cookieSlots)
        cookieRules = freeze(b.cookieRules)
        var stripped: [Span] = []
        for name in b.stripped { stripped.append(b.bytes(name)) }
        strippedHeaders = freeze(stripped)
        goals = freeze(b.goals)
        experimentRoutes = b.experimentRoutes
        goalList = b.goalList
        arena = freeze(b.arena)
        matchesPaths = b.routes.contains { $0.hasPathPrefix } || b.goals.contains { $0.hasPathPrefix }
        headerNameBoxes = b.names.map(HeaderNameBox.init)
        headerNames = freeze(headerNameBoxes.map { Unmanaged.passUnretained($0) })
    }

    deinit {
        arena.deallocate()
        routes.deallocate()
        hosts.deallocate()
        lists.deallocate()
        headers.deallocate()
        splits.deallocate()
        variants.deallocate()
        thresholds.deallocate()
        rules.deallocate()
        mirrors.deallocate()
        upstreams.deallocate()
        setHeaders.deallocate()
        trusts.deallocate()
        prefixes.deallocate()
        ruleIndexes.deallocate()
        cookieNames.deallocate()
        cookieSlots.deallocate()
        cookieRules.deallocate()
        strippedHeaders.deallocate()
        goals.deallocate()
        headerNames.deallocate()
    }

    @inline(__always)
    func bytes(_ span: Span) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: arena.baseAddress! + Int(span.offset), count: Int(span.count))
    }

    /// True when some value of header `name` (an index into `headerNames`) satisfies
    /// `predicate`; stops at the first that does.
    @inline(__always)
    func anyHeader<R: RoutingRequest>(_ request: R, _ name: Int32, _ predicate: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        // The boxes live as long as the table, which the caller keeps alive.
        headerNames[Int(name)]._withUnsafeGuaranteedRef { request.anyHeader($0.bytes, predicate) }
    }

    @inline(__always)
    func thresholds(_ split: TableSplit) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(rebasing: thresholds[Int(split.variants.offset)..<Int(split.variants.offset + split.variants.count)])
    }

    /// True when `method` is one of the byte spans in `list` (an empty list allows every method).
    @inline(__always)
    func methodAllowed(_ method: UnsafeRawBufferPointer, _ list: Span) -> Bool {
        if list.count == 0 { return true }
        for i in Int(list.offset)..<Int(list.offset + list.count) where method.bytesEqual(bytes(lists[i])) {
            return true
        }
        return false
    }
}

final class HeaderNameBox: Sendable {
    let bytes: Bytes
    init(_ bytes: Bytes) { self.bytes = bytes }
}

/// Copies `array` into a buffer that outlives any Swift array (never empty, so base addresses
/// are never nil).
private func freeze<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
    let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(array.count, 1))
    _ = buffer.initialize(from: array)
    return UnsafeMutableBufferPointer(rebasing: buffer[0..<array.count])
}

private func freeze(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
    bytes.withUnsafeBytes { if !$0.isEmpty { buffer.copyMemory(from: $0) } }
    return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count])
}

private struct Builder {
    var arena: [UInt8] = []
    var routes: [TableRoute] = []
    var hosts: [TableHost] = []
    var lists: [Span] = []
    var headers: [TableHeader] = []
    var splits: [TableSplit] = []
    var variants: [TableVariant] = []
    var thresholds: [Int32] = []
    var rules: [TableRule] = []
    var mirrors: [TableMirror] = []
    var upstreams: [TableUpstream] = []
    var setHeaders: [TableSetHeader] = []
    var trusts: [TableTrust] = []
    var prefixes: [AddressSet.Prefix] = []
    var ruleIndexes: [Int32] = []
    var cookieNames: [Span] = []
    var cookieSlots: [Int32] = []
    var cookieRules: [TableCookieRule] = []
    var stripped: [Bytes] = [HeaderName.defaultOverride, HeaderName.defaultPreview, HeaderName.unit]
    var names: [Bytes] = [HeaderName.cookie]
    var goals: [TableGoal] = []
    var experimentRoutes: [Int] = []
    var goalList: [(experiment: Int, goal: ExperimentGoal)] = []

    mutating func strip(_ name: Bytes) {
        if !stripped.contains(name) { stripped.append(name) }
    }

    mutating func trust(_ trust: HeaderTrust) -> Int32 {
        var t = TableTrust()
        t.prefixes = Span(offset: Int32(prefixes.count), count: Int32(trust.sources.prefixes.count))
        prefixes += trust.sources.prefixes
        t.everyone = trust.sources.matchesEveryone
        if let header = trust.secretHeader, let secret = trust.secret, !secret.isEmpty {
            t.secretHeader = name(header)
            t.secret = bytes(secret)
            strip(header)
        }
        trusts.append(t)
        return Int32(trusts.count - 1)
    }

    mutating func bytes(_ value: Bytes) -> Span {
        let span = Span(offset: Int32(arena.count), count: Int32(value.count))
        arena += value
        return span
    }

    mutating func name(_ value: Bytes) -> Int32 {
        if let i = names.firstIndex(of: value) { return Int32(i) }
        names.append(value)
        return Int32(names.count - 1)
    }

    mutating func list(_ values: [Bytes]) -> Span {
        let spans = values.map { bytes($0) }
        let span = Span(offset: Int32(lists.count), count: Int32(spans.count))
        lists += spans
        return span
    }

    mutating func add(_ route: Route) {
        var r = TableRoute()
        r.hosts = Span(offset: Int32(hosts.count), count: Int32(route.match.hosts.count))
        for host in route.match.hosts {
            switch host {
            case .exact(let name): hosts.append(TableHost(suffix: false, name: bytes(name)))
            case .suffix(let name): hosts.append(TableHost(suffix: true, name: bytes(name)))
            }
        }
        if let prefix = route.match.pathPrefix {
            r.hasPathPrefix = true
            r.pathPrefix = bytes(prefix)
        }
        r.methods = list(route.match.methods)
        switch route.rewrite {
        case .stripPrefix(let prefix)?:
            r.rewrite = .stripPrefix
            r.rewriteBytes = bytes(prefix)
        case .prefix(let prefix)?:
            r.rewrite = .prefix
            r.rewriteBytes = bytes(prefix)
        case nil:
            break
        }
        let routeHeaders = route.match.headers.map { header -> TableHeader in
            switch header.match {
            case .present: return TableHeader(name: name(header.name), value: .empty, presence: true)
            case .equals(let value): return TableHeader(name: name(header.name), value: bytes(value), presence: false)
            }
        }
        r.headers = Span(offset: Int32(headers.count), count: Int32(routeHeaders.count))
        headers += routeHeaders
        switch route.target {
        case .upstream(let upstream): r.upstream = Int32(upstream)
        case .split(let split):
            r.split = Int32(splits.count)
            add(split)
            if let experiment = split.experiment, split.sticky != nil { add(experiment, split: r.split) }
        }
        let routeMirrors = route.mirrors.prefix(Route.maxMirrors).map { TableMirror(ppm: $0.ppm, methods: list($0.methods)) }
        r.mirrors = Span(offset: Int32(mirrors.count), count: Int32(routeMirrors.count))
        mirrors += routeMirrors
        routes.append(r)
    }

    mutating func add(_ split: Split) {
        var s = TableSplit()
        s.variants = Span(offset: Int32(variants.count), count: Int32(split.variants.count))
        for variant in split.variants {
            variants.append(TableVariant(name: bytes(variant.nameBytes), upstream: Int32(variant.upstream), idle: variant.idle))
        }
        thresholds += split.thresholds
        let splitRules = split.rules.filter { $0.variant >= 0 && $0.variant < split.variants.count }.map { rule -> TableRule in
            switch rule.source {
            case .cookie(let cookie, let value):
                return TableRule(cookie: true, headerName: -1, cookieName: bytes(cookie), value: bytes(value), variant: Int32(rule.variant))
            case .header(let header, let value):
                return TableRule(cookie: false, headerName: name(header), cookieName: .empty, value: bytes(value), variant: Int32(rule.variant))
            }
        }
        s.rules = Span(offset: Int32(rules.count), count: Int32(splitRules.count))
        let headerRules = splitRules.indices.filter { !splitRules[$0].cookie }.map { Int32(rules.count + $0) }
        s.headerRules = Span(offset: Int32(ruleIndexes.count), count: Int32(headerRules.count))
        ruleIndexes += headerRules
        rules += splitRules
        if let header = split.overrideHeader {
            s.overrideHeader = name(header)
            s.overrideTrust = trust(split.overrideTrust)
            strip(header)
        }
        if let sticky = split.sticky {
            s.sticky = true
            s.preferCookie = sticky.preferCookie
            s.cookieName = bytes(sticky.cookieName)
            s.maxAgeSeconds = sticky.maxAgeSeconds
            switch sticky.key {
            case .header(let header)?:
                s.keyKind = .header
                s.keyName = name(header)
            case .cookie(let cookie)?:
                s.keyKind = .cookie
                s.keyCookie = bytes(cookie)
            case nil:
                break
            }
            s.salt = bytes(sticky.salt)
            s.saltTag = sticky.saltTag
            s.signatures = sticky.signatures.map { UnsafeRawPointer($0.bytes.baseAddress!) }
        }
        s.cookies = cookies(s, firstRule: Int(s.rules.offset))
        splits.append(s)
    }

    /// The split's cookie names (rules, assignment cookie, key cookie) in hash tables sized to
    /// at most half full, and its cookie rules keyed by (name, value), first rule kept.
    mutating func cookies(_ s: TableSplit, firstRule: Int) -> TableCookies {
        var local: [Bytes] = []
        func slot(_ name: Bytes) -> Int32 {
            if let i = local.firstIndex(of: name) { return Int32(i) }
            local.append(name)
            return Int32(local.count - 1)
        }
        var entries: [(slot: Int32, value: Bytes, rule: Int32)] = []
        for i in firstRule..<firstRule + Int(s.rules.count) where rules[i].cookie {
            let rule = rules[i]
            entries.append((slot(arenaBytes(rule.cookieName)), arenaBytes(rule.value), Int32(i)))
        }
        var c = TableCookies()
        if s.sticky {
            c.assignment = slot(arenaBytes(s.cookieName))
            if s.keyKind == .cookie { c.key = slot(arenaBytes(s.keyCookie)) }
        }
        guard !local.isEmpty else { return c }
        c.names = Span(offset: Int32(cookieNames.count), count: Int32(local.count))
        for name in local { cookieNames.append(bytes(name)) }

        let nameTable = hashTableSize(local.count)
        var nameSlots = [Int32](repeating: -1, count: nameTable)
        for (i, name) in local.enumerated() {
            var at = Int(cookieNameHash(name)) & (nameTable - 1)
            while nameSlots[at] >= 0 { at = (at + 1) & (nameTable - 1) }
            nameSlots[at] = Int32(i)
        }
        c.nameSlots = Span(offset: Int32(cookieSlots.count), count: Int32(nameTable))
        cookieSlots += nameSlots

        let ruleTable = hashTableSize(entries.count)
        var ruleSlots = [TableCookieRule](repeating: TableCookieRule(), count: ruleTable)
        var ruleValues = [Bytes](repeating: [], count: ruleTable)
        for entry in entries {
            var at = Int(cookieRuleHash(entry.slot, entry.value)) & (ruleTable - 1)
            var duplicate = false
            while ruleSlots[at].slot >= 0 {
                if ruleSlots[at].slot == entry.slot && ruleValues[at] == entry.value { duplicate = true; break }
                at = (at + 1) & (ruleTable - 1)
            }
            if duplicate { continue }   // an earlier rule with the same cookie and value wins
            ruleSlots[at] = TableCookieRule(slot: entry.slot, value: bytes(entry.value), rule: entry.rule)
            ruleValues[at] = entry.value
        }
        c.ruleSlots = Span(offset: Int32(cookieRules.count), count: Int32(ruleTable))
        cookieRules += ruleSlots
        return c
    }

    /// The split's experiment (a sticky split's only) and its goals, up to `Experiment.maxGoals`
    /// over the snapshot.
    mutating func add(_ experiment: Experiment, split: Int32) {
        let index = Int32(experimentRoutes.count)
        experimentRoutes.append(routes.count)
        splits[Int(split)].experiment = index
        splits[Int(split)].unitKey = experiment.unitKey
        for goal in experiment.goals where goals.count < Experiment.maxGoals {
            goals.append(TableGoal(experiment: index, split: split, methods: list(goal.methods),
                                   pathPrefix: goal.pathPrefix.map { bytes($0) } ?? .empty,
                                   hasPathPrefix: goal.pathPrefix != nil,
                                   statusMin: Int32(clamping: goal.statuses.lowerBound),
                                   statusMax: Int32(clamping: goal.statuses.upperBound)))
            goalList.append((Int(index), goal))
        }
    }

    func arenaBytes(_ span: Span) -> Bytes {
        Array(arena[Int(span.offset)..<Int(span.offset + span.count)])
    }

    mutating func add(_ upstream: Upstream) {
        var u = TableUpstream()
        switch upstream.kind {
        case .pool(let pool):
            if let host = pool.hostHeader { u.hostHeader = bytes(Array(host.utf8)) }
            u.setHeaders = fields(pool.setHeaders)
        case .blueGreen(let blueGreen):
            u.blueGreen = true
            u.live = blueGreen.live
            if let header = blueGreen.previewHeader {
                u.previewHeader = name(header)
                u.previewTrust = trust(blueGreen.previewTrust)
                strip(header)
            }
            if let host = blueGreen.blue.hostHeader { u.hostHeader = bytes(Array(host.utf8)) }
            if let host = blueGreen.green.hostHeader { u.greenHostHeader = bytes(Array(host.utf8)) }
            u.setHeaders = fields(blueGreen.blue.setHeaders)
            u.greenSetHeaders = fields(blueGreen.green.setHeaders)
        }
        upstreams.append(u)
    }

    /// Each field as its name and its whole line, so a request costs one copy per field.
    mutating func fields(_ list: [SetHeader]) -> Span {
        let span = Span(offset: Int32(setHeaders.count), count: Int32(list.count))
        for field in list {
            setHeaders.append(TableSetHeader(name: bytes(field.name.map(asciiLower)), line: bytes(field.line)))
        }
        return span
    }
}
