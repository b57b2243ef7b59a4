#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! What people do to messages — react, edit, delete, acknowledge, type — as MLS application
//! messages like any other (the server sees ciphertext only), and the timeline that folds
//! them into the messages they point at. Typing goes as an unstored ephemeral message.

use super::wire::*;
use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// A message as the conversation shows it now: edits applied, deletions marked, reactions
/// and receipts gathered.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimelineEntry {
    /// A text or file message (its text as last edited).
    pub message: Message,
    pub edited: bool,
    /// Withdrawn by its sender: the content is gone from the timeline.
    pub deleted: bool,
    /// Emoji → users who reacted with it.
    pub reactions: BTreeMap<String, BTreeSet<String>>,
    /// Users (other than the sender) who reported it delivered, or read.
    pub delivered_to: BTreeSet<String>,
    pub read_by: BTreeSet<String>,
}

/// Folds a conversation's log into its timeline: text and file messages in order, with the
/// reactions, edits, deletions and receipts that name them (by `seq`) applied. An edit or
/// deletion counts only from the message's own sender; an unknown target is ignored.
pub fn fold(log: &[Message]) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = Vec::new();
    let mut by_seq: HashMap<i64, usize> = HashMap::new();
    for message in log {
        let target = |seq: &i64| by_seq.get(seq).copied();
        match &message.content {
            Content::Text { .. } | Content::File { .. } | Content::Unknown { .. } => {
                if let Some(seq) = message.seq {
                    by_seq.insert(seq, entries.len());
                }
                entries.push(TimelineEntry {
                    message: message.clone(),
                    edited: false,
                    deleted: false,
                    reactions: BTreeMap::new(),
                    delivered_to: BTreeSet::new(),
                    read_by: BTreeSet::new(),
                });
            }
            Content::Reaction { target: seq, emoji, remove } => {
                if let Some(i) = target(seq) {
                    let users = entries[i].reactions.entry(emoji.clone()).or_default();
                    if *remove {
                        users.remove(&message.sender_user_id);
                    } else {
                        users.insert(message.sender_user_id.clone());
                    }
                    entries[i].reactions.retain(|_, users| !users.is_empty());
                }
            }
            Content::Edit { target: seq, body } => {
                if let Some(entry) = target(seq).map(|i| &mut entries[i]) {
                    let own = entry.message.sender_user_id == message.sender_user_id;
                    if own && !entry.deleted {
                        if let Content::Text { body: text } = &mut entry.message.content {
                            text.clone_from(body);
                            entry.edited = true;
                        }
                    }
                }
            }
            Content::Delete { target: seq } => {
                if let Some(entry) = target(seq).map(|i| &mut entries[i]) {
                    if entry.message.sender_user_id == message.sender_user_id {
                        entry.deleted = true;
                        entry.message.content = Content::Text { body: String::new() };
                    }
                }
            }
            Content::Receipt { status, targets } => {
                for i in targets.iter().filter_map(target) {
                    let entry = &mut entries[i];
                    if entry.message.sender_user_id == message.sender_user_id {
                        continue;
                    }
                    let who = message.sender_user_id.clone();
                    if *status == ReceiptStatus::Read {
                        entry.read_by.insert(who.clone());
                    }
                    entry.delivered_to.insert(who);
                }
            }
            Content::Typing { .. } => {}
        }
    }
    entries
}

impl Client {
    /// The conversation as it reads now: text and file messages with the reactions, edits,
    /// deletions and receipts that name them applied (an edit or deletion counts only from
    /// the message's sender).
    pub fn timeline(&self, conversation_id: &str) -> Result<Vec<TimelineEntry>> {
        Ok(fold(&self.history(Some(conversation_id))?))
    }

    /// Reacts to message `target` with `emoji` (or takes the reaction back).
    pub async fn react(
        &mut self,
        conversation_id: &str,
        target: i64,
        emoji: &str,
        remove: bool,
    ) -> Result<Message> {
        let content = Content::Reaction { target, emoji: emoji.to_owned(), remove };
        self.send_content(conversation_id, content).await
    }

    /// Rewords this user's own text message `target`.
    pub async fn edit(
        &mut self,
        conversation_id: &str,
        target: i64,
        body: &str,
    ) -> Result<Message> {
        self.own_message(conversation_id, target)?;
        let content = Content::Edit { target, body: body.to_owned() };
        self.send_content(conversation_id, content).await
    }

    /// Withdraws this user's own message `target`.
    pub async fn delete(&mut self, conversation_id: &str, target: i64) -> Result<Message> {
        self.own_message(conversation_id, target)?;
        self.send_content(conversation_id, Content::Delete { target }).await
    }

