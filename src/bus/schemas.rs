//! The JSON Schemas of every payload on the bus (`docs/schemas/`), generated from the types.

use super::{
    live,
    messages::{Command, Event, Outcome},
};

/// The JSON Schemas of the bus payloads, by file name under `docs/schemas/`: what
/// `docs/events.md` and `docs/asyncapi.yaml` refer to, and what the contract test checks.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("command.json", schemars::schema_for!(Command).to_value()),
        ("event.json", schemars::schema_for!(Event).to_value()),
        ("outcome.json", schemars::schema_for!(Outcome).to_value()),
        (
            "live.json",
            schemars::schema_for!(live::LiveEvent).to_value(),
        ),
        (
            "presence.json",
            schemars::schema_for!(live::PresenceChange).to_value(),
        ),
        (
            "heartbeat.json",
            schemars::schema_for!(live::InstanceHeartbeat).to_value(),
        ),
    ]
}
