//! An established SBRP session (section 4): per-direction keys, nonce = direction ‖ seq,
//! empty AAD, a replay window per receiving direction with check → open → commit.

use std::fmt;
use std::time::Instant;

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Nonce, Tag};
use keyline_core::ReplayWindow;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::limits::{
    DATA_OVERHEAD, DEFAULT_REPLAY_WINDOW, HANDSHAKE_TIMEOUT, HEADER_LEN, MAX_PLAINTEXT,
    MIN_REPLAY_WINDOW, NONCE_LEN, TAG_LEN,
};
use crate::proto::frame::{Frame, FrameType, Header};

/// A direction of traffic; its number is the first four nonce bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Direction {
    /// 1: sealed with `k_c2d`.
    ClientToDaemon = 1,
    /// 2: sealed with `k_d2c`.
    DaemonToClient = 2,
}

/// Which end of the session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client: sends [`Direction::ClientToDaemon`].
    Client,
    /// The daemon: sends [`Direction::DaemonToClient`].
    Daemon,
}

impl Role {
    /// The direction this role sends.
    pub fn send_direction(self) -> Direction {
        match self {
            Self::Client => Direction::ClientToDaemon,
            Self::Daemon => Direction::DaemonToClient,
        }
    }

    /// The direction this role receives.
    pub fn receive_direction(self) -> Direction {
        match self {
            Self::Client => Direction::DaemonToClient,
            Self::Daemon => Direction::ClientToDaemon,
        }
    }
}

/// Session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Replay window per receiving direction: a multiple of 64, at least
    /// [`MIN_REPLAY_WINDOW`]; default [`DEFAULT_REPLAY_WINDOW`] (128).
    pub replay_window: usize,
    /// Handshake deadline (SBRP plus inner SBP handshake); default
    /// [`HANDSHAKE_TIMEOUT`] (30 s).
    pub handshake_timeout: std::time::Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            replay_window: DEFAULT_REPLAY_WINDOW,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

impl SessionConfig {
    /// A configuration with the given replay window.
    pub fn with_replay_window(mut self, window: usize) -> Self {
        self.replay_window = window;
        self
    }

    /// A configuration with the given handshake timeout.
    pub fn with_handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    pub(crate) fn window(&self) -> Result<ReplayWindow> {
        if self.replay_window < MIN_REPLAY_WINDOW {
            return Err(Error::param(
                "replay window",
                format!("{} is below {MIN_REPLAY_WINDOW}", self.replay_window),
            ));
        }
        ReplayWindow::new(self.replay_window)
            .map_err(|e| Error::param("replay window", e.to_string()))
    }
}

/// The 12-byte nonce: `u32be(direction) ‖ u64be(seq)`.
pub fn nonce(direction: Direction, seq: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(&(direction as u32).to_be_bytes());
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

/// The sealing half of one direction. Never reuses a sequence number; stops at 2^64 − 2.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    direction: Direction,
    next_seq: u64,
}

impl Sealer {
    /// A sealer for `direction` starting at sequence 0. `key` is copied into the cipher,
    /// which zeroizes it on drop.
    pub fn new(key: &[u8; 32], direction: Direction) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(key.into()),
            direction,
            next_seq: 0,
        }
    }

    /// The sequence number the next frame gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether no sequence number is left (the next would be 2^64 − 1).
    pub fn is_exhausted(&self) -> bool {
        self.next_seq == u64::MAX
    }

    /// Seals `plaintext` into `out` as a Data payload `nonce ‖ ciphertext ‖ tag`; returns
    /// its length (`plaintext.len() + 28`).
    pub fn seal_payload(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::PayloadTooLarge {
                len: plaintext.len() as u64,
                limit: MAX_PLAINTEXT,
            });
        }
        if self.is_exhausted() {
            return Err(Error::SequenceExhausted);
        }
        let total = plaintext.len() + DATA_OVERHEAD;
        let available = out.len();
        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall {
            needed: total,
            available,
        })?;
        let seq = self.next_seq;
        let n = nonce(self.direction, seq);
        let (head, rest) = out.split_at_mut(NONCE_LEN);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        head.copy_from_slice(&n);
        let buf = InOutBuf::new(plaintext, body)
            .map_err(|_| Error::param("seal buffer", "length mismatch"))?;
        let tag = self
            .cipher
            .encrypt_inout_detached(&Nonce::from(n), b"", buf)
            .map_err(|_| Error::param("plaintext", "too long for ChaCha20-Poly1305"))?;
        tag_out.copy_from_slice(tag.as_slice());
        self.next_seq = seq + 1;
        Ok(total)
    }

    #[doc(hidden)]
    pub fn set_next_seq(&mut self, seq: u64) {
        self.next_seq = seq;
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("direction", &self.direction)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// The opening half of one direction: replay window check → AEAD open → commit.
///
/// Unlike [`Session`], a `Opener` stays usable after a failed open; the session ends itself
/// on `decrypt_failed`.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    direction: Direction,
    window: ReplayWindow,
}

