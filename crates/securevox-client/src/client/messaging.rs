#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! Messages: sending text and content, syncing the device's inbox (Welcomes, Commits,
//! application messages, in order), the local history, files and safety numbers.

use super::wire::*;
use super::*;

impl Client {
    /// Sends a text message.
    pub async fn send_text(&mut self, conversation_id: &str, text: &str) -> Result<Message> {
        self.send_content(conversation_id, Content::Text { body: text.to_owned() }).await
    }

    /// Sends `content` as an MLS application message. On `stale_epoch` syncs (applying the
    /// Commit that moved the group on) and tries once more.
    pub async fn send_content(
        &mut self,
        conversation_id: &str,
        content: Content,
    ) -> Result<Message> {
        self.remove_gone_devices(conversation_id).await?;
        let plaintext = serde_json::to_vec(&content)?;
        let path = format!("/api/v1/conversations/{conversation_id}/messages");
        let mut retried = false;
        loop {
            let mut group = self.group(conversation_id)?;
            let signer = self.signer()?;
            let out = group.create_message(&self.provider, &signer, &plaintext).map_err(mls)?;
            self.save_mls()?;
            let body = json!({ "message": mls_bytes(&out)? });
            match self.call_json::<Accepted>(Method::POST, &path, true, Body::Json(body)).await {
                Ok(accepted) => {
                    let message = Message {
                        conversation_id: conversation_id.to_owned(),
                        seq: Some(accepted.seq),
                        sender_user_id: self.profile.user_id.clone(),
                        sender_device_id: self.device_id()?.to_owned(),
                        outgoing: true,
                        time: now(),
                        content,
                    };
                    self.log(&message)?;
                    return Ok(message);
                }
                Err(e) if !retried && e.code() == Some("stale_epoch") => {
                    retried = true;
                    self.sync().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fetches the inbox, processes everything in order (joins groups from Welcomes, applies
    /// Commits, decrypts messages), acknowledges it, and tops up KeyPackages if the server's
    /// stock is low. New messages are also appended to the local log.
    pub async fn sync(&mut self) -> Result<SyncReport> {
        let device = self.device_id()?.to_owned();
        let mut report = SyncReport::default();
        let mut changed = std::collections::BTreeSet::new();
        loop {
            let path = format!(
                "/api/v1/devices/{device}/inbox?after={}&limit=100",
                self.profile.inbox_cursor
            );
            let page: InboxPage = self.call_json(Method::GET, &path, false, Body::None).await?;
            for item in &page.items {
                self.take(item, &mut report, &mut changed)?;
            }
            self.advance_cursor(page.next_after).await?;
            if !page.more || page.items.is_empty() {
                break;
            }
        }
        self.check_changed(&changed, &mut report).await?;
        report.key_packages_uploaded = self.top_up_key_packages().await?;
        Ok(report)
    }

    /// Applies an item the server pushed over Socket.IO (the `inbox` event; connect with
    /// `auth: {token, deviceId}` to get them) when this device has handled everything before
    /// it (`item.prev` at or before the cursor); otherwise — or for a bare hint — syncs.
    /// An item already handled is ignored.
    pub async fn receive_pushed(&mut self, event: &serde_json::Value) -> Result<SyncReport> {
        let Some(item) = event.get("item") else { return self.sync().await };
        let item: InboxItem = serde_json::from_value(item.clone())?;
        let cursor = self.profile.inbox_cursor;
        if item.id <= cursor {
            return Ok(SyncReport::default());
        }
        if item.prev.unwrap_or(0) > cursor {
            return self.sync().await;
        }
        let mut report = SyncReport::default();
        let mut changed = std::collections::BTreeSet::new();
        self.take(&item, &mut report, &mut changed)?;
        self.advance_cursor(item.id).await?;
        self.check_changed(&changed, &mut report).await?;
        Ok(report)
    }

    /// Processes one inbox item into `report` and saves the MLS state.
    fn take(
        &mut self,
        item: &InboxItem,
        report: &mut SyncReport,
        changed: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        match self.handle(item) {
            Ok(Handled::Message(message)) => {
                self.log(&message)?;
                report.messages.push(*message);
            }
            Ok(Handled::Joined(id)) => {
                changed.insert(id.clone());
                report.joined.push(id);
            }
            Ok(Handled::Removed(id)) => report.removed_from.push(id),
            Ok(Handled::Commit) => {
                changed.insert(item.conversation_id.clone());
                report.commits += 1;
            }
            Ok(Handled::Nothing) => {}
            Err(e) => report.errors.push(format!(
                "inbox item {} ({} in {}): {e}",
                item.id, item.kind, item.conversation_id
            )),
        }
        self.save_mls()
    }

    /// Moves the cursor to `to` (if it is ahead), saves it, and acknowledges up to it.
    async fn advance_cursor(&mut self, to: i64) -> Result<()> {
        if to <= self.profile.inbox_cursor {
            return Ok(());
        }
        self.profile.inbox_cursor = to;
        self.profile.save(&self.dir)?;
        let ack = format!("/api/v1/devices/{}/inbox/ack", self.device_id()?);
        self.call(Method::POST, &ack, false, Body::Json(json!({ "up_to": to }))).await?;
        Ok(())
    }

    /// Verifies the members of the groups that changed.
    async fn check_changed(
        &mut self,
        changed: &std::collections::BTreeSet<String>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut cache = HashMap::new();
        for id in changed {
            report.warnings.extend(self.check_members(id, &mut cache).await?);
        }
        Ok(())
    }

    /// Checks every member of a group: its credential must be `<user id>:<device id>` of a
    /// device whose signature key the user's identity key signed. Returns the problems found.
    pub async fn check_members(
        &mut self,
        conversation_id: &str,
        cache: &mut HashMap<String, HashMap<String, Vec<u8>>>,
    ) -> Result<Vec<String>> {
        let Ok(group) = self.group(conversation_id) else {
            return Ok(Vec::new()); // left or never joined
        };
        let members: Vec<(String, Vec<u8>)> = group
            .members()
            .map(|m| {
                let identity = String::from_utf8_lossy(m.credential.serialized_content());
                (identity.into_owned(), m.signature_key)
            })
            .collect();
        let mut problems = Vec::new();
        for (identity, key) in members {
            let Some((user, device)) = identity.split_once(':') else {
                problems.push(format!("{conversation_id}: member {identity:?} is not user:device"));
                continue;
            };
            if !cache.contains_key(user) {
                let devices = match self.verified_devices(user).await {
                    Ok((_, devices)) => devices,
                    Err(e) => {
                        problems.push(format!("{conversation_id}: cannot verify {user}: {e}"));
                        HashMap::new()
                    }
                };
                cache.insert(user.to_owned(), devices);
            }
            if cache.get(user).and_then(|d| d.get(device)) != Some(&key) {
                problems.push(format!(
                    "{conversation_id}: member {identity} is not a device vouched for by its \
                     user's identity key"
                ));
            }
        }
        Ok(problems)
    }

    pub(super) fn handle(&self, item: &InboxItem) -> Result<Handled> {
        let bytes = unb64("inbox item", &item.data)?;
        let message = MlsMessageIn::tls_deserialize_exact(bytes.as_slice()).map_err(mls)?;
        if item.kind == "welcome" {
            let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
                return Err(Error::other("a welcome item that is not a Welcome"));
            };
            let config = MlsGroupJoinConfig::builder()
                .use_ratchet_tree_extension(true)
                .max_past_epochs(MAX_PAST_EPOCHS)
                .build();
            let staged = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
                .map_err(mls)?;
            if staged.group_context().group_id().as_slice() != item.conversation_id.as_bytes() {
                return Err(Error::other("the Welcome is for another group than its conversation"));
            }
            staged.into_group(&self.provider).map_err(mls)?;
            return Ok(Handled::Joined(item.conversation_id.clone()));
        }
        let mut group = self.group(&item.conversation_id)?;
        let message = message.try_into_protocol_message().map_err(mls)?;
        let processed = group.process_message(&self.provider, message).map_err(mls)?;
        let sender =
            String::from_utf8_lossy(processed.credential().serialized_content()).into_owned();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => {
                let (user, device) = sender.split_once(':').unwrap_or((sender.as_str(), ""));
                if item.sender_device.as_deref().is_some_and(|d| d != device) {
                    return Err(Error::other(format!(
                        "the server says device {:?} sent it, the MLS credential says {device}",
                        item.sender_device
                    )));
                }
                let bytes = m.into_bytes();
                let content = serde_json::from_slice(&bytes).unwrap_or_else(|_| Content::Unknown {
                    raw: String::from_utf8_lossy(&bytes).into_owned(),
                });
                Ok(Handled::Message(Box::new(Message {
                    conversation_id: item.conversation_id.clone(),
                    seq: item.seq,
                    sender_user_id: user.to_owned(),
                    sender_device_id: device.to_owned(),
                    outgoing: false,
                    time: item.created_at.clone(),
                    content,
                })))
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let removed = staged.self_removed();
                group.merge_staged_commit(&self.provider, *staged).map_err(mls)?;
                if removed {
                    return Ok(Handled::Removed(item.conversation_id.clone()));
                }
                Ok(Handled::Commit)
            }
            ProcessedMessageContent::ProposalMessage(proposal) => {
                group.store_pending_proposal(self.provider.storage(), *proposal).map_err(mls)?;
                Ok(Handled::Nothing)
            }
            ProcessedMessageContent::OwnPendingCommit => {
                group.merge_pending_commit(&self.provider).map_err(mls)?;
                Ok(Handled::Commit)
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(_)
            | ProcessedMessageContent::OwnPrivateMessage => Ok(Handled::Nothing),
        }
    }

    pub(super) fn log(&self, message: &Message) -> Result<()> {
        store::append_private(&self.dir.join(store::LOG_FILE), &serde_json::to_vec(message)?)
    }

    /// The local message log (everything this device sent or received), oldest first; only
    /// `conversation_id`'s if given.
    pub fn history(&self, conversation_id: Option<&str>) -> Result<Vec<Message>> {
        let text = match std::fs::read_to_string(self.dir.join(store::LOG_FILE)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut messages = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let message: Message = serde_json::from_str(line)?;
            if conversation_id.is_none_or(|id| id == message.conversation_id) {
                messages.push(message);
            }
        }
        Ok(messages)
    }

    // ----- files ---------------------------------------------------------------------------
}
