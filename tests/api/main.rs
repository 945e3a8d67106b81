//! jetchat's integration suite: the real service on loopback with its own nats-server and
//! SQLite database per test, driven by real WebSocket and HTTP clients.

mod helpers;

mod admin;
mod answers;
mod arbitrary_input;
mod auth;
mod batches;
mod blocks;
mod chat_flow;
mod closing;
mod cluster;
mod connections;
mod contract;
mod cors;
mod db_outage;
mod deletes;
mod edits;
mod failures;
mod frames;
mod groups;
mod history;
mod instances;
mod lifecycle;
mod limits;
mod media;
mod metrics;
mod openapi;
mod operations_doc;
mod ops;
mod order;
mod poison;
mod presence;
mod process;
mod push;
mod reactions;
mod rebuild;
mod replies;
mod rest;
mod search;
mod secrets;
mod sync;
mod traces;
mod typing;
mod users;
mod web_app;
