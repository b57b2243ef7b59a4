//! What a profile directory holds, and how it is written.
//!
//! A profile directory contains:
//! - `profile.json` — server URL, account, tokens, device id, the identity key seed and the
//!   inbox cursor ([`Profile`]);
//! - `mls.json` — the whole openmls key store ([`Provider`]): group states, epoch secrets,
//!   KeyPackage private keys and the device's signature key;
//! - `messages.jsonl` — the local message log, one [`crate::Message`] per line;
//! - `lock` — locked (exclusively) while a [`crate::Client`] has the profile open, so two
//!   processes cannot interleave MLS state changes.
//!
//! All three hold secrets (or plaintext), are created with mode 0600 and are replaced
//! atomically (written to a temporary file, synced, renamed) so a crash leaves either the old
//! or the new version. Nothing is encrypted at rest: protect the directory.

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openmls::prelude::OpenMlsProvider;
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub(crate) const PROFILE_FILE: &str = "profile.json";
pub(crate) const MLS_FILE: &str = "mls.json";
pub(crate) const LOG_FILE: &str = "messages.jsonl";
pub(crate) const LOCK_FILE: &str = "lock";

/// The account and device a profile directory belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Base URL of the server, e.g. `https://chat.example.org`.
    pub server: String,
    pub user_id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    /// This device's id, once registered.
    pub device_id: Option<String>,
    /// This device's MLS signature public key (base64); the private half is in `mls.json`.
    pub device_signature_key: Option<String>,
    /// The user's Ed25519 identity key seed (base64 of 32 bytes).
    pub identity_seed: String,
    /// The `id` of the last inbox item handled.
    pub inbox_cursor: i64,
}

impl Profile {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(PROFILE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::other(format!("no profile in {} ({e}): register or log in first", dir.display()))
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_private(&dir.join(PROFILE_FILE), &serde_json::to_vec_pretty(self)?)
    }
}

/// The openmls provider of a client: RustCrypto plus a [`MemoryStorage`] that is saved to
/// `mls.json` after every change.
///
/// (`OpenMlsRustCrypto` keeps its storage private, hence this type. The file format is our
/// own — a JSON object of base64 key → base64 value — rather than the `persistence` feature
/// of `openmls_memory_storage`, whose loader panics on a corrupted file.)
#[derive(Default)]
pub struct Provider {
    crypto: RustCrypto,
    storage: MemoryStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &MemoryStorage {
        &self.storage
    }
    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }
    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

#[derive(Serialize, Deserialize)]
struct StorageFile {
    version: u32,
    values: BTreeMap<String, String>,
}

impl Provider {
    /// Loads `dir/mls.json`, or an empty store if there is none yet.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MLS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e.into()),
        };
        let file: StorageFile = serde_json::from_str(&text)?;
        if file.version != 1 {
            return Err(Error::other(format!(
                "{}: unknown version {}",
                path.display(),
                file.version
            )));
        }
        let bad = || Error::other(format!("{}: corrupted (bad base64)", path.display()));
        let mut values = HashMap::with_capacity(file.values.len());
        for (k, v) in file.values {
            values.insert(B64.decode(k).map_err(|_| bad())?, B64.decode(v).map_err(|_| bad())?);
        }
        Ok(Self {
            crypto: RustCrypto::default(),
            storage: MemoryStorage { values: RwLock::new(values) },
        })
    }

    /// Writes the whole store to `dir/mls.json` (atomically, mode 0600).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let values = {
            let map =
                self.storage.values.read().map_err(|_| Error::other("key store lock poisoned"))?;
            map.iter().map(|(k, v)| (B64.encode(k), B64.encode(v))).collect()
        };
        let file = StorageFile { version: 1, values };
        write_private(&dir.join(MLS_FILE), &serde_json::to_vec(&file)?)
    }
}

/// Writes `bytes` to `path` atomically: a 0600 temporary file next to it, synced, renamed.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    {
        let mut file = private_options().write(true).create(true).truncate(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Appends one line to `path` (created 0600).
pub(crate) fn append_private(path: &Path, line: &[u8]) -> Result<()> {
    let mut file = private_options().append(true).create(true).open(path)?;
    file.write_all(line)?;
    file.write_all(b"\n")?;
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Creates the profile directory (mode 0700) if needed.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// Locks the profile directory for this process (released when the file is dropped).
pub(crate) fn lock(dir: &Path) -> Result<std::fs::File> {
    let file =
        private_options().write(true).create(true).truncate(false).open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(Error::other(format!("the profile {} is in use by another client", dir.display())))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}
