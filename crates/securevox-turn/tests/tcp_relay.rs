//! TCP allocations (RFC 6062) on loopback, message by message: Connect to a peer, a peer's
//! ConnectionAttempt, ConnectionBind on a second connection, then bytes both ways through
//! the splice; the peer policy, unknown CONNECTION-IDs, the bandwidth cap, and closing with
//! the allocation. (coturn's `turnutils_uclient -T` drives them from the `securevox` crate.)

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use securevox_domain::turn::password_for;
use securevox_turn::{Turn, TurnSettings};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use turn_server_proto::types::attribute::{
    ChannelNumber, ConnectionId, Lifetime, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};
use turn_server_proto::types::message::{
    ALLOCATE, CHANNEL_BIND, CONNECT, CONNECTION_ATTEMPT, CONNECTION_BIND, CREATE_PERMISSION,
    REFRESH,
};
use turn_server_proto::types::stun::attribute::{ErrorCode, Nonce, Realm, Username};
use turn_server_proto::types::stun::message::{
    IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageClass, MessageIntegrityCredentials,
    MessageWriteVec, Method, TransactionId,
};
use turn_server_proto::types::stun::prelude::{MessageWrite, MessageWriteExt};

const SECRET: &[u8] = b"tcp-relay-test-secret";
const REALM: &str = "securevox";
const WAIT: Duration = Duration::from_secs(5);

fn settings(allow_loopback_peers: bool) -> TurnSettings {
    TurnSettings {
        listen: vec!["127.0.0.1".parse().unwrap()],
        port: 0,
        relay_ips: Vec::new(),
        external_ips: Vec::new(),
        relay_ports: 40_000..=60_000,
        realm: REALM.into(),
        secret: SECRET.to_vec(),
        allow_loopback_peers,
        allow_private_peers: false,
        user_quota: 0,
        total_quota: 0,
        max_bps: 0,
        tls: None,
    }
}

fn tcp_addr(turn: &Turn) -> SocketAddr {
    turn.addresses().iter().find(|(t, _)| *t == "tcp").unwrap().1
}

/// A STUN message from the server.
struct Reply {
    bytes: Vec<u8>,
}

impl Reply {
    fn msg(&self) -> Message<'_> {
        Message::from_bytes(&self.bytes).unwrap()
    }
    fn is_success(&self) -> bool {
        self.msg().has_class(MessageClass::Success)
    }
    fn error(&self) -> Option<u16> {
        self.msg().attribute::<ErrorCode>().ok().map(|e| e.code())
    }
    fn connection_id(&self) -> u32 {
        self.msg().attribute::<ConnectionId>().expect("a CONNECTION-ID").id()
    }
    fn address<A>(&self, get: impl Fn(&Message<'_>, TransactionId) -> A) -> A {
        let msg = self.msg();
        get(&msg, msg.transaction_id())
    }
}

/// Reads exactly one STUN message: nothing after it, which may be a peer's bytes.
async fn read_message(stream: &mut TcpStream) -> Reply {
    let mut bytes = vec![0u8; 20];
    tokio::time::timeout(WAIT, stream.read_exact(&mut bytes)).await.expect("a message").unwrap();
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    bytes.resize(20 + len, 0);
    tokio::time::timeout(WAIT, stream.read_exact(&mut bytes[20..])).await.unwrap().unwrap();
    Reply { bytes }
}

/// A TURN client's control connection over TCP, with the credentials it signs with.
struct Control {
    stream: TcpStream,
    server: SocketAddr,
    key: MessageIntegrityCredentials,
    username: String,
    nonce: String,
    /// Indications that arrived while waiting for a response.
    indications: VecDeque<Reply>,
}

type Attrs<'a> = &'a dyn Fn(&mut MessageWriteVec);

