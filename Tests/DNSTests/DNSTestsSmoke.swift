import Testing

@Test func DNSTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
