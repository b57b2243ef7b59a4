//! [`Client`]: one device of one user, stored in a profile directory.

use crate::api::{Api, Body};
use crate::error::{mls, Error, Result};
use crate::store::{self, Profile, Provider};
use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wire::{AuthResponse, KeyPackageStatus};

mod account;
mod files;
mod groups;
mod linking;
mod listening;
mod messaging;
mod timeline;
mod wire;

pub use linking::{LinkRequest, PendingLink};
pub use listening::Update;
pub use timeline::TimelineEntry;

/// The one ciphersuite SecureVox uses (0x0001).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// KeyPackages uploaded at registration and at each top-up.
pub const KEY_PACKAGE_BATCH: usize = 20;
/// Application messages from this many past epochs can still be decrypted.
const MAX_PAST_EPOCHS: usize = 3;
/// The name this client gives its device.
const DEVICE_NAME: &str = "securevox-cli";
const DEVICE_SIGNATURE_CONTEXT: &[u8] = b"SecureVox device key v1\0";

/// What a user's identity key signs to vouch for one of their devices:
/// `"SecureVox device key v1" 0x00 || user_id || 0x00 || signature_key`.
pub fn device_signature_message(user_id: &str, signature_key: &[u8]) -> Vec<u8> {
    let mut message = DEVICE_SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(user_id.as_bytes());
    message.push(0);
    message.extend_from_slice(signature_key);
    message
}

/// A user as the server shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// One of the user's devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub name: Option<String>,
    /// MLS signature public key, base64.
    pub signature_key: String,
    pub created_at: String,
    pub last_seen_at: Option<String>,
    /// Whether this is the device of this profile.
    #[serde(default)]
    pub current: bool,
}

/// What a message says: the JSON plaintext inside the MLS application message (the format
/// every SecureVox client speaks; docs/E2EE.md, "Message content"). `target` fields name a
/// message of the same conversation by its `seq`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// `{"type":"text","body":...}`
    Text { body: String },
    /// `{"type":"file",...}`: an attachment encrypted with AES-256-GCM under `key` (base64,
    /// 32 bytes) and `nonce` (base64, 12 bytes); `sha256` is the hex digest of the plaintext;
    /// `mime`, when known, its media type (clients preview images).
    File {
        attachment: String,
        key: String,
        nonce: String,
        name: String,
        size: u64,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime: Option<String>,
    },
    /// `{"type":"reaction","target":7,"emoji":"👍","remove":false}`
    Reaction {
        target: i64,
        emoji: String,
        #[serde(default)]
        remove: bool,
    },
    /// `{"type":"edit","target":7,"body":"..."}`: the sender's own text message, reworded.
    Edit { target: i64, body: String },
    /// `{"type":"delete","target":7}`: the sender's own message, withdrawn.
    Delete { target: i64 },
    /// `{"type":"receipt","status":"delivered"|"read","targets":[7,8]}`
    Receipt { status: ReceiptStatus, targets: Vec<i64> },
    /// `{"type":"typing","active":true}`: sent as an unstored ephemeral message.
    Typing { active: bool },
    /// A plaintext this client does not understand (kept as text).
    Unknown { raw: String },
}

/// What a receipt says about its messages.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

/// A message of a conversation, sent or received by this device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    pub conversation_id: String,
    /// The server's per-conversation sequence number.
    pub seq: Option<i64>,
    pub sender_user_id: String,
    pub sender_device_id: String,
    /// Sent by this device.
    pub outgoing: bool,
    /// When the server received it (received messages) or when it was sent (own ones).
    pub time: String,
    pub content: Content,
}

/// What [`Client::sync`] did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    /// New messages, in order.
    pub messages: Vec<Message>,
    /// Conversations this device joined (from Welcomes).
    pub joined: Vec<String>,
    /// Conversations this device was removed from.
    pub removed_from: Vec<String>,
    /// Commits applied.
    pub commits: usize,
    /// KeyPackages uploaded because the server's stock ran low.
    pub key_packages_uploaded: usize,
    /// Inbox items that could not be processed (they are acknowledged anyway, so one bad
    /// item does not block the inbox).
    pub errors: Vec<String>,
    /// Group members (of groups joined or changed by this sync) whose device is not vouched
    /// for by their user's identity key: the server may have slipped someone in.
    pub warnings: Vec<String>,
}

/// A file fetched by [`Client::fetch_file`].
#[derive(Debug, Clone, Serialize)]
pub struct FetchedFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub path: PathBuf,
}

/// One device of a SecureVox user. Every state change is saved to the profile directory
/// before the method returns.
pub struct Client {
    dir: PathBuf,
    profile: Profile,
    provider: Provider,
    api: Api,
    /// Held while the client lives: one client per profile at a time.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("dir", &self.dir)
            .field("user_id", &self.profile.user_id)
            .field("device_id", &self.profile.device_id)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(what: &str, text: &str) -> Result<Vec<u8>> {
    B64.decode(text).map_err(|_| Error::other(format!("{what} is not valid base64")))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn mls_bytes(message: &MlsMessageOut) -> Result<String> {
    Ok(b64(&message.to_bytes().map_err(mls)?))
}

fn check_username(username: &str) -> Result<()> {
    let ok = (2..=64).contains(&username.len())
        && username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::other(format!("not a valid username: {username:?}")))
    }
}

