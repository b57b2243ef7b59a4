//! Conformance suite for end-to-end encrypted chat's storage: the key directory (identity keys,
//! devices, KeyPackages) and the Delivery Service (conversations, one Commit per epoch, the
//! group log, inboxes), every scenario against SQLite and PostgreSQL (see `harness`).

#![allow(clippy::unwrap_used)]

use securevox_domain::delivery::{ContentType, ConversationKind, MemberRole};
use securevox_store::{
    DeliveryError, DeviceError, InboxBody, NewCommit, NewDevice, NewGroupMessage, NewKeyPackage,
    NewWelcome,
};
use std::collections::BTreeSet;

#[macro_use]
mod harness;
use harness::chat::{application, commit, conversation, device, NOW};
use harness::{race, user, TestDb};

conformance!(
    identity_keys_and_devices,
    transactions_that_read_then_write_do_not_fail_when_run_together,
    key_packages_are_handed_out_once_even_concurrently,
    one_commit_per_epoch_even_concurrently,
    messages_reach_every_other_device_in_order,
);

fn package(n: u8, last_resort: bool, not_after: i64) -> NewKeyPackage {
    NewKeyPackage { reference: vec![n; 32], data: vec![n; 100], last_resort, not_after }
}

/// Users setting their identity keys at the same moment (as many people registering at once
/// do): each transaction reads before it writes. SQLite used to refuse some with "database is
/// locked" (a read that cannot become a write once another connection wrote).
async fn transactions_that_read_then_write_do_not_fail_when_run_together(db: TestDb) {
    let store = db.store.clone();
    let mut users = Vec::new();
    for n in 0..24 {
        users.push(user(&store, &format!("user{n}")).await.id);
    }
    for round in 0..3u8 {
        let results = race(users.len(), |i| {
            let (store, user) = (store.clone(), users[i].clone());
            async move { store.set_identity_key(&user, &[round, i as u8], NOW).await }
        })
        .await;
        for (i, result) in results.into_iter().enumerate() {
            let replaced = result.unwrap_or_else(|e| panic!("round {round}, user {i}: {e}"));
            assert_eq!(replaced, round > 0);
        }
    }
    for (i, user) in users.iter().enumerate() {
        assert_eq!(store.identity_key(user).await.unwrap(), Some(vec![2, i as u8]));
    }
}

