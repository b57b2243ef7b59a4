//! Conformance suite for contacts: adding, blocking, the presence audience and the user search,
//! every scenario against SQLite and PostgreSQL (see `harness`).

#![allow(clippy::unwrap_used)]

use securevox_domain::call::Media;
use securevox_store::{ContactState, NewCall};

#[macro_use]
mod harness;
use harness::{user, TestDb};

conformance!(contacts_blocks_and_presence, user_search_by_prefix);

const NOW: i64 = 1_800_000_000;

async fn contacts_blocks_and_presence(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice").await.id;
    let bob = user(store, "bob").await.id;
    let carol = user(store, "carol").await.id;
    let dave = user(store, "dave").await.id;
    assert!(store.presence_audience(&alice).await.unwrap().is_empty());

    // Alice adds bob: each sees the other's presence. Carol shared a call with alice.
    store.set_contact(&alice, &bob, ContactState::Contact, NOW).await.unwrap();
    let call = NewCall {
        id: "c1",
        caller_id: &carol,
        media: Media::Audio,
        invitees: std::slice::from_ref(&alice),
        created_at: NOW,
    };
    store.create_call(&call).await.unwrap();
    let mut expected = vec![bob.clone(), carol.clone()];
    expected.sort();
    assert_eq!(store.presence_audience(&alice).await.unwrap(), expected);
    assert_eq!(store.presence_audience(&bob).await.unwrap(), vec![alice.clone()]);
    let listed = store.contacts_of(&alice).await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].user.username.as_str(), listed[0].state),
        (1, "bob", ContactState::Contact)
    );

    // A block, in either direction, cuts presence and reach.
    assert!(!store.blocked_between(&alice, &carol).await.unwrap());
    store.set_contact(&carol, &alice, ContactState::Blocked, NOW).await.unwrap();
    assert!(store.blocked_between(&alice, &carol).await.unwrap());
    assert!(store.blocked_between(&carol, &alice).await.unwrap());
    assert_eq!(store.presence_audience(&alice).await.unwrap(), vec![bob.clone()]);
    assert!(store.presence_audience(&carol).await.unwrap().is_empty());
    // Blocking a contact replaces the contact; removing needs the right state.
    store.set_contact(&alice, &bob, ContactState::Blocked, NOW).await.unwrap();
    assert!(store.presence_audience(&alice).await.unwrap().is_empty());
    assert!(!store.remove_contact(&alice, &bob, ContactState::Contact).await.unwrap());
    assert!(store.remove_contact(&alice, &bob, ContactState::Blocked).await.unwrap());
    assert!(!store.blocked_between(&alice, &bob).await.unwrap());
    assert!(store.contacts_of(&dave).await.unwrap().is_empty());
}

async fn user_search_by_prefix(db: TestDb) {
    let store = &db.store;
    for name in ["alice", "alina", "bob", "al_x", "alzz"] {
        user(store, name).await;
    }
    let names = |users: Vec<securevox_store::UserRecord>| {
        users.into_iter().map(|u| u.username).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.search_users("al", 10).await.unwrap()),
        ["al_x", "alice", "alina", "alzz"]
    );
    assert_eq!(names(store.search_users("al", 2).await.unwrap()), ["al_x", "alice"]);
    assert_eq!(names(store.search_users("al_", 10).await.unwrap()), ["al_x"], "_ is literal");
    assert!(store.search_users("%", 10).await.unwrap().is_empty(), "% is literal");
    assert!(store.search_users("zz", 10).await.unwrap().is_empty());
}
