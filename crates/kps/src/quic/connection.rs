//! A KPS connection over QUIC and its streams (spec §5, §12).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use quinn::{ConnectionError, ReadError, SendDatagramError, VarInt, WriteError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::demux::canonical;
use crate::error::{Code, Error, Result};

/// Maps a quinn connection error to the registry (§12.3). `LocallyClosed` is `closed`.
pub(crate) fn connection_error(e: &ConnectionError) -> Error {
    match e {
        ConnectionError::ApplicationClosed(c) => {
            Error::remote(Code::from_wire(c.error_code.into_inner()))
        }
        ConnectionError::LocallyClosed => Error::local(Code::Closed),
        ConnectionError::TimedOut => Error::local(Code::Timeout),
        ConnectionError::ConnectionClosed(c)
            if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            Error::remote(Code::PermissionDenied)
        }
        ConnectionError::ConnectionClosed(_) | ConnectionError::Reset => {
            Error::remote(Code::NetworkError)
        }
        ConnectionError::TransportError(_) => Error::local(Code::ProtocolError),
        _ => Error::local(Code::NetworkError),
    }
}

fn varint(code: Code) -> VarInt {
    VarInt::from_u32(code.wire())
}

struct Shared {
    local_close: Mutex<Option<Code>>,
    // Keeps a dialer's endpoint (and its socket) alive as long as the connection.
    _endpoint: Option<quinn::Endpoint>,
}

/// An established KPS connection: bidirectional streams plus datagrams. Cheap to clone; the
/// connection closes (code 0) when the last clone is dropped.
#[derive(Clone)]
pub struct Connection {
    inner: quinn::Connection,
    remote: SocketAddr,
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        inner: quinn::Connection,
        remote: SocketAddr,
        endpoint: Option<quinn::Endpoint>,
    ) -> Connection {
        Connection {
            inner,
            remote: canonical(remote),
            shared: Arc::new(Shared {
                local_close: Mutex::new(None),
                _endpoint: endpoint,
            }),
        }
    }

    /// Opens a stream. The peer sees it when the first byte (or FIN) arrives. Waits while the
    /// peer's stream limit is reached.
    pub async fn open_stream(&self) -> Result<Stream> {
        let (send, recv) = self
            .inner
            .open_bi()
            .await
            .map_err(|e| self.stream_conn_error(&e))?;
        Ok(Stream::new(send, recv))
    }

    /// Waits for the next stream the peer opens.
    pub async fn accept_stream(&self) -> Result<Stream> {
        let (send, recv) = self
            .inner
            .accept_bi()
            .await
            .map_err(|e| self.stream_conn_error(&e))?;
        Ok(Stream::new(send, recv))
    }

    /// Sends an unreliable datagram. Larger than [`Connection::max_datagram_size`] →
    /// [`Error::DatagramTooLarge`] (`too-large`) carrying the current maximum.
    pub fn send_datagram(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        let size = data.len();
        self.inner.send_datagram(data).map_err(|e| match e {
            SendDatagramError::TooLarge => Error::DatagramTooLarge {
                size,
                max: self.max_datagram_size(),
            },
            SendDatagramError::ConnectionLost(e) => self.stream_conn_error(&e),
            _ => Error::local(Code::Unsupported),
        })
    }

    /// Waits for the next datagram (oldest first; the queue drops the oldest when full).
    pub async fn recv_datagram(&self) -> Result<Bytes> {
        self.inner
            .read_datagram()
            .await
            .map_err(|e| self.stream_conn_error(&e))
    }

    /// The largest datagram payload that can be sent now (path-dependent; 0 if the peer
    /// takes no datagrams).
    pub fn max_datagram_size(&self) -> usize {
        self.inner.max_datagram_size().unwrap_or(0)
    }

    /// Closes the connection with a registry code (`Code::None` = clean). The peer sees the
    /// code with `remote = true`; locally [`Connection::closed`] reports it with
    /// `remote = false`. Pending operations fail with `closed`.
    pub fn close(&self, code: Code) {
        {
            let mut slot = self
                .shared
                .local_close
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if slot.is_none() && self.inner.close_reason().is_none() {
                *slot = Some(code);
            }
        }
        self.inner.close(varint(code), b"");
    }

    /// Waits until the connection is closed and returns the reason: the peer's code
    /// (`remote = true`), our own close code (`remote = false`), `timeout` or `network-error`.
    pub async fn closed(&self) -> Error {
        let e = self.inner.closed().await;
        self.close_error(&e)
    }

    /// The close reason, if the connection is closed.
    pub fn close_reason(&self) -> Option<Error> {
        self.inner.close_reason().map(|e| self.close_error(&e))
    }

    /// The peer's address (canonical form): the dialled endpoint, or the handshake source.
    pub fn remote_address(&self) -> SocketAddr {
        canonical(self.inner.remote_address())
    }

    /// The underlying quinn connection (statistics, RTT).
    pub fn quic(&self) -> &quinn::Connection {
        &self.inner
    }

    fn close_error(&self, e: &ConnectionError) -> Error {
        match e {
            ConnectionError::LocallyClosed => {
                let code = *self
                    .shared
                    .local_close
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                Error::local(code.unwrap_or(Code::Closed))
            }
            other => connection_error(other),
        }
    }

    fn stream_conn_error(&self, e: &ConnectionError) -> Error {
        connection_error(e)
    }
}

