import CommunicationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

typealias TemplateProto = Switchboard_Communication_V1_Template

extension CommClient {
    func createTemplate(
        _ name: String, channel: Switchboard_Communication_V1_Channel = .email, subject: String = "", body: String, requestID: String = "",
        format: Switchboard_Communication_V1_BodyFormat = .unspecified
    ) async throws -> TemplateProto {
        var template = TemplateProto()
        template.name = name
        template.channel = channel
        template.subject = subject
        template.body = body
        template.bodyFormat = format
        var request = Switchboard_Communication_V1_CreateTemplateRequest()
        request.template = template
        request.requestId = requestID
        return try await stub.createTemplate(request, options: options)
    }

    func updateTemplate(_ id: String, name: String, body: String, subject: String = "", expectedVersion: Int32 = 0) async throws -> TemplateProto {
        var template = TemplateProto()
        template.id = id
        template.name = name
        template.channel = .email
        template.subject = subject
        template.body = body
        var request = Switchboard_Communication_V1_UpdateTemplateRequest()
        request.template = template
        request.expectedVersion = expectedVersion
        return try await stub.updateTemplate(request, options: options)
    }

    func getTemplate(_ id: String, version: Int32 = 0) async throws -> TemplateProto {
        var request = Switchboard_Communication_V1_GetTemplateRequest()
        request.id = id
        request.version = version
        return try await stub.getTemplate(request, options: options)
    }

    func render(_ id: String, version: Int32 = 0, values: [String: String]) async throws -> Switchboard_Communication_V1_RenderTemplateResponse {
        var request = Switchboard_Communication_V1_RenderTemplateRequest()
        request.templateId = id
        request.version = version
        request.values = values
        return try await stub.renderTemplate(request, options: options)
    }

    func listTemplates(pageSize: Int32 = 0, token: String = "") async throws -> Switchboard_Communication_V1_ListTemplatesResponse {
        var request = Switchboard_Communication_V1_ListTemplatesRequest()
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listTemplates(request, options: options)
    }
}

/// Templates over HTTP/2 and PostgreSQL: versions, rendering with missing variables, interactions naming versions.
@Suite("Communication service: templates", .serialized)
final class TemplateTests {
    let harness: CommunicationHarness
    init() async throws { harness = try await CommunicationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("versions: an update makes version N+1, old versions stay readable, a stale expected_version is ABORTED")
    func versions() async throws {
        let client = try await harness.client(tenant: tenant())
        let v1 = try await client.createTemplate(
            "Welcome", subject: "Hi {{contact.first_name}}", body: "Welcome, {{contact.first_name}}!", requestID: "t1")
        #expect(v1.version == 1 && v1.variables == ["contact.first_name"])
        #expect(
            try await client.createTemplate(
                "Welcome", subject: "Hi {{contact.first_name}}", body: "Welcome, {{contact.first_name}}!", requestID: "t1")
                == v1)
        #expect(await code { _ = try await client.createTemplate("Welcome", subject: "Hi", body: "x", requestID: "t1") } == .invalidArgument)
        let v2 = try await client.updateTemplate(v1.id, name: "Welcome", body: "Hello {{ contact.first_name }} ({{custom.tier}})", expectedVersion: 1)
        #expect(v2.version == 2 && v2.variables == ["contact.first_name", "custom.tier"] && v2.subject.isEmpty)
        #expect(await code { _ = try await client.updateTemplate(v1.id, name: "W", body: "b", expectedVersion: 1) } == .aborted)
        #expect(try await client.getTemplate(v1.id) == v2)
        #expect(try await client.getTemplate(v1.id, version: 1) == v1)
        #expect(await code { _ = try await client.getTemplate(v1.id, version: 3) } == .notFound)
        #expect(await code { _ = try await client.updateTemplate(newID(), name: "W", body: "b") } == .notFound)
        let other = try await client.createTemplate("Another", body: "b")
        #expect(try await client.listTemplates().templates.map(\.id) == [other.id, v1.id])
        let page = try await client.listTemplates(pageSize: 1)
        #expect(page.templates.map(\.id) == [other.id])
        #expect(try await client.listTemplates(pageSize: 1, token: page.page?.nextPageToken ?? "").templates.map(\.version) == [2])
    }

