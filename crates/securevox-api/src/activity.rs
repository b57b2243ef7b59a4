//! Who has been active, for the capacity profile's active-user counts. Each authenticated
//! request marks its user; the database is written at most once a minute per user.

use securevox_domain::clock;
use std::collections::HashMap;
use std::sync::Mutex;

/// How stale `last_seen_at` may get before a request writes it again, seconds.
const WRITE_EVERY_S: i64 = 60;

#[derive(Debug, Default)]
pub struct ActivityTracker {
    last_written: Mutex<HashMap<String, i64>>,
}

impl ActivityTracker {
    /// Returns the time to store if this user's `last_seen_at` is due for a write.
    pub fn mark(&self, user_id: &str) -> Option<i64> {
        let now = clock::now();
        let mut map = self.last_written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(user_id) {
            Some(&at) if now - at < WRITE_EVERY_S => None,
            _ => {
                map.insert(user_id.to_owned(), now);
                Some(now)
            }
        }
    }

    /// Drops entries old enough that the next request writes anyway.
    pub fn prune(&self) {
        let now = clock::now();
        let mut map = self.last_written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, at| now - *at < WRITE_EVERY_S);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_per_interval_per_user() {
        let tracker = ActivityTracker::default();
        assert!(tracker.mark("a").is_some());
        assert!(tracker.mark("a").is_none());
        assert!(tracker.mark("b").is_some());
    }
}
