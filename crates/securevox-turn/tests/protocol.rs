//! The embedded TURN server on loopback, spoken to message by message: credential expiry,
//! allocation lifetimes, quotas, the peer policy, the bandwidth cap and shutdown. (Interop with
//! coturn's own clients and browsers is tested from the `securevox` crate.)

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use securevox_domain::turn::password_for;
use securevox_turn::{Turn, TurnSettings};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use turn_server_proto::types::attribute::{
    ChannelNumber, Lifetime, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};
use turn_server_proto::types::channel::ChannelData;
use turn_server_proto::types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA, REFRESH};
use turn_server_proto::types::stun::attribute::{ErrorCode, Nonce, Realm, Username};
use turn_server_proto::types::stun::message::{
    IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageClass, MessageIntegrityCredentials,
    MessageWriteVec, Method,
};
use turn_server_proto::types::stun::prelude::{MessageWrite, MessageWriteExt};

const SECRET: &[u8] = b"protocol-test-secret";
const REALM: &str = "securevox";

fn settings() -> TurnSettings {
    TurnSettings {
        listen: vec!["127.0.0.1".parse().unwrap()],
        port: 0,
        relay_ips: Vec::new(),
        external_ips: Vec::new(),
        relay_ports: 40_000..=60_000,
        realm: REALM.into(),
        secret: SECRET.to_vec(),
        allow_loopback_peers: false,
        allow_private_peers: false,
        user_quota: 0,
        total_quota: 0,
        max_bps: 0,
        tls: None,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn udp_addr(turn: &Turn) -> SocketAddr {
    turn.addresses().iter().find(|(t, _)| *t == "udp").unwrap().1
}

/// A TURN client over UDP that knows just enough of the protocol for these tests.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    username: String,
    password: String,
    nonce: Option<String>,
}

/// What the server answered: class, error code (if any) and the raw bytes.
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
    fn lifetime(&self) -> Option<u32> {
        self.msg().attribute::<Lifetime>().ok().map(|l| l.seconds())
    }
    fn relayed(&self) -> SocketAddr {
        let msg = self.msg();
        msg.attribute::<XorRelayedAddress>().unwrap().addr(msg.transaction_id())
    }
}

/// The next datagram on `socket` (within 2 s): its length and sender.
async fn recv(socket: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    tokio::time::timeout(Duration::from_secs(2), socket.recv_from(buf))
        .await
        .expect("a datagram within 2 s")
        .unwrap()
}

type Attrs<'a> = &'a dyn Fn(&mut MessageWriteVec);

impl Client {
    async fn new(server: SocketAddr, user: &str, ttl: i64) -> Self {
        let username = format!("{}:{user}", unix_now() + ttl);
        let password = password_for(SECRET, &username);
        Self::with(server, username, password).await
    }

    async fn with(server: SocketAddr, username: String, password: String) -> Self {
        let local = if server.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" };
        let socket = UdpSocket::bind(local).await.unwrap();
        Self { socket, server, username, password, nonce: None }
    }

