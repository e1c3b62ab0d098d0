//! The SBRP handshake (section 3): HandshakeInit (client ephemeral) and HandshakeAccept
//! (identity key, daemon ephemeral, signature), then HKDF-SHA256 session keys.
//!
//! The daemon answers an Init in one step ([`DaemonIdentity::accept`]). The client is a small
//! state machine: [`ClientHandshake::new`] → send [`ClientHandshake::init_frame`] → feed
//! frames to [`ClientHandshake::handle_frame`] until it yields the [`Accept`] → decide trust
//! ([`crate::proto::trust::decide`]) → [`ClientHandshake::finish`] with the selected key →
//! pin only now. Time is an input; both sides report `handshake_timeout` from
//! [`ClientHandshake::handle_timeout`] / [`Session::handle_timeout`].

use std::fmt;
use std::time::Instant;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::EphemeralKey;
use crate::limits::HEADER_LEN;
use crate::proto::frame::{Accept, Frame};
use crate::proto::session::{Role, Session, SessionConfig, SessionKeys};
use crate::proto::trust::fingerprint;

/// Signature context string.
pub const HANDSHAKE_CONTEXT: &[u8] = b"sbrp-v1-handshake";
/// Transcript context string.
pub const TRANSCRIPT_CONTEXT: &[u8] = b"sbrp-v1-transcript";
/// HKDF info string.
pub const HKDF_INFO: &[u8] = b"sbrp-session-keys";
/// Longest daemon id accepted, in UTF-8 bytes (keyline bound; ids are short names).
pub const MAX_DAEMON_ID_LEN: usize = 1024;

/// `"sbrp-v1-handshake" ‖ daemon_id ‖ c_pub ‖ d_pub`.
pub fn signature_preimage(
    daemon_id: &str,
    client_eph: &[u8; 32],
    daemon_eph: &[u8; 32],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(HANDSHAKE_CONTEXT.len() + daemon_id.len() + 64);
    v.extend_from_slice(HANDSHAKE_CONTEXT);
    v.extend_from_slice(daemon_id.as_bytes());
    v.extend_from_slice(client_eph);
    v.extend_from_slice(daemon_eph);
    v
}

/// SHA-256 of the signature preimage: the 32-byte message Ed25519 signs.
pub fn signature_payload(
    daemon_id: &str,
    client_eph: &[u8; 32],
    daemon_eph: &[u8; 32],
) -> [u8; 32] {
    Sha256::digest(signature_preimage(daemon_id, client_eph, daemon_eph)).into()
}

/// `"sbrp-v1-transcript" ‖ daemon_id ‖ c_pub ‖ d_pub ‖ signature`.
pub fn transcript_preimage(
    daemon_id: &str,
    client_eph: &[u8; 32],
    daemon_eph: &[u8; 32],
    signature: &[u8; 64],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(TRANSCRIPT_CONTEXT.len() + daemon_id.len() + 128);
    v.extend_from_slice(TRANSCRIPT_CONTEXT);
    v.extend_from_slice(daemon_id.as_bytes());
    v.extend_from_slice(client_eph);
    v.extend_from_slice(daemon_eph);
    v.extend_from_slice(signature);
    v
}

/// SHA-256 of the transcript preimage: the HKDF salt.
pub fn transcript_hash(
    daemon_id: &str,
    client_eph: &[u8; 32],
    daemon_eph: &[u8; 32],
    signature: &[u8; 64],
) -> [u8; 32] {
    Sha256::digest(transcript_preimage(
        daemon_id, client_eph, daemon_eph, signature,
    ))
    .into()
}

/// HKDF-SHA256(ikm = shared, salt = transcript, info = "sbrp-session-keys", L = 64).
pub fn derive_session_keys(shared: &[u8; 32], transcript: &[u8; 32]) -> SessionKeys {
    let mut okm = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(transcript), shared)
        .expand(HKDF_INFO, okm.as_mut())
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    SessionKeys { okm }
}

