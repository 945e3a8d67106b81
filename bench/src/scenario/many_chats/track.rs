//! What the online sockets saw, added up across all of them: the steady traffic (each
//! message timed from its scheduled send to `message_accepted`, `message_ack` and every
//! online member's `new_message`) and the membership changes (each timed from its call to
//! every online member's `chat_created` or `member_added`). One shared set of histograms
//! behind mutexes instead of one per socket: 2,000 sockets × 3 histograms would cost the load
//! generator ~130 MB, and a few thousand records a second do not contend.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::{
    client::{Frame, MsgKey, parse_msg_id},
    stats::{Counters, latency_histogram},
};

/// A membership change the run started and is waiting to see on the online sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// The k-th chat created during the run (its name says which).
    Created(u64),
    /// `user_id` added to group `chat_id`.
    Added { chat_id: i64, user_id: i64 },
}

/// The traffic and membership figures of the whole run.
pub struct Track {
    pub run: String,
    /// Messages sent before this (µs since the epoch) are counted, not timed.
    pub timed_from_us: u64,
    pub counters: Arc<Counters>,
    pub accepted: Mutex<Histogram<u64>>,
    pub acked: Mutex<Histogram<u64>>,
    pub delivered: Mutex<Histogram<u64>>,
    pub accepted_keys: Mutex<HashSet<MsgKey>>,
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// When each change was started (µs), and how many online frames it still owes.
    pending: Mutex<HashMap<Change, (u64, u64)>>,
    pub created_frames: Mutex<Histogram<u64>>,
    pub added_frames: Mutex<Histogram<u64>>,
    /// Frames of membership changes the run did not start or no longer waits for.
    pub unexpected_membership_frames: crate::stats::Count,
    /// `new_message`s of chats a socket's user joined during the run (not part of the
    /// steady traffic's expected deliveries).
    pub joined_chat_deliveries: crate::stats::Count,
}

/// `chat_created`'s chat, as far as the run reads it.
#[derive(Deserialize)]
struct CreatedFrame<'a> {
    #[serde(borrow)]
    chat: CreatedChat<'a>,
}

#[derive(Deserialize)]
struct CreatedChat<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

/// The name of the k-th chat created during run `run`.
pub fn created_name(run: &str, k: u64) -> String {
    format!("mc {run} new {k}")
}

fn created_index(run: &str, name: &str) -> Option<u64> {
    name.strip_prefix("mc ")?
        .strip_prefix(run)?
        .strip_prefix(" new ")?
        .parse()
        .ok()
}

impl Track {
    pub fn new(run: &str, timed_from_us: u64) -> Track {
        let h = || Mutex::new(latency_histogram());
        Track {
            run: run.to_owned(),
            timed_from_us,
            counters: Arc::new(Counters::default()),
            accepted: h(),
            acked: h(),
            delivered: h(),
            accepted_keys: Mutex::new(HashSet::new()),
            errors: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(HashMap::new()),
            created_frames: h(),
            added_frames: h(),
            unexpected_membership_frames: Default::default(),
            joined_chat_deliveries: Default::default(),
        }
    }

    /// A change is about to start at `at_us`; `frames` online sockets should tell it.
    pub fn expect(&self, change: Change, at_us: u64, frames: u64) {
        if frames > 0 {
            self.pending
                .lock()
                .expect("pending lock")
                .insert(change, (at_us, frames));
        }
    }

    /// Changes whose frames have not all come.
    pub fn owed(&self) -> u64 {
        self.pending
            .lock()
            .expect("pending lock")
            .values()
            .map(|(_, n)| n)
            .sum()
    }

    fn arrived(&self, change: Change, now_us: u64, into: &Mutex<Histogram<u64>>) {
        let started = {
            let mut pending = self.pending.lock().expect("pending lock");
            match pending.get_mut(&change) {
                Some((started, left)) => {
                    let started = *started;
                    *left -= 1;
                    if *left == 0 {
                        pending.remove(&change);
                    }
                    Some(started)
                }
                None => None,
            }
        };
        match started {
            Some(started) => into
                .lock()
                .expect("histogram lock")
                .saturating_record(now_us.saturating_sub(started).max(1)),
            None => self.unexpected_membership_frames.inc(),
        }
    }

