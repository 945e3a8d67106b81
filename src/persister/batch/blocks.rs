//! Blocks: `set_block` stores or lifts one, and the checks that keep a blocked user out of
//! the blocker's private chat and groups. The pairs a batch's private messages need are read
//! with the batch ([`BatchState::load`]), in one statement, not one per message.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use super::{BatchState, Pending, Step, applied, refuse};
use crate::{
    bus::messages::{BlockChanged, Event, Outcome, SetBlock, VERSION},
    domain::{ErrorCode, UserId},
    store::{blocks, changes},
};

impl BatchState {
    /// Stores `cmd`'s block (or lifts it) and tells the blocker's sockets. A repeat, or a
    /// block that already holds, changes nothing: applied again, announced again only when
    /// it is this command's own (its journal row exists), so a redelivery is told once.
    pub(super) async fn set_block(
        &mut self,
        db: &impl ConnectionTrait,
        cmd: &SetBlock,
        at: DateTime<Utc>,
        pending: &mut Vec<Pending>,
        replies: &mut Vec<(String, Outcome)>,
    ) -> Step {
        let changed = blocks::set(db, cmd.user_id, cmd.blocked_id, cmd.blocked, at).await?;
        let pair = (cmd.user_id, cmd.blocked_id);
        if cmd.blocked {
            self.blocks.insert(pair);
        } else {
            self.blocks.remove(&pair);
        }
        let event = Event::BlockChanged(BlockChanged {
            v: VERSION,
            cursor: None,
            command_id: cmd.command_id.clone(),
            user_id: cmd.user_id,
            blocked_id: cmd.blocked_id,
            blocked: cmd.blocked,
        });
        if changed || !changes::cursors_of(db, [event.key()]).await?.is_empty() {
            pending.push(Pending::Ready(event));
        }
        applied(replies, cmd.reply_to.as_ref(), &cmd.command_id);
        Ok(())
    }

    /// Refuses (`blocked`) `sender` writing privately to `receiver` when `receiver` blocks
    /// them; the pair was read with the batch.
    pub(super) fn require_unblocked(&self, receiver: UserId, sender: UserId) -> Step {
        if self.blocks.contains(&(receiver, sender)) {
            return Err(refuse(
                ErrorCode::Blocked,
                format!("user {receiver} blocked you"),
            ));
        }
        Ok(())
    }

    /// Refuses (`blocked`) `actor` putting any of `users` who block them into a group.
    pub(super) async fn require_not_blocked_by(
        &self,
        db: &impl ConnectionTrait,
        actor: UserId,
        users: &[UserId],
    ) -> Step {
        let blockers = blocks::blockers_among(db, actor, users).await?;
        match blockers.first() {
            None => Ok(()),
            Some(blocker) => Err(refuse(
                ErrorCode::Blocked,
                format!("user {blocker} blocked you: you cannot add them to a group"),
            )),
        }
    }
}
