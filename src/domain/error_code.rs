//! The one vocabulary of refusals: every `error` frame, every `command_rejected` event and
//! outcome, and the status of every REST answer to a refused command name one of these codes.
//! The wire name, the HTTP status, the metrics label and the one-line meaning of each live in
//! the table below and nowhere else; docs/protocol.md's table is tested against it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`ErrorCode`] from one table: variant, wire name, HTTP status, meaning.
macro_rules! error_codes {
    ($($variant:ident = $name:literal, $status:literal, $meaning:literal;)*) => {
        /// Why a frame, a request or a command was refused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of docs/protocol.md's table.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The name on the wire and in `/metrics` (`jetchat_errors_total{code=…}`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }

            /// The HTTP status a REST caller gets for a command refused with this code.
            pub const fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// What the code means, in one line (docs/protocol.md says it at length).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }

            /// The code a wire name stands for; `None` for a name this version does not know.
            pub fn parse(name: &str) -> Option<ErrorCode> {
                match name {
                    $($name => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    BadJson = "bad_json", 422, "not JSON, or a binary frame";
    InvalidField = "invalid_field", 422, "a field of the wrong type, out of range, too long, or holding NUL";
    MissingField = "missing_field", 422, "a required field is absent";
    UnknownAction = "unknown_action", 422, "an action this server does not know";
    EmptyContent = "empty_content", 422, "a blank message or edit without a file";
    ContentTooLong = "content_too_long", 422, "content over MAX_CONTENT_CHARS";
    Forbidden = "forbidden", 403, "not allowed: not a member, not the author, your own message, another user's token";
    NotFound = "not_found", 404, "an unknown chat, message or upload";
    MessageDeleted = "message_deleted", 422, "editing or reacting to a deleted message";
    InvalidReply = "invalid_reply", 422, "a reply to a message that is not of the same chat";
    InvalidForward = "invalid_forward", 422, "a forward of a message the sender cannot read";
    InvalidEmoji = "invalid_emoji", 422, "a reaction that is not one grapheme cluster of at most 64 bytes";
    TooManyReactions = "too_many_reactions", 422, "a new emoji on a message that already has 20";
    TooManyPins = "too_many_pins", 422, "a new pin in a chat that already has 100 pinned messages";
    NotEditable = "not_editable", 422, "an edit of a file-only message, or one that names a file";
    EditWindowPassed = "edit_window_passed", 422, "an edit of a message older than EDIT_WINDOW";
    InvalidReceiver = "invalid_receiver", 422, "a private message to a user id <= 0 or to the sender";
    InvalidMember = "invalid_member", 422, "a member id <= 0; a private chat without exactly one other user";
    TooManyMembers = "too_many_members", 422, "a group over its member limit";
    NotAGroup = "not_a_group", 422, "membership or name changes on a private chat";
    NotAMember = "not_a_member", 403, "a membership or admin command of a user who is not a member of the group, or naming one who is not";
    Blocked = "blocked", 403, "the other user blocked you: no new private chat, message or group with them";
    InvalidRole = "invalid_role", 422, "a role that is not owner, admin or member";
    OwnerRequired = "owner_required", 422, "a change that would leave a group without its owner: hand ownership over first";
    InvalidName = "invalid_name", 422, "a group name that is blank, too long or holds NUL";
    InvalidDisplayName = "invalid_display_name", 422, "a user's display name that is blank, over 100 characters or holds a control character";
    InvalidAvatarUrl = "invalid_avatar_url", 422, "a user's avatar URL that is not http(s), over 2048 bytes or holds whitespace or a control character";
    InvalidCommand = "invalid_command", 422, "not a command: unreadable JSON, a missing field, a wrong type";
    Unavailable = "unavailable", 503, "NATS or the database is unreachable: not accepted, send it again";
    InvalidData = "invalid_data", 422, "accepted, then refused because the database cannot store it";
    IdConflict = "id_conflict", 503, "accepted, then refused because its id is taken (CHAT_IN behind the database)";
    InternalError = "internal_error", 500, "accepted, then refused because jetchat failed on it";
    RateLimited = "rate_limited", 429, "over a rate limit: nothing was done, retry after retry_after_ms";
    InvalidToken = "invalid_token", 401, "a token that is malformed, expired, badly signed or not an access token";
    Other = "other", 422, "a code this version does not know (from a newer jetchat on the bus)";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A code this version does not know reads as [`ErrorCode::Other`]: a newer instance on the
/// same bus may refuse with a code added since.
impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ErrorCode::parse(&name).unwrap_or(ErrorCode::Other))
    }
}

impl schemars::JsonSchema for ErrorCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        schemars::json_schema!({
            "description": "Why a frame or command was refused (docs/protocol.md, \"Error codes\"). New codes may come: treat an unknown one as a generic refusal.",
            "type": "string",
            "enum": names,
        })
    }
}

/// The OpenAPI schema of a REST error's `code`: the same names.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        utoipa::openapi::schema::Object::builder()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Why the request was refused (docs/protocol.md, \"Error codes\"). New codes may come: treat an unknown one as a generic refusal.",
            ))
            .enum_values(Some(names))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, ErrorCode::Other);
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
    }

    /// docs/protocol.md's table of error codes lists every code, and no other.
    #[test]
    fn the_protocol_doc_lists_every_code() {
        let doc = include_str!("../../docs/protocol.md");
        let table = doc
            .split("### Error codes")
            .nth(1)
            .expect("docs/protocol.md has an Error codes section");
        let documented: Vec<&str> = table
            .lines()
            .skip_while(|l| !l.starts_with("| code"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.split('`').nth(1))
            .collect();
        let known: Vec<&str> = ErrorCode::ALL
            .iter()
            .filter(|c| **c != ErrorCode::Other)
            .map(|c| c.as_str())
            .collect();
        for name in &known {
            assert!(
                documented.contains(name),
                "docs/protocol.md's error table lacks `{name}`"
            );
        }
        for name in &documented {
            assert!(
                known.contains(name),
                "docs/protocol.md documents `{name}`, which is no ErrorCode"
            );
        }
    }
}
