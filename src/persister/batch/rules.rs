//! What every command must satisfy, whoever sends it: checked here for commands from NATS, and
//! by the socket and REST before they publish, so a client hears of a bad field at once.
//!
//! One decision for every text field: NUL (U+0000) is refused, on SQLite as on PostgreSQL
//! (PostgreSQL's `text` cannot hold it, and a value one backend stores and the other refuses
//! would make a deployment's behaviour depend on its database). JSON cannot carry another
//! character a backend refuses: Rust strings are valid UTF-8, and serde_json refuses lone
//! surrogates.

use chrono::{DateTime, Utc};

use super::Refusal;
use crate::bus::messages::{
    Command, MAX_DELIVERED_MARKS, MUTED_FOREVER, SendMessage, muted_forever,
};

/// Longest `client_msg_id`, in characters (the column is 64 characters wide).
pub const MAX_CLIENT_MSG_ID: usize = 64;

/// Longest `command_id`, in characters.
pub const MAX_COMMAND_ID: usize = 128;

/// Longest group chat name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Longest `file_url`, in bytes.
pub const MAX_FILE_URL: usize = 2048;

/// Longest `file_id`, in characters.
pub const MAX_FILE_ID: usize = 64;

/// Longest reaction emoji, in bytes of UTF-8: room for the longest emoji sequences (a family
/// joined by ZWJ, a subdivision flag's tag sequence, with skin tones: under 40 bytes).
pub const MAX_EMOJI_BYTES: usize = 64;

/// Most distinct emoji on one message; one more is refused (`too_many_reactions`).
pub const MAX_REACTION_EMOJI: usize = 20;

/// The limits of the settings (`MAX_CONTENT_CHARS`, `EDIT_WINDOW`).
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Longest content, in characters (`MAX_CONTENT_CHARS`).
    pub max_content_chars: usize,
    /// How long after sending its author may edit a message (`EDIT_WINDOW`); `None`: always.
    pub edit_window: Option<std::time::Duration>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_content_chars: 10_000,
            edit_window: None,
        }
    }
}

