import Testing
import TestSupport
@testable import DNS

@Suite struct LRUCacheTests {
    @Test func evictsLeastRecentlyUsed() {
        var cache = LRUCache<Int, String>(capacity: 3)
        cache.set(1, "a"); cache.set(2, "b"); cache.set(3, "c")
        #expect(cache.get(1) == "a")  // 2 is now the oldest
        let evicted = cache.set(4, "d")
        #expect(evicted?.key == 2)
        #expect(cache.peek(2) == nil)
        #expect(cache.count == 3)
        #expect(cache.remove(3) == "c")
        cache.set(5, "e")
        #expect(cache.oldest?.key == 1)
        #expect(cache.removeOldest()?.key == 1)
        #expect(cache.removeOldest()?.key == 4)
        #expect(cache.removeOldest()?.key == 5)
        #expect(cache.removeOldest() == nil)
        cache.set(6, "f")
        #expect(cache.get(6) == "f")
    }

    @Test func staysConsistentUnderRandomOperations() {
        var rng = SeededGenerator(seed: 1)
        var cache = LRUCache<Int, Int>(capacity: 16)
        var model: [Int] = []  // keys, most recent last
        for _ in 0..<20_000 {
            let key = Int.random(in: 0..<40, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                let evicted = cache.set(key, key)
                if let index = model.firstIndex(of: key) { model.remove(at: index) } else if model.count == 16 {
                    #expect(evicted?.key == model.removeFirst())
                }
                model.append(key)
            case 1:
                let value = cache.get(key)
                #expect((value != nil) == model.contains(key))
                if let index = model.firstIndex(of: key) { model.remove(at: index); model.append(key) }
            default:
                #expect((cache.remove(key) != nil) == model.contains(key))
                model.removeAll { $0 == key }
            }
            #expect(cache.count == model.count)
        }
    }
}
