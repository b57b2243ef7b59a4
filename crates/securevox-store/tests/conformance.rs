//! Conformance suite for `securevox-store`: accounts, sessions, invites, settings and calls,
//! every scenario against SQLite and PostgreSQL (see `harness`).
//!
//! Concurrency scenarios start their tasks behind a barrier so they really race; nothing sleeps.

// Scenarios are plain async fns (the macro makes the `#[test]`s), so clippy does not see them as
// tests; panicking on an unexpected error is what a test should do.
#![allow(clippy::unwrap_used)]

use securevox_domain::call::{CallState, EndReason, Media, Response};
use securevox_domain::{clock, Password, PasswordHash, Role, SecretToken};
use securevox_store::{
    AccountChange, AccountChangeError, Admission, InvitePolicy, InviteRecord, NewCall, NewInvite,
    NewSession, RefreshOutcome, RegisterError, Store, StoreError, UserRecord,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

#[macro_use]
mod harness;
use harness::{admission, open, password_hash, race, register, user, TestDb};

conformance!(
    registration_limit_holds_under_concurrency,
    usernames_are_unique_case_insensitively,
    registration_policies_and_first_user,
    invite_use_limit_holds_under_concurrency,
    expired_revoked_and_unlimited_invites,
    failed_registration_does_not_consume_invite,
    refresh_rotation_detects_replay,
    refresh_token_rotates_at_most_once_under_concurrency,
    session_listing_revocation_and_password_change,
    disabling_and_deleting_users,
    delete_dead_sessions_removes_only_dead_ones,
    settings_round_trip,
    activity_and_admin_counts,
    reopening_keeps_data_and_migrations,
    sessions_open_only_with_the_current_password_and_an_enabled_account,
    the_last_admin_cannot_be_removed_even_concurrently,
    call_records_history_and_contacts,
);

#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = Store::connect("mysql://localhost/securevox").await.err();
    assert!(matches!(err, Some(StoreError::UnsupportedUrl)), "got {err:?}");
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn with_invite(code: &SecretToken) -> Admission {
    admission(0, InvitePolicy::Required(Some(code.digest())))
}

async fn create_invite(
    store: &Store,
    created_by: &str,
    max_uses: i64,
    expires_at: Option<i64>,
) -> (SecretToken, InviteRecord) {
    let code = SecretToken::generate_code();
    let record = store
        .create_invite(&NewInvite {
            id: Uuid::now_v7().to_string(),
            code_digest: code.digest(),
            code_hint: code.hint(),
            created_by: created_by.to_owned(),
            max_uses,
            expires_at,
        })
        .await
        .expect("create invite");
    assert_eq!(record.code_hint, code.hint());
    assert_eq!(record.uses, 0);
    (code, record)
}

async fn stored_invite(store: &Store, id: &str) -> InviteRecord {
    let invites = store.list_invites().await.expect("list invites");
    invites.into_iter().find(|i| i.id == id).expect("invite is listed")
}

/// A session for `user_id` expiring at `expires_at`, and its refresh token.
async fn create_session(store: &Store, user_id: &str, expires_at: i64) -> (String, SecretToken) {
    let token = SecretToken::generate();
    let id = Uuid::now_v7().to_string();
    store
        .create_session(&NewSession {
            id: id.clone(),
            user_id: user_id.to_owned(),
            device_name: Some("conformance laptop".into()),
            refresh_digest: token.digest(),
            expires_at,
            ip: Some("192.0.2.7".into()),
            user_agent: Some("conformance/1".into()),
        })
        .await
        .expect("create session");
    (id, token)
}

/// Whether the session exists and is live (None if it does not exist).
async fn live(store: &Store, session_id: &str) -> Option<bool> {
    store.session_auth(session_id).await.expect("session_auth").map(|auth| auth.session_live)
}

async fn session_ids(store: &Store, user_id: &str) -> BTreeSet<String> {
    store.list_sessions(user_id).await.expect("list sessions").into_iter().map(|s| s.id).collect()
}

fn ids<const N: usize>(list: [&String; N]) -> BTreeSet<String> {
    list.into_iter().cloned().collect()
}

/// Races `usernames.len()` registrations under one admission.
async fn race_registrations(
    store: &Store,
    usernames: Vec<String>,
    admission: &Admission,
) -> Vec<Result<UserRecord, RegisterError>> {
    let usernames = Arc::new(usernames);
    race(usernames.len(), |i| {
        let store = store.clone();
        let admission = admission.clone();
        let username = usernames[i].clone();
        async move { register(&store, &username, &admission).await }
    })
    .await
}

/// Splits race results into the successes and the errors.
fn partition(
    results: Vec<Result<UserRecord, RegisterError>>,
) -> (Vec<UserRecord>, Vec<RegisterError>) {
    let mut ok = Vec::new();
    let mut err = Vec::new();
    for result in results {
        match result {
            Ok(user) => ok.push(user),
            Err(e) => err.push(e),
        }
    }
    (ok, err)
}

// ---------------------------------------------------------------------------------------------
// Scenarios: registration
// ---------------------------------------------------------------------------------------------

async fn registration_limit_holds_under_concurrency(db: TestDb) {
    let store = db.store;
    let limited = admission(5, InvitePolicy::NotNeeded);
    let names = (0..12).map(|i| format!("racer{i:02}")).collect();
    let (ok, err) = partition(race_registrations(&store, names, &limited).await);

    assert_eq!(ok.len(), 5, "exactly max_users registrations succeed; errors: {err:?}");
    assert_eq!(err.len(), 7);
    for e in &err {
        assert!(
            matches!(e, RegisterError::CapacityReached(5)),
            "expected CapacityReached(5), got {e:?}"
        );
    }
    assert_eq!(store.count_users().await.unwrap(), 5);

    // Exactly one admin: the registration that found the table empty. (`created_at` is read
    // before a registration waits its turn, so it cannot tell which racer went first.)
    let admins: Vec<_> = ok.iter().filter(|u| u.role == Role::Admin).collect();
    assert_eq!(admins.len(), 1, "exactly one registration becomes admin: {ok:?}");
    let admin = admins[0];
    let stored = store.list_users(100, 0).await.unwrap();
    assert_eq!(stored.len(), 5);
    let stored_admins: Vec<_> = stored.iter().filter(|u| u.role == Role::Admin).collect();
    assert_eq!(stored_admins.len(), 1);
    assert_eq!(stored_admins[0].id, admin.id);
    assert_eq!(store.count_active_admins().await.unwrap(), 1);
    let returned: BTreeSet<_> = ok.iter().map(|u| u.id.clone()).collect();
    let listed: BTreeSet<_> = stored.iter().map(|u| u.id.clone()).collect();
    assert_eq!(returned, listed, "the accounts returned are the accounts stored");

    // Still full afterwards; a higher limit or none admits more, as plain users.
    let refused = register(&store, "latecomer", &limited).await;
    assert!(matches!(refused, Err(RegisterError::CapacityReached(5))), "got {refused:?}");
    let sixth = register(&store, "sixth", &admission(6, InvitePolicy::NotNeeded)).await.unwrap();
    assert_eq!(sixth.role, Role::User);
    let refused = register(&store, "seventh", &admission(6, InvitePolicy::NotNeeded)).await;
    assert!(matches!(refused, Err(RegisterError::CapacityReached(6))), "got {refused:?}");
    register(&store, "unlimited", &open()).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 7);
}

