import ArgumentParser
import FoundationEssentials
import SwitchboardProtos

extension Contacts {
    /// A relationship type as typed on the command line: `manager`, `Report`, `RELATIONSHIP_TYPE_FRIEND`.
    static func relationshipType(_ text: String) throws -> Switchboard_Contacts_V1_RelationshipType {
        let wanted = text.lowercased().replacingOccurrences(of: "relationship_type_", with: "")
        guard let type = Switchboard_Contacts_V1_RelationshipType.allCases.first(where: { $0 != .unspecified && "\($0)" == wanted }) else {
            let names = Switchboard_Contacts_V1_RelationshipType.allCases.dropFirst().map { "\($0)" }.joined(separator: ", ")
            throw ValidationError("'\(text)' is not a relationship type: one of \(names)")
        }
        return type
    }

    /// Prints relationships as a table: each from the contact it is seen from.
    static func printRelationships(_ relationships: [Switchboard_Contacts_V1_Relationship]) {
        print(["ID", "CONTACT", "TYPE", "RELATED", "STRENGTH", "NOTE"].joined(separator: "\t"))
        for r in relationships {
            print([r.id, r.contactId, "\(r.type)", r.relatedContactId, String(r.strength), r.note].joined(separator: "\t"))
        }
    }

    struct Relate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Relate two contacts: RELATED is CONTACT's TYPE ('crmctl contacts relate <ann> manager <bob>': Bob is Ann's manager).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var contact: String
        @Argument(
            help:
                "spouse, partner, parent, child, sibling, relative, manager, report, assistant, executive, colleague, mentor, mentee, referrer, referral, friend or other."
        )
        var type: String
        @Argument(help: "The related contact's id.") var related: String
        @Option(help: "How strong the tie is, 1 (weak) to 5 (strong); 0: not rated.") var strength: Int32 = 0
        @Option(help: "A note (at most 1,000 characters).") var note: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var relationship = Switchboard_Contacts_V1_Relationship()
            relationship.contactId = contact
            relationship.relatedContactId = related
            relationship.type = try Contacts.relationshipType(type)
            relationship.strength = strength
            relationship.note = note
            var request = Switchboard_Contacts_V1_CreateRelationshipRequest()
            request.relationship = relationship
            request.requestId = UUID().uuidString
            let created = try await reporting { try await client.createRelationship(request, options: options) }
            switch connection.output {
            case .json: try Printer.json(created)
            case .table: Contacts.printRelationships([created])
            }
        }
    }

    struct Relationships: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A contact's relationships, each seen from it, newest first.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String
        @Option(help: "Only this type, as seen from the contact (repeatable).") var type: [String] = []

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_ListRelationshipsRequest()
            request.contactId = id
            request.types = try type.map(Contacts.relationshipType)
            var all: [Switchboard_Contacts_V1_Relationship] = []
            repeat {
                let page = try await reporting { try await client.listRelationships(request, options: options) }
                all += page.relationships
                var next = Switchboard_Common_V1_PageRequest()
                next.pageSize = 200
                next.pageToken = page.page?.nextPageToken ?? ""
                request.page = next
            } while !(request.page?.pageToken ?? "").isEmpty
            switch connection.output {
            case .json:
                var response = Switchboard_Contacts_V1_ListRelationshipsResponse()
                response.relationships = all
                try Printer.json(response)
            case .table: Contacts.printRelationships(all)
            }
        }
    }

    struct Related: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The contacts up to --hops relationships from a contact, nearest first, with the path to each.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Contact id.") var id: String
        @Option(help: "How far to walk (1-3).") var hops: Int32 = 1
        @Option(help: "Walk only this type, as seen from the contact nearer the start (repeatable).") var type: [String] = []
        @Option(help: "Walk only ties at least this strong (0-5).") var minStrength: Int32 = 0
        @Option(help: "Most contacts (1-500; default 100).") var max: Int32 = 0

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Contacts_V1_GetRelatedContactsRequest()
            request.contactId = id
            request.maxHops = hops
            request.types = try type.map(Contacts.relationshipType)
            request.minStrength = minStrength
            request.maxResults = max
            let found = try await reporting { try await client.getRelatedContacts(request, options: options) }
            switch connection.output {
            case .json: try Printer.json(found)
            case .table:
                print(["ID", "NAME", "HOPS", "PATH"].joined(separator: "\t"))
                for related in found.related {
                    let path = related.path.map { "\($0.type)" }.joined(separator: " > ")
                    print([related.contact?.id ?? "", related.contact?.name?.display ?? "", String(related.hops), path].joined(separator: "\t"))
                }
                if found.truncated { print("(more contacts are in reach: raise --max)") }
            }
        }
    }
}
