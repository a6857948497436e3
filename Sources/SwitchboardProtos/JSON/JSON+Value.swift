extension Google_Protobuf_Value.OneOf_Kind {
    /// A Value's number from a JSON number (Value numbers are doubles), so that code switching over a ``JSON`` value
    /// (`case .number(let n): v.kind = .numberValue(n)`) reads as it did when JSON numbers were plain doubles.
    /// - Parameter number: the JSON number.
    /// - Returns: `.numberValue(number.double)`.
    public static func numberValue(_ number: JSON.Number) -> Self { .numberValue(number.double) }
}
