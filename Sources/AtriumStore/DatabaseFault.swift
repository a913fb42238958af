import NIOCore
import PostgresKit
import SQLiteKit

/// A database failure that is nobody's request's fault and that the hub cannot fix by itself:
/// the disk is full, the database refuses writes, or it cannot be reached. Requests that meet
/// one answer 503 with the class (never a bare 500), and `/hub/health` reports it.
public enum DatabaseFault: String, Sendable, CustomStringConvertible {
    /// No space left for the database (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    case diskFull = "disk full"
    /// The database refuses writes: a read-only file or folder, a read-only transaction
    /// (PostgreSQL `25006`, a standby).
    case readOnly = "read-only"
    /// The file system failed a read or write (SQLite `SQLITE_IOERR`).
    case ioError = "I/O error"
    /// The database cannot be reached: refused or lost connections, a server shutting down or
    /// starting up, no connection free within the pool's wait.
    case unreachable = "unreachable"
    /// Too busy: locked longer than the wait, or out of connections.
    case busy = "busy"

    public var description: String { rawValue }

    /// The fault `error` is, or `nil` for every other error (a constraint, a bug).
    public static func classify(_ error: any Error) -> DatabaseFault? {
        if let error = error as? SQLiteError {
            switch error.reason {
            case .full: return .diskFull
            case .readOnly, .readonlyInRecovery, .readonlyCantLock, .readonlyInRollback, .readonlyBackingMoved, .readonlyDirectory:
                return .readOnly
            case .busy, .locked, .busyInRecovery, .busyInSnapshot, .busyTimeout, .lockedBySharedCache:
                return .busy
            case .cantOpen, .cantOpenDirectory, .cantOpenInvalidPath, .notADatabase:
                return .unreachable
            case .ioError, .ioErrorFailedRead, .ioErrorIncompleteRead, .ioErrorFailedWrite, .ioErrorFailedSync,
                .ioErrorFailedDirSync, .ioErrorFailedTruncate, .ioErrorFailedStat, .ioErrorFailedUnlock, .ioErrorFailedReadLock,
                .ioErrorFailedDelete, .ioErrorFailedAccess, .ioErrorFailedLockCheck, .ioErrorFailedClose,
                .ioErrorFailedSharedMemOpen, .ioErrorFailedSharedMemSize, .ioErrorFailedSharedMemMap, .ioErrorCorruptedFilesystem:
                return .ioError
            default: return nil
            }
        }
        if let error = error as? PSQLError {
            if error.code == .server {
                switch error.serverInfo?[.sqlState] {
                case "53100": return .diskFull
                case "25006": return .readOnly
                case "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004": return .unreachable
                case "53300", "55P03", "40P01": return .busy
                default: return nil
                }
            }
            if [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed].contains(error.code) {
                return .unreachable
            }
            return nil
        }
        if error is PostgresPool.Unavailable { return .unreachable }
        if error is ConnectionPoolTimeoutError || error is ConnectionPoolError { return .unreachable }
        if error is NIOConnectionError || error is ChannelError { return .unreachable }
        if let error = error as? IOError, [ECONNREFUSED, ECONNRESET, EPIPE, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT].contains(error.errnoCode) {
            return .unreachable
        }
        return nil
    }
}

extension Store {
    /// Writes to the database without changing anything it holds (one row rewritten with its
    /// own value): throws what a real write would meet — disk full, read-only,
    /// unreachable. For `/hub/health` and the start-up check.
    public func probeWrite() async throws {
        try await sql.raw("UPDATE schema_migrations SET applied = applied WHERE version = (SELECT MIN(version) FROM schema_migrations)").run()
    }
}
