// A value behind a lock, for what a test's threads (probes, log sinks) write and it reads.
import Foundation

public final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()

    public init(_ value: Value) { stored = value }

    public var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    public func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
