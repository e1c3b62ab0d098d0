//! The transport-independent API (spec §12): one [`Connection`] and one [`Stream`] type over
//! QUIC and WebRTC, with the same operations and the same error semantics on both.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{Code, Error, Result};
use crate::quic::connection as quic;
#[cfg(feature = "webrtc")]
use crate::webrtc::connection as rtc;

/// The transport under a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// QUIC (native clients).
    Quic,
    /// WebRTC data channels (browsers, or `--transport webrtc`).
    WebRtc,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Quic => "quic",
            Transport::WebRtc => "webrtc",
        })
    }
}

/// Runs `$body` with `$v` bound to whichever transport's value `$e` holds.
macro_rules! each {
    ($e:expr, $Enum:ident, $v:ident => $body:expr) => {
        match $e {
            $Enum::Quic($v) => $body,
            #[cfg(feature = "webrtc")]
            $Enum::WebRtc($v) => $body,
        }
    };
}

#[derive(Clone)]
enum Conn {
    Quic(quic::Connection),
    #[cfg(feature = "webrtc")]
    WebRtc(rtc::Connection),
}

/// An established KPS connection: bidirectional streams plus datagrams, over QUIC or WebRTC.
/// Cheap to clone; the connection closes (code 0) when the last clone and stream are dropped.
#[derive(Clone)]
pub struct Connection {
    inner: Conn,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &self.transport())
            .field("remote", &self.remote_address())
            .finish_non_exhaustive()
    }
}

impl From<quic::Connection> for Connection {
    fn from(c: quic::Connection) -> Self {
        Connection {
            inner: Conn::Quic(c),
        }
    }
}

#[cfg(feature = "webrtc")]
impl From<rtc::Connection> for Connection {
    fn from(c: rtc::Connection) -> Self {
        Connection {
            inner: Conn::WebRtc(c),
        }
    }
}

impl Connection {
    /// The transport this connection runs over.
    pub fn transport(&self) -> Transport {
        match self.inner {
            Conn::Quic(_) => Transport::Quic,
            #[cfg(feature = "webrtc")]
            Conn::WebRtc(_) => Transport::WebRtc,
        }
    }

    /// Opens a stream. Waits while the peer's stream limit is reached.
    pub async fn open_stream(&self) -> Result<Stream> {
        Ok(each!(&self.inner, Conn, c => c.open_stream().await?.into()))
    }

    /// Waits for the next stream the peer opens.
    pub async fn accept_stream(&self) -> Result<Stream> {
        Ok(each!(&self.inner, Conn, c => c.accept_stream().await?.into()))
    }

    /// Sends an unreliable datagram. Larger than [`Connection::max_datagram_size`] →
    /// [`Error::DatagramTooLarge`] (`too-large`) carrying the current maximum.
    pub fn send_datagram(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        each!(&self.inner, Conn, c => c.send_datagram(data))
    }

    /// Waits for the next datagram (oldest first; the queue drops the oldest when full).
    pub async fn recv_datagram(&self) -> Result<Bytes> {
        each!(&self.inner, Conn, c => c.recv_datagram().await)
    }

    /// The largest datagram payload that can be sent now (QUIC: path-dependent, 0 if the peer
    /// takes no datagrams; WebRTC: 1200).
    pub fn max_datagram_size(&self) -> usize {
        each!(&self.inner, Conn, c => c.max_datagram_size())
    }

    /// Closes the connection with a registry code (`Code::None` = clean). The peer sees the
    /// code with `remote = true`; locally [`Connection::closed`] reports it with
    /// `remote = false`. Pending operations fail with `closed`.
    pub fn close(&self, code: Code) {
        each!(&self.inner, Conn, c => c.close(code))
    }

    /// Waits until the connection is closed and returns the reason: the peer's code
    /// (`remote = true`), our own close code (`remote = false`), `timeout` or `network-error`.
    pub async fn closed(&self) -> Error {
        each!(&self.inner, Conn, c => c.closed().await)
    }

    /// The close reason, if the connection is closed.
    pub fn close_reason(&self) -> Option<Error> {
        each!(&self.inner, Conn, c => c.close_reason())
    }

    /// The peer's address (canonical form): the dialled endpoint, or the handshake source.
    pub fn remote_address(&self) -> SocketAddr {
        each!(&self.inner, Conn, c => c.remote_address())
    }

    /// The underlying quinn connection (statistics, RTT), on QUIC.
    pub fn quic(&self) -> Option<&quinn::Connection> {
        match &self.inner {
            Conn::Quic(c) => Some(c.quic()),
            #[cfg(feature = "webrtc")]
            Conn::WebRtc(_) => None,
        }
    }
}

// ----- streams --------------------------------------------------------------------------------

enum StreamInner {
    Quic(quic::Stream),
    #[cfg(feature = "webrtc")]
    WebRtc(rtc::Stream),
}

enum SendInner {
    Quic(quic::SendHalf),
    #[cfg(feature = "webrtc")]
    WebRtc(rtc::SendHalf),
}

enum RecvInner {
    Quic(quic::RecvHalf),
    #[cfg(feature = "webrtc")]
    WebRtc(rtc::RecvHalf),
}

/// A KPS stream: one reliable bidirectional byte stream (a QUIC bidirectional stream, or a
/// data channel on WebRTC). `AsyncRead` ends with EOF only after the peer's FIN; every other
/// end is an `io::Error` carrying an [`Error`] (recover it with [`Error::from_io`]).
pub struct Stream {
    inner: StreamInner,
}

/// The write half of a stream: `AsyncWrite`, plus FIN and RESET.
pub struct SendHalf {
    inner: SendInner,
}

