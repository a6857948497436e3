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

/// Templates rendered with the recipient's own record (`contact.…`, `custom.…`), as the contacts feed brings it: in
/// RenderTemplate, SendMessage and campaigns.
@Suite("Communication service: templates with contact fields", .serialized)
final class ContactFieldsTests {
    let provider: FakeProvider
    let harness: CommunicationHarness

    init() async throws { (provider, harness) = try await CommunicationHarness.startWithProvider() }
    deinit {
        let (h, p) = (harness, provider)
        Task {
            await h.stop()
            await p.stop()
        }
    }

    /// Applies a contacts-feed event carrying `contact` as the consumer would.
    private func apply(_ t: String, _ kind: Switchboard_Common_V1_ChangeKind, _ contact: Switchboard_Contacts_V1_Contact) async throws {
        var e = Switchboard_Common_V1_ChangeEvent()
        e.tenantId = t
        e.resourceType = "switchboard.contacts.v1.Contact"
        e.resourceId = contact.id
        e.kind = kind
        e.resource = try Google_Protobuf_Struct(protoJSONText: try contact.protoJSONText())
        try await harness.applyContacts([e])
    }

    private func contact(given: String = "", family: String = "", email: String, custom: String = "{}") throws -> Switchboard_Contacts_V1_Contact {
        var c = Switchboard_Contacts_V1_Contact()
        c.id = newID()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        name.family = family
        c.name = name
        var mail = Switchboard_Contacts_V1_Email()
        mail.address = email
        mail.primary = true
        c.emails = [mail]
        c.customFields = try Google_Protobuf_Struct(protoJSONText: custom)
        return c
    }

    private func render(
        _ client: CommClient, _ template: String, contact: String = "", values: [String: String] = [:]
    ) async throws -> Switchboard_Communication_V1_RenderTemplateResponse {
        var request = Switchboard_Communication_V1_RenderTemplateRequest()
        request.templateId = template
        request.contactId = contact
        request.values = values
        return try await client.stub.renderTemplate(request, options: client.options)
    }

    @Test("the record's values win; a caller's value stands in where the record has none")
    func precedence() {
        let values = TemplateRules.values(
            ["contact.name.given": "friend", "offer": "10%", "custom.tier": "basic"], contact: ["custom.tier": "gold", "contact.email": ""])
        #expect(values == ["contact.name.given": "friend", "offer": "10%", "custom.tier": "gold"])
        #expect(TemplateRules.isContactField("contact.name.given") && TemplateRules.isContactField("custom.tier"))
        #expect(!TemplateRules.isContactField("contacts") && !TemplateRules.isContactField("offer"))
    }