    async fn exchange(&self, bytes: &[u8]) -> Reply {
        let mut buf = vec![0u8; 2048];
        for _ in 0..5 {
            self.socket.send_to(bytes, self.server).await.unwrap();
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(500), self.socket.recv_from(&mut buf))
                    .await
            {
                return Reply { bytes: buf[..n].to_vec() };
            }
        }
        panic!("no answer from the TURN server");
    }

    /// Sends an authenticated request, fetching a nonce first when there is none.
    async fn request(&mut self, method: Method, attrs: Attrs<'_>) -> Reply {
        if self.nonce.is_none() {
            let challenge = self
                .exchange(&Message::builder_request(method, MessageWriteVec::new()).finish())
                .await;
            let msg = challenge.msg();
            assert_eq!(challenge.error(), Some(401), "first contact is challenged");
            assert_eq!(msg.attribute::<Realm>().unwrap().realm(), REALM);
            self.nonce = Some(msg.attribute::<Nonce>().unwrap().nonce().to_owned());
        }
        let mut builder = Message::builder_request(method, MessageWriteVec::new());
        attrs(&mut builder);
        builder.add_attribute(&Username::new(&self.username).unwrap()).unwrap();
        builder.add_attribute(&Realm::new(REALM).unwrap()).unwrap();
        builder.add_attribute(&Nonce::new(self.nonce.as_deref().unwrap()).unwrap()).unwrap();
        let key: MessageIntegrityCredentials =
            LongTermKeyCredentials::new(self.username.clone(), self.password.clone(), REALM.into())
                .into();
        builder.add_message_integrity(&key, IntegrityAlgorithm::Sha1).unwrap();
        self.exchange(&builder.finish()).await
    }

    async fn allocate(&mut self, lifetime: Option<u32>) -> Reply {
        self.request(ALLOCATE, &|b| {
            b.add_attribute(&RequestedTransport::new(RequestedTransport::UDP)).unwrap();
            if let Some(l) = lifetime {
                b.add_attribute(&Lifetime::new(l)).unwrap();
            }
        })
        .await
    }

    async fn permit(&mut self, method: Method, peer: SocketAddr) -> Reply {
        self.request(method, &|b| {
            let transaction = b.transaction_id();
            b.add_attribute(&XorPeerAddress::new(peer, transaction)).unwrap();
            if method == CHANNEL_BIND {
                b.add_attribute(&ChannelNumber::new(0x4000)).unwrap();
            }
        })
        .await
    }
}

#[tokio::test]
async fn binding_answers_the_reflexive_address() {
    let turn = Turn::start(settings()).unwrap();
    let client = Client::new(udp_addr(&turn), "alice", 600).await;
    let reply = client
        .exchange(
            &Message::builder_request(
                turn_server_proto::types::stun::message::BINDING,
                MessageWriteVec::new(),
            )
            .finish(),
        )
        .await;
    assert!(reply.is_success());
    let msg = reply.msg();
    let mapped = msg
        .attribute::<turn_server_proto::types::stun::attribute::XorMappedAddress>()
        .unwrap()
        .addr(msg.transaction_id());
    assert_eq!(mapped, client.socket.local_addr().unwrap());
    assert_eq!(turn.stats().snapshot().stun_bindings, 1);
    turn.shutdown();
}

#[tokio::test]
async fn lifetimes_are_bounded_and_refresh_to_zero_releases() {
    let turn = Turn::start(settings()).unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    let reply = client.allocate(Some(86_400)).await;
    assert!(reply.is_success(), "error {:?}", reply.error());
    let lifetime = reply.lifetime().unwrap();
    assert!((1..=3600).contains(&lifetime), "a day asked, {lifetime} s granted");
    assert_eq!(reply.relayed().ip().to_string(), "127.0.0.1");
    assert_eq!(turn.stats().snapshot().allocations, 1);

    let refresh = client.request(REFRESH, &|b| b.add_attribute(&Lifetime::new(0)).unwrap()).await;
    assert!(refresh.is_success(), "error {:?}", refresh.error());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(turn.stats().snapshot().allocations, 0, "refresh 0 deletes the allocation");
    turn.shutdown();
}

#[tokio::test]
async fn expired_and_wrong_credentials_get_401() {
    let turn = Turn::start(settings()).unwrap();
    let server = udp_addr(&turn);
    // The right password for a username that expired a second ago.
    let mut expired = Client::new(server, "alice", -1).await;
    let reply = expired.allocate(None).await;
    assert_eq!(reply.error(), Some(401), "expired credentials must not allocate");
    assert!(reply.msg().attribute::<ErrorCode>().unwrap().reason().contains("expired"));

    let username = format!("{}:alice", unix_now() + 600);
    let mut wrong = Client::with(server, username, "bm90IGl0".into()).await;
    assert_eq!(wrong.allocate(None).await.error(), Some(401));

    let mut malformed = Client::with(server, "alice".into(), password_for(SECRET, "alice")).await;
    assert_eq!(malformed.allocate(None).await.error(), Some(401));

    let stats = turn.stats().snapshot();
    assert_eq!((stats.allocations, stats.auth_failures), (0, 3));
    // A username that worked stops working once it expires, allocation or not.
    let mut soon = Client::new(server, "bob", 1).await;
    assert!(soon.allocate(None).await.is_success());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refresh = soon.request(REFRESH, &|b| b.add_attribute(&Lifetime::new(600)).unwrap()).await;
    assert_eq!(refresh.error(), Some(401), "refresh with expired credentials");
    turn.shutdown();
}