/// The read half of a stream: `AsyncRead` (EOF only after the peer's FIN), plus STOP_SENDING.
pub struct RecvHalf {
    inner: RecvInner,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        each!(&self.inner, StreamInner, s => s.fmt(f))
    }
}

impl fmt::Debug for SendHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        each!(&self.inner, SendInner, s => s.fmt(f))
    }
}

impl fmt::Debug for RecvHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        each!(&self.inner, RecvInner, s => s.fmt(f))
    }
}

impl From<quic::Stream> for Stream {
    fn from(s: quic::Stream) -> Self {
        Stream {
            inner: StreamInner::Quic(s),
        }
    }
}

#[cfg(feature = "webrtc")]
impl From<rtc::Stream> for Stream {
    fn from(s: rtc::Stream) -> Self {
        Stream {
            inner: StreamInner::WebRtc(s),
        }
    }
}

impl Stream {
    /// Splits into independently owned read and write halves.
    pub fn into_split(self) -> (RecvHalf, SendHalf) {
        match self.inner {
            StreamInner::Quic(s) => {
                let (r, w) = s.into_split();
                (
                    RecvHalf {
                        inner: RecvInner::Quic(r),
                    },
                    SendHalf {
                        inner: SendInner::Quic(w),
                    },
                )
            }
            #[cfg(feature = "webrtc")]
            StreamInner::WebRtc(s) => {
                let (r, w) = s.into_split();
                (
                    RecvHalf {
                        inner: RecvInner::WebRtc(r),
                    },
                    SendHalf {
                        inner: SendInner::WebRtc(w),
                    },
                )
            }
        }
    }

    /// Finishes the write half (FIN): the peer reads every byte written, then EOF.
    pub fn close_write(&mut self) -> Result<()> {
        each!(&mut self.inner, StreamInner, s => s.close_write())
    }

    /// Aborts the write half (RESET with `code`); the peer's read fails with it.
    pub fn reset_write(&mut self, code: Code) {
        each!(&mut self.inner, StreamInner, s => s.reset_write(code))
    }

    /// Stops reading (STOP_SENDING with `code`); the peer's writes fail with it.
    pub fn cancel_read(&mut self, code: Code) {
        each!(&mut self.inner, StreamInner, s => s.cancel_read(code))
    }

    /// `close()` of §8.4: FIN plus STOP_SENDING(`closed`).
    pub fn close(&mut self) {
        each!(&mut self.inner, StreamInner, s => s.close())
    }

    /// `close(code)` of §8.4: RESET(code) plus STOP_SENDING(code).
    pub fn close_with(&mut self, code: Code) {
        each!(&mut self.inner, StreamInner, s => s.close_with(code))
    }

    /// `closed` of §8.4: waits until the stream has terminated in both directions and reports
    /// how. `Ok(())` for an orderly local teardown ([`Stream::close`], at once) or a normal
    /// completion; otherwise the first reason seen: a peer RESET or STOP_SENDING (its code,
    /// `remote = true`), our own [`Stream::close_with`], [`Stream::reset_write`] or
    /// [`Stream::cancel_read`] (that code, `remote = false`), or the connection's close or
    /// loss. Best-effort; cancel-safe.
    pub async fn closed(&mut self) -> Result<()> {
        each!(&mut self.inner, StreamInner, s => s.closed().await)
    }
}

impl SendHalf {
    /// Finishes the write half (FIN). Idempotent; a no-op after a reset.
    pub fn close_write(&mut self) -> Result<()> {
        each!(&mut self.inner, SendInner, s => s.close_write())
    }

    /// Aborts the write half with RESET(`code`). Idempotent; a no-op after FIN.
    pub fn reset_write(&mut self, code: Code) {
        each!(&mut self.inner, SendInner, s => s.reset_write(code))
    }

    /// Waits until the peer has everything (after FIN; on WebRTC: until the FIN was handed to
    /// SCTP, which delivers reliably) or stopped the stream; returns the peer's STOP_SENDING
    /// code if it stopped it.
    pub async fn stopped(&mut self) -> Result<Option<Code>> {
        each!(&mut self.inner, SendInner, s => s.stopped().await)
    }

    /// Waits until the write half has terminated: `Ok(())` after our FIN; an error with the
    /// peer's STOP_SENDING code (`remote = true`), our own reset code (at once) or the
    /// connection's close reason. Cancel-safe.
    pub async fn closed(&mut self) -> Result<()> {
        each!(&mut self.inner, SendInner, s => s.closed().await)
    }
}

impl RecvHalf {
    /// Stops reading with STOP_SENDING(`code`). Idempotent.
    pub fn cancel_read(&mut self, code: Code) {
        each!(&mut self.inner, RecvInner, s => s.cancel_read(code))
    }

    /// Waits until the read half has terminated: `Ok(())` once the peer's FIN arrived and every
    /// byte was read; an error with the peer's RESET code (`remote = true`), our own
    /// [`RecvHalf::cancel_read`] code (at once) or the connection's close reason. Cancel-safe.
    pub async fn closed(&mut self) -> Result<()> {
        each!(&mut self.inner, RecvInner, s => s.closed().await)
    }
}

impl AsyncRead for RecvHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().inner, RecvInner, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for SendHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.get_mut().inner, SendInner, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().inner, SendInner, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().inner, SendInner, s => Pin::new(s).poll_shutdown(cx))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().inner, StreamInner, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.get_mut().inner, StreamInner, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().inner, StreamInner, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().inner, StreamInner, s => Pin::new(s).poll_shutdown(cx))
    }
}
