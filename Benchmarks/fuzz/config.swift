// libFuzzer target: the config reader (JSON with comments and trailing commas), every section's
// validation, and the snapshot built from an accepted file. A file is either refused with at
// least one message naming the file, or accepted and then builds: `switchyard check` and
// `run` must never disagree, and a hostile file must not crash or recurse without bound.
@testable import Config

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let loaded: ConfigLoadResult
    do throws(ConfigError) {
        loaded = try ConfigLoader.parse(bytes: bytes, file: "fuzz.json")
    } catch {
        precondition(!error.messages.isEmpty, "refused without a reason")
        for message in error.messages {
            precondition(message.hasPrefix("fuzz.json"), "an error without its file")
        }
        return 0
    }
    for warning in loaded.warnings {
        precondition(warning.hasPrefix("fuzz.json"), "a warning without its file")
    }
    do throws(ConfigError) {
        _ = try SnapshotBuilder.build(loaded.config, version: 1, registry: EndpointRegistry())
    } catch {
        preconditionFailure("accepted by the loader, refused by the snapshot builder: \(error)")
    }
    return 0
}
