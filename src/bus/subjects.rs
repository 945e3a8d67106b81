//! The one place subject and stream names are built, all from one prefix (`chat` by default).

use crate::{domain::ChatId, domain::UserId};

/// Subject and stream names for one prefix.
#[derive(Clone, Debug)]
pub struct Subjects {
    prefix: String,
    in_stream: String,
    events_stream: String,
    dead_letter_stream: String,
    presence_bucket: String,
    last_seen_bucket: String,
}

impl Subjects {
    /// Names under `prefix`; streams are the prefix in capitals plus `_IN` and `_EVENTS`.
    pub fn new(prefix: &str) -> Self {
        let stem: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        Subjects {
            prefix: prefix.to_owned(),
            in_stream: format!("{stem}_IN"),
            events_stream: format!("{stem}_EVENTS"),
            dead_letter_stream: format!("{stem}_DLQ"),
            presence_bucket: format!("{stem}_PRESENCE"),
            last_seen_bucket: format!("{stem}_LAST_SEEN"),
        }
    }

    /// The command stream (`CHAT_IN`).
    pub fn in_stream(&self) -> &str {
        &self.in_stream
    }

    /// The event stream (`CHAT_EVENTS`).
    pub fn events_stream(&self) -> &str {
        &self.events_stream
    }

    /// The dead-letter stream (`CHAT_DLQ`): commands refused because no retry could apply them.
    pub fn dead_letter_stream(&self) -> &str {
        &self.dead_letter_stream
    }

    /// Every dead letter: `chat.dlq.>`.
    pub fn all_dead_letters(&self) -> String {
        format!("{}.dlq.>", self.prefix)
    }

