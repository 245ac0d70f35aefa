/// Splits a migration file into single statements.
///
/// PostgresNIO speaks only the extended query protocol, which runs one statement per query, so a
/// multi-statement file has to be cut at its top-level semicolons. The scanner follows the
/// PostgreSQL lexer (PostgreSQL manual §4.1) closely enough for DDL: it skips semicolons inside
/// `'strings'` (with `''` escapes, and backslash escapes in `E'…'` strings), `"identifiers"`,
/// `$tag$ dollar-quoted bodies $tag$`, `-- line comments` and nested `/* block comments */`.
enum SQLStatementSplitter {
    /// The statements of `sql`, trimmed, without their terminating semicolons; statements that
    /// are only whitespace and comments are dropped.
    ///
    /// - Throws: ``PersistenceError/Code/invalidMigration`` when a quote, dollar quote or
    ///   comment is not closed.
    static func split(_ sql: String) throws(PersistenceError) -> [String] {
        let bytes = Array(sql.utf8)
        var statements: [String] = []
        var start = 0
        var hasCode = false  // whether the current statement has anything besides comments
        var i = 0

        func finish(at end: Int) {
            if hasCode {
                let text = String(decoding: bytes[start..<end], as: UTF8.self)
                statements.append(Self.trim(text))
            }
            start = end + 1
            hasCode = false
        }

        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case UInt8(ascii: ";"):
                finish(at: i)
                i += 1

            case UInt8(ascii: "-") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "-"):
                while i < bytes.count && bytes[i] != UInt8(ascii: "\n") { i += 1 }

            case UInt8(ascii: "/") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "*"):
                var depth = 1
                i += 2
                while depth > 0 {
                    guard i + 1 < bytes.count else { throw .invalidMigration("unterminated /* comment */") }
                    if bytes[i] == UInt8(ascii: "*") && bytes[i + 1] == UInt8(ascii: "/") {
                        depth -= 1
                        i += 2
                    } else if bytes[i] == UInt8(ascii: "/") && bytes[i + 1] == UInt8(ascii: "*") {
                        depth += 1
                        i += 2
                    } else {
                        i += 1
                    }
                }

            case UInt8(ascii: "'"):
                hasCode = true
                let escapes = i > 0 && (bytes[i - 1] == UInt8(ascii: "E") || bytes[i - 1] == UInt8(ascii: "e"))
                    && (i < 2 || !Self.isIdentifierByte(bytes[i - 2]))
                i += 1
                while true {
                    guard i < bytes.count else { throw .invalidMigration("unterminated 'string literal'") }
                    if escapes && bytes[i] == UInt8(ascii: "\\") {
                        i += 2
                    } else if bytes[i] == UInt8(ascii: "'") {
                        if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "'") {
                            i += 2
                        } else {
                            i += 1
                            break
                        }
                    } else {
                        i += 1
                    }
                }

            case UInt8(ascii: "\""):
                hasCode = true
                i += 1
                while true {
                    guard i < bytes.count else { throw .invalidMigration("unterminated \"quoted identifier\"") }
                    if bytes[i] == UInt8(ascii: "\"") {
                        if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                            i += 2
                        } else {
                            i += 1
                            break
                        }
                    } else {
                        i += 1
                    }
                }

            case UInt8(ascii: "$") where i == 0 || !Self.isIdentifierByte(bytes[i - 1]):
                hasCode = true
                // A dollar quote is $tag$ where tag is empty or an identifier not starting with a digit.
                var j = i + 1
                while j < bytes.count && Self.isIdentifierByte(bytes[j]) && !(j == i + 1 && Self.isDigit(bytes[j])) {
                    j += 1
                }
                guard j < bytes.count && bytes[j] == UInt8(ascii: "$") else {
                    i += 1  // a positional parameter ($1) or an operator: ordinary code
                    continue
                }
                let tag = Array(bytes[i...j])
                i = j + 1
                while true {
                    guard i + tag.count <= bytes.count else {
                        throw .invalidMigration("unterminated dollar-quoted string \(String(decoding: tag, as: UTF8.self))")
                    }
                    if bytes[i] == UInt8(ascii: "$") && Array(bytes[i..<(i + tag.count)]) == tag {
                        i += tag.count
                        break
                    }
                    i += 1
                }

            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                i += 1

            default:
                hasCode = true
                i += 1
            }
        }
        finish(at: bytes.count)
        return statements
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        Self.isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_") || byte >= 0x80
    }

    private static func trim(_ text: String) -> String {
        var scalars = Substring(text)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
