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

    /// Where the command first published on `subject` is kept: `chat.in.7.message` becomes
    /// `chat.dlq.in.7.message` (a subject outside the prefix keeps its whole name after it).
    pub fn dead_letter(&self, subject: &str) -> String {
        let rest = subject
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject);
        format!("{}.dlq.{rest}", self.prefix)
    }

    /// The command subject a dead letter came from: the inverse of [`Subjects::dead_letter`].
    pub fn dead_letter_origin(&self, dead_letter: &str) -> Option<String> {
        let rest = dead_letter
            .strip_prefix(&self.prefix)?
            .strip_prefix(".dlq.")?;
        Some(format!("{}.{rest}", self.prefix))
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
