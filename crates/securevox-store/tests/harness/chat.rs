//! Chat fixtures shared by the delivery and inbox suites.

use securevox_domain::delivery::{ContentType, ConversationKind};
use securevox_store::{NewCommit, NewConversation, NewDevice, NewGroupMessage, Store};
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
