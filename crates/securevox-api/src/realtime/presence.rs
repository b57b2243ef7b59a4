//! Presence (U2): who is online, away or offline, from the sockets they hold. A user is online
//! while any device is connected, away when their devices say so, offline (with the time they
//! were last seen) when the last one goes.

use securevox_domain::clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Away,
    Offline,
}

/// The `presence` event: `{userId, status, lastSeen}` (`lastSeen` is RFC 3339).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceUpdate {
    pub user_id: String,
    pub status: Status,
    pub last_seen: String,
}

#[derive(Debug)]
struct Entry {
    sockets: u32,
    away: bool,
}

#[derive(Debug, Default)]
pub struct PresenceTracker {
    users: Mutex<HashMap<String, Entry>>,
}

impl PresenceTracker {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A device of `user_id` connected; returns the update to announce if they came online.
    pub fn connected(&self, user_id: &str) -> Option<PresenceUpdate> {
        let mut users = self.users();
        let entry = users.entry(user_id.to_owned()).or_insert(Entry { sockets: 0, away: false });
        entry.sockets += 1;
        (entry.sockets == 1).then(|| update(user_id, Status::Online))
    }

    /// A device of `user_id` went; returns the update to announce if it was their last.
    pub fn disconnected(&self, user_id: &str) -> Option<PresenceUpdate> {
        let mut users = self.users();
        let entry = users.get_mut(user_id)?;
        entry.sockets = entry.sockets.saturating_sub(1);
        if entry.sockets > 0 {
            return None;
        }
        users.remove(user_id);
        Some(update(user_id, Status::Offline))
    }

    /// The user set themselves away or back; returns the update if that changed anything.
    pub fn set_away(&self, user_id: &str, away: bool) -> Option<PresenceUpdate> {
        let mut users = self.users();
        let entry = users.get_mut(user_id)?;
        if entry.away == away {
            return None;
        }
        entry.away = away;
        Some(update(user_id, if away { Status::Away } else { Status::Online }))
    }

    /// The current status of `user_id`, if connected.
    pub fn status(&self, user_id: &str) -> Option<PresenceUpdate> {
        let users = self.users();
        let entry = users.get(user_id)?;
        Some(update(user_id, if entry.away { Status::Away } else { Status::Online }))
    }

    /// Users with at least one connected device.
    pub fn connected_users(&self) -> u64 {
        self.users().len() as u64
    }
}

fn update(user_id: &str, status: Status) -> PresenceUpdate {
    PresenceUpdate { user_id: user_id.to_owned(), status, last_seen: clock::rfc3339(clock::now()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_while_any_device_is_connected() {
        let p = PresenceTracker::default();
        assert_eq!(p.connected("a").map(|u| u.status), Some(Status::Online));
        assert!(p.connected("a").is_none(), "second device: no news");
        assert_eq!(p.connected_users(), 1);
        assert_eq!(p.set_away("a", true).map(|u| u.status), Some(Status::Away));
        assert!(p.set_away("a", true).is_none());
        assert_eq!(p.status("a").map(|u| u.status), Some(Status::Away));
        assert!(p.disconnected("a").is_none());
        assert_eq!(p.disconnected("a").map(|u| u.status), Some(Status::Offline));
        assert!(p.disconnected("a").is_none(), "unknown user: nothing to say");
        assert!(p.set_away("a", true).is_none());
        assert_eq!(p.connected_users(), 0);
    }
}
