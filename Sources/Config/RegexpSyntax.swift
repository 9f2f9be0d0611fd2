/// A syntax check for Go's `regexp` (RE2) patterns used by `domain_regex` and
/// `process_path_regex`, so that check refuses what Go refuses when it builds its rules.
///
/// It finds the mistakes people make most (unbalanced groups and classes, lookarounds and
/// back-references RE2 does not have, misplaced or doubled repetition operators, bad repeat
/// counts and ranges) and reports them in Go's words; anything it does not recognise it lets
/// through, so it never refuses a pattern Go accepts.
enum RegexpSyntax {
    /// Go's message for the first problem in `pattern`, or nil.
    static func error(in pattern: String) -> String? {
        let chars = Array(pattern)
        var i = 0
        var depth = 0
        // Whether the previous token can take a repetition operator, and where the last
        // repetition operator (with its lazy `?`) started.
        var hasOperand = false
        var repetitionStart: Int?
        var repetitionIsLazy = false
        func fail(_ message: String, _ text: String) -> String { "error parsing regexp: \(message): `\(text)`" }
        while i < chars.count {
            let c = chars[i]
            switch c {
            case "\\":
                guard i + 1 < chars.count else { return fail("trailing backslash at end of expression", "") }
                let next = chars[i + 1]
                if let digit = next.wholeNumberValue, digit > 0, next.isASCII {
                    return fail("invalid escape sequence", "\\\(next)")
                }
                if next == "Q" {
                    // \Q…\E is literal text.
                    var j = i + 2
                    while j < chars.count, !(chars[j] == "\\" && j + 1 < chars.count && chars[j + 1] == "E") { j += 1 }
                    i = min(j + 2, chars.count)
                } else {
                    i += 2
                }
                hasOperand = true
                repetitionStart = nil
                continue
            case "[":
                guard let end = classEnd(chars, from: i) else {
                    return fail("missing closing ]", String(chars[i...]))
                }
                if let range = invalidRange(chars, from: i, to: end) {
                    return fail("invalid character class range", range)
                }
                i = end + 1
                hasOperand = true
                repetitionStart = nil
                continue
            case "(":
                if i + 2 < chars.count, chars[i + 1] == "?" {
                    let kind = chars[i + 2]
                    if kind == "=" || kind == "!" { return fail("invalid or unsupported Perl syntax", String(chars[i...(i + 2)])) }
                    if kind == "<", i + 3 < chars.count, chars[i + 3] == "=" || chars[i + 3] == "!" {
                        return fail("invalid named capture", String(chars[i...]))
                    }
                }
                hasOperand = false
                repetitionStart = nil
                if i + 1 < chars.count, chars[i + 1] == "?" {
                    // `(?P<name>` / `(?<name>` / `(?flags:` open a group; `(?flags)` sets flags.
                    var j = i + 2
                    if j < chars.count, chars[j] == "P" || chars[j] == "<" {
                        while j < chars.count, chars[j] != ">" { j += 1 }
                    } else {
                        while j < chars.count, chars[j] != ":" && chars[j] != ")" { j += 1 }
                        if j < chars.count, chars[j] == ")" {
                            i = j + 1
                            continue
                        }
                    }
                    depth += 1
                    i = min(j + 1, chars.count)
                    continue
                }
                depth += 1
            case ")":
                if depth == 0 { return fail("unexpected )", pattern) }
                depth -= 1
                hasOperand = true
                repetitionStart = nil
            case "|":
                hasOperand = false
                repetitionStart = nil
            case "*", "+", "?":
                if let start = repetitionStart {
                    if c == "?" && !repetitionIsLazy {
                        repetitionIsLazy = true
                        i += 1
                        continue
                    }
                    return fail("invalid nested repetition operator", String(chars[start...i]))
                }
                if !hasOperand { return fail("missing argument to repetition operator", String(c)) }
                repetitionStart = i
                repetitionIsLazy = false
                i += 1
                continue
            case "{":
                if let (end, low, high) = repeatCount(chars, from: i) {
                    let text = String(chars[i...end])
                    if low > 1000 || (high ?? low) > 1000 || (high.map { $0 < low } ?? false) {
                        return fail("invalid repeat count", text)
                    }
                    if let start = repetitionStart {
                        return fail("invalid nested repetition operator", String(chars[start...end]))
                    }
                    if !hasOperand { return fail("missing argument to repetition operator", text) }
                    repetitionStart = i
                    repetitionIsLazy = false
                    i = end + 1
                    continue
                }
                hasOperand = true
                repetitionStart = nil
            default:
                hasOperand = true
                repetitionStart = nil
            }
            i += 1
        }
        if depth > 0 { return fail("missing closing )", pattern) }
        return nil
    }

    /// The index of the `]` closing the class opened at `start` (a leading `]` or `^]` is literal;
    /// `[:name:]` is a POSIX class), or nil.
    private static func classEnd(_ chars: [Character], from start: Int) -> Int? {
        var i = start + 1
        if i < chars.count, chars[i] == "^" { i += 1 }
        if i < chars.count, chars[i] == "]" { i += 1 }
        while i < chars.count {
            switch chars[i] {
            case "\\": i += 2
            case "[" where i + 1 < chars.count && chars[i + 1] == ":":
                var j = i + 2
                while j + 1 < chars.count, !(chars[j] == ":" && chars[j + 1] == "]") { j += 1 }
                i = j + 1 < chars.count ? j + 2 : i + 1
            case "]": return i
            default: i += 1
            }
        }
        return nil
    }

    /// A literal range `z-a` inside a class whose ends are out of order, as Go prints it.
    private static func invalidRange(_ chars: [Character], from start: Int, to end: Int) -> String? {
        var i = start + 1
        if i < end, chars[i] == "^" { i += 1 }
        while i < end {
            if chars[i] == "\\" || chars[i] == "[" { return nil }  // escapes and POSIX classes: left to Go
            if i + 2 < end, chars[i + 1] == "-", chars[i + 2] != "\\", chars[i + 2] != "[" {
                if chars[i + 2] < chars[i] { return String(chars[i...(i + 2)]) }
                i += 3
            } else {
                i += 1
            }
        }
        return nil
    }

    /// `{n}`, `{n,}` or `{n,m}` at `start`: its last index and bounds; nil when it is literal text.
    private static func repeatCount(_ chars: [Character], from start: Int) -> (Int, Int, Int?)? {
        var i = start + 1
        func number() -> Int? {
            let begin = i
            while i < chars.count, chars[i].isASCII, chars[i].isNumber { i += 1 }
            guard i > begin, i - begin <= 8 else { return nil }
            return Int(String(chars[begin..<i]))
        }
        guard let low = number() else { return nil }
        var high: Int? = low
        if i < chars.count, chars[i] == "," {
            i += 1
            if i < chars.count, chars[i] == "}" { high = nil } else {
                guard let value = number() else { return nil }
                high = value
            }
        }
        guard i < chars.count, chars[i] == "}" else { return nil }
        return (i, low, high)
    }
}
