// Byte buffers for the data path: a struct of indices over one malloc'd block, with blocks
// pooled per event loop and handed back when a connection goes idle.
import Glibc

public final class BufferStorage {
    public let base: UnsafeMutableRawPointer
    public let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        self.base = malloc(capacity)!
    }

    deinit { free(base) }
}

/// A per-loop free list of equally sized blocks. Not thread-safe: one per event loop.
public final class BufferPool {
    public let blockSize: Int
    private var free: [BufferStorage] = []
    private let maxFree: Int

    public init(blockSize: Int, maxFree: Int = 256) {
        self.blockSize = blockSize
        self.maxFree = maxFree
    }

    @inline(__always)
    public func take() -> BufferStorage {
        if let s = free.popLast() { return s }
        return BufferStorage(capacity: blockSize)
    }

    @inline(__always)
    public func give(_ s: BufferStorage) {
        if s.capacity == blockSize && free.count < maxFree { free.append(s) }
    }
}

/// Hot accessors read the cached `base` and `capacity` rather than the storage object, so they
/// cost no retain/release (the storage reference is only touched when blocks change hands).
public struct ByteBuffer {
    public private(set) var storage: BufferStorage?
    public private(set) var base: UnsafeMutableRawPointer?
    public private(set) var capacity: Int = 0
    public var reader: Int = 0
    public var writer: Int = 0

    public init() {}

    @inline(__always) public var readableCount: Int { writer - reader }
    @inline(__always) public var isEmpty: Bool { writer == reader }
    @inline(__always) public var hasStorage: Bool { base != nil }
    @inline(__always) public var writableCount: Int { capacity - writer }

    @inline(__always) public var readPointer: UnsafeMutableRawPointer { base! + reader }
    @inline(__always) public var writePointer: UnsafeMutableRawPointer { base! + writer }

    @inline(__always)
    public var readableBytes: UnsafeRawBufferPointer {
        guard let b = base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: b + reader, count: writer - reader)
    }

    @inline(__always)
    private mutating func adopt(_ s: BufferStorage?) {
        storage = s
        base = s?.base
        capacity = s?.capacity ?? 0
    }

    /// Makes room for at least `minimum` more bytes: takes a block from the pool when there is
    /// none, moves unread bytes to the front when that frees enough, else grows (heads larger than
    /// a pool block are rare and bounded by the configured limits).
    @inline(__always)
    public mutating func reserve(_ minimum: Int, pool: BufferPool) {
        if base == nil {
            adopt(minimum <= pool.blockSize ? pool.take() : BufferStorage(capacity: minimum))
            reader = 0
            writer = 0
            return
        }
        if capacity - writer >= minimum { return }
        grow(minimum)
    }

    @inline(never)
    mutating func grow(_ minimum: Int) {
        let b = base!
        let unread = writer - reader
        if reader > 0 && capacity - unread >= minimum {
            if unread > 0 { memmove(b, b + reader, unread) }
            reader = 0
            writer = unread
            return
        }
        let bigger = BufferStorage(capacity: max(capacity * 2, unread + minimum))
        if unread > 0 { memcpy(bigger.base, b + reader, unread) }
        adopt(bigger)
        reader = 0
        writer = unread
    }

    /// Room to read a socket into without growing: a block of at least `capacity` bytes is
    /// taken when there is none (or it is smaller), and unread bytes move to the front when the
    /// tail is full. 0 means the block is full of bytes nobody has taken yet.
    @inline(__always)
    public mutating func roomToRead(capacity minimum: Int, pool: BufferPool) -> Int {
        if base == nil || capacity < minimum { reserve(minimum - readableCount, pool: pool) }
        if writer == capacity && reader > 0 { compact() }
        return capacity - writer
    }

    /// Moves unread bytes to the front so the whole tail is writable.
    public mutating func compact() {
        guard let b = base, reader > 0 else { return }
        let unread = writer - reader
        if unread > 0 { memmove(b, b + reader, unread) }
        reader = 0
        writer = unread
    }

    @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer, pool: BufferPool) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count, pool: pool)
        (base! + writer).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        writer += bytes.count
    }

    @inline(__always)
    public mutating func append(_ bytes: [UInt8], pool: BufferPool) {
        bytes.withUnsafeBytes { append($0, pool: pool) }
    }

    @inline(__always)
    public mutating func append(_ s: StaticString, pool: BufferPool) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), pool: pool)
    }

    /// Appends a non-negative decimal number.
    public mutating func appendDecimal(_ value: Int, pool: BufferPool) {
        reserve(20, pool: pool)
        var digits = 1
        var t = value / 10
        while t > 0 {
            digits += 1
            t /= 10
        }
        var v = value
        let p = base! + writer
        var i = digits
        repeat {
            i -= 1
            p.storeBytes(of: UInt8(48 + v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
        } while i > 0
        writer += digits
    }

    @inline(__always)
    public mutating func consume(_ n: Int) {
        reader += n
        if reader == writer {
            reader = 0
            writer = 0
        }
    }

    /// Returns the block to the pool when nothing is left to read.
    @inline(__always)
    /// Cuts `count` readable bytes out from `offset` (relative to the reader): the bytes after
    /// them move down. For the rare bytes that must not be forwarded (chunk extensions).
    public mutating func remove(from offset: Int, count: Int) {
        guard count > 0, let b = base else { return }
        let start = reader + offset
        let tail = writer - (start + count)
        if tail > 0 { memmove(b + start, b + start + count, tail) }
        writer -= count
    }

    public mutating func releaseIfEmpty(to pool: BufferPool) {
        if reader == writer && base != nil { release(to: pool) }
    }

    public mutating func release(to pool: BufferPool) {
        if let s = storage { pool.give(s) }
        adopt(nil)
        reader = 0
        writer = 0
    }
}
