#![allow(clippy::wildcard_imports)] // the parent's imports, shared by its parts
//! Staying connected: the device's live socket, with what the server pushes applied as it
//! comes, and reconnection (with a sync to catch up) when the connection drops.

use super::*;
use crate::live::{Event, Live};
use std::time::Duration;

/// What [`Client::listen`] hands its callback.
#[derive(Debug, Clone)]
pub enum Update {
    /// New items were applied (messages, joins, Commits), in order.
    Synced(SyncReport),
    /// An ephemeral message (typing) from a member.
    Ephemeral(Message),
    /// The live connection is up (again); everything before it has been synced.
    Connected,
    /// The live connection dropped; it is retried after the delay given.
    Disconnected(Duration),
}

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Client {
    /// Opens this device's live connection (Socket.IO, `auth: {token, deviceId}`).
    pub async fn connect_live(&mut self) -> Result<Live> {
        let device = self.device_id()?.to_owned();
        let server = self.profile.server.clone();
        match Live::connect(&server, &self.profile.access_token, Some(&device)).await {
            Err(Error::Api { status: 401, .. }) => {
                self.refresh().await?;
                Live::connect(&server, &self.profile.access_token, Some(&device)).await
            }
            other => other,
        }
    }

    /// Stays connected until `on_update` returns `false`: syncs, then applies what the
    /// server pushes as it arrives (see [`Client::receive_pushed`]); when the connection
    /// drops, waits (1 s, doubling up to 30 s), reconnects and syncs again, so nothing is
    /// missed. Errors that retrying cannot fix (a revoked session, a broken profile) end it.
    pub async fn listen<F>(&mut self, mut on_update: F) -> Result<()>
    where
        F: FnMut(Update) -> bool,
    {
        let mut backoff = Duration::from_secs(1);
        loop {
            let live = match self.connect_live().await {
                Ok(live) => live,
                Err(e @ Error::Api { .. }) => return Err(e),
                Err(_) => {
                    if !on_update(Update::Disconnected(backoff)) {
                        return Ok(());
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            // Connected first, then synced: what arrives in between is pushed, and an item
            // the sync already took is skipped by its id.
            let report = self.sync().await?;
            if !on_update(Update::Connected) || !Self::report(&mut on_update, report) {
                live.close().await;
                return Ok(());
            }
            if !self.serve(live, &mut on_update).await? {
                return Ok(());
            }
            if !on_update(Update::Disconnected(backoff)) {
                return Ok(());
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// Handles events until the connection ends (`Ok(true)`) or `on_update` says stop.
    async fn serve<F>(&mut self, mut live: Live, on_update: &mut F) -> Result<bool>
    where
        F: FnMut(Update) -> bool,
    {
        loop {
            let Ok(Some(event)) = live.next_event().await else { return Ok(true) };
            let go_on = match event {
                Event { name, data } if name == "inbox" => {
                    let report = self.receive_pushed(&data).await?;
                    Self::report(on_update, report)
                }
                Event { name, data } if name == "ephemeral" => {
                    match self.receive_ephemeral(&data)? {
                        Some(message) => on_update(Update::Ephemeral(message)),
                        None => true,
                    }
                }
                _ => true,
            };
            if !go_on {
                live.close().await;
                return Ok(false);
            }
        }
    }

    fn report<F: FnMut(Update) -> bool>(on_update: &mut F, report: SyncReport) -> bool {
        let empty = report.messages.is_empty()
            && report.joined.is_empty()
            && report.removed_from.is_empty()
            && report.commits == 0
            && report.errors.is_empty()
            && report.warnings.is_empty();
        empty || on_update(Update::Synced(report))
    }
}
