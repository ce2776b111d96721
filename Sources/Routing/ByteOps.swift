// Byte comparisons for the request path: exact, ASCII case-folded, prefix and suffix, over raw
// buffers. Never a String; case folding is arithmetic.

/// Lowercases an ASCII letter; every other byte is returned unchanged.
@inline(__always)
func asciiLower(_ byte: UInt8) -> UInt8 {
    byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
}

@inline(__always)
func isDigit(_ byte: UInt8) -> Bool {
    byte &- UInt8(ascii: "0") < 10
}

extension UnsafeRawBufferPointer {
    /// Byte-for-byte equality.
    @inline(__always)
    func bytesEqual(_ other: UnsafeRawBufferPointer) -> Bool {
        count == other.count && sameBytes(self, 0, other)
    }

    /// ASCII case-insensitive equality with `lowercased`, which must already be lowercase.
    @inline(__always)
    func bytesEqualIgnoringCase(lowercased other: UnsafeRawBufferPointer) -> Bool {
        count == other.count && sameBytesIgnoringCase(self, 0, other)
    }

    /// True when the buffer starts with `prefix`, byte for byte.
    @inline(__always)
    func hasBytePrefix(_ prefix: UnsafeRawBufferPointer) -> Bool {
        count >= prefix.count && sameBytes(self, 0, prefix)
    }

    /// True when the buffer ends with `suffix` (already lowercase), ASCII case-insensitively.
    @inline(__always)
    func hasByteSuffixIgnoringCase(lowercased suffix: UnsafeRawBufferPointer) -> Bool {
        count >= suffix.count && sameBytesIgnoringCase(self, count - suffix.count, suffix)
    }

    /// The sub-buffer `[from, to)`.
    @inline(__always)
    func slice(_ from: Int, _ to: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[from..<to])
    }
}

/// `a[start ..< start + b.count] == b`; the caller checked the lengths.
@inline(__always)
private func sameBytes(_ a: UnsafeRawBufferPointer, _ start: Int, _ b: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    while i < b.count {
        if a[start + i] != b[i] { return false }
        i += 1
    }
    return true
}

@inline(__always)
private func sameBytesIgnoringCase(_ a: UnsafeRawBufferPointer, _ start: Int, _ b: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    while i < b.count {
        if asciiLower(a[start + i]) != b[i] { return false }
        i += 1
    }
    return true
}
