import FoundationEssentials

/// A notification from `NOTIFY` / `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel.
    public var channel: String
    /// The payload.
    public var payload: String

    /// Creates a notification.
    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// What a listener delivers.
public enum PostgresListenerEvent: Sendable, Hashable {
    /// A notification.
    case notification(PostgresNotification)
    /// The listening connection was (re)established: notifications sent while it was down are lost, so
    /// consumers re-read what they follow (e.g. a change feed from its last sequence).
    case connected
}

/// LISTENs on channels over a dedicated connection, reconnecting with backoff when it drops.
public final class PostgresListener: Sendable {
    private let conninfo: String
    private let channels: [String]

    /// Creates a listener.
    /// - Parameters:
    ///   - conninfo: the connection string.
    ///   - channels: the channels to LISTEN on.
    public init(conninfo: String, channels: [String]) {
        self.conninfo = conninfo
        self.channels = channels
    }

    /// The events, until the consuming task is cancelled.
    public func events() -> AsyncStream<PostgresListenerEvent> {
        let (stream, continuation) = AsyncStream<PostgresListenerEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let task = Task { [conninfo, channels] in
            var backoff: Duration = .milliseconds(100)
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(conninfo)
                    for channel in channels { try await connection.listen(channel) }
                    backoff = .milliseconds(100)
                    continuation.yield(.connected)
                    while !Task.isCancelled {
                        // The poller thread watches the socket; no thread waits on it.
                        for n in try await connection.notifications() {
                            continuation.yield(.notification(PostgresNotification(channel: n.channel, payload: n.payload)))
                        }
                    }
                } catch {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
