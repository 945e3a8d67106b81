//! A persister and its partition: taking it over in stream order ([`order`] decides, this
//! does the asking and waiting), releasing it when the instance stops or its pull ends, and
//! stepping aside so the instances share the partitions.
//!
//! **Sharing.** JetStream pins a partition to whichever persister pulled first, so the first
//! instance to start would keep every partition. Every `balance_every` a holder asks the
//! partition's consumer how many pulls wait on it (every instance pulls every partition, so
//! that is the instance count); an instance that holds more than its share (the partitions
//! over the instances, rounded up) releases one partition at a time and pauses that pull long
//! enough for a standby persister of another instance to be pinned. Correctness never depends
//! on it: JetStream alone decides who holds a partition, and a handover keeps stream order.

use std::{
    sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering},
    time::Duration,
};

use async_nats::jetstream::{self, AckKind, consumer::pull::MessagesError as PullError};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Persister, order};
use crate::metrics::Metrics;

/// The partitions one instance's persisters hold, shared by them.
#[derive(Debug)]
pub struct Holdings {
    /// The stream's partition count.
    partitions: u16,
    held: AtomicU16,
    /// One partition at a time is released for sharing.
    releasing: AtomicBool,
}

impl Holdings {
    /// Nothing held yet, of `partitions`.
    pub fn new(partitions: u16) -> Self {
        Holdings {
            partitions,
            held: AtomicU16::new(0),
            releasing: AtomicBool::new(false),
        }
    }

    /// A persister was handed its partition's commands.
    pub fn took(&self, metrics: &Metrics) {
        self.held.fetch_add(1, Ordering::Relaxed);
        metrics.partitions_held.inc();
    }

    /// A persister released its partition.
    pub fn gave_up(&self, metrics: &Metrics) {
        self.held.fetch_sub(1, Ordering::Relaxed);
        metrics.partitions_held.dec();
    }

