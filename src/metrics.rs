//! What `GET /metrics` reports, in the Prometheus (OpenMetrics) text format.
//!
//! `prometheus-client` (the Prometheus project's own Rust client): typed metrics, a registry
//! per [`Metrics`] rather than a process-global recorder (tests run many apps in one process,
//! each with its own counts), counters and gauges that are one shared atomic each. Every
//! labelled series is resolved once, here: the hot path indexes an array and increments an
//! atomic, with no lock, lookup or allocation per frame. Histograms (a mutex inside) are
//! observed once per persister batch, never per frame.

use crate::{bus::messages::Event, domain::ErrorCode};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// A frame a client sends, as counted by `jetchat_frames_in_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameIn {
    SendMessage,
    Delivered,
    Acknowledge,
    Ping,
    RefreshToken,
    Sync,
    Typing,
    Presence,
    EditMessage,
    DeleteMessage,
    React,
    Unreact,
    Mute,
    Unmute,
    AddMembers,
    RemoveMember,
    LeaveChat,
    SetMemberRole,
    UpdateChat,
    DeleteChat,
    BlockUser,
    UnblockUser,
    PinMessage,
    UnpinMessage,
    /// Not a frame the server understands (bad JSON, a binary frame, an unknown action).
    Invalid,
}

impl FrameIn {
    const ALL: [FrameIn; 25] = [
        FrameIn::SendMessage,
        FrameIn::Delivered,
        FrameIn::Acknowledge,
        FrameIn::Ping,
        FrameIn::RefreshToken,
        FrameIn::Sync,
        FrameIn::Typing,
        FrameIn::Presence,
        FrameIn::EditMessage,
        FrameIn::DeleteMessage,
        FrameIn::React,
        FrameIn::Unreact,
        FrameIn::Mute,
        FrameIn::Unmute,
        FrameIn::AddMembers,
        FrameIn::RemoveMember,
        FrameIn::LeaveChat,
        FrameIn::SetMemberRole,
        FrameIn::UpdateChat,
        FrameIn::DeleteChat,
        FrameIn::BlockUser,
        FrameIn::UnblockUser,
        FrameIn::PinMessage,
        FrameIn::UnpinMessage,
        FrameIn::Invalid,
    ];

    fn label(self) -> &'static str {
        match self {
            FrameIn::SendMessage => "send_message",
            FrameIn::Delivered => "delivered",
            FrameIn::Acknowledge => "acknowledge",
            FrameIn::Ping => "ping",
            FrameIn::RefreshToken => "refresh_token",
            FrameIn::Sync => "sync",
            FrameIn::Typing => "typing",
            FrameIn::Presence => "presence",
            FrameIn::EditMessage => "edit_message",
            FrameIn::DeleteMessage => "delete_message",
            FrameIn::React => "react",
            FrameIn::Unreact => "unreact",
            FrameIn::Mute => "mute",
            FrameIn::Unmute => "unmute",
            FrameIn::AddMembers => "add_members",
            FrameIn::RemoveMember => "remove_member",
            FrameIn::LeaveChat => "leave_chat",
            FrameIn::SetMemberRole => "set_member_role",
            FrameIn::UpdateChat => "update_chat",
            FrameIn::DeleteChat => "delete_chat",
            FrameIn::BlockUser => "block_user",
            FrameIn::UnblockUser => "unblock_user",
            FrameIn::PinMessage => "pin_message",
            FrameIn::UnpinMessage => "unpin_message",
            FrameIn::Invalid => "invalid",
        }
    }
}

