//! Linking a second device to an identity, against the real server: the new device asks,
//! the signed-in one approves by the code, the new device gets the identity key, joins the
//! user's conversations by external Commit and chats there; the safety number does not move.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{texts, TestServer, PASSWORD};
use securevox_client::{safety, Client, Error};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_device_joins_the_identity_and_its_conversations() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let dir = |name: &str| dirs.path().join(name);

    let mut laptop =
        Client::register(&server.base, &dir("laptop"), "alice", PASSWORD, None).await.unwrap();
    let invite = server.invite(&laptop.profile().access_token).await;
    let mut bob =
        Client::register(&server.base, &dir("bob"), "bob", PASSWORD, Some(&invite)).await.unwrap();
    let group = laptop.create_group("team", &["bob"]).await.unwrap();
    bob.sync().await.unwrap();
    laptop.send_text(&group, "before the phone").await.unwrap();
    let safety_before = bob.safety_number("alice").await.unwrap();

    // Logging in on a new machine does not silently replace the identity.
    let refused = Client::login(&server.base, &dir("phone"), "alice", PASSWORD).await.unwrap_err();
    assert!(matches!(refused, Error::LinkRequired), "{refused}");
    assert_eq!(refused.code(), Some("link_required"));

    // The phone asks; the laptop sees the request with the same code.
    let pending = Client::start_link(&server.base, &dir("phone"), "alice", PASSWORD).await.unwrap();
    let requests = laptop.link_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].code, safety::digits_of(&pending.code()));
    assert_eq!(requests[0].id, pending.id());

    // A code that no request shows approves nothing.
    let wrong = laptop.approve_link("0000 0000 0000 0000").await.unwrap_err();
    assert!(wrong.to_string().contains("no pending link request"), "{wrong}");
    // Bob cannot see or answer alice's requests.
    assert!(bob.link_requests().await.unwrap().is_empty());
    assert!(bob.approve_link(&pending.code()).await.is_err());

    let device = laptop.approve_link(&pending.code()).await.unwrap();
    let mut phone = pending.wait(WAIT).await.unwrap();
    assert_eq!(phone.device_id().unwrap(), device.id);
    assert_eq!(laptop.devices().await.unwrap().len(), 2, "both devices are alice's");
    assert_eq!(
        phone.profile().identity_seed,
        laptop.profile().identity_seed,
        "the phone holds the identity key"
    );

    // The identity did not change: bob's safety number stays, and bob's client accepts the
    // phone as vouched for by alice's identity key.
    assert_eq!(bob.safety_number("alice").await.unwrap(), safety_before);
    let report = bob.sync().await.unwrap();
    assert!(report.errors.is_empty() && report.warnings.is_empty(), "{report:?}");
    let report = laptop.sync().await.unwrap();
    assert!(report.errors.is_empty() && report.warnings.is_empty(), "{report:?}");

    // The phone joined the group (external Commit) and chats there; history from before it
    // joined stays on the laptop (forward secrecy).
    bob.send_text(&group, "hello both").await.unwrap();
    let report = phone.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(texts(&report.messages), ["hello both"]);
    phone.send_text(&group, "from the phone").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap().messages), ["from the phone"]);
    assert_eq!(texts(&laptop.sync().await.unwrap().messages), ["hello both", "from the phone"]);

    // The phone can link a third device itself: it holds the identity key now.
    let tablet = Client::start_link(&server.base, &dir("tablet"), "alice", PASSWORD).await.unwrap();
    phone.approve_link(&tablet.code()).await.unwrap();
    let mut tablet = tablet.wait(WAIT).await.unwrap();
    bob.sync().await.unwrap();
    bob.send_text(&group, "hello three").await.unwrap();
    assert_eq!(texts(&tablet.sync().await.unwrap().messages), ["hello three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_unanswered_link_sets_nothing_up() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let mut laptop =
        Client::register(&server.base, &dirs.path().join("laptop"), "alice", PASSWORD, None)
            .await
            .unwrap();

    let phone = dirs.path().join("phone");
    let pending = Client::start_link(&server.base, &phone, "alice", PASSWORD).await.unwrap();
    laptop.reject_link(pending.id()).await.unwrap();
    let error = pending.wait(WAIT).await.unwrap_err();
    assert!(error.to_string().contains("rejected"), "{error}");
    assert!(!phone.join("profile.json").exists(), "no profile for a rejected device");
    assert_eq!(laptop.devices().await.unwrap().len(), 1);
    assert!(laptop.reject_link("no-such-request").await.is_err());

    // Unanswered: the wait gives up.
    let other = dirs.path().join("other");
    let pending = Client::start_link(&server.base, &other, "alice", PASSWORD).await.unwrap();
    let error = pending.wait(Duration::from_millis(500)).await.unwrap_err();
    assert!(error.to_string().contains("in time"), "{error}");

    // A lost last device: a new identity replaces the old one, with its devices.
    let fresh = dirs.path().join("fresh");
    let mut fresh =
        Client::login_new_identity(&server.base, &fresh, "alice", PASSWORD).await.unwrap();
    let devices = fresh.devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].current);
}
