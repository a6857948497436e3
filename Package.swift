// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

// Service executables and the gateway pack their relative relocations (DT_RELR, glibc 2.36+): the loader otherwise
// pages in 1.2 MB of `.rela.dyn` at start-up (3.2 MB for the gateway), which is most of what kept the idle service
// above 30 MB resident. They also export no symbols: the driver links executables with --export-dynamic, which put
// every symbol of the statically linked program in `.dynsym`/`.dynstr` (4.8 MB for communication): without them,
// communication started at 28.0 MB resident instead of 30.9 MB, and after serving a few calls at 32.7 instead of 32.9
// MB (BENCHMARKS.md). The gateway, linked so too, idles at 25 MB instead of 33.5. Nothing looks the program's own
// symbols up at run time (crash backtraces read the symbol table, which stays).
// Their text starts with the functions a service runs from start to idle (services/startup-order.txt, written by
// scripts/startup-order.sh): the kernel maps text in 64 KiB windows around each page touched, and those functions,
// about 1 MiB, were spread over 24 MiB of text, 12 MB of which ended up resident in an idle service; placed
// together, 8 MB, and analytics idles at 24.2 MB instead of 27.9 (the order moves whole object files: the modules are
// not compiled with function sections).
// Names the build no longer has are ignored, so a stale list costs memory, never a failed link.
let serviceLinking: [LinkerSetting] = [
    .unsafeFlags([
        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/services/startup-order.txt",
        "-Xlinker", "--no-warn-symbol-ordering",
    ])
]

/// A service in one line: its library (`Sources/<Module>`: Handlers, Domain, Store, Generated migrations), its
/// executable (`Sources/<name>/main.swift`, a few lines) and its tests (`Tests/<Module>Tests`), all on the kit.
func service(_ name: String, module: String, dependencies: [Target.Dependency] = [], testDependencies: [Target.Dependency] = []) -> [Target] {
    [
        .target(
            name: module,
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardPostgres", "SwitchboardRuntime", "SwitchboardServiceKit",
                "SwitchboardAccess", .product(name: "Logging", package: "swift-log"),
            ] + dependencies,
            swiftSettings: strict),
        .executableTarget(
            name: name,
            dependencies: [.target(name: module), "SwitchboardServiceKit"],
            swiftSettings: strict,
            linkerSettings: serviceLinking),
        .testTarget(
            name: "\(module)Tests",
            dependencies: [
                .target(name: module), "SwitchboardServiceKitTestSupport", "SwitchboardTestSupport",
                .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Logging", package: "swift-log"),
            ] + testDependencies,
            swiftSettings: strict),
    ]
}