/// X25519 with the all-zero check; the shared secret is zeroized on drop.
fn shared_secret(secret: &StaticSecret, their_public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their_public));
    if !shared.was_contributory() {
        return Err(Error::HandshakeFailed {
            reason: "all-zero X25519 shared secret (low-order ephemeral key)",
        });
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

fn check_daemon_id(daemon_id: &str) -> Result<()> {
    if daemon_id.is_empty() || daemon_id.len() > MAX_DAEMON_ID_LEN {
        return Err(Error::param(
            "daemon id",
            format!("must be 1..={MAX_DAEMON_ID_LEN} bytes of UTF-8"),
        ));
    }
    Ok(())
}

/// A daemon's Ed25519 identity and id: answers HandshakeInit frames.
pub struct DaemonIdentity {
    daemon_id: String,
    signing_key: SigningKey,
}

impl DaemonIdentity {
    /// An identity from a daemon id and a 32-byte Ed25519 seed.
    pub fn new(daemon_id: impl Into<String>, seed: &[u8; 32]) -> Result<Self> {
        Self::from_signing_key(daemon_id, SigningKey::from_bytes(seed))
    }

    /// An identity from a daemon id and a signing key.
    pub fn from_signing_key(daemon_id: impl Into<String>, signing_key: SigningKey) -> Result<Self> {
        let daemon_id = daemon_id.into();
        check_daemon_id(&daemon_id)?;
        Ok(Self {
            daemon_id,
            signing_key,
        })
    }

    /// The daemon id.
    pub fn daemon_id(&self) -> &str {
        &self.daemon_id
    }

    /// The Ed25519 identity public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing_key.verifying_key().to_bytes()
    }

    /// The identity key's fingerprint (`SHA256:` + uppercase hex pairs).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }

    /// Answers a HandshakeInit for `sid` with a fresh `ephemeral` key
    /// ([`EphemeralKey::generate`]): returns the Accept to send and the session, whose
    /// handshake deadline is `now` + the configured timeout. The ephemeral secret and the
    /// shared secret are zeroized before this returns.
    ///
    /// Errors: an all-zero shared secret is [`Error::HandshakeFailed`] (send nothing, drop
    /// the sid).
    pub fn accept(
        &self,
        sid: u64,
        client_ephemeral: &[u8; 32],
        ephemeral: EphemeralKey,
        now: Instant,
        config: &SessionConfig,
    ) -> Result<(Accept, Session)> {
        self.accept_with(sid, client_ephemeral, ephemeral.secret, now, config)
    }

    fn accept_with(
        &self,
        sid: u64,
        client_eph: &[u8; 32],
        secret: StaticSecret,
        now: Instant,
        config: &SessionConfig,
    ) -> Result<(Accept, Session)> {
        if sid == 0 {
            return Err(Error::param("sid", "must not be 0"));
        }
        let daemon_eph = PublicKey::from(&secret).to_bytes();
        let shared = shared_secret(&secret, client_eph)?;
        drop(secret);
        let payload = signature_payload(&self.daemon_id, client_eph, &daemon_eph);
        let signature = self.signing_key.sign(&payload).to_bytes();
        let transcript = transcript_hash(&self.daemon_id, client_eph, &daemon_eph, &signature);
        let keys = derive_session_keys(&shared, &transcript);
        drop(shared);
        let deadline = now.checked_add(config.handshake_timeout);
        let session = Session::new(sid, Role::Daemon, &keys, config, deadline)?;
        let accept = Accept {
            identity_key: self.public_key(),
            daemon_ephemeral: daemon_eph,
            signature,
        };
        Ok((accept, session))
    }

    /// Encodes the HandshakeAccept frame for `sid`.
    pub fn accept_frame(sid: u64, accept: &Accept) -> Result<Vec<u8>> {
        Frame::HandshakeAccept {
            sid,
            accept: accept.clone(),
        }
        .to_vec()
    }
}

impl fmt::Debug for DaemonIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonIdentity")
            .field("daemon_id", &self.daemon_id)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The client side of the handshake, from WebSocket open to the derived session.
pub struct ClientHandshake {
    daemon_id: String,
    sid: u64,
    secret: StaticSecret,
    public: [u8; 32],
    deadline: Option<Instant>,
    config: SessionConfig,
}

impl ClientHandshake {
    /// Starts a handshake with `daemon_id` on `sid` (from the session token) with a fresh
    /// `ephemeral` key ([`EphemeralKey::generate`]). `opened_at` is when the WebSocket
    /// opened: the deadline runs from there.
    pub fn new(
        daemon_id: &str,
        sid: u64,
        ephemeral: EphemeralKey,
        opened_at: Instant,
        config: SessionConfig,
    ) -> Result<Self> {
        Self::with(daemon_id, sid, ephemeral.secret, opened_at, config)
    }

