import Testing

@Test func NetstackTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
