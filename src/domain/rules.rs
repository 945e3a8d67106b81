//! The rules a field must satisfy, whoever sends it: the socket and REST check them before they
//! publish (so a client hears of a bad field at once), the persister again for commands from
//! NATS. Each answers with the [`Refusal`] its sender gets.
//!
//! One decision for every text field: NUL (U+0000) is refused, on SQLite as on PostgreSQL
//! (PostgreSQL's `text` cannot hold it, and a value one backend stores and the other refuses
//! would make a deployment's behaviour depend on its database). JSON cannot carry another
//! character a backend refuses: Rust strings are valid UTF-8, and serde_json refuses lone
//! surrogates.

use chrono::{DateTime, Utc};

use super::ErrorCode;

/// A command or frame that will not be applied, with the code and sentence its sender gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub detail: String,
}

impl Refusal {
    /// A refusal with `code` and `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Refusal {
            code,
            detail: detail.into(),
        }
    }
}

/// The end of a mute that never ends: what `mute` without `until` stores.
pub fn muted_forever() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(MUTED_FOREVER)
        .expect("a valid time")
        .to_utc()
}

/// [`muted_forever`] as text.
pub const MUTED_FOREVER: &str = "9999-12-31T23:59:59Z";

/// Longest `client_msg_id`, in characters (the column is 64 characters wide).
pub const MAX_CLIENT_MSG_ID: usize = 64;

/// Longest `command_id`, in characters.
pub const MAX_COMMAND_ID: usize = 128;

/// Longest group chat name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Longest display name of a user, in characters (after trimming).
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// Longest avatar URL of a user, in bytes.
pub const MAX_AVATAR_URL: usize = 2048;

/// Longest `file_url`, in bytes.
pub const MAX_FILE_URL: usize = 2048;

/// Longest `file_id`, in characters.
pub const MAX_FILE_ID: usize = 64;

/// Longest reaction emoji, in bytes of UTF-8: room for the longest emoji sequences (a family
/// joined by ZWJ, a subdivision flag's tag sequence, with skin tones: under 40 bytes).
pub const MAX_EMOJI_BYTES: usize = 64;

/// Most distinct emoji on one message; one more is refused (`too_many_reactions`).
pub const MAX_REACTION_EMOJI: usize = 20;

/// An edit's new text: what a new message's text must be, and not empty (an edit changes
/// text; it cannot leave a message with nothing).
pub fn edited_content(value: &str, max_content_chars: usize) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::new(ErrorCode::EmptyContent, "content is empty"));
    }
    content(value, max_content_chars)
}

