import COSEM
import NIOCore
import TestSupport
import Testing

/// `ProfileGeneric.rows` shares one storage between the rows of a buffer and reads a decoded
/// row's values and capture time in place. These compare every row, value by value, with what
/// the same buffer gives when each row is made a `DLMSData` first (`ReferenceRows`, the reader
/// before), for decoded and built buffers.
@Suite struct ProfileRowTests {
    static let clock = CaptureObjectDefinition(classID: .clock, logicalName: OBISCode(0, 0, 1, 0, 0, 255), attributeIndex: 2)
    static let energy = CaptureObjectDefinition(classID: .register, logicalName: OBISCode(1, 0, 1, 8, 0, 255), attributeIndex: 2)
    static let status = CaptureObjectDefinition(classID: .data, logicalName: OBISCode(0, 0, 96, 10, 1, 255), attributeIndex: 2)
    static let clockTime = CaptureObjectDefinition(classID: .clock, logicalName: OBISCode(0, 0, 1, 0, 0, 255), attributeIndex: 3)

    /// Clock cells of every kind the reader must tell apart.
    static func clockCell(_ i: Int, using g: inout SeededGenerator) -> DLMSData {
        let time = CosemDateTime(unixTime: 1_732_575_600 + Int64(i) * 900, utcOffsetMinutes: 60)
        switch Int.random(in: 0..<7, using: &g) {
        case 0, 1, 2: return .octetString(dateTime: time)
        case 3: return .dateTime(time)
        case 4: return .null
        case 5: return .octetString(bytes: [UInt8](repeating: 0xFF, count: 11))
        default: return .uint32(UInt32(i))
        }
    }

    static func buffer(rows: Int, columns: [CaptureObjectDefinition], using g: inout SeededGenerator) -> DLMSData {
        .array(DLMSDataList((0..<rows).map { i in
            .structure(DLMSDataList(columns.map { column in
                column == clock ? clockCell(i, using: &g) : .uint32(UInt32.random(in: 0...1_000_000, using: &g))
            }))
        }))
    }

    static let layouts: [[CaptureObjectDefinition]] = [
        [clock, energy, status],
        [energy, status, clock],
        [energy, status],
        [clockTime, energy],
        [clock],
    ]

    @Test(arguments: layouts)
    func rowsReadAsTheReferenceDoes(columns: [CaptureObjectDefinition]) throws {
        var generator = SeededGenerator(seed: UInt64(columns.count) * 31 + 7)
        for rowCount in [0, 1, 96, 300] {
            let built = Self.buffer(rows: rowCount, columns: columns, using: &generator)
            var bytes = ByteBuffer()
            built.encode(into: &bytes)
            let decoded = try DLMSData.decode(from: &bytes)
            let expected = try ReferenceRows.rows(buffer: built, captureObjects: columns)
            for buffer in [built, decoded] {
                let rows = try ProfileGeneric.rows(buffer: buffer, captureObjects: columns)
                #expect(rows.count == expected.count)
                for (row, reference) in zip(rows, expected) {
                    #expect(row.columns == columns)
                    #expect(Array(row.values) == reference.values)
                    #expect(row.captureTime == reference.captureTime)
                    #expect(row == ProfileRow(columns: columns, values: DLMSDataList(reference.values)))
                    #expect(row.hashValue == ProfileRow(columns: columns, values: DLMSDataList(reference.values)).hashValue)
                    #expect(row.value(for: Self.energy.logicalName) == reference.values.indices.first { columns[$0] == Self.energy }.map { reference.values[$0] })
                }
            }
            // Rows from the decoded and the built buffer are the same rows.
            #expect(try ProfileGeneric.rows(buffer: decoded, captureObjects: columns) == ProfileGeneric.rows(buffer: built, captureObjects: columns))
        }
    }