async fn usernames_are_unique_case_insensitively(db: TestDb) {
    let store = db.store;
    let bob = user(&store, "Bob").await;
    assert_eq!(bob.username, "Bob", "the display case is kept");
    for clash in ["bob", "BOB", "bOb"] {
        let r = register(&store, clash, &open()).await;
        assert!(matches!(r, Err(RegisterError::UsernameTaken)), "{clash}: got {r:?}");
    }
    assert_eq!(store.count_users().await.unwrap(), 1);

    let found = store.user_by_username("bob").await.unwrap().expect("found by key");
    assert_eq!(found, bob);
    let (login, hash) = store.user_for_login("bob").await.unwrap().expect("login lookup");
    assert_eq!(login.id, bob.id);
    assert_eq!(hash, password_hash());
    assert_eq!(store.password_hash(&bob.id).await.unwrap(), Some(password_hash()));
    assert!(store.user_by_username("robert").await.unwrap().is_none());

    // Eight spellings of one key at once: one wins.
    let spellings = ["Carol", "carol", "CAROL", "cArOl", "caRol", "CARol", "carOL", "Carol"];
    let names = spellings.iter().map(ToString::to_string).collect();
    let (ok, err) = partition(race_registrations(&store, names, &open()).await);
    assert_eq!(ok.len(), 1, "exactly one registration of the key wins; errors: {err:?}");
    for e in &err {
        assert!(matches!(e, RegisterError::UsernameTaken), "expected UsernameTaken, got {e:?}");
    }
    assert_eq!(store.count_users().await.unwrap(), 2);
    let carol = &ok[0];

    // Listing is ordered by key and paged.
    let all: Vec<_> = store.list_users(10, 0).await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(all, vec![bob.id.clone(), carol.id.clone()]);
    let second_page = store.list_users(1, 1).await.unwrap();
    assert_eq!(second_page.len(), 1);
    assert_eq!(second_page[0].id, carol.id);
    assert!(store.list_users(10, 2).await.unwrap().is_empty());
}