impl Opener {
    /// An opener for frames sealed in `direction` with `key`.
    pub fn new(key: &[u8; 32], direction: Direction, window: ReplayWindow) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(key.into()),
            direction,
            window,
        }
    }

    /// The replay window.
    pub fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Opens a Data payload, returning the plaintext.
    ///
    /// Errors: shorter than 28 bytes → `malformed_frame`; wrong direction in the nonce or a
    /// bad tag → [`Error::DecryptFailed`]; duplicate or too old → [`Error::SequenceError`].
    /// Only a frame that authenticates is committed to the window.
    pub fn open(&mut self, payload: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; payload.len().saturating_sub(DATA_OVERHEAD)];
        let n = self.open_into(payload, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// [`open`](Self::open) into a caller buffer of at least `payload.len() − 28` bytes;
    /// returns the plaintext length. On failure `out` holds no plaintext.
    pub fn open_into(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize> {
        if payload.len() < DATA_OVERHEAD {
            return Err(Error::malformed("Data payload shorter than 28 bytes"));
        }
        let (n, rest) = payload.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let available = out.len();
        let out = out
            .get_mut(..ciphertext.len())
            .ok_or(Error::BufferTooSmall {
                needed: ciphertext.len(),
                available,
            })?;
        let mut dir = [0u8; 4];
        dir.copy_from_slice(&n[..4]);
        if u32::from_be_bytes(dir) != self.direction as u32 {
            return Err(Error::DecryptFailed);
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&n[4..]);
        let seq = u64::from_be_bytes(seq);
        self.window.check(seq)?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(n);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let buf = InOutBuf::new(ciphertext, &mut *out)
            .map_err(|_| Error::param("open buffer", "length mismatch"))?;
        if self
            .cipher
            .decrypt_inout_detached(&Nonce::from(nonce_bytes), b"", buf, &Tag::from(tag_bytes))
            .is_err()
        {
            out.fill(0);
            return Err(Error::DecryptFailed);
        }
        self.window.commit(seq);
        Ok(ciphertext.len())
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("direction", &self.direction)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// The two traffic keys from HKDF (`okm[0..32]`, `okm[32..64]`), zeroized on drop.
pub struct SessionKeys {
    pub(crate) okm: Zeroizing<[u8; 64]>,
}

impl SessionKeys {
    /// `k_c2d`: seals client → daemon.
    pub fn client_to_daemon(&self) -> &[u8; 32] {
        self.okm[..32].try_into().expect("32 of 64 bytes")
    }

    /// `k_d2c`: seals daemon → client.
    pub fn daemon_to_client(&self) -> &[u8; 32] {
        self.okm[32..].try_into().expect("32 of 64 bytes")
    }

    /// The whole 64-byte HKDF output.
    pub fn okm(&self) -> &[u8; 64] {
        &self.okm
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Exhausted,
    Failed,
    Closed,
}

/// An established session for one sid.
///
/// Sending past 2^64 − 2 ends the session; a Data frame that fails to open ends it too
/// (keys are dropped and zeroized); a duplicate or too-old frame is dropped, counted and
/// reported as [`Error::SequenceError`], and the session continues.
pub struct Session {
    sid: u64,
    role: Role,
    keys: Option<(Sealer, Opener)>,
    state: State,
    handshake_deadline: Option<Instant>,
    replays_dropped: u64,
}

impl Session {
    /// A session from derived keys. `handshake_deadline` stays armed until
    /// [`handshake_complete`](Self::handshake_complete) (the inner SBP handshake is done).
    pub(crate) fn new(
        sid: u64,
        role: Role,
        keys: &SessionKeys,
        config: &SessionConfig,
        handshake_deadline: Option<Instant>,
    ) -> Result<Session> {
        if sid == 0 {
            return Err(Error::param("sid", "must not be 0"));
        }
        let (send_key, recv_key) = match role {
            Role::Client => (keys.client_to_daemon(), keys.daemon_to_client()),
            Role::Daemon => (keys.daemon_to_client(), keys.client_to_daemon()),
        };
        let sealer = Sealer::new(send_key, role.send_direction());
        let opener = Opener::new(recv_key, role.receive_direction(), config.window()?);
        Ok(Session {
            sid,
            role,
            keys: Some((sealer, opener)),
            state: State::Open,
            handshake_deadline,
            replays_dropped: 0,
        })
    }

    /// The session id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the session can no longer send or receive.
    pub fn is_closed(&self) -> bool {
        self.state != State::Open
    }

    /// Whether the session holds all the state a resumable daemon needs to send
    /// `Signal(ready)` (both keys, counters not exhausted).
    pub fn is_resumable(&self) -> bool {
        self.state == State::Open && self.keys.is_some()
    }

    /// Duplicate or too-old Data frames dropped so far.
    pub fn replays_dropped(&self) -> u64 {
        self.replays_dropped
    }

    /// The sequence number the next sent frame gets (`None` once closed).
    pub fn next_send_seq(&self) -> Option<u64> {
        self.keys.as_ref().map(|(s, _)| s.next_seq())
    }

    /// The highest received sequence number (`None` before the first frame or once closed).
    pub fn max_received_seq(&self) -> Option<u64> {
        self.keys.as_ref().and_then(|(_, o)| o.window().highest())
    }

    /// The handshake deadline while the inner SBP handshake is pending.
    pub fn handshake_deadline(&self) -> Option<Instant> {
        self.handshake_deadline
    }

    /// Marks the inner SBP handshake as done: the deadline is disarmed.
    pub fn handshake_complete(&mut self) {
        self.handshake_deadline = None;
    }

    /// Reports [`Error::HandshakeTimeout`] (and closes the session) when the handshake
    /// deadline is armed and `now` reached it. Call whenever the driver's timer fires.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        match self.handshake_deadline {
            Some(deadline) if now >= deadline => {
                self.end(State::Failed);
                Err(Error::HandshakeTimeout)
            }
            _ => Ok(()),
        }
    }

    /// Seals `plaintext` (≤ 65 508 bytes) as a complete Data frame into `out`; returns the
    /// frame length (`plaintext.len() + 41`). After the frame with sequence 2^64 − 2 the
    /// session ends: send that frame, then handshake again.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize> {
        let sealer = match (&mut self.keys, self.state) {
            (Some((sealer, _)), State::Open) => sealer,
            (_, State::Exhausted) => return Err(Error::SequenceExhausted),
            _ => return Err(Error::SessionClosed),
        };
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::PayloadTooLarge {
                len: plaintext.len() as u64,
                limit: MAX_PLAINTEXT,
            });
        }
        let total = HEADER_LEN + DATA_OVERHEAD + plaintext.len();
        if out.len() < total {
            return Err(Error::BufferTooSmall {
                needed: total,
                available: out.len(),
            });
        }
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let n = sealer.seal_payload(plaintext, body)?;
        let header = Header {
            frame_type: FrameType::Data as u8,
            // n ≤ MAX_PAYLOAD.
            length: n as u32,
            sid: self.sid,
        };
        head.copy_from_slice(&header.to_bytes());
        if sealer.is_exhausted() {
            self.end(State::Exhausted);
        }
        Ok(HEADER_LEN + n)
    }

    /// [`seal`](Self::seal) into a new vector.
    pub fn seal_to_vec(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; HEADER_LEN + DATA_OVERHEAD + plaintext.len().min(MAX_PLAINTEXT)];
        let n = self.seal(plaintext, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Opens the payload of a Data frame for this session.
    ///
    /// [`Error::SequenceError`]: drop the frame, keep going. [`Error::DecryptFailed`]: the
    /// session is over (its keys are zeroized); a client closes its WebSocket, a daemon
    /// sends `Signal(close, error)` for this sid.
    pub fn open(&mut self, payload: &[u8]) -> Result<Vec<u8>> {
        let opener = match (&mut self.keys, self.state) {
            (Some((_, opener)), State::Open | State::Exhausted) => opener,
            _ => return Err(Error::SessionClosed),
        };
        match opener.open(payload) {
            Ok(plaintext) => Ok(plaintext),
            Err(e @ Error::SequenceError(_)) => {
                self.replays_dropped += 1;
                Err(e)
            }
            Err(e) => {
                self.end(State::Failed);
                Err(e)
            }
        }
    }

    /// Opens a decoded frame: it must be a Data frame for this sid.
    pub fn open_frame(&mut self, frame: &Frame<'_>) -> Result<Vec<u8>> {
        match frame {
            Frame::Data { sid, payload } if *sid == self.sid => self.open(payload),
            Frame::Data { .. } => Err(Error::UnexpectedFrame {
                reason: "Data frame for another sid",
            }),
            _ => Err(Error::UnexpectedFrame {
                reason: "expected a Data frame",
            }),
        }
    }

    /// Ends the session and zeroizes its keys.
    pub fn close(&mut self) {
        self.end(State::Closed);
    }

    fn end(&mut self, state: State) {
        if self.state == State::Open {
            self.state = state;
        }
        // Dropping the sealer and opener zeroizes both keys.
        self.keys = None;
        self.handshake_deadline = None;
    }

    #[doc(hidden)]
    pub fn set_next_send_seq(&mut self, seq: u64) {
        if let Some((sealer, _)) = &mut self.keys {
            sealer.set_next_seq(seq);
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("role", &self.role)
            .field("state", &self.state)
            .field("next_send_seq", &self.next_send_seq())
            .field("max_received_seq", &self.max_received_seq())
            .field("replays_dropped", &self.replays_dropped)
            .finish_non_exhaustive()
    }
}