async fn identity_keys_and_devices(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice").await.id;
    let bob = user(store, "bob").await.id;
    assert_eq!(store.identity_key(&alice).await.unwrap(), None);
    assert!(!store.set_identity_key(&alice, b"key-1", NOW).await.unwrap(), "first key");
    assert!(!store.set_identity_key(&alice, b"key-1", NOW).await.unwrap(), "same key again");
    assert_eq!(store.identity_key(&alice).await.unwrap().as_deref(), Some(&b"key-1"[..]));

    let laptop = device(store, &alice).await;
    let phone = device(store, &alice).await;
    let listed: Vec<String> =
        store.devices_of(&alice).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(listed.iter().collect::<BTreeSet<_>>(), [&laptop, &phone].into());
    let record = store.device(&laptop).await.unwrap().unwrap();
    assert_eq!((record.user_id.as_str(), record.name.as_deref()), (alice.as_str(), Some("laptop")));

    // A signature key belongs to one device.
    let taken = store
        .add_device(&NewDevice {
            id: "another",
            user_id: &bob,
            name: None,
            signature_key: &record.signature_key,
            identity_signature: b"x",
            created_at: NOW,
        })
        .await;
    assert!(matches!(taken, Err(DeviceError::SignatureKeyTaken)), "{taken:?}");

    // Only the owner removes a device; its KeyPackages go with it.
    store.add_key_packages(&phone, &[package(1, false, NOW + 100)], NOW).await.unwrap();
    assert!(!store.remove_device(&bob, &phone).await.unwrap());
    assert!(store.remove_device(&alice, &phone).await.unwrap());
    assert_eq!(store.key_package_device(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.devices_of(&alice).await.unwrap().len(), 1);

    // A new identity key drops the devices the old one signed.
    assert!(store.set_identity_key(&alice, b"key-2", NOW).await.unwrap());
    assert!(store.devices_of(&alice).await.unwrap().is_empty());
}

async fn key_packages_are_handed_out_once_even_concurrently(db: TestDb) {
    let store = db.store.clone();
    let alice = user(&store, "alice").await.id;
    let bob = user(&store, "bob").await.id;
    let laptop = device(&store, &alice).await;
    let mut packages: Vec<NewKeyPackage> = (1..=20).map(|n| package(n, false, NOW + 600)).collect();
    packages.push(package(99, true, NOW + 600));
    packages.push(package(50, false, NOW - 1)); // expired
    assert_eq!(store.add_key_packages(&laptop, &packages, NOW).await.unwrap(), 22);
    assert_eq!(store.add_key_packages(&laptop, &packages[..3], NOW).await.unwrap(), 0, "dup refs");
    let count = store.key_package_count(&laptop, NOW).await.unwrap();
    assert_eq!((count.available, count.has_last_resort), (20, true));

    let claims = race(30, |_| {
        let (store, alice, bob) = (store.clone(), alice.clone(), bob.clone());
        async move { store.claim_key_packages(&alice, &bob, None, NOW).await.unwrap() }
    })
    .await;
    let mut fresh = BTreeSet::new();
    let mut last_resort = 0;
    for claim in claims {
        assert_eq!(claim.len(), 1, "one KeyPackage per device");
        let claimed = &claim[0];
        assert_eq!(claimed.device_id, laptop);
        assert_eq!(claimed.data, vec![claimed.reference[0]; 100]);
        if claimed.last_resort {
            assert_eq!(claimed.reference, vec![99; 32]);
            last_resort += 1;
        } else {
            assert!(fresh.insert(claimed.reference.clone()), "handed out twice");
        }
    }
    assert_eq!((fresh.len(), last_resort), (20, 10));
    assert!(!fresh.contains(&vec![50; 32]), "an expired KeyPackage is never handed out");
    assert_eq!(store.key_package_count(&laptop, NOW).await.unwrap().available, 0);
    assert_eq!(
        store.key_package_device(&[7; 32]).await.unwrap(),
        Some((laptop.clone(), alice.clone())),
        "a claimed KeyPackage still names its device (for the Welcome)"
    );

    // A new last-resort KeyPackage replaces the old one.
    store.add_key_packages(&laptop, &[package(98, true, NOW + 600)], NOW).await.unwrap();
    let again = store.claim_key_packages(&alice, &bob, None, NOW).await.unwrap();
    assert_eq!(again[0].reference, vec![98; 32]);
    // Nothing to claim for a device without KeyPackages, nor for a user without devices.
    device(&store, &alice).await;
    assert_eq!(store.claim_key_packages(&alice, &bob, None, NOW).await.unwrap().len(), 1);
    assert!(store.claim_key_packages(&bob, &alice, None, NOW).await.unwrap().is_empty());
    // A user adding their own other devices leaves out the one asking.
    store.add_key_packages(&laptop, &[package(97, false, NOW + 600)], NOW).await.unwrap();
    let phone = device(&store, &alice).await;
    store.add_key_packages(&phone, &[package(96, false, NOW + 600)], NOW).await.unwrap();
    let own = store.claim_key_packages(&alice, &alice, Some(&laptop), NOW).await.unwrap();
    assert_eq!(own.iter().map(|c| c.device_id.as_str()).collect::<Vec<_>>(), [phone.as_str()]);
    assert_eq!(store.key_package_count(&laptop, NOW).await.unwrap().available, 1, "untouched");

    assert_eq!(store.prune_key_packages(NOW, NOW + 1).await.unwrap(), 22, "expired + claimed");
    assert!(store.key_package_count(&laptop, NOW).await.unwrap().has_last_resort);
}

async fn one_commit_per_epoch_even_concurrently(db: TestDb) {
    let store = db.store.clone();
    let alice = user(&store, "alice").await.id;
    let bob = user(&store, "bob").await.id;
    let laptop = device(&store, &alice).await;
    let conv = conversation(&store, &alice, &laptop, &bob).await;
    let record = store.conversation(&conv).await.unwrap().unwrap();
    assert_eq!((record.epoch, record.next_seq, record.kind), (0, 1, ConversationKind::Group));
    assert_eq!(
        record.members,
        vec![(alice.clone(), MemberRole::Admin), (bob.clone(), MemberRole::Member)]
    );

    let results = race(8, |i| {
        let (store, conv, laptop) = (store.clone(), conv.clone(), laptop.clone());
        async move {
            let data = vec![u8::try_from(i).unwrap(); 10];
            store.accept_commit(&commit(&conv, 0, &laptop, &data)).await
        }
    })
    .await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(DeliveryError::StaleEpoch { current: 1 })))
        .count();
    assert_eq!((accepted, stale), (1, 7), "{results:?}");
    let record = store.conversation(&conv).await.unwrap().unwrap();
    assert_eq!((record.epoch, record.next_seq), (1, 2));
    // The next epoch takes the next Commit; the group's log stays gapless.
    let next = store.accept_commit(&commit(&conv, 1, &laptop, b"c2")).await.unwrap();
    assert_eq!(next.seq, 2);
    let missing = store.accept_commit(&commit("nope", 0, &laptop, b"c")).await;
    assert!(matches!(missing, Err(DeliveryError::NotFound)), "{missing:?}");
}

