import AtriumAuth
import AtriumModel
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// Browser sessions as signed cookies: `base64url(JSON [name, cookieID, expiry]).hexHMAC`.
/// Nothing is stored server-side; rotating the user's cookie id (password change, revoke,
/// logout everywhere) invalidates every cookie at once.
struct SessionCodec: Sendable {
    static let cookieName = "atrium-session"
    static let xsrfCookieName = "_xsrf"

    let key: SymmetricKey
    let lifetime: TimeInterval

    init(secret: [UInt8], lifetime: TimeInterval) {
        self.key = SymmetricKey(data: secret)
        self.lifetime = lifetime
    }

    struct Session: Sendable, Equatable {
        let name: String
        let cookieID: String
        let expires: Date
    }

    func encode(name: String, cookieID: String, now: Date = Date()) -> String {
        let expires = Int64(now.addingTimeInterval(lifetime).timeIntervalSince1970)
        let payload = JSONValue.array([.string(name), .string(cookieID), .number(Double(expires))]).jsonText
        let body = Data(payload.utf8).base64URLEncoded()
        return body + "." + mac(body)
    }

    func decode(_ value: String, now: Date = Date()) -> Session? {
        guard let dot = value.lastIndex(of: ".") else { return nil }
        let body = String(value[..<dot])
        let signature = String(value[value.index(after: dot)...])
        guard TokenHashing.constantTimeEqual(mac(body), signature),
              let data = Data(base64URLEncoded: body),
              case .array(let parts)? = JSONValue(jsonText: String(decoding: data, as: UTF8.self)),
              parts.count == 3,
              case .string(let name) = parts[0], case .string(let cookieID) = parts[1], case .number(let exp) = parts[2]
        else { return nil }
        let expires = Date(timeIntervalSince1970: exp)
        guard expires > now else { return nil }
        return Session(name: name, cookieID: cookieID, expires: expires)
    }

    /// A new XSRF token: a random nonce and its signature (`nonce.hexHMAC("xsrf:" + nonce)`),
    /// so that only the hub can make one: a value planted in the `_xsrf` cookie and sent back
    /// with a request (a forged double submit) is refused, as JupyterHub refuses tokens it did
    /// not sign.
    func newXSRFToken() -> String {
        let nonce = TokenHashing.newSalt() + TokenHashing.newSalt()
        return nonce + "." + mac("xsrf:" + nonce)
    }

    /// Whether `value` is an XSRF token this hub signed.
    func isSignedXSRFToken(_ value: String) -> Bool {
        guard value.count <= 256, let dot = value.lastIndex(of: ".") else { return false }
        let nonce = String(value[..<dot])
        guard nonce.count >= 16 else { return false }
        return TokenHashing.constantTimeEqual(mac("xsrf:" + nonce), String(value[value.index(after: dot)...]))
    }

    private func mac(_ body: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }
}

extension Data {
    func base64URLEncoded() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init?(base64URLEncoded text: String) {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        self.init(base64Encoded: s)
    }
}

extension Hub {
    /// Whether cookies set in answer to `request` should be `Secure`.
    func secureCookies(_ request: Request) -> Bool {
        switch settings.cookieSecurity {
        case .always: return true
        case .never: return false
        case .auto: return request.headers[.init("X-Forwarded-Proto")!]?.lowercased() == "https" || request.head.scheme == "https"
        }
    }

    /// The session cookie for `user`.
    func sessionCookie(for user: String, cookieID: String, request: Request) -> Cookie {
        Cookie(
            name: SessionCodec.cookieName, value: sessions.encode(name: user, cookieID: cookieID),
            maxAge: Int(settings.sessionLifetime.seconds), path: "/", secure: secureCookies(request), httpOnly: true,
            sameSite: .lax)
    }

    /// A cookie that deletes the session.
    func clearedSessionCookie(_ request: Request) -> Cookie {
        Cookie(name: SessionCodec.cookieName, value: "", maxAge: 0, path: "/", secure: secureCookies(request), httpOnly: true, sameSite: .lax)
    }

    /// The request's XSRF token, and the cookie to set when the browser has none yet.
    /// Double-submit: forms carry the cookie's value in `_xsrf`, scripts in `X-XSRFToken`.
    func xsrfToken(_ request: Request) -> (token: String, cookie: Cookie?) {
        if let existing = request.cookies[SessionCodec.xsrfCookieName]?.value, sessions.isSignedXSRFToken(existing) {
            return (existing, nil)
        }
        let token = sessions.newXSRFToken()
        // Readable by the page's own scripts (they send it back in a header); SameSite keeps it home.
        let cookie = Cookie(name: SessionCodec.xsrfCookieName, value: token, path: "/", secure: secureCookies(request), httpOnly: false, sameSite: .lax)
        return (token, cookie)
    }

    /// Whether `submitted` matches the browser's XSRF cookie, and that is a token this hub signed.
    func xsrfMatches(_ request: Request, submitted: String?) -> Bool {
        guard let cookie = request.cookies[SessionCodec.xsrfCookieName]?.value, sessions.isSignedXSRFToken(cookie), let submitted else { return false }
        return TokenHashing.constantTimeEqual(cookie, submitted)
    }
}
