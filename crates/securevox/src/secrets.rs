//! Secrets generated on first start and kept in the data directory, readable only by the
//! server's user (0600). There is no built-in default secret.
//!
//! A key file, once written, is never replaced: losing the key logs every client out of its
//! access token, so a file that cannot be read or holds no usable key is an error for the
//! operator to resolve, not something to paper over with a new key.

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Shortest key accepted from a file (the generated ones have 64 characters).
pub const MIN_KEY_CHARS: usize = 32;

/// Reads `<data_dir>/secrets/<name>`, creating it with 48 random bytes if missing.
///
/// Creation never replaces a file: when two processes start at once, one writes the key and
/// the other reads that key. A key file that cannot be read, or is too short, is an error.
pub fn load_or_create(data_dir: &Path, name: &str) -> Result<String> {
    let dir = data_dir.join("secrets");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    restrict(&dir, 0o700)?;
    let path = dir.join(name);
    if let Some(existing) = read_existing(&path)? {
        return usable(&path, &existing);
    }

    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = STANDARD_NO_PAD.encode(bytes);
    if publish(&dir, &path, &secret).with_context(|| format!("creating {}", path.display()))? {
        restrict(&path, 0o600)?;
        tracing::info!(path = %path.display(), "generated a new secret");
        return Ok(secret);
    }
    // Another process created it between our read and our write: use its key.
    let existing = read_existing(&path)?.unwrap_or_default();
    usable(&path, &existing)
}

/// Puts `secret` at `path` unless something is already there; `false` if something was.
///
/// The key is written to a private temporary file first and then hard-linked into place, which
/// fails if the name is taken (like `create_new`), so a reader never sees a half-written key.
/// On a file system without hard links the key is written in place with `create_new`.
fn publish(dir: &Path, path: &Path, secret: &str) -> std::io::Result<bool> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::rngs::OsRng.next_u64()));
    write_new(&tmp, secret)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    let created = match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(_) => write_new(path, secret),
    };
    match created {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates `path` (0600; an error if it exists) holding `contents`, or leaves nothing behind.
fn write_new(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(contents.as_bytes()).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

/// The file's contents; `None` if it does not exist. Any other failure is an error: a key that
/// is there but unreadable must not be replaced.
fn read_existing(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "reading {} (the key is kept, not replaced; fix its permissions)",
                path.display()
            )
        }),
    }
}

fn usable(path: &Path, contents: &str) -> Result<String> {
    let key = contents.trim();
    if key.len() < MIN_KEY_CHARS {
        bail!(
            "{} holds {} characters, fewer than the {MIN_KEY_CHARS} a key needs; it is left as \
             is. Remove the file to have a new key generated (access tokens signed with the old \
             one stop working), or put the right key in it",
            path.display(),
            key.len()
        );
    }
    Ok(key.to_owned())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), "jwt.key").unwrap();
        let b = load_or_create(dir.path(), "jwt.key").unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                fs::metadata(dir.path().join("secrets/jwt.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(a, load_or_create(other.path(), "jwt.key").unwrap(), "never a fixed default");
    }

    #[test]
    fn an_existing_key_is_used_as_written() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("secrets")).unwrap();
        let key = "k".repeat(40);
        fs::write(dir.path().join("secrets/jwt.key"), format!("{key}\n")).unwrap();
        assert_eq!(load_or_create(dir.path(), "jwt.key").unwrap(), key);
    }

    #[test]
    fn a_short_key_file_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("secrets")).unwrap();
        let path = dir.path().join("secrets/jwt.key");
        fs::write(&path, "too-short").unwrap();
        let err = format!("{:#}", load_or_create(dir.path(), "jwt.key").unwrap_err());
        assert!(err.contains("jwt.key") && err.contains("Remove the file"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "too-short", "never silently replaced");

        fs::write(&path, "").unwrap();
        assert!(load_or_create(dir.path(), "jwt.key").is_err(), "an empty file too");
    }

    #[test]
    fn an_unreadable_key_file_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the key should be: exists, but reading it fails (not NotFound).
        let path = dir.path().join("secrets/jwt.key");
        fs::create_dir_all(&path).unwrap();
        let err = format!("{:#}", load_or_create(dir.path(), "jwt.key").unwrap_err());
        assert!(err.contains("reading") && err.contains("jwt.key"), "{err}");
        assert!(path.is_dir(), "left alone");
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Barrier::new(8);
            let keys: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            load_or_create(dir.path(), "jwt.key").unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let on_disk = fs::read_to_string(dir.path().join("secrets/jwt.key")).unwrap();
            assert!(keys.iter().all(|k| *k == on_disk), "every start uses the key on disk");
        }
    }
}