impl Rules {
    /// The rules the configuration sets (`MAX_CONTENT_CHARS`, `EDIT_WINDOW`): what the
    /// persister, `reproject` and the REST edit check alike.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Rules {
            max_content_chars: config.max_content_chars,
            edit_window: config.edit_window,
        }
    }

    /// The same rules as the operator commands read them (`reproject` applies what the
    /// persister did).
    pub fn from_ops_config(config: &crate::config::OpsConfig) -> Self {
        Rules {
            max_content_chars: config.max_content_chars,
            edit_window: config.edit_window,
        }
    }

    /// Checks every field of a command that the persister does not look up in the database.
    pub fn check(&self, command: &Command) -> Result<(), Refusal> {
        match command {
            Command::SendMessage(cmd) => self.check_message(cmd),
            Command::Receipt(cmd) => {
                positive("user_id", cmd.user_id)?;
                positive("chat_id", cmd.chat_id)?;
                positive("message_id", cmd.message_id)
            }
            Command::DeliveredMarks(cmd) => {
                command_id(&cmd.command_id)?;
                if cmd.marks.len() > MAX_DELIVERED_MARKS {
                    return Err(Refusal::new(
                        "invalid_field",
                        format!(
                            "marks: at most {MAX_DELIVERED_MARKS} per command, not {}",
                            cmd.marks.len()
                        ),
                    ));
                }
                for mark in &cmd.marks {
                    positive("user_id", mark.user_id)?;
                    positive("chat_id", mark.chat_id)?;
                    positive("message_id", mark.message_id)?;
                }
                Ok(())
            }
            Command::CreateChat(cmd) => {
                command_id(&cmd.command_id)?;
                positive("creator_id", cmd.creator_id)?;
                if let Some(name) = &cmd.name {
                    text("name", name, MAX_NAME_CHARS)
                        .map_err(|r| Refusal::new("invalid_name", r.detail))?;
                }
                members("member_ids", &cmd.member_ids)
            }
            Command::AddMembers(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                members("user_ids", &cmd.user_ids)
            }
            Command::RemoveMembers(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                members("user_ids", &cmd.user_ids)
            }
            Command::RenameChat(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                group_name(&cmd.name).map(drop)
            }
            Command::DeleteMessage(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                if let Some(deleter) = cmd.deleter_id {
                    positive("deleter_id", deleter)?;
                }
                positive("message_id", cmd.message_id)
            }
            Command::EditMessage(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                positive("message_id", cmd.message_id)?;
                positive("editor_id", cmd.editor_id)?;
                self.edited_content(&cmd.content)
            }
            Command::React(cmd) | Command::Unreact(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                positive("message_id", cmd.message_id)?;
                positive("user_id", cmd.user_id)?;
                emoji(&cmd.emoji)
            }
            Command::RegisterUpload(cmd) => {
                command_id(&cmd.command_id)?;
                positive("owner_id", cmd.owner_id)?;
                // The widths of the uploads table's columns.
                text("file_id", &cmd.file_id, 36)?;
                no_control("file_id", &cmd.file_id)?;
                if cmd.file_id.is_empty() {
                    return Err(Refusal::new("invalid_field", "file_id is required"));
                }
                if cmd.sha256.len() != 64 || !cmd.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Refusal::new(
                        "invalid_field",
                        "sha256 must be 64 hexadecimal digits",
                    ));
                }
                if cmd.size < 0 {
                    return Err(Refusal::new("invalid_field", "size must not be negative"));
                }
                if !matches!(cmd.kind.as_str(), "audio" | "video" | "image") {
                    return Err(Refusal::new(
                        "invalid_field",
                        "kind must be audio, video or image",
                    ));
                }
                text("content_type", &cmd.content_type, 64)?;
                text("filename", &cmd.filename, MAX_NAME_CHARS)?;
                text("storage_key", &cmd.storage_key, 128)?;
                no_control("storage_key", &cmd.storage_key)
            }
            Command::MuteChat(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                positive("user_id", cmd.user_id)?;
                cmd.muted_until.map_or(Ok(()), muted_until)
            }
            Command::PushDue(cmd) => {
                positive("chat_id", cmd.chat_id)?;
                positive("user_id", cmd.user_id)?;
                positive("through_message_id", cmd.through_message_id)
            }
        }
    }

    /// An edit's new text: what a new message's text must be, and not empty (an edit changes
    /// text; it cannot leave a message with nothing).
    pub fn edited_content(&self, value: &str) -> Result<(), Refusal> {
        if value.trim().is_empty() {
            return Err(Refusal::new("empty_content", "content is empty"));
        }
        content(value, self.max_content_chars)
    }

    /// Whether a message sent at `sent` may still be edited at `at`.
    pub fn within_edit_window(
        &self,
        sent: chrono::DateTime<chrono::Utc>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let Some(window) = self.edit_window else {
            return true;
        };
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        at.signed_duration_since(sent) <= window
    }

    /// What a message must satisfy.
    pub fn check_message(&self, cmd: &SendMessage) -> Result<(), Refusal> {
        positive("sender_id", cmd.sender_id)?;
        if let Some(chat_id) = cmd.chat_id {
            positive("chat_id", chat_id)?;
        }
        if let Some(receiver_id) = cmd.receiver_id
            && receiver_id <= 0
        {
            return Err(Refusal::new(
                "invalid_receiver",
                format!("cannot send to user {receiver_id}"),
            ));
        }
        client_msg_id(&cmd.client_msg_id)?;
        if let Some(url) = &cmd.file_url {
            file_url(url)?;
        }
        if let Some(id) = &cmd.file_id {
            file_id(id)?;
        }
        if let Some(id) = cmd.reply_to_message_id {
            positive("reply_to_message_id", id)?;
        }
        if let Some(id) = cmd.forwarded_from {
            positive("forwarded_from", id)?;
        }
        // A forward without text or file copies the original's.
        if cmd.content.trim().is_empty()
            && cmd.forwarded_from.is_none()
            && cmd.file_id.is_none()
            && cmd.file_url.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            return Err(Refusal::new("empty_content", "content is empty"));
        }
        content(&cmd.content, self.max_content_chars)
    }
}

/// The end of a mute: no later than [`MUTED_FOREVER`] (that the time is still to come is
/// checked against the command's own time, by the persister).
pub fn muted_until(until: DateTime<Utc>) -> Result<(), Refusal> {
    if until > muted_forever() {
        return Err(Refusal::new(
            "invalid_field",
            format!("muted_until is after {MUTED_FOREVER} (that is what forever is)"),
        ));
    }
    Ok(())
}