async fn messages_reach_every_other_device_in_order(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice").await.id;
    let bob = user(store, "bob").await.id;
    let carol = user(store, "carol").await.id;
    let (laptop, phone) = (device(store, &alice).await, device(store, &alice).await);
    let bob1 = device(store, &bob).await;
    let carol1 = device(store, &carol).await;
    let conv = conversation(store, &alice, &laptop, &bob).await;

    // The Commit that adds alice's phone, bob and carol, with its Welcome.
    let added = [
        (phone.clone(), alice.clone()),
        (bob1.clone(), bob.clone()),
        (carol1.clone(), carol.clone()),
    ];
    let add = NewCommit {
        welcome: Some(NewWelcome { data: b"welcome", devices: &added }),
        group_info: Some(b"group-info-1"),
        ..commit(&conv, 0, &laptop, b"commit-1")
    };
    let delivered = store.accept_commit(&add).await.unwrap();
    assert_eq!(delivered.seq, 1);
    assert!(delivered.recipients.is_empty(), "nobody else was in the group yet");
    assert_eq!(delivered.welcomed.len(), 3);
    assert_eq!(store.group_info(&conv).await.unwrap().as_deref(), Some(&b"group-info-1"[..]));
    let members = store.conversation(&conv).await.unwrap().unwrap().members;
    assert_eq!(members.len(), 3, "carol became a member with her device");
    assert_eq!(store.conversation_ids_of(&carol).await.unwrap(), vec![conv.clone()]);
    let mut others = vec![alice.clone(), bob.clone()];
    others.sort();
    assert_eq!(store.conversation_peers(&carol).await.unwrap(), others, "once each, not carol");

    // Application messages at the current epoch go to every device but the sender's.
    for text in [&b"m1"[..], b"m2", b"m3"] {
        let message = application(&conv, 1, &bob1, text);
        let delivered = store.post_group_message(&message).await.unwrap();
        assert_eq!(delivered.recipients.len(), 3, "alice's two devices and carol's");
        let mut users = vec![alice.clone(), carol.clone()];
        users.sort();
        assert_eq!(delivered.users, users, "each user once");
    }
    let stale = application(&conv, 0, &bob1, b"old");
    assert!(matches!(
        store.post_group_message(&stale).await,
        Err(DeliveryError::StaleEpoch { current: 1 })
    ));

    // The phone syncs: the Welcome, then the messages in order, in pages.
    let page = store.inbox(&phone, 0, 2).await.unwrap();
    assert!(matches!(&page[0].body, InboxBody::Welcome { data } if data == b"welcome"));
    let InboxBody::Message { seq, epoch, content_type, sender_device, data } = &page[1].body else {
        panic!("{page:?}")
    };
    assert_eq!((*seq, *epoch, *content_type), (2, 1, ContentType::Application));
    assert_eq!((sender_device.as_deref(), data.as_slice()), (Some(bob1.as_str()), &b"m1"[..]));
    let rest = store.inbox(&phone, page[1].id, 10).await.unwrap();
    let texts: Vec<_> = rest
        .iter()
        .map(|i| match &i.body {
            InboxBody::Message { data, .. } => data.clone(),
            InboxBody::Welcome { .. } => panic!("one Welcome only"),
        })
        .collect();
    assert_eq!(texts, vec![b"m2".to_vec(), b"m3".to_vec()]);
    assert!(
        store.inbox(&bob1, 0, 10).await.unwrap().iter().all(|i| match &i.body {
            InboxBody::Message { sender_device, .. } => sender_device.as_deref() != Some(&bob1),
            InboxBody::Welcome { .. } => true,
        }),
        "the sender's own messages are not echoed to it"
    );

    // Carol's device is removed: it gets the Commit that removes it, nothing after.
    let removed = [carol1.clone()];
    let remove = NewCommit { removed_devices: &removed, ..commit(&conv, 1, &laptop, b"commit-2") };
    assert!(store.accept_commit(&remove).await.unwrap().recipients.contains(&carol1));
    let after = application(&conv, 2, &laptop, b"m4");
    let delivered = store.post_group_message(&after).await.unwrap();
    assert!(!delivered.recipients.contains(&carol1));
    let carol_last = store.inbox(&carol1, 0, 100).await.unwrap();
    assert!(
        matches!(&carol_last.last().unwrap().body, InboxBody::Message { data, .. } if data == b"commit-2")
    );

    // Acknowledged items are pruned after the retention; the log goes when nobody needs it.
    let last = rest.last().unwrap().id;
    assert_eq!(store.ack_inbox(&phone, last, NOW).await.unwrap(), 4);
    assert_eq!(store.ack_inbox(&phone, last, NOW).await.unwrap(), 0, "acked once");
    let (items, _) = store.prune_delivered(NOW, 0).await.unwrap();
    assert_eq!(items, 0, "not yet past the retention");
    let (items, messages) = store.prune_delivered(NOW + 1, NOW + 1).await.unwrap();
    // Of the log, only commit-1 goes: it reached no inbox (the group had one device), while
    // the messages the phone acknowledged are still in other devices' inboxes.
    assert_eq!((items, messages), (4, 1));
    assert_eq!(store.inbox(&phone, 0, 10).await.unwrap().len(), 2, "commit-2 and m4 remain");

    // Leaving stops delivery to the user's devices.
    assert!(store.remove_member(&conv, &bob).await.unwrap());
    let after_leave = NewGroupMessage { epoch: 2, data: b"m5", ..after };
    let delivered = store.post_group_message(&after_leave).await.unwrap();
    assert!(!delivered.recipients.contains(&bob1));
    assert_eq!(store.conversation_devices(&conv).await.unwrap().len(), 2);
}
