//! SecureVox's embedded STUN/TURN server (T1–T3): the sans-IO protocol of `turn-server-proto`
//! (RFC 5766/8656 allocations, permissions, channels, Send/Data; STUN binding) driven by tokio
//! UDP and TCP sockets, with what that crate leaves to its user:
//!
//! - the TURN REST credential check *with expiry* ([`credentials`], in [`gate`]),
//! - refusing peers in the host's own networks ([`peers`]),
//! - per-user and total allocation quotas, and a per-allocation bandwidth cap ([`bandwidth`]),
//! - relay ports from a range, an external address for 1:1 NAT, counters ([`stats`]).
//!
//! One [`engine::Engine`] owns all state behind a mutex; socket tasks lock it per batch of
//! packets and it never awaits. Relays are UDP (TCP allocations of RFC 6062 are refused with
//! 442), reached by clients over UDP or TCP.

pub mod bandwidth;
pub mod credentials;
mod engine;
mod fastpath;
mod gate;
mod listeners;
pub mod peers;
mod relay;
pub mod settings;
pub mod stats;

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
        // Sockets register with the runtime they are created in.
        let _in_runtime = handle.enter();
        let (sockets, port) = bind_all(&settings)?;
        let realm = settings.realm.clone();
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        let mut tcp_listeners = Vec::new();
        for bound in sockets {
            match bound {
                Bound::Udp(socket, out) => {
                    let addr = socket.local_addr().map_err(|source| StartError::Bind {
                        transport: "udp",
                        addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
                        source,
                    })?;
                    addresses.push(("udp", addr));
                    listeners.push(Listener {
                        server: TurnServer::new(TransportType::Udp, addr, realm.clone()),
                        transport: TransportType::Udp,
                        addr,
                        udp: Some(Arc::new(socket)),
                        udp_out: Some(out),
                        known_users: HashSet::new(),
                    });
                }
                Bound::Tcp(listener) => {
                    let addr = listener.local_addr().map_err(|source| StartError::Bind {
                        transport: "tcp",
                        addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
                        source,
                    })?;
                    addresses.push(("tcp", addr));
                    tcp_listeners.push((listeners.len(), listener));
                    listeners.push(Listener {
                        server: TurnServer::new(TransportType::Tcp, addr, realm.clone()),
                        transport: TransportType::Tcp,
                        addr,
                        udp: None,
                        udp_out: None,
                        known_users: HashSet::new(),
                    });
                }
            }
        }
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
        for (idx, listener) in tcp_listeners {
            tasks.push(handle.spawn(listeners::tcp(engine.clone(), idx, listener)));
        }
        tasks.push(handle.spawn(listeners::timer(engine.clone())));
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
        tracing::info!(
            port,
            relay_v4 = ?relay_ips[0],
            relay_v6 = ?relay_ips[1],
            "STUN/TURN listening on {}",
            addresses.iter().map(|(t, a)| format!("{t} {a}")).collect::<Vec<_>>().join(", ")
        );
        Ok(Self { engine, tasks, port, stats, addresses, stop, thread })
    }

    /// The UDP and TCP port.
    pub fn port(&self) -> u16 {
        self.port
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

enum Bound {
    Udp(UdpSocket, std::net::UdpSocket),
    Tcp(TcpListener),
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
                            Bound::Tcp(s) => s.local_addr().map(|a| a.port()),
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
    let domain = Domain::for_address(addr);
    let socket = if transport == "udp" {
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?
    } else {
        Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?
    };
    if addr.is_ipv6() {
        // `::` and `0.0.0.0` are separate sockets on the same port.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    if transport == "udp" {
        let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
        socket.bind(&addr.into())?;
        let socket: std::net::UdpSocket = socket.into();
        let out = socket.try_clone()?;
        Ok(Bound::Udp(UdpSocket::from_std(socket)?, out))
    } else {
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        Ok(Bound::Tcp(TcpListener::from_std(socket.into())?))
    }
}
