//! Reading commands off `CHAT_IN`: typed, with their sequence and stored time; payloads that
//! are no command become a `command_rejected` event.

use crate::domain::ErrorCode;
use async_nats::jetstream;

use super::batch::Incoming;
use crate::bus::messages::{Command, CommandRejected, Event, VERSION};

/// Decodes a `CHAT_IN` message with its sequence and stored time.
pub fn read(message: &jetstream::Message) -> Result<Incoming, serde_json::Error> {
    let (seq, published) = match message.info() {
        Ok(info) => (info.stream_sequence, stored_at(info.published)),
        Err(_) => (0, chrono::Utc::now()),
    };
    let command = decode(&message.subject, &message.payload)?;
    Ok(Incoming {
        seq,
        published,
        command,
    })
}

/// When JetStream stored a command, as the database records it.
fn stored_at(published: time::OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(published.unix_timestamp(), published.nanosecond())
        .unwrap_or_else(chrono::Utc::now)
}

/// The `command_rejected` event for a payload that is not a command: its id is the payload's
/// `command_id` or `client_msg_id` when it has one, so the sender can still correlate.
pub fn unreadable_command(message: &jetstream::Message, error: &serde_json::Error) -> Event {
    let (subject, payload) = (message.subject.as_str(), &message.payload);
    let value: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let field = |name: &str| value.as_ref()?.get(name)?.as_str().map(str::to_owned);
    let mut tokens = subject.rsplit('.');
    let kind = tokens.next().unwrap_or_default().to_owned();
    let chat_id = tokens.next().and_then(|t| t.parse().ok());
    Event::CommandRejected(CommandRejected {
        v: VERSION,
        command_id: field("command_id")
            .or_else(|| field("client_msg_id"))
            .unwrap_or_default(),
        command: field("type").unwrap_or(kind),
        chat_id,
        code: ErrorCode::InvalidCommand,
        detail: format!("not a valid command: {error}"),
        stream_seq: message.info().map_or(0, |info| info.stream_sequence),
    })
}

/// Reads a command; `type` and `chat_id` may be left out when the subject implies them
/// (`chat.in.7.message` is a `send_message` into chat 7), which keeps hand-written
/// commands from Django short.
pub fn decode(subject: &str, payload: &[u8]) -> Result<Command, serde_json::Error> {
    if let Ok(command) = serde_json::from_slice(payload) {
        return Ok(command);
    }
    let mut value: serde_json::Value = serde_json::from_slice(payload)?;
    if let Some(object) = value.as_object_mut() {
        let mut tokens = subject.rsplit('.');
        let kind = tokens.next().unwrap_or_default();
        let chat = tokens.next().and_then(|t| t.parse::<i64>().ok());
        let implied = match kind {
            "message" => Some("send_message"),
            "receipt" => Some("receipt"),
            "create" => Some("create_chat"),
            "add_members" => Some("add_members"),
            "remove_members" => Some("remove_members"),
            "rename" => Some("rename_chat"),
            "update_chat" => Some("update_chat"),
            "set_member_role" => Some("set_member_role"),
            "delete_chat" => Some("delete_chat"),
            "delete_message" => Some("delete_message"),
            "edit_message" => Some("edit_message"),
            "react" => Some("react"),
            "unreact" => Some("unreact"),
            "pin_message" => Some("pin_message"),
            _ => None,
        };
        if let (false, Some(kind)) = (object.contains_key("type"), implied) {
            object.insert("type".into(), kind.into());
        }
        if let (false, Some(chat)) = (object.contains_key("chat_id"), chat) {
            object.insert("chat_id".into(), chat.into());
        }
        if !object.contains_key("client_msg_id") && kind == "message" {
            object.insert(
                "client_msg_id".into(),
                uuid::Uuid::now_v7().to_string().into(),
            );
        }
        if !object.contains_key("content_type") && kind == "message" {
            object.insert("content_type".into(), "text".into());
        }
    }
    serde_json::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_fills_in_what_the_payload_leaves_out() {
        let cmd = decode("chat.in.7.message", br#"{"sender_id":1,"content":"hi"}"#).unwrap();
        let Command::SendMessage(m) = cmd else {
            panic!("not a message")
        };
        assert_eq!(m.chat_id, Some(7));
        assert_eq!(m.sender_id, 1);
        assert!(!m.client_msg_id.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode("chat.in.7.message", b"nope").is_err());
        assert!(decode("chat.in.7.message", br#"{"content":"no sender"}"#).is_err());
    }
}
