/// The names of the users the stress tool creates: `hub-stress-test-N`, N counting from 1.
///
/// A new run continues after the highest index already on the hub, so runs with `--keep`
/// build on each other and never collide with users a previous run left behind.
public enum StressNames {
    /// The prefix every stress-test user name starts with (the original tool's).
    public static let prefix = "hub-stress-test"

    /// The name of the user with `index`.
    public static func name(_ index: Int) -> String { "\(prefix)-\(index)" }

    /// The index in `name`, or `nil` when `name` is not exactly `hub-stress-test-N` (N ≥ 1).
    public static func index(of name: String) -> Int? {
        let lead = prefix + "-"
        guard name.hasPrefix(lead) else { return nil }
        let digits = name.dropFirst(lead.count)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.first != "0",
            let index = Int(digits)
        else { return nil }
        return index
    }

    /// Whether `name` belongs to the stress tool (`purge` deletes these).
    public static func isStressUser(_ name: String) -> Bool { name.hasPrefix(prefix + "-") }

    /// The first index a new run uses: one past the highest index among `existing`.
    public static func nextIndex(after existing: some Sequence<String>) -> Int {
        (existing.compactMap(index(of:)).max() ?? 0) + 1
    }

    /// `count` new names after `existing`, cut into batches of at most `batchSize`.
    public static func batches(count: Int, batchSize: Int, after existing: some Sequence<String>) -> [[String]] {
        let first = nextIndex(after: existing)
        let names = (first..<(first + max(0, count))).map(name)
        return chunks(names, size: batchSize)
    }
}

/// `items` cut into consecutive runs of at most `size` (at least 1).
func chunks<T>(_ items: [T], size: Int) -> [[T]] {
    let size = max(1, size)
    return stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
}
