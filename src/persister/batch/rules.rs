//! What every command must satisfy as a whole, whoever sends it: the field rules of
//! [`crate::domain::rules`] applied to each command kind, and the limits the settings give
//! (`MAX_CONTENT_CHARS`, `EDIT_WINDOW`).

use crate::{
    bus::messages::{Command, MAX_DELIVERED_MARKS, SendMessage},
    domain::{
        ErrorCode, SettingsChange,
        rules::{
            MAX_NAME_CHARS, Refusal, avatar_url, client_msg_id, command_id, content, display_name,
            emoji, file_id, file_url, group_name, members, muted_until, no_control, positive, text,
        },
    },
};

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
                        ErrorCode::InvalidField,
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
                        .map_err(|r| Refusal::new(ErrorCode::InvalidName, r.detail))?;
                }
                members("member_ids", &cmd.member_ids)
            }
            Command::AddMembers(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                cmd.actor_id.map_or(Ok(()), |id| positive("actor_id", id))?;
                members("user_ids", &cmd.user_ids)
            }
            Command::RemoveMembers(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                cmd.actor_id.map_or(Ok(()), |id| positive("actor_id", id))?;
                members("user_ids", &cmd.user_ids)
            }
            Command::UpdateChat(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                cmd.actor_id.map_or(Ok(()), |id| positive("actor_id", id))?;
                if let Some(name) = &cmd.name {
                    group_name(name)?;
                }
                let settings = cmd.settings.unwrap_or_default();
                if cmd.name.is_none() && settings == SettingsChange::default() {
                    return Err(Refusal::new(
                        ErrorCode::MissingField,
                        "nothing to change: give a name, settings or both",
                    ));
                }
                Ok(())
            }
            Command::SetMemberRole(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                cmd.actor_id.map_or(Ok(()), |id| positive("actor_id", id))?;
                members("user_id", &[cmd.user_id])
            }
            Command::DeleteChat(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                cmd.actor_id.map_or(Ok(()), |id| positive("actor_id", id))
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
                    return Err(Refusal::new(ErrorCode::InvalidField, "file_id is required"));
                }
                if cmd.sha256.len() != 64 || !cmd.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Refusal::new(
                        ErrorCode::InvalidField,
                        "sha256 must be 64 hexadecimal digits",
                    ));
                }
                if cmd.size < 0 {
                    return Err(Refusal::new(
                        ErrorCode::InvalidField,
                        "size must not be negative",
                    ));
                }
                if !matches!(cmd.kind.as_str(), "audio" | "video" | "image") {
                    return Err(Refusal::new(
                        ErrorCode::InvalidField,
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
            Command::UpsertUser(cmd) => {
                command_id(&cmd.command_id)?;
                positive("user_id", cmd.user_id)?;
                display_name(&cmd.display_name)?;
                cmd.avatar_url.as_deref().map_or(Ok(()), avatar_url)
            }
            Command::PinMessage(cmd) => {
                command_id(&cmd.command_id)?;
                positive("chat_id", cmd.chat_id)?;
                positive("message_id", cmd.message_id)?;
                cmd.actor_id.map_or(Ok(()), |id| positive("actor_id", id))
            }
            Command::SetBlock(cmd) => {
                command_id(&cmd.command_id)?;
                positive("user_id", cmd.user_id)?;
                positive("blocked_id", cmd.blocked_id)?;
                if cmd.blocked_id == cmd.user_id {
                    return Err(Refusal::new(
                        ErrorCode::InvalidField,
                        "blocked_id: you cannot block yourself",
                    ));
                }
                Ok(())
            }
            Command::EraseUser(cmd) => {
                command_id(&cmd.command_id)?;
                positive("user_id", cmd.user_id)
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
        crate::domain::rules::edited_content(value, self.max_content_chars)
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
                ErrorCode::InvalidReceiver,
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
        crate::domain::rules::mentions(&cmd.mentions)?;
        // A forward without text or file copies the original's.
        if cmd.content.trim().is_empty()
            && cmd.forwarded_from.is_none()
            && cmd.file_id.is_none()
            && cmd.file_url.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            return Err(Refusal::new(ErrorCode::EmptyContent, "content is empty"));
        }
        content(&cmd.content, self.max_content_chars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{MAX_CLIENT_MSG_ID, MAX_COMMAND_ID, MAX_FILE_URL};
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
            assert_eq!(refusal.code, ErrorCode::InvalidEmoji, "{bad:?}");
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
            mentions: Vec::new(),
            reply_to: None,
        }
    }

    #[test]
    fn nul_is_refused_in_every_text_field() {
        let rules = Rules::default();
        assert_eq!(
            rules.check_message(&message("a\0b")).unwrap_err().code,
            ErrorCode::InvalidField
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
            ErrorCode::ContentTooLong
        );
        assert!(
            rules.check_message(&message("ééé")).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            rules.check_message(&message("  ")).unwrap_err().code,
            ErrorCode::EmptyContent
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
        assert_eq!(
            rules.edited_content(" ").unwrap_err().code,
            ErrorCode::EmptyContent
        );
        assert_eq!(
            rules.edited_content("four").unwrap_err().code,
            ErrorCode::ContentTooLong
        );
        assert_eq!(
            rules.edited_content("a\0").unwrap_err().code,
            ErrorCode::InvalidField
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
