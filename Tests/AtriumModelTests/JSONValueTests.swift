import Testing
import Foundation
@testable import AtriumModel

/// The free-form JSON values kept for group properties and server state.
@Suite("JSONValue")
struct JSONValueTests {
    static let values: [JSONValue] = [
        .null, .bool(true), .bool(false), .number(0), .number(1), .number(-42), .number(1.5), .number(-0.25),
        .number(1e20), .number(9_007_199_254_740_992), .number(123_456_789_012), .string(""), .string("héllo \"world\" / \\ \n 🦊"),
        .array([]), .array([.number(1), .string("two"), .null, .bool(true)]),
        .object([:]),
        .object(["nested": .object(["list": .array([.object(["k": .string("v")])]), "flag": .bool(false)]), "n": .number(3)]),
    ]

    @Test("jsonText then init(jsonText:) gives the same value", arguments: values)
    func roundTripsText(_ value: JSONValue) throws {
        let parsed = try #require(JSONValue(jsonText: value.jsonText), "\(value.jsonText)")
        #expect(parsed == value)
    }

    @Test("Codable round trip inside another type", arguments: values)
    func roundTripsCodable(_ value: JSONValue) throws {
        struct Box: Codable, Equatable { var value: JSONValue }
        let data = try JSONEncoder().encode(Box(value: value))
        #expect(try JSONDecoder().decode(Box.self, from: data) == Box(value: value))
    }

    @Test("booleans and numbers keep their kind")
    func booleansAreNotNumbers() {
        #expect(JSONValue(jsonText: "true") == .bool(true))
        #expect(JSONValue(jsonText: "false") == .bool(false))
        #expect(JSONValue(jsonText: "1") == .number(1))
        #expect(JSONValue(jsonText: "0") == .number(0))
        #expect(JSONValue(jsonText: "[1, true]") == .array([.number(1), .bool(true)]))
    }

    @Test("jsonText is compact, with sorted keys, unescaped slashes and integral numbers")
    func jsonTextShape() {
        let value = JSONValue.object(["b": .number(1), "a": .string("x/y"), "c": .array([.number(2.5), .null])])
        #expect(value.jsonText == #"{"a":"x/y","b":1,"c":[2.5,null]}"#)
        #expect(JSONValue.number(3).jsonText == "3")
        #expect(JSONValue.null.jsonText == "null")
    }

    @Test("invalid JSON text gives nil", arguments: ["", "{", "{'a': 1}", "[1 2]", "nul", "{\"a\":}", "tru"])
    func refusesInvalidText(_ text: String) {
        #expect(JSONValue(jsonText: text) == nil)
    }

    @Test("objectValue returns the dictionary of an object only")
    func objectValue() {
        #expect(JSONValue.object(["a": .null]).objectValue == ["a": .null])
        #expect(JSONValue.array([]).objectValue == nil)
        #expect(JSONValue.string("x").objectValue == nil)
    }
}

@Test("quoted writes a JSON string literal that a decoder reads back unchanged")
func quotedRoundTrips() throws {
    let text = "a \"quote\", a \\ backslash, a\nline, a\ttab, a \u{01} control, and Zoë"
    let literal = JSONValue.quoted(text)
    #expect(literal.hasPrefix("\"") && literal.hasSuffix("\""))
    #expect(literal.contains("\\u0001"))
    #expect(try JSONDecoder().decode(String.self, from: Data(literal.utf8)) == text)
}