#[tokio::test]
async fn quotas_per_user_and_in_total() {
    let turn = Turn::start(TurnSettings { user_quota: 2, total_quota: 3, ..settings() }).unwrap();
    let server = udp_addr(&turn);
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(Client::new(server, "alice", 600).await);
    }
    assert!(alice[0].allocate(None).await.is_success());
    assert!(alice[1].allocate(None).await.is_success());
    assert_eq!(alice[2].allocate(None).await.error(), Some(486), "third of alice's");

    let mut bob = Client::new(server, "bob", 600).await;
    assert!(bob.allocate(None).await.is_success(), "another user has a quota of their own");
    let mut carol = Client::new(server, "carol", 600).await;
    assert_eq!(carol.allocate(None).await.error(), Some(508), "the total cap of 3 is reached");

    // Releasing one of alice's makes room for her again.
    assert!(alice[0]
        .request(REFRESH, &|b| b.add_attribute(&Lifetime::new(0)).unwrap())
        .await
        .is_success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(alice[2].allocate(None).await.is_success());
    assert_eq!(turn.stats().snapshot().quota_refusals, 2);
    turn.shutdown();
}

#[tokio::test]
async fn host_networks_are_refused_as_peers_and_tcp_relays_need_a_stream() {
    let turn = Turn::start(settings()).unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    assert!(client.allocate(None).await.is_success());
    for peer in ["127.0.0.1:9", "10.0.0.1:9", "169.254.169.254:80", "192.168.1.1:53", "[::1]:9"] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(client.permit(CREATE_PERMISSION, peer).await.error(), Some(403), "{peer}");
        assert_eq!(client.permit(CHANNEL_BIND, peer).await.error(), Some(403), "{peer}");
    }
    let public: SocketAddr = "8.8.8.8:3478".parse().unwrap();
    assert!(client.permit(CREATE_PERMISSION, public).await.is_success(), "public peers are fine");
    assert_eq!(turn.stats().snapshot().refused_peers, 10);

    // A TCP relay is for a client over TCP or TLS (RFC 6062 §5.1; see tests/tcp_relay.rs);
    // other transports are not offered at all.
    let mut bob = Client::new(udp_addr(&turn), "bob", 600).await;
    for (protocol, code) in [(RequestedTransport::TCP, 400), (1, 442)] {
        let reply = bob
            .request(ALLOCATE, &|b| b.add_attribute(&RequestedTransport::new(protocol)).unwrap())
            .await;
        assert_eq!(reply.error(), Some(code), "protocol {protocol}");
    }
    turn.shutdown();
}

#[tokio::test]
async fn the_bandwidth_cap_drops_what_exceeds_it() {
    // 80 kbit/s = 10 kB/s; the bucket starts with its 64 KiB burst.
    let turn =
        Turn::start(TurnSettings { allow_loopback_peers: true, max_bps: 80_000, ..settings() })
            .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    assert!(client.allocate(None).await.is_success());
    assert!(client.permit(CHANNEL_BIND, peer_addr).await.is_success());
    let payload = [7u8; 1000];
    let mut frame = vec![0x40, 0x00, 0x03, 0xe8];
    frame.extend(payload);
    for _ in 0..200 {
        client.socket.send_to(&frame, client.server).await.unwrap();
    }
    let mut received = 0;
    let mut buf = [0u8; 2048];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(300), peer.recv_from(&mut buf)).await
    {
        assert_eq!(&buf[..n], &payload[..]);
        received += 1;
    }
    assert!((60..=80).contains(&received), "64 KiB of burst passes, not 200 kB: {received}");
    assert!(turn.stats().snapshot().throttled_packets >= 120);
    turn.shutdown();
}

