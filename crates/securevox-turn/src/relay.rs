//! Relay sockets: one UDP socket per relayed transport address, from the configured port
//! range, and the task that hands what peers send to the engine. (TCP relays: `tcp_relay`.)

use crate::engine::{lock, Engine};
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, Weak};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

/// Packets taken per wake-up (and per lock) when a socket has a backlog.
const BATCH: usize = 64;

impl Engine {
    /// Binds a UDP relay on `ip` and starts reading it: its advertised address, the socket to
    /// send with, and the reading task.
    pub(crate) fn bind_udp_relay(
        &self,
        ip: IpAddr,
        even: bool,
    ) -> io::Result<(SocketAddr, Option<std::net::UdpSocket>, AbortHandle)> {
        let (socket, out) = bind(ip, &self.settings.relay_ports, self.port_taken(ip), even)?;
        let advertised = self.settings.advertised(socket.local_addr()?);
        let task = tokio::spawn(run(self.me.clone(), Arc::new(socket), advertised));
        Ok((advertised, Some(out), task.abort_handle()))
    }
}

/// Binds a UDP socket on `ip` at a port of `range` not `taken` (an even one if `even`).
/// turn-server-proto ignores EVEN-PORT; a client that asked for it (RTP, coturn's uclient)
/// would otherwise drop an odd relay and retry, leaving the allocation behind.
/// Returns the socket twice: registered with tokio for the reading task, and a plain clone
/// that the engine sends with (a send is then one `sendto`, not gated by tokio's readiness
/// state, which a socket just registered does not have yet).
pub(crate) fn bind(
    ip: IpAddr,
    range: &RangeInclusive<u16>,
    taken: impl Fn(u16) -> bool,
    even: bool,
) -> io::Result<(UdpSocket, std::net::UdpSocket)> {
    first_free(range, taken, even, |port| {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
        socket.set_nonblocking(true)?;
        let sender = socket.try_clone()?;
        Ok((UdpSocket::from_std(socket)?, sender))
    })
}

/// Tries the ports of `range` that are not `taken` (only even ones if `even`) with `bind`
/// until one is free, starting from a random one so that relayed addresses are hard to guess
/// (RFC 8656 §7.2).
pub(crate) fn first_free<T>(
    range: &RangeInclusive<u16>,
    taken: impl Fn(u16) -> bool,
    even: bool,
    mut bind: impl FnMut(u16) -> io::Result<T>,
) -> io::Result<T> {
    let (low, high) = (u32::from(*range.start()), u32::from(*range.end()));
    let span = high - low + 1;
    let start = rand::random::<u32>() % span;
    // Try at most 256 ports: a full range is reported, not searched port by port.
    for i in 0..span.min(256) {
        let port = (low + (start + i) % span) as u16;
        if taken(port) || (even && port % 2 == 1) {
            continue;
        }
        match bind(port) {
            Ok(bound) => return Ok(bound),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "the relay port range is full"))
}

/// Reads what peers send to the relay advertised at `advertised` until the engine closes it
/// (by aborting this task) or the engine is gone.
pub(crate) async fn run(
    engine: Weak<Mutex<Engine>>,
    socket: Arc<UdpSocket>,
    advertised: SocketAddr,
) {
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let Some(engine) = engine.upgrade() else { return };
        let mut engine = lock(&engine);
        take_batch(&socket, |peer, data| engine.on_peer_packet(advertised, peer, data));
    }
}

thread_local! {
    /// The datagram buffer of every socket on the TURN thread: reads are handled before the
    /// next one, so one buffer serves them all (rather than 64 KiB per allocation).
    static DATAGRAM: RefCell<Vec<u8>> = RefCell::new(vec![0; 65_536]);
}

/// Hands up to [`BATCH`] waiting datagrams to `handle`, stopping when the socket is empty.
pub(crate) fn take_batch(socket: &UdpSocket, mut handle: impl FnMut(SocketAddr, &[u8])) {
    DATAGRAM.with_borrow_mut(|buf| batch(socket, buf, &mut handle));
}

fn batch(socket: &UdpSocket, buf: &mut [u8], handle: &mut impl FnMut(SocketAddr, &[u8])) {
    for _ in 0..BATCH {
        match socket.try_recv_from(buf) {
            Ok((n, from)) => handle(from, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // ICMP errors surface as failed reads on Linux; the next read goes on.
            Err(_) => {}
        }
    }
}
