//! Three users with two devices each, on SQLite and on PostgreSQL: a group where every device
//! is a member (the creator's other device too), twenty messages from all six devices and a
//! file, with the server restarted halfway. Every device ends with the same conversation, in
//! order, and every device can open the file. A removed device and a user who left are taken
//! out of the MLS group by the next message's sender.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: a panic is the failure report

mod common;

use common::{texts, Backend, TestServer, PASSWORD};
use securevox_client::{Client, Content, Message};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

on_both_backends!(
    three_users_with_two_devices_each_chat_across_a_restart,
    removed_devices_and_users_who_left_are_removed_from_the_group
);

/// A second device of `laptop`'s user (`name`), in `dir/<name>-phone`, linked by `laptop`.
async fn link_phone(server: &TestServer, dir: &Path, laptop: &mut Client, name: &str) -> Client {
    let profile = dir.join(format!("{name}-phone"));
    let pending = Client::start_link(&server.base, &profile, name, PASSWORD).await.unwrap();
    laptop.approve_link(&pending.code()).await.unwrap();
    let phone = pending.wait(WAIT).await.unwrap();
    assert_eq!(laptop.devices().await.unwrap().len(), 2, "{name} has two devices");
    phone
}

/// A user's first device (registered with `invite`, or as the first user) and a second one
/// linked to it.
async fn user_with_two_devices(
    server: &TestServer,
    dir: &Path,
    name: &str,
    invite: Option<&str>,
) -> (Client, Client) {
    let first = dir.join(format!("{name}-laptop"));
    let mut laptop = Client::register(&server.base, &first, name, PASSWORD, invite).await.unwrap();
    let phone = link_phone(server, dir, &mut laptop, name).await;
    (laptop, phone)
}

/// A message's text, or "a file".
fn label(message: &Message) -> &str {
    match &message.content {
        Content::Text { body } => body,
        Content::File { .. } => "a file",
        other => panic!("unexpected {other:?}"),
    }
}

/// Syncs `device` and returns what it received, asserting that nothing went wrong.
async fn received(device: &mut Client, who: &str) -> Vec<Message> {
    let report = device.sync().await.unwrap();
    assert!(report.errors.is_empty() && report.warnings.is_empty(), "{who}: {report:?}");
    report.messages
}

async fn three_users_with_two_devices_each_chat_across_a_restart(backend: Backend) {
    let mut server = TestServer::start_on(&backend).await;
    let dirs = tempfile::tempdir().unwrap();
    let (alice, alice_phone) = user_with_two_devices(&server, dirs.path(), "alice", None).await;
    let invite = server.invite(&alice.profile().access_token).await;
    let (bob, bob_phone) = user_with_two_devices(&server, dirs.path(), "bob", Some(&invite)).await;
    let invite = server.invite(&alice.profile().access_token).await;
    let (carol, carol_phone) =
        user_with_two_devices(&server, dirs.path(), "carol", Some(&invite)).await;
    let names =
        ["alice laptop", "alice phone", "bob laptop", "bob phone", "carol laptop", "carol phone"];
    let mut devices = vec![alice, alice_phone, bob, bob_phone, carol, carol_phone];

    // Alice's laptop starts the group: all six devices are in it, her phone included.
    let id = devices[0].create_group("six devices", &["bob", "carol"]).await.unwrap();
    for (device, name) in devices.iter_mut().zip(&names).skip(1) {
        let report = device.sync().await.unwrap();
        assert_eq!(report.joined, std::slice::from_ref(&id), "{name}: {report:?}");
        assert!(report.errors.is_empty() && report.warnings.is_empty(), "{name}: {report:?}");
    }

    // Twenty messages, each device in turn, a file as the seventh; the server restarts after
    // the tenth. Every device reads along after each message.
    let file: Vec<u8> = (0..40_000u32).map(|n| (n * 7 % 253) as u8).collect();
    let source = dirs.path().join("minutes.pdf");
    std::fs::write(&source, &file).unwrap();
    let device_ids: Vec<String> =
        devices.iter().map(|d| d.device_id().unwrap().to_owned()).collect();
    let mut sent = Vec::new(); // (sender, label)
    let mut attachment = None;
    let mut seen: Vec<Vec<Message>> = vec![Vec::new(); devices.len()];
    for n in 0..20 {
        let from = n % devices.len();
        if n == 6 {
            let message = devices[from].send_file(&id, &source).await.unwrap();
            let Content::File { attachment: a, .. } = &message.content else { panic!("a file") };
            attachment = Some((from, a.clone()));
            sent.push((from, "a file".to_owned()));
        } else {
            let text = format!("message {n} from {}", names[from]);
            devices[from].send_text(&id, &text).await.unwrap();
            sent.push((from, text));
        }
        if n == 9 {
            server.restart().await;
        }
        for (to, device) in devices.iter_mut().enumerate() {
            if to != from {
                seen[to].extend(received(device, names[to]).await);
            }
        }
    }

    // Every device has what the other five sent, in the order sent, from the right device.
    for (to, messages) in seen.iter().enumerate() {
        let want: Vec<(&str, &str)> = sent
            .iter()
            .filter(|(from, _)| *from != to)
            .map(|(from, label)| (device_ids[*from].as_str(), label.as_str()))
            .collect();
        let got: Vec<(&str, &str)> =
            messages.iter().map(|m| (m.sender_device_id.as_str(), label(m))).collect();
        assert_eq!(got, want, "{}", names[to]);
        assert!(messages.iter().all(|m| m.conversation_id == id && !m.outgoing));
    }
    // The file (the seventh message) opens on the five other devices.
    let (sender, attachment) = attachment.unwrap();
    for (to, device) in devices.iter_mut().enumerate().filter(|(to, _)| *to != sender) {
        let out = dirs.path().join(format!("received-{to}.pdf"));
        let fetched = device.fetch_file(&id, &attachment, &out).await.unwrap();
        assert_eq!(fetched.name, "minutes.pdf", "{}", names[to]);
        assert_eq!(std::fs::read(&out).unwrap(), file, "{}", names[to]);
    }
    // Each device's own log holds the whole conversation: its sent and received messages.
    for (to, device) in devices.iter().enumerate() {
        assert_eq!(device.history(Some(&id)).unwrap().len(), 20, "{}", names[to]);
    }
    // Nothing is left over, and safety numbers agree across each user's devices.
    for (to, device) in devices.iter_mut().enumerate() {
        assert!(received(device, names[to]).await.is_empty(), "{}", names[to]);
    }
    let from_alice = devices[0].safety_number("bob").await.unwrap();
    assert_eq!(devices[1].safety_number("bob").await.unwrap(), from_alice);
    assert_eq!(devices[2].safety_number("alice").await.unwrap(), from_alice);
    assert_eq!(devices[3].safety_number("alice").await.unwrap(), from_alice);
    drop(devices);
    server.stop().await;
}

