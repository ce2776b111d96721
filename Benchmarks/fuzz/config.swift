// libFuzzer target: the config reader (JSON with comments and trailing commas) and every
// section's validation. A file is either accepted or refused with at least one message, each
// naming the file; the parser must never crash or recurse without bound on hostile input.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do throws(ConfigError) {
        let result = try ConfigLoader.parse(bytes: bytes, file: "fuzz.json")
        for warning in result.warnings {
            precondition(warning.hasPrefix("fuzz.json"), "a warning without its file")
        }
    } catch {
        precondition(!error.messages.isEmpty, "refused without a reason")
        for message in error.messages {
            precondition(message.hasPrefix("fuzz.json"), "an error without its file")
        }
    }
    return 0
}
