import Testing

@Test func InteropTestsPackageBuilds() {
    #expect(1 + 1 == 2)
}
