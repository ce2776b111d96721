// `switchyard echo`: run the test upstream in the foreground.
import Config
import Dispatch
import Foundation
import Reactor

enum EchoCommand {
    static let usage = """
    usage: switchyard echo --listen ADDR [--name NAME] [--delay-ms N]

    A small test upstream. Answers every request with JSON naming itself and echoing the method,
    path, headers and body it received. `?bytes=N` answers N bytes instead (`&chunked=1` chunked),
    `?status=N` sets the status, `?delay=MS` delays one answer. Upgrade requests get a 101 and
    their bytes echoed back.

    """

    static func main(_ args: [String]) -> Int32 {
        guard let opts = Options(args, valued: ["--listen", "--name", "--delay-ms"], command: "echo") else { return 1 }
        if opts.wantsHelp { print(usage, terminator: ""); return 0 }
        guard let listen = opts.values["--listen"] else {
            CLI.fail("echo: --listen ADDR is required")
            return 1
        }
        let address: SocketAddress
        do throws(AddressError) {
            let parsed = try Address(parsing: listen, allowPortZero: true)
            guard let numeric = parsed.numericHost, let a = SocketAddress(host: numeric, port: parsed.port) else {
                CLI.fail("echo: --listen: '\(listen)' does not name an address to listen on")
                return 1
            }
            address = a
        } catch {
            CLI.fail("echo: --listen: \(error)")
            return 1
        }
        let delay = Int(opts.values["--delay-ms"] ?? "0") ?? -1
        guard (0...EchoServer.maxDelayMs).contains(delay) else {
            CLI.fail("echo: --delay-ms must be a whole number of milliseconds from 0 to \(EchoServer.maxDelayMs)")
            return 1
        }
        let name = opts.values["--name"] ?? "echo"
        do {
            let server = try EchoServer(listen: address, name: name, delayMs: delay)
            FileHandle.standardError.write(Data("switchyard echo '\(name)' listening on \(server.address)\n".utf8))
            server.start()
            Signals.exitOnTerminate()
            Signals.waitForever()
        } catch {
            CLI.fail("echo: cannot listen on \(listen): \(error)")
            return 1
        }
    }
}
