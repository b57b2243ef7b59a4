//! End-to-end encrypted chat as the server sees it (C1–C3): conversations are MLS groups, the
//! server is their Delivery Service and key directory. It handles MLS objects as opaque bytes
//! plus the few public facts their headers carry (group id, epoch, content type); nothing here
//! is plaintext.

use serde::{Deserialize, Serialize};

/// A one-to-one conversation or a named group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        if text == "direct" {
            Self::Direct
        } else {
            Self::Group
        }
    }
}

/// What a member may do: admins add and remove members and rename the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Admin,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        if text == "admin" {
            Self::Admin
        } else {
            Self::Member
        }
    }
}

/// The content type in an MLS message's public header (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    Application,
    Proposal,
    Commit,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Proposal => "proposal",
            Self::Commit => "commit",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        match text {
            "commit" => Self::Commit,
            "proposal" => Self::Proposal,
            _ => Self::Application,
        }
    }
}

/// A device's MLS credential identity: `"<user id>:<device id>"`.
pub fn credential_identity(user_id: &str, device_id: &str) -> String {
    format!("{user_id}:{device_id}")
}

/// KeyPackages a device keeps on the server; below [`KEY_PACKAGES_LOW`] clients are told to
/// upload more.
pub const KEY_PACKAGES_MAX: u64 = 200;
pub const KEY_PACKAGES_LOW: u64 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for kind in [ConversationKind::Direct, ConversationKind::Group] {
            assert_eq!(ConversationKind::from_stored(kind.as_str()), kind);
        }
        for role in [MemberRole::Admin, MemberRole::Member] {
            assert_eq!(MemberRole::from_stored(role.as_str()), role);
        }
        for t in [ContentType::Application, ContentType::Proposal, ContentType::Commit] {
            assert_eq!(ContentType::from_stored(t.as_str()), t);
        }
        assert_eq!(credential_identity("u1", "d1"), "u1:d1");
    }
}