#[tokio::test]
async fn peers_reach_the_client_through_its_channel() {
    let turn = Turn::start(TurnSettings { allow_loopback_peers: true, ..settings() }).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    let relayed = client.allocate(None).await.relayed();
    assert!(client.permit(CHANNEL_BIND, peer.local_addr().unwrap()).await.is_success());
    peer.send_to(b"hello through the relay", relayed).await.unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = recv(&client.socket, &mut buf).await;
    let channel = ChannelData::parse(&buf[..n]).unwrap();
    assert_eq!((channel.id(), channel.data()), (0x4000, &b"hello through the relay"[..]));
    let stats = turn.stats().snapshot();
    assert_eq!((stats.packets_to_clients, stats.bytes_to_clients), (1, 23));
    turn.shutdown();
}

#[tokio::test]
async fn shutdown_frees_every_port() {
    let turn = Turn::start(settings()).unwrap();
    let server = udp_addr(&turn);
    let mut client = Client::new(server, "alice", 600).await;
    let relayed = client.allocate(None).await.relayed();
    turn.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::net::UdpSocket::bind(server).expect("the TURN port is free again");
    std::net::TcpListener::bind(server).expect("the TCP port is free again");
    std::net::UdpSocket::bind(relayed).expect("the relay port is free again");
}

#[tokio::test]
async fn without_a_channel_peers_reach_the_client_in_data_indications() {
    use turn_server_proto::types::attribute::Data;
    let turn = Turn::start(TurnSettings { allow_loopback_peers: true, ..settings() }).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    let relayed = client.allocate(None).await.relayed();
    assert!(client.permit(CREATE_PERMISSION, peer_addr).await.is_success());
    let payload = b"a peer's STUN check, say, of odd length";
    peer.send_to(payload, relayed).await.unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = recv(&client.socket, &mut buf).await;
    let msg = Message::from_bytes(&buf[..n]).expect("a well-formed Data indication");
    assert!(msg.has_class(MessageClass::Indication));
    assert_eq!(msg.method(), DATA, "a Data indication, not a Send indication");
    assert_eq!(msg.attribute::<XorPeerAddress>().unwrap().addr(msg.transaction_id()), peer_addr);
    assert_eq!(msg.attribute::<Data>().unwrap().data(), &payload[..]);
    turn.shutdown();
}

