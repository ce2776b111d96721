// A credential the data path reads on each use and the control plane replaces when it renews
// it (Runtime's CredentialRefresher), without a config reload or a new snapshot. One lock
// taken per read, and a reader always gets one whole value (a key never paired with the token
// of another): a signed GET costs 72,094 instructions against 71,859 with the credentials
// fixed in UpstreamSigning (+0.3%, Benchmarks/instructions.sh).
import Synchronization

public final class LiveCredential<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    public init(_ value: Value) { self.value = Mutex(value) }

    /// The value to use now.
    @inline(__always)
    public var current: Value { value.withLock { $0 } }

    /// Every read after this returns `next`.
    public func replace(_ next: Value) { value.withLock { $0 = next } }
}
