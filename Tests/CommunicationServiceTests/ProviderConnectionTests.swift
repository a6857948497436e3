import CommunicationService
import Foundation
import NIOCore
import SwitchboardRuntime
import Testing

/// The provider adapter's connections: kept alive between posts, bounded, closed when idle, and never a post twice
/// when the provider closes a kept connection. Against the fake provider over real TCP.
@Suite("Communication service: provider connections", .serialized)
struct ProviderConnectionTests {
    static let secret = Array(String(repeating: "k", count: 32).utf8)

    private func adapter(_ provider: FakeProvider, keepAlive: WebhookKeepAlive?) throws -> (ProviderAdapter, WebhookClient) {
        let client = try WebhookClient(endpoint: try #require(WebhookEndpoint(url: provider.url)), keepAlive: keepAlive)
        return (ProviderAdapter(client: client, secret: Self.secret, timeout: .seconds(5)), client)
    }

    private func deliver(_ adapter: ProviderAdapter) async -> (key: String, verdict: ProviderAdapter.Verdict) {
        let id = UUID()
        return (id.uuidString.lowercased(), await adapter.deliver(id: id, payload: Array("{\"to\":\"x\"}".utf8), attempt: 1))
    }

    private func accepted(_ verdict: ProviderAdapter.Verdict) -> Bool {
        if case .accepted = verdict { return true }
        return false
    }

    /// Waits (up to 5 s) until `condition` holds.
    private func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<250 where !condition() { try await Task.sleep(for: .milliseconds(20)) }
        return condition()
    }

    @Test("sequential posts share one connection; without keep-alive every post opens its own")
    func reuse() async throws {
        let provider = try await FakeProvider.start()
        let (kept, client) = try adapter(provider, keepAlive: WebhookKeepAlive(maxIdleConnections: 4, idleTimeout: .seconds(30)))
        var keys: [String] = []
        for _ in 0..<20 {
            let (key, verdict) = await deliver(kept)
            #expect(verdict == .accepted("msg-\(key)"))
            keys.append(key)
        }
        #expect(provider.acceptedConnections == 1 && client.connectionsOpened == 1 && client.idleConnections == 1)
        #expect(provider.requests.map(\.idempotencyKey) == keys)
        let (plain, _) = try adapter(provider, keepAlive: nil)
        for _ in 0..<3 { #expect(accepted(await deliver(plain).verdict)) }
        #expect(provider.acceptedConnections == 4 && provider.requests.count == 23)
        client.closeIdleConnections()
        #expect(try await eventually { provider.openConnections == 0 })
        await provider.stop()
    }

    @Test("at most maxIdleConnections stay open after a burst, and none after the idle timeout")
    func bounded() async throws {
        let provider = try await FakeProvider.start()
        let (kept, client) = try adapter(provider, keepAlive: WebhookKeepAlive(maxIdleConnections: 2, idleTimeout: .milliseconds(400)))
        let verdicts = await withTaskGroup(of: ProviderAdapter.Verdict.self) { group in
            for _ in 0..<8 { group.addTask { await deliver(kept).verdict } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(verdicts.count == 8 && verdicts.allSatisfy(accepted))
        #expect(client.idleConnections <= 2)
        #expect(try await eventually { provider.openConnections <= 2 }, "\(provider.openConnections) open")
        // The idle timeout closes the rest from the client's side.
        #expect(try await eventually { provider.openConnections == 0 && client.idleConnections == 0 })
        // And the next post opens a fresh one.
        let opened = client.connectionsOpened
        #expect(accepted(await deliver(kept).verdict))
        #expect(client.connectionsOpened == opened + 1)
        await provider.stop()
    }

    @Test("a provider that closes idle connections still gets every post, and never one twice")
    func providerClosesIdle() async throws {
        // Posts spaced past the provider's idle close: each kept connection is gone by the next post. (The client must
        // also have read the close by then, or it reuses the connection and the post fails as a post the provider may
        // have read; 100 ms of margin was once too little for a full test run on two cores, hence 450.)
        let provider = try await FakeProvider.start(closeIdleAfter: .milliseconds(50))
        let (kept, client) = try adapter(provider, keepAlive: WebhookKeepAlive(maxIdleConnections: 4, idleTimeout: .seconds(30)))
        var keys: [String] = []
        for _ in 0..<6 {
            let (key, verdict) = await deliver(kept)
            #expect(verdict == .accepted("msg-\(key)"))
            keys.append(key)
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(provider.requests.map(\.idempotencyKey) == keys)
        #expect(provider.acceptedConnections == 6 && client.connectionsOpened == 6)
        await provider.stop()

        // Posts racing the provider's close (idle 5 ms, gaps of 0–10 ms): some land on a connection being closed. A post
        // whose request was not written is carried by a fresh connection; one the provider may have read is reported
        // (retryable), never posted again by the client. So no key reaches the provider twice, every accepted key
        // exactly once, and a key reported as failed not at all (this provider answers whatever it reads).
        let racing = try await FakeProvider.start(closeIdleAfter: .milliseconds(5))
        let (raced, _) = try adapter(racing, keepAlive: WebhookKeepAlive(maxIdleConnections: 4, idleTimeout: .seconds(30)))
        var outcomes: [(key: String, verdict: ProviderAdapter.Verdict)] = []
        for i in 0..<60 {
            outcomes.append(await deliver(raced))
            try await Task.sleep(for: .microseconds(UInt64((i * 2_713) % 10_000)))
        }
        let seen = racing.requests.map(\.idempotencyKey)
        #expect(Set(seen).count == seen.count, "a key was posted twice")
        for (key, verdict) in outcomes {
            if accepted(verdict) {
                #expect(seen.filter { $0 == key }.count == 1)
            } else {
                #expect(!seen.contains(key), "\(verdict)")
            }
        }
        #expect(outcomes.filter { accepted($0.verdict) }.count >= 30)
        await racing.stop()
    }
}
