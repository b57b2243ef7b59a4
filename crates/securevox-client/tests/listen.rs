//! Staying connected with the client's own Socket.IO connection: a listening device gets
//! messages and typing as they happen, keeps listening across a server restart (reconnects
//! and syncs, so nothing sent meanwhile is lost), and cannot speak for another's device.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{texts, TestServer};
use securevox_client::live::Live;
use securevox_client::{Content, Update};
use std::time::Duration;
use tokio::sync::mpsc;

/// The next update that satisfies `want`, within ten seconds.
async fn next(
    updates: &mut mpsc::UnboundedReceiver<Update>,
    want: impl Fn(&Update) -> bool,
) -> Update {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let update = updates.recv().await.expect("the listener stopped");
            if want(&update) {
                return update;
            }
        }
    });
    found.await.expect("the expected update did not come")
}

fn synced_texts(update: &Update) -> Vec<String> {
    match update {
        Update::Synced(report) => texts(&report.messages),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_device_gets_messages_live_and_across_a_restart() {
    let mut server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = server.pair(dirs.path(), "alice", "bob").await;

    // Nobody speaks for a device that is not theirs.
    let refused =
        Live::connect(&server.base, &bob.profile().access_token, Some(alice.device_id().unwrap()))
            .await
            .unwrap_err();
    assert_eq!(refused.code(), Some("not_found"), "{refused}");
    let refused = Live::connect(&server.base, "not-a-token", None).await.unwrap_err();
    assert!(refused.code().is_some(), "{refused}");

    let id = alice.create_group("team", &["bob"]).await.unwrap();
    let (tx, mut updates) = mpsc::unbounded_channel();
    let listener = tokio::spawn(async move {
        Box::pin(bob.listen(|update| tx.send(update).is_ok())).await.unwrap();
        bob
    });
    // The first connection syncs: bob joins from the Welcome.
    next(&mut updates, |u| matches!(u, Update::Connected)).await;
    next(&mut updates, |u| matches!(u, Update::Synced(r) if r.joined == [id.clone()])).await;

    alice.send_text(&id, "live one").await.unwrap();
    let update = next(&mut updates, |u| matches!(u, Update::Synced(_))).await;
    assert_eq!(synced_texts(&update), ["live one"]);
    alice.send_typing(&id, true).await.unwrap();
    let Update::Ephemeral(typing) = next(&mut updates, |u| matches!(u, Update::Ephemeral(_))).await
    else {
        unreachable!()
    };
    assert_eq!(typing.content, Content::Typing { active: true });

    // The server restarts; what alice sends while bob is away reaches him when he is back.
    server.restart().await;
    next(&mut updates, |u| matches!(u, Update::Disconnected(_))).await;
    alice.send_text(&id, "while you were away").await.unwrap();
    let update = next(&mut updates, |u| !synced_texts(u).is_empty()).await;
    assert_eq!(synced_texts(&update), ["while you were away"]);
    alice.send_text(&id, "and live again").await.unwrap();
    let update = next(&mut updates, |u| !synced_texts(u).is_empty()).await;
    assert_eq!(synced_texts(&update), ["and live again"]);

    // Returning false ends the listener; the profile holds everything it applied.
    drop(updates);
    alice.send_text(&id, "bye").await.unwrap();
    let bob = tokio::time::timeout(Duration::from_secs(10), listener).await.unwrap().unwrap();
    assert_eq!(
        texts(&bob.history(Some(&id)).unwrap()),
        ["live one", "while you were away", "and live again", "bye"]
    );
}
