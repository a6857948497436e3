import SwitchboardRuntime
import Testing

/// The transport limits every service applies are environment settings with safe defaults and checked ranges.
@Suite("Transport settings")
struct TransportSettingsTests {
    private let secret = ["SWITCHBOARD_JWT_HS256_SECRET": String(repeating: "s", count: 32)]

    @Test("defaults bound connections, headers, timeouts and buffered request bytes")
    func defaults() throws {
        let configuration = try RuntimeConfiguration.load(service: .contacts, secret)
        #expect(configuration.maxConnections == 4096)
        #expect(configuration.maxHeaderListBytes == 16_384)
        #expect(configuration.headerTimeout == .seconds(10))
        #expect(configuration.idleTimeout == .seconds(300))
        #expect(configuration.maxBufferedRequestBytesPerStream == 1 << 20)
        #expect(configuration.maxBufferedRequestBytesPerConnection == 32 << 20)
    }

    @Test("settings are read from the environment; 0 disables the idle timeout")
    func overrides() throws {
        let configuration = try RuntimeConfiguration.load(
            service: .contacts,
            secret.merging([
                "SWITCHBOARD_MAX_CONNECTIONS": "10", "SWITCHBOARD_MAX_HEADER_LIST_BYTES": "8192",
                "SWITCHBOARD_HEADER_TIMEOUT_SECONDS": "0.5", "SWITCHBOARD_IDLE_TIMEOUT_SECONDS": "0",
                "SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_STREAM": "65536", "SWITCHBOARD_WRITE_STALL_SECONDS": "2.5",
            ]) { $1 })
        #expect(configuration.maxConnections == 10)
        #expect(configuration.maxHeaderListBytes == 8192)
        #expect(configuration.headerTimeout == .milliseconds(500))
        #expect(configuration.idleTimeout == nil)
        #expect(configuration.maxBufferedRequestBytesPerStream == 65_536)
        #expect(configuration.writeStallTimeout == .milliseconds(2500))
        #expect(try RuntimeConfiguration.load(service: .contacts, secret).writeStallTimeout == .seconds(30))
        #expect(
            try RuntimeConfiguration.load(service: .contacts, secret.merging(["SWITCHBOARD_WRITE_STALL_SECONDS": "0"]) { $1 }).writeStallTimeout
                == nil)
    }

    @Test(
        "values out of range are refused naming the variable",
        arguments: [
            ("SWITCHBOARD_MAX_CONNECTIONS", "0"), ("SWITCHBOARD_MAX_HEADER_LIST_BYTES", "99999999999999999999"),
            ("SWITCHBOARD_HEADER_TIMEOUT_SECONDS", "1e300"), ("SWITCHBOARD_IDLE_TIMEOUT_SECONDS", "-1"),
            ("SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_CONNECTION", "10"), ("SWITCHBOARD_PROTO_MAX_DEPTH", "5000"),
            ("SWITCHBOARD_PROTO_MAX_ELEMENTS", "0"), ("SWITCHBOARD_WRITE_STALL_SECONDS", "-2"),
        ])
    func outOfRange(variable: String, value: String) {
        do {
            _ = try RuntimeConfiguration.load(service: .contacts, secret.merging([variable: value]) { $1 })
            Issue.record("\(variable)=\(value) was accepted")
        } catch let error as ConfigurationError {
            #expect(error.variable == variable)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("each executable defaults to its own ports (SERVICES.md), and the environment still wins")
    func perServiceDefaults() throws {
        let expected: [(ServiceDefaults, Int, Int)] = [
            (.contacts, 50061, 9461), (.organization, 50062, 9462), (.communication, 50063, 9463),
            (.collaboration, 50064, 9464), (.analytics, 50065, 9465), (.gateway, 8080, 9460),
        ]
        for (service, grpc, admin) in expected {
            let configuration = try RuntimeConfiguration.load(service: service, secret)
            #expect(configuration.grpcPort == grpc, "\(service.name)")
            #expect(configuration.adminPort == admin, "\(service.name)")
            #expect(RuntimeConfiguration.helpText(service: service).contains("(default: \(grpc))"))
        }
        let moved = try RuntimeConfiguration.load(service: .organization, secret.merging(["SWITCHBOARD_GRPC_PORT": "6000"]) { $1 })
        #expect(moved.grpcPort == 6000)
    }
}
