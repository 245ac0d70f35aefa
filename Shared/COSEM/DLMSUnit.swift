import NIOCore

/// A physical unit as enumerated in the Blue Book (§4.3.2, `unit` of scal_unit_type).
///
/// Unknown codes are kept as-is so they round-trip; `symbol` and `quantity` are nil for them.
public struct DLMSUnit: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    /// The unit symbol, e.g. `Wh`, `m³/h`.
    public var symbol: String? { Self.table[rawValue]?.symbol }
    /// The quantity the unit measures, e.g. "active energy".
    public var quantity: String? { Self.table[rawValue]?.quantity }

    public var description: String { symbol ?? "unit(\(rawValue))" }

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt8.self) }
    public func encode(to encoder: any Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) }

    public static let year = DLMSUnit(1)
    public static let month = DLMSUnit(2)
    public static let week = DLMSUnit(3)
    public static let day = DLMSUnit(4)
    public static let hour = DLMSUnit(5)
    public static let minute = DLMSUnit(6)
    public static let second = DLMSUnit(7)
    public static let degree = DLMSUnit(8)
    public static let degreeCelsius = DLMSUnit(9)
    public static let currency = DLMSUnit(10)
    public static let cubicMetre = DLMSUnit(13)
    public static let cubicMetrePerHour = DLMSUnit(15)
    public static let litre = DLMSUnit(19)
    public static let watt = DLMSUnit(27)
    public static let voltAmpere = DLMSUnit(28)
    public static let voltAmpereReactive = DLMSUnit(29)
    public static let wattHour = DLMSUnit(30)
    public static let voltAmpereHour = DLMSUnit(31)
    public static let varHour = DLMSUnit(32)
    public static let ampere = DLMSUnit(33)
    public static let volt = DLMSUnit(35)
    public static let hertz = DLMSUnit(44)
    public static let percent = DLMSUnit(56)
    public static let ampereHour = DLMSUnit(57)
    public static let other = DLMSUnit(254)
    /// No unit; the value is a count.
    public static let count = DLMSUnit(255)

    private static let table: [UInt8: (symbol: String, quantity: String)] = {
        let entries: [(UInt8, String, String)] = [
            (1, "a", "time (year)"), (2, "mo", "time (month)"), (3, "wk", "time (week)"), (4, "d", "time (day)"),
            (5, "h", "time (hour)"), (6, "min", "time (minute)"), (7, "s", "time (second)"),
            (8, "°", "phase angle"), (9, "°C", "temperature"), (10, "currency", "local currency"),
            (11, "m", "length"), (12, "m/s", "speed"), (13, "m³", "volume"), (14, "m³", "corrected volume"),
            (15, "m³/h", "volume flux"), (16, "m³/h", "corrected volume flux"), (17, "m³/d", "volume flux"),
            (18, "m³/d", "corrected volume flux"), (19, "l", "volume"), (20, "kg", "mass"), (21, "N", "force"),
            (22, "Nm", "energy"), (23, "Pa", "pressure"), (24, "bar", "pressure"), (25, "J", "energy"),
            (26, "J/h", "thermal power"), (27, "W", "active power"), (28, "VA", "apparent power"),
            (29, "var", "reactive power"), (30, "Wh", "active energy"), (31, "VAh", "apparent energy"),
            (32, "varh", "reactive energy"), (33, "A", "current"), (34, "C", "electrical charge"),
            (35, "V", "voltage"), (36, "V/m", "electric field strength"), (37, "F", "capacitance"),
            (38, "Ω", "resistance"), (39, "Ωm²/m", "resistivity"), (40, "Wb", "magnetic flux"),
            (41, "T", "magnetic flux density"), (42, "A/m", "magnetic field strength"), (43, "H", "inductance"),
            (44, "Hz", "frequency"), (45, "1/(Wh)", "active energy meter constant"),
            (46, "1/(varh)", "reactive energy meter constant"), (47, "1/(VAh)", "apparent energy meter constant"),
            (48, "V²h", "volt-squared hour"), (49, "A²h", "ampere-squared hour"), (50, "kg/s", "mass flux"),
            (51, "S", "conductance"), (52, "K", "temperature"), (53, "1/(V²h)", "volt-squared hour meter constant"),
            (54, "1/(A²h)", "ampere-squared hour meter constant"), (55, "1/m³", "volume meter constant"),
            (56, "%", "percentage"), (57, "Ah", "ampere-hour"), (60, "Wh/m³", "energy per volume"),
            (61, "J/m³", "calorific value, Wobbe"), (62, "Mol %", "molar fraction"), (63, "g/m³", "mass density"),
            (64, "Pa s", "dynamic viscosity"), (65, "J/kg", "specific energy"), (66, "g/cm²", "pressure"),
            (67, "atm", "pressure"), (70, "dBm", "signal strength"), (71, "dBµV", "signal strength"),
            (72, "dB", "logarithmic unit"),
            (128, "in", "length"), (129, "ft", "length"), (130, "lb", "mass"), (131, "°F", "temperature"),
            (132, "°R", "temperature"), (133, "sq in", "area"), (134, "sq ft", "area"), (135, "ac", "area"),
            (136, "cu in", "volume"), (137, "cu ft", "volume"), (138, "ac-ft", "volume"),
            (139, "gal (imp)", "volume"), (140, "gal (US)", "volume"), (141, "lbf", "force"),
            (142, "psi", "pressure"), (143, "lb/cu ft", "density"), (144, "lb/(ft s)", "dynamic viscosity"),
            (145, "sq ft/s", "kinematic viscosity"), (146, "Btu", "energy"), (147, "thm (EU)", "energy"),
            (148, "thm (US)", "energy"), (149, "Btu/lb", "specific energy"), (150, "Btu/cu ft", "energy per volume"),
            (151, "cu ft", "volume"), (152, "ft/s", "speed"), (153, "cu ft/s", "volume flux"),
            (154, "cu ft/min", "volume flux"), (155, "cu ft/h", "volume flux"), (156, "cu ft/d", "volume flux"),
            (157, "ac-ft/s", "volume flux"), (158, "ac-ft/min", "volume flux"), (159, "ac-ft/h", "volume flux"),
            (160, "ac-ft/d", "volume flux"), (161, "imp gal", "volume"), (162, "imp gal/s", "volume flux"),
            (163, "imp gal/min", "volume flux"), (164, "imp gal/h", "volume flux"), (165, "imp gal/d", "volume flux"),
            (166, "US gal", "volume"), (167, "US gal/s", "volume flux"), (168, "US gal/min", "volume flux"),
            (169, "US gal/h", "volume flux"), (170, "US gal/d", "volume flux"), (171, "Btu/s", "power"),
            (172, "Btu/min", "power"), (173, "Btu/h", "power"), (174, "Btu/d", "power"),
            (254, "other", "other unit"), (255, "", "count (no unit)"),
        ]
        var table: [UInt8: (symbol: String, quantity: String)] = [:]
        for (code, symbol, quantity) in entries { table[code] = (symbol, quantity) }
        return table
    }()
}

/// The scaler and unit of a register value (Blue Book §4.3.2, `scal_unit_type`):
/// the physical value is `raw × 10^scaler` in `unit`.
public struct ScalerUnit: Hashable, Sendable, Codable, CustomStringConvertible {
    public var scaler: Int8
    public var unit: DLMSUnit

    public init(scaler: Int8, unit: DLMSUnit) {
        self.scaler = scaler
        self.unit = unit
    }

    /// Applies the scaler to a raw integer value.
    public func scale(_ raw: Double) -> Double {
        // One multiplication or division by an exact power of ten: repeated `/= 10` accumulates
        // rounding (5985744 × 10^-3 would print as 5985.744000000001).
        var power = 1.0
        for _ in 0..<Int(scaler.magnitude) { power *= 10 }
        return scaler >= 0 ? raw * power : raw / power
    }

    public var description: String { "×10^\(scaler) \(unit)" }
}
