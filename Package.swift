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
        .target(name: "HTTP1", swiftSettings: swiftSettings),
        .target(name: "Routing", swiftSettings: swiftSettings),
        .target(name: "Reactor", dependencies: ["CLinux"], swiftSettings: swiftSettings),
        // Cryptography that is not TLS (HMAC for signed cookies).
        .target(name: "Crypto", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        // SSL_CTX / SSL over non-blocking sockets: listeners and upstreams that speak TLS.
        .target(name: "TLS", dependencies: ["COpenSSL", "CLinux"], swiftSettings: swiftSettings),
        .target(name: "Proxy", dependencies: ["Routing", "HTTP1", "Reactor", "CLinux", "TLS"], swiftSettings: swiftSettings),
        .target(name: "Control", dependencies: ["Routing", "Proxy", "Crypto", "Reactor", "HTTP1", "TLS"], swiftSettings: swiftSettings),
        .executableTarget(name: "switchyard", dependencies: ["Control", "Proxy", "Routing", "Reactor", "HTTP1", "TLS"], swiftSettings: swiftSettings),
        // Helpers more than one test target needs: waiting on a condition, loopback and Unix
        // sockets, temporary directories. Glibc and Foundation only, so it moves with no module.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"], swiftSettings: swiftSettings),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Crypto"], swiftSettings: swiftSettings),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CLinux", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ControlTests", dependencies: ["Control", "Routing", "Proxy", "Reactor", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "EndToEndTests", dependencies: ["Reactor", "CLinux", "COpenSSL", "TestSupport"], swiftSettings: swiftSettings),
    ]
)