    /// Tells the group that these messages reached this user, or were read.
    pub async fn send_receipt(
        &mut self,
        conversation_id: &str,
        status: ReceiptStatus,
        targets: &[i64],
    ) -> Result<Message> {
        let content = Content::Receipt { status, targets: targets.to_vec() };
        self.send_content(conversation_id, content).await
    }

    fn own_message(&self, conversation_id: &str, target: i64) -> Result<()> {
        let own = self.history(Some(conversation_id))?.iter().any(|m| {
            m.seq == Some(target)
                && m.sender_user_id == self.profile.user_id
                && matches!(m.content, Content::Text { .. } | Content::File { .. })
        });
        if own {
            Ok(())
        } else {
            Err(Error::other(format!("message {target} is not one of yours in this conversation")))
        }
    }

    /// Tells the group's connected devices that this user is typing (or stopped): an MLS
    /// application message relayed over Socket.IO and never stored. Returns how many devices
    /// got it.
    pub async fn send_typing(&mut self, conversation_id: &str, active: bool) -> Result<usize> {
        let plaintext = serde_json::to_vec(&Content::Typing { active })?;
        let mut group = self.group(conversation_id)?;
        let signer = self.signer()?;
        let out = group.create_message(&self.provider, &signer, &plaintext).map_err(mls)?;
        self.save_mls()?;
        let path = format!("/api/v1/conversations/{conversation_id}/ephemeral");
        let body = json!({ "message": mls_bytes(&out)? });
        let relayed: Relayed = self.call_json(Method::POST, &path, true, Body::Json(body)).await?;
        Ok(relayed.devices)
    }

    /// Decrypts an `ephemeral {conversationId, senderDevice, message}` Socket.IO event (not
    /// logged). `None` when it cannot be read now (this device is behind the group's epoch).
    pub fn receive_ephemeral(&mut self, event: &serde_json::Value) -> Result<Option<Message>> {
        let field = |name: &str| {
            event
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::other(format!("an ephemeral event without {name}")))
        };
        let item = InboxItem {
            id: 0,
            prev: None,
            conversation_id: field("conversationId")?,
            kind: "message".to_owned(),
            seq: None,
            sender_device: Some(field("senderDevice")?),
            data: field("message")?,
            created_at: now(),
        };
        // Only an application message may come this way: never let a relayed Commit move
        // the group outside the ordered inbox.
        let bytes = unb64("ephemeral message", &item.data)?;
        let application = MlsMessageIn::tls_deserialize_exact(bytes.as_slice())
            .ok()
            .and_then(|m| m.try_into_protocol_message().ok())
            .is_some_and(|m| m.content_type() == ContentType::Application);
        if !application {
            return Ok(None);
        }
        let handled = self.handle(&item);
        self.save_mls()?;
        match handled {
            Ok(Handled::Message(message)) => Ok(Some(*message)),
            Ok(_) | Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: i64, sender: &str, content: Content) -> Message {
        Message {
            conversation_id: "c".into(),
            seq: Some(seq),
            sender_user_id: sender.into(),
            sender_device_id: "d".into(),
            outgoing: false,
            time: String::new(),
            content,
        }
    }

    fn text(body: &str) -> Content {
        Content::Text { body: body.into() }
    }

    #[test]
    fn folds_actions_into_their_targets() {
        let log = [
            message(1, "alice", text("hi")),
            message(2, "bob", Content::Edit { target: 1, body: "bob edits".into() }),
            message(3, "alice", Content::Edit { target: 1, body: "hello".into() }),
            message(4, "bob", Content::Reaction { target: 1, emoji: "👍".into(), remove: false }),
            message(5, "bob", Content::Receipt { status: ReceiptStatus::Read, targets: vec![1] }),
            message(6, "alice", Content::Receipt { status: ReceiptStatus::Read, targets: vec![1] }),
            message(7, "bob", Content::Delete { target: 1 }),
            message(8, "alice", Content::Reaction { target: 99, emoji: "?".into(), remove: false }),
            message(9, "alice", Content::Typing { active: true }),
        ];
        let timeline = fold(&log);
        assert_eq!(timeline.len(), 1);
        let entry = &timeline[0];
        assert_eq!(entry.message.content, text("hello"), "only alice's edit counts");
        assert!(entry.edited && !entry.deleted, "bob cannot delete alice's message");
        assert_eq!(entry.reactions["👍"].iter().collect::<Vec<_>>(), ["bob"]);
        assert_eq!(entry.read_by.iter().collect::<Vec<_>>(), ["bob"], "not the sender herself");
        assert!(entry.delivered_to.contains("bob"), "read implies delivered");

        let deleted = fold(&[
            message(1, "alice", text("x")),
            message(2, "alice", Content::Delete { target: 1 }),
            message(3, "alice", Content::Edit { target: 1, body: "back".into() }),
        ]);
        assert!(deleted[0].deleted);
        assert_eq!(deleted[0].message.content, text(""), "a deletion is not undone by an edit");
    }
}
