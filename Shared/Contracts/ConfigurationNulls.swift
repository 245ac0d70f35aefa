import Foundation

extension ConfigurationParser {
    /// Every `null` in a JSON document, as problems at their pointers: the configuration's schema
    /// has no nullable field (an optional field is left out, not set to null), so a null is
    /// refused rather than read as "absent". A byte scan finds whether there is one (cheap for a
    /// 10 MiB document); only then is the document walked for the pointers.
    public static func nullProblems(in data: Data) -> [ConfigurationProblem] {
        guard containsNull(data) else { return [] }
        guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return [] }
        var problems: [ConfigurationProblem] = []
        func walk(_ value: Any, _ path: [String]) {
            guard problems.count < 100 else { return }
            switch value {
            case is NSNull:
                problems.append(ConfigurationProblem(pointer: ConfigurationProblem.pointer(tokens: path), detail: "null is not a value here: leave the field out"))
            case let object as [String: Any]:
                for key in object.keys.sorted() { walk(object[key]!, path + [key]) }
            case let array as [Any]:
                for (index, item) in array.enumerated() { walk(item, path + [String(index)]) }
            default:
                break
            }
        }
        walk(root, [])
        return problems
    }

    /// Whether the JSON text has the literal `null` outside strings.
    static func containsNull(_ data: Data) -> Bool {
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Bool in
            var inString = false
            var escaped = false
            var index = 0
            let count = bytes.count
            while index < count {
                let byte = bytes[index]
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: "n"), index + 3 < count, bytes[index + 1] == UInt8(ascii: "u"),
                          bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l") {
                    return true
                }
                index += 1
            }
            return false
        }
    }
}
