import XCTest
@testable import Experiments

final class ExperimentsModuleTests: XCTestCase {
    func testModuleBuilds() {}
}
