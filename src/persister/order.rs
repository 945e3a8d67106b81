//! Stream order across a handover.
//!
//! One persister at a time takes a partition's commands, and takes them in stream order — until
//! the partition changes hands. The commands the previous holder was handed and never acked
//! (it died, or its own pull ended mid-batch) come back to the new holder once their ack wait
//! is over, in no particular order (JetStream's redelivery queue keeps the order in which their
//! timers expired), and new commands may reach the new holder before them. Written as they
//! come, one chat's messages would be committed out of their send order.
//!
//! So a persister that may have just become the holder — the first command of a pull, a
//! redelivered command, a gap in the consumer's delivery sequence — holds its commands back
//! until every command the consumer has handed out and not seen acked is in its hands
//! ([`Reorder::missing`] against a [`Snapshot`] of the consumer), then writes them in stream
//! order. In the steady state (one holder, each command delivered once, in order) nothing is
//! held and nothing is asked of JetStream.

use std::collections::BTreeMap;

/// What the consumer says at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Commands handed out to any persister and not acked.
    pub ack_pending: u64,
    /// The highest stream sequence the consumer has handed out.
    pub delivered_through: u64,
}

/// Where one delivery stands in its pull: what the persister knows of each command it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The command's `CHAT_IN` sequence.
    pub stream_sequence: u64,
    /// The consumer's count of deliveries, this one included (contiguous while one client
    /// takes every delivery).
    pub consumer_sequence: u64,
    /// How often the command was delivered, this time included.
    pub delivered: i64,
}

/// Tells, delivery by delivery, whether the persister may have just become the partition's
/// holder (or received a command another holder was handed), so the order must be checked.
#[derive(Debug, Default)]
pub struct Turns {
    last_consumer_sequence: Option<u64>,
}

impl Turns {
    /// A new pull: its first delivery is checked.
    pub fn new_pull(&mut self) {
        self.last_consumer_sequence = None;
    }

    /// True when `delivery` may not follow the previous one in stream order: the first of a
    /// pull, a redelivery, or one after deliveries that went to another client.
    pub fn out_of_turn(&mut self, delivery: Delivery) -> bool {
        let previous = self
            .last_consumer_sequence
            .replace(delivery.consumer_sequence);
        delivery.delivered > 1
            || previous.is_none_or(|previous| delivery.consumer_sequence != previous + 1)
    }
}

/// Commands held back until the ones handed out before them are in hand too.
#[derive(Debug)]
pub struct Reorder<M> {
    held: BTreeMap<u64, M>,
}

impl<M> Default for Reorder<M> {
    fn default() -> Self {
        Reorder {
            held: BTreeMap::new(),
        }
    }
}

impl<M> Reorder<M> {
    /// Holds the command at `stream_sequence` (a second delivery of it replaces the first:
    /// the newer one is the delivery to ack).
    pub fn hold(&mut self, stream_sequence: u64, message: M) {
        self.held.insert(stream_sequence, message);
    }

    /// How many commands handed out up to the snapshot are neither held here nor among the
    /// `own_unacked` this persister wrote and has not acked yet: they are still with another
    /// client (or on their way back). Zero: the order is safe.
    pub fn missing(&self, snapshot: Snapshot, own_unacked: u64) -> u64 {
        let held = self.held.range(..=snapshot.delivered_through).count() as u64;
        snapshot.ack_pending.saturating_sub(held + own_unacked)
    }

    /// The commands held.
    pub fn held(&self) -> impl Iterator<Item = &M> {
        self.held.values()
    }

    /// The commands held, in stream order.
    pub fn release(self) -> Vec<M> {
        self.held.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn delivery(stream_sequence: u64, consumer_sequence: u64, delivered: i64) -> Delivery {
        Delivery {
            stream_sequence,
            consumer_sequence,
            delivered,
        }
    }

    #[test]
    fn the_steady_state_is_never_checked_after_the_first_delivery() {
        let mut turns = Turns::default();
        assert!(turns.out_of_turn(delivery(10, 1, 1)), "a pull's first");
        for n in 2..50 {
            assert!(!turns.out_of_turn(delivery(10 + n, n, 1)));
        }
        assert!(
            turns.out_of_turn(delivery(70, 60, 1)),
            "deliveries went elsewhere"
        );
        assert!(turns.out_of_turn(delivery(71, 61, 2)), "a redelivery");
        turns.new_pull();
        assert!(turns.out_of_turn(delivery(72, 62, 1)), "a new pull");
    }

    #[test]
    fn a_handover_waits_for_what_the_previous_holder_had() {
        // The old holder had 100..=104; the new one got 105 and 106 first, then the old ones
        // come back in another order.
        let mut reorder = Reorder::default();
        reorder.hold(105, "105");
        reorder.hold(106, "106");
        let snapshot = Snapshot {
            ack_pending: 7,
            delivered_through: 106,
        };
        assert_eq!(reorder.missing(snapshot, 0), 5);
        for seq in [104, 100, 101, 103, 102] {
            reorder.hold(
                seq,
                ["100", "101", "102", "103", "104"][(seq - 100) as usize],
            );
        }
        // A redelivery of one already held counts once.
        reorder.hold(101, "101");
        assert_eq!(reorder.missing(snapshot, 0), 0);
        assert_eq!(
            reorder.release(),
            ["100", "101", "102", "103", "104", "105", "106"]
        );
    }

    #[test]
    fn own_unacked_commands_and_later_deliveries_are_accounted_for() {
        let mut reorder = Reorder::default();
        // Delivered after the snapshot: not among what it counted.
        reorder.hold(200, ());
        let snapshot = Snapshot {
            ack_pending: 3,
            delivered_through: 150,
        };
        assert_eq!(reorder.missing(snapshot, 3), 0, "all three are ours");
        assert_eq!(reorder.missing(snapshot, 1), 2);
    }

    proptest! {
        /// Whatever order the deliveries come in, once none is missing the release is in
        /// stream order and holds each command once.
        #[test]
        fn release_is_in_stream_order(mut seqs in proptest::collection::vec(1u64..10_000, 1..200)) {
            let mut reorder = Reorder::default();
            let snapshot = Snapshot {
                ack_pending: {
                    let mut distinct = seqs.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    distinct.len() as u64
                },
                delivered_through: *seqs.iter().max().unwrap(),
            };
            for &seq in &seqs {
                reorder.hold(seq, seq);
            }
            prop_assert_eq!(reorder.missing(snapshot, 0), 0);
            seqs.sort_unstable();
            seqs.dedup();
            prop_assert_eq!(reorder.release(), seqs);
        }
    }
}
