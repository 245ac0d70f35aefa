import COSEM
import DLMSSecurity
import Foundation

extension MeterConnection {
    /// Ciphering of the association (Green Book 9.2.7.2, security suite 0): the client's system
    /// title, the global keys and what every APDU carries. Keys never print (`DLMSKey`).
    public struct Security: Hashable, Sendable, CustomStringConvertible {
        /// Where the client's first transmit invocation counter comes from.
        public enum InvocationCounterSource: Hashable, Sendable {
            /// A known value (e.g. kept by the caller since the last association).
            case startingAt(UInt32)
            /// Read the meter's counter object (class 1, attribute 2) with a plain association of
            /// `clientSAP` before the ciphered one, and start above it. Default: 0.0.43.1.0.255 by the public client 16.
            case readFromMeter(object: OBISCode, clientSAP: UInt8)

            public static let standard = InvocationCounterSource.readFromMeter(object: OBISCode(0, 0, 43, 1, 0, 255), clientSAP: 16)
        }

        /// The client's system title (calling-AP-title; the IV of what it sends).
        public var systemTitle: SystemTitle
        /// EK, the global unicast encryption key.
        public var blockCipherKey: DLMSKey
        /// AK.
        public var authenticationKey: DLMSKey
        /// Default: authenticated and encrypted.
        public var policy: SecurityPolicy
        /// When set, sent in the ciphered InitiateRequest and used for the association's
        /// service APDUs (ded- ciphering). Default: `nil`, global ciphering.
        public var dedicatedKey: DLMSKey?
        /// Default: `.standard`.
        public var invocationCounter: InvocationCounterSource
        /// Refuse a meter whose responding-AP-title differs. Default: `nil`, accept the meter's title.
        public var expectedServerSystemTitle: SystemTitle?
        /// Keeps the client's transmit counter between associations so it never goes backwards.
        /// Default: `nil`, only the meter's counter object is used.
        public var counterStore: (any InvocationCounterStore)?
        /// The key under which `counterStore` keeps this meter's counter. Default: the endpoint and addresses.
        public var counterKey: String?

        public init(systemTitle: SystemTitle, blockCipherKey: DLMSKey, authenticationKey: DLMSKey,
                    policy: SecurityPolicy = .authenticatedAndEncrypted, dedicatedKey: DLMSKey? = nil,
                    invocationCounter: InvocationCounterSource = .standard, expectedServerSystemTitle: SystemTitle? = nil,
                    counterStore: (any InvocationCounterStore)? = nil, counterKey: String? = nil) {
            self.systemTitle = systemTitle
            self.blockCipherKey = blockCipherKey
            self.authenticationKey = authenticationKey
            self.policy = policy
            self.dedicatedKey = dedicatedKey
            self.invocationCounter = invocationCounter
            self.expectedServerSystemTitle = expectedServerSystemTitle
            self.counterStore = counterStore
            self.counterKey = counterKey
        }

        public static func == (lhs: Security, rhs: Security) -> Bool {
            lhs.systemTitle == rhs.systemTitle && lhs.blockCipherKey == rhs.blockCipherKey && lhs.authenticationKey == rhs.authenticationKey
                && lhs.policy == rhs.policy && lhs.dedicatedKey == rhs.dedicatedKey && lhs.invocationCounter == rhs.invocationCounter
                && lhs.expectedServerSystemTitle == rhs.expectedServerSystemTitle && lhs.counterKey == rhs.counterKey
        }

        /// Hashes the public parts only.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(systemTitle)
            hasher.combine(policy)
            hasher.combine(invocationCounter)
        }

        /// Whether APDUs are ciphered: a policy with neither authentication nor encryption
        /// only lends its keys and system title to HLS.
        public var ciphers: Bool { policy.requiresAuthentication || policy.requiresEncryption }

        public var description: String {
            (ciphers ? "\(policy)" : "no ciphering") + " as \(systemTitle)" + (dedicatedKey == nil ? "" : ", dedicated key")
        }
    }
}

/// Keeps each meter's last used client transmit invocation counter, so a new association never
/// reuses one (a meter refuses a counter it has seen; AES-GCM must never reuse an IV).
public protocol InvocationCounterStore: Sendable {
    /// The last counter used with `key`, if any.
    func lastUsed(key: String) async throws -> UInt32?
    /// Records that counters up to `counter` are used for `key`.
    func recordUsed(_ counter: UInt32, key: String) async throws
}

/// An `InvocationCounterStore` in a JSON file (`{"key": counter}`), for `hesctl` and tests.
/// Writes go to a temporary file that replaces the old one.
public actor FileInvocationCounterStore: InvocationCounterStore {
    public let path: String

    public init(path: String) { self.path = path }

    public func lastUsed(key: String) throws -> UInt32? { try load()[key] }

    public func recordUsed(_ counter: UInt32, key: String) throws {
        var counters = try load()
        guard counters[key].map({ counter > $0 }) ?? true else { return }
        counters[key] = counter
        let data = try JSONEncoder().encode(counters)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func load() throws -> [String: UInt32] {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return [:] }
        do {
            return try JSONDecoder().decode([String: UInt32].self, from: data)
        } catch {
            throw DLMSClientError(code: .invalidArgument, step: .associate, reason: "invocation counter file \(path) is not a JSON object of counters: \(error)")
        }
    }
}