async fn registration_policies_and_first_user(db: TestDb) {
    let store = db.store;
    // Without first_user_is_admin the very first account follows the policy like any other.
    let strict =
        Admission { max_users: 0, invite: InvitePolicy::Closed, first_user_is_admin: false };
    let r = register(&store, "early", &strict).await;
    assert!(matches!(r, Err(RegisterError::Closed)), "got {r:?}");
    let strict = Admission { invite: InvitePolicy::Required(None), ..strict };
    let r = register(&store, "early", &strict).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "got {r:?}");
    assert_eq!(store.count_users().await.unwrap(), 0);

    // With it, the first account skips even a closed policy and becomes admin.
    let first = register(&store, "founder", &admission(0, InvitePolicy::Closed)).await.unwrap();
    assert_eq!(first.role, Role::Admin);
    assert_eq!(first.disabled_at, None);
    assert_eq!(store.user(&first.id).await.unwrap().unwrap(), first);

    // The second does not.
    let r = register(&store, "second", &admission(0, InvitePolicy::Closed)).await;
    assert!(matches!(r, Err(RegisterError::Closed)), "got {r:?}");
    let r = register(&store, "second", &admission(0, InvitePolicy::Required(None))).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "got {r:?}");
    let unknown = SecretToken::generate_code();
    let r = register(&store, "second", &with_invite(&unknown)).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "got {r:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);

    let second = user(&store, "second").await;
    assert_eq!(second.role, Role::User, "only the first account becomes admin");
}

async fn invite_use_limit_holds_under_concurrency(db: TestDb) {
    let store = db.store;
    let admin = user(&store, "admin").await;
    assert_eq!(admin.role, Role::Admin);
    let (code, invite) = create_invite(&store, &admin.id, 2, None).await;
    assert_eq!(invite.max_uses, 2);
    assert_eq!(invite.created_by.as_deref(), Some(admin.id.as_str()));

    let names = (0..6).map(|i| format!("guest{i}")).collect();
    let (ok, err) = partition(race_registrations(&store, names, &with_invite(&code)).await);
    assert_eq!(ok.len(), 2, "an invite with max_uses 2 admits two; errors: {err:?}");
    for e in &err {
        assert!(matches!(e, RegisterError::InvalidInvite), "expected InvalidInvite, got {e:?}");
    }
    assert!(ok.iter().all(|u| u.role == Role::User));
    assert_eq!(stored_invite(&store, &invite.id).await.uses, 2);
    assert_eq!(store.count_users().await.unwrap(), 3);

    // Used up for good.
    let r = register(&store, "guest9", &with_invite(&code)).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "got {r:?}");
    assert_eq!(stored_invite(&store, &invite.id).await.uses, 2);
}

async fn expired_revoked_and_unlimited_invites(db: TestDb) {
    let store = db.store;
    let admin = user(&store, "admin").await;
    let now = clock::now();

    let (expired_code, expired) = create_invite(&store, &admin.id, 0, Some(now - 60)).await;
    let r = register(&store, "late", &with_invite(&expired_code)).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "expired invite: got {r:?}");
    assert_eq!(stored_invite(&store, &expired.id).await.uses, 0);

    let (dated_code, dated) = create_invite(&store, &admin.id, 1, Some(now + 3600)).await;
    register(&store, "punctual", &with_invite(&dated_code)).await.expect("unexpired invite");
    assert_eq!(stored_invite(&store, &dated.id).await.uses, 1);

    let (revoked_code, revoked) = create_invite(&store, &admin.id, 0, None).await;
    assert!(store.revoke_invite(&revoked.id).await.unwrap());
    assert!(!store.revoke_invite(&revoked.id).await.unwrap(), "revoking twice reports false");
    assert!(!store.revoke_invite("no-such-invite").await.unwrap());
    let listed = stored_invite(&store, &revoked.id).await;
    assert!(listed.revoked_at.is_some_and(|t| t >= now));
    let r = register(&store, "revoked", &with_invite(&revoked_code)).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "revoked invite: got {r:?}");
    assert_eq!(stored_invite(&store, &revoked.id).await.uses, 0);

    // max_uses 0 means unlimited.
    let (open_code, unlimited) = create_invite(&store, &admin.id, 0, None).await;
    for i in 0..5 {
        register(&store, &format!("friend{i}"), &with_invite(&open_code)).await.expect("unlimited");
    }
    let listed = stored_invite(&store, &unlimited.id).await;
    assert_eq!((listed.max_uses, listed.uses, listed.revoked_at), (0, 5, None));
    assert_eq!(store.list_invites().await.unwrap().len(), 4);
    assert_eq!(store.count_users().await.unwrap(), 7);
}