/// A frame the server sends, as counted by `jetchat_frames_out_total{kind}`; the names are
/// the frames' `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOut {
    MessageAccepted,
    MessageAck,
    NewMessage,
    StatusUpdate,
    Error,
    Pong,
    TokenRefreshed,
    CommandApplied,
    MemberAdded,
    MemberRemoved,
    ChatRenamed,
    MessageDeleted,
    MessageEdited,
    ReactionAdded,
    ReactionRemoved,
    ChatMuted,
    ChatCreated,
    Unread,
    Synced,
    ResyncRequired,
    Typing,
    Presence,
    PresenceState,
    UserUpdated,
    MemberRoleChanged,
    ChatUpdated,
    ChatDeleted,
    BlockChanged,
    MessagePinned,
    MessageUnpinned,
}

impl FrameOut {
    const ALL: [FrameOut; 30] = [
        FrameOut::MessageAccepted,
        FrameOut::MessageAck,
        FrameOut::NewMessage,
        FrameOut::StatusUpdate,
        FrameOut::Error,
        FrameOut::Pong,
        FrameOut::TokenRefreshed,
        FrameOut::CommandApplied,
        FrameOut::MemberAdded,
        FrameOut::MemberRemoved,
        FrameOut::ChatRenamed,
        FrameOut::MessageDeleted,
        FrameOut::MessageEdited,
        FrameOut::ReactionAdded,
        FrameOut::ReactionRemoved,
        FrameOut::ChatMuted,
        FrameOut::ChatCreated,
        FrameOut::Unread,
        FrameOut::Synced,
        FrameOut::ResyncRequired,
        FrameOut::Typing,
        FrameOut::Presence,
        FrameOut::PresenceState,
        FrameOut::UserUpdated,
        FrameOut::MemberRoleChanged,
        FrameOut::ChatUpdated,
        FrameOut::ChatDeleted,
        FrameOut::BlockChanged,
        FrameOut::MessagePinned,
        FrameOut::MessageUnpinned,
    ];

    /// The frame's `action`.
    pub fn label(self) -> &'static str {
        match self {
            FrameOut::MessageAccepted => "message_accepted",
            FrameOut::MessageAck => "message_ack",
            FrameOut::NewMessage => "new_message",
            FrameOut::StatusUpdate => "status_update",
            FrameOut::Error => "error",
            FrameOut::Pong => "pong",
            FrameOut::TokenRefreshed => "token_refreshed",
            FrameOut::CommandApplied => "command_applied",
            FrameOut::MemberAdded => "member_added",
            FrameOut::MemberRemoved => "member_removed",
            FrameOut::ChatRenamed => "chat_renamed",
            FrameOut::MessageDeleted => "message_deleted",
            FrameOut::MessageEdited => "message_edited",
            FrameOut::ReactionAdded => "reaction_added",
            FrameOut::ReactionRemoved => "reaction_removed",
            FrameOut::ChatMuted => "chat_muted",
            FrameOut::ChatCreated => "chat_created",
            FrameOut::Unread => "unread",
            FrameOut::Synced => "synced",
            FrameOut::ResyncRequired => "resync_required",
            FrameOut::Typing => "typing",
            FrameOut::Presence => "presence",
            FrameOut::PresenceState => "presence_state",
            FrameOut::UserUpdated => "user_updated",
            FrameOut::MemberRoleChanged => "member_role_changed",
            FrameOut::ChatUpdated => "chat_updated",
            FrameOut::ChatDeleted => "chat_deleted",
            FrameOut::BlockChanged => "block_changed",
            FrameOut::MessagePinned => "message_pinned",
            FrameOut::MessageUnpinned => "message_unpinned",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// Where a refusal was decided, as `jetchat_refusals_total{source}` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalSource {
    /// The gateway refused a socket's frame itself (an `error` frame).
    Socket,
    /// An HTTP request was answered with an error (its code is the nearest [`ErrorCode`]).
    Rest,
    /// The persister refused a command of `CHAT_IN`, whoever published it: a rule's
    /// `command_rejected`, a command that is no command, or one the database cannot apply
    /// (a dead letter).
    Persister,
}

impl RefusalSource {
    const ALL: [RefusalSource; 3] = [
        RefusalSource::Socket,
        RefusalSource::Rest,
        RefusalSource::Persister,
    ];

