//! The embedded STUN/TURN server as the rest of the server sees it: started and stopped with
//! [`serve`](crate::serve), its port in the credentials' URIs, its counters in `/health` and
//! `/metrics`.

use crate::config::TurnConfig;
use securevox_turn::{Turn, TurnSnapshot, TurnStats};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Default)]
pub struct EmbeddedTurn {
    running: OnceLock<(u16, Option<u16>, Arc<TurnStats>)>,
}

impl EmbeddedTurn {
    /// Starts the server when `turn.enabled`; `Ok(None)` when it is off.
    pub(crate) fn start(&self, config: &TurnConfig) -> std::io::Result<Option<Turn>> {
        if !config.enabled {
            return Ok(None);
        }
        let settings = config.embedded().map_err(std::io::Error::other)?;
        let turn = Turn::start(settings).map_err(|e| {
            std::io::Error::other(format!(
                "{e} (another TURN server, such as coturn, on the port? set turn.port, or \
                 turn.enabled = false to use that one)"
            ))
        })?;
        let _ = self.running.set((turn.port(), turn.tls_port(), turn.stats().clone()));
        Ok(Some(turn))
    }

    /// The UDP/TCP port of the running embedded server.
    pub fn port(&self) -> Option<u16> {
        self.running.get().map(|(port, ..)| *port)
    }

    /// The TURN-over-TLS port, when the embedded server has a certificate.
    pub fn tls_port(&self) -> Option<u16> {
        self.running.get().and_then(|(_, tls, _)| *tls)
    }

    pub fn snapshot(&self) -> Option<TurnSnapshot> {
        self.running.get().map(|(.., stats)| stats.snapshot())
    }
}
