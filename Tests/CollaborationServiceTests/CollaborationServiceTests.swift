import CollaborationService
import Foundation
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// What the service does as a whole: ExportSubject, the cross-tenant feed, a stock grpcio client, configuration.
@Suite("Collaboration service", .serialized)
final class CollaborationServiceTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("ExportSubject streams every note (private and deleted too), comment and file about a contact, to admins only")
    func exportSubject() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let admin = try await harness.client(tenant: tenantID, user: "boss", roles: [.admin])
        let contact = subject()
        let secret = try await author.createNote(about: [contact], body: "private", visibility: .private)
        let deleted = try await author.createNote(about: [contact, subject(.organization)], body: "gone")
        _ = try await author.deleteNote(deleted.id)
        _ = try await author.createNote(about: [subject()], body: "someone else")
        let onNote = try await author.comment(note: secret.id)
        let onRecord = try await author.comment(subject: contact)
        var file = Switchboard_Collaboration_V1_File()
        file.name = "scan.pdf"
        file.sizeBytes = 0
        file.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        file.subjects = [contact]
        var metadata = Switchboard_Collaboration_V1_UploadFileMetadata()
        metadata.file = file
        let stored = try await author.stub.uploadFile(options: author.options) { [metadata] call in
            var head = Switchboard_Collaboration_V1_UploadFileRequest()
            head.part = .metadata(metadata)
            try await call.send(head)
        }.message
        var request = Switchboard_Collaboration_V1_ExportSubjectRequest()
        request.contactId = contact.id
        let records = try await admin.stub.exportSubject(request, options: admin.options) { stream in
            var all: [Switchboard_Collaboration_V1_SubjectRecord] = []
            for try await record in stream { all.append(record) }
            return all
        }
        var notes: [String] = [], comments: [String] = [], files: [String] = []
        for record in records {
            switch record.record {
            case .note(let n): notes.append(n.id)
            case .comment(let c): comments.append(c.id)
            case .file(let f): files.append(f.id)
            default: break
            }
        }
        #expect(files == [stored.id])
        #expect(Set(notes) == [secret.id, deleted.id])
        #expect(Set(comments) == [onNote.id, onRecord.id])
        let denied = await rpcError {
            _ = try await author.stub.exportSubject(request, options: author.options) { stream in for try await _ in stream {} }
        }
        #expect(denied?.code == .permissionDenied)
        request.contactId = "x"
        let bad = await rpcError {
            _ = try await admin.stub.exportSubject(request, options: admin.options) { stream in for try await _ in stream {} }
        }
        #expect(fields(bad) == ["contact_id"])
    }

    @Test("a service identity follows every tenant's changes through the kit's cross-tenant feed, and calls nothing else")
    func crossTenantFeed() async throws {
        let a = try await harness.client(tenant: tenant())
        let b = try await harness.client(tenant: tenant())
        let noteA = try await a.createNote(about: [subject()])
        let noteB = try await b.createNote(about: [subject()])
        let token = try await ServiceHarness.serviceToken()
        let service = try await harness.service.options(tenant: "", token: token)
        let feed = Switchboard_Common_V1_ChangeFeedService_Client(client: RPCClient(transport: harness.channel))
        let seen = try await feed.watchAllChanges(Switchboard_Common_V1_WatchAllChangesRequest(), options: service) { batches in
            var ids: [String] = []
            for try await batch in batches {
                ids += batch.events.map(\.resourceId)
                if ids.count >= 2 { break }
            }
            return ids
        }
        #expect(Set(seen) == [noteA.id, noteB.id])
        let stub = CollaborationStub(client: RPCClient(transport: harness.channel))
        var get = Switchboard_Collaboration_V1_GetNoteRequest()
        get.id = noteA.id
        #expect(await rpcError { _ = try await stub.getNote(get, options: service) }?.code == .permissionDenied)
    }

    @Test("a stock grpcio client calls the collaboration RPCs from stubs generated from Protos/")
    func grpcioClient() async throws {
        let token = try await ServiceHarness.token(tenant: tenant(), roles: [.user])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("collaboration-grpcio-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = await spawnAndWait(
            [
                pythonPath, repositoryRoot.appendingPathComponent("Tests/Interop/collaboration_client.py").path,
                "--port", String(harness.service.port), "--token", token,
            ],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath], outputPath: output)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("PASS collaboration_client"), "\(log)")
    }

    @Test("settings: the file limit and the upload streams are checked, uploads must leave the pool some connections")
    func configuration() throws {
        _ = try CollaborationService.description(environment: [:])
        #expect(throws: ConfigurationError.self) {
            _ = try CollaborationService.description(environment: ["SWITCHBOARD_COLLABORATION_MAX_FILE_BYTES": "0"])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try CollaborationService.description(environment: ["SWITCHBOARD_COLLABORATION_UPLOAD_STREAMS": "8", "SWITCHBOARD_DB_POOL_SIZE": "8"])
        }
        _ = try CollaborationService.description(environment: ["SWITCHBOARD_COLLABORATION_UPLOAD_STREAMS": "8", "SWITCHBOARD_DB_POOL_SIZE": "9"])
        // The communication and analytics feeds: host:port, and a token (a file, or the development secret to sign one).
        let secret = ["SWITCHBOARD_JWT_HS256_SECRET": testSecret]
        let communication = try CollaborationService.communicationFeed(
            secret.merging(["SWITCHBOARD_COLLABORATION_COMMUNICATION_ADDRESS": "comm:50063"]) { $1 })
        #expect(communication?.host == "comm" && communication?.port == 50063)
        #expect(
            try CollaborationService.analyticsFeed(secret.merging(["SWITCHBOARD_COLLABORATION_ANALYTICS_ADDRESS": "a:50065"]) { $1 })?.port == 50065)
        #expect(try CollaborationService.analyticsFeed(secret) == nil)
        #expect(throws: ConfigurationError.self) {
            _ = try CollaborationService.communicationFeed(["SWITCHBOARD_COLLABORATION_COMMUNICATION_ADDRESS": "comm:50063"])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try CollaborationService.analyticsFeed(secret.merging(["SWITCHBOARD_COLLABORATION_ANALYTICS_ADDRESS": "nope"]) { $1 })
        }
        #expect(throws: ConfigurationError.self) {
            _ = try CollaborationService.description(environment: ["SWITCHBOARD_COLLABORATION_NOTIFY_MAX_AGE_HOURS": "0"])
        }
        _ = try CollaborationService.description(environment: ["SWITCHBOARD_COLLABORATION_NOTIFY_MAX_AGE_HOURS": "8760"])
    }
}

