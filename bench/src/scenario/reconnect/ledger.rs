//! What one reconnecting client has received, kept the way a client must keep it: the highest
//! cursor it handled (what it comes back with), and every message it got, so that a repeat is
//! told apart from the documented overlap (a frame again whose cursor is at most the cursor
//! the socket resumed from) and a missing message can be named afterwards.

use std::collections::{HashMap, HashSet};

use crate::{client::MsgKey, integrity::StoredMessage};

/// How a `new_message` counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// The first time this client got the message.
    First,
    /// Again, within the overlap of a catch-up: allowed, and dropped by a client.
    Overlap,
    /// Again, with a cursor past the one the socket resumed from: the protocol broken.
    Duplicate,
}

/// One client's receipts over all its sockets.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Every message of others received, with how often.
    received: HashMap<MsgKey, u32>,
    /// The highest cursor handled, and the epoch it belongs to.
    cursor: Option<i64>,
    epoch: Option<String>,
    /// The cursor the current socket resumed from (`None` on a fresh socket).
    resumed_from: Option<i64>,
    pub overlap_repeats: u64,
    pub duplicates: u64,
    /// The newest `(stage, seq)` of each sender first received: each sender sends into one
    /// chat, so its messages must first arrive in the order it sent them.
    newest_of: HashMap<u32, (u16, u32)>,
    /// Messages that first arrived after a later one of the same sender.
    pub out_of_order: u64,
    /// `new_message` frames without a cursor (each should have one).
    pub uncursored: u64,
}

impl Ledger {
    /// The first socket's `unread`: where the client starts from.
    pub fn start(&mut self, cursor: Option<i64>, epoch: Option<&str>) {
        self.see(cursor, epoch);
    }

    /// A new socket resumes: the cursor and epoch to put in its URL (`None` if the client
    /// never had a cursor), remembered as the bound of this socket's overlap.
    pub fn resume(&mut self) -> Option<(i64, Option<String>)> {
        self.resumed_from = self.cursor;
        self.cursor.map(|c| (c, self.epoch.clone()))
    }

    /// Any frame with a cursor (`synced`, `status_update`, …): the client now stands there.
    /// `unread` on a resumed socket must not be passed here: it stands at the present, ahead
    /// of the catch-up that follows it.
    pub fn see(&mut self, cursor: Option<i64>, epoch: Option<&str>) {
        if let Some(c) = cursor {
            self.cursor = Some(self.cursor.map_or(c, |old| old.max(c)));
        }
        if let Some(e) = epoch {
            self.epoch = Some(e.to_owned());
        }
    }

    /// A `resync_required`: the client reloads from history (the load generator checks
    /// everything against the database anyway) and resumes from the frame's cursor.
    pub fn resync(&mut self, cursor: Option<i64>, epoch: Option<&str>) {
        self.cursor = cursor.or(self.cursor);
        if let Some(e) = epoch {
            self.epoch = Some(e.to_owned());
        }
    }

    /// A `new_message` of someone else's.
    pub fn new_message(&mut self, key: MsgKey, cursor: Option<i64>) -> Received {
        if cursor.is_none() {
            self.uncursored += 1;
        }
        let times = self.received.entry(key).or_default();
        *times += 1;
        let verdict = if *times == 1 {
            Received::First
        } else if cursor
            .zip(self.resumed_from)
            .is_some_and(|(c, from)| c <= from)
        {
            Received::Overlap
        } else {
            Received::Duplicate
        };
        match verdict {
            Received::First => {
                let newest = self
                    .newest_of
                    .entry(key.conn)
                    .or_insert((key.stage, key.seq));
                if (key.stage, key.seq) < *newest {
                    self.out_of_order += 1;
                } else {
                    *newest = (key.stage, key.seq);
                }
            }
            Received::Overlap => self.overlap_repeats += 1,
            Received::Duplicate => self.duplicates += 1,
        }
        self.see(cursor, None);
        verdict
    }

    /// Whether the message was received.
    pub fn has(&self, key: &MsgKey) -> bool {
        self.received.contains_key(key)
    }

    /// Of `expected`, the messages never received.
    pub fn missing<'a>(&'a self, expected: &'a [MsgKey]) -> impl Iterator<Item = &'a MsgKey> {
        expected.iter().filter(|key| !self.has(key))
    }
}

