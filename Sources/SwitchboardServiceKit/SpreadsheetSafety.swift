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