    @Test("RenderTemplate and SendMessage fill contact.… and custom.… from the record; what it lacks is named")
    func renderAndSend() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try contact(given: "Ada", family: "Lovelace", email: "ada@example.com", custom: #"{"tier": "gold", "seats": 12, "vip": true}"#)
        try await apply(t, .created, ada)
        let template = try await client.createTemplate(
            "Welcome", subject: "Hello {{contact.name.given}}",
            body: "Dear {{contact.name.display}} ({{contact.email}}): {{custom.tier}}, {{custom.seats}} seats, VIP {{custom.vip}}. {{offer}}")
        let preview = try await render(client, template.id, contact: ada.id, values: ["offer": "Welcome aboard"])
        #expect(preview.complete && preview.subject == "Hello Ada", "\(preview)")
        #expect(preview.body == "Dear Ada Lovelace (ada@example.com): gold, 12 seats, VIP true. Welcome aboard", "\(preview.body)")
        // Without a contact, the caller's values only, as before.
        let bare = try await render(client, template.id, values: ["offer": "x"])
        #expect(!bare.complete && bare.missingVariables.contains("contact.name.given") && bare.missingVariables.contains("custom.tier"))

        _ = try await client.recordConsent(contact: ada.id)
        let send = try await client.send(contact: ada.id, values: ["offer": "Welcome aboard"], listed: false) {
            $0.body = ""
            $0.subject = ""
            $0.templateId = template.id
        }
        #expect(send.subject == "Hello Ada" && send.body.hasPrefix("Dear Ada Lovelace"), "\(send)")
        // A change of the record reaches the next message; a field it lost is named, and a caller's value stands in.
        var renamed = ada
        renamed.name?.given = "Augusta"
        renamed.customFields = try Google_Protobuf_Struct(protoJSONText: #"{"seats": 2.5}"#)
        try await apply(t, .updated, renamed)
        let error = await rpcError {
            _ = try await client.send(contact: ada.id, listed: false) {
                $0.body = ""
                $0.subject = ""
                $0.templateId = template.id
            }
        }
        #expect(
            error?.code == .invalidArgument
                && fields(error) == ["template_values[custom.tier]", "template_values[custom.vip]", "template_values[offer]"])
        let fallback = try await client.send(contact: ada.id, values: ["custom.tier": "standard", "custom.vip": "no", "offer": "-"], listed: false) {
            $0.body = ""
            $0.subject = ""
            $0.templateId = template.id
        }
        #expect(fallback.subject == "Hello Augusta" && fallback.body.contains("standard, 2.5 seats, VIP no"), "\(fallback.body)")
        // Deleted: the record is forgotten with the addresses.
        var deleted = renamed
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.deleteTime = Date()
        deleted.audit = audit
        try await apply(t, .deleted, deleted)
        #expect(!(try await render(client, template.id, contact: ada.id, values: ["offer": "x"])).complete)
        // Another tenant's contact of the same id is not read.
        let other = try await harness.client(tenant: tenant())
        let theirs = try await other.createTemplate("T", subject: "Hi {{contact.name.given}}", body: "b")
        try await apply(t, .updated, renamed)
        #expect(!(try await render(other, theirs.id, contact: ada.id)).complete)
    }

    @Test("an HTML template escapes every value in its body, the record's too; the send and the provider's payload say HTML")
    func html() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let mallory = try contact(given: "<img src=x onerror=alert(1)>", email: "mallory@example.com")
        try await apply(t, .created, mallory)
        _ = try await client.recordConsent(contact: mallory.id)
        let template = try await client.createTemplate(
            "Html", subject: "For {{contact.name.given}}", body: "<p>Dear {{contact.name.given}}, {{note}}</p>", format: .html)
        #expect(template.bodyFormat == .html)
        let send = try await client.send(contact: mallory.id, to: "mallory@example.com", values: ["note": "Tom & Jerry"], listed: false) {
            $0.body = ""
            $0.subject = ""
            $0.templateId = template.id
        }
        #expect(send.bodyFormat == .html && send.body == "<p>Dear &lt;img src=x onerror=alert(1)&gt;, Tom &amp; Jerry</p>", "\(send.body)")
        #expect(send.subject == "For <img src=x onerror=alert(1)>")
        #expect(try await client.settled(send.id).status == .sent)
        let posted = try #require(provider.requests.first { $0.idempotencyKey == send.id })
        let message = try Switchboard_Communication_V1_ProviderMessage(protoJSONText: String(decoding: posted.body, as: UTF8.self))
        #expect(message.bodyFormat == .html && message.body == send.body)
        // A plain send says TEXT; HTML without a template is the caller's own markup; a format against the template's,
        // HTML for SMS and an SMS template in HTML are refused, named.
        let plain = try await client.send(contact: mallory.id, to: "mallory@example.com", listed: false)
        #expect(plain.bodyFormat == .text)
        let own = try await client.send(contact: mallory.id, to: "mallory@example.com", body: "<b>hi</b>", listed: false) { $0.bodyFormat = .html }
        #expect(own.bodyFormat == .html && own.body == "<b>hi</b>")
        let against = await rpcError {
            _ = try await client.send(contact: mallory.id, to: "mallory@example.com", values: ["note": "n"], listed: false) {
                $0.body = ""
                $0.subject = ""
                $0.templateId = template.id
                $0.bodyFormat = .text
            }
        }
        #expect(against?.code == .invalidArgument && fields(against) == ["send.body_format"])
        let sms = await rpcError {
            _ = try await client.send(contact: mallory.id, to: "+1 555 0100") {
                $0.channel = .sms
                $0.bodyFormat = .html
            }
        }
        // The helper's subject too: an SMS has none.
        #expect(sms?.code == .invalidArgument && fields(sms) == ["send.body_format", "send.subject"])
        let smsTemplate = await rpcError { _ = try await client.createTemplate("S", channel: .sms, subject: "Hi", body: "b", format: .html) }
        #expect(smsTemplate?.code == .invalidArgument && fields(smsTemplate) == ["template.body_format", "template.subject"])
        let unsafe = await rpcError { _ = try await client.createTemplate("U", body: "<a href=\"{{custom.site}}\">site</a>", format: .html) }
        #expect(unsafe?.code == .invalidArgument && fields(unsafe) == ["template.body"])
        // An update that does not state the format keeps the template's: a client that does not know the field cannot
        // turn an HTML template into text.
        let updated = try await client.updateTemplate(template.id, name: "Html", body: "<p>Hello {{contact.name.given}}</p>")
        #expect(updated.version == 2 && updated.bodyFormat == .html)

