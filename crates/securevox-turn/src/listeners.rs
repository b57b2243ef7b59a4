//! The listening sockets' tasks: UDP datagrams, TCP connections framed into STUN messages and
//! ChannelData (or spliced to a peer once bound, RFC 6062), and the timer that runs the
//! protocol servers' expiries.

use crate::engine::{lock, Shared};
use crate::relay::take_batch;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// TCP connections held at once; more are closed at accept.
const MAX_TCP_CONNECTIONS: usize = 4096;
/// Frames queued towards one TCP client before it counts as not reading.
const TCP_QUEUE: usize = 1024;
/// A TLS client must finish its handshake within this.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Bytes a waiting TCP connection reads into: a TURN message of a media call fits.
const FIRST_READ: usize = 2048;
/// Bytes read at once after a full first read, and at most written at once.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes taken from a connection before its frames are handled.
const READ_AHEAD: usize = 64 * 1024;
/// A TCP connection that has sent nothing for this long is closed (a client keeps its
/// allocation alive with refreshes well within this).
const TCP_IDLE: Duration = Duration::from_mins(15);

pub(crate) async fn udp(engine: Shared, idx: usize, socket: Arc<UdpSocket>) {
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let mut guard = lock(&engine);
        take_batch(&socket, |from, data| guard.on_client_packet(idx, from, data));
    }
}

/// Accepts TURN over TCP, or over TLS when `tls` is given (RFC 8656 §3.1: the same stream
/// once the handshake is done).
pub(crate) async fn tcp(
    engine: Shared,
    idx: usize,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, client)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if open.load(Ordering::Relaxed) >= MAX_TCP_CONNECTIONS {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        let (engine, open) = (engine.clone(), open.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let (reader, writer) = stream.into_split();
                    connection(&engine, idx, reader, writer, client).await;
                }
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let (reader, writer) = tokio::io::split(stream);
                            connection(&engine, idx, reader, writer, client).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%client, error = %e, "TURN TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(%client, "TURN TLS handshake timed out");
                        }
                    }
                }
            }
            lock(&engine).on_tcp_closed(idx, client);
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn connection(
    engine: &Shared,
    idx: usize,
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin + Send + 'static,
    client: SocketAddr,
) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
    lock(engine).register_tcp(idx, client, tx);
    // Ends when the engine drops the sender (allocation gone, shutdown, slow reader, or the
    // connection bound to a peer), giving the writer back once the queue is out.
    let mut writing = tokio::spawn(async move {
        while let Some(mut frame) = rx.recv().await {
            // Whatever queued up meanwhile goes out in the same write.
            while frame.len() < READ_CHUNK {
                let Ok(more) = rx.try_recv() else { break };
                frame.extend_from_slice(&more);
            }
            if writer.write_all(&frame).await.is_err() {
                return None;
            }
        }
        Some(writer)
    });
    // An idle connection waits with this small buffer only; a full one means more is
    // probably there, taken at once into `buf` without waiting.
    let mut first = [0u8; FIRST_READ];
    let mut buf = Framer::default();
    loop {
        let n = tokio::select! {
            read = tokio::time::timeout(TCP_IDLE, reader.read(&mut first)) => match read {
                Ok(Ok(n)) if n > 0 => n,
                _ => break,
            },
            written = &mut writing => {
                if let Ok(Some(mut writer)) = written {
                    let _ = writer.shutdown().await;
                }
                break;
            }
        };
        buf.data.extend_from_slice(&first[..n]);
        let mut open = true;
        if n == FIRST_READ {
            open = read_ready(&mut reader, &mut buf.data);
        }
        match handle_frames(engine, idx, client, &mut buf) {
            Frames::Handled => {}
            Frames::NotTurn => {
                writing.abort();
                return;
            }
            Frames::Bound(bound) => {
                // What followed the ConnectionBind is already the peer's.
                let early = buf.rest();
                let Ok(Some(writer)) = writing.await else { return };
                let stats = lock(engine).stats.clone();
                let stream = tokio::io::join(reader, writer);
                crate::tcp_relay::splice(engine, stream, early, bound, &stats).await;
                return;
            }
        }
        buf.compact();
        if !open {
            break;
        }
    }
    writing.abort();
}

/// What became of the frames a connection has sent so far.
enum Frames {
    /// All handed to the engine.
    Handled,
    /// The stream is not TURN.
    NotTurn,
    /// A ConnectionBind succeeded: the rest of the stream is the peer's (RFC 6062 §5.4).
    Bound(crate::tcp_relay::Bound),
}

