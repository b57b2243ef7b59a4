//! Conformance suite for device inboxes and device links: what a delivery queues (with each
//! item's predecessor, for live push), external joins, cursor sync under concurrent writers,
//! and link requests — every scenario against SQLite and PostgreSQL (see `harness`).

#![allow(clippy::unwrap_used)]

use securevox_store::{
    AttachmentRecord, LinkError, LinkState, NewCommit, NewDevice, NewDeviceLink,
};
use std::collections::BTreeSet;

#[macro_use]
mod harness;
use harness::chat::{
    application, commit, conversation, device, pair_in_a_group, welcome, Pair, NOW,
};
use harness::{race, user, TestDb};

conformance!(
    queued_items_name_their_predecessor,
    an_external_commit_adds_its_sender,
    the_last_member_leaving_takes_the_conversation,
    a_syncing_device_misses_nothing_while_many_groups_write,
    device_links_are_answered_once,
);

async fn queued_items_name_their_predecessor(db: TestDb) {
    let store = &db.store;
    let Pair { bob, laptop, bob1, conv, delivered, .. } = pair_in_a_group(store, None).await;
    assert_eq!(delivered.queued.len(), 1);
    let welcome = &delivered.queued[0];
    assert!(welcome.welcome);
    assert_eq!((welcome.device_id.as_str(), welcome.user_id.as_str()), (&*bob1, &*bob));
    assert_eq!(welcome.prev, None, "bob's first item");

    let mut prev = welcome.item_id;
    for text in [&b"m1"[..], b"m2"] {
        let delivered = store.post_group_message(&application(&conv, 1, &laptop, text)).await;
        let delivered = delivered.unwrap();
        let [item] = delivered.queued.as_slice() else { panic!("{delivered:?}") };
        assert!(!item.welcome);
        assert_eq!(item.prev, Some(prev), "each item names the one before it");
        assert!(item.item_id > prev);
        prev = item.item_id;
    }
    // The inbox holds exactly those items, in that order.
    let ids: Vec<i64> = store.inbox(&bob1, 0, 10).await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], prev);
    // Pruned predecessors are not named.
    store.ack_inbox(&bob1, ids[1], NOW).await.unwrap();
    store.prune_delivered(NOW + 1, 0).await.unwrap();
    let delivered = store.post_group_message(&application(&conv, 1, &laptop, b"m3")).await;
    assert_eq!(delivered.unwrap().queued[0].prev, Some(prev));
}

async fn an_external_commit_adds_its_sender(db: TestDb) {
    let store = &db.store;
    let Pair { alice, laptop, bob1, conv, .. } = pair_in_a_group(store, Some(b"info-1")).await;

    // Alice's new phone joins by external Commit: everyone else gets the Commit, and the
    // phone is in the group from then on.
    let phone = device(store, &alice).await;
    let join = NewCommit {
        joining_user: Some(&alice),
        group_info: Some(b"info-2"),
        ..commit(&conv, 1, &phone, b"external-commit")
    };
    let delivered = store.accept_commit(&join).await.unwrap();
    let mut recipients = vec![laptop.clone(), bob1.clone()];
    recipients.sort();
    assert_eq!(delivered.recipients, recipients);
    assert!(store.conversation_devices(&conv).await.unwrap().contains(&phone));
    let delivered = store.post_group_message(&application(&conv, 2, &bob1, b"hi")).await;
    assert!(delivered.unwrap().recipients.contains(&phone));
    assert_eq!(store.group_info(&conv).await.unwrap().as_deref(), Some(&b"info-2"[..]));

    // A Commit without a GroupInfo clears it rather than leave a stale one.
    store.accept_commit(&commit(&conv, 2, &bob1, b"update")).await.unwrap();
    assert_eq!(store.group_info(&conv).await.unwrap(), None);

    // Removing one of alice's devices keeps her a member; removing bob's last one does not
    // (so he cannot come back by external Commit).
    let removed = [phone.clone()];
    let remove =
        NewCommit { removed_devices: &removed, ..commit(&conv, 3, &laptop, b"remove-phone") };
    store.accept_commit(&remove).await.unwrap();
    let removed = [bob1.clone()];
    let remove =
        NewCommit { removed_devices: &removed, ..commit(&conv, 4, &laptop, b"remove-bob") };
    store.accept_commit(&remove).await.unwrap();
    let members = store.conversation(&conv).await.unwrap().unwrap().members;
    let users: Vec<&str> = members.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, [alice.as_str()]);
}

async fn the_last_member_leaving_takes_the_conversation(db: TestDb) {
    let store = &db.store;
    let Pair { alice, bob, laptop, bob1, conv, .. } = pair_in_a_group(store, None).await;
    store.post_group_message(&application(&conv, 1, &laptop, b"m1")).await.unwrap();
    let attachment = AttachmentRecord {
        id: "a1".into(),
        conversation_id: conv.clone(),
        uploader_id: Some(alice.clone()),
        size: 3,
        sha256: "00".into(),
        created_at: NOW,
    };
    store.add_attachment(&attachment).await.unwrap();

    assert!(store.remove_member(&conv, &bob).await.unwrap());
    assert!(store.conversation(&conv).await.unwrap().is_some(), "alice is still in it");
    assert!(store.attachment("a1").await.unwrap().is_some());
    assert!(store.remove_member(&conv, &alice).await.unwrap());
    assert!(store.conversation(&conv).await.unwrap().is_none());
    assert!(store.attachment_ids().await.unwrap().is_empty(), "the records went with it");
    assert!(store.inbox(&bob1, 0, 10).await.unwrap().is_empty());
    assert!(!store.remove_member(&conv, &alice).await.unwrap());
}

