import Testing

@Test func ConfigTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
