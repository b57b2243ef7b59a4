#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! The server's JSON shapes this client reads, and the internal kinds of change and outcome.

use super::*;

#[derive(Deserialize)]
pub(super) struct AuthResponse {
    pub(super) access_token: String,
    pub(super) refresh_token: String,
    pub(super) session_id: String,
    pub(super) user: User,
}

#[derive(Deserialize)]
pub(super) struct IdView {
    pub(super) id: String,
}

/// The part of `GET /api/v1/conversations/{id}` the roster check reads.
#[derive(Deserialize)]
pub(super) struct ConversationDevices {
    #[serde(default)]
    pub(super) devices: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct GroupInfoView {
    pub(super) group_info: String,
}

#[derive(Deserialize)]
pub(super) struct Relayed {
    pub(super) devices: usize,
}

#[derive(Deserialize)]
pub(super) struct Accepted {
    pub(super) seq: i64,
}

#[derive(Deserialize)]
pub(super) struct KeyPackageStatus {
    pub(super) has_last_resort: bool,
    pub(super) low: bool,
}

#[derive(Deserialize)]
pub(super) struct Claimed {
    pub(super) key_packages: Vec<ClaimedKeyPackage>,
}

#[derive(Deserialize)]
pub(super) struct ClaimedKeyPackage {
    pub(super) device_id: String,
    pub(super) key_package: String,
}

#[derive(Deserialize)]
pub(super) struct UserKeys {
    pub(super) identity_key: Option<String>,
    pub(super) devices: Vec<DeviceSignature>,
}

#[derive(Deserialize)]
pub(super) struct DeviceSignature {
    pub(super) id: String,
    pub(super) signature_key: String,
    pub(super) identity_signature: String,
}

#[derive(Deserialize)]
pub(super) struct InboxPage {
    pub(super) items: Vec<InboxItem>,
    pub(super) next_after: i64,
    pub(super) more: bool,
}

#[derive(Deserialize)]
pub(super) struct InboxItem {
    pub(super) id: i64,
    /// Pushed items: the device's item before this one.
    #[serde(default)]
    pub(super) prev: Option<i64>,
    pub(super) conversation_id: String,
    pub(super) kind: String,
    pub(super) seq: Option<i64>,
    pub(super) sender_device: Option<String>,
    pub(super) data: String,
    pub(super) created_at: String,
}

/// A change to a group's membership or keys, made by a Commit.
pub(super) enum Change<'a> {
    Add(&'a [KeyPackage]),
    /// Every device of this user.
    Remove(&'a str),
    /// These devices (`<user id>:<device id>`), gone from the conversation: removing none
    /// (someone else did already) is no change.
    RemoveGone(&'a [String]),
    Update,
}

pub(super) enum Handled {
    /// This device was removed from the conversation.
    Removed(String),
    Message(Box<Message>),
    Joined(String),
    Commit,
    Nothing,
}
