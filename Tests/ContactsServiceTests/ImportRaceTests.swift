import Foundation
import SwitchboardProtos
import SwitchboardRPC
import Testing

@testable import ContactsService

/// Imports that race for the same addresses on a pool with fewer connections than batches in flight: a batch waits for
/// its turn holding a connection, so an earlier batch that has to run again must never wait for one.
@Suite("Contacts imports racing on a small pool", .serialized)
final class ImportRaceTests {
    let harness: ContactsHarness

    init() async throws {
        var limits = ContactsLimits()
        limits.importLimits.batchRows = 5
        harness = try await ContactsHarness.start(limits: limits, poolSize: 2)
    }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// Each round races anew (the code before this test failed about one round in three, after the pool's 5 s wait).
    @Test(
        "four imports of one file at once on two connections all finish: each row created once, skipped by the others",
        arguments: 0..<4)
    func racingImports(round: Int) async throws {
        let tenant = "tenant-\(round)-" + UUID().uuidString.prefix(8).lowercased()
        let client = try await harness.client(tenant: tenant)
        let file = ImportExportTests.numbered(100)
        let chunks = ImportExportTests.csv(file)
        let runs = try await withThrowingTaskGroup(of: [Switchboard_Contacts_V1_ImportRowResult].self) { group in
            for run in 0..<4 {
                group.addTask {
                    ImportExportTests.results(
                        try await ImportExportTests.runImport(client, ImportExportTests.options(id: "race-\(run)"), chunks))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for results in runs { #expect(results.map(\.row) == Array(1...100)) }
        for row in 0..<100 {
            let outcomes = runs.map { $0[row].outcome }
            #expect(outcomes.filter { $0 == .created }.count == 1, "row \(row + 1): \(outcomes)")
            #expect(outcomes.filter { $0 == .skippedDuplicate }.count == 3, "row \(row + 1): \(outcomes)")
            #expect(Set(runs.map { $0[row].contactId }).count == 1, "row \(row + 1)")
        }
        var stored = 0
        var token = ""
        repeat {
            let page = try await client.list(pageSize: 500, token: token)
            stored += page.contacts.count
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty
        #expect(stored == 100)
    }
}