impl Control {
    async fn connect(server: SocketAddr, user: &str) -> Self {
        let expiry =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
                + 600;
        let username = format!("{expiry}:{user}");
        let password = password_for(SECRET, &username);
        let key = LongTermKeyCredentials::new(username.clone(), password, REALM.into()).into();
        let mut stream = TcpStream::connect(server).await.unwrap();
        let challenge = Message::builder_request(ALLOCATE, MessageWriteVec::new()).finish();
        stream.write_all(&challenge).await.unwrap();
        let reply = read_message(&mut stream).await;
        assert_eq!(reply.error(), Some(401));
        let nonce = reply.msg().attribute::<Nonce>().unwrap().nonce().to_owned();
        Self { stream, server, key, username, nonce, indications: VecDeque::new() }
    }

    /// A request of `method` signed with the control connection's credentials.
    fn signed(&self, method: Method, attrs: Attrs<'_>) -> Vec<u8> {
        let mut builder = Message::builder_request(method, MessageWriteVec::new());
        attrs(&mut builder);
        builder.add_attribute(&Username::new(&self.username).unwrap()).unwrap();
        builder.add_attribute(&Realm::new(REALM).unwrap()).unwrap();
        builder.add_attribute(&Nonce::new(&self.nonce).unwrap()).unwrap();
        builder.add_message_integrity(&self.key, IntegrityAlgorithm::Sha1).unwrap();
        builder.finish()
    }

    async fn request(&mut self, method: Method, attrs: Attrs<'_>) -> Reply {
        let request = self.signed(method, attrs);
        let transaction = Message::from_bytes(&request).unwrap().transaction_id();
        self.stream.write_all(&request).await.unwrap();
        loop {
            let reply = read_message(&mut self.stream).await;
            if reply.msg().transaction_id() == transaction {
                return reply;
            }
            self.indications.push_back(reply);
        }
    }

    async fn indication(&mut self) -> Reply {
        match self.indications.pop_front() {
            Some(reply) => reply,
            None => read_message(&mut self.stream).await,
        }
    }

    /// Allocates a TCP relay; its relayed address.
    async fn allocate_tcp(&mut self) -> SocketAddr {
        let reply = self
            .request(ALLOCATE, &|b| {
                b.add_attribute(&RequestedTransport::new(RequestedTransport::TCP)).unwrap();
            })
            .await;
        assert!(reply.is_success(), "Allocate: error {:?}", reply.error());
        reply.address(|m, t| m.attribute::<XorRelayedAddress>().unwrap().addr(t))
    }

    async fn with_peer(&mut self, method: Method, peer: SocketAddr) -> Reply {
        self.request(method, &|b| {
            let transaction = b.transaction_id();
            b.add_attribute(&XorPeerAddress::new(peer, transaction)).unwrap();
        })
        .await
    }

    /// Opens a client data connection and sends ConnectionBind for `id` on it.
    async fn bind(&self, id: u32) -> (TcpStream, Reply) {
        let mut data = TcpStream::connect(self.server).await.unwrap();
        let request =
            self.signed(CONNECTION_BIND, &|b| b.add_attribute(&ConnectionId::new(id)).unwrap());
        data.write_all(&request).await.unwrap();
        let reply = read_message(&mut data).await;
        (data, reply)
    }
}

/// A TCP echo server on 127.0.0.1; reports the address each connection came from.
async fn echo_peer() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<SocketAddr>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, from)) = listener.accept().await {
            let _ = tx.send(from);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, rx)
}

/// Writes `payload` and reads as many bytes back.
async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    let (mut reader, mut writer) = stream.split();
    let mut back = vec![0u8; payload.len()];
    let (written, read) = tokio::join!(writer.write_all(payload), async {
        tokio::time::timeout(Duration::from_secs(20), reader.read_exact(&mut back)).await
    });
    written.unwrap();
    read.expect("echoed in time").unwrap();
    back
}

