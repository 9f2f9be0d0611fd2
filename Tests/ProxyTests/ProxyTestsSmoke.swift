import Testing

@Test func ProxyTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