/// The contacts service follows the organization feed (a client channel and a lifecycle service of its own), and its
/// tests run an organization service beside it.
let contactsService = service(
    "contacts", module: "ContactsService",
    dependencies: ["SwitchboardHTTP2", "CWideCType", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
    testDependencies: ["OrganizationService"])

/// The organization service follows the contacts feed (a client channel and a lifecycle service of its own), and its
/// tests run a contacts service beside it.
let organizationService = service(
    "organization", module: "OrganizationService",
    dependencies: ["SwitchboardHTTP2", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
    testDependencies: ["ContactsService"])

/// The communication service posts to its provider over HTTP(S) (NIOHTTP1, NIOSSL) with HMAC-SHA256 signatures
/// (swift-crypto), runs a dispatcher beside its RPCs, follows the contacts feed and reads campaign audiences from
/// contacts and organization (client channels); its tests run a fake provider (an NIOHTTP1 server, optionally behind
/// NIOSSL) and the contacts and organization services beside it.
let communicationService = service(
    "communication", module: "CommunicationService",
    dependencies: [
        "SwitchboardHTTP2", .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    ],
    testDependencies: [
        .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"), "ContactsService", "OrganizationService",
    ])

/// The collaboration service checks uploaded files' SHA-256 (swift-crypto) and follows the contacts, communication and
/// analytics feeds (client channels and lifecycle services of its own) and asks contacts whether the contacts a write
/// names are live; its tests run contacts, communication and analytics beside it.
let collaborationService = service(
    "collaboration", module: "CollaborationService",
    dependencies: [
        .product(name: "Crypto", package: "swift-crypto"), "SwitchboardHTTP2",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    ],
    testDependencies: [.product(name: "Crypto", package: "swift-crypto"), "ContactsService", "CommunicationService", "AnalyticsService"])

/// The analytics service follows the four other services' feeds (client channels and lifecycle services of its own);
/// its tests run those services beside it.
let analyticsService = service(
    "analytics", module: "AnalyticsService",
    dependencies: [
        "SwitchboardHTTP2", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Metrics", package: "swift-metrics"),
    ],
    testDependencies: ["ContactsService", "OrganizationService", "CommunicationService", "CollaborationService"])

let package = Package(
    name: "switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SwitchboardRPC", targets: ["SwitchboardRPC"]),
        .library(name: "SwitchboardProtos", targets: ["SwitchboardProtos"]),
        .library(name: "SwitchboardHTTP2", targets: ["SwitchboardHTTP2"]),
        .library(name: "SwitchboardBuiltins", targets: ["SwitchboardBuiltins"]),
        .library(name: "SwitchboardPostgres", targets: ["SwitchboardPostgres"]),
        .library(name: "SwitchboardRuntime", targets: ["SwitchboardRuntime"]),
        .library(name: "SwitchboardServiceKit", targets: ["SwitchboardServiceKit"]),
        // For the fuzzers in Fuzz/ (a package of their own): the interop TestService behind the HTTP/2 session harness.
        .library(name: "SwitchboardInterop", targets: ["SwitchboardInterop"]),
        .executable(name: "protoc-gen-switchboard", targets: ["protoc-gen-switchboard"]),
        .executable(name: "interop-server", targets: ["interop-server"]),
        .executable(name: "interop-client", targets: ["interop-client"]),
        .executable(name: "echo-server", targets: ["echo-server"]),
        .executable(name: "contacts", targets: ["contacts"]),
        .executable(name: "organization", targets: ["organization"]),
        .executable(name: "communication", targets: ["communication"]),
        .executable(name: "collaboration", targets: ["collaboration"]),
        .executable(name: "analytics", targets: ["analytics"]),
        .executable(name: "crmctl", targets: ["crmctl"]),
        .executable(name: "gateway", targets: ["gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Already in the graph through jwt-kit (same range): the communication service signs provider webhooks with it.
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"6.0.0"),
    ],
    targets: [
        // C shims: module maps only, one per system library.
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2"),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c"),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq"),
        .systemLibrary(name: "CWideCType"),

        // protoc-c output for every proto in Protos/ (DO NOT EDIT; `make generate`).
        .target(name: "CSwitchboardProtos", dependencies: ["CProtobufC"]),
        // protoc-c output for descriptor.proto and plugin.proto, used only by the code generator.
        .target(name: "CProtocPlugin", dependencies: ["CProtobufC"]),

        // RPC core: status, errors, metadata, deadlines, interceptors, router. Imports no C.
        .target(
            name: "SwitchboardRPC",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Generated Swift message types and service stubs, bridged to protoc-c's pack/unpack.
        .target(
            name: "SwitchboardProtos",
            dependencies: [
                "CSwitchboardProtos", "CProtobufC", "SwitchboardRPC",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // HTTP/2 transport on nghttp2 + SwiftNIO: the gRPC server and client.
        .target(
            name: "SwitchboardHTTP2",
            dependencies: [
                "CNghttp2", "SwitchboardRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // PostgreSQL through libpq: connections, pool, transactions, COPY, LISTEN/NOTIFY, migrations.
        .target(
            name: "SwitchboardPostgres",
            dependencies: ["CLibPQ"],
            swiftSettings: strict
        ),
        // What every process shares, with no database (so `crmctl` and the gateway link it without libpq):
        // configuration, JSON logs, metrics and the admin endpoint, JWT identity and roles, interceptors, lifecycle.
        .target(
            name: "SwitchboardRuntime",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardBuiltins",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // What every service with a database shares: the production assembly and `main`, the kit's tables (migrated
        // into each service's schema), idempotency, the change feed (per tenant and cross-tenant) and its consumer,
        // page tokens, database error mapping, health that follows the database.
        .target(
            name: "SwitchboardServiceKit",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardBuiltins", "SwitchboardPostgres",
                "SwitchboardRuntime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "crmctl",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),
        // Built-in services every server carries: health and reflection.
        .target(
            name: "SwitchboardBuiltins",
            dependencies: ["SwitchboardRPC", "SwitchboardProtos"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "protoc-gen-switchboard",
            dependencies: ["CProtocPlugin", "CProtobufC"],
            swiftSettings: strict
        ),
        // grpc.testing.TestService, as the interop descriptions require.
        .target(
            name: "SwitchboardInterop",
            dependencies: ["SwitchboardRPC", "SwitchboardProtos"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "interop-server",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardBuiltins", "SwitchboardInterop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // gRPC's interop cases run by our client against another implementation's server.
        .executableTarget(
            name: "interop-client",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardInterop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The Switchboard side of Benchmarks/run.sh.
        .executableTarget(
            name: "echo-server",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // The HTTP/JSON gateway: routes from the generated HTTP schema, no database.
        // The lowest role of every RPC of the five services: the services' auth and the gateway's 403 read it.
        .target(
            name: "SwitchboardAccess",
            dependencies: ["SwitchboardRPC", "SwitchboardProtos", "SwitchboardRuntime"],
            swiftSettings: strict),
        .target(
            name: "SwitchboardGateway",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardRuntime", "SwitchboardAccess",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gateway",
            dependencies: ["SwitchboardGateway", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict,
            linkerSettings: serviceLinking
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "SwitchboardGateway", "ContactsService", "OrganizationService", "CommunicationService", "CollaborationService", "AnalyticsService",
                "SwitchboardServiceKitTestSupport", "SwitchboardTestSupport", "SwitchboardPostgres", .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // The services, one line each (see `service(_:module:)` and services/README.md).
    ] + contactsService + organizationService + communicationService + collaborationService + analyticsService + [
        .target(
            name: "SwitchboardTestSupport",
            dependencies: [
                "SwitchboardRPC", "SwitchboardProtos", "SwitchboardHTTP2", "SwitchboardBuiltins", "SwitchboardInterop",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/SwitchboardTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwitchboardRPCTests",
            dependencies: [
                "SwitchboardRPC", "SwitchboardHTTP2", "SwitchboardProtos",
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwitchboardPostgresTests",
            dependencies: ["SwitchboardPostgres"],
            swiftSettings: strict
        ),
        // A service on a fresh database, assembled exactly as the executable assembles it.
        .target(
            name: "SwitchboardServiceKitTestSupport",
            dependencies: [
                "SwitchboardServiceKit", "SwitchboardTestSupport", "SwitchboardRuntime", "SwitchboardPostgres",
                "SwitchboardHTTP2", "SwitchboardRPC", "SwitchboardProtos",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/SwitchboardServiceKitTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwitchboardRuntimeTests",
            dependencies: [
                "SwitchboardRuntime", "SwitchboardProtos", "SwitchboardRPC",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwitchboardServiceKitTests",
            dependencies: [
                "SwitchboardServiceKit", "SwitchboardServiceKitTestSupport", "SwitchboardTestSupport", "SwitchboardPostgres",
                "SwitchboardRuntime", "SwitchboardBuiltins",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Proto3 JSON against Python's json_format goldens (Tests/ProtoJSON): no database, no server.
        .testTarget(
            name: "ProtoJSONTests",
            dependencies: [
                "SwitchboardProtos", "SwitchboardRPC", "SwitchboardTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwitchboardIntegrationTests",
            dependencies: ["SwitchboardTestSupport", .product(name: "NIOPosix", package: "swift-nio")],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
    ]
)
