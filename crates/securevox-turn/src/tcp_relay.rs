//! The sockets of TCP allocations (RFC 6062): a listening socket on each relayed transport
//! address, the connections it makes to peers from that same address, and the splice that
//! joins a peer data connection to its client data connection once bound. What they mean —
//! which peer may connect, which client a connection belongs to — is `peer_connections`'.

use crate::bandwidth::TokenBucket;
use crate::engine::{lock, Engine, Shared};
use crate::stats::{add, TurnStats};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// How long a connection to a peer may take (RFC 6062 §5.2: at least 30 s).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read at once from either side of a spliced pair.
const CHUNK: usize = 16 * 1024;

/// Binds and listens on `ip` at a port of `range` that is not `taken`.
///
/// Every connection of the relay to a peer leaves from this same address, which Linux allows
/// next to a listening socket only when both have SO_REUSEPORT. The listener takes it after
/// `bind`: binding without it fails on a port that any other socket holds, so two relays (of
/// this process or another) never share a port.
pub(crate) fn listen(
    ip: IpAddr,
    range: &RangeInclusive<u16>,
    taken: impl Fn(u16) -> bool,
) -> io::Result<TcpListener> {
    crate::relay::first_free(range, taken, false, |port| {
        let addr = SocketAddr::new(ip, port);
        let socket = new_socket(addr)?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.set_reuseport(true)?;
        socket.listen(128)
    })
}

/// Connects from the relay bound at `local` to `peer`, within [`CONNECT_TIMEOUT`].
pub(crate) async fn connect(local: SocketAddr, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = new_socket(local)?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(local)?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(peer))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn new_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    if addr.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
}

/// Accepts peers' connections to the relay advertised at `advertised` until the engine closes
/// it (by aborting this task) or the engine is gone.
pub(crate) async fn accept(
    engine: Weak<Mutex<Engine>>,
    listener: TcpListener,
    advertised: SocketAddr,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Some(engine) = engine.upgrade() else { return };
        let _ = stream.set_nodelay(true);
        lock(&engine).on_peer_connection(advertised, stream, peer);
    }
}

/// The bandwidth cap of one TCP allocation, shared by all its connections.
#[derive(Debug)]
pub(crate) struct Caps {
    to_peers: Mutex<TokenBucket>,
    to_client: Mutex<TokenBucket>,
}

impl Caps {
    pub(crate) fn new(bits_per_second: u64) -> Self {
        let now = Instant::now();
        Self {
            to_peers: Mutex::new(TokenBucket::new(bits_per_second, now)),
            to_client: Mutex::new(TokenBucket::new(bits_per_second, now)),
        }
    }
}

/// A peer data connection handed to the client data connection that bound it.
#[derive(Debug)]
pub(crate) struct Bound {
    pub id: u32,
    pub peer: TcpStream,
    pub caps: Arc<Caps>,
    /// Resolves (or fails, when the engine drops its end) when the engine closes the pair.
    pub stop: oneshot::Receiver<()>,
}

/// Relays bytes both ways between a client data connection and its peer data connection until
/// either side closes or the engine stops the pair; `early` is what the client sent right
/// behind its ConnectionBind. When one side closes, what it sent is written out and the other
/// side is closed too (RFC 6062 §5.5).
pub(crate) async fn splice(
    engine: &Shared,
    client: impl AsyncRead + AsyncWrite + Unpin,
    early: Vec<u8>,
    bound: Bound,
    stats: &TurnStats,
) {
    let Bound { id, peer, caps, stop } = bound;
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut peer_in, mut peer_out) = peer.into_split();
    let up = async {
        if !early.is_empty() {
            pace(&caps.to_peers, early.len()).await;
            if peer_out.write_all(&early).await.is_err() {
                return;
            }
            add(&stats.bytes_to_peers, early.len());
        }
        pump(&mut client_in, &mut peer_out, &caps.to_peers, &stats.bytes_to_peers).await;
    };
    let down = pump(&mut peer_in, &mut client_out, &caps.to_client, &stats.bytes_to_clients);
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = stop => {}
    }
    lock(engine).on_splice_ended(id);
}

/// Copies `from` to `to` within the cap, counting the bytes, until `from` ends or `to` fails.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    cap: &Mutex<TokenBucket>,
    counter: &AtomicU64,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pace(cap, n).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        add(counter, n);
    }
    let _ = to.shutdown().await;
}

/// Waits until `bytes` fit the cap (no wait when there is none).
async fn pace(cap: &Mutex<TokenBucket>, bytes: usize) {
    let wait =
        cap.lock().unwrap_or_else(std::sync::PoisonError::into_inner).debit(bytes, Instant::now());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}