        // A campaign with the HTML template: each recipient's values escaped, the payload says HTML.
        let campaign = try await client.createCampaign(template: template.id, contacts: [mallory.id], values: [:])
        let last = try #require(try await client.watchProgress(campaign.id).last)
        #expect(last.sent == 1, "\(last)")
        let sent = try #require(try await client.sends(campaign: campaign.id).sends.first)
        #expect(sent.bodyFormat == .html && sent.body == "<p>Hello &lt;img src=x onerror=alert(1)&gt;</p>", "\(sent.body)")
        let campaignPost = try #require(provider.requests.first { $0.idempotencyKey == sent.id })
        #expect(
            try Switchboard_Communication_V1_ProviderMessage(protoJSONText: String(decoding: campaignPost.body, as: UTF8.self)).bodyFormat == .html)
    }

    @Test("a campaign renders each recipient's own fields; one whose record lacks a field with no fallback is skipped, named")
    func campaign() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let grace = try contact(given: "Grace", email: "grace@example.com")
        let alan = try contact(given: "Alan", email: "alan@example.com", custom: #"{"tier": "gold"}"#)
        let nameless = try contact(email: "nameless@example.com", custom: #"{"tier": "gold"}"#)
        for c in [grace, alan, nameless] {
            try await apply(t, .created, c)
            _ = try await client.recordConsent(contact: c.id)
        }
        let template = try await client.createTemplate(
            "Tiered", subject: "For {{contact.name.given}}", body: "Hi {{contact.name.given}}, {{custom.tier}}")
        // A shared value for a non-contact placeholder is still required up front.
        let missingShared = try await client.createTemplate("Shared", subject: "s", body: "{{contact.name.given}} {{offer}}")
        let error = await rpcError { _ = try await client.createCampaign(template: missingShared.id, contacts: [grace.id], values: [:]) }
        #expect(error?.code == .invalidArgument && fields(error) == ["campaign.template_values[offer]"])
        // A misspelt record field is not one: it needs a value up front, instead of every recipient being skipped.
        let misspelt = try await client.createTemplate("Misspelt", subject: "s", body: "{{contact.first_name}}")
        let refused = await rpcError { _ = try await client.createCampaign(template: misspelt.id, contacts: [grace.id], values: [:]) }
        #expect(refused?.code == .invalidArgument && fields(refused) == ["campaign.template_values[contact.first_name]"])

        let created = try await client.createCampaign(
            template: template.id, contacts: [grace.id, alan.id, nameless.id], values: ["custom.tier": "standard"])
        let last = try #require(try await client.watchProgress(created.id).last)
        #expect(last.status == .completed && last.sent == 2 && last.skipped == 1, "\(last)")
        let bodies = Set(
            provider.requests.map { String(decoding: $0.body, as: UTF8.self) }.filter { $0.contains("Hi Grace") || $0.contains("Hi Alan") }
                .map { $0.contains("Hi Grace, standard") ? "grace" : $0.contains("Hi Alan, gold") ? "alan" : "wrong" })
        #expect(bodies == ["grace", "alan"])
        let skipped = try await client.recipients(created.id, state: .skipped).recipients
        #expect(skipped.map(\.contactId) == [nameless.id])
        #expect(skipped.first?.reason == "the contact's record has no contact.name.given, which the template uses", "\(skipped)")
    }
}