async fn failed_registration_does_not_consume_invite(db: TestDb) {
    let store = db.store;
    let admin = user(&store, "admin").await;
    user(&store, "taken").await;
    let (code, invite) = create_invite(&store, &admin.id, 1, None).await;

    let r = register(&store, "TAKEN", &with_invite(&code)).await;
    assert!(matches!(r, Err(RegisterError::UsernameTaken)), "got {r:?}");
    assert_eq!(
        stored_invite(&store, &invite.id).await.uses,
        0,
        "a refused registration keeps its use"
    );

    let full = Admission { max_users: 2, ..with_invite(&code) };
    let r = register(&store, "newcomer", &full).await;
    assert!(matches!(r, Err(RegisterError::CapacityReached(2))), "got {r:?}");
    assert_eq!(stored_invite(&store, &invite.id).await.uses, 0);

    register(&store, "newcomer", &with_invite(&code)).await.expect("the single use is left");
    assert_eq!(stored_invite(&store, &invite.id).await.uses, 1);
    let r = register(&store, "another", &with_invite(&code)).await;
    assert!(matches!(r, Err(RegisterError::InvalidInvite)), "got {r:?}");
}

// ---------------------------------------------------------------------------------------------
// Scenarios: sessions
// ---------------------------------------------------------------------------------------------

async fn refresh_rotation_detects_replay(db: TestDb) {
    let store = db.store;
    let alice = user(&store, "alice").await;
    let now = clock::now();
    let (session, t0) = create_session(&store, &alice.id, now + 3600).await;

    let auth = store.session_auth(&session).await.unwrap().expect("session exists");
    assert!(auth.session_live);
    assert_eq!(auth.session_id, session);
    assert_eq!(auth.user, alice);
    assert!(store.session_auth(&Uuid::now_v7().to_string()).await.unwrap().is_none());

    let t1 = SecretToken::generate();
    match store.rotate_refresh(&t0.digest(), &t1.digest(), now + 7200).await.unwrap() {
        RefreshOutcome::Rotated { session_id, user } => {
            assert_eq!(session_id, session);
            assert_eq!(user.id, alice.id);
        }
        other => panic!("current token must rotate, got {other:?}"),
    }
    let listed = store.list_sessions(&alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].expires_at, now + 7200, "rotation extends the session");

    let t2 = SecretToken::generate();
    let r = store.rotate_refresh(&t1.digest(), &t2.digest(), now + 7200).await.unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated { .. }), "got {r:?}");

    // Two generations back is merely unknown.
    let r =
        store.rotate_refresh(&t0.digest(), &SecretToken::generate().digest(), now).await.unwrap();
    assert!(matches!(r, RefreshOutcome::Invalid), "got {r:?}");
    assert_eq!(live(&store, &session).await, Some(true));
    let r = store
        .rotate_refresh(&SecretToken::generate().digest(), &SecretToken::generate().digest(), now)
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Invalid), "unknown token: got {r:?}");

    // Replaying the previous token revokes the session...
    let r =
        store.rotate_refresh(&t1.digest(), &SecretToken::generate().digest(), now).await.unwrap();
    assert!(matches!(r, RefreshOutcome::Reused), "replay: got {r:?}");
    assert_eq!(live(&store, &session).await, Some(false));
    assert!(store.list_sessions(&alice.id).await.unwrap().is_empty());
    // ...so neither the current token nor another replay works any more.
    let r =
        store.rotate_refresh(&t2.digest(), &SecretToken::generate().digest(), now).await.unwrap();
    assert!(matches!(r, RefreshOutcome::Invalid), "current token of a revoked session: got {r:?}");
    let r =
        store.rotate_refresh(&t1.digest(), &SecretToken::generate().digest(), now).await.unwrap();
    assert!(matches!(r, RefreshOutcome::Invalid), "second replay: got {r:?}");

    // An expired session cannot be refreshed.
    let (expired, token) = create_session(&store, &alice.id, now - 10).await;
    assert_eq!(live(&store, &expired).await, Some(false));
    let r =
        store.rotate_refresh(&token.digest(), &SecretToken::generate().digest(), now + 60).await;
    assert!(matches!(r, Ok(RefreshOutcome::Invalid)), "expired session: got {r:?}");
}

async fn refresh_token_rotates_at_most_once_under_concurrency(db: TestDb) {
    let store = db.store;
    let alice = user(&store, "alice").await;
    let now = clock::now();
    let (session, token) = create_session(&store, &alice.id, now + 3600).await;
    let presented = token.digest();
    let outcomes = race(8, |_| {
        let store = store.clone();
        let presented = presented.clone();
        let fresh = SecretToken::generate();
        async move { store.rotate_refresh(&presented, &fresh.digest(), now + 7200).await }
    })
    .await;
    let outcomes: Vec<_> = outcomes.into_iter().map(|r| r.expect("rotate_refresh")).collect();
    let rotated = outcomes.iter().filter(|o| matches!(o, RefreshOutcome::Rotated { .. })).count();
    assert_eq!(rotated, 1, "one token must not fork into several: {outcomes:?}");
    // The losers presented what is now the previous token: that is a replay, which revokes.
    let reused = outcomes.iter().filter(|o| matches!(o, RefreshOutcome::Reused)).count();
    assert!(reused >= 1, "losing racers count as replays: {outcomes:?}");
    assert_eq!(live(&store, &session).await, Some(false));
}

