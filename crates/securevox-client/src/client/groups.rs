#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! Contacts, devices and their verification, KeyPackage claims, and group changes (create,
//! add, remove, key update) made by Commit — one Commit per epoch, retried once on a stale
//! epoch.

use super::wire::*;
use super::*;

impl Client {
    /// The user with exactly this username (ignoring case).
    pub async fn find_user(&mut self, username: &str) -> Result<User> {
        check_username(username)?;
        let path = format!("/api/v1/users/search?q={username}&limit=50");
        let users: Vec<User> = self.call_json(Method::GET, &path, false, Body::None).await?;
        users
            .into_iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .ok_or_else(|| Error::other(format!("no user named {username}")))
    }

    /// Adds `username` to the contacts.
    pub async fn add_contact(&mut self, username: &str) -> Result<User> {
        let user = self.find_user(username).await?;
        self.call(Method::PUT, &format!("/api/v1/contacts/{}", user.id), false, Body::None).await?;
        Ok(user)
    }

    /// This user's devices.
    pub async fn devices(&mut self) -> Result<Vec<Device>> {
        let mut devices: Vec<Device> =
            self.call_json(Method::GET, "/api/v1/devices", false, Body::None).await?;
        let me = self.profile.device_id.clone();
        for device in &mut devices {
            device.current = Some(&device.id) == me.as_ref();
        }
        Ok(devices)
    }

    /// The identity key of `user_id` and its devices whose signature keys that identity key
    /// signed (device id → signature key). Devices without a valid signature are left out:
    /// the client checks what the server claims to have checked.
    pub(super) async fn verified_devices(
        &mut self,
        user_id: &str,
    ) -> Result<(Vec<u8>, HashMap<String, Vec<u8>>)> {
        let path = format!("/api/v1/users/{user_id}/keys");
        let keys: UserKeys = self.call_json(Method::GET, &path, false, Body::None).await?;
        let identity = keys
            .identity_key
            .ok_or_else(|| Error::other(format!("user {user_id} has no identity key")))?;
        let identity = unb64("identity key", &identity)?;
        let verifying = VerifyingKey::from_bytes(
            &identity
                .as_slice()
                .try_into()
                .map_err(|_| Error::other("identity key is not 32 bytes"))?,
        )
        .map_err(|_| Error::other("identity key is not a valid Ed25519 key"))?;
        let mut devices = HashMap::new();
        for device in keys.devices {
            let (Ok(key), Ok(signature)) = (
                unb64("signature key", &device.signature_key),
                unb64("identity signature", &device.identity_signature),
            ) else {
                continue;
            };
            let Ok(signature) = ed25519_dalek::Signature::from_slice(&signature) else { continue };
            if verifying.verify_strict(&device_signature_message(user_id, &key), &signature).is_ok()
            {
                devices.insert(device.id, key);
            }
        }
        Ok((identity, devices))
    }