impl Client {
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn user_id(&self) -> &str {
        &self.profile.user_id
    }

    pub fn username(&self) -> &str {
        &self.profile.username
    }

    pub fn device_id(&self) -> Result<&str> {
        self.profile
            .device_id
            .as_deref()
            .ok_or_else(|| Error::other("this profile has no device yet: log in again"))
    }

    fn identity(&self) -> Result<SigningKey> {
        let seed: [u8; 32] = unb64("identity seed", &self.profile.identity_seed)?
            .try_into()
            .map_err(|_| Error::other("identity seed is not 32 bytes"))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    fn signer(&self) -> Result<SignatureKeyPair> {
        let public = self
            .profile
            .device_signature_key
            .as_deref()
            .ok_or_else(|| Error::other("this profile has no device key"))?;
        let public = unb64("device signature key", public)?;
        SignatureKeyPair::read(self.provider.storage(), &public, CIPHERSUITE.signature_algorithm())
            .ok_or_else(|| Error::other("the device's signature key is missing from mls.json"))
    }

    fn credential(&self) -> Result<CredentialWithKey> {
        let identity = format!("{}:{}", self.profile.user_id, self.device_id()?);
        let public = unb64(
            "device signature key",
            self.profile.device_signature_key.as_deref().unwrap_or_default(),
        )?;
        Ok(CredentialWithKey {
            credential: BasicCredential::new(identity.into_bytes()).into(),
            signature_key: public.into(),
        })
    }

    fn save_mls(&self) -> Result<()> {
        self.provider.save(&self.dir)
    }

    async fn refresh(&mut self) -> Result<()> {
        let body = json!({ "refresh_token": self.profile.refresh_token });
        let auth: AuthResponse = self
            .api
            .send(Method::POST, "/api/v1/auth/refresh", None, None, Body::Json(body))
            .await?
            .json()
            .await?;
        self.profile.access_token = auth.access_token;
        self.profile.refresh_token = auth.refresh_token;
        self.profile.session_id = auth.session_id;
        self.profile.save(&self.dir)
    }

    /// An authenticated request (as this device if `as_device`); refreshes the tokens once
    /// on 401.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        as_device: bool,
        body: Body,
    ) -> Result<reqwest::Response> {
        let device = if as_device { Some(self.device_id()?.to_owned()) } else { None };
        let first = self
            .api
            .send(
                method.clone(),
                path,
                Some(&self.profile.access_token),
                device.as_deref(),
                body.clone(),
            )
            .await;
        match first {
            Err(Error::Api { status: 401, .. }) => {
                self.refresh().await?;
                self.api
                    .send(method, path, Some(&self.profile.access_token), device.as_deref(), body)
                    .await
            }
            other => other,
        }
    }

    async fn call_json<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        as_device: bool,
        body: Body,
    ) -> Result<T> {
        Ok(self.call(method, path, as_device, body).await?.json().await?)
    }

    // ----- key directory -------------------------------------------------------------------

    /// Creates `count` KeyPackages (and a last-resort one if asked), saves their private keys,
    /// then uploads them.
    async fn upload_key_packages(&mut self, count: usize, last_resort: bool) -> Result<()> {
        let signer = self.signer()?;
        let credential = self.credential()?;
        let mut packages = Vec::with_capacity(count);
        for _ in 0..count {
            let bundle = KeyPackage::builder()
                .build(CIPHERSUITE, &self.provider, &signer, credential.clone())
                .map_err(mls)?;
            packages.push(mls_bytes(&MlsMessageOut::from(bundle.key_package().clone()))?);
        }
        let last_resort = if last_resort {
            let bundle = KeyPackage::builder()
                .leaf_node_capabilities(
                    Capabilities::builder().extensions(vec![ExtensionType::LastResort]).build(),
                )
                .mark_as_last_resort()
                .build(CIPHERSUITE, &self.provider, &signer, credential)
                .map_err(mls)?;
            Some(mls_bytes(&MlsMessageOut::from(bundle.key_package().clone()))?)
        } else {
            None
        };
        // The private keys must be on disk before the server can hand the packages out.
        self.save_mls()?;
        let path = format!("/api/v1/devices/{}/key-packages", self.device_id()?);
        let body = json!({ "key_packages": packages, "last_resort": last_resort });
        self.call(Method::POST, &path, false, Body::Json(body)).await?;
        Ok(())
    }

    /// Uploads KeyPackages if the server's stock of this device's is low; returns how many.
    pub async fn top_up_key_packages(&mut self) -> Result<usize> {
        let path = format!("/api/v1/devices/{}/key-packages", self.device_id()?);
        let status: KeyPackageStatus =
            self.call_json(Method::GET, &path, false, Body::None).await?;
        if status.low || !status.has_last_resort {
            let count = if status.low { KEY_PACKAGE_BATCH } else { 0 };
            self.upload_key_packages(count, !status.has_last_resort).await?;
            return Ok(count + usize::from(!status.has_last_resort));
        }
        Ok(0)
    }
}
