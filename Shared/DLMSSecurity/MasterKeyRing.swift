/// The master key a process seals and wraps with, and the earlier ones it still opens with while a
/// rotation is under way (`HES_MASTER_KEY_FILE` and `HES_PREVIOUS_MASTER_KEY_FILES`). Sealed and
/// wrapped secrets name their key's id; ``key(id:)`` finds it.
public struct MasterKeyRing: Sendable, CustomStringConvertible {
    /// Seals and wraps everything new.
    public let current: MasterKey
    /// Only open what they sealed or wrapped earlier.
    public let previous: [MasterKey]

    public init(current: MasterKey, previous: [MasterKey] = []) {
        self.current = current
        self.previous = previous.filter { $0.id != current.id }
    }

    /// The key with `id`, current or previous; `nil` when this process does not hold it.
    public func key(id: String) -> MasterKey? {
        id == current.id ? current : previous.first { $0.id == id }
    }

    /// The ids this process holds, current first (for messages; never the keys).
    public var ids: [String] { [current.id] + previous.map(\.id) }

    public var description: String { "MasterKeyRing(\(ids.joined(separator: ", ")), redacted)" }
}
