// /status: the StatusReport as one HTML page, server-rendered, no external assets, readable
// without JavaScript; a few lines of inline script fetch it again every 2 s (a meta refresh
// every 10 s without script). Every string from config or traffic goes through `escape`.
import Config
import Foundation
import Runtime

struct StatusHTML {
    let report: StatusReport
    private var out = ""

    init(_ report: StatusReport) { self.report = report }

    static func page(_ report: StatusReport) -> String {
        var page = StatusHTML(report)
        page.render()
        return page.out
    }

    /// HTML-escapes `<>&"'`: safe in text and in quoted attributes.
    static func escape(_ s: String) -> String {
        var r = ""
        r.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "<": r += "&lt;"
            case ">": r += "&gt;"
            case "&": r += "&amp;"
            case "\"": r += "&quot;"
            case "'": r += "&#39;"
            default: r.unicodeScalars.append(c)
            }
        }
        return r
    }

    private mutating func text(_ s: String) { out += Self.escape(s) }

    private mutating func render() {
        out += """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Switchyard status</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <noscript><meta http-equiv="refresh" content="10"></noscript>
            <style>\(Self.style)</style></head><body>
            <h1>Switchyard status</h1>
            """
        out += "<p class=\"meta\">snapshot version \(report.version) · \(RolloutStatus.timestamp(report.now)) · "
        out += "rates over the last \(Int(report.windowSeconds.rounded())) s · <a href=\"/status.json\">json</a></p>\n"
        if report.controlStale { out += "<p class=\"warn\">Rollouts, guards and events are from an earlier look: the state was busy.</p>\n" }
        out += "<h2>Routes</h2>\n"
        for route in report.routes { render(route) }
        renderGuards()
        renderUpstreams()
        renderMismatches()
        renderHooks()
        renderEvents()
        out += "<script>\(Self.script)</script>\n</body></html>\n"
    }

    // MARK: routes

    private mutating func render(_ route: StatusReport.Route) {
        out += "<section class=\"route\"><h3>"
        text(route.name)
        out += "</h3>\n<table><tr><th>variant</th><th>upstream</th><th>weight</th><th>configured vs observed</th>"
        out += "<th>req/s</th><th>errors</th><th>p99</th><th>requests, last minute</th></tr>\n"
        for v in route.variants {
            out += "<tr><td class=\"variant\">"
            text(v.name)
            out += "</td><td>"
            text(v.upstream)
            out += "</td><td class=\"num\">\(v.weight) (\(percent(v.configuredShare)))</td><td>"
            out += shareBars(configured: v.configuredShare, observed: v.observedShare)
            out += " \(v.observedShare.map(percent) ?? "–")</td>"
            out += "<td class=\"num\">\(v.ratePerSecond.map { format($0) } ?? "–")</td>"
            out += "<td class=\"num\">\(v.window.requests > 0 ? percent(v.window.errorRate) : "–")</td>"
            out += "<td class=\"num\">\(v.p99Ms.map(milliseconds) ?? "–")</td>"
            out += "<td>\(sparkline(v.series))</td></tr>\n"
        }
        out += "</table>\n"
        if let rollout = route.rollout { render(rollout) }
        for s in route.shadows {
            out += "<p>Shadow <b>"
            text(s.shadow)
            out += "</b>: \(s.matchRate.map(percent) ?? "–") match of \(s.compared) compared</p>\n"
        }
        if let e = route.experiment {
            out += "<p>Experiment <b>"
            text(e.name)
            out += "</b>: sample ratio p = \(e.srm.map { format($0.pValue, digits: 4) } ?? "–")"
            out += e.srmMismatch ? " <span class=\"bad\">mismatch</span>" : " ok"
            for g in e.goals {
                out += " · goal "
                text(g.name)
                out += ": "
                text(g.verdict?.winner.map { "\($0) wins" } ?? "no winner yet")
            }
            out += "</p>\n"
        }
        out += "</section>\n"
    }

    private mutating func render(_ s: RolloutStatus) {
        out += "<div class=\"rollout\"><p><b>Rollout</b> of <b>"
        text(s.plan.variant)
        out += "</b> (baseline "
        text(s.plan.baseline)
        out += "): <span class=\"state\">\(s.state.rawValue)</span>, step \(s.step + 1) of \(s.plan.steps.count) "
        out += "(steps \(s.plan.steps.map(String.init).joined(separator: ", ")) %), weight \(s.weight) %"
        // 0 while a step waits for its minRequests: nothing is scheduled then.
        if let next = s.secondsToNextStep(now: report.now), next > 0 { out += ", next step in \(format(next)) s" }
        out += "</p>\n"
        if let reason = s.reason {
            out += "<p>"
            text(reason)
            out += "</p>\n"
        }
        var limits = ["minRequests \(s.plan.gates.minRequests)"]
        if let x = s.plan.gates.maxErrorRate { limits.append("maxErrorRate \(ControlValue.format(x))") }
        if let x = s.plan.gates.maxErrorRateRatio { limits.append("maxErrorRateRatio \(ControlValue.format(x))") }
        if let x = s.plan.gates.maxP99Ratio { limits.append("maxP99Ratio \(ControlValue.format(x))") }
        if let x = s.plan.gates.maxSRM { limits.append("maxSRM \(ControlValue.format(x))") }
        out += "<p>Gates: "
        text(limits.joined(separator: ", "))
        out += "</p>\n<ul class=\"gates\">"
        for line in s.gateReadings {
            out += "<li>"
            text(line)
            out += "</li>"
        }
        if s.gateReadings.isEmpty { out += "<li>no reading yet</li>" }
        out += "</ul>\n<details><summary>history (\(s.history.count))</summary>"
        render(s.history.suffix(20).reversed())
        out += "</details></div>\n"
    }

    // MARK: the rest

    private mutating func renderGuards() {
        guard let guards = report.control?.guards["guards"]?.array, !guards.isEmpty else { return }
        out += "<h2>Guarded changes</h2>\n<table><tr><th>id</th><th>change</th><th>state</th><th>until</th><th>limits</th><th>latest reading</th></tr>\n"
        for g in guards.prefix(20) {
            out += "<tr>"
            for cell in [g["id"], g["change"], g["state"], g["deadline"], g["limits"], g["readings"]?.array?.last] {
                out += "<td>"
                text(cell.map(Self.describe) ?? "")
                out += "</td>"
            }
            out += "</tr>\n"
        }
        out += "</table>\n"
    }

    /// An object as `key value, ...`; a scalar as text.
    static func describe(_ v: ControlValue) -> String {
        guard case .object(let members) = v else { return v.plainText }
        return members.map { "\($0.key) \($0.value.plainText)" }.joined(separator: ", ")
    }

    private mutating func renderUpstreams() {
        out += "<h2>Upstreams</h2>\n<table><tr><th>upstream</th><th>color</th><th>endpoint</th><th>health</th>"
        out += "<th>ejections</th><th>in flight</th></tr>\n"
        for u in report.upstreams {
            for e in u.endpoints {
                out += "<tr><td>"
                text(u.name)
                out += "</td><td>"
                text(e.color)
                if let live = u.live { out += live == e.color ? " <b>live</b>" : " idle" }
                out += "</td><td>"
                text(e.address)
                out += "</td><td class=\"\(e.health == "healthy" ? "ok" : "bad")\">"
                text(e.health)
                out += "</td><td class=\"num\">\(e.ejections)</td><td class=\"num\">\(e.inFlight)</td></tr>\n"
            }
        }
        out += "</table>\n"
    }

    private mutating func renderMismatches() {
        guard !report.mismatches.isEmpty else { return }
        out += "<h2>Latest shadow mismatches</h2>\n<table><tr><th>route</th><th>shadow</th><th>result</th><th>request</th>"
        out += "<th>primary</th><th>shadow</th></tr>\n"
        for e in report.mismatches.prefix(20) {
            out += "<tr>"
            for cell in [e.route, e.shadow, e.m.result.name, "\(e.m.method) \(e.m.path)"] {
                out += "<td>"
                text(cell)
                out += "</td>"
            }
            out += "<td class=\"num\">\(e.m.primaryStatus)</td><td class=\"num\">\(e.m.shadowStatus)</td></tr>\n"
        }
        out += "</table>\n"
    }

    /// Hook deliveries by event: what other systems were told, and what is still being retried.
    private mutating func renderHooks() {
        guard !report.hooks.isEmpty else { return }
        let results = ["delivered", "retried", "failed", "dropped"]
        out += "<h2>Hooks</h2>\n<table><tr><th>event</th>" + results.map { "<th>\($0)</th>" }.joined() + "</tr>\n"
        for (event, counts) in report.hooks.sorted(by: { $0.key < $1.key }) {
            out += "<tr><td>"
            text(event)
            out += "</td>" + results.map { "<td class=\"num\">\(counts[$0] ?? 0)</td>" }.joined() + "</tr>\n"
        }
        out += "</table>\n"
    }

    private mutating func renderEvents() {
        guard let events = report.control?.events, !events.isEmpty else { return }
        out += "<h2>Recent events</h2>\n"
        render(events.prefix(30))
    }

    /// Events as rows: when, what kind, in words.
    private mutating func render(_ events: some Sequence<RolloutEvent>) {
        out += "<table>"
        for e in events {
            out += "<tr><td>\(RolloutStatus.timestamp(e.at))</td><td>"
            text(e.kind)
            out += "</td><td>"
            text(e.detail)
            out += "</td></tr>\n"
        }
        out += "</table>\n"
    }
}