    /// Where the command first published on `subject` is kept: `chat.in.7.message` (or its
    /// partitioned form `chat.part.3.7.message`) becomes `chat.dlq.in.7.message` (a subject
    /// outside the prefix keeps its whole name after it).
    pub fn dead_letter(&self, subject: &str) -> String {
        let subject = self.published_as(subject);
        let rest = subject
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&subject);
        format!("{}.dlq.{rest}", self.prefix)
    }

    /// The command subject a dead letter came from: the inverse of [`Subjects::dead_letter`].
    pub fn dead_letter_origin(&self, dead_letter: &str) -> Option<String> {
        let rest = dead_letter
            .strip_prefix(&self.prefix)?
            .strip_prefix(".dlq.")?;
        Some(format!("{}.{rest}", self.prefix))
    }

    /// The subject a command was published on, from the one `CHAT_IN` stored it under: a
    /// partitioned stream stores `chat.in.7.message` as `chat.part.<p>.7.message`
    /// ([`Subjects::partition_transform`]). Publishing a command again (a replay, a held command
    /// after `continue-stream`) uses this, so the stream partitions it as it does today.
    pub fn published_as(&self, stored: &str) -> String {
        let Some(rest) = stored
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix(".part."))
        else {
            return stored.to_owned();
        };
        match rest.split_once('.') {
            Some((partition, command)) if partition.parse::<u16>().is_ok() => {
                format!("{}.in.{command}", self.prefix)
            }
            _ => stored.to_owned(),
        }
    }

    /// The subjects a filter on published command subjects (`chat.in.7.*`) matches in
    /// `CHAT_IN`, partitioned or not: itself, and its partitioned form `chat.part.*.7.*`.
    /// Any other filter is kept as it is.
    pub fn stored_filters(&self, filter: &str) -> Vec<String> {
        match filter
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix(".in."))
        {
            Some(">") => vec![filter.to_owned(), format!("{}.part.>", self.prefix)],
            Some(command) => vec![
                filter.to_owned(),
                format!("{}.part.*.{command}", self.prefix),
            ],
            None => vec![filter.to_owned()],
        }
    }

    /// The subject transform of a stream in `partitions` partitions: `chat.in.<chat>.<kind>` is
    /// stored as `chat.part.<p>.<chat>.<kind>`, `p` a hash of the chat token modulo
    /// `partitions` (NATS's `partition()` function), so one chat's commands are all in one
    /// partition. `(source, destination)`.
    pub fn partition_transform(&self, partitions: u16) -> (String, String) {
        (
            format!("{}.in.*.*", self.prefix),
            format!(
                "{}.part.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}",
                self.prefix
            ),
        )
    }

    /// What the persister of partition `partition` takes from a stream in `partitions`
    /// partitions: its own `chat.part.<p>.>`; partition 0 also takes whatever the transform
    /// left as it came (`chat.in.>`: commands stored before the stream was partitioned, and
    /// subjects of another shape, which it refuses). One partition takes everything.
    pub fn partition_filters(&self, partition: u16, partitions: u16) -> Vec<String> {
        match (partitions, partition) {
            (0 | 1, _) => vec![self.all_commands()],
            (_, 0) => vec![self.all_commands(), format!("{}.part.0.>", self.prefix)],
            (_, p) => vec![format!("{}.part.{p}.>", self.prefix)],
        }
    }

    /// Where `POST /upload` records an upload: `chat.in.uploads.register`.
    pub fn register_upload_command(&self) -> String {
        format!("{}.in.uploads.register", self.prefix)
    }

    /// Every command: `chat.in.>`.
    pub fn all_commands(&self) -> String {
        format!("{}.in.>", self.prefix)
    }

    /// Every event: `chat.events.>`.
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// A message into a known chat: `chat.in.<chat_id>.message`.
    pub fn message_command(&self, chat_id: ChatId) -> String {
        format!("{}.in.{chat_id}.message", self.prefix)
    }

    /// A private message when only the receiver is known: `chat.in.direct.message`.
    pub fn direct_message_command(&self) -> String {
        format!("{}.in.direct.message", self.prefix)
    }

    /// A delivered or read mark: `chat.in.<chat_id>.receipt`.
    pub fn receipt_command(&self, chat_id: ChatId) -> String {
        format!("{}.in.{chat_id}.receipt", self.prefix)
    }

    /// An instance's gathered delivered marks (`AUTO_DELIVERED`): `chat.in.receipts.delivered`.
    pub fn delivered_marks_command(&self) -> String {
        format!("{}.in.receipts.delivered", self.prefix)
    }

    /// A member's mute or unmute: `chat.in.<chat_id>.mute`.
    pub fn mute_command(&self, chat_id: ChatId) -> String {
        format!("{}.in.{chat_id}.mute", self.prefix)
    }

    /// The push scanner's finding: `chat.in.<chat_id>.push_due`.
    pub fn push_due_command(&self, chat_id: ChatId) -> String {
        format!("{}.in.{chat_id}.push_due", self.prefix)
    }

    /// A user's name and avatar for the directory (Django's, or a token's claims):
    /// `chat.in.users.upsert`.
    pub fn upsert_user_command(&self) -> String {
        format!("{}.in.users.upsert", self.prefix)
    }

    /// A user's block of another, or its lifting: `chat.in.users.block`.
    pub fn set_block_command(&self) -> String {
        format!("{}.in.users.block", self.prefix)
    }

    /// Chat creation: `chat.in.chats.create`.
    pub fn create_chat_command(&self) -> String {
        format!("{}.in.chats.create", self.prefix)
    }

    /// A chat administration command: `chat.in.<chat_id>.<kind>` with `kind` one of
    /// `add_members`, `remove_members`, `rename`, `delete_message`, `edit_message`, `react`,
    /// `unreact`.
    pub fn admin_command(&self, chat_id: ChatId, kind: &str) -> String {
        format!("{}.in.{chat_id}.{kind}", self.prefix)
    }

    /// One event: `chat.events.<chat_id>.<kind>`, or `chat.events.none.<kind>` for a refused
    /// command that named no chat.
    pub fn chat_event(&self, chat_id: Option<ChatId>, kind: &str) -> String {
        match chat_id {
            Some(chat_id) => format!("{}.events.{chat_id}.{kind}", self.prefix),
            None => format!("{}.events.none.{kind}", self.prefix),
        }
    }

    /// Everything that happens in one chat, for live delivery: `chat.events.<chat_id>.*`.
    pub fn chat_events(&self, chat_id: ChatId) -> String {
        format!("{}.events.{chat_id}.*", self.prefix)
    }

    /// One membership event kind in every chat: `chat.events.*.<kind>`.
    pub fn every_chat(&self, kind: &str) -> String {
        format!("{}.events.*.{kind}", self.prefix)
    }

    /// Outcomes for the sockets of one jetchat instance: `chat.replies.<instance>.*`.
    pub fn instance_replies(&self, instance: &str) -> String {
        format!("{}.replies.{instance}.*", self.prefix)
    }

    /// Outcomes for one socket: `chat.replies.<instance>.<conn>`.
    pub fn socket_replies(&self, instance: &str, conn: u64) -> String {
        format!("{}.replies.{instance}.{conn}", self.prefix)
    }

    /// The key-value bucket of presence heartbeats (`CHAT_PRESENCE`): one key per instance,
    /// expiring `PRESENCE_TTL` after its last refresh.
    pub fn presence_bucket(&self) -> &str {
        &self.presence_bucket
    }

    /// The key-value bucket of when each user was last online (`CHAT_LAST_SEEN`).
    pub fn last_seen_bucket(&self) -> &str {
        &self.last_seen_bucket
    }

    /// An instance's heartbeat key in the presence bucket: `instance.<instance>`.
    pub fn presence_key(instance: &str) -> String {
        format!("instance.{instance}")
    }

    /// Every heartbeat key: `instance.*`.
    pub fn all_presence_keys() -> &'static str {
        "instance.*"
    }

    /// A user's key in the last-seen bucket: `user.<user_id>`.
    pub fn last_seen_key(user_id: UserId) -> String {
        format!("user.{user_id}")
    }

    /// One ephemeral (core NATS, in no stream) happening in a chat, for its members' sockets:
    /// `chat.live.<chat_id>.<kind>` with `kind` `typing` or `presence`.
    pub fn chat_live(&self, chat_id: ChatId, kind: &str) -> String {
        format!("{}.live.{chat_id}.{kind}", self.prefix)
    }

    /// Everything ephemeral in one chat, for live delivery: `chat.live.<chat_id>.*`.
    pub fn chat_live_all(&self, chat_id: ChatId) -> String {
        format!("{}.live.{chat_id}.*", self.prefix)
    }

    /// A user's presence changes, for Django (core NATS, in no stream):
    /// `chat.presence.<user_id>`.
    pub fn user_presence(&self, user_id: UserId) -> String {
        format!("{}.presence.{user_id}", self.prefix)
    }

    /// Every user's presence changes: `chat.presence.*`.
    pub fn all_presence(&self) -> String {
        format!("{}.presence.*", self.prefix)
    }

    /// Deduplication id of a message command (`Nats-Msg-Id`).
    pub fn message_dedupe_id(sender_id: UserId, client_msg_id: &str) -> String {
        header_safe(&format!("msg:{sender_id}:{client_msg_id}"))
    }
}

