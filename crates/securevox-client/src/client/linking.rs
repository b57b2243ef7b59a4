#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! Linking a new device to the user's identity (docs/E2EE.md, "Linking a device").
//!
//! The new device logs in, makes its MLS signature key and a one-time HPKE transfer key, and
//! asks the server ([`Client::start_link`]); it shows the 16-digit [`safety::link_code`] of
//! those two keys. On a device that holds the identity key, the user approves the request
//! that shows the same code ([`Client::approve_link`]): it signs the new device's key with
//! the identity key and seals the identity key to the transfer key. The new device opens the
//! envelope, checks it holds the account's published identity key, and joins the user's
//! conversations by external Commit ([`PendingLink::wait`]).

use super::account::log_in_request;
use super::wire::*;
use super::*;
use crate::safety;
use std::time::Duration;

/// HPKE (RFC 9180) base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
const HPKE: HpkeConfig =
    HpkeConfig(HpkeKemType::DhKem25519, HpkeKdfType::HkdfSha256, HpkeAeadType::AesGcm128);
/// HPKE `info` of a link envelope; its `aad` is the link request's id.
const ENVELOPE_INFO: &[u8] = b"SecureVox device link v1";
/// The X25519 KEM output's length: the envelope is `kem_output || ciphertext`.
const KEM_OUTPUT_LEN: usize = 32;

/// What the approving device seals for the new one.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The identity key's Ed25519 seed, base64.
    identity_key: String,
}

#[derive(Deserialize)]
struct LinkView {
    id: String,
    state: String,
    name: Option<String>,
    signature_key: String,
    transfer_key: String,
    created_at: String,
    device: Option<Device>,
    envelope: Option<String>,
}

/// A request, seen from a device that may approve it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkRequest {
    pub id: String,
    pub name: Option<String>,
    /// The code the new device shows ([`safety::link_code`] of its keys, computed here).
    pub code: String,
    pub created_at: String,
}

/// A new device's request, waiting for approval.
pub struct PendingLink {
    id: String,
    code: String,
    server: String,
    dir: PathBuf,
    api: Api,
    auth: AuthResponse,
    provider: Provider,
    signature_key: Vec<u8>,
    transfer: HpkeKeyPair,
    lock: std::fs::File,
}

