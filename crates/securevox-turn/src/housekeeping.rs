//! Chores the timer runs about once a minute: forgetting strangers whose rate limit has
//! refilled, and emptying the protocol servers' user tables of expired usernames.
//!
//! turn-server-proto 0.7 can add users but not remove them, and every minted TURN REST
//! username is new (it carries its expiry), so a table left alone grows with every call for
//! the life of the process. A listener with no allocation gets a fresh protocol server with
//! only the usernames still valid; a client between its challenge and its request then gets
//! 438 Stale Nonce and retries, as it would after any nonce expiry.

use crate::credentials;
use crate::engine::Engine;
use std::time::{Duration, Instant};
use turn_server_proto::api::TurnServerApi;
use turn_server_proto::server::TurnServer;

/// How often the chores run.
pub(crate) const EVERY: Duration = Duration::from_mins(1);

impl Engine {
    /// Runs the chores if [`EVERY`] has passed since the last time.
    pub(crate) fn housekeeping(&mut self, now: Instant, unix_now: i64) {
        if now.saturating_duration_since(self.last_housekeeping) < EVERY {
            return;
        }
        self.last_housekeeping = now;
        self.strangers.sweep(now);
        for idx in 0..self.listeners.len() {
            self.renew_users(idx, unix_now);
        }
    }

    fn renew_users(&mut self, idx: usize, unix_now: i64) {
        let expired = |name: &String| credentials::check(name, unix_now).is_err();
        if !self.listeners[idx].known_users.iter().any(expired) || self.listener_busy(idx) {
            return;
        }
        let realm = self.settings.realm.clone();
        let secret = self.settings.secret.clone();
        let listener = &mut self.listeners[idx];
        listener.known_users.retain(|name| !expired(name));
        listener.server = TurnServer::new(listener.transport, listener.addr, realm);
        for name in &listener.known_users {
            let password = securevox_domain::turn::password_for(&secret, name);
            listener.server.add_user(name.clone(), password);
        }
        tracing::debug!(listener = %listener.addr, kept = listener.known_users.len(), "TURN users renewed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Listener;
    use crate::settings::TurnSettings;
    use std::collections::HashSet;
    use std::sync::Arc;
    use turn_server_proto::types::TransportType;

    fn engine() -> crate::engine::Shared {
        let addr = "127.0.0.1:3478".parse().unwrap();
        let listener = Listener {
            server: TurnServer::new(TransportType::Tcp, addr, "securevox".into()),
            transport: TransportType::Tcp,
            addr,
            udp: None,
            udp_out: None,
            known_users: HashSet::from(["100:old".to_owned(), "300:new".to_owned()]),
        };
        Engine::new(Arc::new(TurnSettings::for_tests()), Arc::default(), vec![listener])
    }

    #[test]
    fn expired_users_leave_an_idle_listener_once_a_minute() {
        let shared = engine();
        let mut engine = crate::engine::lock(&shared);
        let start = engine.last_housekeeping;
        engine.housekeeping(start + Duration::from_secs(30), 200);
        assert_eq!(engine.listeners[0].known_users.len(), 2, "not a minute yet");
        engine.housekeeping(start + EVERY, 200);
        assert_eq!(
            engine.listeners[0].known_users,
            HashSet::from(["300:new".to_owned()]),
            "the expired username is gone, the valid one kept"
        );
    }

    #[test]
    fn a_listener_with_allocations_keeps_its_users() {
        let shared = engine();
        let mut engine = crate::engine::lock(&shared);
        let client = "127.0.0.1:5000".parse().unwrap();
        engine.pending_users.insert((0, client), ("someone".into(), false));
        let start = engine.last_housekeeping;
        engine.housekeeping(start + EVERY, 200);
        assert_eq!(engine.listeners[0].known_users.len(), 2);
        engine.pending_users.clear();
        engine.housekeeping(start + EVERY * 2, 200);
        assert_eq!(engine.listeners[0].known_users.len(), 1);
    }
}