/// For each client, the stored messages it must have got: every message of its chats sent
/// by someone else. `members` lists each chat's clients.
pub fn owed(
    stored: &[StoredMessage],
    members: &HashMap<i64, Vec<u32>>,
) -> HashMap<u32, Vec<MsgKey>> {
    let mut owed: HashMap<u32, Vec<MsgKey>> = HashMap::new();
    let mut seen = HashSet::new();
    for message in stored {
        if !seen.insert(message.key) {
            continue; // stored twice: the database check reports it, a client gets it once
        }
        for &member in members.get(&message.chat_id).into_iter().flatten() {
            if member != message.key.conn {
                owed.entry(member).or_default().push(message.key);
            }
        }
    }
    owed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(conn: u32, seq: u32) -> MsgKey {
        MsgKey {
            conn,
            stage: 0,
            seq,
        }
    }

    #[test]
    fn the_client_resumes_from_the_highest_cursor_it_handled() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.resume(), None);
        ledger.start(Some(10), Some("e1"));
        ledger.new_message(key(1, 0), Some(14));
        ledger.new_message(key(1, 1), Some(12)); // cursors out of order: the highest stays
        assert_eq!(ledger.resume(), Some((14, Some("e1".into()))));
        ledger.see(Some(20), Some("e1"));
        assert_eq!(ledger.resume(), Some((20, Some("e1".into()))));
        ledger.resync(Some(30), Some("e2"));
        assert_eq!(ledger.resume(), Some((30, Some("e2".into()))));
    }

    #[test]
    fn a_repeat_within_the_overlap_is_allowed_and_beyond_it_is_not() {
        let mut ledger = Ledger::default();
        ledger.start(Some(10), None);
        assert_eq!(ledger.new_message(key(1, 0), Some(11)), Received::First);
        assert_eq!(ledger.new_message(key(1, 1), Some(12)), Received::First);
        // Live, the same frame twice: no overlap on a fresh socket.
        assert_eq!(ledger.new_message(key(1, 1), Some(12)), Received::Duplicate);
        assert_eq!(ledger.resume(), Some((12, None)));
        // The catch-up sends cursors up to 12 again: the overlap.
        assert_eq!(ledger.new_message(key(1, 0), Some(11)), Received::Overlap);
        assert_eq!(ledger.new_message(key(1, 1), Some(12)), Received::Overlap);
        assert_eq!(ledger.new_message(key(1, 2), Some(13)), Received::First);
        // Past the cursor the socket resumed from, a repeat is a duplicate.
        assert_eq!(ledger.new_message(key(1, 2), Some(13)), Received::Duplicate);
        assert_eq!((ledger.overlap_repeats, ledger.duplicates), (2, 2));
        // A message first seen in the overlap (it had arrived out of order) is simply new.
        assert_eq!(ledger.new_message(key(2, 0), Some(9)), Received::First);
        assert_eq!(ledger.new_message(key(2, 1), None), Received::First);
        assert_eq!(ledger.uncursored, 1);
    }

    #[test]
    fn a_senders_message_first_seen_after_a_later_one_is_out_of_order() {
        let mut ledger = Ledger::default();
        ledger.new_message(key(1, 0), Some(1));
        ledger.new_message(key(2, 5), Some(2));
        ledger.new_message(key(1, 2), Some(3));
        ledger.new_message(key(1, 1), Some(4));
        // A repeat of an earlier one (overlap or duplicate) is counted as such, not here.
        ledger.new_message(key(1, 0), Some(1));
        ledger.new_message(key(2, 6), Some(5));
        assert_eq!(ledger.out_of_order, 1);
    }

    #[test]
    fn every_member_but_the_sender_is_owed_each_stored_message_once() {
        let members = HashMap::from([(7, vec![0, 1, 2]), (8, vec![3, 4])]);
        let stored = [
            StoredMessage {
                key: key(0, 0),
                chat_id: 7,
            },
            StoredMessage {
                key: key(0, 0),
                chat_id: 7,
            },
            StoredMessage {
                key: key(4, 0),
                chat_id: 8,
            },
        ];
        let owed = owed(&stored, &members);
        assert_eq!(owed[&1], vec![key(0, 0)]);
        assert_eq!(owed[&2], vec![key(0, 0)]);
        assert_eq!(owed[&3], vec![key(4, 0)]);
        assert!(!owed.contains_key(&0) && !owed.contains_key(&4));

        let mut ledger = Ledger::default();
        ledger.new_message(key(0, 0), Some(1));
        assert_eq!(ledger.missing(&owed[&1]).count(), 0);
        assert_eq!(
            ledger.missing(&owed[&3]).copied().collect::<Vec<_>>(),
            vec![key(4, 0)]
        );
    }
}