impl std::fmt::Debug for PendingLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLink")
            .field("id", &self.id)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Logs in on a new device (an empty profile directory) and asks to link it to the
    /// account's identity. Show [`PendingLink::code`] to the user, then [`PendingLink::wait`].
    pub async fn start_link(
        server: &str,
        dir: &Path,
        username: &str,
        password: &str,
    ) -> Result<PendingLink> {
        store::ensure_dir(dir)?;
        let lock = store::lock(dir)?;
        if dir.join(store::PROFILE_FILE).exists() {
            return Err(Error::other(format!("{} already holds a profile", dir.display())));
        }
        let api = Api::new(server)?;
        let auth = log_in_request(&api, username, password).await?;
        let provider = Provider::default();
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(mls)?;
        signer.store(provider.storage()).map_err(mls)?;
        let transfer = provider
            .crypto()
            .derive_hpke_keypair(HPKE, &rand::random::<[u8; 32]>())
            .map_err(mls)?;
        let body = json!({
            "name": DEVICE_NAME,
            "signature_key": b64(signer.public()),
            "transfer_key": b64(&transfer.public),
        });
        let link: IdView = api
            .send(
                Method::POST,
                "/api/v1/devices/links",
                Some(&auth.access_token),
                None,
                Body::Json(body),
            )
            .await?
            .json()
            .await?;
        Ok(PendingLink {
            code: safety::link_code(signer.public(), &transfer.public),
            id: link.id,
            server: server.trim_end_matches('/').to_owned(),
            dir: dir.to_path_buf(),
            api,
            auth,
            provider,
            signature_key: signer.public().to_vec(),
            transfer,
            lock,
        })
    }

    /// Requests of new devices waiting for this user's approval, each with the code it
    /// should show.
    pub async fn link_requests(&mut self) -> Result<Vec<LinkRequest>> {
        let links: Vec<LinkView> =
            self.call_json(Method::GET, "/api/v1/devices/links", false, Body::None).await?;
        links
            .into_iter()
            .map(|link| {
                let signature_key = unb64("signature key", &link.signature_key)?;
                let transfer_key = unb64("transfer key", &link.transfer_key)?;
                Ok(LinkRequest {
                    code: safety::link_code(&signature_key, &transfer_key),
                    id: link.id,
                    name: link.name,
                    created_at: link.created_at,
                })
            })
            .collect()
    }

    /// Approves the request whose keys give `code` (the one the new device shows; spaces are
    /// ignored): vouches for its key with the identity key and hands it the identity key,
    /// sealed to its transfer key. Returns the new device.
    pub async fn approve_link(&mut self, code: &str) -> Result<Device> {
        let code = safety::digits_of(code);
        let links: Vec<LinkView> =
            self.call_json(Method::GET, "/api/v1/devices/links", false, Body::None).await?;
        let mut found = None;
        for link in links {
            let signature_key = unb64("signature key", &link.signature_key)?;
            let transfer_key = unb64("transfer key", &link.transfer_key)?;
            if safety::link_code(&signature_key, &transfer_key) == code {
                found = Some((link.id, signature_key, transfer_key));
                break;
            }
        }
        let (id, signature_key, transfer_key) = found.ok_or_else(|| {
            Error::other("no pending link request shows this code: check it on the new device")
        })?;
        let identity = self.identity()?;
        let message = device_signature_message(&self.profile.user_id, &signature_key);
        let envelope = Envelope { identity_key: self.profile.identity_seed.clone() };
        let sealed = self
            .provider
            .crypto()
            .hpke_seal(
                HPKE,
                &transfer_key,
                ENVELOPE_INFO,
                id.as_bytes(),
                &serde_json::to_vec(&envelope)?,
            )
            .map_err(mls)?;
        let mut bytes = sealed.kem_output.as_slice().to_vec();
        bytes.extend_from_slice(sealed.ciphertext.as_slice());
        let body = json!({
            "identity_signature": b64(&identity.sign(&message).to_bytes()),
            "envelope": b64(&bytes),
        });
        let path = format!("/api/v1/devices/links/{id}/approve");
        self.call_json(Method::POST, &path, false, Body::Json(body)).await
    }

    /// Refuses request `id`.
    pub async fn reject_link(&mut self, id: &str) -> Result<()> {
        let path = format!("/api/v1/devices/links/{id}/reject");
        self.call(Method::POST, &path, false, Body::None).await?;
        Ok(())
    }

    /// Joins, by external Commit, every conversation of the user this device is not in yet
    /// (a linked device's first step). Returns the conversations joined; one that cannot be
    /// joined now (no GroupInfo yet) is left for later.
    pub async fn join_conversations(&mut self) -> Result<Vec<String>> {
        let conversations: Vec<IdView> =
            self.call_json(Method::GET, "/api/v1/conversations", false, Body::None).await?;
        let mut joined = Vec::new();
        for conversation in conversations {
            let id = conversation.id;
            if self.group(&id).is_ok() {
                continue;
            }
            match self.join_by_external_commit(&id).await {
                Ok(()) => joined.push(id),
                Err(e) if e.code() == Some("not_found") => {} // no GroupInfo published yet
                Err(e) => return Err(e),
            }
        }
        Ok(joined)
    }

    async fn join_by_external_commit(&mut self, id: &str) -> Result<()> {
        let path = format!("/api/v1/conversations/{id}/commits");
        let mut retried = false;
        loop {
            let info_path = format!("/api/v1/conversations/{id}/group-info");
            let info: GroupInfoView =
                self.call_json(Method::GET, &info_path, false, Body::None).await?;
            let bytes = unb64("group info", &info.group_info)?;
            let MlsMessageBodyIn::GroupInfo(info) =
                MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).map_err(mls)?.extract()
            else {
                return Err(Error::other("the server's GroupInfo is not a GroupInfo"));
            };
            if info.group_id().as_slice() != id.as_bytes() {
                return Err(Error::other("the GroupInfo is for another group"));
            }
            let signer = self.signer()?;
            let config = MlsGroupJoinConfig::builder()
                .use_ratchet_tree_extension(true)
                .max_past_epochs(MAX_PAST_EPOCHS)
                .build();
            let (mut group, bundle) = MlsGroup::external_commit_builder()
                .with_config(config)
                .build_group(&self.provider, info, self.credential()?)
                .map_err(mls)?
                .load_psks(self.provider.storage())
                .map_err(mls)?
                .build(self.provider.rand(), self.provider.crypto(), &signer, |_| true)
                .map_err(mls)?
                .finalize(&self.provider)
                .map_err(mls)?;
            self.save_mls()?;
            let (commit, _, group_info) = bundle.into_contents();
            let body = json!({
                "commit": mls_bytes(&commit)?,
                "group_info": group_info.map(|g| mls_bytes(&g.into())).transpose()?,
            });
            match self.call(Method::POST, &path, true, Body::Json(body)).await {
                Ok(_) => {
                    group.merge_pending_commit(&self.provider).map_err(mls)?;
                    self.save_mls()?;
                    return Ok(());
                }
                Err(e) => {
                    // An external join cannot be cleared: the group state goes.
                    group.delete(self.provider.storage()).map_err(mls)?;
                    self.save_mls()?;
                    if retried || e.code() != Some("stale_epoch") {
                        return Err(e);
                    }
                    retried = true;
                }
            }
        }
    }
}

