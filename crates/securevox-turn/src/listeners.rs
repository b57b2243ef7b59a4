//! The listening sockets' tasks: UDP datagrams, TCP connections framed into STUN messages and
//! ChannelData, and the timer that runs the protocol servers' expiries.

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
    let mut writing = tokio::spawn(async move {
        while let Some(mut frame) = rx.recv().await {
            // Whatever queued up meanwhile goes out in the same write.
            while frame.len() < READ_CHUNK {
                let Ok(more) = rx.try_recv() else { break };
                frame.extend_from_slice(&more);
            }
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
        // The engine dropped the sender (allocation gone, shutdown, slow reader): close.
        let _ = writer.shutdown().await;
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
            _ = &mut writing => break,
        };
        buf.data.extend_from_slice(&first[..n]);
        let mut open = true;
        if n == FIRST_READ {
            open = read_ready(&mut reader, &mut buf.data);
        }
        let mut guard = lock(engine);
        loop {
            match buf.next_frame() {
                Ok(Some(range)) => guard.on_client_packet(idx, client, &buf.data[range]),
                Ok(None) => break,
                Err(()) => {
                    drop(guard);
                    writing.abort();
                    return;
                }
            }
        }
        drop(guard);
        buf.compact();
        if !open {
            break;
        }
    }
    writing.abort();
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
            guard.housekeeping(std::time::Instant::now(), crate::gate::unix_now());
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