    fn label(self) -> &'static str {
        match self {
            RefusalSource::Socket => "socket",
            RefusalSource::Rest => "rest",
            RefusalSource::Persister => "persister",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    code: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    partition: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

/// Every metric of one jetchat, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// WebSockets open now.
    pub open_sockets: Gauge,
    frames_in: [Counter; FrameIn::ALL.len()],
    frames_out: [Counter; FrameOut::ALL.len()],
    /// Sends JetStream stored (`message_accepted`).
    pub messages_accepted: Counter,
    /// Messages the persister committed.
    pub messages_persisted: Counter,
    /// `new_message` frames handed to sockets.
    pub messages_delivered: Counter,
    /// One series per [`ErrorCode`], by its name.
    errors: Vec<Counter>,
    /// Refusals by where they were decided, then by [`ErrorCode`].
    refusals: [Vec<Counter>; RefusalSource::ALL.len()],
    /// Sends and marks refused for the user's rate limit.
    pub rate_limited: Counter,
    /// Commands per persister transaction.
    pub persist_batch_size: Histogram,
    /// How long a persister batch took to write and commit, in seconds.
    pub persist_commit_seconds: Histogram,
    /// Commands in `CHAT_IN` the persister's consumer has not been handed yet.
    pub consumer_pending: Gauge,
    /// Commands handed to a persister and not yet acked.
    pub consumer_ack_pending: Gauge,
    /// Whether the last scrape could read the consumer's info (1) or not (0).
    pub consumer_info_up: Gauge,
    /// Chats whose events this instance's router subscribes to.
    pub router_subscriptions: Gauge,
    /// Dead letters in the dead-letter stream (read at scrape).
    pub dead_letters: Gauge,
    /// Partitions of `CHAT_IN` this instance's persisters hold (write) now.
    pub partitions_held: Gauge,
    /// SQLite's own heap (set at each scrape): its page caches and prepared statements.
    sqlite_memory: Gauge,
    /// Each partition's consumer: pending, ack pending, redelivered (read at scrape).
    partition_pending: Family<PartitionLabel, Gauge>,
    partition_ack_pending: Family<PartitionLabel, Gauge>,
    partition_redelivered: Family<PartitionLabel, Gauge>,
    /// Bytes of uploads stored.
    pub media_bytes_in: Counter,
    /// Bytes of media bodies served.
    pub media_bytes_out: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, with every labelled series created up front (so each shows
    /// from the first scrape, at 0).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jetchat");
        let open_sockets = Gauge::default();
        registry.register("open_sockets", "WebSockets open now", open_sockets.clone());

        let frames_in_family = Family::<KindLabel, Counter>::default();
        registry.register(
            "frames_in",
            "Frames received from clients, by kind (action)",
            frames_in_family.clone(),
        );
        let frames_in = FrameIn::ALL.map(|kind| {
            frames_in_family
                .get_or_create(&KindLabel { kind: kind.label() })
                .clone()
        });
        let frames_out_family = Family::<KindLabel, Counter>::default();
        registry.register(
            "frames_out",
            "Frames sent to clients, by kind (action)",
            frames_out_family.clone(),
        );
        let frames_out = FrameOut::ALL.map(|kind| {
            frames_out_family
                .get_or_create(&KindLabel { kind: kind.label() })
                .clone()
        });

        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let messages_accepted = counter(
            &mut registry,
            "messages_accepted",
            "Sends stored by JetStream (message_accepted)",
        );
        let messages_persisted = counter(
            &mut registry,
            "messages_persisted",
            "Messages committed to the database by this instance's persister",
        );
        let messages_delivered = counter(
            &mut registry,
            "messages_delivered",
            "new_message frames handed to this instance's sockets",
        );
        let errors_family = Family::<CodeLabel, Counter>::default();
        registry.register(
            "errors",
            "error frames sent to clients, by code",
            errors_family.clone(),
        );
        let errors = ErrorCode::ALL
            .iter()
            .map(|code| {
                errors_family
                    .get_or_create(&CodeLabel {
                        code: code.as_str(),
                    })
                    .clone()
            })
            .collect();
        let refusals_family = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Refusals by code and by where they were decided: socket (the gateway refused a \
             frame), rest (an HTTP request answered with an error), persister (a command of \
             CHAT_IN refused, dead letters included)",
            refusals_family.clone(),
        );
        let refusals = RefusalSource::ALL.map(|source| {
            ErrorCode::ALL
                .iter()
                .map(|code| {
                    refusals_family
                        .get_or_create(&RefusalLabels {
                            code: code.as_str(),
                            source: source.label(),
                        })
                        .clone()
                })
                .collect()
        });
        let rate_limited = counter(
            &mut registry,
            "rate_limited_frames",
            "Sends and marks refused for the user's rate limit",
        );

        let persist_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "persist_batch_size",
            "Commands per persister transaction",
            persist_batch_size.clone(),
        );
        let persist_commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "persist_commit_seconds",
            "Time to write and commit one persister batch, retries included",
            persist_commit_seconds.clone(),
        );

        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let consumer_pending = gauge(
            &mut registry,
            "consumer_pending",
            "Commands in CHAT_IN not yet handed to a persister (read from the consumer's info at scrape)",
        );
        let consumer_ack_pending = gauge(
            &mut registry,
            "consumer_ack_pending",
            "Commands handed to a persister and not yet acked (read at scrape)",
        );
        let consumer_info_up = gauge(
            &mut registry,
            "consumer_info_up",
            "1 if the last scrape read the persister consumer's info, 0 if NATS did not answer in time",
        );
        let router_subscriptions = gauge(
            &mut registry,
            "router_subscriptions",
            "Chats whose events this instance subscribes to",
        );
        let dead_letters = gauge(
            &mut registry,
            "dead_letters",
            "Dead letters waiting in CHAT_DLQ for an operator (read from the stream's info at scrape)",
        );
        let partitions_held = gauge(
            &mut registry,
            "partitions_held",
            "Partitions of CHAT_IN this instance's persisters hold (the others wait on standby)",
        );

