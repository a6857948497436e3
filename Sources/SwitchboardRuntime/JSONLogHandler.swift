import Glibc
import Logging
import SwitchboardProtos
import Synchronization

/// Writes one JSON object per line to standard error: time, level, label, message, source and metadata (request id,
/// trace id, method...), so log pipelines can index every field.
public struct JSONLogHandler: LogHandler {
    /// Serialises writes from all threads so lines never interleave.
    private static let lock = Mutex(())

    private let label: String
    /// The log level.
    public var logLevel: Logger.Level
    /// Handler-wide metadata.
    public var metadata: Logger.Metadata = [:]
    /// Per-logger metadata provider.
    public var metadataProvider: Logger.MetadataProvider?

    /// Creates a handler.
    /// - Parameters:
    ///   - label: the logger's label.
    ///   - level: the minimum level.
    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    /// Metadata by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata, source = event.source
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit { all.merge(explicit) { $1 } }
        var object: [String: JSON] = [:]
        for (key, value) in all { object[key] = Self.json(value) }
        object["time"] = .string(Self.timestamp())
        object["level"] = .string(level.rawValue)
        object["label"] = .string(label)
        object["message"] = .string("\(message)")
        object["source"] = .string(source)
        var line = JSON.object(object).text
        line += "\n"
        Self.lock.withLock { _ in
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if n > 0 { offset += n } else if n < 0, errno == EINTR { continue } else { break }
                }
            }
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string("\(c)")
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var t = now.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(Int(parts.tm_year) + 1900, 4))-\(padded(Int(parts.tm_mon) + 1, 2))-\(padded(Int(parts.tm_mday), 2))T"
            + "\(padded(Int(parts.tm_hour), 2)):\(padded(Int(parts.tm_min), 2)):\(padded(Int(parts.tm_sec), 2)).\(padded(Int(now.tv_nsec / 1000), 6))Z"
    }
}
