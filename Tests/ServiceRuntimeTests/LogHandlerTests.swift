import Foundation
import Logging
import Testing
@testable import Observability

@Suite
struct LogHandlerTests {
    private func capture(_ makeHandler: (LogSink) -> any LogHandler, _ body: (Logger) -> Void) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: url.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: url) }
        let handle = try FileHandle(forWritingTo: url)
        let sink = LogSink(handle)
        body(Logger(label: "test") { _ in makeHandler(sink) })
        try handle.close()
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test
    func jsonLinesCarryMetadataAndEscapeText() throws {
        let output = try capture({ LineLogHandler(label: "collector", format: .json, sink: $0) }) { logger in
            var logger = logger
            logger[metadataKey: LogMetadataKey.meterID] = "EMH-1"
            logger.info("line one\n\"quoted\"", metadata: [LogMetadataKey.taskID: "t-1", "nested": ["a": "1", "b": ["x", "y"]]])
            logger.debug("below the level")
        }
        let lines = output.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "line one\n\"quoted\"")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "collector")
        #expect(object["meter.id"] as? String == "EMH-1")
        #expect(object["task.id"] as? String == "t-1")
        #expect((object["nested"] as? [String: Any])?["b"] as? [String] == ["x", "y"])
        let timestamp = try #require(object["ts"] as? String)
        #expect(timestamp.count == 24 && timestamp.hasSuffix("Z"), "\(timestamp)")
    }

    @Test
    func textLinesAreReadable() throws {
        let output = try capture({ LineLogHandler(label: "uploader", format: .text, sink: $0) }) { logger in
            logger.warning("ims unreachable", metadata: [LogMetadataKey.meterID: "M1"])
        }
        #expect(output.hasSuffix(" warning uploader: ims unreachable meter.id=M1\n"), "\(output)")
    }

    @Test(arguments: ["text", "TEXT", "json"])
    func logFormatsParse(name: String) {
        #expect(LogFormat(name) != nil)
    }

    @Test
    func unknownLogFormatIsRejected() {
        #expect(LogFormat("xml") == nil)
    }
}