#[tokio::test]
async fn a_deleted_allocation_relays_nothing_more() {
    let turn = Turn::start(TurnSettings { allow_loopback_peers: true, ..settings() }).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    let relayed = client.allocate(None).await.relayed();
    assert!(client.permit(CHANNEL_BIND, peer.local_addr().unwrap()).await.is_success());
    let frame = [0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4];
    let mut buf = [0u8; 64];
    client.socket.send_to(&frame, client.server).await.unwrap();
    let (n, from) = recv(&peer, &mut buf).await;
    assert_eq!((&buf[..n], from), (&[1u8, 2, 3, 4][..], relayed));

    let refresh = client.request(REFRESH, &|b| b.add_attribute(&Lifetime::new(0)).unwrap()).await;
    assert!(refresh.is_success());
    client.socket.send_to(&frame, client.server).await.unwrap();
    let late = tokio::time::timeout(Duration::from_millis(300), peer.recv_from(&mut buf)).await;
    assert!(late.is_err(), "relayed after the allocation was deleted");
    peer.send_to(b"anyone?", relayed).await.unwrap();
    let late =
        tokio::time::timeout(Duration::from_millis(300), client.socket.recv_from(&mut buf)).await;
    assert!(late.is_err(), "a peer reached the client after the allocation was deleted");
    turn.shutdown();
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The next `count` STUN messages from a TURN stream (within 5 s).
async fn read_messages(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    count: usize,
) -> Vec<Reply> {
    use tokio::io::AsyncReadExt;
    let mut replies = Vec::new();
    let mut data = Vec::new();
    let mut buf = vec![0u8; 4096];
    while replies.len() < count {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server answered within 5 s")
            .unwrap();
        assert!(n > 0, "closed early");
        data.extend_from_slice(&buf[..n]);
        while data.len() >= 20 {
            let len = 20 + usize::from(u16::from_be_bytes([data[2], data[3]]));
            if data.len() < len {
                break;
            }
            replies.push(Reply { bytes: data.drain(..len).collect() });
        }
    }
    replies
}

#[tokio::test]
async fn a_burst_over_tcp_is_framed_and_answered_in_full() {
    use tokio::io::AsyncWriteExt;
    use turn_server_proto::types::stun::message::BINDING;
    let turn = Turn::start(settings()).unwrap();
    let tcp = turn.addresses().iter().find(|(t, _)| *t == "tcp").unwrap().1;
    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    // 300 requests (12 000 bytes) in one write: more than one read of the connection's first
    // buffer, and more unauthenticated answers than UDP's burst allows — TCP proved the address.
    let requests: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let method = if i % 2 == 0 { BINDING } else { ALLOCATE };
            Message::builder_request(method, MessageWriteVec::new()).finish()
        })
        .collect();
    stream.write_all(&requests.concat()).await.unwrap();
    let replies = read_messages(&mut stream, 300).await;
    for (i, (request, reply)) in requests.iter().zip(&replies).enumerate() {
        let sent = Message::from_bytes(request).unwrap();
        assert_eq!(reply.msg().transaction_id(), sent.transaction_id(), "answer {i} in order");
        if i % 2 == 0 {
            assert!(reply.is_success());
        } else {
            assert_eq!(reply.error(), Some(401));
        }
    }
    assert_eq!(turn.stats().snapshot().strangers_dropped, 0);
    turn.shutdown();
}

#[tokio::test]
async fn turn_over_tls_answers_behind_a_verified_handshake() {
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};
    use turn_server_proto::types::stun::message::BINDING;

    let tls = securevox_turn::settings::TlsFiles {
        cert: fixture("cert.pem"),
        key: fixture("key.pem"),
        port: 0,
    };
    let turn = Turn::start(TurnSettings { tls: Some(tls), ..settings() }).unwrap();
    let port = turn.tls_port().expect("a TLS port");
    assert_ne!(port, turn.port());

    // A client that trusts only the fixture certificate, as a browser trusts a real one.
    let mut roots = RootCertStore::empty();
    let pem = std::fs::read(fixture("cert.pem")).unwrap();
    let cert = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let mut stream =
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();

    // Two requests in one write: the stream is framed, not read as one message per read.
    let binding = Message::builder_request(BINDING, MessageWriteVec::new()).finish();
    let allocate = Message::builder_request(ALLOCATE, MessageWriteVec::new()).finish();
    stream.write_all(&[binding.clone(), allocate].concat()).await.unwrap();
    let replies = read_messages(&mut stream, 2).await;
    let msg = replies[0].msg();
    assert!(replies[0].is_success());
    let mapped = msg
        .attribute::<turn_server_proto::types::stun::attribute::XorMappedAddress>()
        .unwrap()
        .addr(msg.transaction_id());
    assert_eq!(mapped, local, "the reflexive address of the TLS connection");
    assert_eq!(replies[1].error(), Some(401), "an Allocate is challenged as over UDP");
    turn.shutdown();
}

#[test]
fn a_missing_or_unreadable_certificate_is_reported() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let tls = securevox_turn::settings::TlsFiles {
        cert: fixture("missing.pem"),
        key: fixture("key.pem"),
        port: 0,
    };
    let err = Turn::start(TurnSettings { tls: Some(tls), ..settings() }).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let swapped = securevox_turn::settings::TlsFiles {
        cert: fixture("key.pem"),
        key: fixture("cert.pem"),
        port: 0,
    };
    let err = Turn::start(TurnSettings { tls: Some(swapped), ..settings() }).unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[tokio::test]
