import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

extension CommunicationHandler {
    private static func templateWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<TemplateRecord, Switchboard_Communication_V1_Template> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { TemplateMapping.proto($0) })
    }

    /// A version number from a request: 0 means the latest.
    private static func version(_ value: Int32, field: String) throws -> Int? {
        guard value >= 0 else { throw CommunicationError.invalid([Violation(field, "must not be negative")]) }
        return value == 0 ? nil : Int(value)
    }

    /// The `CreateTemplate` RPC (see `communication.proto`).
    public func createTemplate(
        request: Switchboard_Communication_V1_CreateTemplateRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Template {
        guard let template = request.template else { throw CommunicationError.invalid([Violation("template", "is required", reason: "REQUIRED")]) }
        let data = try TemplateMapping.data(template)
        let write = try Self.templateWrite(request, request.requestId, Methods.createTemplate)
        return try write.response(try await templates.create(data, actor: try context.actor(), write: write.options))
    }

    /// The `UpdateTemplate` RPC (see `communication.proto`).
    public func updateTemplate(
        request: Switchboard_Communication_V1_UpdateTemplateRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Template {
        guard let template = request.template else { throw CommunicationError.invalid([Violation("template", "is required", reason: "REQUIRED")]) }
        let id = try InteractionMapping.requiredID(template.id, field: "template.id")
        let expected = try Self.version(request.expectedVersion, field: "expected_version")
        let data = try TemplateMapping.data(template)
        let write = try Self.templateWrite(request, request.requestId, Methods.updateTemplate)
        return try write.response(
            try await templates.update(
                id: id, data, keepingFormat: template.bodyFormat == .unspecified, expectedVersion: expected, actor: try context.actor(),
                write: write.options))
    }

    /// The `GetTemplate` RPC (see `communication.proto`).
    public func getTemplate(
        request: Switchboard_Communication_V1_GetTemplateRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Template {
        TemplateMapping.proto(
            try await templates.get(
                id: try InteractionMapping.requiredID(request.id, field: "id"), version: try Self.version(request.version, field: "version"),
                actor: try context.actor()))
    }

    /// The `ListTemplates` RPC (see `communication.proto`).
    public func listTemplates(
        request: Switchboard_Communication_V1_ListTemplatesRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListTemplatesResponse {
        let (records, next) = try await templates.list(
            pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Communication_V1_ListTemplatesResponse()
        response.templates = records.map(TemplateMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    /// The `RenderTemplate` RPC (see `communication.proto`).
    public func renderTemplate(
        request: Switchboard_Communication_V1_RenderTemplateRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_RenderTemplateResponse {
        let rendering = try await templates.render(
            id: try InteractionMapping.requiredID(request.templateId, field: "template_id"),
            version: try Self.version(request.version, field: "version"), values: request.values,
            contactID: request.contactId.isEmpty ? nil : try InteractionMapping.requiredID(request.contactId, field: "contact_id"),
            actor: try context.actor())
        var response = Switchboard_Communication_V1_RenderTemplateResponse()
        response.version = Int32(clamping: rendering.version)
        response.complete = rendering.complete
        response.missingVariables = rendering.missing
        response.subject = rendering.subject
        response.body = rendering.body
        return response
    }
}
