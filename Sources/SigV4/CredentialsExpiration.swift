// When temporary credentials stop working, read from the ISO 8601 instant STS, the container
// endpoints and EC2 instance metadata send: `2026-12-07T21:00:00Z`, with fractional seconds
// (`2026-12-07T21:00:00.000Z`) or `+00:00` for the `Z`. Anything else is refused rather than
// guessed at: a wrong expiry either signs with dead keys or refreshes in a loop. Pure.

enum CredentialsExpiration {
    /// Seconds since the epoch; nil unless `text` is one of the forms above with a real date
    /// and time (years 1970 ... 9999).
    static func parse(_ text: String) -> Int? {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              let year = digits(b, 0, 4), let month = digits(b, 5, 2), let day = digits(b, 8, 2),
              let hour = digits(b, 11, 2), let minute = digits(b, 14, 2), let second = digits(b, 17, 2) else { return nil }
        var i = 19
        if b[i] == UInt8(ascii: ".") {
            let start = i + 1
            i = start
            while i < b.count, isDigit(b[i]) { i += 1 }
            guard i > start, i - start <= 9 else { return nil }
        }
        let zone = b[i...]
        guard zone.elementsEqual("Z".utf8) || zone.elementsEqual("+00:00".utf8) else { return nil }
        guard year >= 1970, (1...12).contains(month), (1...daysIn(month, year)).contains(day),
              hour < 24, minute < 60, second < 60 else { return nil }
        return daysSinceEpoch(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// The number `count` decimal digits at `at` spell (at most 4, so it cannot overflow).
    private static func digits(_ b: [UInt8], _ at: Int, _ count: Int) -> Int? {
        var n = 0
        for c in b[at..<(at + count)] {
            guard isDigit(c) else { return nil }
            n = n * 10 + Int(c - UInt8(ascii: "0"))
        }
        return n
    }

    private static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the given civil date (proleptic Gregorian calendar).
    private static func daysSinceEpoch(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
