//! jetchat: a real-time chat service on NATS JetStream.
//!
//! The data flow, module by module:
//!
//! 1. [`gateway`] accepts WebSockets (`/ws/chat`), checks each frame and publishes it as a
//!    command to the `CHAT_IN` stream ([`bus`]); JetStream's acknowledgement becomes the
//!    client's `message_accepted`.
//! 2. [`persister`] pulls commands in batches, writes them through [`store`] in one transaction
//!    per batch, publishes what happened to `CHAT_EVENTS` and only then acks the commands.
//! 3. [`gateway::router`] subscribes to the events of the chats its sockets belong to and
//!    pushes `message_ack`, `new_message` and `status_update` frames.
//!
//! 4. [`presence`] keeps each instance's users in a NATS key-value heartbeat and tells who comes
//!    online or goes offline; typing and presence reach sockets through the router's per-chat
//!    ephemeral subjects (`chat.live.<chat_id>.*`, core NATS, in no stream).
//!
//! [`ops`] holds the operator commands (replay, streams, reproject, dlq).
//! [`health`] is what `/healthz` knows of the background tasks; [`supervisor`] restarts the
//! persister or stops the process when a task dies.
//! [`media`] recognises, stages, stores and signs uploaded files (`POST /upload`,
//! `GET /media/{file_id}`).
//! [`server`] accepts the HTTP connections (and closes those too slow to send a request);
//! [`http`] serves REST (chat creation, history) and the OpenAPI document ([`openapi`]);
//! [`limits`] holds how often one user may do what (per-user rate limits); [`metrics`] what
//! `/metrics` reports; [`telemetry`] the traces that follow a command through all of it (OTLP,
//! trace context in NATS headers); [`origins`] which browser origins may call jetchat;
//! [`auth`] checks the Django-issued JWTs; [`app`] wires it all together under one
//! [`shutdown`] token and hands every handler and socket the same [`state`]; [`config`] reads
//! the settings; [`domain`] holds what everything shares (ids, error codes, field rules).

pub mod app;
pub mod auth;
pub mod bus;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod health;
pub mod http;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod origins;
pub mod persister;
pub mod presence;
pub mod push;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod telemetry;
