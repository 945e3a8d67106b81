//! The `client_msg_id`s of a run: each names its run, its message and its (intended) send
//! time, so that no shared state is needed to time a message or to find it in the database.

/// Which message of the run a `client_msg_id` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgKey {
    /// The sending connection's index in the run.
    pub conn: u32,
    /// The rate step (0 when the scenario has one).
    pub stage: u16,
    /// The sender's sequence number within the stage.
    pub seq: u32,
}

/// A `client_msg_id` that carries the run, the message and its (intended) send time:
/// `<run>-<conn>-<stage>-<seq>-<µs>`, at most 8+1+10+1+5+1+10+1+20 = 57 characters (limit 64).
pub fn msg_id(run: &str, key: MsgKey, sent_us: u64) -> String {
    format!("{run}-{}-{}-{}-{sent_us}", key.conn, key.stage, key.seq)
}

/// The message and send time in a `client_msg_id` of run `run`; `None` for anyone else's.
pub fn parse_msg_id(run: &str, id: &str) -> Option<(MsgKey, u64)> {
    let rest = id.strip_prefix(run)?.strip_prefix('-')?;
    let mut parts = rest.split('-');
    let key = MsgKey {
        conn: parts.next()?.parse().ok()?,
        stage: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
    };
    let sent_us = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((key, sent_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_fit_the_limit() {
        let key = MsgKey {
            conn: u32::MAX,
            stage: u16::MAX,
            seq: u32::MAX,
        };
        let id = msg_id("deadbeef", key, u64::MAX);
        assert!(id.len() <= 64, "{id} is {} characters", id.len());
        assert_eq!(parse_msg_id("deadbeef", &id), Some((key, u64::MAX)));
        assert_eq!(parse_msg_id("cafebabe", &id), None);
        assert_eq!(parse_msg_id("deadbeef", "deadbeef-1-2-3"), None);
        assert_eq!(parse_msg_id("deadbeef", "a-client-id"), None);
    }
}
