#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! Accounts on this device: register, log in, open a profile, set up a device.

use super::wire::*;
use super::*;

impl Client {
    /// Creates an account on `server`, then sets up this device in `dir`: a new identity key
    /// (published), a device vouched for by it, and [`KEY_PACKAGE_BATCH`] KeyPackages plus a
    /// last-resort one.
    pub async fn register(
        server: &str,
        dir: &Path,
        username: &str,
        password: &str,
        invite_code: Option<&str>,
    ) -> Result<Self> {
        store::ensure_dir(dir)?;
        let lock = store::lock(dir)?;
        if dir.join(store::PROFILE_FILE).exists() {
            return Err(Error::other(format!("{} already holds a profile", dir.display())));
        }
        let api = Api::new(server)?;
        let body = json!({
            "username": username, "password": password, "invite_code": invite_code,
            "device_name": DEVICE_NAME,
        });
        let auth: AuthResponse = api
            .send(Method::POST, "/api/v1/auth/register", None, None, Body::Json(body))
            .await?
            .json()
            .await?;
        Self::set_up(api, server, dir, auth, lock).await
    }

    /// Logs in. With a profile of the same user in `dir`, keeps its identity key, device and
    /// groups (new tokens only). In an empty directory, an account that has no identity yet
    /// gets one with this device; an account that has one answers [`Error::LinkRequired`]:
    /// link this device with [`Client::start_link`], or replace the identity with
    /// [`Client::login_new_identity`].
    pub async fn login(server: &str, dir: &Path, username: &str, password: &str) -> Result<Self> {
        Self::log_in(server, dir, username, password, false).await
    }

    /// Logs in and, in an empty directory, sets up this device with a **new identity key**
    /// even if the account has one: the server then drops the account's other devices, and
    /// contacts see its safety number change. For a lost last device.
    pub async fn login_new_identity(
        server: &str,
        dir: &Path,
        username: &str,
        password: &str,
    ) -> Result<Self> {
        Self::log_in(server, dir, username, password, true).await
    }

    async fn log_in(
        server: &str,
        dir: &Path,
        username: &str,
        password: &str,
        new_identity: bool,
    ) -> Result<Self> {
        store::ensure_dir(dir)?;
        let lock = store::lock(dir)?;
        let existing = Profile::load(dir).ok();
        let api = Api::new(server)?;
        let auth = log_in_request(&api, username, password).await?;
        match existing {
            Some(mut profile) if profile.user_id == auth.user.id && profile.device_id.is_some() => {
                server.trim_end_matches('/').clone_into(&mut profile.server);
                profile.access_token = auth.access_token;
                profile.refresh_token = auth.refresh_token;
                profile.session_id = auth.session_id;
                profile.save(dir)?;
                let provider = Provider::load(dir)?;
                Ok(Self { dir: dir.to_path_buf(), provider, profile, api, _lock: lock })
            }
            Some(profile) if profile.user_id != auth.user.id => Err(Error::other(format!(
                "{} holds the profile of {}; use another directory",
                dir.display(),
                profile.username
            ))),
            _ => {
                let path = format!("/api/v1/users/{}/keys", auth.user.id);
                let keys: UserKeys = api
                    .send(Method::GET, &path, Some(&auth.access_token), None, Body::None)
                    .await?
                    .json()
                    .await?;
                if keys.identity_key.is_some() && !new_identity {
                    return Err(Error::LinkRequired);
                }
                Self::set_up(api, server, dir, auth, lock).await
            }
        }
    }

    /// Opens the profile in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let profile = Profile::load(dir)?;
        let lock = store::lock(dir)?;
        let api = Api::new(&profile.server)?;
        let provider = Provider::load(dir)?;
        Ok(Self { dir: dir.to_path_buf(), provider, profile, api, _lock: lock })
    }

    async fn set_up(
        api: Api,
        server: &str,
        dir: &Path,
        auth: AuthResponse,
        lock: std::fs::File,
    ) -> Result<Self> {
        let seed: [u8; 32] = rand::random();
        let profile = Profile {
            server: server.trim_end_matches('/').to_owned(),
            user_id: auth.user.id,
            username: auth.user.username,
            access_token: auth.access_token,
            refresh_token: auth.refresh_token,
            session_id: auth.session_id,
            device_id: None,
            device_signature_key: None,
            identity_seed: b64(&seed),
            inbox_cursor: 0,
        };
        profile.save(dir)?;
        let mut client = Self {
            dir: dir.to_path_buf(),
            profile,
            provider: Provider::default(),
            api,
            _lock: lock,
        };
        client.register_device().await?;
        Ok(client)
    }

    async fn register_device(&mut self) -> Result<()> {
        let identity = self.identity()?;
        let body = json!({ "public_key": b64(identity.verifying_key().as_bytes()) });
        self.call(Method::PUT, "/api/v1/keys/identity", false, Body::Json(body)).await?;
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(mls)?;
        signer.store(self.provider.storage()).map_err(mls)?;
        self.save_mls()?;
        let message = device_signature_message(&self.profile.user_id, signer.public());
        let body = json!({
            "name": DEVICE_NAME,
            "signature_key": b64(signer.public()),
            "identity_signature": b64(&identity.sign(&message).to_bytes()),
        });
        let device: IdView =
            self.call_json(Method::POST, "/api/v1/devices", false, Body::Json(body)).await?;
        self.profile.device_id = Some(device.id);
        self.profile.device_signature_key = Some(b64(signer.public()));
        self.profile.save(&self.dir)?;
        self.upload_key_packages(KEY_PACKAGE_BATCH, true).await?;
        Ok(())
    }
}

/// `POST /api/v1/auth/login` for this client's device.
pub(super) async fn log_in_request(
    api: &Api,
    username: &str,
    password: &str,
) -> Result<AuthResponse> {
    let body = json!({ "username": username, "password": password, "device_name": DEVICE_NAME });
    Ok(api
        .send(Method::POST, "/api/v1/auth/login", None, None, Body::Json(body))
        .await?
        .json()
        .await?)
}