@Suite("Collaboration service lifecycle", .serialized)
struct CollaborationLifecycleTests {
    @Test("the collaboration executable migrates, serves, reports SERVING, and exits 0 on SIGTERM")
    func sigterm() async throws {
        let harness = try await CollaborationHarness.start()
        await harness.stop()
        let port = try #require(freePort())
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_COLLABORATION_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/collaboration").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SWITCHBOARD_GRPC_PORT": String(port), "SWITCHBOARD_ADMIN_PORT": "0",
            "SWITCHBOARD_DATABASE_URL": harness.service.serviceConninfo, "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "2", "SWITCHBOARD_LOG_LEVEL": "warning",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let channel = GRPCChannel(
            host: "127.0.0.1", port: port,
            configuration: {
                var c = ClientConfiguration()
                c.initialBackoff = .milliseconds(50)
                c.maxBackoff = .milliseconds(100)
                return c
            }())
        let health = Grpc_Health_V1_Health_Client(client: RPCClient(transport: channel))
        let serving = try await eventually {
            var request = Grpc_Health_V1_HealthCheckRequest()
            request.service = "switchboard.collaboration.v1.CollaborationService"
            return (try? await health.check(request).status) == .serving
        }
        #expect(serving, "the service never reported SERVING")
        await channel.close()
        process.terminate()  // SIGTERM
        let stopped = try await eventually { !process.isRunning }
        #expect(stopped, "still running after SIGTERM")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        await waitUntilExit(process)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }
}
