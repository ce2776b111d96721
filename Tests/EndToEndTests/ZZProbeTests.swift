import XCTest
import Glibc

final class ZZProbeTests: EndToEndTestCase {
    func cpu(_ pid: pid_t) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return -1 }
        let f = s.split(separator: ")").last!.split(separator: " ")
        return (Double(f[11])! + Double(f[12])!) / 100
    }
    func testProbe() throws {
        let stable = try startEcho(name: "stable")
        let proxy = try startProxy(json: routingConfig(upstreams: [("stable", pool(stable.endpoint))], routes: ["{\"name\":\"r\",\"upstream\":\"stable\"}"]))
        var ru = rusage(); getrusage(RUSAGE_SELF.rawValue, &ru)
        let c0 = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec)/1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec)/1e6
        let t0 = Date()
        _ = try sendMany(proxy, count: 20000, connections: 4) { _ in get("/?bytes=0") }
        getrusage(RUSAGE_SELF.rawValue, &ru)
        let c1 = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec)/1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec)/1e6
        print("PROBE wall \(Date().timeIntervalSince(t0)) self \(c1-c0) proxy \(cpu(proxy.process.pid)) echo \(cpu(stable.process.pid))")
    }
}
