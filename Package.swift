// swift-tools-version:6.0
// Switchyard: an HTTP/1.1 reverse proxy and traffic router. No package dependencies: the
// toolchain's modules and the system OpenSSL only.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Release builds: cross-module optimization, and no dynamic exclusivity checks on the data
    // path (measured at ~4% of CPU in swift_beginAccess; debug builds and tests keep them).
    .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Switchyard",
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
    ],
    targets: [
        .target(name: "CLinux"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // A/B arithmetic: distinct-unit sketches, the unit hash, SRM and conversion statistics.
        .target(name: "Experiments", swiftSettings: swiftSettings),
        .target(name: "HTTP1", swiftSettings: swiftSettings),
        .target(name: "Routing", dependencies: ["Experiments"], swiftSettings: swiftSettings),
        .target(name: "Reactor", dependencies: ["CLinux"], swiftSettings: swiftSettings),
        // Cryptography that is not TLS (HMAC for signed cookies).
        .target(name: "Crypto", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        // AWS Signature Version 4: canonical requests, signing keys, credentials providers (those
        // that ask STS, a container endpoint or instance metadata do it with Fetch).
        .target(name: "SigV4", dependencies: ["Crypto", "Fetch", "Routing"], swiftSettings: swiftSettings),
        // SSL_CTX / SSL over non-blocking sockets: listeners and upstreams that speak TLS.
        .target(name: "TLS", dependencies: ["COpenSSL", "CLinux"], swiftSettings: swiftSettings),
        // The control plane's HTTP client: one blocking request at a time, off the data path.
        .target(name: "Fetch", dependencies: ["TLS", "Routing", "Reactor"], swiftSettings: swiftSettings),
        // etcd's v3 API through its JSON gateway: key-value, transactions, leases, watches.
        .target(name: "Etcd", dependencies: ["Fetch", "Routing", "TLS", "Config"], swiftSettings: swiftSettings),
        .target(name: "Proxy", dependencies: ["Routing", "Experiments", "HTTP1", "Reactor", "CLinux", "TLS", "Crypto", "SigV4"], swiftSettings: swiftSettings),
        // The control plane, one module per concern; dependencies point down this list.
        // Config schema, parsing and validation: plain values only.
        .target(name: "Config", dependencies: ["Routing", "TLS", "Experiments"], swiftSettings: swiftSettings),
        // What a running proxy serves: runtime state and overrides, snapshots, the state file,
        // name re-resolution, config watching.
        .target(name: "Runtime", dependencies: ["Config", "Experiments", "Routing", "Proxy", "Crypto", "SigV4", "Reactor", "HTTP1", "TLS", "Fetch"], swiftSettings: swiftSettings),
        // Rollouts and guards: they observe the runtime state and commit changes like an operator.
        .target(name: "Rollouts", dependencies: ["Experiments", "Runtime", "Config", "Routing", "Proxy", "Fetch"], swiftSettings: swiftSettings),
        // Fleet mode: the runtime state shared through etcd, watched by every instance.
        .target(name: "Fleet", dependencies: ["Runtime", "Config", "Etcd", "Proxy", "Reactor"], swiftSettings: swiftSettings),
        // The control socket: protocol, command table, transactions (not named ControlSocket,
        // which Config.ControlSocket, its settings, already names).
        .target(name: "CommandSocket", dependencies: ["Experiments", "Runtime", "Rollouts", "Config", "Routing", "Proxy", "Reactor"], swiftSettings: swiftSettings),
        // The admin listener: /metrics, /healthz, /readyz.
        .target(name: "Admin", dependencies: ["Experiments", "Runtime", "Rollouts", "Config", "Routing", "Proxy", "Reactor", "HTTP1"], swiftSettings: swiftSettings),
        .executableTarget(name: "switchyard", dependencies: ["Config", "Runtime", "Fleet", "Rollouts", "CommandSocket", "Admin", "Proxy", "Routing", "Reactor", "HTTP1", "TLS"], swiftSettings: swiftSettings),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"], swiftSettings: swiftSettings),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Crypto"], swiftSettings: swiftSettings),
        // AWS's published SigV4 vectors (aws-c-auth's tests/aws-signing-test-suite/v4), kept as test data.
        .testTarget(name: "SigV4Tests", dependencies: ["SigV4", "Crypto", "TestSupport"], resources: [.copy("Fixtures")],
                    swiftSettings: swiftSettings),
        // Helpers more than one test target needs: waiting on a condition, loopback and Unix
        // sockets, temporary directories. Glibc and Foundation only, so it moves with no module.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
        // Statistics are checked against scipy (python3) on the same counts.
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "FetchTests", dependencies: ["Fetch", "Routing", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "EtcdTests", dependencies: ["Etcd", "Routing", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CLinux", "TestSupport"], swiftSettings: swiftSettings),
        // In-process tests of the data path: the attempts rules, the upstream client on real sockets.
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "Routing", "HTTP1", "Reactor", "TLS", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ControlTests", dependencies: ["Config", "Runtime", "Rollouts", "CommandSocket", "Admin", "Routing", "Proxy", "Reactor", "Fleet", "Etcd", "TestSupport"], swiftSettings: swiftSettings),
        // The executable's own parts (sd_notify, privilege drop).
        .testTarget(name: "SwitchyardTests", dependencies: ["switchyard", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "EndToEndTests", dependencies: ["Reactor", "CLinux", "COpenSSL", "TestSupport"],
                    // A reference origin the SigV4 tests run with python3 and botocore; the config
                    // schema's checker (python3 and jsonschema).
                    exclude: ["Support/sigv4_origin.py", "Support/config_schema.py"], swiftSettings: swiftSettings),
    ]
)