/// The write half of a stream: `AsyncWrite`, plus FIN, RESET_STREAM.
pub struct SendHalf {
    inner: quinn::SendStream,
    state: WriteState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteState {
    Open,
    Finished,
    Reset(Code),
}

/// The read half of a stream: `AsyncRead` (EOF only after the peer's FIN), plus STOP_SENDING.
pub struct RecvHalf {
    inner: quinn::RecvStream,
    cancelled: Option<Code>,
}

/// A KPS stream: one reliable bidirectional byte stream (a QUIC bidirectional stream).
pub struct Stream {
    recv: RecvHalf,
    send: SendHalf,
    // `close()` (no code) was called: an orderly local teardown (§8.4).
    orderly: bool,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.send.inner.id())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SendHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendHalf")
            .field("id", &self.inner.id())
            .field("state", &self.state)
            .finish()
    }
}

impl fmt::Debug for RecvHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvHalf")
            .field("id", &self.inner.id())
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

impl Stream {
    fn new(send: quinn::SendStream, recv: quinn::RecvStream) -> Stream {
        Stream {
            recv: RecvHalf {
                inner: recv,
                cancelled: None,
            },
            send: SendHalf {
                inner: send,
                state: WriteState::Open,
            },
            orderly: false,
        }
    }

    /// Splits into independently owned read and write halves.
    pub fn into_split(self) -> (RecvHalf, SendHalf) {
        (self.recv, self.send)
    }

    /// Finishes the write half (FIN): the peer reads every byte written, then EOF.
    pub fn close_write(&mut self) -> Result<()> {
        self.send.close_write()
    }

    /// Aborts the write half (RESET_STREAM with `code`); the peer's read fails with it.
    pub fn reset_write(&mut self, code: Code) {
        self.send.reset_write(code)
    }

    /// Stops reading (STOP_SENDING with `code`); the peer's writes fail with it.
    pub fn cancel_read(&mut self, code: Code) {
        self.recv.cancel_read(code)
    }

    /// `close()` of §8.4: FIN plus STOP_SENDING(`closed`).
    pub fn close(&mut self) {
        // Orderly unless a coded teardown (reset or cancel) came first.
        if !matches!(self.send.state, WriteState::Reset(_)) && self.recv.cancelled.is_none() {
            self.orderly = true;
        }
        let _ = self.send.close_write();
        self.recv.cancel_read(Code::Closed);
    }

    /// `close(code)` of §8.4: RESET_STREAM(code) plus STOP_SENDING(code).
    pub fn close_with(&mut self, code: Code) {
        self.send.reset_write(code);
        self.recv.cancel_read(code);
    }

