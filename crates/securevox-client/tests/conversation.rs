//! What people do to messages, end to end through the real server: reactions, edits,
//! deletions and read receipts travel as MLS application messages and fold into the same
//! timeline on both sides; only a message's sender can edit or delete it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::TestServer;
use securevox_client::{Content, ReceiptStatus, TimelineEntry};

fn body(entry: &TimelineEntry) -> &str {
    match &entry.message.content {
        Content::Text { body } => body,
        other => panic!("not a text: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_edits_deletions_and_receipts_agree_on_both_sides() {
    let server = TestServer::start().await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = server.pair(dirs.path(), "alice", "bob").await;
    let id = alice.create_group("team", &["bob"]).await.unwrap();
    bob.sync().await.unwrap();

    let hello = alice.send_text(&id, "helo").await.unwrap().seq.unwrap();
    let oops = alice.send_text(&id, "wrong chat").await.unwrap().seq.unwrap();
    bob.sync().await.unwrap();
    let reply = bob.send_text(&id, "hi!").await.unwrap().seq.unwrap();

    bob.react(&id, hello, "👍", false).await.unwrap();
    bob.react(&id, hello, "🎉", false).await.unwrap();
    bob.react(&id, hello, "🎉", true).await.unwrap(); // taken back
    alice.sync().await.unwrap();
    alice.react(&id, hello, "👍", false).await.unwrap();
    alice.edit(&id, hello, "hello").await.unwrap();
    alice.delete(&id, oops).await.unwrap();
    bob.sync().await.unwrap();
    bob.send_receipt(&id, ReceiptStatus::Read, &[hello, oops]).await.unwrap();

    // Only the sender edits or deletes: the client refuses, and a forged edit sent anyway is
    // ignored by everyone's timeline.
    assert!(bob.edit(&id, hello, "bob's words").await.is_err());
    assert!(bob.delete(&id, hello).await.is_err());
    let forged = Content::Edit { target: hello, body: "bob's words".into() };
    bob.send_content(&id, forged).await.unwrap();
    alice.sync().await.unwrap();

    for (who, client) in [("alice", &alice), ("bob", &bob)] {
        let timeline = client.timeline(&id).unwrap();
        assert_eq!(timeline.len(), 3, "{who}: hello, the deleted message, the reply");
        let first = &timeline[0];
        assert_eq!((body(first), first.edited), ("hello", true), "{who}");
        assert_eq!(first.reactions.len(), 1, "{who}: 🎉 was taken back");
        assert_eq!(first.reactions["👍"].len(), 2, "{who}");
        assert!(first.read_by.contains(bob.user_id()), "{who}");
        assert!(timeline[1].deleted && body(&timeline[1]).is_empty(), "{who}");
        assert_eq!(timeline[2].message.seq, Some(reply));
        assert!(timeline[2].read_by.is_empty(), "{who}: bob's own message is not read by bob");
    }
}