async fn ipv6_clients_get_ipv6_relays() {
    use turn_server_proto::types::attribute::RequestedAddressFamily;
    use turn_server_proto::types::AddressFamily;
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("IPv6 test not run: this host has no ::1");
        return;
    }
    let listen = vec!["::1".parse().unwrap()];
    let turn =
        Turn::start(TurnSettings { listen, allow_loopback_peers: true, ..settings() }).unwrap();
    let server = udp_addr(&turn);
    assert!(server.is_ipv6());
    let peer = UdpSocket::bind("[::1]:0").await.unwrap();
    let mut client = Client::new(server, "alice", 600).await;
    // Only an IPv6 relay address exists here: an IPv4 relay is refused (440).
    assert_eq!(client.allocate(None).await.error(), Some(440));
    let reply = client
        .request(ALLOCATE, &|b| {
            b.add_attribute(&RequestedTransport::new(RequestedTransport::UDP)).unwrap();
            b.add_attribute(&RequestedAddressFamily::new(AddressFamily::IPV6)).unwrap();
        })
        .await;
    assert!(reply.is_success(), "error {:?}", reply.error());
    let relayed = reply.relayed();
    assert_eq!(relayed.ip().to_string(), "::1");
    assert!(client.permit(CHANNEL_BIND, peer.local_addr().unwrap()).await.is_success());
    peer.send_to(b"over IPv6", relayed).await.unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = recv(&client.socket, &mut buf).await;
    assert_eq!(ChannelData::parse(&buf[..n]).unwrap().data(), b"over IPv6");
    turn.shutdown();
}

#[tokio::test]
async fn a_taken_port_is_an_error_not_a_panic() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Turn::start(TurnSettings { port, ..settings() }).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[tokio::test]
async fn an_address_in_use_gets_437_whoever_asks() {
    let turn = Turn::start(settings()).unwrap();
    let mut client = Client::new(udp_addr(&turn), "alice", 600).await;
    assert!(client.allocate(None).await.is_success());
    assert_eq!(client.allocate(None).await.error(), Some(437), "alice again");
    // Another user behind the same address and port (a NAT reusing it, a client that left
    // its allocation behind): 437, which clients retry from elsewhere, not a fatal 441.
    client.username = format!("{}:bob", unix_now() + 600);
    client.password = password_for(SECRET, &client.username);
    client.nonce = None;
    assert_eq!(client.allocate(None).await.error(), Some(437));
    turn.shutdown();
}

#[tokio::test]
async fn unauthenticated_answers_are_rate_limited_per_address() {
    let turn = Turn::start(settings()).unwrap();
    let server = udp_addr(&turn);
    let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let unauthenticated = Message::builder_request(ALLOCATE, MessageWriteVec::new()).finish();
    let (sent, mut answered) = (400, 0);
    let mut buf = vec![0u8; 2048];
    // In batches the socket buffers hold, so that only the server decides what is dropped.
    for _ in 0..sent / 20 {
        for _ in 0..20 {
            flood.send_to(&unauthenticated, server).await.unwrap();
        }
        while let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(50), flood.recv_from(&mut buf)).await
        {
            let reply = Reply { bytes: buf[..n].to_vec() };
            assert_eq!(reply.error(), Some(401));
            answered += 1;
        }
    }
    // A burst of 200, then 50/s while the flood lasts (well under 2 s).
    assert!((200..=300).contains(&answered), "{answered} of {sent} answered");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(turn.stats().snapshot().strangers_dropped, sent - answered);
    // Another address is answered.
    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let binding = Message::builder_request(
        turn_server_proto::types::stun::message::BINDING,
        MessageWriteVec::new(),
    )
    .finish();
    other.send_to(&binding, server).await.unwrap();
    let (n, _) = recv(&other, &mut buf).await;
    assert!(Reply { bytes: buf[..n].to_vec() }.is_success());
    turn.shutdown();
}
