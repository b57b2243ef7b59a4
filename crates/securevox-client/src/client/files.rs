#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! Files (encrypted on the device, uploaded as opaque attachments) and safety numbers.

use super::wire::*;
use super::*;

/// The media type of a file that clients may preview, from its extension (other files are
/// sent without one and offered for download).
fn media_type(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => return None,
    })
}

impl Client {
    /// Encrypts the file at `path` with a fresh AES-256-GCM key, uploads it to the
    /// conversation and sends its key, name, size and digest in an MLS message.
    pub async fn send_file(&mut self, conversation_id: &str, path: &Path) -> Result<Message> {
        let data = std::fs::read(path)?;
        let name = path
            .file_name()
            .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        let key: [u8; 32] = rand::random();
        let nonce: [u8; 12] = rand::random();
        let sealed = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| Error::other("bad AES key length"))?
            .encrypt(Nonce::from_slice(&nonce), data.as_slice())
            .map_err(|_| Error::other("encryption failed"))?;
        let upload = format!("/api/v1/conversations/{conversation_id}/attachments");
        let attachment: IdView =
            self.call_json(Method::POST, &upload, false, Body::Bytes(sealed)).await?;
        let content = Content::File {
            attachment: attachment.id,
            key: b64(&key),
            nonce: b64(&nonce),
            name,
            size: data.len() as u64,
            sha256: hex(&Sha256::digest(&data)),
            mime: media_type(path).map(str::to_owned),
        };
        self.send_content(conversation_id, content).await
    }

    /// Downloads attachment `attachment_id` of a file message in `conversation_id` (looked up
    /// in the local log, after a sync if it is not there yet), decrypts it, checks its SHA-256
    /// and writes it to `out`.
    pub async fn fetch_file(
        &mut self,
        conversation_id: &str,
        attachment_id: &str,
        out: &Path,
    ) -> Result<FetchedFile> {
        let find = |client: &Self| -> Result<Option<Content>> {
            Ok(client.history(Some(conversation_id))?.into_iter().rev().find_map(|m| {
                match m.content {
                    Content::File { ref attachment, .. } if attachment == attachment_id => {
                        Some(m.content)
                    }
                    _ => None,
                }
            }))
        };
        let mut found = find(self)?;
        if found.is_none() {
            self.sync().await?;
            found = find(self)?;
        }
        let Some(Content::File { key, nonce, name, size, sha256, .. }) = found else {
            return Err(Error::other(format!(
                "no file message for attachment {attachment_id} in conversation {conversation_id}"
            )));
        };
        let sealed = self
            .call(Method::GET, &format!("/api/v1/attachments/{attachment_id}"), false, Body::None)
            .await?
            .bytes()
            .await?;
        let key = unb64("file key", &key)?;
        let nonce = unb64("file nonce", &nonce)?;
        if nonce.len() != 12 {
            return Err(Error::other("file nonce is not 12 bytes"));
        }
        let data = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| Error::other("file key is not 32 bytes"))?
            .decrypt(Nonce::from_slice(&nonce), sealed.as_ref())
            .map_err(|_| Error::other("the attachment does not decrypt: corrupted or wrong key"))?;
        if hex(&Sha256::digest(&data)) != sha256 || data.len() as u64 != size {
            return Err(Error::other("the attachment's digest or size does not match its message"));
        }
        std::fs::write(out, &data)?;
        Ok(FetchedFile { name, size, sha256, path: out.to_path_buf() })
    }

    // ----- verification --------------------------------------------------------------------

    /// The safety number shared with `username` (see [`crate::safety`]): compare it out of
    /// band with theirs.
    pub async fn safety_number(&mut self, username: &str) -> Result<String> {
        let user = self.find_user(username).await?;
        let (theirs, _) = self.verified_devices(&user.id).await?;
        let mine = self.identity()?.verifying_key().to_bytes();
        Ok(crate::safety::safety_number(&mine, &self.profile.user_id, &theirs, &user.id))
    }
}
