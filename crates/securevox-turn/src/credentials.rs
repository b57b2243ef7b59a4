//! The TURN REST check (T2): a username carries its own expiry, `"<unix expiry>:<user>"`, and
//! its password is `base64(HMAC-SHA1(secret, username))`. The TURN protocol crate only knows a
//! static user table, so every username is checked here first: an expired or malformed one is
//! refused before it can reach the table, and only usernames whose message integrity verified
//! under the derived password are added to it.

/// Why a username was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the username is not \"<unix expiry>:<user>\"")]
    Malformed,
    #[error("the credentials have expired")]
    Expired,
}

/// What the REST scheme says about a username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestUser {
    /// Unix seconds after which the username is refused.
    pub expires_at: i64,
    /// The part after the first `:`; the whole username when there is none (coturn accepts a
    /// bare expiry).
    pub user: String,
}

/// Parses `username` and checks its expiry against `now` (Unix seconds). A username is valid
/// up to and including its expiry second.
pub fn check(username: &str, now: i64) -> Result<RestUser, CredentialError> {
    let (expiry, user) = username.split_once(':').unwrap_or((username, username));
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || user.is_empty() {
        return Err(CredentialError::Malformed);
    }
    let expires_at: i64 = expiry.parse().map_err(|_| CredentialError::Malformed)?;
    if expires_at < now {
        return Err(CredentialError::Expired);
    }
    Ok(RestUser { expires_at, user: user.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_enforced_to_the_second() {
        let user = check("1000:alice", 1000).unwrap();
        assert_eq!(user, RestUser { expires_at: 1000, user: "alice".into() });
        assert_eq!(check("1000:alice", 1001), Err(CredentialError::Expired));
        assert_eq!(check("999", 100).unwrap().user, "999", "a bare expiry is a username too");
    }

    #[test]
    fn malformed_usernames_are_refused() {
        for bad in
            ["", ":alice", "alice", "12a:alice", "-5:alice", "1000:", "99999999999999999999:x"]
        {
            assert_eq!(check(bad, 0), Err(CredentialError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn user_part_may_hold_colons() {
        assert_eq!(check("50:a:b", 10).unwrap().user, "a:b");
    }
}
