// swift-tools-version:6.0
// libFuzzer targets for Switchboard's parsers of hostile input. Build and run them with `scripts/fuzz.sh`; the
// sanitizers (`--sanitize=fuzzer --sanitize=address`) come from the command line so that they instrument the root
// package's modules too, not only these harnesses.
import PackageDescription

// Each harness defines `LLVMFuzzerTestOneInput`; libFuzzer supplies `main`.
let harness: [SwiftSetting] = [.swiftLanguageMode(.v6), .unsafeFlags(["-parse-as-library"])]

func fuzzer(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: dependencies, swiftSettings: harness)
}

let package = Package(
    name: "switchboard-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "switchboard", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        fuzzer("FuzzJSON", [.product(name: "SwitchboardProtos", package: "switchboard")]),
        fuzzer("FuzzProtoJSON", [.product(name: "SwitchboardProtos", package: "switchboard")]),
        fuzzer("FuzzPageToken", [.product(name: "SwitchboardServiceKit", package: "switchboard")]),
        fuzzer(
            "FuzzDeframer",
            [
                .product(name: "SwitchboardHTTP2", package: "switchboard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        fuzzer(
            "FuzzProtoDecode",
            [
                .product(name: "SwitchboardProtos", package: "switchboard"),
                .product(name: "SwitchboardRPC", package: "switchboard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        fuzzer(
            "FuzzHTTP2Server",
            [
                .product(name: "SwitchboardHTTP2", package: "switchboard"),
                .product(name: "SwitchboardBuiltins", package: "switchboard"),
                .product(name: "SwitchboardInterop", package: "switchboard"),
                .product(name: "SwitchboardProtos", package: "switchboard"),
                .product(name: "SwitchboardRPC", package: "switchboard"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
