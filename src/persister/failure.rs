//! What a failed write means: worth retrying (the database is away, busy or out of room), or
//! not (the command itself is at fault, and retrying it would fail the same way for ever).
//!
//! Decided once, from the driver's error kind and the database's own error code, never from
//! the error's text.

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// True when the same write may succeed later: a lost or refused connection, a busy or locked
/// database, a serialization failure or deadlock, a full disk, a server shutting down.
/// Constraint violations, data a column refuses and everything else are not.
pub fn is_transient(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(error) | DbErr::Query(error) => match error {
            RuntimeErr::SqlxError(error) => sqlx_transient(error),
            _ => false,
        },
        _ => false,
    }
}

fn sqlx_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(error) => {
            let sqlite = error
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some();
            code_transient(sqlite, error.code().as_deref())
        }
        _ => false,
    }
}

/// SQLite result codes (numbers; the primary code is the low byte of an extended one) and
/// PostgreSQL SQLSTATEs (five characters, often digits only) that mean "try again".
fn code_transient(sqlite: bool, code: Option<&str>) -> bool {
    let Some(code) = code else {
        return false;
    };
    if sqlite {
        let Ok(number) = code.parse::<u32>() else {
            return false;
        };
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL,
        // SQLITE_CANTOPEN, SQLITE_PROTOCOL: the file or the machine, not the command.
        return matches!(number & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15);
    }
    // 08: connection exception; 40001 serialization failure; 40P01 deadlock; 53: insufficient
    // resources (disk full, out of memory, too many connections); 57: operator intervention
    // (admin shutdown, cannot connect now); 58: system error (I/O).
    matches!(code, "40001" | "40P01")
        || ["08", "53", "57", "58"]
            .iter()
            .any(|class| code.starts_with(class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_codes_are_classified_by_number_and_class() {
        // SQLite: busy, a busy snapshot (extended 517), locked, disk full, I/O error.
        for code in ["5", "517", "6", "13", "10", "266"] {
            assert!(code_transient(true, Some(code)), "sqlite {code}");
        }
        // SQLite: constraint (19), unique (2067), too big (18), mismatch (20).
        for code in ["19", "2067", "18", "20"] {
            assert!(!code_transient(true, Some(code)), "sqlite {code}");
        }
        // PostgreSQL: connection failure, serialization, deadlock, disk full, admin shutdown.
        for code in ["08006", "40001", "40P01", "53100", "57P01", "58030"] {
            assert!(code_transient(false, Some(code)), "postgres {code}");
        }
        // PostgreSQL: unique violation, NUL in text (22021), value too long, numeric overflow.
        for code in ["23505", "22021", "22001", "22003", "42601"] {
            assert!(!code_transient(false, Some(code)), "postgres {code}");
        }
        assert!(!code_transient(true, None));
        assert!(!code_transient(false, None));
    }

    #[test]
    fn connection_errors_are_transient_and_the_rest_is_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let conn = DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::Io(
            io,
        ))));
        assert!(is_transient(&conn));
        let timed_out = DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::PoolTimedOut,
        )));
        assert!(is_transient(&timed_out));
        assert!(!is_transient(&DbErr::RecordNotInserted));
        assert!(!is_transient(&DbErr::Custom("a bug".into())));
        assert!(!is_transient(&DbErr::Exec(RuntimeErr::Internal(
            "bad".into()
        ))));
    }
}