    @Test func aChangedRowLeavesTheOthersAndTheBufferAlone() throws {
        var generator = SeededGenerator(seed: 3)
        let columns = [Self.clock, Self.energy, Self.status]
        let built = Self.buffer(rows: 5, columns: columns, using: &generator)
        var bytes = ByteBuffer()
        built.encode(into: &bytes)
        let decoded = try DLMSData.decode(from: &bytes)
        var rows = try ProfileGeneric.rows(buffer: decoded, captureObjects: columns)
        let before = rows

        rows[1].values[1] = .uint32(42)
        #expect(rows[1].values[1] == .uint32(42))
        #expect(rows[1].values[0] == before[1].values[0])
        #expect(rows[1].captureTime == before[1].captureTime)
        #expect(rows[0] == before[0] && rows[2] == before[2])
        #expect(before[1].values[1] != .uint32(42))
        #expect(try ProfileGeneric.rows(buffer: decoded, captureObjects: columns) == before)

        // New columns find their own clock column.
        rows[2].columns = [Self.energy, Self.clock, Self.status]
        #expect(rows[2].captureTime == before[2].values[1].dateTimeValue)
        rows[2].columns = [Self.energy, Self.status, Self.status]
        #expect(rows[2].captureTime == nil)
        #expect(rows[3] == before[3])
    }

    @Test func fillingNullsOnDecodedRows() throws {
        let columns = [Self.clock, Self.energy]
        let start = CosemDateTime(unixTime: 1_732_575_600, utcOffsetMinutes: 60)
        let built = DLMSData.array([
            .structure([.octetString(dateTime: start), .uint32(7)]),
            .structure([.null, .null]),
            .structure([.null, .uint32(9)]),
        ])
        var bytes = ByteBuffer()
        built.encode(into: &bytes)
        let rows = try ProfileGeneric.rows(buffer: try DLMSData.decode(from: &bytes), captureObjects: columns).fillingNulls(capturePeriod: 900)
        #expect(rows.map { $0.captureTime?.unixTime } == [1_732_575_600, 1_732_576_500, 1_732_577_400])
        #expect(rows.map { $0.values[1] } == [.uint32(7), .uint32(7), .uint32(9)])
    }

    @Test func aRowOfTheWrongShapeIsRefusedWithItsIndex() throws {
        let columns = [Self.clock, Self.energy]
        for buffer: DLMSData in [
            .array([.structure([.null, .uint32(1)]), .structure([.null])]),
            .array([.structure([.null, .uint32(1)]), .uint32(5)]),
        ] {
            var bytes = ByteBuffer()
            buffer.encode(into: &bytes)
            for input in [buffer, try DLMSData.decode(from: &bytes)] {
                #expect {
                    try ProfileGeneric.rows(buffer: input, captureObjects: columns)
                } throws: { error in
                    guard let error = error as? DLMSError else { return false }
                    return error.reason.hasPrefix("buffer row 1 has") && error.reason.hasSuffix("expected 2")
                }
            }
        }
        #expect(throws: DLMSError.invalidValue("")) { try ProfileGeneric.rows(buffer: .uint32(1), captureObjects: columns) }
    }
}

/// Profile rows as `ProfileGeneric.rows` read them before rows shared a storage: every entry
/// made a `DLMSData`, its elements taken, the capture time found by a scan of the columns.
enum ReferenceRows {
    struct Row {
        var values: [DLMSData]
        var captureTime: CosemDateTime?
    }

    static func rows(buffer: DLMSData, captureObjects: [CaptureObjectDefinition]) throws -> [Row] {
        guard let entries = buffer.elements else { throw DLMSError.invalidValue("buffer is an array") }
        return try entries.enumerated().map { index, entry in
            guard let cells = entry.elements, cells.count == captureObjects.count else {
                throw DLMSError.invalidValue("buffer row \(index) has \(entry.elements?.count ?? 0) values, expected \(captureObjects.count)")
            }
            let time = captureObjects.firstIndex { $0.classID == .clock && $0.attributeIndex == 2 }.flatMap { cells[$0].dateTimeValue }
            return Row(values: Array(cells), captureTime: time)
        }
    }
}
