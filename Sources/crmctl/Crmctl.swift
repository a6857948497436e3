import ArgumentParser
import Foundation
import JWTKit
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// `crmctl`: a command-line client for Switchboard over the generated typed clients.
@main
struct Crmctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crmctl",
        abstract: "Command-line client for Switchboard.",
        subcommands: [Token.self, Contacts.self, Orgs.self])
}

/// Connection options shared by every RPC command.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "host:port of the service (env CRMCTL_CONTACTS_ADDR).")
    var server: String = ProcessInfo.processInfo.environment["CRMCTL_CONTACTS_ADDR"] ?? "127.0.0.1:50061"

    // Optional, and read from the environment only when used: a default would print the token in `--help`.
    @Option(help: "Bearer token (env CRMCTL_TOKEN); `crmctl token` mints development tokens.")
    var token: String?

    @Option(help: "Output: table, or json (the response in proto3 JSON, one object per line).")
    var output: OutputFormat = .table

    @Option(help: "Call timeout in seconds.")
    var timeout: Double = 10

    func client() throws -> (Switchboard_Contacts_V1_ContactsService_Client, CallOptions) {
        let (host, port, options) = try callSettings(server: server, token: token, timeout: timeout)
        return (Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: GRPCChannel(host: host, port: port))), options)
    }
}

/// The target and call options every RPC command uses: `--server` as host:port, the token (`--token` or
/// CRMCTL_TOKEN) as a bearer credential, and `--timeout` within 1 ms to an hour.
/// - Throws: `ValidationError` naming the option that is wrong.
func callSettings(server: String, token: String?, timeout: Double) throws -> (host: String, port: Int, options: CallOptions) {
    let parts = server.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { throw ValidationError("--server must be host:port") }
    guard let token = token ?? ProcessInfo.processInfo.environment["CRMCTL_TOKEN"], !token.isEmpty else {
        throw ValidationError("a token is required: pass --token or set CRMCTL_TOKEN (see `crmctl token`)")
    }
    guard timeout.isFinite, (0.001...3600).contains(timeout) else { throw ValidationError("--timeout must be from 0.001 to 3600 seconds") }
    var options = CallOptions(timeout: .milliseconds(Int64(timeout * 1000)))
    options.metadata.addString("Bearer \(token)", forKey: "authorization")
    return (String(parts[0]), port, options)
}

enum OutputFormat: String, ExpressibleByArgument {
    case table, json
}