    @Test("rendering fills contact and custom fields and reports missing variables instead of sending blanks")
    func rendering() async throws {
        let client = try await harness.client(tenant: tenant())
        let template = try await client.createTemplate("Renewal", subject: "{{contact.first_name}}, renew", body: "Your {{custom.tier}} plan ends.")
        let complete = try await client.render(template.id, values: ["contact.first_name": "Ada", "custom.tier": "gold"])
        #expect(complete.complete && complete.subject == "Ada, renew" && complete.body == "Your gold plan ends." && complete.version == 1)
        let partial = try await client.render(template.id, values: ["contact.first_name": "Ada", "custom.tier": ""])
        #expect(!partial.complete && partial.missingVariables == ["custom.tier"] && partial.body.isEmpty)
        #expect(fields(await rpcError { _ = try await client.render(template.id, version: -1, values: [:]) }) == ["version"])
        #expect(fields(await rpcError { _ = try await client.render("", values: [:]) }) == ["template_id"])
        let tooLong = await rpcError { _ = try await client.render(template.id, values: ["custom.tier": String(repeating: "x", count: 4097)]) }
        #expect(tooLong?.code == .invalidArgument)
    }

    @Test("invalid templates are INVALID_ARGUMENT naming the field, a quadratic-bait body among them")
    func invalid() async throws {
        let client = try await harness.client(tenant: tenant())
        #expect(fields(await rpcError { _ = try await client.createTemplate("", channel: .unspecified, body: "") }) == ["template.channel"])
        #expect(fields(await rpcError { _ = try await client.createTemplate(" ", body: "") }) == ["template.name", "template.body"])
        #expect(fields(await rpcError { _ = try await client.createTemplate("n", body: "Hi {{ first name }}") }) == ["template.body"])
        let bait = await rpcError { _ = try await client.createTemplate("n", body: String(repeating: "{{x", count: 21_000)) }
        #expect(fields(bait) == ["template.body"])
        #expect(fields(await rpcError { _ = try await client.createTemplate("n", body: String(repeating: "b", count: 65537)) }) == ["template.body"])
        #expect(try await client.listTemplates().templates.isEmpty)
    }

    @Test("an interaction records the template version used; an unknown version is NOT_FOUND; the pair is checked")
    func interactionsNameVersions() async throws {
        let client = try await harness.client(tenant: tenant())
        let template = try await client.createTemplate("T", body: "b")
        let logged = try await client.log(.email) {
            $0.templateId = template.id
            $0.templateVersion = 1
        }
        #expect(logged.templateId == template.id && logged.templateVersion == 1)
        #expect(try await client.get(logged.id).templateVersion == 1)
        #expect(
            await code {
                _ = try await client.log(.email) {
                    $0.templateId = template.id
                    $0.templateVersion = 2
                }
            } == .notFound)
        #expect(fields(await rpcError { _ = try await client.log(.email) { $0.templateId = template.id } }) == ["interaction.template_version"])
        #expect(fields(await rpcError { _ = try await client.log(.email) { $0.templateVersion = 1 } }) == ["interaction.template_id"])
        _ = try await client.updateTemplate(template.id, name: "T", body: "b2")
        let moved = try await client.update(logged.id, paths: ["template_version"]) {
            $0.templateId = template.id
            $0.templateVersion = 2
        }
        #expect(moved.templateVersion == 2)
        let cleared = try await client.update(logged.id, paths: ["template_id"]) { _ in }
        #expect(cleared.templateId.isEmpty && cleared.templateVersion == 0)
    }

    @Test("tenant B cannot read, render, update or use tenant A's templates; readers cannot write them")
    func isolationAndAuth() async throws {
        let t = tenant()
        let a = try await harness.client(tenant: t)
        let b = try await harness.client(tenant: tenant())
        let template = try await a.createTemplate("Secret", body: "b {{x}}")
        #expect(await code { _ = try await b.getTemplate(template.id) } == .notFound)
        #expect(await code { _ = try await b.render(template.id, values: ["x": "1"]) } == .notFound)
        #expect(await code { _ = try await b.updateTemplate(template.id, name: "mine", body: "b") } == .notFound)
        #expect(try await b.listTemplates().templates.isEmpty)
        #expect(
            await code {
                _ = try await b.log(.email) {
                    $0.templateId = template.id
                    $0.templateVersion = 1
                }
            } == .notFound)
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.render(template.id, values: ["x": "1"]).body == "b 1")
        #expect(await code { _ = try await reader.createTemplate("n", body: "b") } == .permissionDenied)
        #expect(await code { _ = try await reader.updateTemplate(template.id, name: "n", body: "b") } == .permissionDenied)
        #expect(try await a.getTemplate(template.id).name == "Secret")
    }
}