impl PendingLink {
    /// The code to show the user, in groups of four digits.
    pub fn code(&self) -> String {
        self.code
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits (up to `timeout`) for a signed-in device to approve, then sets up this device:
    /// opens the envelope, checks the identity key against the account's, saves the profile,
    /// uploads KeyPackages and joins the user's conversations.
    pub async fn wait(self, timeout: Duration) -> Result<Client> {
        let path = format!("/api/v1/devices/links/{}", self.id);
        let token = self.auth.access_token.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let link = loop {
            let link: LinkView = self
                .api
                .send(Method::GET, &path, Some(&token), None, Body::None)
                .await?
                .json()
                .await?;
            match link.state.as_str() {
                "approved" => break link,
                "rejected" => return Err(Error::other("the link request was rejected")),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::other("no device approved the link request in time"));
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        };
        let device = link.device.ok_or_else(|| Error::other("approved without a device"))?;
        if unb64("device key", &device.signature_key)? != self.signature_key {
            return Err(Error::other("the approved device key is not this device's"));
        }
        let sealed = unb64("envelope", link.envelope.as_deref().unwrap_or_default())?;
        if sealed.len() <= KEM_OUTPUT_LEN {
            return Err(Error::other("the approving device left no envelope"));
        }
        let (kem_output, ciphertext) = sealed.split_at(KEM_OUTPUT_LEN);
        let input = HpkeCiphertext { kem_output: kem_output.into(), ciphertext: ciphertext.into() };
        let opened = self
            .provider
            .crypto()
            .hpke_open(HPKE, &input, &self.transfer.private, ENVELOPE_INFO, link.id.as_bytes())
            .map_err(|_| Error::other("the envelope does not open with this device's key"))?;
        let envelope: Envelope = serde_json::from_slice(&opened)?;
        let profile = Profile {
            server: self.server,
            user_id: self.auth.user.id,
            username: self.auth.user.username,
            access_token: self.auth.access_token,
            refresh_token: self.auth.refresh_token,
            session_id: self.auth.session_id,
            device_id: Some(device.id),
            device_signature_key: Some(b64(&self.signature_key)),
            identity_seed: envelope.identity_key,
            inbox_cursor: 0,
        };
        let mut client = Client {
            dir: self.dir,
            profile,
            provider: self.provider,
            api: self.api,
            _lock: self.lock,
        };
        let (published, _) = client.verified_devices(&client.profile.user_id.clone()).await?;
        if published != client.identity()?.verifying_key().as_bytes() {
            return Err(Error::other("the envelope's identity key is not the account's"));
        }
        client.save_mls()?;
        client.profile.save(&client.dir)?;
        client.call(Method::DELETE, &path, false, Body::None).await?;
        client.upload_key_packages(KEY_PACKAGE_BATCH, true).await?;
        client.join_conversations().await?;
        Ok(client)
    }
}
