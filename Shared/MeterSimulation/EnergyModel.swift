import COSEM

/// The deterministic consumption model of one simulated meter: a handful of numbers derived
/// from (seed, serial number), and closed-form cumulative energies at any 15-minute boundary.
///
/// The import energy after `n` completed intervals since `epoch` is
/// `offset + n·base + scale·W(n) + g(n−1)`, where `W` is the prefix sum of a shared daily shape
/// and `g(k) ∈ [0, base)` is a hashed per-interval term. Each interval's consumption is then
/// `base + scale·w(slot) + g(k) − g(k−1) ≥ 1`, so the register is strictly increasing while
/// varying per meter and per interval, and nothing is stored per interval. `g` is zero on the
/// last slot of each tariff run, so the per-tariff registers are closed-form too.
struct EnergyModel: Sendable, Hashable {
    /// 2024-01-01T00:00:00Z: intervals before it hold the starting values.
    static let epoch: Int64 = 1_704_067_200
    static let interval: Int64 = 900
    static let slotsPerDay = 96
    /// Tariff 1 (day) covers slots 28..<92 (07:00–23:00 meter time); tariff 2 the rest.
    static let tariff1Slots = 28..<92

    let key: UInt64
    let baseWh: UInt64
    let shapeScale: UInt64
    let pvScale: UInt64
    let tariff1Offset: UInt64
    let tariff2Offset: UInt64
    let exportOffset: UInt64

    init(seed: UInt64, serialNumber: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in serialNumber.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        key = Self.mix(h ^ seed &* 0x9E37_79B9_7F4A_7C15)
        baseWh = 20 + Self.mix(key ^ 1) % 61              // 80–320 W continuous
        shapeScale = 1 + Self.mix(key ^ 2) % 4
        pvScale = Self.mix(key ^ 3) % 3 == 0 ? 0 : 1 + Self.mix(key ^ 4) % 5
        tariff1Offset = 50_000 + Self.mix(key ^ 5) % 3_000_000
        tariff2Offset = 30_000 + Self.mix(key ^ 6) % 2_000_000
        exportOffset = pvScale == 0 ? 0 : Self.mix(key ^ 7) % 500_000
    }

    // MARK: - Hashing

    /// SplitMix64 finaliser: a cheap, well-mixed deterministic hash.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func hash(_ a: Int64, _ salt: UInt64) -> UInt64 { Self.mix(key ^ Self.mix(UInt64(bitPattern: a) ^ salt)) }

    /// The hashed per-interval term; zero before the epoch and on each tariff run's last slot.
    func g(_ k: Int64) -> UInt64 {
        guard k >= 0 else { return 0 }
        let slot = Int(k % Int64(Self.slotsPerDay))
        if slot == Self.tariff1Slots.lowerBound - 1 || slot == Self.tariff1Slots.upperBound - 1 { return 0 }
        return hash(k, 0x6B) % baseWh
    }

    // MARK: - Shared shapes

    /// Relative consumption per hour of a day (a residential double peak).
    static let hourlyShape: [UInt64] = [4, 3, 3, 3, 3, 5, 10, 18, 15, 10, 8, 8, 9, 8, 8, 9, 12, 20, 26, 24, 18, 12, 8, 5]
    /// Relative photovoltaic production per hour of a day.
    static let hourlySolar: [UInt64] = [0, 0, 0, 0, 0, 0, 1, 3, 6, 9, 11, 12, 12, 11, 9, 6, 3, 1, 0, 0, 0, 0, 0, 0]

    struct Prefix: Sendable {
        /// prefix[s] = sum of weights of slots 0..<s; prefix[96] is the day's total.
        let all: [UInt64]
        let tariff1: [UInt64]
        let solar: [UInt64]
    }

    static let prefix: Prefix = {
        var all = [UInt64(0)], t1 = [UInt64(0)], solar = [UInt64(0)]
        for slot in 0..<slotsPerDay {
            let w = hourlyShape[slot / 4]
            all.append(all[slot] + w)
            t1.append(t1[slot] + (tariff1Slots.contains(slot) ? w : 0))
            solar.append(solar[slot] + hourlySolar[slot / 4])
        }
        return Prefix(all: all, tariff1: t1, solar: solar)
    }()

    static func cumulative(_ table: [UInt64], _ n: Int64) -> UInt64 {
        let days = UInt64(n / Int64(slotsPerDay)), slot = Int(n % Int64(slotsPerDay))
        return days * table[slotsPerDay] + table[slot]
    }

    // MARK: - Registers at interval boundaries

    /// Index of the boundary at or before `unixTime` (intervals completed since the epoch), and the fraction into the next.
    static func boundary(_ unixTime: Int64) -> (n: Int64, into: Int64) {
        let t = unixTime - epoch
        guard t > 0 else { return (0, 0) }
        return (t / interval, t % interval)
    }

    func importTotal(_ n: Int64) -> UInt64 { tariff1Offset + tariff2Offset + UInt64(n) * baseWh + shapeScale * Self.cumulative(Self.prefix.all, n) + g(n - 1) }

    func importTariff1(_ n: Int64) -> UInt64 {
        let days = n / Int64(Self.slotsPerDay), slot = Int(n % Int64(Self.slotsPerDay))
        let count = UInt64(days) * UInt64(Self.tariff1Slots.count) + UInt64(min(max(slot - Self.tariff1Slots.lowerBound, 0), Self.tariff1Slots.count))
        let previousSlot = (slot + Self.slotsPerDay - 1) % Self.slotsPerDay
        let partial = n > 0 && Self.tariff1Slots.contains(previousSlot) ? g(n - 1) : 0
        return tariff1Offset + count * baseWh + shapeScale * Self.cumulative(Self.prefix.tariff1, n) + partial
    }

    func importTariff2(_ n: Int64) -> UInt64 { importTotal(n) - importTariff1(n) }

    func exportTotal(_ n: Int64) -> UInt64 { exportOffset + pvScale * Self.cumulative(Self.prefix.solar, n) }

    /// A register's value at any instant: exact at boundaries, linear within an interval (rounded down).
    func value(_ register: EnergyRegister, at unixTime: Int64) -> UInt32 {
        let (n, into) = Self.boundary(unixTime)
        let a = value(register, boundary: n)
        guard into > 0 else { return UInt32(truncatingIfNeeded: a) }
        let b = value(register, boundary: n + 1)
        return UInt32(truncatingIfNeeded: a + (b - a) * UInt64(into) / UInt64(Self.interval))
    }

    func value(_ register: EnergyRegister, boundary n: Int64) -> UInt64 {
        switch register {
        case .importTotal: importTotal(n)
        case .importTariff1: importTariff1(n)
        case .importTariff2: importTariff2(n)
        case .exportTotal: exportTotal(n)
        }
    }
}

/// The energy registers a simulated meter has.
enum EnergyRegister: CaseIterable, Sendable {
    case importTotal, importTariff1, importTariff2, exportTotal

    var obis: OBISCode {
        switch self {
        case .importTotal: OBISCode(1, 0, 1, 8, 0, 255)
        case .importTariff1: OBISCode(1, 0, 1, 8, 1, 255)
        case .importTariff2: OBISCode(1, 0, 1, 8, 2, 255)
        case .exportTotal: OBISCode(1, 0, 2, 8, 0, 255)
        }
    }

    init?(obis: OBISCode) {
        guard let r = Self.allCases.first(where: { $0.obis == obis }) else { return nil }
        self = r
    }
}