async fn removed_devices_and_users_who_left_are_removed_from_the_group(backend: Backend) {
    let server = TestServer::start_on(&backend).await;
    let dirs = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = server.pair(dirs.path(), "alice", "bob").await;
    let mut phone = link_phone(&server, dirs.path(), &mut bob, "bob").await;
    let invite = server.invite(&alice.profile().access_token).await;
    let mut carol = Client::register(
        &server.base,
        &dirs.path().join("carol"),
        "carol",
        PASSWORD,
        Some(&invite),
    )
    .await
    .unwrap();
    let id = alice.create_group("team", &["bob", "carol"]).await.unwrap();
    for device in [&mut bob, &mut phone, &mut carol] {
        assert_eq!(device.sync().await.unwrap().joined, std::slice::from_ref(&id));
    }
    let identity = |c: &Client| format!("{}:{}", c.user_id(), c.device_id().unwrap());
    let phone_leaf = identity(&phone);
    assert_eq!(alice.members(&id).unwrap().len(), 4);

    // Bob's phone is lost: his laptop removes it. Alice's next message first removes its leaf
    // (a Commit), so that the phone could not read it even given the ciphertext.
    let phone_id = phone.device_id().unwrap().to_owned();
    assert!(bob.remove_device(bob.device_id().unwrap().to_owned().as_str()).await.is_err());
    bob.remove_device(&phone_id).await.unwrap();
    alice.send_text(&id, "one").await.unwrap();
    assert!(!alice.members(&id).unwrap().contains(&phone_leaf));
    // Bob's laptop, a Commit behind, finds the phone gone too: its own removal meets a stale
    // epoch, it syncs, and the phone is out already: it sends without another Commit.
    bob.send_text(&id, "two").await.unwrap();
    assert_eq!(texts(&received(&mut carol, "carol").await), ["one", "two"]);
    assert_eq!(texts(&received(&mut alice, "alice").await), ["two"]);
    for device in [&alice, &bob, &carol] {
        let members = device.members(&id).unwrap();
        assert_eq!(members.len(), 3, "{members:?}");
        assert!(!members.contains(&phone_leaf));
    }
    // The phone hears nothing more: the server has no such device.
    assert!(phone.sync().await.is_err());

    // Carol leaves; bob's next message removes her leaf, and she gets nothing after it.
    let carol_leaf = identity(&carol);
    carol.leave(&id).await.unwrap();
    assert!(carol.members(&id).is_err(), "carol's device forgot the group");
    bob.send_text(&id, "just us").await.unwrap();
    assert_eq!(texts(&received(&mut alice, "alice").await), ["just us"]);
    for device in [&alice, &bob] {
        let members = device.members(&id).unwrap();
        assert_eq!(members.len(), 2, "{members:?}");
        assert!(!members.contains(&carol_leaf));
    }
    assert!(received(&mut carol, "carol").await.is_empty());
    drop((alice, bob, phone, carol));
    server.stop().await;
}
