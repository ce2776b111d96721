// The status page's small pieces: numbers in words, inline SVG bars and sparklines, the style
// sheet and the refresh script. Numbers only: nothing here takes text from config or traffic.
import Foundation

extension StatusHTML {
    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
        h1{font-size:1.5em;margin:0}h2{margin-top:1.5em;border-bottom:1px solid #ccc}h3{margin:.8em 0 .3em}
        table{border-collapse:collapse;margin:.3em 0}td,th{padding:.2em .6em;border-bottom:1px solid #e4e4e4;text-align:left}
        th{font-weight:600;background:#f0f0f0}.num{text-align:right;font-variant-numeric:tabular-nums}
        .meta{color:#666}.warn,.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b}
        .route{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.2em 1em .6em;margin:.8em 0}
        .rollout{border-left:4px solid #3367d6;padding-left:.8em}.state{font-weight:600;color:#3367d6}
        .gates{margin:.2em 0;font-family:ui-monospace,monospace}svg{vertical-align:middle}
        """

    /// Fetches the page again every 2 s and swaps its body in; a failed fetch keeps the last one.
    static let script = """
        setInterval(function(){fetch('/status',{cache:'no-store'}).then(function(r){return r.ok?r.text():null})
        .then(function(t){if(t){document.body.innerHTML=new DOMParser().parseFromString(t,'text/html').body.innerHTML}})
        .catch(function(){})},2000);
        """

    func percent(_ share: Double) -> String { format(share * 100) + " %" }

    func milliseconds(_ ms: Double) -> String { ms.isFinite ? format(ms) + " ms" : "> 30 s" }

    /// Up to `digits` significant digits, no exponent for everyday numbers.
    func format(_ x: Double, digits: Int = 3) -> String {
        guard x.isFinite else { return "–" }
        if x == 0 { return "0" }
        // Whole numbers without an exponent while they fit an Int exactly (the values may come
        // from a state file or a fleet's store: 1e300 must print, not trap).
        if abs(x) >= 1000 { return abs(x) < 1e15 ? String(Int(x.rounded())) : String(format: "%.3g", x) }
        return String(format: "%.\(digits)g", x)
    }

    /// Two bars, the weight's share above the observed share, 100 px for all of the route.
    func shareBars(configured: Double, observed: Double?) -> String {
        func width(_ x: Double) -> Int { Int((min(max(x, 0), 1) * 100).rounded()) }
        var svg = "<svg width=\"102\" height=\"14\" role=\"img\" aria-label=\"configured and observed share\">"
        svg += "<rect x=\"1\" y=\"1\" width=\"100\" height=\"12\" fill=\"#eee\"/>"
        svg += "<rect x=\"1\" y=\"1\" width=\"\(width(configured))\" height=\"5\" fill=\"#9aa0a6\"/>"
        if let observed { svg += "<rect x=\"1\" y=\"7\" width=\"\(width(observed))\" height=\"6\" fill=\"#3367d6\"/>" }
        return svg + "</svg>"
    }

    /// One bar per sampling interval, scaled to the largest.
    func sparkline(_ points: [UInt64]) -> String {
        guard !points.isEmpty else { return "–" }
        let top = max(points.max() ?? 1, 1)
        let barWidth = 6
        var svg = "<svg width=\"\(points.count * barWidth)\" height=\"20\" role=\"img\" aria-label=\"requests per interval\">"
        for (i, p) in points.enumerated() {
            let h = max(Int((Double(p) / Double(top) * 20).rounded()), p > 0 ? 1 : 0)
            svg += "<rect x=\"\(i * barWidth)\" y=\"\(20 - h)\" width=\"\(barWidth - 1)\" height=\"\(h)\" fill=\"#3367d6\"/>"
        }
        return svg + "</svg>"
    }
}
