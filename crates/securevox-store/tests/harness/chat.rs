//! Chat fixtures shared by the delivery and inbox suites.

use securevox_domain::delivery::{ContentType, ConversationKind};
use securevox_store::{
    Delivered, NewCommit, NewConversation, NewDevice, NewGroupMessage, NewWelcome, Store,
};
use uuid::Uuid;

pub const NOW: i64 = 1_800_000_000;

pub async fn device(store: &Store, user_id: &str) -> String {
    let id = Uuid::new_v4().to_string();
    let key = Uuid::new_v4().as_bytes().to_vec();
    store
        .add_device(&NewDevice {
            id: &id,
            user_id,
            name: Some("laptop"),
            signature_key: &key,
            identity_signature: b"signature",
            created_at: NOW,
        })
        .await
        .unwrap();
    id
}

/// A conversation of alice's `laptop` with bob as a member (no device of his in it yet).
pub async fn conversation(store: &Store, alice: &str, laptop: &str, bob: &str) -> String {
    let id = Uuid::new_v4().to_string();
    store
        .create_conversation(&NewConversation {
            id: &id,
            kind: ConversationKind::Group,
            name: Some("team"),
            creator: alice,
            creator_device: laptop,
            members: &[bob.to_owned()],
            now: NOW,
        })
        .await
        .unwrap();
    id
}

pub fn commit<'a>(
    conversation_id: &'a str,
    epoch: i64,
    sender: &'a str,
    data: &'a [u8],
) -> NewCommit<'a> {
    NewCommit {
        conversation_id,
        epoch,
        sender_device: sender,
        data,
        group_info: None,
        welcome: None,
        removed_devices: &[],
        joining_user: None,
        now: NOW,
    }
}

pub fn application<'a>(
    conversation_id: &'a str,
    epoch: i64,
    sender: &'a str,
    data: &'a [u8],
) -> NewGroupMessage<'a> {
    NewGroupMessage {
        conversation_id,
        epoch,
        content_type: ContentType::Application,
        sender_device: sender,
        data,
        now: NOW,
    }
}

/// Accepts the epoch-0 Commit of `sender` in `conv` that welcomes `added` (device, user).
pub async fn welcome(
    store: &Store,
    conv: &str,
    sender: &str,
    added: &[(String, String)],
    group_info: Option<&[u8]>,
) -> Delivered {
    let add = NewCommit {
        welcome: Some(NewWelcome { data: b"welcome", devices: added }),
        group_info,
        ..commit(conv, 0, sender, b"commit-1")
    };
    store.accept_commit(&add).await.unwrap()
}

/// Alice (device `laptop`) and bob (device `bob1`) in a group at epoch 1.
pub struct Pair {
    pub alice: String,
    pub bob: String,
    pub laptop: String,
    pub bob1: String,
    pub conv: String,
    /// What the Commit that welcomed bob queued.
    pub delivered: Delivered,
}

pub async fn pair_in_a_group(store: &Store, group_info: Option<&[u8]>) -> Pair {
    let alice = super::user(store, "alice").await.id;
    let bob = super::user(store, "bob").await.id;
    let laptop = device(store, &alice).await;
    let bob1 = device(store, &bob).await;
    let conv = conversation(store, &alice, &laptop, &bob).await;
    let delivered =
        welcome(store, &conv, &laptop, &[(bob1.clone(), bob.clone())], group_info).await;
    Pair { alice, bob, laptop, bob1, conv, delivered }
}