    fn with(
        daemon_id: &str,
        sid: u64,
        secret: StaticSecret,
        opened_at: Instant,
        config: SessionConfig,
    ) -> Result<Self> {
        check_daemon_id(daemon_id)?;
        if sid == 0 {
            return Err(Error::param("sid", "must not be 0"));
        }
        config.window()?;
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Self {
            daemon_id: daemon_id.to_owned(),
            sid,
            secret,
            public,
            deadline: opened_at.checked_add(config.handshake_timeout),
            config,
        })
    }

    /// The daemon id the client asked for.
    pub fn daemon_id(&self) -> &str {
        &self.daemon_id
    }

    /// The session id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The client's ephemeral public key.
    pub fn ephemeral_public(&self) -> [u8; 32] {
        self.public
    }

    /// When the handshake times out (`None` only if the deadline overflowed `Instant`).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// [`Error::HandshakeTimeout`] once `now` reached the deadline.
    pub fn handle_timeout(&self, now: Instant) -> Result<()> {
        match self.deadline {
            Some(deadline) if now >= deadline => Err(Error::HandshakeTimeout),
            _ => Ok(()),
        }
    }

    /// The HandshakeInit frame to send (45 bytes).
    pub fn init_frame(&self) -> [u8; HEADER_LEN + 32] {
        let mut out = [0u8; HEADER_LEN + 32];
        Frame::HandshakeInit {
            sid: self.sid,
            client_ephemeral: self.public,
        }
        .encode(&mut out)
        .expect("a HandshakeInit with a non-zero sid always encodes");
        out
    }

    /// Feeds a frame received while waiting for the Accept.
    ///
    /// Ping/Pong and non-terminal Control codes → `Ok(None)` (skip); a terminal Control →
    /// [`Error::Relay`] with its code (e.g. `daemon_offline`); the Accept for this sid →
    /// `Ok(Some(accept))`; anything else → [`Error::HandshakeFailed`].
    pub fn handle_frame(&self, frame: &Frame<'_>) -> Result<Option<Accept>> {
        match frame {
            Frame::Ping { .. } | Frame::Pong { .. } => Ok(None),
            Frame::Control { code, sid, .. } => {
                if code.is_terminal() {
                    Err(Error::Relay {
                        code: *code,
                        sid: *sid,
                    })
                } else {
                    Ok(None)
                }
            }
            Frame::HandshakeAccept { sid, accept } if *sid == self.sid => Ok(Some(accept.clone())),
            _ => Err(Error::HandshakeFailed {
                reason: "unexpected frame while waiting for HandshakeAccept",
            }),
        }
    }

    /// Completes the handshake: verifies the Accept's signature with `trusted_key` (the key
    /// the trust policy selected: the pinned key, or the advertised one on first contact)
    /// using `verify_strict`, rejects an all-zero shared secret, derives the keys and zeroizes
    /// the ephemeral secret. The session's handshake deadline stays armed for the inner SBP
    /// handshake. Store a new pin only after this returns `Ok`.
    pub fn finish(self, accept: &Accept, trusted_key: &[u8; 32], now: Instant) -> Result<Session> {
        self.handle_timeout(now)?;
        let failed = |reason| Error::HandshakeFailed { reason };
        let key = VerifyingKey::from_bytes(trusted_key)
            .map_err(|_| failed("identity key is not a valid Ed25519 public key"))?;
        let payload = signature_payload(&self.daemon_id, &self.public, &accept.daemon_ephemeral);
        key.verify_strict(&payload, &Signature::from_bytes(&accept.signature))
            .map_err(|_| failed("HandshakeAccept signature does not verify"))?;
        let shared = shared_secret(&self.secret, &accept.daemon_ephemeral)?;
        let transcript = transcript_hash(
            &self.daemon_id,
            &self.public,
            &accept.daemon_ephemeral,
            &accept.signature,
        );
        let keys = derive_session_keys(&shared, &transcript);
        Session::new(self.sid, Role::Client, &keys, &self.config, self.deadline)
    }
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("daemon_id", &self.daemon_id)
            .field("sid", &self.sid)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
