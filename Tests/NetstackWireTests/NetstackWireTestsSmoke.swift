import Testing

@Test func NetstackWireTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
