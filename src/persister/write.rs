//! The write path of the persister and of `reproject`: a batch in one transaction; when it
//! fails for a reason retrying cannot fix, the same commands again one at a time, each in a
//! savepoint of one transaction, so that only the commands at fault are refused and every
//! other one is applied, in order.

use crate::domain::ErrorCode;
use std::panic::AssertUnwindSafe;

use chrono::Utc;
use futures_util::FutureExt as _;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

use super::{
    batch::{self, Applied, ApplyError, Incoming, Refusal, Rules},
    failure::is_transient,
    journal,
};

/// What a committed write applied, and the commands it refused because the database could
/// not apply them (for the dead-letter stream).
#[derive(Default)]
pub struct Written {
    pub applied: Applied,
    pub poisoned: Vec<Poisoned>,
}

/// A command the database could not apply: no retry would help.
pub struct Poisoned {
    /// Its place in the batch.
    pub index: usize,
    pub refusal: Refusal,
    /// What failed, for operators: the database's own text, or the panic's (kept in the
    /// dead letter and the log, never sent to clients).
    pub cause: String,
    /// Its message id is another stored message's: `CHAT_IN` is behind the database.
    pub id_taken: bool,
}

/// Why one attempt failed.
enum Fault {
    /// The database is away or busy: retry the same batch later.
    Transient(DbErr),
    /// The commands are at fault (or one handler is): isolate them. The refusal is what the
    /// sender hears (a code and a plain sentence); `cause` is for the log and the dead letter.
    Permanent {
        refusal: Refusal,
        cause: String,
        id_taken: bool,
    },
}

impl From<ApplyError> for Fault {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Db(error) if is_transient(&error) => Fault::Transient(error),
            ApplyError::Db(error) => Fault::Permanent {
                refusal: Refusal::new(
                    ErrorCode::InvalidData,
                    "the database cannot store this command (a constraint or a value it \
                     refuses); nothing was stored",
                ),
                cause: format!("the database cannot store this command: {error}"),
                id_taken: false,
            },
            error @ ApplyError::IdTaken { .. } => Fault::Permanent {
                refusal: Refusal::new(ErrorCode::IdConflict, error.to_string()),
                cause: error.to_string(),
                id_taken: true,
            },
        }
    }
}

impl From<DbErr> for Fault {
    fn from(error: DbErr) -> Self {
        ApplyError::Db(error).into()
    }
}

impl Fault {
    /// A handler panicked: a bug, which would panic again on every retry.
    fn panicked(panic: Box<dyn std::any::Any + Send>) -> Self {
        let what = crate::supervisor::panic_message(&*panic);
        Fault::Permanent {
            refusal: Refusal::new(
                ErrorCode::InternalError,
                "jetchat failed on this command (a bug); nothing was stored",
            ),
            cause: format!("jetchat failed on this command: {what}"),
            id_taken: false,
        }
    }
}

/// Applies a batch in one transaction. Returns an error only when it is transient (the
/// caller retries the same batch); any other failure isolates the commands at fault.
pub async fn write(
    db: &DatabaseConnection,
    incoming: &[Incoming],
    rules: &Rules,
) -> Result<Written, DbErr> {
    let refusal = match attempt(db, incoming, rules).await {
        Ok(applied) => {
            return Ok(Written {
                applied,
                poisoned: Vec::new(),
            });
        }
        Err(Fault::Transient(error)) => return Err(error),
        Err(Fault::Permanent { refusal, .. }) => refusal,
    };
    // A database that went away can fail a statement in ways that look like the command's
    // fault: only a database that answers may refuse commands.
    db.ping().await?;
    tracing::warn!(
        code = %refusal.code,
        detail = %refusal.detail,
        size = incoming.len(),
        "a batch failed for a reason retrying cannot fix; applying its commands one at a time"
    );
    isolate(db, incoming, rules).await
}

/// One transaction for the whole batch.
async fn attempt(
    db: &DatabaseConnection,
    incoming: &[Incoming],
    rules: &Rules,
) -> Result<Applied, Fault> {
    let txn = crate::store::begin_write(db).await?;
    let applied = match AssertUnwindSafe(batch::apply(&txn, incoming, rules))
        .catch_unwind()
        .await
    {
        Ok(applied) => applied?,
        Err(panic) => return Err(Fault::panicked(panic)),
    };
    let mut applied = applied;
    journal::record(&txn, &mut applied.events, Utc::now()).await?;
    txn.commit().await?;
    Ok(applied)
}

/// One transaction, one savepoint per command: a command that fails is rolled back and
/// refused, the others are applied as if the batch had been written whole.
async fn isolate(
    db: &DatabaseConnection,
    incoming: &[Incoming],
    rules: &Rules,
) -> Result<Written, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let mut written = Written::default();
    for (index, one) in incoming.iter().enumerate() {
        let savepoint = txn.begin().await?;
        let result = AssertUnwindSafe(batch::apply(&savepoint, std::slice::from_ref(one), rules))
            .catch_unwind()
            .await;
        let fault = match result {
            // Journaled in the command's own savepoint: a journal row the database refuses
            // refuses that command, like any other write of it.
            Ok(Ok(mut applied)) => {
                match journal::record(&savepoint, &mut applied.events, Utc::now()).await {
                    Ok(()) => {
                        savepoint.commit().await?;
                        written.applied.extend(applied);
                        continue;
                    }
                    Err(error) => Fault::from(error),
                }
            }
            Ok(Err(error)) => Fault::from(error),
            Err(panic) => Fault::panicked(panic),
        };
        match fault {
            // Dropping the transaction rolls it all back; the batch is retried whole.
            Fault::Transient(error) => return Err(error),
            Fault::Permanent {
                refusal,
                cause,
                id_taken,
            } => {
                savepoint.rollback().await?;
                tracing::error!(
                    seq = one.seq,
                    kind = one.command.kind(),
                    code = %refusal.code,
                    cause = %cause,
                    "command refused: the database cannot apply it; kept in the dead-letter stream"
                );
                batch::rejection(one, &refusal, &mut written.applied);
                written.poisoned.push(Poisoned {
                    index,
                    refusal,
                    cause,
                    id_taken,
                });
            }
        }
    }
    txn.commit().await?;
    Ok(written)
}
