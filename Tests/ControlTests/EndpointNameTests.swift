// Endpoints named by host name, through a resolver the test answers for: every address is
// served, a changed answer swaps in as a new snapshot without cutting the request in flight,
// a failed lookup keeps the last addresses, and a name never resolved stops `run`.
@testable import Admin
@testable import CommandSocket
@testable import Config
import Foundation
import Glibc
import Proxy
import Reactor
@testable import Rollouts
@testable import Runtime
import TestSupport
import XCTest

/// A resolver whose answers the test sets: names map to loopback ports (a real answer's port
/// is the endpoint's; the seam lets two upstreams on one address stand for two addresses).
final class TestResolver: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [String: Result<[ResolvedAddress], ResolveFailure>] = [:]
    private var counts: [String: Int] = [:]

    func answer(_ host: String, ports: [UInt16]) {
        lock.withLock { answers[host] = .success(ports.map { ResolvedAddress(host: "127.0.0.1", port: $0) }) }
    }

    func fail(_ host: String) {
        lock.withLock { answers[host] = .failure(ResolveFailure("test: no such name")) }
    }

    /// Lookups of `host` so far.
    func calls(_ host: String) -> Int { lock.withLock { counts[host, default: 0] } }

    var resolve: Resolver {
        { [self] host, _ in
            lock.withLock {
                counts[host, default: 0] += 1
                return answers[host] ?? .failure(ResolveFailure("test: no such name"))
            }
        }
    }
}

/// An upstream that holds every answer until released: a request stays in flight as long as
/// the test needs.
final class HeldUpstream: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var received = 0
    private var conns: [Int32] = []
    private let gate = DispatchSemaphore(value: 0)

    init() throws {
        (fd, port) = try Sockets.bound(listen: true)
        Thread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue }; close(fd); return }
                lock.withLock { conns.append(c) }
                Thread { [self] in serve(c) }.start()
            }
        }.start()
    }

    var requests: Int { lock.withLock { received } }

    /// Lets one held request be answered.
    func release() { gate.signal() }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        lock.withLock { for c in conns { shutdown(c, Int32(SHUT_RDWR)) } }
        gate.signal()
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while Sockets.headEnd(buffer) == nil {
            let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            buffer.append(contentsOf: chunk[0..<n])
        }
        lock.withLock { received += 1 }
        gate.wait()
        Sockets.send(c, Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Name: held\r\n\r\nheld".utf8))
    }
}

/// A proxy started in process from `config`, with `resolver` for its endpoint names.
final class NameFixture {
    let dir: String
    let configPath: String
    let state: RuntimeState
    let server: ProxyServer
    /// The control socket, when asked for (`control: true`; the config must name one).
    private(set) var control: ControlServer?
    let logged = LogLines()

    /// `dir`: the directory of an earlier fixture (its config and state file), for a restart.
    init(config: (String) -> String, resolver: TestResolver, dir existing: String? = nil, control: Bool = false) throws {
        if let existing {
            dir = existing
        } else {
            dir = try TemporaryDirectory.make(prefix: "sy-names")
        }
        configPath = dir + "/switchyard.json"
        if existing == nil { try Data(config(dir).utf8).write(to: URL(fileURLWithPath: configPath)) }
        let log = logged
        do {
            state = try RuntimeState(loaded: try ConfigLoader.load(path: configPath), source: .file(configPath),
                                     resolver: resolver.resolve, log: { log.append($0) })
            server = try ProxyServer(settings: state.config.proxySettings, snapshot: state.snapshot)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        state.attach(server)
        server.start()
        state.startResolving()
        if control, let settings = state.config.control {
            let c = try ControlServer(settings)
            c.start(ControlEngine(state))
            self.control = c
        }
    }

    /// One control command on a new connection.
    func command(_ line: String) throws -> ControlValue {
        try ControlClient(path: state.config.control!.socket, timeout: 20).command(line)
    }

    /// Stops the proxy; `keepFiles` leaves the config and state file for a restart.
    func stop(keepFiles: Bool = false) {
        control?.stop()
        state.stopResolving()
        server.shutdown()
        if !keepFiles { try? FileManager.default.removeItem(atPath: dir) }
    }

    var port: UInt16 { server.boundAddresses[0].port }
    var version: UInt64 { state.queue.sync { state.version } }
    func http() throws -> HTTPTestClient { try HTTPTestClient(port: port) }
}

final class EndpointNameTests: XCTestCase {
    private var stops: [() -> Void] = []