/// Prints RPC errors the way a person wants to read them, then exits non-zero.
func reporting<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RPCError {
        var lines = ["error: \(error.code): \(error.message)"]
        for v in error.fieldViolations { lines.append("  \(v.field): \(v.description)") }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        throw ExitCode(Int32(min(error.code.rawValue, 100)))
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mint a development token (HS256).")

    @Option(help: "HS256 secret (env SWITCHBOARD_JWT_HS256_SECRET, or .data/dev-jwt-secret).")
    var secret: String?
    @Option(help: "Tenant id.") var tenant: String = "demo"
    @Option(help: "User id.") var user: String = "dev-user"
    @Option(help: "Comma-separated roles: admin, manager, user, read-only.") var roles: String = "user"
    @Option(help: "Lifetime in seconds.") var ttl: Int = 3600
    @Option(help: "Mint a service identity's token instead (the service role, no tenant): the calling service's name.")
    var service: String?

    func run() async throws {
        let secret =
            self.secret ?? ProcessInfo.processInfo.environment["SWITCHBOARD_JWT_HS256_SECRET"]
            ?? (try? String(contentsOfFile: ".data/dev-jwt-secret", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let secret, secret.utf8.count >= 32 else {
            throw ValidationError("a secret of at least 32 bytes is required (--secret or SWITCHBOARD_JWT_HS256_SECRET)")
        }
        guard (1...31_536_000).contains(ttl) else { throw ValidationError("--ttl must be from 1 to 31536000 seconds") }
        let expires = Date().addingTimeInterval(Double(ttl))
        if let service {
            guard !service.isEmpty else { throw ValidationError("--service needs the calling service's name") }
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            print(try await keys.sign(SwitchboardClaims.service(service, expires: expires)))
            return
        }
        var parsed: [Role] = []
        for name in roles.split(separator: ",") {
            guard let role = Role(rawValue: String(name)) else { throw ValidationError("unknown role \(name)") }
            parsed.append(role)
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let claims = SwitchboardClaims(userID: user, tenantID: tenant, roles: parsed, expires: expires)
        print(try await keys.sign(claims))
    }
}

struct Contacts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, find, change and delete contacts.",
        subcommands: [
            Create.self, Get.self, Lookup.self, Search.self, Update.self, Delete.self, Undelete.self, List.self, Watch.self, Import.self, Export.self,
            Duplicates.self, Merge.self, Unmerge.self, Erase.self, Erasure.self, Relate.self, Relationships.self, Related.self,
        ])

    /// Contact fields settable from the command line.
    struct Fields: ParsableArguments {
        @Option(help: "Given name.") var given: String?
        @Option(help: "Family name.") var family: String?
        @Option(help: "Display name (companies).") var display: String?
        @Option(help: "Email address (repeatable; the first is primary).") var email: [String] = []
        @Option(help: "Phone number in international format (repeatable).") var phone: [String] = []
        @Option(help: "Tag (repeatable).") var tag: [String] = []
        @Option(help: "person or company.") var type: String?
        @Option(help: "lead, prospect, customer or inactive.") var status: String?
        @Option(help: "Owner user id.") var owner: String?

        func apply(to contact: inout Switchboard_Contacts_V1_Contact) throws -> [String] {
            var paths: [String] = []
            var name = contact.name ?? Switchboard_Contacts_V1_PersonName()
            if let given {
                name.given = given
                paths.append("name.given")
            }
            if let family {
                name.family = family
                paths.append("name.family")
            }
            if let display {
                name.display = display
                paths.append("name.display")
            }
            contact.name = name
            if !email.isEmpty {
                contact.emails = email.enumerated().map { i, a in
                    var e = Switchboard_Contacts_V1_Email()
                    e.address = a
                    e.primary = i == 0
                    return e
                }
                paths.append("emails")
            }
            if !phone.isEmpty {
                contact.phones = phone.map {
                    var p = Switchboard_Contacts_V1_Phone()
                    p.number = $0
                    return p
                }
                paths.append("phones")
            }
            if !tag.isEmpty {
                contact.tags = tag
                paths.append("tags")
            }
            if let type {
                switch type {
                case "person": contact.type = .person
                case "company": contact.type = .company
                default: throw ValidationError("--type must be person or company")
                }
                paths.append("type")
            }
            if let status {
                let map: [String: Switchboard_Contacts_V1_ContactStatus] = [
                    "lead": .lead, "prospect": .prospect, "customer": .customer, "inactive": .inactive,
                ]
                guard let s = map[status] else { throw ValidationError("--status must be lead, prospect, customer or inactive") }
                contact.status = s
                paths.append("status")
            }
            if let owner {
                contact.ownerId = owner
                paths.append("owner_id")
            }
            return paths
        }
    }

    struct Create: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var fields: Fields
        @Option(help: "Idempotency key (a retry with the same key changes nothing).") var requestId: String = UUID().uuidString

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_CreateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            _ = try fields.apply(to: &contact)
            request.contact = contact
            request.requestId = requestId
            let created = try await reporting { try await client.createContact(request, options: options) }
            try Printer.contact(created, format: connection.output)
        }
    }

    struct Get: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String
        @Flag(help: "Also show a deleted contact.") var includeDeleted = false

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_GetContactRequest()
            request.id = id
            request.includeDeleted = includeDeleted
            let contact = try await reporting { try await client.getContact(request, options: options) }
            try Printer.contact(contact, format: connection.output)
        }
    }

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find the contacts holding email addresses or phone numbers.",
            discussion: "Emails match case-insensitively; phones by their international form (+49 30 1234567).")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Email address (repeatable).") var email: [String] = []
        @Option(help: "Phone number with its country code (repeatable).") var phone: [String] = []

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_LookupContactsRequest()
            request.emails = email
            request.phones = phone
            let found = try await reporting { try await client.lookupContacts(request, options: options) }
            switch connection.output {
            case .json: try Printer.json(found)
            case .table:
                print(["QUERY", "MATCHED AS", "CONTACTS"].joined(separator: "\t"))
                for match in found.emails + found.phones {
                    let ids = match.contactIds.joined(separator: ",") + (match.truncated ? ",…" : "")
                    print([match.query, match.normalized, ids.isEmpty ? "-" : ids].joined(separator: "\t"))
                }
            }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Search contacts: ranked, prefixes and typos match words.",
            discussion: "Every word must match a word of the contact (its names, emails, phones, tags or text fields).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The words to find (empty: every contact that passes the filters).") var query: [String] = []
        @Option(help: "Only contacts with this tag (repeatable: all of them).") var tag: [String] = []
        @Option(help: "Only contacts of this owner.") var owner: String = ""
        @Option(help: "Facet to count: status, type, tag, owner_id or custom_fields.<key> (repeatable).") var facet: [String] = []
        @Option(help: "Run a saved search by its id (no other filters with it).") var saved: String = ""
        @Option(help: "Hits per page (1-100).") var pageSize: Int32 = 20
        @Option(help: "Continue from a page token.") var pageToken: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_SearchContactsRequest()
            request.query = query.joined(separator: " ")
            request.tags = tag
            request.ownerId = owner
            request.facets = facet
            request.savedSearchId = saved
            var page = Switchboard_Common_V1_PageRequest()
            page.pageSize = pageSize
            page.pageToken = pageToken
            request.page = page
            let found = try await reporting { try await client.searchContacts(request, options: options) }
            switch connection.output {
            case .json: try Printer.json(found)
            case .table:
                print(["SCORE", "ID", "NAME", "MATCHED"].joined(separator: "\t"))
                for hit in found.hits {
                    let matched = hit.highlights.map { h in
                        let scalars = Array(h.text.unicodeScalars)
                        let words = h.matches.compactMap { r -> String? in
                            guard r.start >= 0, r.end <= scalars.count, r.start < r.end else { return nil }
                            return String(String.UnicodeScalarView(scalars[Int(r.start)..<Int(r.end)]))
                        }
                        return "\(h.field)=\(words.joined(separator: ","))"
                    }
                    let score = (hit.score * 1000).rounded() / 1000
                    print(
                        ["\(score)", hit.contact?.id ?? "", hit.contact?.name?.display ?? "", matched.joined(separator: " ")].joined(separator: "\t"))
                }
                for facet in found.facets {
                    let counts = facet.counts.map { "\($0.value)=\($0.count)" }.joined(separator: " ")
                    print("facet \(facet.field)\(facet.partial ? " (partial)" : ""): \(counts)")
                }
                if let next = found.page?.nextPageToken, !next.isEmpty { print("next page: --page-token \(next)") }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String
        @OptionGroup var fields: Fields
        @Option(help: "Only update this version (etag from get).") var etag: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_UpdateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            contact.id = id
            let paths = try fields.apply(to: &contact)
            guard !paths.isEmpty else { throw ValidationError("name at least one field to change") }
            request.contact = contact
            request.updateMask = Google_Protobuf_FieldMask(paths: paths)
            request.etag = etag
            request.requestId = UUID().uuidString
            let updated = try await reporting { try await client.updateContact(request, options: options) }
            try Printer.contact(updated, format: connection.output)
        }
    }

    struct Delete: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String
        @Option(help: "Only delete this version (etag from get).") var etag: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_DeleteContactRequest()
            request.id = id
            request.etag = etag
            request.requestId = UUID().uuidString
            let deleted = try await reporting { try await client.deleteContact(request, options: options) }
            try Printer.contact(deleted, format: connection.output)
        }
    }

    struct Undelete: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_UndeleteContactRequest()
            request.id = id
            request.requestId = UUID().uuidString
            let restored = try await reporting { try await client.undeleteContact(request, options: options) }
            try Printer.contact(restored, format: connection.output)
        }
    }

    struct Duplicates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The contacts most likely to be the same person as one contact, best first.",
            discussion:
                "Signals: a phone number in common, the same name, a similar name, the same mailbox name at another domain. Merge with 'crmctl contacts merge'."
        )
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String
        @Option(help: "Most candidates (1-50; default 10).") var max: Int32 = 0

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_FindDuplicateContactsRequest()
            request.contactId = id
            request.maxResults = max
            let found = try await reporting { try await client.findDuplicateContacts(request, options: options) }
            switch connection.output {
            case .json: try Printer.json(found)
            case .table:
                print(["ID", "NAME", "SCORE", "SIGNALS"].joined(separator: "\t"))
                for candidate in found.candidates {
                    let name = candidate.contact?.name?.display ?? ""
                    let signals = candidate.signals.map { signal in
                        switch signal {
                        case .samePhone: "same phone"
                        case .sameName: "same name"
                        case .similarName: "similar name"
                        case .sameEmailName: "same mailbox name"
                        case .unspecified, .unrecognized: "\(signal)"
                        }
                    }
                    let score = String(Int((candidate.score * 100).rounded())) + "%"
                    print([candidate.contact?.id ?? "", name, score, signals.joined(separator: ", ")].joined(separator: "\t"))
                }
            }
        }
    }

    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge a contact into another: the winner keeps its values and gains what it lacks; the loser is deleted.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The contact merged away (the loser).") var loser: String
        @Option(help: "The contact that stays (the winner).") var into: String
        @Option(help: "Only if the winner is still at this version (etag from get).") var winnerEtag: String = ""
        @Option(help: "Only if the loser is still at this version (etag from get).") var loserEtag: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_MergeContactsRequest()
            request.winnerId = into
            request.loserId = loser
            request.winnerEtag = winnerEtag
            request.loserEtag = loserEtag
            request.requestId = UUID().uuidString
            let merged = try await reporting { try await client.mergeContacts(request, options: options) }
            try Printer.contact(merged, format: connection.output)
        }
    }

    struct Unmerge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reverse a contact's latest merge and restore it.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The merged contact to restore.") var id: String

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_UnmergeContactRequest()
            request.id = id
            request.requestId = UUID().uuidString
            let restored = try await reporting { try await client.unmergeContact(request, options: options) }
            try Printer.contact(restored, format: connection.output)
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase a person everywhere (GDPR; admin role). Prints the erasure; `crmctl contacts erasure <id>` follows it.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The contact to erase (with every contact merged into it).") var id: String

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_EraseContactRequest()
            request.contactId = id
            let erasure = try await reporting { try await client.eraseContact(request, options: options) }
            try Printer.erasure(erasure, format: connection.output)
        }
    }

    struct Erasure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an erasure: its status and the services' receipts (admin role).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The erasure's id.") var id: String

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_GetErasureRequest()
            request.id = id
            let erasure = try await reporting { try await client.getErasure(request, options: options) }
            try Printer.erasure(erasure, format: connection.output)
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only this tag.") var tag: String = ""
        @Option(help: "Only this owner.") var owner: String = ""
        @Option(help: "Page size.") var pageSize: Int32 = 50
        @Option(help: "Page token from a previous list.") var pageToken: String = ""
        @Flag(help: "Fetch every page.") var all = false

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_ListContactsRequest()
            request.tag = tag
            request.ownerId = owner
            var page = Switchboard_Common_V1_PageRequest()
            page.pageSize = pageSize
            page.pageToken = pageToken
            var everything: [Switchboard_Contacts_V1_Contact] = []
            while true {
                request.page = page
                let response = try await reporting { try await client.listContacts(request, options: options) }
                everything += response.contacts
                // JSON prints each page's response as it arrives; the table waits for every page to align columns.
                if connection.output == .json { try Printer.json(response) }
                let next = response.page?.nextPageToken ?? ""
                if !all || next.isEmpty {
                    if connection.output == .table { Printer.table(everything) }
                    if !next.isEmpty { FileHandle.standardError.write(Data("next page: --page-token \(next)\n".utf8)) }
                    return
                }
                page.pageToken = next
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Replay changes after this sequence.") var from: Int64 = 0

        func run() async throws {
            var (client, options) = try connection.client()
            options.timeout = nil
            var request = Switchboard_Common_V1_WatchChangesRequest()
            request.fromSequence = from
            let format = connection.output
            try await reporting {
                try await client.watchChanges(request, options: options) { events in
                    for try await event in events {
                        // Unbuffered, one line per event: a watch is read live, often through a pipe.
                        if format == .json {
                            FileHandle.standardOutput.write(Data((try event.protoJSONText() + "\n").utf8))
                            continue
                        }
                        let line =
                            "\(event.sequence)\t\(event.kind)\t\(event.resourceType)\t\(event.resourceId)\t\(event.actorId)\t\(event.changedFields.joined(separator: ","))\n"
                        FileHandle.standardOutput.write(Data(line.utf8))
                    }
                }
            }
        }
    }
}