async fn session_listing_revocation_and_password_change(db: TestDb) {
    let store = db.store;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let now = clock::now();
    let (a1, _) = create_session(&store, &alice.id, now + 3600).await;
    let (a2, _) = create_session(&store, &alice.id, now + 3600).await;
    let (a3, _) = create_session(&store, &alice.id, now + 3600).await;
    let (expired, _) = create_session(&store, &alice.id, now - 1).await;
    let (b1, _) = create_session(&store, &bob.id, now + 3600).await;

    assert_eq!(session_ids(&store, &alice.id).await, ids([&a1, &a2, &a3]));
    assert_eq!(live(&store, &expired).await, Some(false));
    let listed = store.list_sessions(&alice.id).await.unwrap();
    assert!(listed.iter().all(|s| s.user_id == alice.id
        && s.device_name.as_deref() == Some("conformance laptop")
        && s.ip.as_deref() == Some("192.0.2.7")
        && s.user_agent.as_deref() == Some("conformance/1")));

    // Only the owner may revoke, and only once.
    assert!(!store.revoke_session(&bob.id, &a1).await.unwrap(), "another user's session");
    assert_eq!(live(&store, &a1).await, Some(true));
    assert!(store.revoke_session(&alice.id, &a3).await.unwrap());
    assert!(!store.revoke_session(&alice.id, &a3).await.unwrap(), "already revoked");
    assert!(!store.revoke_session(&alice.id, "no-such-session").await.unwrap());
    assert_eq!(live(&store, &a3).await, Some(false));
    assert_eq!(session_ids(&store, &alice.id).await, ids([&a1, &a2]));

    // A password change keeps only the given session, and only the user's own.
    let new_hash = PasswordHash::from_stored("$argon2id$v=19$conformance-new-hash".into());
    store.set_password_hash(&alice.id, &new_hash, Some(&a1)).await.unwrap();
    assert_eq!(store.password_hash(&alice.id).await.unwrap(), Some(new_hash.clone()));
    assert_eq!(session_ids(&store, &alice.id).await, ids([&a1]));
    assert_eq!(live(&store, &a1).await, Some(true));
    assert_eq!(live(&store, &a2).await, Some(false));
    assert_eq!(live(&store, &b1).await, Some(true), "other users keep their sessions");

    store.set_password_hash(&alice.id, &new_hash, None).await.unwrap();
    assert!(session_ids(&store, &alice.id).await.is_empty());
    assert_eq!(live(&store, &a1).await, Some(false));

    store.revoke_all_sessions(&bob.id).await.unwrap();
    assert_eq!(live(&store, &b1).await, Some(false));
    assert!(session_ids(&store, &bob.id).await.is_empty());
}

async fn disabling_and_deleting_users(db: TestDb) {
    let store = db.store;
    let admin = user(&store, "admin").await;
    let alice = user(&store, "alice").await;
    let now = clock::now();
    let (a1, _) = create_session(&store, &alice.id, now + 3600).await;
    let (a2, _) = create_session(&store, &alice.id, now + 3600).await;
    let (admin_session, _) = create_session(&store, &admin.id, now + 3600).await;

    assert!(store.set_user_disabled(&alice.id, true).await.unwrap());
    let disabled = store.user(&alice.id).await.unwrap().unwrap();
    let disabled_at = disabled.disabled_at.expect("disabled_at is set");
    assert!(disabled_at >= now && disabled_at <= clock::now());
    assert!(disabled.is_disabled());
    for session in [&a1, &a2] {
        let auth = store.session_auth(session).await.unwrap().expect("session still exists");
        assert!(!auth.session_live, "disabling revokes every session");
        assert!(auth.user.is_disabled());
    }
    assert!(session_ids(&store, &alice.id).await.is_empty());
    assert_eq!(live(&store, &admin_session).await, Some(true), "other users are untouched");

    // Disabling again keeps the original time.
    assert!(store.set_user_disabled(&alice.id, true).await.unwrap());
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().disabled_at, Some(disabled_at));

    assert!(store.set_user_disabled(&alice.id, false).await.unwrap());
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().disabled_at, None);
    assert_eq!(live(&store, &a1).await, Some(false), "re-enabling does not revive sessions");

    let ghost = Uuid::now_v7().to_string();
    assert!(!store.set_user_disabled(&ghost, true).await.unwrap());
    assert!(!store.set_user_disabled(&ghost, false).await.unwrap());

    // Deleting cascades to sessions and clears the account from invites it created.
    let (_, invite) = create_invite(&store, &alice.id, 0, None).await;
    let (a3, _) = create_session(&store, &alice.id, now + 3600).await;
    assert!(store.delete_user(&alice.id).await.unwrap());
    for session in [&a1, &a2, &a3] {
        assert!(store.session_auth(session).await.unwrap().is_none(), "sessions are deleted");
    }
    assert!(store.user(&alice.id).await.unwrap().is_none());
    assert!(store.user_by_username("alice").await.unwrap().is_none());
    assert_eq!(stored_invite(&store, &invite.id).await.created_by, None);
    assert!(!store.delete_user(&alice.id).await.unwrap(), "already deleted");
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(live(&store, &admin_session).await, Some(true));

    // The name is free again.
    let again = user(&store, "Alice").await;
    assert_ne!(again.id, alice.id);
}