    override func tearDown() {
        for stop in stops.reversed() { stop() }
        stops.removeAll()
    }

    private func upstream(_ name: String) throws -> TestUpstream {
        let u = try TestUpstream(name: name)
        stops.append { u.stop() }
        return u
    }

    /// One upstream `fn` whose only endpoint is the name `fn.test`, resolved again every 100 ms;
    /// one worker, so one balancer takes every request.
    private func start(_ resolver: TestResolver, extra: String = "", control: Bool = false) throws -> NameFixture {
        let f = try NameFixture(config: { dir in """
            {
              "workers": 1,
              "listeners": [{ "address": "127.0.0.1:0" }],
              "upstreams": { "fn": { "endpoints": ["fn.test:443"], "resolveEveryMs": 100 } },
              "routes": [{ "name": "default", "upstream": "fn" }],
              "control": { "socket": "\(dir)/control.sock", "stateFile": "\(dir)/state.json" }
              \(extra)
            }
            """ }, resolver: resolver, control: control)
        stops.append { f.stop() }
        return f
    }

    func testEveryAddressOfANameIsServedInTurn() throws {
        let a = try upstream("a"), b = try upstream("b")
        let resolver = TestResolver()
        resolver.answer("fn.test", ports: [a.port, b.port])
        let f = try start(resolver, control: true)
        let client = try f.http()
        var served: [String: Int] = [:]
        for _ in 0..<6 { served[try client.get().name ?? "?", default: 0] += 1 }
        XCTAssertEqual(served, ["a": 3, "b": 3])

        // Each address is its own endpoint, named after the name as written.
        let endpoints = f.state.queue.sync { f.state.snapshot.upstreams[0].pool(nil).endpoints }
        XCTAssertEqual(endpoints.map(\.port).sorted(), [a.port, b.port].sorted())
        XCTAssertTrue(endpoints.allSatisfy { $0.hostName == "fn.test" })
        XCTAssertEqual(endpoints.compactMap { f.state.registry.address(for: $0.id) }.sorted(),
                       ["fn.test:443@127.0.0.1:\(a.port)", "fn.test:443@127.0.0.1:\(b.port)"].sorted())
        // `show upstreams` names the endpoint as written, with what it resolved to.
        let row = try XCTUnwrap(f.command("show upstreams")["endpoints"]?.array?.first)
        XCTAssertEqual(row["address"]?.string, "fn.test:443")
        XCTAssertEqual(row["resolved"]?.array?.compactMap(\.string).sorted(),
                       ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"].sorted())
    }

    func testAChangedAnswerSwapsInWithoutCuttingTheRequestInFlight() throws {
        let held = try HeldUpstream()
        stops.append { held.stop() }
        let b = try upstream("b")
        let resolver = TestResolver()
        resolver.answer("fn.test", ports: [held.port])
        let f = try start(resolver)
        XCTAssertEqual(f.version, 1)

        // A request waits at the first address...
        let port = f.port
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var inFlight: Result<TestResponse, any Error>?
        Thread {
            inFlight = Result { try HTTPTestClient(port: port, timeout: 20).get() }
            done.signal()
        }.start()
        XCTAssertTrue(waitUntil(timeout: 10) { held.requests == 1 }, "the request reached the first address")

        // ...while the name moves to another one.
        resolver.answer("fn.test", ports: [b.port])
        XCTAssertTrue(waitUntil(timeout: 10) { f.version == 2 }, "the new answer was published: \(f.logged.all)")
        XCTAssertTrue(f.logged.all.contains { $0.contains("fn.test:443 now resolves to 127.0.0.1:\(b.port)") }, "\(f.logged.all)")
        XCTAssertEqual(try f.http().get().name, "b", "new requests go to the new address")

        held.release()
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        let response = try XCTUnwrap(inFlight).get()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "held", "the request in flight finished where it started")
        XCTAssertEqual(f.version, 2, "an unchanged answer publishes nothing")
    }

