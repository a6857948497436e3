import ArgumentParser
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// File formats on the command line.
enum FileFormat: String, ExpressibleByArgument, CaseIterable {
    case csv, vcard, jsonl

    var proto: Switchboard_Contacts_V1_ContactFileFormat {
        switch self {
        case .csv: return .csv
        case .vcard: return .vcard
        case .jsonl: return .jsonLines
        }
    }

    /// The format a file name suggests.
    static func guess(_ path: String) -> FileFormat? {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") { return .csv }
        if lower.hasSuffix(".vcf") || lower.hasSuffix(".vcard") { return .vcard }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return .jsonl }
        return nil
    }
}

/// Writes to standard error without buffering (progress lines and the bar).
func writeStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

extension Contacts {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import contacts from a CSV, vCard or JSON lines file.",
            discussion: """
                Rows are written in batches as they arrive; a progress bar shows on a terminal (plain progress lines \
                otherwise), then a summary and the rows that were not imported. An interrupted import is resumed by \
                running the same command with the printed --import-id: rows already written are not written again.
                Mapping targets: name.given name.family name.middle name.prefix name.suffix name.display emails \
                email:<label> phones phone:<label> tags type status owner_id address.lines address.locality \
                address.administrative_area address.postal_code address.region_code address.label (address2.* … \
                address10.* for more addresses) custom_fields.<key>.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The file ('-' for standard input).") var file: String
        @Option(help: "csv, vcard or jsonl (default: from the file name).") var format: FileFormat?
        @Option(name: .customLong("map"), help: "source=target: a CSV column, vCard property or JSON key to a contact field (repeatable).")
        var mappings: [String] = []
        @Flag(help: "Check and report every row without writing anything.") var dryRun = false
        @Option(help: "A row matching a contact: skip, update or create.") var onDuplicate: String = "skip"
        @Option(help: "What matches: email, phone or email,phone.") var match: String = "email"
        @Option(help: "Resume an interrupted import (the id printed when it started).") var importId: String?
        @Option(help: "CSV field delimiter: , ; | or tab.") var delimiter: String = ","
        @Flag(help: "CSV: the first line is data (columns are then 1, 2, …).") var noHeader = false
        @Option(help: "Rows not imported to print (the rest are counted).") var showProblems: Int = 50
        @Option(help: "Bytes per request message.") var chunkBytes: Int = 256 * 1024

        func run() async throws {
            guard let format = format ?? FileFormat.guess(file) else { throw ValidationError("give --format csv, vcard or jsonl") }
            guard (1024...(1 << 20)).contains(chunkBytes) else { throw ValidationError("--chunk-bytes must be from 1024 to 1048576") }
            var options = Switchboard_Contacts_V1_ImportOptions()
            options.format = format.proto
            for mapping in mappings {
                guard let eq = mapping.firstIndex(of: "=") else { throw ValidationError("--map takes source=target, not \(mapping)") }
                var m = Switchboard_Contacts_V1_ImportFieldMapping()
                m.source = String(mapping[..<eq])
                m.target = String(mapping[mapping.index(after: eq)...])
                options.mapping.append(m)
            }
            options.dryRun = dryRun
            switch onDuplicate {
            case "skip": options.duplicatePolicy = .skip
            case "update": options.duplicatePolicy = .update
            case "create": options.duplicatePolicy = .create
            default: throw ValidationError("--on-duplicate must be skip, update or create")
            }
            for part in match.split(separator: ",") {
                switch part {
                case "email": options.matchOn.append(.email)
                case "phone": options.matchOn.append(.phone)
                default: throw ValidationError("--match takes email, phone or email,phone")
                }
            }
            options.importId = importId ?? (dryRun ? "" : UUID().uuidString.lowercased())
            if format == .csv {
                options.csvDelimiter = delimiter == "tab" ? "\t" : delimiter
                options.csvNoHeader = noHeader
            }
            let path = file
            let size: Int64? =
                path == "-" ? nil : (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
            guard path == "-" || FileManager.default.isReadableFile(atPath: path) else { throw ValidationError("cannot read \(path)") }
            var (client, callOptions) = try connection.client()
            callOptions.timeout = nil
            let chunk = chunkBytes
            let json = connection.output == .json
            let shown = showProblems
            let bar = ProgressDisplay(total: size, tty: isatty(2) != 0 && !json)
            if !dryRun, !json {
                writeStandardError("import id \(options.importId) (to resume after an interruption: --import-id \(options.importId))\n")
            }
            let opening = options
            let final = try await reporting {
                try await client.importContacts(options: callOptions) { call in
                    try await withThrowingTaskGroup(of: Switchboard_Contacts_V1_ImportProgress?.self) { group in
                        group.addTask {
                            var first = Switchboard_Contacts_V1_ImportContactsRequest()
                            first.part = .options(opening)
                            try await call.send(first)
                            guard let handle = path == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: path) else {
                                throw ValidationError("cannot read \(path)")
                            }
                            while true {
                                let data = handle.readData(ofLength: chunk)
                                if data.isEmpty { break }
                                var message = Switchboard_Contacts_V1_ImportContactsRequest()
                                message.part = .chunk([UInt8](data))
                                try await call.send(message)
                            }
                            try await call.finishSending()
                            return nil
                        }
                        group.addTask {
                            var last: Switchboard_Contacts_V1_ImportProgress?
                            var problems = 0
                            for try await response in call.responses {
                                if json {
                                    for result in response.results { print(try result.protoJSONText()) }
                                } else {
                                    for result in response.results where result.outcome == .invalid {
                                        problems += 1
                                        guard problems <= shown else { continue }
                                        let reasons = result.violations.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
                                        bar.clear()
                                        print("row \(result.row): not imported: \(reasons)")
                                    }
                                }
                                if let progress = response.progress {
                                    last = progress
                                    bar.show(progress)
                                }
                            }
                            return last
                        }
                        var progress: Switchboard_Contacts_V1_ImportProgress?
                        for try await value in group { if let value { progress = value } }
                        return progress
                    }
                }
            }
            bar.clear()
            guard let final else { throw ExitCode(1) }
            if json {
                print(try final.protoJSONText())
                return
            }
            let verb = dryRun ? "would be " : ""
            print(
                "\(final.rows) rows: \(final.created) \(verb)created, \(final.updated) \(verb)updated, \(final.skipped) skipped as duplicates, "
                    + "\(final.invalid) invalid" + (final.resumed > 0 ? " (\(final.resumed) written by an earlier attempt)" : "")
                    + String(format: " in %.1f s", bar.elapsed))
            if final.invalid > Int64(shown) { print("(\(final.invalid - Int64(shown)) more invalid rows not shown; --show-problems N)") }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export contacts as CSV, vCard or JSON lines to standard output.",
            discussion:
                "Every live contact, or those a search matches (words, tags, owner, a saved search). Progress goes to standard error on a terminal.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "csv, vcard or jsonl.") var format: FileFormat = .csv
        @Argument(help: "Words the contacts must match (empty: every contact).") var query: [String] = []
        @Option(help: "Only contacts with this tag (repeatable: all of them).") var tag: [String] = []
        @Option(help: "Only contacts of this owner.") var owner: String = ""
        @Option(help: "Only the matches of this saved search.") var saved: String = ""
        @Option(
            help:
                "A field to write (repeatable; default all): id, name, emails, phones, addresses, type, status, tags, owner_id, custom_fields, custom_fields.<key>, audit."
        )
        var field: [String] = []
        @Option(help: "vCard version: 3 or 4.") var vcardVersion: Int32 = 4
        @Flag(
            help:
                "CSV to open in a spreadsheet: cells starting with = + - @ get a leading apostrophe, so they show as text instead of running as formulas (phone numbers too; not for re-import)."
        )
        var spreadsheetSafe = false

        func run() async throws {
            var (client, options) = try connection.client()
            options.timeout = nil
            var request = Switchboard_Contacts_V1_ExportContactsRequest()
            request.format = format.proto
            request.fields = field
            request.vcardVersion = vcardVersion
            request.spreadsheetSafe = spreadsheetSafe
            if !query.isEmpty || !tag.isEmpty || !owner.isEmpty || !saved.isEmpty {
                var filter = Switchboard_Contacts_V1_SearchContactsRequest()
                filter.query = query.joined(separator: " ")
                filter.tags = tag
                filter.ownerId = owner
                filter.savedSearchId = saved
                request.filter = filter
            }
            let tty = isatty(2) != 0
            let count = try await reporting {
                try await client.exportContacts(request, options: options) { chunks in
                    var count: Int64 = 0
                    for try await chunk in chunks {
                        FileHandle.standardOutput.write(Data(chunk.chunk))
                        count = chunk.contacts
                        if tty { writeStandardError("\rexported \(count) contacts") }
                    }
                    return count
                }
            }
            writeStandardError((tty ? "\r" : "") + "exported \(count) contacts\n")
        }
    }
}

/// The progress of an import on standard error: a bar redrawn in place on a terminal, a plain line every few seconds
/// otherwise.
final class ProgressDisplay: Sendable {
    private struct State {
        var lastDraw: ContinuousClock.Instant?
        var drawn = false
    }
    let total: Int64?
    let tty: Bool
    let start = ContinuousClock.now
    private let state = Mutex(State())

    init(total: Int64?, tty: Bool) {
        self.total = total
        self.tty = tty
    }

    var elapsed: Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func show(_ progress: Switchboard_Contacts_V1_ImportProgress) {
        let now = ContinuousClock.now
        let due: Bool = state.withLock { state in
            let interval: Duration = tty ? .milliseconds(100) : .seconds(5)
            if !progress.done, let last = state.lastDraw, now - last < interval { return false }
            state.lastDraw = now
            state.drawn = tty
            return true
        }
        guard due, !(progress.done && !tty) else { return }
        let rate = elapsed > 0 ? Int(Double(progress.rows) / elapsed) : 0
        let counts =
            "\(progress.rows) rows, \(rate)/s (created \(progress.created), updated \(progress.updated), skipped \(progress.skipped), invalid \(progress.invalid))"
        var fraction: Double?
        if let total, total > 0 { fraction = min(1, Double(progress.bytesProcessed) / Double(total)) }
        if tty {
            let width = 30
            let filled = Int((fraction ?? 0) * Double(width))
            let bar = fraction == nil ? "" : "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            let percent = fraction.map { String(format: "%3d%% ", Int($0 * 100)) } ?? ""
            writeStandardError("\r\u{1B}[K" + bar + percent + counts)
        } else {
            let percent = fraction.map { String(format: "%d%% ", Int($0 * 100)) } ?? ""
            writeStandardError("progress: " + percent + counts + "\n")
        }
    }

    /// Removes the bar (before printing a line, and at the end).
    func clear() {
        let drawn = state.withLock { state in
            defer { state.drawn = false }
            return state.drawn
        }
        if drawn, tty { writeStandardError("\r\u{1B}[K") }
    }
}