        let sqlite_memory = gauge(
            &mut registry,
            "sqlite_memory_bytes",
            "Bytes SQLite holds allocated (its page caches and prepared statements; read at scrape; 0 on PostgreSQL)",
        );

        let partition_family = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<PartitionLabel, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let partition_pending = partition_family(
            &mut registry,
            "partition_pending",
            "Commands of a CHAT_IN partition not yet handed to its persister (read at scrape)",
        );
        let partition_ack_pending = partition_family(
            &mut registry,
            "partition_ack_pending",
            "Commands of a CHAT_IN partition handed to its persister and not yet acked (read at scrape)",
        );
        let partition_redelivered = partition_family(
            &mut registry,
            "partition_redelivered",
            "Commands of a CHAT_IN partition handed out more than once and not yet acked (read at scrape)",
        );

        let media_family = Family::<DirectionLabel, Counter>::default();
        registry.register(
            "media_bytes",
            "Media bytes uploaded (in) and served (out)",
            media_family.clone(),
        );
        let media_bytes_in = media_family
            .get_or_create(&DirectionLabel { direction: "in" })
            .clone();
        let media_bytes_out = media_family
            .get_or_create(&DirectionLabel { direction: "out" })
            .clone();

        Metrics {
            registry,
            open_sockets,
            frames_in,
            frames_out,
            messages_accepted,
            messages_persisted,
            messages_delivered,
            errors,
            refusals,
            rate_limited,
            persist_batch_size,
            persist_commit_seconds,
            consumer_pending,
            consumer_ack_pending,
            consumer_info_up,
            router_subscriptions,
            dead_letters,
            partitions_held,
            sqlite_memory,
            partition_pending,
            partition_ack_pending,
            partition_redelivered,
            media_bytes_in,
            media_bytes_out,
        }
    }

    /// Records what each partition's consumer says at a scrape.
    pub fn partitions(&self, backlog: &crate::bus::streams::Backlog) {
        for (partition, of) in (0..).zip(&backlog.partitions) {
            let label = PartitionLabel { partition };
            let set = |family: &Family<PartitionLabel, Gauge>, value: u64| {
                family
                    .get_or_create(&label)
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            };
            set(&self.partition_pending, of.pending);
            set(&self.partition_ack_pending, of.ack_pending);
            set(&self.partition_redelivered, of.redelivered);
        }
    }

    /// Counts a frame received.
    pub fn frame_in(&self, kind: FrameIn) {
        self.frames_in[kind as usize].inc();
    }

    /// Counts a frame sent.
    pub fn frame_out(&self, kind: FrameOut) {
        self.frames_out[kind as usize].inc();
    }

    /// Counts an `error` frame with `code` (the frame itself is counted by [`Self::frame_out`]).
    pub fn error(&self, code: ErrorCode) {
        self.errors[code as usize].inc();
    }

    /// Counts a refusal decided at `source` with `code`.
    pub fn refusal(&self, source: RefusalSource, code: ErrorCode) {
        self.refusals[source as usize][code as usize].inc();
    }

    /// Counts the persister's refusals among a batch's events (its `command_rejected`).
    pub fn persister_refusals(&self, events: &[Event]) {
        for event in events {
            if let Event::CommandRejected(rejected) = event {
                self.refusal(RefusalSource::Persister, rejected.code);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.sqlite_memory.set(crate::store::sqlite_memory_used());
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_shows_from_the_start_and_counts_where_it_should() {
        let metrics = Metrics::new();
        metrics.frame_in(FrameIn::Ping);
        metrics.frame_out(FrameOut::Pong);
        metrics.error(ErrorCode::RateLimited);
        metrics.error(ErrorCode::NotEditable);
        metrics.error(ErrorCode::Other);
        let text = metrics.render();
        assert!(
            text.contains("jetchat_frames_in_total{kind=\"ping\"} 1"),
            "{text}"
        );
        assert!(text.contains("jetchat_frames_in_total{kind=\"send_message\"} 0"));
        assert!(text.contains("jetchat_frames_out_total{kind=\"pong\"} 1"));
        assert!(text.contains("jetchat_errors_total{code=\"rate_limited\"} 1"));
        assert!(text.contains("jetchat_errors_total{code=\"not_editable\"} 1"));
        assert!(text.contains("jetchat_errors_total{code=\"other\"} 1"));
        assert!(text.contains("jetchat_errors_total{code=\"too_many_reactions\"} 0"));
        assert!(text.contains("jetchat_media_bytes_total{direction=\"out\"} 0"));
    }

    #[test]
    fn refusals_are_counted_by_code_and_source() {
        let metrics = Metrics::new();
        metrics.refusal(RefusalSource::Rest, ErrorCode::NotFound);
        metrics.refusal(RefusalSource::Persister, ErrorCode::InvalidCommand);
        metrics.refusal(RefusalSource::Persister, ErrorCode::InvalidCommand);
        let text = metrics.render();
        for (code, source, n) in [
            ("not_found", "rest", 1),
            ("not_found", "socket", 0),
            ("invalid_command", "persister", 2),
            ("invalid_data", "persister", 0),
        ] {
            let series =
                format!("jetchat_refusals_total{{code=\"{code}\",source=\"{source}\"}} {n}");
            assert!(text.contains(&series), "{series} is missing:\n{text}");
        }
    }

    #[test]
    fn every_error_code_has_its_series_by_name() {
        let text = Metrics::new().render();
        for code in ErrorCode::ALL {
            let series = format!("jetchat_errors_total{{code=\"{code}\"}} 0");
            assert!(text.contains(&series), "{series} is missing");
        }
    }
}
