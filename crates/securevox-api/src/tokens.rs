//! Access tokens: short-lived HS256 JWTs that name a user and the device session they belong to;
//! and per-call tokens (K2), which name a user and one call and let a socket into that call only.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use securevox_domain::call::CallRole;
use securevox_domain::clock;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    /// Always `access`, so other token kinds signed with the same key are never accepted here.
    pub typ: String,
}

/// Claims of a per-call token. `typ` is `call`, so it is never taken for an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallClaims {
    /// User id.
    pub sub: String,
    /// Call (session) id.
    pub sid: String,
    pub role: CallRole,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_s: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

impl AccessTokens {
    pub fn new(secret: &[u8], ttl_s: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_s,
        }
    }

    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    pub fn issue(&self, user_id: &str, session_id: &str) -> String {
        let now = clock::now();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + self.ttl_s as i64,
            typ: "access".into(),
        };
        // HS256 signing of a serialisable struct cannot fail.
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let claims: AccessClaims = self.decode(token)?;
        if claims.typ == "access" {
            Ok(claims)
        } else {
            Err(TokenError::Invalid)
        }
    }

    /// A per-call token for `user_id` in `call_id`, valid for `ttl_s`; returns it and its expiry.
    pub fn issue_call(
        &self,
        user_id: &str,
        call_id: &str,
        role: CallRole,
        ttl_s: u64,
    ) -> (String, i64) {
        let now = clock::now();
        let claims = CallClaims {
            sub: user_id.to_owned(),
            sid: call_id.to_owned(),
            role,
            iat: now,
            exp: now + ttl_s as i64,
            typ: "call".into(),
        };
        let exp = claims.exp;
        (encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default(), exp)
    }

    pub fn verify_call(&self, token: &str) -> Result<CallClaims, TokenError> {
        let claims: CallClaims = self.decode(token)?;
        if claims.typ == "call" {
            Ok(claims)
        } else {
            Err(TokenError::Invalid)
        }
    }

    fn decode<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        decode::<C>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_tampering_and_expiry() {
        let tokens = AccessTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let t = tokens.issue("u1", "s1");
        let claims = tokens.verify(&t).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));

        let other = AccessTokens::new(b"another secret another secret 00", 60);
        assert_eq!(other.verify(&t).unwrap_err(), TokenError::Invalid);

        let expired = AccessTokens::new(b"0123456789abcdef0123456789abcdef", 0);
        let claims = AccessClaims {
            sub: "u1".into(),
            sid: "s1".into(),
            iat: 0,
            exp: clock::now() - 5,
            typ: "access".into(),
        };
        let old = encode(&Header::new(Algorithm::HS256), &claims, &expired.encoding).unwrap();
        assert_eq!(tokens.verify(&old).unwrap_err(), TokenError::Expired);
        assert_eq!(tokens.verify("not.a.jwt").unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn call_and_access_tokens_are_not_interchangeable() {
        let tokens = AccessTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let (call, exp) = tokens.issue_call("u1", "c1", CallRole::Callee, 120);
        assert!(exp > clock::now() + 100);
        let claims = tokens.verify_call(&call).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_str(), claims.role),
            ("u1", "c1", CallRole::Callee)
        );
        assert_eq!(tokens.verify(&call).unwrap_err(), TokenError::Invalid);
        let access = tokens.issue("u1", "s1");
        assert_eq!(tokens.verify_call(&access).unwrap_err(), TokenError::Invalid);
    }
}
