//! SecureVox's embedded STUN/TURN server (T1–T3): the sans-IO protocol of `turn-server-proto`
//! (RFC 5766/8656 allocations, permissions, channels, Send/Data; STUN binding) driven by tokio
//! UDP and TCP sockets, with what that crate leaves to its user:
//!
//! - the TURN REST credential check *with expiry* ([`credentials`], in [`gate`]),
//! - refusing peers in the host's own networks ([`peers`]),
//! - per-user and total allocation quotas, and a per-allocation bandwidth cap ([`bandwidth`]),
//! - relay ports from a range, an external address for 1:1 NAT, counters ([`stats`]),
//! - the peer connections of TCP allocations (RFC 6062): Connect, ConnectionAttempt and
//!   ConnectionBind ([`peer_connections`], [`connection_bind`]) and their sockets and splice
//!   ([`tcp_relay`]).
//!
//! One [`engine::Engine`] owns all state behind a mutex; socket tasks lock it per batch of
//! packets and it never awaits. Relays are UDP (what WebRTC uses), reached by clients over UDP,
//! TCP or TLS, or TCP for clients that ask for one over TCP or TLS; a bound TCP peer connection
//! is spliced to its client data connection outside the engine.

pub mod bandwidth;
mod connection_bind;
pub mod credentials;
mod engine;
mod fastpath;
mod gate;
mod housekeeping;
mod listeners;
mod peer_connections;
pub mod peers;
mod relay;
pub mod settings;
pub mod stats;
mod strangers;
mod tcp_relay;
mod tls;

pub use settings::TurnSettings;
pub use stats::{TurnSnapshot, TurnStats};

use engine::{lock, Engine, Listener, Shared};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use turn_server_proto::server::TurnServer;
use turn_server_proto::types::TransportType;

/// Kernel buffers asked for on listening UDP sockets, so bursts are not dropped.
const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("turn.listen is empty")]
    NoListenAddress,
    #[error("TURN over TLS: {0}")]
    Tls(String),
    #[error("cannot start the TURN thread: {0}")]
    Runtime(io::Error),
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind { transport: &'static str, addr: SocketAddr, source: io::Error },
}

