//! Reading ahead of Engine.IO's WebSocket reader, with no memory held while a connection idles.
//!
//! The WebSocket reader asks its connection for at most `ws_read_buffer_size` bytes per read,
//! and keeps a buffer of that size for the connection's whole life. Kept small (most of the
//! 10 000 connections a server holds are idle), it would cost one `recv` per few signaling
//! messages on a busy connection. [`ReadAhead`] reads up to 16 KiB per `recv` into a buffer of
//! the worker thread, hands the reader what it asked for, and keeps the rest only until the
//! reader has taken it: the bytes a burst left behind, never a buffer per idle connection.

use axum::serve::Listener;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes one `recv` may bring in: a burst of a few dozen signaling messages.
const READ_AHEAD: usize = 16 * 1024;
/// A caller offering this much room reads straight into its own buffer (hyper's reads).
const DIRECT: usize = 4 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_AHEAD].into_boxed_slice());
}

/// A connection that reads ahead; see the module documentation.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Read from the connection, not yet taken; empty (no allocation) between bursts.
    ahead: Vec<u8>,
    taken: usize,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, ahead: Vec::new(), taken: 0 }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn hand_over(&mut self, buf: &mut ReadBuf<'_>) {
        let rest = &self.ahead[self.taken..];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.taken += n;
        if self.taken == self.ahead.len() {
            self.ahead = Vec::new();
            self.taken = 0;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.taken < this.ahead.len() {
            this.hand_over(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= DIRECT || buf.remaining() == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let filled = read.filled();
            let n = filled.len().min(buf.remaining());
            buf.put_slice(&filled[..n]);
            this.ahead.extend_from_slice(&filled[n..]);
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A listener whose connections read ahead.
#[derive(Debug)]
pub struct ReadAheadListener<L>(pub L);

impl<L: Listener> Listener for ReadAheadListener<L>
where
    L::Io: Unpin,
{
    type Io = ReadAhead<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (ReadAhead::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_take_a_burst_in_order_and_keep_nothing_after() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let burst: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&burst).await.unwrap();
        let mut server = ReadAhead::new(server);
        let mut got = Vec::new();
        let mut chunk = [0u8; 300];
        while got.len() < burst.len() {
            let n = server.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, burst);
        assert_eq!(server.ahead.capacity(), 0, "nothing kept between bursts");
        // A big buffer reads straight through; the write side passes through.
        client.write_all(b"hello").await.unwrap();
        let mut big = vec![0u8; DIRECT];
        assert_eq!(server.read(&mut big).await.unwrap(), 5);
        server.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
        drop(client);
        assert_eq!(server.read(&mut chunk).await.unwrap(), 0, "end of stream");
    }
}
