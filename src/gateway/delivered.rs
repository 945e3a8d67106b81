//! `AUTO_DELIVERED`: what this instance's sockets pushed to their users, gathered from all of
//! them and published as one `delivered_marks` command per window instead of one receipt per
//! socket and chat. In a group of 1,000 members on one instance that is one command per window
//! where it was 1,000; in private chats, both members' marks share it.
//!
//! Each socket still keeps its newest pushed message per chat (no lock per frame) and hands
//! them over every [`REPORT_EVERY`]; the gatherer keeps the highest per member and chat. A
//! publish that fails puts its marks back for the next window: a watermark only moves forward,
//! so a mark sent twice or late is harmless.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::{
    bus::{
        Bus,
        messages::{Command, DeliveredMark, DeliveredMarks, MAX_DELIVERED_MARKS, VERSION},
    },
    domain::ChatId,
    domain::MessageId,
    domain::UserId,
};

/// How long a socket keeps what it pushed before handing it over, and how often the gathered
/// marks are published: a mark reaches the author within about twice this.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);

/// The newest message pushed to each member in each chat, not yet published.
#[derive(Default)]
pub struct DeliveredMarksGatherer {
    marks: Mutex<HashMap<(ChatId, UserId), MessageId>>,
}

impl DeliveredMarksGatherer {
    /// Adds what one socket of `user_id` pushed: its newest message per chat.
    pub fn add(&self, user_id: UserId, pushed: impl IntoIterator<Item = (ChatId, MessageId)>) {
        let mut marks = self
            .marks
            .lock()
            .expect("the gatherer's lock is never poisoned");
        for (chat_id, message_id) in pushed {
            merge(&mut marks, chat_id, user_id, message_id);
        }
    }

    /// Takes everything gathered, in commands of at most [`MAX_DELIVERED_MARKS`] marks.
    fn take(&self) -> Vec<Vec<DeliveredMark>> {
        let marks = std::mem::take(
            &mut *self
                .marks
                .lock()
                .expect("the gatherer's lock is never poisoned"),
        );
        commands(marks)
    }

    /// Puts back marks a publish did not deliver (a newer mark gathered meanwhile wins).
    fn restore(&self, marks: &[DeliveredMark]) {
        let mut gathered = self
            .marks
            .lock()
            .expect("the gatherer's lock is never poisoned");
        for mark in marks {
            merge(&mut gathered, mark.chat_id, mark.user_id, mark.message_id);
        }
    }
}

/// Keeps the highest message per member and chat.
fn merge(
    marks: &mut HashMap<(ChatId, UserId), MessageId>,
    chat_id: ChatId,
    user_id: UserId,
    message_id: MessageId,
) {
    let newest = marks.entry((chat_id, user_id)).or_insert(message_id);
    *newest = (*newest).max(message_id);
}

/// The gathered marks as commands' mark lists, each at most [`MAX_DELIVERED_MARKS`] long,
/// ordered by chat so a chat's marks share a command where they can.
fn commands(marks: HashMap<(ChatId, UserId), MessageId>) -> Vec<Vec<DeliveredMark>> {
    let mut marks: Vec<DeliveredMark> = marks
        .into_iter()
        .map(|((chat_id, user_id), message_id)| DeliveredMark {
            chat_id,
            user_id,
            message_id,
        })
        .collect();
    marks.sort_unstable_by_key(|m| (m.chat_id, m.user_id));
    marks
        .chunks(MAX_DELIVERED_MARKS)
        .map(<[DeliveredMark]>::to_vec)
        .collect()
}

/// Publishes the gathered marks every [`REPORT_EVERY`] until `shutdown`, then once more.
pub fn spawn(bus: Bus, gatherer: Arc<DeliveredMarksGatherer>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REPORT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = every.tick() => false,
            };
            for marks in gatherer.take() {
                if let Err(error) = publish(&bus, &marks).await {
                    tracing::debug!(%error, marks = marks.len(), "delivered marks not published; next window");
                    if !stopping {
                        gatherer.restore(&marks);
                    }
                }
            }
            if stopping {
                return;
            }
        }
    });
}

/// Publishes one `delivered_marks` command and waits for `CHAT_IN` to hold it.
async fn publish(bus: &Bus, marks: &[DeliveredMark]) -> anyhow::Result<()> {
    let command = Command::DeliveredMarks(DeliveredMarks {
        v: VERSION,
        command_id: uuid::Uuid::now_v7().to_string(),
        marks: marks.to_vec(),
    });
    let payload = serde_json::to_vec(&command)?;
    bus.jetstream
        .publish(bus.subjects.delivered_marks_command(), payload.into())
        .await?
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_mark_per_member_and_chat_is_kept() {
        let gatherer = DeliveredMarksGatherer::default();
        gatherer.add(1, [(10, 5), (11, 7)]);
        gatherer.add(1, [(10, 3)]); // another socket of the same user, behind
        gatherer.add(2, [(10, 4)]);
        gatherer.restore(&[DeliveredMark {
            chat_id: 11,
            user_id: 1,
            message_id: 9,
        }]);
        let taken = gatherer.take();
        assert_eq!(
            taken,
            vec![vec![
                DeliveredMark {
                    chat_id: 10,
                    user_id: 1,
                    message_id: 5
                },
                DeliveredMark {
                    chat_id: 10,
                    user_id: 2,
                    message_id: 4
                },
                DeliveredMark {
                    chat_id: 11,
                    user_id: 1,
                    message_id: 9
                },
            ]]
        );
        assert!(gatherer.take().is_empty(), "taken once");
    }

    #[test]
    fn commands_hold_at_most_the_limit_and_lose_no_mark() {
        let marks: HashMap<(ChatId, UserId), MessageId> =
            (1..=2_500).map(|user| ((7, user), 100 + user)).collect();
        let commands = commands(marks);
        assert_eq!(commands.len(), 3);
        assert!(commands.iter().all(|c| c.len() <= MAX_DELIVERED_MARKS));
        let all: Vec<DeliveredMark> = commands.concat();
        assert_eq!(all.len(), 2_500);
        assert!(
            all.iter()
                .all(|m| m.message_id == 100 + m.user_id && m.chat_id == 7)
        );
    }
}