async fn delete_dead_sessions_removes_only_dead_ones(db: TestDb) {
    let store = db.store;
    let alice = user(&store, "alice").await;
    let now = clock::now();
    let (expired, _) = create_session(&store, &alice.id, now - 100).await;
    let (revoked, _) = create_session(&store, &alice.id, now + 3600).await;
    let (healthy, _) = create_session(&store, &alice.id, now + 3600).await;
    assert!(store.revoke_session(&alice.id, &revoked).await.unwrap());

    // A cutoff before the revocation removes only what expired before it.
    assert_eq!(store.delete_dead_sessions(now - 50).await.unwrap(), 1);
    assert_eq!(live(&store, &expired).await, None);
    assert_eq!(live(&store, &revoked).await, Some(false));
    assert_eq!(live(&store, &healthy).await, Some(true));

    // A later cutoff removes the revoked one too, never the live one.
    assert_eq!(store.delete_dead_sessions(now + 60).await.unwrap(), 1);
    assert_eq!(live(&store, &revoked).await, None);
    assert_eq!(live(&store, &healthy).await, Some(true));
    assert_eq!(store.delete_dead_sessions(now + 60).await.unwrap(), 0);
    assert_eq!(session_ids(&store, &alice.id).await, ids([&healthy]));
}

// ---------------------------------------------------------------------------------------------
// Scenarios: settings, counters, reopening
// ---------------------------------------------------------------------------------------------

async fn settings_round_trip(db: TestDb) {
    let store = db.store;
    assert_eq!(store.setting("registration_mode").await.unwrap(), None);
    store.delete_setting("registration_mode").await.expect("deleting a missing key is fine");

    store.put_setting("registration_mode", "invite").await.unwrap();
    store.put_setting("max_users", "50").await.unwrap();
    assert_eq!(store.setting("registration_mode").await.unwrap().as_deref(), Some("invite"));

    store.put_setting("registration_mode", "open").await.unwrap();
    assert_eq!(store.setting("registration_mode").await.unwrap().as_deref(), Some("open"));
    assert_eq!(store.setting("max_users").await.unwrap().as_deref(), Some("50"));

    store.delete_setting("registration_mode").await.unwrap();
    assert_eq!(store.setting("registration_mode").await.unwrap(), None);
    assert_eq!(store.setting("max_users").await.unwrap().as_deref(), Some("50"), "others stay");

    let text = "ünïcode & 'quotes' \"and\" $1";
    store.put_setting("motd", text).await.unwrap();
    assert_eq!(store.setting("motd").await.unwrap().as_deref(), Some(text));
}

async fn activity_and_admin_counts(db: TestDb) {
    let store = db.store;
    assert_eq!(store.count_users_seen_since(0).await.unwrap(), 0);
    assert_eq!(store.count_active_admins().await.unwrap(), 0);

    let admin = user(&store, "admin").await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    assert_eq!(store.count_active_admins().await.unwrap(), 1);
    assert_eq!(store.count_users_seen_since(0).await.unwrap(), 0, "never seen is not counted");

    store.touch_user_seen(&alice.id, 1_000).await.unwrap();
    store.touch_user_seen(&bob.id, 2_000).await.unwrap();
    store.touch_user_seen(&Uuid::now_v7().to_string(), 5_000).await.expect("unknown id is a no-op");
    assert_eq!(store.count_users_seen_since(1_000).await.unwrap(), 2);
    assert_eq!(store.count_users_seen_since(1_001).await.unwrap(), 1);
    assert_eq!(store.count_users_seen_since(2_000).await.unwrap(), 1, "the bound is inclusive");
    assert_eq!(store.count_users_seen_since(2_001).await.unwrap(), 0);
    store.touch_user_seen(&alice.id, 3_000).await.unwrap();
    assert_eq!(store.count_users_seen_since(2_001).await.unwrap(), 1);
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().last_seen_at, Some(3_000));

    assert!(store.set_user_role(&bob.id, Role::Admin).await.unwrap());
    assert_eq!(store.user(&bob.id).await.unwrap().unwrap().role, Role::Admin);
    assert_eq!(store.count_active_admins().await.unwrap(), 2);
    assert!(store.set_user_disabled(&bob.id, true).await.unwrap());
    assert_eq!(store.count_active_admins().await.unwrap(), 1, "disabled admins do not count");
    assert!(store.set_user_disabled(&admin.id, true).await.unwrap());
    assert_eq!(store.count_active_admins().await.unwrap(), 0);
    assert!(store.set_user_disabled(&bob.id, false).await.unwrap());
    assert_eq!(store.count_active_admins().await.unwrap(), 1);
    assert!(store.set_user_role(&bob.id, Role::User).await.unwrap());
    assert_eq!(store.count_active_admins().await.unwrap(), 0);
    assert!(!store.set_user_role(&Uuid::now_v7().to_string(), Role::Admin).await.unwrap());
    assert_eq!(store.count_active_admins().await.unwrap(), 0);
}