    /// Claims one KeyPackage per device of each user, each validated and checked against the
    /// devices the user's identity key vouches for. For this user, the other devices (none
    /// is fine); for anyone else, at least one.
    pub(super) async fn claim_key_packages(
        &mut self,
        user_ids: &[String],
    ) -> Result<Vec<KeyPackage>> {
        let mut packages = Vec::new();
        for user_id in user_ids {
            let (_, devices) = self.verified_devices(user_id).await?;
            let path = format!("/api/v1/users/{user_id}/key-packages/claim");
            // As this device: the server leaves it out when the claim is for its own user.
            let claimed: Claimed =
                self.call_json(Method::POST, &path, true, Body::Json(json!({}))).await?;
            if claimed.key_packages.is_empty() && user_id != self.user_id() {
                return Err(Error::other(format!("user {user_id} has no device with KeyPackages")));
            }
            for claim in claimed.key_packages {
                let bytes = unb64("key package", &claim.key_package)?;
                let MlsMessageBodyIn::KeyPackage(kp) =
                    MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).map_err(mls)?.extract()
                else {
                    return Err(Error::other(
                        "the server handed out something that is not a KeyPackage",
                    ));
                };
                let kp =
                    kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).map_err(mls)?;
                let expected = format!("{user_id}:{}", claim.device_id);
                let leaf = kp.leaf_node();
                let vouched = devices.get(&claim.device_id);
                if leaf.credential().serialized_content() != expected.as_bytes()
                    || vouched.map(Vec::as_slice) != Some(leaf.signature_key().as_slice())
                {
                    return Err(Error::other(format!(
                        "KeyPackage of device {} is not vouched for by {user_id}'s identity key",
                        claim.device_id
                    )));
                }
                packages.push(kp);
            }
        }
        Ok(packages)
    }

    // ----- groups --------------------------------------------------------------------------

    pub(super) fn group(&self, conversation_id: &str) -> Result<MlsGroup> {
        let group = MlsGroup::load(
            self.provider.storage(),
            &GroupId::from_slice(conversation_id.as_bytes()),
        )
        .map_err(mls)?
        .ok_or_else(|| {
            Error::other(format!(
                "this device is not in conversation {conversation_id} (sync first?)"
            ))
        })?;
        if !group.is_active() {
            return Err(Error::other(format!(
                "this device was removed from conversation {conversation_id}"
            )));
        }
        Ok(group)
    }

    /// Creates a group conversation named `name` with the users `usernames`; returns its id.
    pub async fn create_group(&mut self, name: &str, usernames: &[&str]) -> Result<String> {
        let mut user_ids = Vec::with_capacity(usernames.len());
        for username in usernames {
            user_ids.push(self.find_user(username).await?.id);
        }
        let body = json!({ "kind": "group", "name": name, "members": user_ids });
        let conversation: IdView =
            self.call_json(Method::POST, "/api/v1/conversations", true, Body::Json(body)).await?;
        let id = conversation.id;
        let signer = self.signer()?;
        MlsGroup::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .with_group_id(GroupId::from_slice(id.as_bytes()))
            .build(&self.provider, &signer, self.credential()?)
            .map_err(mls)?;
        self.save_mls()?;
        // Everyone's devices, this user's other ones too (they read the conversation as well).
        if !user_ids.iter().any(|u| u == self.user_id()) {
            user_ids.push(self.user_id().to_owned());
        }
        let packages = self.claim_key_packages(&user_ids).await?;
        if !packages.is_empty() {
            self.commit(&id, &Change::Add(&packages)).await?;
        }
        Ok(id)
    }

    /// Adds `username` (all their devices) to the group conversation `conversation_id`.
    pub async fn add_to_group(&mut self, conversation_id: &str, username: &str) -> Result<User> {
        let user = self.find_user(username).await?;
        self.group(conversation_id)?;
        let packages = self.claim_key_packages(std::slice::from_ref(&user.id)).await?;
        self.commit(conversation_id, &Change::Add(&packages)).await?;
        Ok(user)
    }

    /// Removes `username` (all their devices) from the group conversation `conversation_id`
    /// (removing other users is for the conversation's admins).
    pub async fn remove_from_group(
        &mut self,
        conversation_id: &str,
        username: &str,
    ) -> Result<User> {
        let user = self.find_user(username).await?;
        self.commit(conversation_id, &Change::Remove(&user.id)).await?;
        Ok(user)
    }

    /// The members of a conversation's MLS group as this device sees them:
    /// `<user id>:<device id>` per leaf.
    pub fn members(&self, conversation_id: &str) -> Result<Vec<String>> {
        let group = self.group(conversation_id)?;
        Ok(group
            .members()
            .map(|m| String::from_utf8_lossy(m.credential.serialized_content()).into_owned())
            .collect())
    }

    /// Leaves a conversation: the server stops delivering to this user's devices, and the
    /// next message of a remaining member removes their leaves from the MLS group. This
    /// device forgets the group.
    pub async fn leave(&mut self, conversation_id: &str) -> Result<()> {
        let path = format!("/api/v1/conversations/{conversation_id}/members/me");
        self.call(Method::DELETE, &path, false, Body::None).await?;
        if let Ok(mut group) = self.group(conversation_id) {
            group.delete(self.provider.storage()).map_err(mls)?;
            self.save_mls()?;
        }
        Ok(())
    }

    /// Removes one of this user's devices (a lost phone): its KeyPackages, inbox and places
    /// in conversations go; the other members' next messages remove it from the MLS groups.
    pub async fn remove_device(&mut self, device_id: &str) -> Result<()> {
        if device_id == self.device_id()? {
            return Err(Error::other("this is the device in use; remove it from another one"));
        }
        self.call(Method::DELETE, &format!("/api/v1/devices/{device_id}"), false, Body::None)
            .await?;
        Ok(())
    }

    /// Before sending to a conversation: the MLS group's members that the server no longer
    /// has in the conversation — a removed device, a user who left — are removed by a Commit,
    /// so that they cannot read what comes next even if they got hold of it. (A server that
    /// hides a removal keeps a device it would deliver to anyway; one that invents a removal
    /// only has a device removed.)
    pub(super) async fn remove_gone_devices(&mut self, conversation_id: &str) -> Result<()> {
        let members = self.members(conversation_id)?; // first: not in the group is local news
        let path = format!("/api/v1/conversations/{conversation_id}");
        let view: ConversationDevices =
            self.call_json(Method::GET, &path, false, Body::None).await?;
        let Some(present) = view.devices else { return Ok(()) };
        let own = self.device_id()?.to_owned();
        let gone: Vec<String> = members
            .into_iter()
            .filter(|identity| {
                let device = identity.split_once(':').map_or(identity.as_str(), |(_, d)| d);
                device != own && !present.iter().any(|p| p == device)
            })
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.commit(conversation_id, &Change::RemoveGone(&gone)).await
    }

    /// Updates this device's keys in a group (a self-update Commit): post-compromise security.
    pub async fn update_keys(&mut self, conversation_id: &str) -> Result<()> {
        self.commit(conversation_id, &Change::Update).await
    }

    /// Commits `change` (with a Welcome for added members). On `stale_epoch` drops the
    /// Commit, syncs (applying the Commit that won the epoch) and tries once more.
    pub(super) async fn commit(
        &mut self,
        conversation_id: &str,
        change: &Change<'_>,
    ) -> Result<()> {
        let path = format!("/api/v1/conversations/{conversation_id}/commits");
        let mut retried = false;
        loop {
            let mut group = self.group(conversation_id)?;
            let signer = self.signer()?;
            let mut removed_devices = Vec::new();
            let (commit, welcome, group_info) = match change {
                Change::Add(packages) => {
                    let (commit, welcome, info) =
                        group.add_members(&self.provider, &signer, packages).map_err(mls)?;
                    (commit, Some(welcome), info)
                }
                Change::Remove(user_id) => {
                    let prefix = format!("{user_id}:");
                    let mut leaves = Vec::new();
                    for member in group.members() {
                        let identity =
                            String::from_utf8_lossy(member.credential.serialized_content());
                        if let Some(device) = identity.strip_prefix(&prefix) {
                            leaves.push(member.index);
                            removed_devices.push(device.to_owned());
                        }
                    }
                    if leaves.is_empty() {
                        return Err(Error::other("that user is not in the group"));
                    }
                    group.remove_members(&self.provider, &signer, &leaves).map_err(mls)?
                }
                Change::RemoveGone(identities) => {
                    let mut leaves = Vec::new();
                    for member in group.members() {
                        let identity = member.credential.serialized_content();
                        if let Some(gone) = identities.iter().find(|i| i.as_bytes() == identity) {
                            leaves.push(member.index);
                            let device = gone.split_once(':').map_or(gone.as_str(), |(_, d)| d);
                            removed_devices.push(device.to_owned());
                        }
                    }
                    if leaves.is_empty() {
                        return Ok(()); // removed by someone else's Commit meanwhile
                    }
                    group.remove_members(&self.provider, &signer, &leaves).map_err(mls)?
                }
                Change::Update => {
                    let (commit, _, info) = group
                        .self_update(&self.provider, &signer, LeafNodeParameters::default())
                        .map_err(mls)?
                        .into_contents();
                    (commit, None, info)
                }
            };
            self.save_mls()?;
            let body = json!({
                "commit": mls_bytes(&commit)?,
                "welcome": welcome.as_ref().map(mls_bytes).transpose()?,
                // Published for the user's new devices, which join by external Commit.
                "group_info": group_info.map(|g| mls_bytes(&g.into())).transpose()?,
                "removed_devices": removed_devices,
            });
            match self.call(Method::POST, &path, true, Body::Json(body)).await {
                Ok(_) => {
                    group.merge_pending_commit(&self.provider).map_err(mls)?;
                    self.save_mls()?;
                    return Ok(());
                }
                Err(e) => {
                    group.clear_pending_commit(self.provider.storage()).map_err(mls)?;
                    self.save_mls()?;
                    if retried || e.code() != Some("stale_epoch") {
                        return Err(e);
                    }
                    retried = true;
                    self.sync().await?;
                }
            }
        }
    }
}
