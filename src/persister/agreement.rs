//! Start-up check that the command log and the database agree: a message's id is its
//! `CHAT_IN` sequence, so a stream that was recreated or truncated while the database was kept
//! would hand new messages ids that are already stored.

use anyhow::{Context as _, bail};
use sea_orm::ConnectionTrait;

use crate::{bus::Bus, store::queries};

/// Fails with what happened and what to do when `CHAT_IN` ends before the newest stored
/// message.
pub async fn check(bus: &Bus, db: &impl ConnectionTrait) -> anyhow::Result<()> {
    let name = bus.subjects.in_stream();
    let mut stream = bus
        .jetstream
        .get_stream(name)
        .await
        .with_context(|| format!("reading stream {name}"))?;
    let last = stream
        .info()
        .await
        .with_context(|| format!("reading stream {name}"))?
        .state
        .last_sequence;
    let newest = queries::newest_stream_seq(db)
        .await
        .context("reading the newest message id")?;
    if let Some(problem) = disagreement(name, last, newest) {
        bail!("{problem}");
    }
    Ok(())
}

/// The sentence for a stream that ends at `last` under a database whose newest message came
/// from sequence `newest`; `None` when they agree.
pub fn disagreement(stream: &str, last: u64, newest: u64) -> Option<String> {
    (newest > last).then(|| {
        format!(
            "{stream} ends at sequence {last} but the database holds messages up to id {newest}: \
             the stream was recreated or truncated while the database was kept (a lost NATS \
             volume, a deleted stream). New messages would take ids that are already stored. \
             Restore the NATS store, or continue the stream's numbering after the database's \
             newest message with `jetchat continue-stream --after {newest}` \
             (docs/operations.md)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::disagreement;

    #[test]
    fn a_stream_behind_the_database_is_named_with_both_numbers() {
        assert_eq!(disagreement("CHAT_IN", 10, 10), None);
        assert_eq!(
            disagreement("CHAT_IN", 12, 10),
            None,
            "commands not persisted yet"
        );
        assert_eq!(disagreement("CHAT_IN", 0, 0), None, "a new deployment");
        let problem = disagreement("CHAT_IN", 3, 10).expect("behind");
        assert!(problem.contains("ends at sequence 3"), "{problem}");
        assert!(problem.contains("up to id 10"), "{problem}");
        assert!(problem.contains("continue-stream --after 10"), "{problem}");
    }
}
