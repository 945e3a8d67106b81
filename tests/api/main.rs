//! jetchat's integration suite: the real service on loopback with its own nats-server and
//! SQLite database per test, driven by real WebSocket and HTTP clients.

mod helpers;

mod chat_flow;
