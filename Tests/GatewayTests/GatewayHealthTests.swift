import ContactsService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Active health checks of upstream addresses: two contacts services behind one gateway, each on its own database, so
/// which one answered shows in the answer (the contact exists in one only).
@Suite("Gateway upstream health", .serialized)
final class GatewayHealthTests {
    let serving: ServiceHarness
    let draining: ServiceHarness

    init() async throws {
        serving = try await ServiceHarness.start(ContactsService.description)
        draining = try await ServiceHarness.start(ContactsService.description)
    }

    deinit {
        let (a, b) = (serving, draining)
        Task {
            await a.stop()
            await b.stop()
        }
    }

    /// The statuses of `count` reads of a contact that exists behind `serving` only.
    private func statuses(_ gw: GatewayHarness, id: String, token: String, count: Int = 20) async throws -> [Int] {
        var statuses: [Int] = []
        for _ in 0..<count { statuses.append(try await gw.request("GET", "/v1/contacts/\(id)", token: token).status) }
        return statuses
    }

    @Test("an address whose health is NOT_SERVING takes no requests while another serves; without checks it keeps getting them")
    func avoidsNotServing() async throws {
        let tenant = "gw-" + UUID().uuidString.prefix(8).lowercased()
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = "Ada"
        contact.name = name
        request.contact = contact
        let stub = Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: serving.channel))
        let id = try await stub.createContact(request, options: try await serving.options(tenant: tenant)).id
        let token = try await GatewayHarness.token(tenant: tenant)
        let both = "127.0.0.1:\(serving.port),127.0.0.1:\(draining.port)"
        // Probes every second, each with a second to answer, and three unanswered in a row before an address counts as
        // not serving: at 0.2 s, three probes of a loaded test process went unanswered and took a serving address out.
        let checked = try await GatewayHarness.start(
            targets: ["contacts": both], environment: ["SWITCHBOARD_GATEWAY_HEALTH_CHECK_SECONDS": "1"])
        let unchecked = try await GatewayHarness.start(
            targets: ["contacts": both], environment: ["SWITCHBOARD_GATEWAY_HEALTH_CHECK_SECONDS": "0"])
        defer {
            Task {
                await checked.stop()
                await unchecked.stop()
            }
        }
        // Both serve: requests are spread over both (the other database does not have the contact).
        #expect(Set(try await statuses(checked, id: id, token: token)) == [200, 404])

        // The second one goes NOT_SERVING (as while its database is down, or it drains) but still answers calls.
        draining.assembly.monitor.markShuttingDown()
        #expect(
            try await eventually(timeout: .seconds(10)) {
                try await statuses(checked, id: id, token: token, count: 6) == Array(repeating: 200, count: 6)
            })
        #expect(try await statuses(checked, id: id, token: token) == Array(repeating: 200, count: 20))
        // Without health checks the gateway cannot know: the draining address keeps its share.
        #expect(try await statuses(unchecked, id: id, token: token).contains(404))

        // Neither serves: requests go to both again rather than failing at the gateway.
        serving.assembly.monitor.markShuttingDown()
        try await Task.sleep(for: .milliseconds(2500))
        #expect(Set(try await statuses(checked, id: id, token: token)) == [200, 404])
    }
}