enum Printer {
    /// Prints one contact returned by an RPC.
    /// - Throws: ``ProtoJSONError`` when the contact cannot be written as JSON.
    static func contact(_ contact: Switchboard_Contacts_V1_Contact, format: OutputFormat) throws {
        switch format {
        case .json: try json(contact)
        case .table: table([contact])
        }
    }

    /// Prints a response as proto3 JSON on one line (what a gateway would send; `jq` reads it line by line).
    /// - Throws: ``ProtoJSONError`` when the message cannot be written as JSON.
    static func json(_ message: some ProtoJSONMessage) throws {
        print(try message.protoJSONText())
    }

    /// Prints an erasure: JSON, or its status and each awaited service's receipts for people.
    /// - Throws: ``ProtoJSONError`` when the erasure cannot be written as JSON.
    static func erasure(_ erasure: Switchboard_Contacts_V1_Erasure, format: OutputFormat) throws {
        switch format {
        case .json: try json(erasure)
        case .table:
            let status = "\(erasure.status)".uppercased()
            print("erasure \(erasure.id) of contact \(erasure.contactId): \(status)")
            if !erasure.mergedContactIds.isEmpty { print("with merged contacts: \(erasure.mergedContactIds.joined(separator: ", "))") }
            let records = 1 + erasure.mergedContactIds.count
            for service in erasure.awaitedServices {
                let received = erasure.receipts.filter { $0.service == service }.count
                print("\(service)\t\(received)/\(records) receipts")
            }
        }
    }

    /// Prints contacts as a table for people.
    static func table(_ contacts: [Switchboard_Contacts_V1_Contact]) {
        print(["ID", "NAME", "EMAIL", "STATUS", "TAGS", "ETAG"].joined(separator: "\t"))
        for c in contacts {
            let primary = c.emails.first(where: \.primary)?.address ?? ""
            let deleted = c.audit?.deleteTime != nil ? " (deleted)" : ""
            print([c.id, (c.name?.display ?? "") + deleted, primary, "\(c.status)", c.tags.joined(separator: ","), c.etag].joined(separator: "\t"))
        }
    }
}
