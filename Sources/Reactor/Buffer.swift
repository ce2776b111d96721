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

    public var freeCount: Int { free.count }
}

public struct ByteBuffer {
    public var storage: BufferStorage?
    public var reader: Int = 0
    public var writer: Int = 0

    public init() {}

    @inline(__always) public var readableCount: Int { writer - reader }
    @inline(__always) public var isEmpty: Bool { writer == reader }
    @inline(__always) public var hasStorage: Bool { storage != nil }
    @inline(__always) public var capacity: Int { storage?.capacity ?? 0 }
    @inline(__always) public var writableCount: Int { (storage?.capacity ?? 0) - writer }

    @inline(__always) public var readPointer: UnsafeMutableRawPointer { storage!.base + reader }
    @inline(__always) public var writePointer: UnsafeMutableRawPointer { storage!.base + writer }

    @inline(__always)
    public var readableBytes: UnsafeRawBufferPointer {
        guard let s = storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: s.base + reader, count: writer - reader)
    }

    /// Makes room for at least `minimum` more bytes: takes a block from the pool when there is
    /// none, moves unread bytes to the front when that frees enough, else grows (heads larger than
    /// a pool block are rare and bounded by the configured limits).
    @inline(__always)
    public mutating func reserve(_ minimum: Int, pool: BufferPool) {
        if storage == nil {
            storage = minimum <= pool.blockSize ? pool.take() : BufferStorage(capacity: minimum)
            reader = 0
            writer = 0
            return
        }
        if writableCount >= minimum { return }
        grow(minimum)
    }

    @inline(never)
    mutating func grow(_ minimum: Int) {
        let s = storage!
        let unread = writer - reader
        if reader > 0 && s.capacity - unread >= minimum {
            if unread > 0 { memmove(s.base, s.base + reader, unread) }
            reader = 0
            writer = unread
            return
        }
        let bigger = BufferStorage(capacity: max(s.capacity * 2, unread + minimum))
        if unread > 0 { memcpy(bigger.base, s.base + reader, unread) }
        storage = bigger
        reader = 0
        writer = unread
    }

    /// Moves unread bytes to the front so the whole tail is writable.
    public mutating func compact() {
        guard let s = storage, reader > 0 else { return }
        let unread = writer - reader
        if unread > 0 { memmove(s.base, s.base + reader, unread) }
        reader = 0
        writer = unread
    }

    @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer, pool: BufferPool) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count, pool: pool)
        storage!.base.advanced(by: writer).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
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
        var v = value
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &tmp) { raw -> Int in
            var i = 24
            repeat {
                i -= 1
                raw[i] = UInt8(48 + v % 10)
                v /= 10
            } while v > 0
            let count = 24 - i
            (storage!.base + writer).copyMemory(from: raw.baseAddress! + i, byteCount: count)
            return count
        }
        writer += n
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
    public mutating func releaseIfEmpty(to pool: BufferPool) {
        if reader == writer, let s = storage {
            pool.give(s)
            storage = nil
            reader = 0
            writer = 0
        }
    }

    public mutating func release(to pool: BufferPool) {
        if let s = storage { pool.give(s) }
        storage = nil
        reader = 0
        writer = 0
    }
}
