//! [`BoxStream`]: a box-stream over a byte stream, as `AsyncRead + AsyncWrite` (spec §11–§13).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error::{Error, Step};
use crate::keys::PublicKey;
use crate::limits::{HEADER_LEN, MAX_PACKET};
use crate::proto::{BoxDecoder, BoxEncoder, HandshakeOutcome};

/// Bytes read from the transport at once.
const READ_BUFFER: usize = 64 * 1024;
/// Sealed bytes buffered for the transport before `poll_write` waits: 16 full packets.
const WRITE_BUFFER: usize = 16 * (HEADER_LEN + MAX_PACKET);

/// The read half of a split [`BoxStream`].
pub type BoxStreamReader<S> = tokio::io::ReadHalf<BoxStream<S>>;
/// The write half of a split [`BoxStream`]; shutting it down sends the goodbye.
pub type BoxStreamWriter<S> = tokio::io::WriteHalf<BoxStream<S>>;

/// An authenticated, encrypted duplex stream after a successful handshake.
///
/// * Reading yields the peer's plaintext; the peer's goodbye is end-of-file, and a transport
///   EOF without a goodbye is an `UnexpectedEof` error (never a clean end).
/// * Each write becomes one or more packets of at most 4096 bytes, sealed at once; sealed
///   bytes are sent as the transport accepts them, and `flush` sends all of them.
/// * `shutdown` sends the goodbye and flushes, but does not half-close the transport while the
///   peer has not said goodbye (Node peers would drop what they still had to send). Use
///   [`BoxStream::close`] to also wait for the peer's goodbye, or drop the stream.
/// * Dropping the stream without `shutdown` sends no goodbye: the peer sees an error.
pub struct BoxStream<S> {
    inner: S,
    peer: PublicKey,
    encoder: BoxEncoder,
    decoder: BoxDecoder,
    rbuf: Box<[u8]>,
    rpos: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    inner_shut: bool,
    close_timeout: Duration,
}

impl<S> BoxStream<S> {
    pub(crate) fn new(inner: S, outcome: HandshakeOutcome, close_timeout: Duration) -> Self {
        let peer = *outcome.peer();
        let (encoder, decoder) = outcome.into_codec();
        BoxStream {
            inner,
            peer,
            encoder,
            decoder,
            rbuf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            rpos: 0,
            rend: 0,
            wbuf: Vec::with_capacity(WRITE_BUFFER + HEADER_LEN + MAX_PACKET),
            wpos: 0,
            inner_shut: false,
            close_timeout,
        }
    }

    /// The peer's authenticated long-term key.
    pub fn peer(&self) -> &PublicKey {
        &self.peer
    }

    /// True once the peer's goodbye arrived.
    pub fn peer_said_goodbye(&self) -> bool {
        self.decoder.is_finished()
    }

    /// True once our goodbye was sealed.
    pub fn goodbye_sent(&self) -> bool {
        self.encoder.is_finished()
    }

    /// The transport, for inspection (writing to it directly would break the stream).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Splits into a read half and a write half that can live on different tasks. The
    /// transport closes when both are dropped.
    pub fn split(self) -> (BoxStreamReader<S>, BoxStreamWriter<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::io::split(self)
    }

    fn pending_write(&self) -> usize {
        self.wbuf.len() - self.wpos
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> BoxStream<S> {
    /// Closes cleanly: sends the goodbye, then reads until the peer's goodbye, EOF, an error or
    /// the close timeout, discarding anything the peer still sends, and closes the transport.
    /// Returns an error only if our goodbye could not be sent or the peer's stream was cut.
    pub async fn close(mut self) -> Result<(), Error> {
        self.shutdown()
            .await
            .map_err(|err| Error::from_io(err, Step::Close))?;
        let timeout = self.close_timeout;
        let mut discarded = 0usize;
        let mut scratch = [0u8; 4096];
        let drained = tokio::time::timeout(timeout, async {
            loop {
                match self.read(&mut scratch).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => discarded += n,
                    Err(err) => return Err(Error::from_io(err, Step::Close)),
                }
            }
        })
        .await;
        if discarded > 0 {
            tracing::debug!(discarded, "peer data discarded while closing");
        }
        let _ = self.inner.shutdown().await;
        match drained {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                step: Step::Close,
                after: timeout,
            }),
        }
    }
}

impl<S: AsyncWrite + Unpin> BoxStream<S> {
    /// Writes buffered sealed bytes until at most `keep` remain.
    fn poll_drain(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<io::Result<()>> {
        while self.pending_write() > keep {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        } else if self.wpos > WRITE_BUFFER {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BoxStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let plaintext = this.decoder.plaintext();
            if !plaintext.is_empty() {
                let n = plaintext.len().min(buf.remaining());
                buf.put_slice(&plaintext[..n]);
                this.decoder.consume(n);
                return Poll::Ready(Ok(()));
            }
            if this.decoder.is_finished() {
                return Poll::Ready(Ok(()));
            }
            if this.rpos < this.rend {
                let used = this
                    .decoder
                    .feed(&this.rbuf[this.rpos..this.rend])
                    .map_err(Error::into_io)?;
                this.rpos += used;
                continue;
            }
            let mut read = ReadBuf::new(&mut this.rbuf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let filled = read.filled().len();
            if filled == 0 {
                this.decoder.finish().map_err(Error::into_io)?;
                return Poll::Ready(Ok(()));
            }
            this.rpos = 0;
            this.rend = filled;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BoxStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.encoder.is_finished() {
            return Poll::Ready(Err(Error::InvalidInput(
                crate::InvalidInput::WriteAfterGoodbye,
            )
            .into_io()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Room for this write: wait while a full buffer of sealed bytes is still unsent.
        ready!(this.poll_drain(cx, WRITE_BUFFER.saturating_sub(1)))?;
        let take = data.len().min(WRITE_BUFFER);
        this.encoder
            .encode(&data[..take], &mut this.wbuf)
            .map_err(Error::into_io)?;
        // Send what the transport takes now; the rest goes on the next write or flush.
        if let Poll::Ready(Err(err)) = this.poll_drain(cx, 0) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx, 0))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Sends the goodbye and flushes. Half-closes the transport only if the peer already said
    /// goodbye (both directions are then done).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.encoder.is_finished() {
            let goodbye = this.encoder.goodbye().map_err(Error::into_io)?;
            this.wbuf.extend_from_slice(&goodbye);
        }
        ready!(this.poll_drain(cx, 0))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        if this.decoder.is_finished() && !this.inner_shut {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.inner_shut = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> fmt::Debug for BoxStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxStream")
            .field("peer", &self.peer)
            .field("goodbye_sent", &self.encoder.is_finished())
            .field("peer_said_goodbye", &self.decoder.is_finished())
            .finish_non_exhaustive()
    }
}