async fn reopening_keeps_data_and_migrations(db: TestDb) {
    let store = db.store;
    let founder = user(&store, "founder").await;
    store.put_setting("max_users", "10").await.unwrap();
    store.ping().await.unwrap();

    let reopened = Store::connect(&db.url).await.expect("reopen: migrations apply only once");
    assert_eq!(reopened.backend(), store.backend());
    assert_eq!(reopened.user_by_username("founder").await.unwrap(), Some(founder));
    assert_eq!(reopened.setting("max_users").await.unwrap().as_deref(), Some("10"));
    let second = register(&reopened, "second", &open()).await.unwrap();
    assert_eq!(second.role, Role::User, "the reopened store still sees the first user");
    reopened.close().await;
    assert_eq!(store.count_users().await.unwrap(), 2);
}

fn new_session(user_id: &str) -> NewSession {
    NewSession {
        id: Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        device_name: None,
        refresh_digest: SecretToken::generate().digest(),
        expires_at: clock::now() + 3600,
        ip: None,
        user_agent: None,
    }
}

async fn sessions_open_only_with_the_current_password_and_an_enabled_account(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice").await;
    let current = password_hash();
    let first = new_session(&alice.id);
    assert!(store.open_session(&first, &current).await.unwrap());
    assert_eq!(live(store, &first.id).await, Some(true));
    assert!(store.user(&alice.id).await.unwrap().unwrap().last_seen_at.is_some(), "marks seen");

    // A login verified against a hash that is no longer the account's opens nothing.
    let changed = Password::new("a different password", 8).unwrap().hash();
    store.set_password_hash(&alice.id, &changed, None).await.unwrap();
    let stale = new_session(&alice.id);
    assert!(!store.open_session(&stale, &current).await.unwrap());
    assert_eq!(live(store, &stale.id).await, None, "no session row was created");
    assert!(store.open_session(&new_session(&alice.id), &changed).await.unwrap());

    // Nor for a disabled account, even with the right hash.
    store.set_user_disabled(&alice.id, true).await.unwrap();
    let while_disabled = new_session(&alice.id);
    assert!(!store.open_session(&while_disabled, &changed).await.unwrap());
    assert_eq!(live(store, &while_disabled.id).await, None);
    store.set_user_disabled(&alice.id, false).await.unwrap();
    assert!(session_ids(store, &alice.id).await.is_empty(), "disable ended the others");
}

async fn the_last_admin_cannot_be_removed_even_concurrently(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    assert_eq!(alice.role, Role::Admin);
    assert!(matches!(
        store.change_account("no-such-user", &[AccountChange::Delete]).await,
        Err(AccountChangeError::NotFound)
    ));
    for change in [
        AccountChange::SetRole(Role::User),
        AccountChange::SetDisabled(true),
        AccountChange::Delete,
    ] {
        assert!(
            matches!(
                store.change_account(&alice.id, &[change]).await,
                Err(AccountChangeError::LastAdmin)
            ),
            "{change:?}"
        );
    }
    // Changes that keep an enabled admin are fine, and several apply together.
    let after =
        store.change_account(&alice.id, &[AccountChange::SetDisabled(false)]).await.unwrap();
    assert_eq!(after.map(|u| u.role), Some(Role::Admin));
    let promoted = store
        .change_account(
            &bob.id,
            &[AccountChange::SetRole(Role::Admin), AccountChange::SetDisabled(false)],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);

    // Two admins demoting each other at the same moment: one wins, one is refused.
    for round in 0..6 {
        let results = race(2, |i| {
            let store = store.clone();
            let target = if i == 0 { bob.id.clone() } else { alice.id.clone() };
            async move { store.change_account(&target, &[AccountChange::SetRole(Role::User)]).await }
        })
        .await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let refused =
            results.iter().filter(|r| matches!(r, Err(AccountChangeError::LastAdmin))).count();
        assert_eq!((ok, refused), (1, 1), "round {round}: {results:?}");
        assert_eq!(store.count_active_admins().await.unwrap(), 1, "round {round}");
        store.set_user_role(&alice.id, Role::Admin).await.unwrap();
        store.set_user_role(&bob.id, Role::Admin).await.unwrap();
    }
    let deleted = store.change_account(&bob.id, &[AccountChange::Delete]).await.unwrap();
    assert!(deleted.is_none());
}

