/// The API server's own rules for the values a configuration passes into Kubernetes objects
/// (apimachinery's `resource.ParseQuantity` and `validation.IsQualifiedName`,
/// `IsValidLabelValue`, `IsDNS1123Subdomain`), so a wrong value is refused at start-up naming
/// its key, instead of failing every start with the API's message.
public enum KubernetesValidation {
    /// Why `text` is not a resource quantity (`250m`, `2Gi`, `1.5`, `1e3`), or nil when it is.
    /// `2GB` is not: the suffixes are Ki Mi Gi Ti Pi Ei (powers of 1024), n u m k M G T P E
    /// (powers of 1000), or an exponent `e3`/`E3`.
    public static func quantityProblem(_ text: String) -> String? {
        let usage = "must be a Kubernetes quantity such as 250m, 0.5, 2, 512Mi or 2Gi (suffixes Ki Mi Gi Ti Pi Ei, m k M G T P E), not '\(text)'"
        var rest = Substring(text)
        if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        rest = rest.dropFirst(number.count)
        let digits = number.filter(\.isNumber)
        guard !digits.isEmpty, number.filter({ $0 == "." }).count <= 1 else { return usage }
        if text.hasPrefix("-") { return "must not be negative, not '\(text)'" }
        let suffix = String(rest)
        let binary: Set<String> = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        let decimal: Set<String> = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E"]
        if binary.contains(suffix) || decimal.contains(suffix) { return nil }
        if let first = suffix.first, first == "e" || first == "E" {
            var exponent = suffix.dropFirst()
            if exponent.first == "+" || exponent.first == "-" { exponent = exponent.dropFirst() }
            if !exponent.isEmpty, exponent.allSatisfy({ $0.isASCII && $0.isNumber }) { return nil }
        }
        return usage
    }

    /// Why `text` is not a label or annotation key (`[prefix/]name`: an optional DNS subdomain,
    /// then 1–63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric), or nil when it is.
    public static func qualifiedNameProblem(_ text: String) -> String? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return "'\(text)' must be a name with at most one '/' (prefix/name)" }
        if parts.count == 2, let problem = subdomainProblem(String(parts[0])) { return "the prefix of '\(text)' \(problem)" }
        let name = parts.last.map(String.init) ?? ""
        guard !name.isEmpty, name.count <= 63 else { return "the name part of '\(text)' must be 1 to 63 characters" }
        guard isLabelText(name) else {
            return "'\(text)' must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit"
        }
        return nil
    }

    /// Why `text` is not a label value (empty, or at most 63 of `[A-Za-z0-9._-]` starting and
    /// ending alphanumeric), or nil when it is.
    public static func labelValueProblem(_ text: String) -> String? {
        if text.isEmpty { return nil }
        guard text.count <= 63 else { return "the label value '\(text)' must be at most 63 characters" }
        guard isLabelText(text) else {
            return "the label value '\(text)' must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit"
        }
        return nil
    }

    /// Why `text` is not a DNS subdomain (a storage class or other object name: at most 253
    /// lower-case letters, digits, '-' and '.', starting and ending alphanumeric), or nil.
    public static func subdomainProblem(_ text: String) -> String? {
        let allowed = text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }
        guard !text.isEmpty, text.count <= 253, allowed, isAlphanumeric(text.first), isAlphanumeric(text.last) else {
            return "must be a DNS subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit), not '\(text)'"
        }
        return nil
    }

    private static func isLabelText(_ text: String) -> Bool {
        text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
            && isAlphanumeric(text.first) && isAlphanumeric(text.last)
    }

    private static func isAlphanumeric(_ character: Character?) -> Bool {
        guard let character, character.isASCII else { return false }
        return character.isLetter || character.isNumber
    }
}
