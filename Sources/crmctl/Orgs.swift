import ArgumentParser
import Foundation
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC

/// `crmctl orgs …`: organizations and their hierarchy.
struct Orgs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, find, move and delete organizations; show their tree.",
        subcommands: [Create.self, Get.self, List.self, Move.self, Delete.self, Tree.self])

    typealias Client = Switchboard_Organization_V1_OrganizationService_Client
    typealias Organization = Switchboard_Organization_V1_Organization

    /// The organization service's address and the caller's token.
    struct Connection: ParsableArguments {
        @Option(help: "host:port of the organization service (env CRMCTL_ORGANIZATION_ADDR).")
        var server: String = ProcessInfo.processInfo.environment["CRMCTL_ORGANIZATION_ADDR"] ?? "127.0.0.1:50062"
        @Option(help: "Bearer token (env CRMCTL_TOKEN); `crmctl token` mints development tokens.")
        var token: String?
        @Option(help: "Output: table, or json (the response in proto3 JSON, one object per line).")
        var output: OutputFormat = .table
        @Option(help: "Call timeout in seconds.")
        var timeout: Double = 10

        func client() throws -> (Client, CallOptions) {
            let (host, port, options) = try callSettings(server: server, token: token, timeout: timeout)
            return (Client(client: RPCClient(transport: GRPCChannel(host: host, port: port))), options)
        }
    }

    static func print(_ organizations: [Organization], format: OutputFormat) throws {
        switch format {
        case .json: for o in organizations { try Printer.json(o) }
        case .table:
            Swift.print(["ID", "NAME", "DOMAINS", "PARENT", "TAGS", "ETAG"].joined(separator: "\t"))
            for o in organizations {
                let deleted = o.audit?.deleteTime != nil ? " (deleted)" : ""
                Swift.print(
                    [o.id, o.name + deleted, o.domains.joined(separator: ","), o.parentId, o.tags.joined(separator: ","), o.etag]
                        .joined(separator: "\t"))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        @OptionGroup var connection: Connection
        @Argument(help: "Name.") var name: String
        @Option(help: "Domain (repeatable).") var domain: [String] = []
        @Option(help: "Industry.") var industry: String?
        @Option(help: "Tag (repeatable).") var tag: [String] = []
        @Option(help: "Parent organization id.") var parent: String?
        @Option(help: "Idempotency key (a retry with the same key changes nothing).") var requestId: String = UUID().uuidString

        func run() async throws {
            let (client, options) = try connection.client()
            var organization = Organization()
            organization.name = name
            organization.domains = domain
            organization.industry = industry ?? ""
            organization.tags = tag
            organization.parentId = parent ?? ""
            var request = Switchboard_Organization_V1_CreateOrganizationRequest()
            request.organization = organization
            request.requestId = requestId
            try Orgs.print([try await reporting { try await client.createOrganization(request, options: options) }], format: connection.output)
        }
    }

    struct Get: AsyncParsableCommand {
        @OptionGroup var connection: Connection
        @Argument(help: "Organization id.") var id: String
        @Flag(help: "Also show a deleted organization.") var includeDeleted = false

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Organization_V1_GetOrganizationRequest()
            request.id = id
            request.includeDeleted = includeDeleted
            try Orgs.print([try await reporting { try await client.getOrganization(request, options: options) }], format: connection.output)
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var connection: Connection
        @Option(help: "Only children of this organization.") var parent: String?
        @Option(help: "Names starting with this text.") var namePrefix: String?
        @Option(help: "The organization with this domain.") var domain: String?
        @Option(help: "Only organizations with this tag.") var tag: String?
        @Option(help: "Page size.") var pageSize: Int32 = 50
        @Option(help: "Page token from a previous page.") var pageToken: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Organization_V1_ListOrganizationsRequest()
            request.parentId = parent ?? ""
            request.namePrefix = namePrefix ?? ""
            request.domain = domain ?? ""
            request.tag = tag ?? ""
            var page = Switchboard_Common_V1_PageRequest()
            page.pageSize = pageSize
            page.pageToken = pageToken
            request.page = page
            let response = try await reporting { try await client.listOrganizations(request, options: options) }
            try Orgs.print(response.organizations, format: connection.output)
            if let next = response.page?.nextPageToken, !next.isEmpty, connection.output == .table {
                FileHandle.standardError.write(Data("next page: --page-token \(next)\n".utf8))
            }
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move an organization (with everything below it) under another, or to the top.")
        @OptionGroup var connection: Connection
        @Argument(help: "Organization id.") var id: String
        @Option(help: "The new parent's id; omit to make it top-level.") var parent: String?
        @Option(help: "Only if the organization still has this etag.") var etag: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var organization = Organization()
            organization.id = id
            organization.parentId = parent ?? ""
            var request = Switchboard_Organization_V1_UpdateOrganizationRequest()
            request.organization = organization
            request.updateMask = Google_Protobuf_FieldMask(paths: ["parent_id"])
            request.etag = etag
            request.requestId = UUID().uuidString
            try Orgs.print([try await reporting { try await client.updateOrganization(request, options: options) }], format: connection.output)
        }
    }

    struct Delete: AsyncParsableCommand {
        @OptionGroup var connection: Connection
        @Argument(help: "Organization id.") var id: String
        @Option(help: "Only if the organization still has this etag.") var etag: String = ""

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Organization_V1_DeleteOrganizationRequest()
            request.id = id
            request.etag = etag
            request.requestId = UUID().uuidString
            try Orgs.print([try await reporting { try await client.deleteOrganization(request, options: options) }], format: connection.output)
        }
    }

    struct Tree: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an organization and everything below it, indented by depth.")
        @OptionGroup var connection: Connection
        @Argument(help: "Root organization id.") var id: String
        @Option(help: "Levels below the root (0: all, up to 64).") var maxDepth: Int32 = 0

        func run() async throws {
            let (client, options) = try connection.client()
            var request = Switchboard_Organization_V1_StreamOrganizationTreeRequest()
            request.id = id
            request.maxDepth = maxDepth
            let format = connection.output
            try await reporting {
                try await client.streamOrganizationTree(request, options: options) { nodes in
                    for try await node in nodes {
                        switch format {
                        case .json: try Printer.json(node)
                        case .table:
                            let o = node.organization ?? Organization()
                            Swift.print(String(repeating: "  ", count: Int(node.depth)) + "\(o.name)\t\(o.id)")
                        }
                    }
                }
            }
        }
    }
}
