//! The data plane's shortcut. turn-server-proto finds the allocation of every packet by scanning
//! all clients, allocations and permissions (a tenth of the server's CPU at 100 sessions), so
//! ChannelData in both directions is relayed from hash maps instead. The maps mirror exactly
//! what the protocol server granted: a permission or channel is recorded when its *success*
//! response leaves for the client, with the protocol crate's lifetimes (permissions 300 s,
//! channels 600 s, and a ChannelBind also refreshes its peer's permission), and it is gone
//! with its relay. Anything the shortcut does not know — Send/Data indications, expired
//! entries, unknown channels — goes the protocol crate's way, which decides as before.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// turn-server-proto 0.7.3's `PERMISSION_DURATION` and `CHANNEL_DURATION`.
const PERMISSION: Duration = Duration::from_mins(5);
const CHANNEL: Duration = Duration::from_mins(10);

/// A request on its way to the protocol server that grants something once answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    Permissions(Vec<IpAddr>),
    Channel(u16, SocketAddr),
}

/// What one relay may send and to which channel a peer's packets go.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    channels: HashMap<u16, (SocketAddr, Instant)>,
    channel_of: HashMap<SocketAddr, u16>,
    permissions: HashMap<IpAddr, Instant>,
}

impl Routes {
    pub(crate) fn apply(&mut self, grant: &Grant, now: Instant) {
        match grant {
            Grant::Permissions(ips) => {
                for ip in ips {
                    self.permissions.insert(*ip, now + PERMISSION);
                }
            }
            Grant::Channel(number, peer) => {
                // The protocol server refuses rebinding a number or a peer elsewhere, so a
                // success here is a new binding or a refresh of the same one.
                self.channels.insert(*number, (*peer, now + CHANNEL));
                self.channel_of.insert(*peer, *number);
                self.permissions.insert(peer.ip(), now + PERMISSION);
            }
        }
    }

    pub(crate) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|until| *until >= now)
    }

    /// The peer of a live channel with a live permission.
    pub(crate) fn peer_of(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        let (peer, until) = self.channels.get(&number)?;
        (*until >= now && self.permitted(peer.ip(), now)).then_some(*peer)
    }

    /// The live channel a peer's packets travel in, if its permission is live too.
    pub(crate) fn channel_to(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let number = *self.channel_of.get(&peer)?;
        let (_, until) = self.channels.get(&number)?;
        (*until >= now && self.permitted(peer.ip(), now)).then_some(number)
    }
}

/// Whether `bytes` is a CreatePermission or ChannelBind response, and if so whether it is a
/// success; with its transaction id.
pub(crate) fn grant_response(bytes: &[u8]) -> Option<(bool, [u8; 12])> {
    if bytes.len() < 20 {
        return None;
    }
    let success = match (bytes[0], bytes[1]) {
        (0x01, 0x08 | 0x09) => true,
        (0x01, 0x18 | 0x19) => false,
        _ => return None,
    };
    let mut transaction = [0; 12];
    transaction.copy_from_slice(&bytes[8..20]);
    Some((success, transaction))
}

/// A ChannelData message's number and payload.
pub(crate) fn channel_data(data: &[u8]) -> Option<(u16, &[u8])> {
    if data.len() < 4 || data[0] & 0xc0 != 0x40 {
        return None;
    }
    let number = u16::from_be_bytes([data[0], data[1]]);
    let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
    data.get(4..4 + length).map(|payload| (number, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn routes_follow_the_protocol_lifetimes() {
        let now = Instant::now();
        let mut routes = Routes::default();
        let p = peer("198.51.100.7:4000");
        assert_eq!(routes.peer_of(0x4000, now), None);
        routes.apply(&Grant::Channel(0x4000, p), now);
        assert_eq!(routes.peer_of(0x4000, now), Some(p));
        assert_eq!(routes.channel_to(p, now), Some(0x4000));
        // The permission lapses at 300 s unless refreshed; the channel would last 600 s.
        let later = now + Duration::from_secs(301);
        assert_eq!(routes.peer_of(0x4000, later), None);
        routes.apply(&Grant::Permissions(vec![p.ip()]), later);
        assert_eq!(routes.peer_of(0x4000, later), Some(p));
        assert_eq!(routes.channel_to(p, now + Duration::from_secs(601)), None);
        assert_eq!(routes.channel_to(peer("198.51.100.7:4001"), now), None, "another port");
    }

    #[test]
    fn parses_responses_and_channel_data() {
        let mut success = vec![0x01, 0x09, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        success.extend(1..=12u8);
        let mut id = [0; 12];
        id.copy_from_slice(&success[8..20]);
        assert_eq!(grant_response(&success), Some((true, id)));
        success[1] = 0x18;
        assert_eq!(grant_response(&success), Some((false, id)));
        success[1] = 0x03;
        assert_eq!(grant_response(&success), None, "an Allocate response");
        assert_eq!(channel_data(&[0x40, 0x01, 0, 2, 9, 8, 0, 0]), Some((0x4001, &[9u8, 8][..])));
        assert_eq!(channel_data(&[0x40, 0x01, 0, 9, 1]), None, "shorter than it says");
        assert_eq!(channel_data(&[0x00, 0x01, 0, 0]), None, "STUN");
    }
}
