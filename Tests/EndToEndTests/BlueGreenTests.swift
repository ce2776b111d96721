// Blue/green upstreams through the real proxy: the live color serves, and a request whose
// preview header names the idle color reaches the idle color.
import XCTest

final class BlueGreenTests: EndToEndTestCase {
    private var proxy: RunningProxy!
    private var controlSocket = ""

    /// Two blue/green upstreams over the same two echoes: `web` (live blue, the default preview
    /// header) under /web, `app` (live green, preview header `X-Preview`) under /app; and a
    /// split under /shop whose stable variant is `web`; a control socket for flips.
    override func setUpWithError() throws {
        try super.setUpWithError()
        let blue = try startEcho(name: "blue")
        let green = try startEcho(name: "green")
        let canary = try startEcho(name: "canary")
        func colors(live: String, preview: String) -> String {
            """
            { "blue": { "endpoints": ["\(blue.endpoint)"] }, "green": { "endpoints": ["\(green.endpoint)"] },
              "live": "\(live)", "preview": \(preview) }
            """
        }
        let routes = [
            #"{ "name": "web", "match": { "pathPrefix": "/web" }, "upstream": "web" }"#,
            #"{ "name": "app", "match": { "pathPrefix": "/app" }, "upstream": "app" }"#,
            """
            { "name": "shop", "match": { "pathPrefix": "/shop" },
              "split": [ { "variant": "stable", "upstream": "web", "weight": 100 },
                         { "variant": "canary", "upstream": "canary", "weight": 0 } ],
              "override": { "trustedSources": ["0.0.0.0/0", "::/0"] } }
            """,
        ]
        controlSocket = try temporaryDirectory() + "/control.sock"
        proxy = try startProxy(json: routingConfig(
            upstreams: [("web", colors(live: "blue", preview: #"{ "trustedSources": ["0.0.0.0/0", "::/0"] }"#)),
                        ("app", colors(live: "green", preview: #"{ "header": "X-Preview", "trustedSources": ["0.0.0.0/0", "::/0"] }"#)),
                        ("canary", pool(canary.endpoint))],
            routes: routes, controlSocket: controlSocket))
    }

    private func served(_ path: String, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        let r = try connect(proxy).exchange(get(path, extra))
        XCTAssertEqual(r.status, 200, file: file, line: line)
        return r.header("X-Echo-Name")
    }

    func testLiveColorServes() throws {
        XCTAssertEqual(try served("/web"), "blue")
        XCTAssertEqual(try served("/app"), "green")
        // Many requests on one connection: never the idle color.
        let client = try connect(proxy)
        for _ in 0..<50 { XCTAssertEqual(try client.exchange(get("/web")).header("X-Echo-Name"), "blue") }
    }

    func testPreviewHeaderReachesTheIdleColor() throws {
        XCTAssertEqual(try served("/web", ["X-Switchyard-Preview: green"]), "green")
        XCTAssertEqual(try served("/web", ["x-switchyard-preview: GREEN"]), "green", "name and value are case-insensitive")
        XCTAssertEqual(try served("/app", ["X-Preview: blue"]), "blue")
        // The preview and the live requests share a connection without mixing.
        let client = try connect(proxy)
        for i in 0..<20 {
            let preview = i % 2 == 0
            let r = try client.exchange(get("/web", preview ? ["X-Switchyard-Preview: green"] : []))
            XCTAssertEqual(r.header("X-Echo-Name"), preview ? "green" : "blue")
        }
    }

    func testPreviewNamingTheLiveColorOrNothingKnownServesLive() throws {
        XCTAssertEqual(try served("/web", ["X-Switchyard-Preview: blue"]), "blue")
        XCTAssertEqual(try served("/web", ["X-Switchyard-Preview: purple"]), "blue")
        XCTAssertEqual(try served("/web", ["X-Switchyard-Preview: "]), "blue")
        // Each upstream listens to its own preview header only.
        XCTAssertEqual(try served("/app", ["X-Switchyard-Preview: blue"]), "green")
        XCTAssertEqual(try served("/web", ["X-Preview: green"]), "blue")
    }

    func testPreviewWorksForASplitVariantOnABlueGreenUpstream() throws {
        XCTAssertEqual(try served("/shop"), "blue")
        XCTAssertEqual(try served("/shop", ["X-Switchyard-Preview: green"]), "green")
        XCTAssertEqual(try served("/shop", ["X-Switchyard-Preview: green", "X-Switchyard-Variant: canary"]), "canary",
                       "the canary is a plain upstream: the preview header does not apply")
    }

    func testAfterAFlipThePreviewReachesTheOldColor() throws {
        let ctl = try ChildProcess.run(switchyard: ["ctl", "--socket", controlSocket, "flip", "web"])
        XCTAssertEqual(ctl.termination, .exited(0), ctl.stdout + ctl.stderr)
        XCTAssertEqual(try served("/web"), "green")
        XCTAssertEqual(try served("/web", ["X-Switchyard-Preview: blue"]), "blue")
        XCTAssertEqual(try served("/web", ["X-Switchyard-Preview: green"]), "green")
        XCTAssertEqual(try served("/app"), "green", "the other upstream keeps its live color")
    }
}
