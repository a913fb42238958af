// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Atrium",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "atrium", targets: ["atrium"]),
        .executable(name: "atrium-workspace", targets: ["atrium-workspace"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Value types and pure logic. Imports only Foundation.
        .target(name: "AtriumModel", swiftSettings: swiftSettings),
        // The store over SQLKit: SQLite (default) and PostgreSQL.
        .target(
            name: "AtriumStore",
            dependencies: [
                "AtriumModel",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Passwords, tokens, scopes, authenticators.
        .target(
            name: "AtriumAuth",
            dependencies: [
                "AtriumModel", "AtriumStore",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Hummingbird routes: REST API and HTML pages.
        .target(
            name: "AtriumHTTP",
            dependencies: [
                "AtriumModel", "AtriumStore", "AtriumAuth", "AtriumSpawn", "AtriumProxy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The built-in reverse proxy: SwiftNIO handlers that forward /user/… to workspaces.
        .target(
            name: "AtriumProxy",
            dependencies: [
                "AtriumModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Workspaces: the backend protocol, the local-process backend, the server lifecycle.
        .target(
            name: "AtriumSpawn",
            dependencies: [
                "AtriumModel", "AtriumStore", "AtriumAuth", "AtriumProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // posix_spawn with a new session and a working directory, and prlimit: what Glibc's
        // Swift module does not expose (they need _GNU_SOURCE).
        .target(name: "CAtriumProcess"),
        // The local-process backend: one child process per server on this machine.
        .target(
            name: "AtriumLocal",
            dependencies: [
                "AtriumModel", "AtriumSpawn", "CAtriumProcess",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Kubernetes backend: API client (kubeconfig, in-cluster), pure object builders,
        // the watch cache, and the backend that runs one Deployment per server.
        .target(
            name: "AtriumKubernetes",
            dependencies: [
                "AtriumModel", "AtriumSpawn",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Services that run inside the hub beside the HTTP server: the idle culler.
        .target(
            name: "AtriumServices",
            dependencies: [
                "AtriumModel", "AtriumStore", "AtriumSpawn",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The simulated backend: no processes, random start delays and failures, one HTTP server.
        .target(
            name: "AtriumSimulated",
            dependencies: [
                "AtriumModel", "AtriumSpawn",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small workspace program for tests and demos: HTTP, WebSocket echo, activity reports.
        .executableTarget(
            name: "atrium-workspace",
            dependencies: [
                "AtriumModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by test targets (a WebSocket client, a Prometheus text parser).
        .target(
            name: "AtriumTestSupport",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Composition root: configuration → services → one ServiceGroup.
        .target(
            name: "AtriumApp",
            dependencies: [
                "AtriumModel", "AtriumStore", "AtriumAuth", "AtriumHTTP", "AtriumSpawn", "AtriumLocal", "AtriumSimulated", "AtriumProxy",
                "AtriumServices", "AtriumKubernetes",
                .product(name: "Hummingbird", package: "hummingbird"),
                // HummingbirdCore: its connection cap (MaximumAvailableConnections) for the server.
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `atrium stress`: a JupyterHub REST API client that loads a hub (hub-stress-test's commands).
        .target(
            name: "AtriumStress",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atrium",
            dependencies: [
                "AtriumApp", "AtriumModel", "AtriumStore", "AtriumAuth", "AtriumSpawn", "AtriumStress",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "AtriumStressTests", dependencies: ["AtriumStress"], swiftSettings: swiftSettings),
        .testTarget(name: "AtriumModelTests", dependencies: ["AtriumModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AtriumStoreTests",
            dependencies: ["AtriumStore", "AtriumModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumAuthTests",
            dependencies: ["AtriumAuth", "AtriumStore", "AtriumModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumHTTPTests",
            dependencies: [
                "AtriumHTTP", "AtriumApp", "AtriumStore", "AtriumAuth", "AtriumModel", "AtriumSpawn", "AtriumSimulated", "AtriumProxy", "AtriumTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumProxyTests",
            dependencies: [
                "AtriumProxy", "AtriumModel", "AtriumTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumSpawnTests",
            dependencies: [
                "AtriumSpawn", "AtriumLocal", "AtriumSimulated", "AtriumStore", "AtriumAuth", "AtriumModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumKubernetesTests",
            dependencies: [
                "AtriumKubernetes", "AtriumSpawn", "AtriumStore", "AtriumAuth", "AtriumModel", "AtriumProxy", "AtriumTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Schemas", "Golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumServicesTests",
            dependencies: ["AtriumServices", "AtriumSpawn", "AtriumSimulated", "AtriumStore", "AtriumModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumEndToEndTests",
            dependencies: [
                "AtriumModel", "AtriumTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
