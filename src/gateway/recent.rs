//! The messages a socket pushed lately: repeats are dropped, and the client's marks of them
//! need no database read.

use crate::{domain::ChatId, domain::MessageId, domain::UserId};

/// The last [`RECENT_MESSAGES`] messages pushed to a socket, `(id, chat_id, sender_id)` in id
/// order. Ids are stream sequences, so they nearly always arrive in increasing order: a new
/// message is a push at the back and a repeat is found at once, without hashing into a map
/// that a busy instance's thousands of sockets would each keep cold in the cache.
#[derive(Default)]
pub struct RecentMessages {
    by_id: std::collections::VecDeque<(MessageId, ChatId, UserId)>,
}

/// How many pushed messages a socket remembers for marks without a database read.
const RECENT_MESSAGES: usize = 256;

impl RecentMessages {
    /// Remembers a message; `false` when it was already there. Past the limit the lowest id
    /// is forgotten.
    pub fn insert(&mut self, id: MessageId, chat_id: ChatId, sender_id: UserId) -> bool {
        match self.by_id.back() {
            Some(&(last, ..)) if id <= last => {
                match self.by_id.binary_search_by_key(&id, |&(id, ..)| id) {
                    Ok(_) => return false,
                    Err(at) => self.by_id.insert(at, (id, chat_id, sender_id)),
                }
            }
            _ => self.by_id.push_back((id, chat_id, sender_id)),
        }
        if self.by_id.len() > RECENT_MESSAGES {
            self.by_id.pop_front();
        }
        true
    }

    /// The chat and author of a message remembered here.
    pub fn get(&self, id: MessageId) -> Option<(ChatId, UserId)> {
        let at = self.by_id.binary_search_by_key(&id, |&(id, ..)| id).ok()?;
        let (_, chat_id, sender_id) = self.by_id[at];
        Some((chat_id, sender_id))
    }
}

#[cfg(test)]
mod tests {
    use super::{RECENT_MESSAGES, RecentMessages};

    #[test]
    fn recent_messages_tell_repeats_in_any_order() {
        let mut recent = RecentMessages::default();
        assert!(recent.insert(10, 1, 7));
        assert!(recent.insert(12, 1, 8));
        assert!(!recent.insert(12, 1, 8), "the newest again");
        assert!(recent.insert(11, 2, 9), "a late one goes in between");
        assert!(!recent.insert(11, 2, 9));
        assert!(!recent.insert(10, 1, 7), "an older one again");
        assert_eq!(recent.get(11), Some((2, 9)));
        assert_eq!(recent.get(12), Some((1, 8)));
        assert_eq!(recent.get(13), None);
        let ids: Vec<i64> = recent.by_id.iter().map(|&(id, ..)| id).collect();
        assert_eq!(ids, [10, 11, 12]);
    }

    #[test]
    fn recent_messages_forget_the_oldest_past_the_limit() {
        let mut recent = RecentMessages::default();
        let last = RECENT_MESSAGES as i64 + 10;
        for id in 1..=last {
            assert!(recent.insert(id, 1, 1));
        }
        assert_eq!(recent.by_id.len(), RECENT_MESSAGES);
        assert_eq!(recent.get(10), None, "forgotten");
        assert_eq!(recent.get(11), Some((1, 1)));
        assert_eq!(recent.get(last), Some((1, 1)));
        assert!(recent.insert(5, 1, 1), "forgotten, so new again");
        assert_eq!(recent.by_id.len(), RECENT_MESSAGES);
        assert_eq!(recent.get(5), None, "and the lowest id goes first");
    }
}
