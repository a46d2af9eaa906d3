//! Errors at the store boundary, classified so a consumer knows whether to
//! pause and retry ([`StoreError::is_retryable`]) or to set the input aside.

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time (connection
    /// refused, reset, timeout, busy database, overloaded server). Retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered and refused the request (bad SQL, bad data, a
    /// missing table). Retrying the same request fails the same way.
    #[error("store refused the request: {0}")]
    Rejected(String),
    /// An event the caller handed over cannot be stored as is.
    #[error("invalid event {event_id}: {reason}")]
    InvalidEvent { event_id: String, reason: String },
    /// A query parameter is out of range (limit, cursor).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A stored row could not be read back (its JSON no longer parses).
    #[error("stored {what} {id} cannot be read: {reason}")]
    Corrupt {
        what: &'static str,
        id: String,
        reason: String,
    },
    /// The live schema differs from what the code expects.
    #[error("schema mismatch: {0}")]
    Schema(String),
    /// A migration file failed; `source` says how.
    #[error("migration {name} failed: {source}")]
    Migration {
        name: String,
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// True when the same call may succeed later without any change to its
    /// input: the consumer should pause, back off and retry rather than
    /// dead-letter the batch.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Migration { source, .. } => source.is_retryable(),
            StoreError::Rejected(_)
            | StoreError::InvalidEvent { .. }
            | StoreError::InvalidQuery(_)
            | StoreError::Corrupt { .. }
            | StoreError::Schema(_) => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes
                // (low byte) clear when the other writer finishes; SQLITE_FULL
                // (13) and SQLITE_IOERR (10) when an operator acts.
                let code = db.code().and_then(|c| c.parse::<i64>().ok());
                match code {
                    Some(c) if sqlite_code_is_transient(c) => {
                        StoreError::Unavailable(e.to_string())
                    }
                    _ => StoreError::Rejected(e.to_string()),
                }
            }
            _ => StoreError::Rejected(e.to_string()),
        }
    }
}

/// SQLite result codes (primary, the low byte of an extended code) that
/// clear by themselves or when an operator acts: SQLITE_BUSY (5),
/// SQLITE_LOCKED (6), SQLITE_IOERR (10), SQLITE_FULL (13).
fn sqlite_code_is_transient(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13)
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if sqlite_code_is_transient(i64::from(f.extended_code)) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Rejected(e.to_string()),
        }
    }
}

/// ClickHouse server error codes that clear by themselves (overload,
/// timeouts, merges catching up, a replica coming back).
const CLICKHOUSE_TRANSIENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE (connection cut mid-answer)
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (server switched read-only, e.g. disk)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
];

/// The `Code: N` a ClickHouse error message starts with (all versions).
pub(crate) fn clickhouse_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

impl From<clickhouse::error::Error> for StoreError {
    fn from(e: clickhouse::error::Error) -> Self {
        use clickhouse::error::Error as E;
        match &e {
            E::Network(_) | E::TimedOut => StoreError::Unavailable(e.to_string()),
            E::BadResponse(msg) => match clickhouse_code(msg) {
                Some(code) if CLICKHOUSE_TRANSIENT_CODES.contains(&code) => {
                    StoreError::Unavailable(e.to_string())
                }
                Some(_) => StoreError::Rejected(e.to_string()),
                // No server code: a proxy or a load balancer answered
                // (502/503), not ClickHouse judging the request.
                None => StoreError::Unavailable(e.to_string()),
            },
            _ => StoreError::Rejected(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clickhouse_codes_classify() {
        let check = |msg: &str, retryable: bool| {
            let err = StoreError::from(clickhouse::error::Error::BadResponse(msg.into()));
            assert_eq!(err.is_retryable(), retryable, "{msg}");
        };
        check(
            "Code: 252, e.displayText() = DB::Exception: Too many parts",
            true,
        );
        check(
            "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist",
            false,
        );
        check(
            "Code: 62. DB::Exception: Syntax error (version 26.9.1)",
            false,
        );
        check("502 Bad Gateway", true);
        assert_eq!(clickhouse_code("Code: 241. DB::Exception"), Some(241));
        assert!(StoreError::from(clickhouse::error::Error::TimedOut).is_retryable());
        assert!(!StoreError::InvalidQuery("x".into()).is_retryable());
    }

    #[test]
    fn sqlite_codes_classify() {
        let failure = |extended_code: i32| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error {
                    code: rusqlite::ErrorCode::Unknown,
                    extended_code,
                },
                None,
            ))
        };
        assert!(failure(5).is_retryable()); // SQLITE_BUSY
        assert!(failure(5 | (1 << 8)).is_retryable()); // SQLITE_BUSY_RECOVERY
        assert!(failure(13).is_retryable()); // SQLITE_FULL
        assert!(!failure(19).is_retryable()); // SQLITE_CONSTRAINT
        assert!(!failure(1).is_retryable()); // SQLITE_ERROR (bad SQL, no table)
    }
}