/// `value` as a NATS header value: control characters (a header cannot hold `\r` or `\n`)
/// and `%` percent-encoded, so distinct values stay distinct. Ids come from clients and
/// Django; a header built from one must never fail (async-nats panics on a line break).
pub fn header_safe(value: &str) -> String {
    if !value.chars().any(|c| c.is_control() || c == '%') {
        return value.to_owned();
    }
    let mut safe = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() || c == '%' {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                safe.push_str(&format!("%{byte:02X}"));
            }
        } else {
            safe.push(c);
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_never_hold_line_breaks_and_stay_distinct() {
        assert_eq!(header_safe("msg:1:c1"), "msg:1:c1");
        assert_eq!(header_safe("a\r\nb"), "a%0D%0Ab");
        assert_eq!(header_safe("50%"), "50%25");
        assert_ne!(header_safe("a\nb"), header_safe("a%0Ab"));
        assert_eq!(
            header_safe("\u{85}"),
            "%C2%85",
            "a control character beyond ASCII"
        );
    }

    #[test]
    fn default_prefix_gives_the_documented_names() {
        let s = Subjects::new("chat");
        assert_eq!(s.in_stream(), "CHAT_IN");
        assert_eq!(s.events_stream(), "CHAT_EVENTS");
        assert_eq!(s.message_command(7), "chat.in.7.message");
        assert_eq!(s.direct_message_command(), "chat.in.direct.message");
        assert_eq!(s.receipt_command(7), "chat.in.7.receipt");
        assert_eq!(s.delivered_marks_command(), "chat.in.receipts.delivered");
        assert_eq!(s.create_chat_command(), "chat.in.chats.create");
        assert_eq!(s.upsert_user_command(), "chat.in.users.upsert");
        assert_eq!(s.set_block_command(), "chat.in.users.block");
        assert_eq!(s.dead_letter_stream(), "CHAT_DLQ");
        assert_eq!(s.dead_letter("chat.in.7.message"), "chat.dlq.in.7.message");
        assert_eq!(
            s.dead_letter_origin("chat.dlq.in.7.message").as_deref(),
            Some("chat.in.7.message")
        );
        assert_eq!(
            s.chat_event(Some(7), "message_created"),
            "chat.events.7.message_created"
        );
    }

    #[test]
    fn partitioned_subjects_map_back_to_what_was_published() {
        let s = Subjects::new("chat");
        assert_eq!(s.published_as("chat.part.3.7.message"), "chat.in.7.message");
        assert_eq!(s.published_as("chat.in.7.message"), "chat.in.7.message");
        assert_eq!(
            s.published_as("chat.part.x.7.message"),
            "chat.part.x.7.message"
        );
        assert_eq!(
            s.dead_letter("chat.part.3.direct.message"),
            "chat.dlq.in.direct.message"
        );
        assert_eq!(
            s.partition_transform(4),
            (
                "chat.in.*.*".to_owned(),
                "chat.part.{{partition(4,1)}}.{{wildcard(1)}}.{{wildcard(2)}}".to_owned()
            )
        );
        assert_eq!(
            s.stored_filters("chat.in.7.*"),
            ["chat.in.7.*", "chat.part.*.7.*"]
        );
        assert_eq!(s.stored_filters("chat.in.>"), ["chat.in.>", "chat.part.>"]);
        assert_eq!(s.stored_filters("chat.events.7.*"), ["chat.events.7.*"]);
        assert_eq!(s.partition_filters(0, 1), ["chat.in.>"]);
        assert_eq!(s.partition_filters(0, 4), ["chat.in.>", "chat.part.0.>"]);
        assert_eq!(s.partition_filters(3, 4), ["chat.part.3.>"]);
    }

    #[test]
    fn ephemeral_subjects_fall_under_no_stream() {
        let s = Subjects::new("chat");
        assert_eq!(s.chat_live(7, "typing"), "chat.live.7.typing");
        assert_eq!(s.chat_live_all(7), "chat.live.7.*");
        assert_eq!(s.user_presence(3), "chat.presence.3");
        assert_eq!(s.presence_bucket(), "CHAT_PRESENCE");
        assert_eq!(s.last_seen_bucket(), "CHAT_LAST_SEEN");
        let stored = [s.all_commands(), s.all_events(), s.all_dead_letters()];
        for subject in [s.chat_live(7, "presence"), s.user_presence(3)] {
            for filter in &stored {
                let root = filter.trim_end_matches('>');
                assert!(!subject.starts_with(root), "{subject} falls under {filter}");
            }
        }
    }

    #[test]
    fn prefix_shapes_streams() {
        let s = Subjects::new("staging.chat");
        assert_eq!(s.in_stream(), "STAGING_CHAT_IN");
        assert_eq!(s.all_events(), "staging.chat.events.>");
        assert_eq!(s.presence_bucket(), "STAGING_CHAT_PRESENCE");
        assert_eq!(s.user_presence(1), "staging.chat.presence.1");
    }
}
