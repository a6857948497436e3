/// CSV cells for spreadsheets: a cell a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return, OWASP's list) is written with a leading apostrophe, which spreadsheets take as "text" and do
/// not show. A contact's name such as `=HYPERLINK("http://…","Click")` otherwise becomes a live link, or worse, in
/// the sheet of whoever opens the export. Pure.
public enum SpreadsheetSafety {
    /// The cell as a spreadsheet should read it.
    public static func defused(_ cell: String) -> String {
        guard let first = cell.utf8.first, [0x3D, 0x2B, 0x2D, 0x40, 0x09, 0x0D].contains(first) else { return cell }
        return "'" + cell
    }
}

/// RFC 4180 CSV lines, as every export of the platform writes them (contacts' export, analytics' reports). Pure.
public enum CSV {
    /// One line: cells joined by commas, each quoted where needed (``quoted(_:)``), defused first when
    /// `spreadsheetSafe` (``SpreadsheetSafety/defused(_:)``), CRLF-terminated.
    public static func line(_ cells: [String], spreadsheetSafe: Bool = false) -> String {
        cells.map { quoted(spreadsheetSafe ? SpreadsheetSafety.defused($0) : $0) }.joined(separator: ",") + "\r\n"
    }

    /// A cell, quoted (quotes doubled) when it holds a comma, quote or line break, or starts or ends with a space (which
    /// some readers trim from an unquoted cell).
    public static func quoted(_ cell: String) -> String {
        let needs = cell.utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D } || cell.hasPrefix(" ") || cell.hasSuffix(" ")
        guard needs else { return cell }
        return "\"" + cell.replacing("\"", with: "\"\"") + "\""
    }
}
