// swift-tools-version:6.1
// libFuzzer targets for the DLMS decoders and for what meters send on lines (IEC 62056-21,
// UDP wrapper datagrams, serial-gateway HDLC bytes) and for the JSON the services read (Kafka
// contracts, the IMS's reply, the configuration document, command requests). Kept out of the main package because every module
// must be built with `-sanitize=fuzzer`; run them with Fuzz/run.sh.
import Foundation
import PackageDescription

/// The root package is a path dependency; its identity is its directory name.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

let codec: [Target.Dependency] = [
    "FuzzSupport",
    .product(name: "DLMSCodec", package: rootIdentity),
    .product(name: "COSEM", package: rootIdentity),
    .product(name: "NIOCore", package: "swift-nio"),
]

let link: [Target.Dependency] = codec + [.product(name: "DLMSLink", package: rootIdentity)]

let package = Package(
    name: "SwiftHESFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: root.path),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport"),
        .executableTarget(name: "FuzzAPDU", dependencies: codec, path: "Sources/FuzzAPDU"),
        .executableTarget(name: "FuzzData", dependencies: codec, path: "Sources/FuzzData"),
        .executableTarget(name: "FuzzACSE", dependencies: codec, path: "Sources/FuzzACSE"),
        .executableTarget(name: "FuzzIEC21", dependencies: link, path: "Sources/FuzzIEC21"),
        .executableTarget(name: "FuzzDatagramInbound", dependencies: link, path: "Sources/FuzzDatagramInbound"),
        .executableTarget(name: "FuzzContracts", dependencies: ["FuzzSupport", .product(name: "Contracts", package: rootIdentity)],
                          path: "Sources/FuzzContracts"),
    ]
)