async fn call_records_history_and_contacts(db: TestDb) {
    let store = &db.store;
    let (a, b, c) =
        (user(store, "alice").await, user(store, "bob").await, user(store, "carol").await);
    let new = |id: &'static str, invitees: &'static [String], at: i64| NewCall {
        id,
        caller_id: &a.id,
        media: Media::Video,
        invitees,
        created_at: at,
    };
    let bob_only: &'static [String] = Box::leak(vec![b.id.clone()].into_boxed_slice());
    let both: &'static [String] = Box::leak(vec![b.id.clone(), c.id.clone()].into_boxed_slice());
    // Three calls at distinct times, the last two at the same second (the id breaks the tie).
    store.create_call(&new("call-1", bob_only, 100)).await.unwrap();
    store.create_call(&new("call-2", both, 200)).await.unwrap();
    store.create_call(&new("call-3", bob_only, 200)).await.unwrap();

    // call-1: answered by bob, connected, completed.
    store.set_call_response("call-1", &b.id, Response::Accepted, 110).await.unwrap();
    store.set_call_response("call-1", &b.id, Response::Declined, 111).await.unwrap();
    store.set_call_state("call-1", CallState::Offered, 111).await.unwrap();
    store.set_call_state("call-1", CallState::Answered, 112).await.unwrap();
    store.set_call_state("call-1", CallState::Connected, 113).await.unwrap();
    store.set_call_joined("call-1", &b.id, 112).await.unwrap();
    store.end_call("call-1", EndReason::Completed, None, 170).await.unwrap();
    // Ending twice keeps the first ending.
    store.end_call("call-1", EndReason::Idle, Some("late"), 999).await.unwrap();
    store.set_call_state("call-1", CallState::Answered, 1000).await.unwrap();
    // call-2: declined by carol, then cancelled.
    store.set_call_response("call-2", &c.id, Response::Declined, 205).await.unwrap();
    store.end_call("call-2", EndReason::Cancelled, None, 210).await.unwrap();
    // call-3 stays live until the restart sweep.

    let history = store.call_history(&b.id, None, 10).await.unwrap();
    let ids: Vec<&str> = history.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["call-3", "call-2", "call-1"]);
    let first = &history[2];
    assert_eq!(first.state, CallState::Ended);
    assert_eq!(first.end_reason, Some(EndReason::Completed));
    assert_eq!(
        (first.answered_at, first.connected_at, first.ended_at),
        (Some(112), Some(113), Some(170))
    );
    assert_eq!(first.viewer_response, Some(Response::Accepted), "the first answer wins");
    assert!(!first.viewer_is_caller);
    assert_eq!(first.members, [a.id.clone(), b.id.clone()]);
    assert_eq!(history[1].members.len(), 3);
    assert_eq!(history[1].members[0], a.id, "caller first");
    assert_eq!(history[0].state, CallState::Pending);

    // Paging: strictly older than the cursor, ties broken by id.
    let page = store.call_history(&b.id, Some("call-3"), 1).await.unwrap();
    assert_eq!(page.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["call-2"]);
    let page = store.call_history(&b.id, Some("call-1"), 10).await.unwrap();
    assert!(page.is_empty());
    let carol = store.call_history(&c.id, None, 10).await.unwrap();
    assert_eq!(carol.len(), 1);
    assert_eq!(carol[0].viewer_response, Some(Response::Declined));
    let alice = store.call_history(&a.id, None, 10).await.unwrap();
    assert!(alice.iter().all(|h| h.viewer_is_caller));

    let mut contacts = store.call_contacts(&a.id).await.unwrap();
    contacts.sort();
    let mut expected = vec![b.id.clone(), c.id.clone()];
    expected.sort();
    assert_eq!(contacts, expected);
    assert_eq!(store.call_contacts(&c.id).await.unwrap().len(), 2);

    // After a restart nothing is live any more.
    assert_eq!(store.end_live_calls(EndReason::ServerStopped, 300).await.unwrap(), 1);
    let history = store.call_history(&b.id, None, 1).await.unwrap();
    assert_eq!(history[0].end_reason, Some(EndReason::ServerStopped));
    assert_eq!(store.end_live_calls(EndReason::ServerStopped, 301).await.unwrap(), 0);

    // Deleting a user removes their calls from nobody else's history but their own membership.
    store.delete_user(&c.id).await.unwrap();
    assert_eq!(store.call_history(&b.id, None, 10).await.unwrap()[1].members.len(), 2);
}