    func testAFailedLookupKeepsTheLastAddressesAndIsLoggedOnce() throws {
        let a = try upstream("a")
        let resolver = TestResolver()
        resolver.answer("fn.test", ports: [a.port])
        let f = try start(resolver)
        resolver.fail("fn.test")
        let before = resolver.calls("fn.test")
        XCTAssertTrue(waitUntil(timeout: 10) { resolver.calls("fn.test") >= before + 4 }, "lookups go on")
        XCTAssertEqual(try f.http().get().name, "a", "the last known address still serves")
        XCTAssertEqual(f.version, 1)
        let complaints = f.logged.all.filter { $0.contains("cannot resolve fn.test again") }
        XCTAssertEqual(complaints.count, 1, "rate-limited: \(f.logged.all)")
        XCTAssertTrue(complaints[0].contains("fn.test:443 keeps its last known addresses"), complaints[0])

        resolver.answer("fn.test", ports: [a.port])
        XCTAssertTrue(waitUntil(timeout: 10) { f.logged.all.contains { $0.contains("fn.test:443 resolves again after") } }, "\(f.logged.all)")
        XCTAssertEqual(f.version, 1, "the same addresses again change nothing")
    }

    func testANameThatNeverResolvedStopsTheStart() throws {
        let resolver = TestResolver()
        resolver.fail("fn.test")
        XCTAssertThrowsError(try start(resolver)) { error in
            XCTAssertTrue("\(error)".contains(#"upstreams.fn.endpoints[0]: cannot resolve "fn.test" (test: no such name)"#), "\(error)")
        }
    }

    func testAReloadThatBringsInANameWithoutAddressIsRefused() throws {
        let a = try upstream("a"), c = try upstream("c")
        let resolver = TestResolver()
        resolver.answer("fn.test", ports: [a.port])
        let f = try start(resolver)
        let text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        try Data(text.replacingOccurrences(of: #"["fn.test:443"]"#, with: #"["new.test:80"]"#).utf8)
            .write(to: URL(fileURLWithPath: f.configPath))
        XCTAssertThrowsError(try f.state.queue.sync { try f.state.reload() }) {
            XCTAssertTrue("\($0)".contains(#"reload refused, the running config is unchanged: upstreams.fn.endpoints[0]: cannot resolve "new.test""#), "\($0)")
        }
        XCTAssertEqual(try f.http().get().name, "a")

        resolver.answer("new.test", ports: [c.port])
        _ = try f.state.queue.sync { try f.state.reload() }
        XCTAssertEqual(try f.http().get().name, "c")
        XCTAssertEqual(f.state.queue.sync { f.state.names.addresses.keys.sorted() }, ["new.test:80"], "a name gone is forgotten")
    }

    func testEndpointAddByNameIsSavedAsWrittenAndResolvedAgainAfterARestart() throws {
        let a = try upstream("a"), c = try upstream("c"), d = try upstream("d")
        let resolver = TestResolver()
        resolver.answer("fn.test", ports: [a.port])
        resolver.answer("more.test", ports: [c.port])
        let f = try start(resolver)
        let key = PoolKey(upstream: "fn", color: nil)
        _ = try f.state.queue.sync { try f.state.commit([.endpoint(.add, pool: key, address: "more.test:8080")]) }
        let client = try f.http()
        var served = Set<String>()
        for _ in 0..<4 { served.insert(try client.get().name ?? "?") }
        XCTAssertEqual(served, ["a", "c"])
        let saved = try String(contentsOfFile: f.dir + "/state.json", encoding: .utf8)
        XCTAssertTrue(saved.contains("more.test:8080"), saved)
        XCTAssertFalse(saved.contains("127.0.0.1:\(c.port)"), "the state file keeps the name, not its address: \(saved)")

        // A name that does not resolve is refused, nothing changed.
        XCTAssertThrowsError(try f.state.queue.sync { try f.state.commit([.endpoint(.add, pool: key, address: "nowhere.test:80")]) }) {
            XCTAssertTrue("\($0)".contains(#"cannot resolve "nowhere.test""#), "\($0)")
        }

        // After a restart the saved name is resolved again, to where it points now.
        f.stop(keepFiles: true)
        resolver.answer("more.test", ports: [d.port])
        let again = try NameFixture(config: { _ in "" }, resolver: resolver, dir: f.dir)
        stops.append { again.stop() }
        let client2 = try again.http()
        served = []
        for _ in 0..<4 { served.insert(try client2.get().name ?? "?") }
        XCTAssertEqual(served, ["a", "d"])
    }
}
