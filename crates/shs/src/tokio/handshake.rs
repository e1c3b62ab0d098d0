//! Handshake drivers: exact reads, one overall deadline, a bounded authorize (spec §5, §6, §9).

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use super::stream::BoxStream;
use crate::error::{Error, Refusal, Result, Step};
use crate::keys::{EphemeralKey, Keypair, NetworkKey, PublicKey};
use crate::limits::{
    AUTHORIZE_TIMEOUT, CLOSE_TIMEOUT, HANDSHAKE_TIMEOUT, MSG1_LEN, MSG2_LEN, MSG3_LEN, MSG4_LEN,
};
use crate::proto::{ClientHandshake, ServerHandshake};

/// What a client needs to dial a server.
#[derive(Debug)]
pub struct ClientConfig {
    keypair: Keypair,
    server_key: [u8; 32],
    network: NetworkKey,
    handshake_timeout: Duration,
    close_timeout: Duration,
    ephemeral: Option<EphemeralKey>,
}

impl ClientConfig {
    /// Dial the server whose Ed25519 key is `server_key`, as `keypair`, on the SSB main net.
    pub fn new(keypair: Keypair, server_key: [u8; 32]) -> Self {
        ClientConfig {
            keypair,
            server_key,
            network: NetworkKey::default(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            close_timeout: CLOSE_TIMEOUT,
            ephemeral: None,
        }
    }

    /// Use another network key.
    pub fn network(mut self, network: NetworkKey) -> Self {
        self.network = network;
        self
    }

    /// Bound the whole handshake (default [`HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Bound the wait for the peer's goodbye in [`BoxStream::close`] (default [`CLOSE_TIMEOUT`]).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Use this ephemeral key instead of a fresh one (tests replaying vectors only).
    #[doc(hidden)]
    pub fn ephemeral(mut self, key: EphemeralKey) -> Self {
        self.ephemeral = Some(key);
        self
    }
}

/// What a server needs to accept clients.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    keypair: Keypair,
    network: NetworkKey,
    handshake_timeout: Duration,
    authorize_timeout: Duration,
    close_timeout: Duration,
}

impl ServerConfig {
    /// Accept as `keypair` on the SSB main net.
    pub fn new(keypair: Keypair) -> Self {
        ServerConfig {
            keypair,
            network: NetworkKey::default(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            authorize_timeout: AUTHORIZE_TIMEOUT,
            close_timeout: CLOSE_TIMEOUT,
        }
    }

    /// Use another network key.
    pub fn network(mut self, network: NetworkKey) -> Self {
        self.network = network;
        self
    }

    /// Bound the whole handshake (default [`HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Bound the authorize hook (default [`AUTHORIZE_TIMEOUT`]); never past the handshake
    /// deadline.
    pub fn authorize_timeout(mut self, timeout: Duration) -> Self {
        self.authorize_timeout = timeout;
        self
    }

    /// Bound the wait for the peer's goodbye in [`BoxStream::close`] (default [`CLOSE_TIMEOUT`]).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The server's public key.
    pub fn public_key(&self) -> &PublicKey {
        self.keypair.public()
    }
}

/// Runs `fut` until the handshake deadline; a timeout names `step`.
async fn by<T>(
    deadline: Instant,
    bound: Duration,
    step: Step,
    fut: impl Future<Output = io::Result<T>>,
) -> Result<T> {
    match timeout_at(deadline, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Error::io(step, err)),
        Err(_) => Err(Error::Timeout { step, after: bound }),
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

async fn receive<S: AsyncRead + Unpin, const N: usize>(stream: &mut S) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Runs the client handshake over `stream` and returns the box-stream. On any failure nothing
/// more is written and the error names the step; drop the stream to close it.
///
/// If the server closes the connection after msg3, the error is
/// [`Refusal::ServerClosedAfterHello`]: the server has another key or does not accept us.
pub async fn connect<S>(mut stream: S, config: ClientConfig) -> Result<BoxStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bound = config.handshake_timeout;
    let deadline = Instant::now() + bound;
    let ephemeral = config.ephemeral.unwrap_or_else(EphemeralKey::generate);
    let handshake = ClientHandshake::new(
        config.network,
        config.keypair,
        &config.server_key,
        ephemeral,
    )?;
    let (msg1, handshake) = handshake.hello();
    by(deadline, bound, Step::Msg1, send(&mut stream, &msg1)).await?;
    let msg2: [u8; MSG2_LEN] = by(deadline, bound, Step::Msg2, receive(&mut stream)).await?;
    let (msg3, handshake) = handshake.read_hello(&msg2)?;
    by(deadline, bound, Step::Msg3, send(&mut stream, &msg3)).await?;
    let msg4: [u8; MSG4_LEN] = match by(deadline, bound, Step::Msg4, receive(&mut stream)).await {
        Ok(msg4) => msg4,
        Err(Error::UnexpectedEof { .. }) => return Err(closed_after_hello()),
        Err(Error::Io { source, .. }) if is_reset(&source) => return Err(closed_after_hello()),
        Err(err) => return Err(err),
    };
    let outcome = handshake.read_accept(&msg4)?;
    Ok(BoxStream::new(stream, outcome, config.close_timeout))
}

fn closed_after_hello() -> Error {
    Error::Refused {
        step: Step::Msg4,
        reason: Refusal::ServerClosedAfterHello,
    }
}

fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Runs the server handshake over `stream`. `authorize` is called exactly once, with the
/// client's verified key, after msg3 and before msg4: `Some(value)` accepts and returns the
/// value with the stream (like the JS `stream.auth`), `None` denies. A denial, or an
/// authorize slower than the configured bound, ends the handshake without writing msg4.
pub async fn accept<S, A, F, Fut>(
    mut stream: S,
    config: &ServerConfig,
    authorize: F,
) -> Result<(BoxStream<S>, A)>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(PublicKey) -> Fut,
    Fut: Future<Output = Option<A>>,
{
    let bound = config.handshake_timeout;
    let deadline = Instant::now() + bound;
    let handshake = ServerHandshake::new(
        config.network,
        config.keypair.clone(),
        EphemeralKey::generate(),
    );
    let msg1: [u8; MSG1_LEN] = by(deadline, bound, Step::Msg1, receive(&mut stream)).await?;
    let (msg2, handshake) = handshake.read_hello(&msg1)?;
    by(deadline, bound, Step::Msg2, send(&mut stream, &msg2)).await?;
    let msg3: [u8; MSG3_LEN] = by(deadline, bound, Step::Msg3, receive(&mut stream)).await?;
    let pending = handshake.read_auth(&msg3)?;

    let authorize_deadline = deadline.min(Instant::now() + config.authorize_timeout);
    let value = match timeout_at(authorize_deadline, authorize(*pending.client())).await {
        Ok(Some(value)) => value,
        Ok(None) => return Err(pending.deny()),
        Err(_) => {
            tracing::debug!(client = ?pending.client(), "authorize timed out; denying");
            return Err(pending.deny());
        }
    };
    let (msg4, outcome) = pending.accept();
    by(deadline, bound, Step::Msg4, send(&mut stream, &msg4)).await?;
    Ok((BoxStream::new(stream, outcome, config.close_timeout), value))
}
