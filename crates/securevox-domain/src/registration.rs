//! Who may create an account on this server.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Registration policy. A private community server defaults to `invite`: the very first account
/// registers without a code (and becomes admin); everyone after needs an invite code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    Open,
    #[default]
    Invite,
    Closed,
}

impl RegistrationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }
}

impl FromStr for RegistrationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            "closed" => Ok(Self::Closed),
            other => Err(format!("unknown registration mode {other:?} (open, invite, closed)")),
        }
    }
}