/// A reaction's emoji: exactly one extended grapheme cluster (UAX #29: an emoji with its
/// modifiers, variation selectors and joiners is one), at most [`MAX_EMOJI_BYTES`] bytes, no
/// control character and not whitespace. Which clusters are emoji is not checked: Unicode
/// adds some every year, and a client may react with any single character.
pub fn emoji(value: &str) -> Result<(), Refusal> {
    use unicode_segmentation::UnicodeSegmentation;
    let invalid = |detail: String| Err(Refusal::new("invalid_emoji", detail));
    if value.len() > MAX_EMOJI_BYTES {
        return invalid(format!("emoji is longer than {MAX_EMOJI_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return invalid("emoji must not contain control characters".into());
    }
    if value.trim().is_empty() {
        return invalid("emoji is required".into());
    }
    if value.graphemes(true).nth(1).is_some() {
        return invalid("emoji must be a single character (one grapheme cluster)".into());
    }
    Ok(())
}

/// A message's content: no NUL, at most `max` characters.
pub fn content(value: &str, max: usize) -> Result<(), Refusal> {
    no_nul("content", value)?;
    if value.chars().count() > max {
        return Err(Refusal::new(
            "content_too_long",
            format!("content is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// A client's idempotency key: 1 to [`MAX_CLIENT_MSG_ID`] characters, no NUL.
pub fn client_msg_id(value: &str) -> Result<(), Refusal> {
    if value.is_empty() || value.chars().count() > MAX_CLIENT_MSG_ID {
        return Err(Refusal::new(
            "invalid_field",
            format!("client_msg_id must be 1 to {MAX_CLIENT_MSG_ID} characters"),
        ));
    }
    no_control("client_msg_id", value)
}

/// An upload's id: at most [`MAX_FILE_ID`] characters, no control characters.
pub fn file_id(value: &str) -> Result<(), Refusal> {
    text("file_id", value, MAX_FILE_ID)?;
    no_control("file_id", value)
}

/// A command's id: 1 to [`MAX_COMMAND_ID`] characters, no NUL.
pub fn command_id(value: &str) -> Result<(), Refusal> {
    if value.is_empty() || value.chars().count() > MAX_COMMAND_ID {
        return Err(Refusal::new(
            "invalid_field",
            format!("command_id must be 1 to {MAX_COMMAND_ID} characters"),
        ));
    }
    no_control("command_id", value)
}

/// A group's name, trimmed: 1 to [`MAX_NAME_CHARS`] characters, no NUL.
pub fn group_name(value: &str) -> Result<&str, Refusal> {
    let name = value.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Refusal::new(
            "invalid_name",
            format!("a name has 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    no_nul("name", name).map_err(|r| Refusal::new("invalid_name", r.detail))?;
    Ok(name)
}

/// The URL a message links to: `http(s)://host…` or a path of this service (`/media/…`, or
/// `media/…` as the Python service's uploads answered), nothing a browser would run
/// (`javascript:`, `data:`) or resolve on another host (`//host`).
pub fn file_url(value: &str) -> Result<(), Refusal> {
    if value.len() > MAX_FILE_URL {
        return Err(Refusal::new(
            "invalid_field",
            format!("file_url is longer than {MAX_FILE_URL} bytes"),
        ));
    }
    let bad = || {
        Refusal::new(
            "invalid_field",
            "file_url must be an http(s) URL or a path of this service (/media/…)",
        )
    };
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let lower = value.to_ascii_lowercase();
    let remote = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    // A path has no scheme: no `:` before its first `/`, `?` or `#`.
    let path_start = value.find(['/', '?', '#']).unwrap_or(value.len());
    let has_scheme = value[..path_start].contains(':');
    match remote {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        Some(_) => Err(bad()),
        None if !has_scheme && !value.starts_with("//") && !value.is_empty() => Ok(()),
        None => Err(bad()),
    }
}

/// A text field of at most `max` characters without NUL.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.chars().count() > max {
        return Err(Refusal::new(
            "invalid_field",
            format!("{field} is longer than {max} characters"),
        ));
    }
    no_nul(field, value)
}

/// Refuses NUL (U+0000) in any text field: the one character a backend (PostgreSQL) cannot
/// store.
pub fn no_nul(field: &str, value: &str) -> Result<(), Refusal> {
    if value.contains('\0') {
        return Err(Refusal::new(
            "invalid_field",
            format!("{field} must not contain the NUL character (U+0000)"),
        ));
    }
    Ok(())
}

/// User ids to add to (or remove from) a chat: positive.
fn members(field: &str, ids: &[i64]) -> Result<(), Refusal> {
    if ids.iter().any(|id| *id <= 0) {
        return Err(Refusal::new(
            "invalid_member",
            format!("{field} must be positive integers"),
        ));
    }
    Ok(())
}

/// Identifiers (`client_msg_id`, `command_id`, `file_id`) hold no control characters: they
/// travel in NATS headers and log lines.
pub fn no_control(field: &str, value: &str) -> Result<(), Refusal> {
    if value.chars().any(char::is_control) {
        return Err(Refusal::new(
            "invalid_field",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// Ids are positive: 0 and negative ids name nothing.
pub fn positive(field: &str, id: i64) -> Result<(), Refusal> {
    if id <= 0 {
        return Err(Refusal::new(
            "invalid_field",
            format!("{field} must be positive integers"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bus::messages::VERSION, domain::ContentType};

    #[test]
    fn an_emoji_is_one_grapheme_cluster_of_bounded_bytes() {
        for ok in ["👍", "👍🏽", "❤️", "👨‍👩‍👧‍👦", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🇫🇷", "a", "é", "e\u{301}"]
        {
            assert!(emoji(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            " ",
            "\u{0}",
            "👍\n",
            "\u{7}",
            "👍👍",
            "ab",
            "🇫🇷🇫",
            "👍 ",
            &"\u{301}".repeat(40),
        ] {
            let refusal = emoji(bad).expect_err(bad);
            assert_eq!(refusal.code, "invalid_emoji", "{bad:?}");
        }
    }

    fn message(content: &str) -> SendMessage {
        SendMessage {
            v: VERSION,
            sender_id: 1,
            chat_id: Some(7),
            receiver_id: None,
            content: content.into(),
            content_type: ContentType::Text,
            file_url: None,
            file_id: None,
            client_msg_id: "c1".into(),
            reply_to_message_id: None,
            forwarded_from: None,
            reply_to: None,
        }
    }

    #[test]
    fn nul_is_refused_in_every_text_field() {
        let rules = Rules::default();
        assert_eq!(
            rules.check_message(&message("a\0b")).unwrap_err().code,
            "invalid_field"
        );
        let mut m = message("hi");
        m.client_msg_id = "c\0".into();
        assert!(rules.check_message(&m).is_err());
        assert!(group_name("team\0").is_err());
        assert!(command_id("x\0").is_err());
        assert!(command_id("x\r\ny").is_err(), "ids travel in headers");
        let mut m = message("hi");
        m.client_msg_id = "c\n1".into();
        assert!(rules.check_message(&m).is_err());
        assert!(file_url("/media/a\0").is_err());
        // Other control characters are stored as sent by both backends.
        assert!(rules.check_message(&message("bell \u{7} tab \t")).is_ok());
    }

    #[test]
    fn lengths_and_ids_are_bounded() {
        let rules = Rules {
            max_content_chars: 3,
            ..Rules::default()
        };
        assert_eq!(
            rules.check_message(&message("four")).unwrap_err().code,
            "content_too_long"
        );
        assert!(
            rules.check_message(&message("ééé")).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            rules.check_message(&message("  ")).unwrap_err().code,
            "empty_content"
        );
        let mut m = message("hi");
        m.client_msg_id = "x".repeat(MAX_CLIENT_MSG_ID + 1);
        assert!(rules.check_message(&m).is_err());
        m.client_msg_id = String::new();
        assert!(rules.check_message(&m).is_err());
        for bad in [0, -1, i64::MIN] {
            let mut m = message("hi");
            m.sender_id = bad;
            assert!(rules.check_message(&m).is_err(), "sender {bad}");
            let mut m = message("hi");
            m.chat_id = Some(bad);
            assert!(rules.check_message(&m).is_err(), "chat {bad}");
        }
        let mut m = message("hi");
        m.chat_id = Some(i64::MAX);
        assert!(
            rules.check_message(&m).is_ok(),
            "a large id is looked up, not refused"
        );
        assert!(command_id(&"c".repeat(MAX_COMMAND_ID + 1)).is_err());
        assert_eq!(group_name("  team  ").unwrap(), "team");
        assert!(group_name("   ").is_err());
        assert!(group_name(&"n".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn an_edit_keeps_to_the_send_rules_and_the_window() {
        let rules = Rules {
            max_content_chars: 3,
            edit_window: Some(std::time::Duration::from_secs(60)),
        };
        assert_eq!(rules.edited_content(" ").unwrap_err().code, "empty_content");
        assert_eq!(
            rules.edited_content("four").unwrap_err().code,
            "content_too_long"
        );
        assert_eq!(
            rules.edited_content("a\0").unwrap_err().code,
            "invalid_field"
        );
        let sent = chrono::Utc::now();
        assert!(rules.within_edit_window(sent, sent + chrono::Duration::seconds(60)));
        assert!(!rules.within_edit_window(sent, sent + chrono::Duration::seconds(61)));
        assert!(Rules::default().within_edit_window(sent, sent + chrono::Duration::days(9999)));
    }

    #[test]
    fn file_urls_are_http_or_paths_of_this_service() {
        for good in [
            "https://cdn.example.com/a.ogg",
            "HTTP://host/x",
            "/media/0192-abc",
            "/static/voice.ogg",
            "media/0192-abc_voice.ogg",
        ] {
            assert!(file_url(good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "//evil.example.com/x",
            "https://",
            "https:///path",
            "ftp://host/file",
            "mailto:x@example.com",
            "/media/a b",
            "/media/\nx",
        ] {
            assert!(file_url(bad).is_err(), "{bad}");
        }
        assert!(file_url(&format!("/{}", "a".repeat(MAX_FILE_URL))).is_err());
    }
}