/// Many groups write to one device at once while it syncs with a cursor: every item must
/// show up, none twice. (On PostgreSQL, ids are taken before commit; without the device lock
/// a later id could become visible first and the cursor would skip the earlier one.)
async fn a_syncing_device_misses_nothing_while_many_groups_write(db: TestDb) {
    const GROUPS: usize = 6;
    const MESSAGES: usize = 15;
    let store = db.store.clone();
    let alice = user(&store, "alice").await.id;
    let bob = user(&store, "bob").await.id;
    let bob1 = device(&store, &bob).await;
    let mut groups = Vec::new();
    for _ in 0..GROUPS {
        let laptop = device(&store, &alice).await;
        let conv = conversation(&store, &alice, &laptop, &bob).await;
        welcome(&store, &conv, &laptop, &[(bob1.clone(), bob.clone())], None).await;
        groups.push((conv, laptop));
    }
    let first = store.inbox(&bob1, 0, 100).await.unwrap();
    let start = first.last().unwrap().id;

    let reader = {
        let (store, bob1) = (store.clone(), bob1.clone());
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (start, Vec::new());
            while seen.len() < GROUPS * MESSAGES {
                let items = store.inbox(&bob1, cursor, 50).await.unwrap();
                if let Some(last) = items.last() {
                    cursor = last.id;
                }
                seen.extend(items.into_iter().map(|i| i.id));
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    race(GROUPS, |i| {
        let (store, (conv, laptop)) = (store.clone(), groups[i].clone());
        async move {
            for _ in 0..MESSAGES {
                store.post_group_message(&application(&conv, 1, &laptop, b"m")).await.unwrap();
            }
        }
    })
    .await;
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), reader)
        .await
        .expect("the syncing device skipped an item and never saw it")
        .unwrap();
    let distinct: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!((seen.len(), distinct.len()), (GROUPS * MESSAGES, GROUPS * MESSAGES));
}

async fn device_links_are_answered_once(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice").await.id;
    let bob = user(store, "bob").await.id;
    let link = |id: &'static str, key: &'static [u8]| NewDeviceLink {
        id,
        user_id: &alice,
        name: Some("phone"),
        signature_key: key,
        transfer_key: b"transfer",
        created_at: NOW,
        expires_at: NOW + 600,
    };
    assert!(store.create_device_link(&link("l1", b"key-1"), 2).await.unwrap());
    assert!(store.create_device_link(&link("l2", b"key-2"), 2).await.unwrap());
    assert!(!store.create_device_link(&link("l3", b"key-3"), 2).await.unwrap(), "at most 2");
    let pending = store.pending_device_links(&alice, NOW).await.unwrap();
    assert_eq!(pending.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["l1", "l2"]);
    assert!(store.pending_device_links(&bob, NOW).await.unwrap().is_empty());
    assert!(store.device_link(&bob, "l1", NOW).await.unwrap().is_none(), "alice's only");

    // Approval registers the device and keeps the envelope, once.
    let not_hers = store.approve_device_link("l1", &phone("d0", &bob), None).await;
    assert!(matches!(not_hers, Err(LinkError::NotPending)), "bob cannot answer alice's");
    store.approve_device_link("l1", &phone("d1", &alice), Some(b"sealed")).await.unwrap();
    let approved = store.device_link(&alice, "l1", NOW + 2).await.unwrap().unwrap();
    assert_eq!(approved.state, LinkState::Approved);
    assert_eq!(approved.device_id.as_deref(), Some("d1"));
    assert_eq!(approved.envelope.as_deref(), Some(&b"sealed"[..]));
    assert_eq!(store.device("d1").await.unwrap().unwrap().user_id, alice);
    let again = store.approve_device_link("l1", &phone("d2", &alice), None).await;
    assert!(matches!(again, Err(LinkError::NotPending)));
    assert!(store.device("d2").await.unwrap().is_none(), "nothing half-done");

    // Rejection, expiry, and the sweep.
    assert!(store.reject_device_link(&alice, "l2", NOW + 2).await.unwrap());
    assert!(!store.reject_device_link(&alice, "l2", NOW + 2).await.unwrap());
    assert_eq!(
        store.device_link(&alice, "l2", NOW + 2).await.unwrap().unwrap().state,
        LinkState::Rejected
    );
    assert!(store.pending_device_links(&alice, NOW + 2).await.unwrap().is_empty());
    assert!(store.device_link(&alice, "l1", NOW + 600).await.unwrap().is_none(), "expired");
    let late = store.approve_device_link("l3", &phone("d3", &alice), None).await;
    assert!(matches!(late, Err(LinkError::NotPending)), "never stored");
    assert_eq!(store.prune_device_links(NOW + 600).await.unwrap(), 2);
    assert!(store.device("d1").await.unwrap().is_some(), "the device stays");
    assert!(!store.delete_device_link(&alice, "l1").await.unwrap());
}

fn phone<'a>(id: &'a str, user_id: &'a str) -> NewDevice<'a> {
    NewDevice {
        id,
        user_id,
        name: Some("phone"),
        signature_key: b"key-1",
        identity_signature: b"signed",
        created_at: NOW + 1,
    }
}