fn handle_frames(engine: &Shared, idx: usize, client: SocketAddr, buf: &mut Framer) -> Frames {
    let mut guard = lock(engine);
    loop {
        match buf.next_frame() {
            Ok(Some(range)) => {
                // A ConnectionBind request: 0x000b, class request.
                let bind = buf.data[range.start..].starts_with(&[0x00, 0x0b]);
                guard.on_client_packet(idx, client, &buf.data[range]);
                if let Some(bound) = bind.then(|| guard.take_handover(idx, client)).flatten() {
                    return Frames::Bound(bound);
                }
            }
            Ok(None) => return Frames::Handled,
            Err(()) => return Frames::NotTurn,
        }
    }
}

/// Appends to `data` what `reader` has ready now, up to [`READ_AHEAD`] bytes, without
/// waiting; false when the stream ended or failed.
fn read_ready(reader: &mut (impl AsyncRead + Unpin), data: &mut Vec<u8>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let limit = data.len() + READ_AHEAD;
    while data.len() < limit {
        let len = data.len();
        data.resize(len + READ_CHUNK, 0);
        let mut read = ReadBuf::new(&mut data[len..]);
        let polled = Pin::new(&mut *reader).poll_read(&mut cx, &mut read);
        let filled = read.filled().len();
        data.truncate(len + filled);
        match polled {
            Poll::Ready(Ok(())) if filled > 0 => {}
            Poll::Ready(_) => return false,
            // Nothing more now; the next read re-registers the task's own waker.
            Poll::Pending => return true,
        }
    }
    true
}

/// Splits a TURN byte stream into STUN messages and ChannelData (padding dropped).
#[derive(Default)]
pub(crate) struct Framer {
    pub(crate) data: Vec<u8>,
    start: usize,
}

impl Framer {
    /// The next complete frame's range in `data`; `Err` when the stream is not TURN.
    pub(crate) fn next_frame(&mut self) -> Result<Option<std::ops::Range<usize>>, ()> {
        let rest = &self.data[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let (frame, consumed) = match rest[0] >> 6 {
            0 => (20 + length, 20 + length),
            1 => (4 + length, (4 + length).next_multiple_of(4)),
            _ => return Err(()),
        };
        if rest.len() < consumed {
            return Ok(None);
        }
        let range = self.start..self.start + frame;
        self.start += consumed;
        Ok(Some(range))
    }

    /// The bytes after the last frame taken, leaving the framer empty.
    pub(crate) fn rest(&mut self) -> Vec<u8> {
        let rest = self.data.split_off(self.start);
        self.data = Vec::new();
        self.start = 0;
        rest
    }

    /// Drops consumed bytes so the buffer holds at most one partial frame, and gives back
    /// memory an idle connection does not need.
    pub(crate) fn compact(&mut self) {
        self.data.drain(..self.start);
        self.start = 0;
        if self.data.is_empty() {
            self.data = Vec::new();
        } else if self.data.capacity() > 2 * READ_AHEAD {
            self.data.shrink_to(READ_AHEAD);
        }
    }
}

/// Runs the protocol servers' timers (allocation, permission and channel expiry).
pub(crate) async fn timer(engine: Shared) {
    loop {
        let deadline = {
            let mut guard = lock(&engine);
            let now = std::time::Instant::now();
            guard.housekeeping(now, crate::gate::unix_now());
            guard.sweep_peer_connections(now);
            let next = guard.poll_all();
            guard.deadline(next)
        };
        let cap = tokio::time::Instant::now() + Duration::from_secs(1);
        tokio::time::sleep_until(
            deadline.min(cap).max(tokio::time::Instant::now() + Duration::from_millis(20)),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_and_channel_padding_dropped() {
        let mut framer = Framer::default();
        // A Binding request header (no attributes), then ChannelData of 5 bytes padded to 8.
        let mut stream = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stream.extend([7; 12]);
        stream.extend([0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        framer.data.extend(&stream[..10]);
        assert_eq!(framer.next_frame(), Ok(None), "half a header");
        framer.data.extend(&stream[10..]);
        assert_eq!(framer.next_frame(), Ok(Some(0..20)));
        assert_eq!(framer.next_frame(), Ok(Some(20..29)));
        assert_eq!(framer.next_frame(), Ok(None));
        framer.compact();
        assert!(framer.data.is_empty());
        framer.data.extend([0xc0, 0, 0, 0]);
        assert_eq!(framer.next_frame(), Err(()), "not TURN");
    }
}