/// The end of a mute: no later than [`MUTED_FOREVER`] (that the time is still to come is
/// checked against the command's own time, by the persister).
pub fn muted_until(until: DateTime<Utc>) -> Result<(), Refusal> {
    if until > muted_forever() {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
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
    let invalid = |detail: String| Err(Refusal::new(ErrorCode::InvalidEmoji, detail));
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
            ErrorCode::ContentTooLong,
            format!("content is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// A client's idempotency key: 1 to [`MAX_CLIENT_MSG_ID`] characters, no NUL.
pub fn client_msg_id(value: &str) -> Result<(), Refusal> {
    if value.is_empty() || value.chars().count() > MAX_CLIENT_MSG_ID {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
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
            ErrorCode::InvalidField,
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
            ErrorCode::InvalidName,
            format!("a name has 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    no_nul("name", name).map_err(|r| Refusal::new(ErrorCode::InvalidName, r.detail))?;
    Ok(name)
}

/// The URL a message links to: `http(s)://host…` or a path of this service (`/media/…`, or
/// `media/…` as the Python service's uploads answered), nothing a browser would run
/// (`javascript:`, `data:`) or resolve on another host (`//host`).
pub fn file_url(value: &str) -> Result<(), Refusal> {
    if value.len() > MAX_FILE_URL {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
            format!("file_url is longer than {MAX_FILE_URL} bytes"),
        ));
    }
    let bad = || {
        Refusal::new(
            ErrorCode::InvalidField,
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
            ErrorCode::InvalidField,
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
            ErrorCode::InvalidField,
            format!("{field} must not contain the NUL character (U+0000)"),
        ));
    }
    Ok(())
}

/// User ids to add to (or remove from) a chat: positive.
pub fn members(field: &str, ids: &[i64]) -> Result<(), Refusal> {
    if ids.iter().any(|id| *id <= 0) {
        return Err(Refusal::new(
            ErrorCode::InvalidMember,
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
            ErrorCode::InvalidField,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// A message's `mentions`: at most [`crate::domain::MAX_MENTIONS`] ids, each positive
/// (`invalid_field` otherwise); whether they are members is the persister's to decide.
pub fn mentions(ids: &[i64]) -> Result<(), Refusal> {
    if ids.len() > crate::domain::MAX_MENTIONS {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
            format!(
                "mentions: at most {} users per message",
                crate::domain::MAX_MENTIONS
            ),
        ));
    }
    match ids.iter().find(|id| **id <= 0) {
        Some(id) => Err(Refusal::new(
            ErrorCode::InvalidField,
            format!("mentions: {id} is not a user id (positive integers only)"),
        )),
        None => Ok(()),
    }
}

/// A positive id (`invalid_field` naming `field` otherwise).
pub fn positive(field: &str, id: i64) -> Result<(), Refusal> {
    if id <= 0 {
        return Err(Refusal::new(
            ErrorCode::InvalidField,
            format!("{field} must be positive integers"),
        ));
    }
    Ok(())
}

/// A user's display name, trimmed: 1 to [`MAX_DISPLAY_NAME_CHARS`] characters, no control
/// character (NUL, newlines, escapes: a name is drawn on one line).
pub fn display_name(value: &str) -> Result<&str, Refusal> {
    let name = value.trim();
    let invalid = |detail: String| Err(Refusal::new(ErrorCode::InvalidDisplayName, detail));
    if name.is_empty() {
        return invalid("display_name is blank".into());
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return invalid(format!(
            "display_name is longer than {MAX_DISPLAY_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return invalid("display_name must not contain control characters".into());
    }
    Ok(name)
}

/// A user's avatar: an `http(s)://host…` URL of at most [`MAX_AVATAR_URL`] bytes, without
/// whitespace or control characters. jetchat never fetches it; clients load it.
pub fn avatar_url(value: &str) -> Result<(), Refusal> {
    let invalid = |detail: String| Err(Refusal::new(ErrorCode::InvalidAvatarUrl, detail));
    if value.len() > MAX_AVATAR_URL {
        return invalid(format!("avatar_url is longer than {MAX_AVATAR_URL} bytes"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return invalid("avatar_url must not contain whitespace or control characters".into());
    }
    let lower = value.to_ascii_lowercase();
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', '?', '#']) => Ok(()),
        _ => invalid("avatar_url must be an http(s) URL with a host".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_names_are_trimmed_and_refused_with_their_code() {
        assert_eq!(display_name("  Ann Lee \t"), Ok("Ann Lee"));
        assert_eq!(display_name("Zoë 🙂"), Ok("Zoë 🙂"));
        for bad in [
            "",
            "   ",
            "An\u{0}n",
            "Ann\nLee",
            "\u{1b}[31mred",
            &"x".repeat(101),
        ] {
            assert_eq!(
                display_name(bad).map_err(|r| r.code),
                Err(ErrorCode::InvalidDisplayName),
                "{bad:?}"
            );
        }
        assert!(display_name(&format!("  {}  ", "é".repeat(100))).is_ok());
    }

    #[test]
    fn avatar_urls_are_http_with_a_host() {
        for good in [
            "https://cdn.example.com/a.png",
            "HTTP://cdn.example.com/a.png?s=64",
            "https://[::1]:8443/a",
        ] {
            assert_eq!(avatar_url(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "ftp://cdn.example.com/a.png",
            "//cdn.example.com/a.png",
            "/media/a.png",
            "https://",
            "https:///a.png",
            "https://cdn.example.com/a b.png",
            "https://cdn.example.com/\u{0}",
        ] {
            assert_eq!(
                avatar_url(bad).map_err(|r| r.code),
                Err(ErrorCode::InvalidAvatarUrl),
                "{bad:?}"
            );
        }
        let long = format!("https://cdn.example.com/{}", "a".repeat(MAX_AVATAR_URL));
        assert!(avatar_url(&long).is_err());
    }

    proptest! {
        /// Whatever Django sends, a name is refused with `invalid_display_name` or stored as
        /// one line of 1 to 100 characters with no surrounding space: nothing else.
        #[test]
        fn a_display_name_is_refused_or_one_clean_line(raw in any::<String>()) {
            match display_name(&raw) {
                Ok(name) => {
                    prop_assert!(!name.is_empty());
                    prop_assert!(name.chars().count() <= MAX_DISPLAY_NAME_CHARS);
                    prop_assert!(!name.chars().any(char::is_control));
                    prop_assert_eq!(name, name.trim());
                }
                Err(refusal) => prop_assert_eq!(refusal.code, ErrorCode::InvalidDisplayName),
            }
        }

        /// An accepted avatar URL is http(s) with a host, short, and one token; a refusal
        /// always carries `invalid_avatar_url`.
        #[test]
        fn an_avatar_url_is_refused_or_http_with_a_host(
            raw in prop_oneof![
                any::<String>(),
                "(https?|ftp|javascript|data|HTTPS)://?[a-z/?#.]{0,12}[ -~]{0,20}",
            ]
        ) {
            match avatar_url(&raw) {
                Ok(()) => {
                    let lower = raw.to_ascii_lowercase();
                    let rest = lower
                        .strip_prefix("https://")
                        .or_else(|| lower.strip_prefix("http://"));
                    prop_assert!(rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')));
                    prop_assert!(raw.len() <= MAX_AVATAR_URL);
                    prop_assert!(!raw.chars().any(|c| c.is_control() || c.is_whitespace()));
                }
                Err(refusal) => prop_assert_eq!(refusal.code, ErrorCode::InvalidAvatarUrl),
            }
        }
    }
}
