//! Telling people that someone's keys changed: a device registered, linked or removed, or an
//! identity key replaced. The users who may hold that user's keys — contacts, call partners,
//! the people they share a conversation with — get `keys_changed {userId}` on their sockets,
//! so that their clients compare the published keys at once and warn (docs/E2EE.md). The
//! event carries no key: a server that withheld it would only delay the warning until the
//! client looks by itself.

use crate::state::AppState;
use std::collections::BTreeSet;

/// Announces that `user_id`'s keys changed, in the background (the request that changed them
/// does not wait for the fan-out).
pub fn announce(state: &AppState, user_id: &str) {
    let (state, user_id) = (state.clone(), user_id.to_owned());
    tokio::spawn(async move { announce_now(&state, &user_id).await });
}

async fn announce_now(state: &AppState, user_id: &str) {
    let (contacts, peers) = match (
        state.store.presence_audience(user_id).await,
        state.store.conversation_peers(user_id).await,
    ) {
        (Ok(contacts), Ok(peers)) => (contacts, peers),
        (Err(e), _) | (_, Err(e)) => {
            // Best effort: clients also compare keys when they open a conversation.
            tracing::warn!(error = %e, "finding who to tell of a key change");
            return;
        }
    };
    let audience: BTreeSet<String> = contacts.into_iter().chain(peers).collect();
    let event = serde_json::json!({ "userId": user_id });
    for other in audience {
        state.realtime.emit_to_user(&other, "keys_changed", &event).await;
    }
}
