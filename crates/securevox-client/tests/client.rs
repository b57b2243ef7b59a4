//! The client library against the real server: registration, a group, messages both ways, a
//! file, safety numbers, and a profile reloaded from disk.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{texts, TestServer, PASSWORD};
use securevox_client::{Client, Content};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_talk_share_files_and_survive_a_restart() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = (dirs.path().join("alice"), dirs.path().join("bob"));

    // The first account is the admin and needs no invite; bob needs one.
    let mut alice =
        Client::register(&server.base, &alice_dir, "alice", PASSWORD, None).await.unwrap();
    let invite = server.invite(&alice.profile().access_token).await;
    let mut bob =
        Client::register(&server.base, &bob_dir, "bob", PASSWORD, Some(&invite)).await.unwrap();
    assert_eq!(alice.devices().await.unwrap().len(), 1);
    assert!(alice.devices().await.unwrap()[0].current);

    // Key material is private on disk.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["profile.json", "mls.json"] {
            let mode = std::fs::metadata(alice_dir.join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    let contact = alice.add_contact("bob").await.unwrap();
    assert_eq!(contact.id, bob.user_id());

    // A group; bob joins from the Welcome.
    let id = alice.create_group("team", &["bob"]).await.unwrap();
    let report = bob.sync().await.unwrap();
    assert_eq!(report.joined, vec![id.clone()], "{report:?}");
    assert!(report.errors.is_empty() && report.warnings.is_empty(), "{report:?}");

    // Messages both ways.
    alice.send_text(&id, "hello bob").await.unwrap();
    alice.send_text(&id, "second").await.unwrap();
    let report = bob.sync().await.unwrap();
    assert_eq!(texts(&report.messages), ["hello bob", "second"]);
    assert_eq!(report.messages[0].sender_user_id, alice.user_id());
    assert!(report.errors.is_empty(), "{report:?}");
    bob.send_text(&id, "hi alice").await.unwrap();
    let report = alice.sync().await.unwrap();
    assert_eq!(texts(&report.messages), ["hi alice"]);
    assert_eq!(report.messages[0].sender_user_id, bob.user_id());

    // The log keeps the history of both directions.
    assert_eq!(texts(&alice.history(Some(&id)).unwrap()), ["hello bob", "second", "hi alice"]);
    assert_eq!(texts(&bob.history(None).unwrap()), ["hello bob", "second", "hi alice"]);

    // A file round trip.
    let file: Vec<u8> = (0..50_000u32).map(|n| (n % 251) as u8).collect();
    let source = dirs.path().join("photo.bin");
    std::fs::write(&source, &file).unwrap();
    let sent = alice.send_file(&id, &source).await.unwrap();
    let Content::File { attachment, .. } = &sent.content else { panic!("not a file message") };
    let out = dirs.path().join("received.bin");
    let fetched = bob.fetch_file(&id, attachment, &out).await.unwrap();
    assert_eq!(fetched.name, "photo.bin");
    assert_eq!(std::fs::read(&out).unwrap(), file);

    // Safety numbers agree.
    let a = alice.safety_number("bob").await.unwrap();
    let b = bob.safety_number("alice").await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 60);

    // One client per profile at a time; a client reopened from disk still decrypts and sends.
    let error = Client::open(&bob_dir).unwrap_err();
    assert!(error.to_string().contains("in use"), "{error}");
    drop(bob);
    let mut bob = Client::open(&bob_dir).unwrap();
    alice.send_text(&id, "after restart").await.unwrap();
    let report = bob.sync().await.unwrap();
    assert_eq!(texts(&report.messages), ["after restart"], "{report:?}");
    bob.send_text(&id, "still here").await.unwrap();
    drop(alice);
    let mut alice = Client::open(&alice_dir).unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap().messages), ["still here"]);

    // A third user is added to the existing group and reads new messages.
    let invite = server.invite(&alice.profile().access_token).await;
    let carol_dir = dirs.path().join("carol");
    let mut carol =
        Client::register(&server.base, &carol_dir, "carol", PASSWORD, Some(&invite)).await.unwrap();
    alice.add_to_group(&id, "carol").await.unwrap();
    let report = carol.sync().await.unwrap();
    assert_eq!(report.joined, vec![id.clone()]);
    assert!(report.warnings.is_empty(), "all three are vouched for: {report:?}");
    bob.send_text(&id, "welcome carol").await.unwrap(); // bob is behind: stale epoch, sync, retry
    assert_eq!(texts(&carol.sync().await.unwrap().messages), ["welcome carol"]);
    let report = alice.sync().await.unwrap();
    assert_eq!(texts(&report.messages), ["welcome carol"], "{report:?}");

    // Bob updates his keys; alice, a Commit behind, removes carol: her Commit is refused
    // (stale epoch), she syncs and retries. Carol learns she is out and hears nothing more.
    bob.update_keys(&id).await.unwrap();
    alice.remove_from_group(&id, "carol").await.unwrap();
    let report = carol.sync().await.unwrap();
    assert_eq!((report.commits, report.removed_from.clone()), (1, vec![id.clone()]), "{report:?}");
    assert!(carol.send_text(&id, "let me in").await.is_err());
    bob.send_text(&id, "just us").await.unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap().messages), ["just us"]);
    assert!(carol.sync().await.unwrap().messages.is_empty());

    // Logging in again in the same directory keeps the device and the groups.
    drop(alice);
    let mut alice = Client::login(&server.base, &alice_dir, "alice", PASSWORD).await.unwrap();
    assert_eq!(alice.devices().await.unwrap().len(), 1);
    alice.send_text(&id, "same device").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap().messages), ["same device"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_packages_are_topped_up_and_errors_are_clear() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut admin, mut bob) = server.pair(dirs.path(), "admin", "bob").await;
    // Each group claims one of bob's KeyPackages; below 10 left, bob's sync uploads more.
    for n in 0..12 {
        admin.create_group(&format!("g{n}"), &["bob"]).await.unwrap();
    }
    let report = bob.sync().await.unwrap();
    assert_eq!(report.joined.len(), 12);
    assert_eq!(report.key_packages_uploaded, securevox_client::KEY_PACKAGE_BATCH);

    // Errors carry the server's code.
    let error = admin.find_user("nobody").await.unwrap_err();
    assert!(error.to_string().contains("no user named nobody"), "{error}");
    let error = Client::register(&server.base, &dirs.path().join("x"), "x1", PASSWORD, None)
        .await
        .unwrap_err();
    assert!(error.code().is_some(), "{error}");
    let error = admin.send_text("00000000-0000-0000-0000-000000000000", "x").await.unwrap_err();
    assert!(error.to_string().contains("not in conversation"), "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_catches_up_in_order_across_a_server_restart() {
    let mut server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = server.pair(dirs.path(), "alice", "bob").await;
    let id = alice.create_group("team", &["bob"]).await.unwrap();
    // Bob is offline: he has not even processed the Welcome. Alice writes, the server
    // restarts, alice writes more.
    for n in 0..3 {
        alice.send_text(&id, &format!("before restart {n}")).await.unwrap();
    }
    server.restart().await;
    alice.send_text(&id, "after restart").await.unwrap();
    let report = bob.sync().await.unwrap();
    assert_eq!(report.joined, vec![id.clone()]);
    assert_eq!(
        texts(&report.messages),
        ["before restart 0", "before restart 1", "before restart 2", "after restart"]
    );
    assert!(report.errors.is_empty(), "{report:?}");
    server.stop().await;
}