    /// Whether this instance, holding what it holds while `instances` instances pull,
    /// should release a partition (and may: no other release of it is under way).
    fn over_share(&self, instances: u64) -> bool {
        let share = u64::from(self.partitions).div_ceil(instances.max(1));
        u64::from(self.held.load(Ordering::Relaxed)) > share
            && self
                .releasing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// The release for sharing is over.
    fn released(&self) {
        self.releasing.store(false, Ordering::Release);
    }
}

/// Hands back what `pulled` has received and this persister has not taken (it stops, or
/// steps aside): each is NAKed, so the next holder gets it at once instead of after the ack
/// wait (its order check waits for every command handed out before).
pub(super) async fn hand_back(
    pulled: &mut (impl futures_util::Stream<Item = Result<jetstream::Message, PullError>> + Unpin),
) {
    use futures_util::FutureExt as _;
    while let Some(Some(item)) = pulled.next().now_or_never() {
        if let Ok(message) = item {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
    }
}

/// How a wait for a previous holder's commands ended.
#[derive(Debug, Default)]
pub(super) struct Waited {
    /// The pull ended meanwhile.
    pub(super) ended: bool,
    /// Shutting down: what is held is not written.
    pub(super) shutdown: bool,
}

/// Where a pulled command stands in its stream and its consumer.
pub(super) fn delivery(message: &jetstream::Message) -> order::Delivery {
    match message.info() {
        Ok(info) => order::Delivery {
            stream_sequence: info.stream_sequence,
            consumer_sequence: info.consumer_sequence,
            delivered: info.delivered,
        },
        // Not a JetStream delivery: nothing to order it by; checked, and written first.
        Err(_) => order::Delivery {
            stream_sequence: 0,
            consumer_sequence: 0,
            delivered: 0,
        },
    }
}

impl Persister {
    /// Tells JetStream this persister no longer holds its partition, so a standby one takes
    /// it at once.
    pub(super) async fn release_pin(&self) {
        let name = self.consumer.cached_info().name.clone();
        let released = async {
            let stream = self
                .bus
                .jetstream
                .get_stream(self.bus.subjects.in_stream())
                .await?;
            stream
                .unpin_consumer(&name, crate::bus::streams::PRIORITY_GROUP)
                .await?;
            Ok::<_, async_nats::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(2), released).await {
            Ok(Ok(())) => tracing::debug!(partition = self.partition, "partition released"),
            Ok(Err(error)) => {
                tracing::debug!(%error, partition = self.partition, "releasing the partition failed; it moves after PERSIST_HANDOVER")
            }
            Err(_) => tracing::debug!(
                partition = self.partition,
                "releasing the partition timed out"
            ),
        }
    }

    /// True when this persister should release its partition so that another instance
    /// holds it ([`Holdings`]); then no other persister of the instance releases one until
    /// [`Persister::stepped_aside`].
    pub(super) async fn should_step_aside(&self) -> bool {
        let Ok(info) = self.consumer.get_info().await else {
            return false;
        };
        self.holdings.over_share(info.num_waiting as u64)
    }

    /// After releasing the partition for sharing: waits (not pulling) long enough for a
    /// standby persister of another instance to be pinned, then lets the next release happen.
    pub(super) async fn stepped_aside(&self, pause: Duration, shutdown: &CancellationToken) {
        tracing::info!(
            partition = self.partition,
            "partition released for another instance"
        );
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
        self.holdings.released();
    }

    /// Holds `messages` back until every command the consumer handed out before them is in
    /// hand (this persister may have just taken the partition over, [`order`]), taking what
    /// else arrives meanwhile; then all of them in stream order. Gives up waiting after
    /// `patience` (a previous holder that acked late, say), with a warning.
    ///
    /// The consumer is asked once, then every 250 ms while something is missing: what it
    /// had handed out by then is all below its `delivered_through`, so later deliveries
    /// (new commands, above it) never keep the wait going under load.
    pub(super) async fn in_stream_order(
        &self,
        messages: Vec<jetstream::Message>,
        pulled: &mut (impl futures_util::Stream<Item = Result<jetstream::Message, PullError>> + Unpin),
        turns: &mut order::Turns,
        unacked: &AtomicU64,
        shutdown: &CancellationToken,
    ) -> (Vec<jetstream::Message>, Waited) {
        const ASK_AGAIN: Duration = Duration::from_millis(250);
        let mut reorder = order::Reorder::default();
        for message in messages {
            reorder.hold(delivery(&message).stream_sequence, message);
        }
        let mut waited = Waited::default();
        let give_up = tokio::time::Instant::now() + self.patience;
        let mut asked = None;
        let mut told = false;
        loop {
            let now = tokio::time::Instant::now();
            if asked.is_none_or(|(_, _, at)| now >= at + ASK_AGAIN) {
                if asked.is_some() {
                    // What is held is being worked on: no redelivery of it meanwhile.
                    for message in reorder.held() {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                }
                let own = unacked.load(Ordering::Relaxed);
                let snapshot = match self.consumer.get_info().await {
                    Ok(info) => order::Snapshot {
                        ack_pending: info.num_ack_pending as u64,
                        delivered_through: info.delivered.stream_sequence,
                    },
                    Err(error) => {
                        tracing::warn!(%error, partition = self.partition, "reading the consumer failed; retrying");
                        order::Snapshot {
                            ack_pending: u64::MAX,
                            delivered_through: 0,
                        }
                    }
                };
                // Asked a second time: not only this pull's own unread deliveries are missing.
                if asked.is_some() && !told && reorder.missing(snapshot, own) > 0 {
                    tracing::info!(
                        partition = self.partition,
                        missing = reorder.missing(snapshot, own),
                        "taking the partition over: waiting for the commands its previous \
                         holder had"
                    );
                    told = true;
                }
                asked = Some((snapshot, own, now));
            }
            let Some((snapshot, own, at)) = asked else {
                unreachable!("asked above")
            };
            let missing = reorder.missing(snapshot, own);
            if missing == 0 {
                break;
            }
            if now >= give_up {
                tracing::warn!(
                    partition = self.partition,
                    missing,
                    "commands handed to a previous holder of the partition did not come back \
                     within the ack wait; writing on without them (they follow when they do)"
                );
                break;
            }
            let more = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // Not written: straight back to the next holder.
                    for message in reorder.held() {
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                    }
                    waited.shutdown = true;
                    return (Vec::new(), waited);
                }
                more = tokio::time::timeout_at(at + ASK_AGAIN, pulled.next()) => more,
            };
            match more {
                Ok(Some(Ok(message))) => {
                    let delivery = delivery(&message);
                    turns.out_of_turn(delivery);
                    reorder.hold(delivery.stream_sequence, message);
                }
                Ok(Some(Err(error))) => tracing::warn!(%error, "pull failed"),
                Ok(None) => {
                    waited.ended = true;
                    return (reorder.release(), waited);
                }
                Err(_) => {} // asked again above
            }
        }
        (reorder.release(), waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_over_its_share_releases_one_partition_at_a_time() {
        let metrics = Metrics::new();
        let holdings = Holdings::new(4);
        for _ in 0..4 {
            holdings.took(&metrics);
        }
        assert!(!holdings.over_share(1), "alone: all four are its share");
        assert!(holdings.over_share(2), "two instances: two each");
        assert!(!holdings.over_share(2), "one release at a time");
        holdings.gave_up(&metrics);
        holdings.released();
        assert!(holdings.over_share(3), "three instances: two each at most");
        holdings.gave_up(&metrics);
        holdings.released();
        assert!(!holdings.over_share(2));
        assert_eq!(metrics.partitions_held.get(), 2);
    }
}