    /// One text frame on the online socket of sender `conn_base / slots` whose steady chats
    /// are `own_chats`; own sends carry conns `conn_base..conn_base + own_chats.len()`.
    pub fn frame(&self, text: &str, now_us: u64, conn_base: u32, own_chats: &[i64]) {
        let Some(frame) = Frame::parse(text) else {
            return;
        };
        let own =
            |key: &MsgKey| (conn_base..conn_base + own_chats.len() as u32).contains(&key.conn);
        let id = frame
            .client_msg_id
            .as_deref()
            .and_then(|id| parse_msg_id(&self.run, id));
        match (frame.action.as_ref(), id) {
            ("message_accepted", Some((key, sent))) if own(&key) => {
                self.counters.accepted.inc();
                self.accepted_keys.lock().expect("keys lock").insert(key);
                self.time(&self.accepted, sent, now_us);
            }
            ("message_ack", Some((key, sent))) if own(&key) => {
                self.counters.acked.inc();
                self.time(&self.acked, sent, now_us);
            }
            ("new_message", Some((key, sent))) if !own(&key) => {
                if frame.chat_id.is_some_and(|c| own_chats.contains(&c)) {
                    self.counters.delivered.inc();
                    self.time(&self.delivered, sent, now_us);
                } else {
                    self.joined_chat_deliveries.inc();
                }
            }
            ("chat_created", _) => {
                let index = serde_json::from_str::<CreatedFrame>(text)
                    .ok()
                    .and_then(|f| created_index(&self.run, f.chat.name.as_deref()?));
                match index {
                    Some(k) => self.arrived(Change::Created(k), now_us, &self.created_frames),
                    None => self.unexpected_membership_frames.inc(),
                }
            }
            ("member_added", _) => match (frame.chat_id, frame.user_id) {
                (Some(chat_id), Some(user_id)) => self.arrived(
                    Change::Added { chat_id, user_id },
                    now_us,
                    &self.added_frames,
                ),
                _ => self.unexpected_membership_frames.inc(),
            },
            ("error", _) => {
                self.counters.errors.inc();
                let code = frame.code.as_deref().unwrap_or("unknown").to_owned();
                *self
                    .errors
                    .lock()
                    .expect("errors lock")
                    .entry(code)
                    .or_default() += 1;
            }
            _ => {}
        }
    }

    fn time(&self, into: &Mutex<Histogram<u64>>, sent_us: u64, now_us: u64) {
        if sent_us >= self.timed_from_us {
            into.lock()
                .expect("histogram lock")
                .saturating_record(now_us.saturating_sub(sent_us).max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::msg_id;

    fn key(conn: u32, seq: u32) -> MsgKey {
        MsgKey {
            conn,
            stage: 0,
            seq,
        }
    }

    #[test]
    fn own_sends_and_others_messages_in_steady_chats_are_counted() {
        let track = Track::new("deadbeef", 100);
        // Socket of conns 10..12, chats 7 and 8.
        let own = msg_id("deadbeef", key(11, 0), 150);
        let theirs = msg_id("deadbeef", key(3, 0), 50);
        let chats = [7, 8];
        track.frame(
            &format!(r#"{{"action":"message_accepted","client_msg_id":"{own}","chat_id":8}}"#),
            200,
            10,
            &chats,
        );
        track.frame(
            &format!(
                r#"{{"action":"message_ack","client_msg_id":"{own}","message_id":1,"chat_id":8}}"#
            ),
            300,
            10,
            &chats,
        );
        track.frame(
            &format!(r#"{{"action":"new_message","client_msg_id":"{theirs}","message_id":2,"chat_id":7}}"#),
            400,
            10,
            &chats,
        );
        track.frame(
            &format!(r#"{{"action":"new_message","client_msg_id":"{theirs}","message_id":3,"chat_id":99}}"#),
            400,
            10,
            &chats,
        );
        let c = &track.counters;
        assert_eq!(
            (c.accepted.get(), c.acked.get(), c.delivered.get()),
            (1, 1, 1)
        );
        assert_eq!(track.joined_chat_deliveries.get(), 1);
        assert!(track.accepted_keys.lock().unwrap().contains(&key(11, 0)));
        assert_eq!(track.accepted.lock().unwrap().len(), 1);
        assert_eq!(
            track.delivered.lock().unwrap().len(),
            0,
            "sent during the warm-up: counted, not timed"
        );
    }

    #[test]
    fn membership_frames_are_timed_from_their_change_until_all_came() {
        let track = Track::new("deadbeef", 0);
        track.expect(Change::Created(4), 1_000, 2);
        track.expect(
            Change::Added {
                chat_id: 7,
                user_id: 5,
            },
            2_000,
            1,
        );
        assert_eq!(track.owed(), 3);
        let created = format!(
            r#"{{"action":"chat_created","chat":{{"chat_id":70,"name":"{}","is_group":true,"member_ids":[1,2]}},"cursor":1}}"#,
            created_name("deadbeef", 4)
        );
        track.frame(&created, 4_000, 0, &[]);
        track.frame(&created, 5_000, 0, &[]);
        track.frame(&created, 6_000, 0, &[]);
        track.frame(
            r#"{"action":"member_added","chat_id":7,"user_id":5,"cursor":2}"#,
            2_500,
            0,
            &[],
        );
        assert_eq!(track.owed(), 0);
        assert_eq!(track.created_frames.lock().unwrap().len(), 2);
        assert!((500..=505).contains(&track.added_frames.lock().unwrap().max()));
        assert_eq!(
            track.unexpected_membership_frames.get(),
            1,
            "the third chat_created was owed by nobody"
        );
    }
}