    /// `closed` of §8.4: waits until the stream has terminated in both directions and reports
    /// how. `Ok(())` for an orderly local teardown ([`Stream::close`], at once) or a normal
    /// completion (our FIN acknowledged or the peer done with our data, and the peer's FIN
    /// read to the end). Otherwise the first reason seen: a peer RESET or STOP_SENDING (its
    /// code, `remote = true`), our own [`Stream::close_with`], [`Stream::reset_write`] or
    /// [`Stream::cancel_read`] (that code, `remote = false`), or the connection's close or loss.
    /// Best-effort; cancel-safe. See [`SendHalf::closed`] and [`RecvHalf::closed`].
    pub async fn closed(&mut self) -> Result<()> {
        if self.orderly {
            return Ok(());
        }
        let mut recv = std::pin::pin!(self.recv.closed());
        let mut send = std::pin::pin!(self.send.closed());
        let (mut recv_done, mut send_done) = (false, false);
        std::future::poll_fn(|cx| {
            if !recv_done && let Poll::Ready(r) = recv.as_mut().poll(cx) {
                if r.is_err() {
                    return Poll::Ready(r);
                }
                recv_done = true;
            }
            if !send_done && let Poll::Ready(r) = send.as_mut().poll(cx) {
                if r.is_err() {
                    return Poll::Ready(r);
                }
                send_done = true;
            }
            if recv_done && send_done {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl SendHalf {
    /// Finishes the write half (FIN). Idempotent; a no-op after a reset.
    pub fn close_write(&mut self) -> Result<()> {
        if self.state != WriteState::Open {
            return Ok(());
        }
        self.state = WriteState::Finished;
        self.inner.finish().map_err(|_| Error::local(Code::Closed))
    }

    /// Aborts the write half with RESET_STREAM(`code`). Idempotent; a no-op after FIN.
    pub fn reset_write(&mut self, code: Code) {
        if self.state == WriteState::Open {
            self.state = WriteState::Reset(code);
            let _ = self.inner.reset(varint(code));
        }
    }

    /// Waits until the peer has received everything (after FIN), or stopped the stream; returns
    /// the peer's STOP_SENDING code if it stopped it.
    pub async fn stopped(&mut self) -> Result<Option<Code>> {
        match self.inner.stopped().await {
            Ok(code) => Ok(code.map(|c| Code::from_wire(c.into_inner()))),
            Err(quinn::StoppedError::ConnectionLost(e)) => Err(connection_error(&e)),
            Err(_) => Err(Error::local(Code::Closed)),
        }
    }

    /// Waits until the write half has terminated: `Ok(())` once our FIN was sent and the peer
    /// has everything (or the stream is gone after it); an error with the peer's STOP_SENDING
    /// code (`remote = true`), our own reset code (at once, `remote = false`) or the
    /// connection's close reason. While the half is open this waits for the peer to stop it
    /// or the connection to end. Cancel-safe.
    pub async fn closed(&mut self) -> Result<()> {
        if let WriteState::Reset(code) = self.state {
            return Err(Error::local(code));
        }
        match self.inner.stopped().await {
            Ok(None) => Ok(()),
            Ok(Some(code)) => Err(Error::remote(Code::from_wire(code.into_inner()))),
            Err(quinn::StoppedError::ConnectionLost(e)) => Err(connection_error(&e)),
            Err(_) => Err(Error::local(Code::InternalError)),
        }
    }

    fn write_error(&self, e: WriteError) -> Error {
        match e {
            WriteError::Stopped(code) => Error::remote(Code::from_wire(code.into_inner())),
            WriteError::ConnectionLost(e) => connection_error(&e),
            WriteError::ClosedStream => match self.state {
                WriteState::Reset(code) => Error::local(code),
                _ => Error::local(Code::Closed),
            },
            _ => Error::local(Code::InternalError),
        }
    }
}

impl RecvHalf {
    /// Stops reading with STOP_SENDING(`code`). Idempotent.
    pub fn cancel_read(&mut self, code: Code) {
        if self.cancelled.is_none() {
            self.cancelled = Some(code);
            let _ = self.inner.stop(varint(code));
        }
    }

    /// Waits until the read half has terminated: `Ok(())` once the peer's FIN arrived and every
    /// byte was read; an error with the peer's RESET code (`remote = true`), our own
    /// [`RecvHalf::cancel_read`] code (at once, `remote = false`) or the connection's close
    /// reason. Cancel-safe.
    pub async fn closed(&mut self) -> Result<()> {
        if let Some(code) = self.cancelled {
            return Err(Error::local(code));
        }
        match self.inner.received_reset().await {
            Ok(None) => Ok(()),
            Ok(Some(code)) => Err(Error::remote(Code::from_wire(code.into_inner()))),
            Err(quinn::ResetError::ConnectionLost(e)) => Err(connection_error(&e)),
            Err(_) => Err(Error::local(Code::InternalError)),
        }
    }

    fn read_error(&self, e: ReadError) -> Error {
        match e {
            ReadError::Reset(code) => Error::remote(Code::from_wire(code.into_inner())),
            ReadError::ConnectionLost(e) => connection_error(&e),
            ReadError::ClosedStream => Error::local(self.cancelled.unwrap_or(Code::Closed)),
            _ => Error::local(Code::InternalError),
        }
    }
}

impl AsyncRead for RecvHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(code) = this.cancelled {
            return Poll::Ready(Err(Error::local(code).into_io()));
        }
        match ready!(this.inner.poll_read_buf(cx, buf)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(this.read_error(e).into_io())),
        }
    }
}

impl AsyncWrite for SendHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.state {
            WriteState::Finished => return Poll::Ready(Err(Error::local(Code::Closed).into_io())),
            WriteState::Reset(code) => return Poll::Ready(Err(Error::local(code).into_io())),
            WriteState::Open => {}
        }
        match ready!(Pin::new(&mut this.inner).poll_write(cx, buf)) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(this.write_error(e).into_io())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().close_write().map_err(Error::into_io))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().send).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_shutdown(cx)
    }
}
