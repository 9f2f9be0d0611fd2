import Testing

@Test func ApplianceTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
