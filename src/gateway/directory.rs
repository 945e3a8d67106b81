//! A token's name and avatar claims into the user directory: recorded when a socket opens or
//! its token is refreshed, by publishing `upsert_user` for the persister, and only when the
//! claims differ from what the directory has. What the directory has is remembered per
//! instance (and kept current by the router from `user_updated` events), so a socket that
//! opens with the claims the directory already holds costs no query and no publish.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Utc};

use crate::{
    auth::ClaimedProfile,
    bus::messages::{Command, UpsertUser, VERSION},
    domain::{
        UserId, UserProfile,
        rules::{avatar_url, display_name},
    },
    state::AppState,
    store::users,
};

/// Most users remembered; past it the memory starts again (a query per user then, once).
const MAX_KNOWN: usize = 100_000;

/// A name and an avatar.
type Shown = (String, Option<String>);

/// What this instance knows the directory holds, per user, and the claims it found older
/// than the directory (a token issued before Django's last change), which are not recorded
/// and need not be looked up again.
#[derive(Default)]
pub struct KnownProfiles {
    known: Mutex<HashMap<UserId, Shown>>,
    outdated: Mutex<HashMap<UserId, Shown>>,
}

impl KnownProfiles {
    /// The directory holds `profile` now (a `user_updated` event, a query): remembered for a
    /// user already remembered, or for any user when `always`.
    pub fn learn(&self, profile: &UserProfile, always: bool) {
        let mut known = self.known.lock().expect("not poisoned");
        if !always && !known.contains_key(&profile.user_id) {
            return;
        }
        if known.len() >= MAX_KNOWN && !known.contains_key(&profile.user_id) {
            known.clear();
        }
        known.insert(
            profile.user_id,
            (profile.display_name.clone(), profile.avatar_url.clone()),
        );
    }

    /// Whether claims saying `shown` need no recording: the directory holds them, or they
    /// were found older than it.
    fn holds(&self, user_id: UserId, shown: &Shown) -> bool {
        self.known.lock().expect("not poisoned").get(&user_id) == Some(shown)
            || self.outdated.lock().expect("not poisoned").get(&user_id) == Some(shown)
    }

    /// Claims saying `shown` are older than the directory's entry.
    fn outdated(&self, user_id: UserId, shown: Shown) {
        let mut outdated = self.outdated.lock().expect("not poisoned");
        if outdated.len() >= MAX_KNOWN && !outdated.contains_key(&user_id) {
            outdated.clear();
        }
        outdated.insert(user_id, shown);
    }
}

/// The claims as the directory would store them; `None` (logged) when they break its rules:
/// the token is still good, its claims are just not recorded.
fn checked(user_id: UserId, claimed: &ClaimedProfile) -> Option<Shown> {
    let name = match display_name(&claimed.display_name) {
        Ok(name) => name.to_owned(),
        Err(refusal) => {
            tracing::warn!(user_id, detail = refusal.detail, "name claim not recorded");
            return None;
        }
    };
    if let Some(url) = &claimed.avatar_url
        && let Err(refusal) = avatar_url(url)
    {
        tracing::warn!(
            user_id,
            detail = refusal.detail,
            "avatar claim not recorded"
        );
        return None;
    }
    Some((name, claimed.avatar_url.clone()))
}

/// Records `claimed` for `user_id` when it differs from the directory: nothing at all when
/// this instance knows the directory holds it; otherwise, in the background, one read of the
/// user's row and, if it still differs and is not older, one `upsert_user` publish.
pub fn record_claims(state: &AppState, user_id: UserId, claimed: Option<&ClaimedProfile>) {
    let Some(claimed) = claimed else { return };
    let Some(shown) = checked(user_id, claimed) else {
        return;
    };
    if state.router.known_profiles().holds(user_id, &shown) {
        return;
    }
    let said_at = claimed
        .issued_at
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) = publish_if_new(&state, user_id, shown, said_at).await {
            tracing::warn!(%error, user_id, "token claims not recorded");
        }
    });
}

async fn publish_if_new(
    state: &AppState,
    user_id: UserId,
    shown: Shown,
    said_at: Option<DateTime<Utc>>,
) -> Result<(), async_nats::Error> {
    if let Some(row) = users::profile(&state.db, user_id).await? {
        let stored = row.view();
        let same = (stored.display_name.as_str(), stored.avatar_url.as_deref())
            == (shown.0.as_str(), shown.1.as_deref());
        let newer = said_at.is_some_and(|at| row.updated_at > at);
        let known = state.router.known_profiles();
        known.learn(&stored, true);
        if same {
            return Ok(());
        }
        if newer {
            known.outdated(user_id, shown);
            return Ok(());
        }
    }
    let (display_name, avatar_url) = shown;
    // One id per user, time and content: instances and sockets that see the same token
    // publish the same command, which `CHAT_IN` stores once.
    let digest = content_digest(&display_name, avatar_url.as_deref());
    let command_id = format!(
        "claims:{user_id}:{}:{digest:016x}",
        said_at.map_or(0, |t| t.timestamp())
    );
    let command = Command::UpsertUser(UpsertUser {
        v: VERSION,
        command_id: command_id.clone(),
        user_id,
        display_name,
        avatar_url,
        updated_at: said_at,
        reply_to: None,
    });
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(serde_json::to_vec(&command)?.into())
        .message_id(command_id);
    state
        .bus
        .jetstream
        .send_publish(state.bus.subjects.upsert_user_command(), publish)
        .await?
        .await?;
    Ok(())
}

/// A stable 64-bit digest of a name and an avatar (the same on every instance and release,
/// unlike `std`'s hasher): the first 8 bytes of their SHA-256, as uploads are hashed.
fn content_digest(name: &str, avatar: Option<&str>) -> u64 {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::new()
        .chain_update(name)
        .chain_update([0xff])
        .chain_update(avatar.unwrap_or(""))
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tells_contents_apart() {
        assert_eq!(content_digest("Ann", None), content_digest("Ann", Some("")));
        assert_ne!(
            content_digest("Ann", None),
            content_digest("Ann", Some("https://a/x.png"))
        );
        assert_ne!(content_digest("Ann", None), content_digest("Anne", None));
    }

    #[test]
    fn learning_is_bounded_and_only_of_known_users_unless_asked() {
        let known = KnownProfiles::default();
        known.learn(&UserProfile::unknown(1), false);
        assert!(!known.holds(1, &("User 1".into(), None)));
        known.learn(&UserProfile::unknown(1), true);
        assert!(known.holds(1, &("User 1".into(), None)));
        // Claims found older than the directory are not looked up again.
        let old: Shown = ("Old".into(), None);
        assert!(!known.holds(1, &old));
        known.outdated(1, old.clone());
        assert!(known.holds(1, &old) && known.holds(1, &("User 1".into(), None)));
    }
}