/// A running TURN server. Dropping it stops its thread too, without waiting.
pub struct Turn {
    engine: Shared,
    tasks: Vec<JoinHandle<()>>,
    port: u16,
    tls_port: Option<u16>,
    stats: Arc<TurnStats>,
    addresses: Vec<(&'static str, SocketAddr)>,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("port", &self.port)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Turn {
    /// Binds every listening socket (UDP and TCP on each `listen` address, one port for all)
    /// and starts serving on a thread of its own: relaying media never takes a core from HTTP
    /// and signaling, and one thread needs no cross-thread wake-ups nor contends for the
    /// engine's lock.
    pub fn start(settings: TurnSettings) -> Result<Self, StartError> {
        if settings.listen.is_empty() {
            return Err(StartError::NoListenAddress);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let handle = runtime.handle().clone();
        // The thread owns the runtime from the start: if anything below fails, `stop` is
        // dropped, the thread ends and drops the runtime there (never in the caller's async
        // context, where tokio forbids it).
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("securevox-turn".into())
            .spawn(move || {
                // Runs until `shutdown` (or a dropped `Turn`) ends the wait; dropping the
                // runtime then closes every socket its tasks held.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(StartError::Runtime)?;
        // Sockets register with the runtime they are created in.
        let _in_runtime = handle.enter();
        let (mut sockets, port) = bind_all(&settings)?;
        let tls = bind_tls(&settings, &mut sockets)?;
        let acceptor = tls.as_ref().map(|(acceptor, _)| acceptor.clone());
        let Served { listeners, addresses, tcp: tcp_listeners } =
            protocol_servers(sockets, &settings.realm, acceptor.as_ref())?;
        let udp_sockets: Vec<(usize, Arc<UdpSocket>)> = listeners
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.udp.clone().map(|s| (i, s)))
            .collect();
        let stats = Arc::new(TurnStats::default());
        let engine = Engine::new(Arc::new(settings), stats.clone(), listeners);
        let relay_ips = lock(&engine).relay_ips();
        if relay_ips.iter().all(Option::is_none) {
            tracing::warn!("TURN has no relay address: set turn.relay_ips; allocations will fail");
        }
        let mut tasks = Vec::new();
        for (idx, socket) in udp_sockets {
            tasks.push(handle.spawn(listeners::udp(engine.clone(), idx, socket)));
        }
        for (idx, listener, acceptor) in tcp_listeners {
            tasks.push(handle.spawn(listeners::tcp(engine.clone(), idx, listener, acceptor)));
        }
        tasks.push(handle.spawn(listeners::timer(engine.clone())));
        tracing::info!(
            port,
            relay_v4 = ?relay_ips[0],
            relay_v6 = ?relay_ips[1],
            "STUN/TURN listening on {}",
            addresses.iter().map(|(t, a)| format!("{t} {a}")).collect::<Vec<_>>().join(", ")
        );
        let tls_port = tls.map(|(_, port)| port);
        Ok(Self { engine, tasks, port, tls_port, stats, addresses, stop, thread })
    }

    /// The UDP and TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TURN-over-TLS port, when a certificate is configured.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    pub fn stats(&self) -> &Arc<TurnStats> {
        &self.stats
    }

    /// `("udp" | "tcp", address)` of every listening socket.
    pub fn addresses(&self) -> &[(&'static str, SocketAddr)] {
        &self.addresses
    }

    /// Open TCP client connections.
    pub fn tcp_connections(&self) -> usize {
        lock(&self.engine).tcp_connections()
    }

    /// Stops listening and releases every allocation, relay port and connection.
    pub fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        lock(&self.engine).close_all();
        let _ = self.stop.send(());
        let _ = self.thread.join();
        tracing::info!("STUN/TURN stopped");
    }
}

/// `("udp" | "tcp" | "tls", address)` of a listening socket.
type Address = (&'static str, SocketAddr);
/// A TCP listener to accept, with the TLS acceptor in front of it if it serves TLS.
type TcpEntry = (usize, TcpListener, Option<tokio_rustls::TlsAcceptor>);

/// Binds the TLS listeners (one port on every listen address) when a certificate is configured.
fn bind_tls(
    settings: &TurnSettings,
    sockets: &mut Vec<Bound>,
) -> Result<Option<(tokio_rustls::TlsAcceptor, u16)>, StartError> {
    let Some(files) = &settings.tls else { return Ok(None) };
    let acceptor = tls::acceptor(files)?;
    let mut port = files.port;
    for ip in &settings.listen {
        let addr = SocketAddr::new(*ip, port);
        let listener =
            bind_tcp(addr).map_err(|source| StartError::Bind { transport: "tls", addr, source })?;
        port = listener.local_addr().map_or(port, |a| a.port());
        sockets.push(Bound::Tls(listener));
    }
    Ok(Some((acceptor, port)))
}

/// What [`protocol_servers`] makes of the bound sockets.
struct Served {
    listeners: Vec<Listener>,
    addresses: Vec<Address>,
    tcp: Vec<TcpEntry>,
}

/// A protocol server for every bound socket, and what the tasks need to serve them.
fn protocol_servers(
    sockets: Vec<Bound>,
    realm: &str,
    tls: Option<&tokio_rustls::TlsAcceptor>,
) -> Result<Served, StartError> {
    let mut listeners = Vec::new();
    let mut addresses = Vec::new();
    let mut tcp = Vec::new();
    for bound in sockets {
        let transport = bound.kind();
        let local = match &bound {
            Bound::Udp(socket, _) => socket.local_addr(),
            Bound::Tcp(listener) | Bound::Tls(listener) => listener.local_addr(),
        };
        let addr = local.map_err(|source| StartError::Bind {
            transport,
            addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0),
            source,
        })?;
        addresses.push((transport, addr));
        let (kind, udp, udp_out) = match bound {
            Bound::Udp(socket, out) => (TransportType::Udp, Some(Arc::new(socket)), Some(out)),
            Bound::Tcp(listener) => {
                tcp.push((listeners.len(), listener, None));
                (TransportType::Tcp, None, None)
            }
            Bound::Tls(listener) => {
                tcp.push((listeners.len(), listener, tls.cloned()));
                (TransportType::Tcp, None, None)
            }
        };
        listeners.push(Listener {
            server: TurnServer::new(kind, addr, realm.to_owned()),
            transport: kind,
            addr,
            udp,
            udp_out,
            known_users: HashSet::new(),
        });
    }
    Ok(Served { listeners, addresses, tcp })
}

enum Bound {
    Udp(UdpSocket, std::net::UdpSocket),
    Tcp(TcpListener),
    Tls(TcpListener),
}

impl Bound {
    fn kind(&self) -> &'static str {
        match self {
            Self::Udp(..) => "udp",
            Self::Tcp(_) => "tcp",
            Self::Tls(_) => "tls",
        }
    }
}

/// Binds UDP and TCP on every listen address at one port. With port 0 the first UDP socket
/// picks it, and a clash on another socket starts over with a new one.
fn bind_all(settings: &TurnSettings) -> Result<(Vec<Bound>, u16), StartError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_bind_all(settings) {
            Err(StartError::Bind { source, .. })
                if settings.port == 0
                    && source.kind() == io::ErrorKind::AddrInUse
                    && attempts < 20 => {}
            other => return other,
        }
    }
}

fn try_bind_all(settings: &TurnSettings) -> Result<(Vec<Bound>, u16), StartError> {
    let mut port = settings.port;
    let mut bound = Vec::new();
    for ip in &settings.listen {
        for transport in ["udp", "tcp"] {
            let addr = SocketAddr::new(*ip, port);
            match bind_one(transport, addr) {
                Ok(socket) => {
                    if port == 0 {
                        port = match &socket {
                            Bound::Udp(s, _) => s.local_addr().map(|a| a.port()),
                            Bound::Tcp(s) | Bound::Tls(s) => s.local_addr().map(|a| a.port()),
                        }
                        .map_err(|source| StartError::Bind {
                            transport,
                            addr,
                            source,
                        })?;
                    }
                    bound.push(socket);
                }
                // A host without IPv6 still serves IPv4 when both were asked for.
                Err(source)
                    if ip.is_ipv6()
                        && ip.is_unspecified()
                        && settings.listen.len() > 1
                        && matches!(
                            source.kind(),
                            io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
                        )
                        || source.raw_os_error() == Some(97) =>
                {
                    tracing::warn!(%addr, error = %source, "IPv6 unavailable; TURN serves IPv4 only");
                    break;
                }
                Err(source) => return Err(StartError::Bind { transport, addr, source }),
            }
        }
    }
    Ok((bound, port))
}

fn bind_one(transport: &str, addr: SocketAddr) -> io::Result<Bound> {
    if transport == "udp" {
        let (socket, out) = bind_udp(addr)?;
        Ok(Bound::Udp(socket, out))
    } else {
        Ok(Bound::Tcp(bind_tcp(addr)?))
    }
}

fn new_socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        // `::` and `0.0.0.0` are separate sockets on the same port.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_udp(addr: SocketAddr) -> io::Result<(UdpSocket, std::net::UdpSocket)> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    let out = socket.try_clone()?;
    Ok((UdpSocket::from_std(socket)?, out))
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
