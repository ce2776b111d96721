// The one error a test helper throws when the fixture itself cannot be set up or answers
// nonsense: its text is the whole report.
public struct TestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