/// Whether the other end closes `stream` within 2 s.
async fn closes(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn connect_and_bind_relay_bytes_both_ways_until_the_allocation_goes() {
    let turn = Turn::start(settings(true)).unwrap();
    let (peer, mut arrivals) = echo_peer().await;
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    let relayed = control.allocate_tcp().await;
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");

    let reply = control.with_peer(CONNECT, peer).await;
    assert!(reply.is_success(), "Connect: error {:?}", reply.error());
    assert!(reply.msg().validate_integrity(&control.key).is_ok(), "signed");
    let from = tokio::time::timeout(WAIT, arrivals.recv()).await.unwrap().unwrap();
    assert_eq!(from, relayed, "the peer is reached from the relayed address");
    assert_eq!(
        control.with_peer(CONNECT, peer).await.error(),
        Some(446),
        "a second Connect to the same peer"
    );

    let (mut data, bound) = control.bind(reply.connection_id()).await;
    assert!(bound.is_success(), "ConnectionBind: error {:?}", bound.error());
    assert!(bound.msg().validate_integrity(&control.key).is_ok(), "signed");
    assert_eq!(round_trip(&mut data, b"hello, peer").await, b"hello, peer");
    let bulk: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(round_trip(&mut data, &bulk).await, bulk, "300 kB each way, in order");

    let stats = turn.stats().snapshot();
    assert_eq!((stats.peer_connections, stats.peer_connections_opened), (1, 1));
    assert!(stats.bytes_to_peers >= 300_011 && stats.bytes_to_clients >= 300_011, "{stats:?}");

    let refresh = control.request(REFRESH, &|b| b.add_attribute(&Lifetime::new(0)).unwrap()).await;
    assert!(refresh.is_success());
    assert!(closes(&mut data).await, "the data connection closes with its allocation");
    assert_eq!(turn.stats().snapshot().peer_connections, 0);
    turn.shutdown();
}

#[tokio::test]
async fn a_permitted_peer_is_announced_and_its_early_bytes_kept() {
    let turn = Turn::start(settings(true)).unwrap();
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    let relayed = control.allocate_tcp().await;
    let permitted: SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert!(control.with_peer(CREATE_PERMISSION, permitted).await.is_success());

    // 127.0.0.2 has no permission: its connection is closed, and nobody is told.
    let stranger = tokio::net::TcpSocket::new_v4().unwrap();
    stranger.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut stranger = stranger.connect(relayed).await.unwrap();
    assert!(closes(&mut stranger).await, "a peer without a permission is turned away");

    let mut peer = TcpStream::connect(relayed).await.unwrap();
    peer.write_all(b"sent before the client accepted").await.unwrap();
    let attempt = control.indication().await;
    let msg = attempt.msg();
    assert!(msg.has_class(MessageClass::Indication) && msg.has_method(CONNECTION_ATTEMPT));
    let from = attempt.address(|m, t| m.attribute::<XorPeerAddress>().unwrap().addr(t));
    assert_eq!(from, peer.local_addr().unwrap());

    let (mut data, bound) = control.bind(attempt.connection_id()).await;
    assert!(bound.is_success(), "ConnectionBind: error {:?}", bound.error());
    let mut early = vec![0u8; 31];
    tokio::time::timeout(WAIT, data.read_exact(&mut early)).await.unwrap().unwrap();
    assert_eq!(early, b"sent before the client accepted");
    data.write_all(b"and back").await.unwrap();
    let mut back = [0u8; 8];
    tokio::time::timeout(WAIT, peer.read_exact(&mut back)).await.unwrap().unwrap();
    assert_eq!(&back, b"and back");

    // Either side closing closes the other.
    drop(peer);
    assert!(closes(&mut data).await, "the peer's close reaches the client");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(turn.stats().snapshot().peer_connections, 0);
    turn.shutdown();
}

#[tokio::test]
async fn loopback_peers_failed_connects_and_channels_are_refused() {
    let turn = Turn::start(settings(false)).unwrap();
    let (peer, _) = echo_peer().await;
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    control.allocate_tcp().await;
    assert_eq!(control.with_peer(CONNECT, peer).await.error(), Some(403));
    assert_eq!(turn.stats().snapshot().refused_peers, 1);
    turn.shutdown();

    let turn = Turn::start(settings(true)).unwrap();
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    control.allocate_tcp().await;
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let reply = control.with_peer(CONNECT, closed).await;
    assert_eq!(reply.error(), Some(447), "nobody listens there");
    assert!(reply.msg().validate_integrity(&control.key).is_ok(), "signed");
    let (peer, _) = echo_peer().await;
    let reply = control
        .request(CHANNEL_BIND, &|b| {
            let transaction = b.transaction_id();
            b.add_attribute(&XorPeerAddress::new(peer, transaction)).unwrap();
            b.add_attribute(&ChannelNumber::new(0x4000)).unwrap();
        })
        .await;
    assert_eq!(reply.error(), Some(400), "TCP relays have no channels");
    turn.shutdown();
}

#[tokio::test]
async fn connection_bind_needs_credentials_and_a_waiting_connection() {
    let turn = Turn::start(settings(true)).unwrap();
    let (peer, _) = echo_peer().await;
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    control.allocate_tcp().await;
    let id = control.with_peer(CONNECT, peer).await.connection_id();

    let (_, reply) = control.bind(id ^ 1).await;
    assert_eq!(reply.error(), Some(400), "an unknown CONNECTION-ID");

    let mut data = TcpStream::connect(tcp_addr(&turn)).await.unwrap();
    let unsigned = {
        let mut b = Message::builder_request(CONNECTION_BIND, MessageWriteVec::new());
        b.add_attribute(&ConnectionId::new(id)).unwrap();
        b.finish()
    };
    data.write_all(&unsigned).await.unwrap();
    let challenge = read_message(&mut data).await;
    assert_eq!(challenge.error(), Some(401));
    assert!(challenge.msg().attribute::<Nonce>().is_ok(), "a nonce to sign with");

    // Another user cannot take alice's connection.
    let mallory = Control::connect(tcp_addr(&turn), "mallory").await;
    assert_eq!(mallory.bind(id).await.1.error(), Some(441));
    // Nor can a connection with an allocation become a data connection.
    let bind =
        control.signed(CONNECTION_BIND, &|b| b.add_attribute(&ConnectionId::new(id)).unwrap());
    control.stream.write_all(&bind).await.unwrap();
    assert_eq!(read_message(&mut control.stream).await.error(), Some(400));

    let (_, bound) = control.bind(id).await;
    assert!(bound.is_success(), "the owner binds it: error {:?}", bound.error());
    assert_eq!(control.bind(id).await.1.error(), Some(400), "bound once");
    turn.shutdown();
}

#[tokio::test]
async fn the_bandwidth_cap_slows_a_stream_without_losing_bytes() {
    // 800 kbit/s = 100 kB/s; 64 KiB of burst, then ~1.5 s for the rest.
    let turn = Turn::start(TurnSettings { max_bps: 800_000, ..settings(true) }).unwrap();
    let (peer, _) = echo_peer().await;
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    control.allocate_tcp().await;
    let id = control.with_peer(CONNECT, peer).await.connection_id();
    let (mut data, _) = control.bind(id).await;
    let payload = vec![9u8; 64 * 1024 + 150_000];
    let start = Instant::now();
    assert_eq!(round_trip(&mut data, &payload).await, payload);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1300), "{took:?}: the cap did not hold");
    turn.shutdown();
}

#[tokio::test]
async fn shutdown_closes_peer_and_data_connections() {
    let turn = Turn::start(settings(true)).unwrap();
    let (peer, _) = echo_peer().await;
    let mut control = Control::connect(tcp_addr(&turn), "alice").await;
    let relayed = control.allocate_tcp().await;
    let id = control.with_peer(CONNECT, peer).await.connection_id();
    let (mut data, _) = control.bind(id).await;
    assert_eq!(round_trip(&mut data, b"ping").await, b"ping");
    turn.shutdown();
    assert!(closes(&mut data).await, "the data connection is closed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::net::TcpListener::bind(relayed).expect("the relay port is free again");
}
