//! The coordinator ↔ node protocol (spec §8.3): versioned, length-delimited binary frames.
//!
//! ```text
//! frame  = length:u32 ‖ version:u8 ‖ type:u8 ‖ req_id:u64 ‖ body
//! length = 10 + body length, 10 ≤ length ≤ limits::MAX_NODE_FRAME
//! ```
//!
//! All integers are big-endian. Fixed-size fields are raw; FROST objects are their crate
//! encoding behind a `u16` length (at most [`MAX_ENCODED_LEN`]); the unsigned event is behind a
//! `u32` length (at most [`MAX_UNSIGNED_EVENT`]); other variable fields behind a `u16` length
//! with their own limit; lists are `u16 count ‖ items` with at most [`MAX_SHARES`] items,
//! sorted ascending by identifier without duplicates; booleans and options are exactly 0 or 1.
//!
//! [`decode_message`] is strict: the length field must equal the input, the version must be
//! [`VERSION`], the type known, every length within its limit **before** anything is
//! allocated, every enum in range, every FROST object canonical, and no byte may be left over.
//! It never panics. Failures: [`Error::Malformed`] / [`Error::TooLarge`] (answer
//! `Error{malformed}` and close), [`Error::UnsupportedVersion`] (close) and
//! [`Error::UnsupportedType`] (answer `Error{unsupported_type}` and keep the connection).
//!
//! Round-2 DKG/refresh payloads ([`SealedItem`]) and dealt import shares
//! ([`Body::ImportShare`]) are HPKE-sealed end to end (spec §8.7 step 4, §8.8; see
//! [`crate::descriptor`]): each payload is `enc[32] ‖ ciphertext`, and travels inside the SHS
//! box-stream on top. [`SealedItem`] payloads are zeroized on drop here all the same.

use std::fmt;

use zeroize::Zeroizing;

use crate::dkg::Round1Package;
use crate::ecdh::{EcdhPartial, SessionId};
use crate::limits::{
    MAX_DESCRIPTOR, MAX_ENCODED_LEN, MAX_ERROR_TEXT, MAX_MESSAGE_LEN, MAX_NODE_FRAME, MAX_SHARES,
    MAX_UNSIGNED_EVENT,
};
use crate::sign::{SignatureShare, SigningCommitments, SigningPackage};
use crate::{Error, ParticipantId, PublicKeyPackage, Result};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// Bytes before the body: length (4), version (1), type (1), req_id (8).
pub const HEADER_LEN: usize = 14;

/// The protocol name carried by `Hello`.
pub const PROTOCOL: &[u8; 14] = b"keyline-signer";

/// A key identifier: 16 bytes (spec §8.3).
pub type KeyId = [u8; 16];

/// A ceremony identifier: 16 random bytes.
pub type CeremonyId = [u8; 16];

const WHAT: &str = "node frame";

/// Which end of a connection sent a `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The coordinator (bunker).
    Coordinator,
    /// A share-holding node.
    Node,
}

/// The code of a wire `Error`. Unknown codes from newer peers are kept as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// The frame did not decode; the connection is closed.
    pub const MALFORMED: Self = Self(1);
    /// No common protocol version; the connection is closed.
    pub const UNSUPPORTED_VERSION: Self = Self(2);
    /// Unknown message type; the connection stays up.
    pub const UNSUPPORTED_TYPE: Self = Self(3);
    /// The node's policy refused the request.
    pub const POLICY: Self = Self(4);
    /// A different signing package for a session whose nonces were used (coordinator
    /// misbehaviour).
    pub const NONCE_USED: Self = Self(5);
    /// No such live session on the node.
    pub const UNKNOWN_SESSION: Self = Self(6);
    /// The node does not hold this key.
    pub const UNKNOWN_KEY: Self = Self(7);
    /// The session is past its deadline.
    pub const EXPIRED: Self = Self(8);
    /// The node is at a limit; try another node.
    pub const BUSY: Self = Self(9);
    /// The request was refused (package or parameters do not fit).
    pub const REJECTED: Self = Self(10);
    /// A bug on the sender's side.
    pub const INTERNAL: Self = Self(11);
    /// Never sent: the coordinator's transport reports a node it cannot reach (link down,
    /// connection lost mid-request) to its sessions with this code, so they fail over at once
    /// instead of waiting for the round deadline.
    pub const UNREACHABLE: Self = Self(12);

    /// The registered name of the code (`malformed`, `policy`, …), `None` for unknown codes.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "malformed",
            2 => "unsupported_version",
            3 => "unsupported_type",
            4 => "policy",
            5 => "nonce_used",
            6 => "unknown_session",
            7 => "unknown_key",
            8 => "expired",
            9 => "busy",
            10 => "rejected",
            11 => "internal",
            12 => "unreachable",
            _ => return None,
        })
    }
}

/// What a request asks the node to do (spec §8.3 request context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// NIP-46 `sign_event`.
    SignEvent,
    /// NIP-46 `nip44_encrypt`.
    Nip44Encrypt,
    /// NIP-46 `nip44_decrypt`.
    Nip44Decrypt,
    /// NIP-46 `nip04_encrypt`.
    Nip04Encrypt,
    /// NIP-46 `nip04_decrypt`.
    Nip04Decrypt,
    /// The CLI's raw 32-byte signing (a separate permission, spec §8.4).
    RawSign,
}

impl Method {
    fn to_u8(self) -> u8 {
        match self {
            Self::SignEvent => 1,
            Self::Nip44Encrypt => 2,
            Self::Nip44Decrypt => 3,
            Self::Nip04Encrypt => 4,
            Self::Nip04Decrypt => 5,
            Self::RawSign => 6,
        }
    }

    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            1 => Self::SignEvent,
            2 => Self::Nip44Encrypt,
            3 => Self::Nip44Decrypt,
            4 => Self::Nip04Encrypt,
            5 => Self::Nip04Decrypt,
            6 => Self::RawSign,
            _ => return Err(malformed()),
        })
    }
}

/// What a node needs to re-check policy on its own (spec §8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// The requested operation.
    pub method: Method,
    /// The NIP-46 client's public key (x-only).
    pub client_pubkey: [u8; 32],
    /// The coordinator's connection id for that client.
    pub connection_id: [u8; 16],
    /// The unsigned event exactly as the client sent it (`sign_event`), else empty; at most
    /// [`MAX_UNSIGNED_EVENT`] bytes of UTF-8.
    pub unsigned_event: String,
    /// The peer key (ECDH methods).
    pub peer: Option<[u8; 32]>,
    /// The policy version the coordinator applied.
    pub policy_version: u64,
    /// The coordinator's timestamp (ms since the Unix epoch).
    pub timestamp_ms: u64,
}

impl RequestContext {
    /// The context of the CLI's raw 32-byte signing (`raw_sign`, spec §8.4 item 4): no
    /// client, no event, no peer.
    pub fn raw_sign(timestamp_ms: u64) -> Self {
        Self {
            method: Method::RawSign,
            client_pubkey: [0; 32],
            connection_id: [0; 16],
            unsigned_event: String::new(),
            peer: None,
            policy_version: 0,
            timestamp_ms,
        }
    }
}

/// The kind of a ceremony.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyKind {
    /// A new key by DKG.
    Dkg,
    /// New shares for the same key.
    Refresh,
    /// Rebuild a lost share.
    Repair,
    /// Import of an existing key.
    Import,
}

impl CeremonyKind {
    fn to_u8(self) -> u8 {
        match self {
            Self::Dkg => 1,
            Self::Refresh => 2,
            Self::Repair => 3,
            Self::Import => 4,
        }
    }

    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            1 => Self::Dkg,
            2 => Self::Refresh,
            3 => Self::Repair,
            4 => Self::Import,
            _ => return Err(malformed()),
        })
    }
}

/// One participant of a ceremony: identifier ↔ node identity ↔ HPKE key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Participant {
    /// FROST identifier.
    pub id: ParticipantId,
    /// The node's SHS identity (Ed25519 public key).
    pub node_id: [u8; 32],
    /// The node's HPKE public key (X25519).
    pub hpke_pk: [u8; 32],
}

/// A signed round-1 package, as relayed in `Round1Set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRound1 {
    /// The author.
    pub id: ParticipantId,
    /// Its round-1 package.
    pub package: Round1Package,
    /// The author's Ed25519 signature (spec §8.7 step 2).
    pub signature: [u8; 64],
}

/// A signed echo of the round-1 transcript hash, as relayed in `EchoSet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedEcho {
    /// The author.
    pub id: ParticipantId,
    /// Its transcript hash H1.
    pub hash: [u8; 32],
    /// Its Ed25519 signature over H1.
    pub signature: [u8; 64],
}

/// A secret payload between two nodes (a round-2 package HPKE-sealed to its recipient,
/// `enc[32] ‖ ciphertext`): `peer` is the recipient in `Sealed` and the sender in
/// `SealedDeliver`. Zeroized on drop; `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedItem {
    /// The other node.
    pub peer: ParticipantId,
    /// The payload (at most [`MAX_ENCODED_LEN`] bytes).
    pub payload: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SealedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedItem")
            .field("peer", &self.peer)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// The body of a frame, by type byte.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// 0x01: protocol name, supported versions, role, node descriptor (empty for the
    /// coordinator).
    Hello {
        /// Lowest version spoken.
        min_version: u8,
        /// Highest version spoken.
        max_version: u8,
        /// Sender's role.
        role: Role,
        /// The signed node descriptor (opaque here), at most [`MAX_DESCRIPTOR`] bytes.
        descriptor: Vec<u8>,
    },
    /// 0x02: chosen version and sender clock.
    HelloAck {
        /// The highest common version.
        version: u8,
        /// Sender clock in ms (for skew warnings).
        clock_ms: u64,
    },
    /// 0x03: liveness probe.
    Ping {
        /// Echoed by `Pong`.
        nonce: u64,
    },
    /// 0x04: liveness answer with a load hint.
    Pong {
        /// The `Ping` nonce.
        nonce: u64,
        /// Live sessions on the node.
        active_sessions: u32,
    },
    /// 0x05: a refusal or failure.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// The participant at fault, if any.
        culprit: Option<ParticipantId>,
        /// A short hint, at most [`MAX_ERROR_TEXT`] bytes, never secrets.
        text: String,
    },
    /// 0x10: signing round 1 request.
    SignCommitReq {
        /// Fresh per attempt.
        session_id: SessionId,
        /// Which key.
        key_id: KeyId,
        /// Time the node may keep the nonces, in ms (capped by the node).
        deadline_ms: u32,
        /// The message the node must recompute and will be asked to sign (the event id), at
        /// most [`MAX_MESSAGE_LEN`] bytes.
        message: Vec<u8>,
        /// The nodes asked in this attempt, ascending.
        participants: Vec<ParticipantId>,
        /// What the node re-checks against its policy.
        context: RequestContext,
    },
    /// 0x11: a node's commitments.
    SignCommitResp {
        /// The session.
        session_id: SessionId,
        /// The sender.
        id: ParticipantId,
        /// Its commitments.
        commitments: SigningCommitments,
    },
    /// 0x12: signing round 2 request.
    SignShareReq {
        /// The session.
        session_id: SessionId,
        /// The package (message and the chosen signers' commitments).
        package: SigningPackage,
    },
    /// 0x13: a node's signature share.
    SignShareResp {
        /// The session.
        session_id: SessionId,
        /// The sender.
        id: ParticipantId,
        /// Its share.
        share: SignatureShare,
    },
    /// 0x14: wipe the nonces of a session (idempotent).
    SignAbort {
        /// The session.
        session_id: SessionId,
    },
    /// 0x20: threshold ECDH request.
    EcdhReq {
        /// The session (bound into the proofs).
        session_id: SessionId,
        /// Which key.
        key_id: KeyId,
        /// The peer's x-only public key.
        peer: [u8; 32],
        /// What the node re-checks against its policy.
        context: RequestContext,
    },
    /// 0x21: a node's ECDH partial with its proof (the partial carries the identifier).
    EcdhResp {
        /// The session.
        session_id: SessionId,
        /// E_i, c, z.
        partial: EcdhPartial,
    },
    /// 0x30: start a ceremony.
    CeremonyStart {
        /// Fresh per ceremony.
        ceremony_id: CeremonyId,
        /// What kind.
        kind: CeremonyKind,
        /// The key (new or existing).
        key_id: KeyId,
        /// Threshold t (n is the number of participants).
        threshold: u16,
        /// All participants, ascending by identifier.
        participants: Vec<Participant>,
        /// Per-round deadline in ms.
        round_deadline_ms: u32,
        /// Whole-ceremony deadline in ms.
        total_deadline_ms: u32,
    },
    /// 0x31: a node's signed round-1 package.
    Round1 {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The round-1 package and author signature.
        package: SignedRound1,
    },
    /// 0x32: all round-1 packages, relayed to every node.
    Round1Set {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// Ascending by identifier.
        packages: Vec<SignedRound1>,
    },
    /// 0x33: a node's signed transcript hash.
    Echo {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The echo.
        echo: SignedEcho,
    },
    /// 0x34: all echoes, relayed to every node.
    EchoSet {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// Ascending by identifier.
        echoes: Vec<SignedEcho>,
    },
    /// 0x35: a node's secret packages for the others (round 2).
    Sealed {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The ceremony round.
        round: u8,
        /// Ascending by recipient.
        items: Vec<SealedItem>,
    },
    /// 0x36: the secret packages addressed to one node.
    SealedDeliver {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The ceremony round.
        round: u8,
        /// Ascending by sender.
        items: Vec<SealedItem>,
    },
    /// 0x37: key confirmation (`Result`): npub, public key package, its SHA-256, signature.
    KeyConfirm {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The npub the node computed.
        npub: [u8; 32],
        /// The node's public key package.
        public: PublicKeyPackage,
        /// SHA-256 of its encoding.
        hash: [u8; 32],
        /// The node's Ed25519 signature.
        signature: [u8; 64],
    },
    /// 0x38: all results agree; activate the share.
    Commit {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// SHA-256 of the agreed public key package.
        hash: [u8; 32],
    },
    /// 0x39: the share is active.
    Committed {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The share version now active.
        share_version: u32,
    },
    /// 0x3A: abort; nodes wipe all ceremony secrets.
    CeremonyAbort {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// Why.
        reason: ErrorCode,
    },
    /// 0x40: a dealt share of an imported key (spec §8.8), HPKE-sealed to its node.
    ImportShare {
        /// The ceremony.
        ceremony_id: CeremonyId,
        /// The imported key.
        key_id: KeyId,
        /// The recipient's identifier.
        id: ParticipantId,
        /// The sealed `DealtShare` (`enc[32] ‖ ciphertext`, at most [`MAX_ENCODED_LEN`]
        /// bytes; opaque here).
        sealed: Vec<u8>,
        /// The key's public key package.
        public: PublicKeyPackage,
    },
}

/// One frame: the request id and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Chosen by the requester, echoed by the reply.
    pub req_id: u64,
    /// The content.
    pub body: Body,
}

impl Message {
    /// A frame.
    pub fn new(req_id: u64, body: Body) -> Self {
        Self { req_id, body }
    }

    /// Encodes the whole frame (length field included). Fails only for values that cannot be
    /// encoded within the limits (too many items, oversized fields).
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        encode_message(self)
    }
}

impl Body {
    /// The type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Self::Hello { .. } => 0x01,
            Self::HelloAck { .. } => 0x02,
            Self::Ping { .. } => 0x03,
            Self::Pong { .. } => 0x04,
            Self::Error { .. } => 0x05,
            Self::SignCommitReq { .. } => 0x10,
            Self::SignCommitResp { .. } => 0x11,
            Self::SignShareReq { .. } => 0x12,
            Self::SignShareResp { .. } => 0x13,
            Self::SignAbort { .. } => 0x14,
            Self::EcdhReq { .. } => 0x20,
            Self::EcdhResp { .. } => 0x21,
            Self::CeremonyStart { .. } => 0x30,
            Self::Round1 { .. } => 0x31,
            Self::Round1Set { .. } => 0x32,
            Self::Echo { .. } => 0x33,
            Self::EchoSet { .. } => 0x34,
            Self::Sealed { .. } => 0x35,
            Self::SealedDeliver { .. } => 0x36,
            Self::KeyConfirm { .. } => 0x37,
            Self::Commit { .. } => 0x38,
            Self::Committed { .. } => 0x39,
            Self::CeremonyAbort { .. } => 0x3A,
            Self::ImportShare { .. } => 0x40,
        }
    }

    /// The signing or ECDH session a body belongs to, if it is one of those messages.
    pub fn session_id(&self) -> Option<&SessionId> {
        match self {
            Self::SignCommitReq { session_id, .. }
            | Self::SignCommitResp { session_id, .. }
            | Self::SignShareReq { session_id, .. }
            | Self::SignShareResp { session_id, .. }
            | Self::SignAbort { session_id }
            | Self::EcdhReq { session_id, .. }
            | Self::EcdhResp { session_id, .. } => Some(session_id),
            _ => None,
        }
    }

    /// The ceremony a body belongs to, if it is a ceremony message (`0x30`–`0x3A`, `0x40`):
    /// how the transport routes it to its ceremony machine.
    pub fn ceremony_id(&self) -> Option<&CeremonyId> {
        match self {
            Self::CeremonyStart { ceremony_id, .. }
            | Self::Round1 { ceremony_id, .. }
            | Self::Round1Set { ceremony_id, .. }
            | Self::Echo { ceremony_id, .. }
            | Self::EchoSet { ceremony_id, .. }
            | Self::Sealed { ceremony_id, .. }
            | Self::SealedDeliver { ceremony_id, .. }
            | Self::KeyConfirm { ceremony_id, .. }
            | Self::Commit { ceremony_id, .. }
            | Self::Committed { ceremony_id, .. }
            | Self::CeremonyAbort { ceremony_id, .. }
            | Self::ImportShare { ceremony_id, .. } => Some(ceremony_id),
            _ => None,
        }
    }

    /// A wire `Error` body; `text` is cut to [`MAX_ERROR_TEXT`] bytes at a character boundary.
    pub fn error(code: ErrorCode, culprit: Option<ParticipantId>, text: &str) -> Self {
        let mut end = text.len().min(MAX_ERROR_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self::Error {
            code,
            culprit,
            text: text[..end].to_string(),
        }
    }
}

/// Version negotiation on `Hello` (spec §8.3): the highest version both sides speak, or
/// `None` (send `Error{unsupported_version}` and close).
pub fn negotiate_version(peer_min: u8, peer_max: u8) -> Option<u8> {
    (peer_min..=peer_max)
        .rev()
        .find(|v| (VERSION..=VERSION).contains(v))
}

/// Encodes a whole frame (length field included).
pub fn encode_message(message: &Message) -> Result<Zeroizing<Vec<u8>>> {
    let mut w = Writer(Zeroizing::new(Vec::with_capacity(64)));
    w.bytes(&[0, 0, 0, 0, VERSION, message.body.type_byte()]);
    w.u64(message.req_id);
    encode_body(&mut w, &message.body)?;
    let mut out = w.0;
    let len = out.len() - 4;
    if len > MAX_NODE_FRAME {
        return Err(Error::TooLarge {
            what: WHAT,
            len,
            max: MAX_NODE_FRAME,
        });
    }
    let len = u32::try_from(len).map_err(|_| malformed())?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Decodes one whole frame (length field included), strictly; never panics.
pub fn decode_message(bytes: &[u8]) -> Result<Message> {
    let mut r = Reader { bytes };
    let len = r.u32()? as usize;
    if len > MAX_NODE_FRAME {
        return Err(Error::TooLarge {
            what: WHAT,
            len,
            max: MAX_NODE_FRAME,
        });
    }
    if len < HEADER_LEN - 4 || len != r.bytes.len() {
        return Err(malformed());
    }
    let version = r.u8()?;
    let ty = r.u8()?;
    let req_id = r.u64()?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion { version });
    }
    let body = decode_body(&mut r, ty, req_id)?;
    if !r.bytes.is_empty() {
        return Err(malformed());
    }
    Ok(Message { req_id, body })
}

/// Reads the length field of a frame at the start of `buf` and returns the whole frame's
/// size (length field included) once known, refusing oversized frames before buffering them.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_NODE_FRAME {
        return Err(Error::TooLarge {
            what: WHAT,
            len,
            max: MAX_NODE_FRAME,
        });
    }
    if len < HEADER_LEN - 4 {
        return Err(malformed());
    }
    Ok(Some(len + 4))
}

fn malformed() -> Error {
    Error::Malformed { what: WHAT }
}

// ----- encoding ----------------------------------------------------------------------------

struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    fn id(&mut self, id: ParticipantId) {
        self.u16(id.get());
    }
    fn opt_id(&mut self, id: Option<ParticipantId>) {
        self.u16(id.map_or(0, ParticipantId::get));
    }
    /// `u16 len ‖ bytes`, refusing more than `max`.
    fn field16(&mut self, b: &[u8], max: usize) -> Result<()> {
        if b.len() > max {
            return Err(Error::TooLarge {
                what: WHAT,
                len: b.len(),
                max,
            });
        }
        let len = u16::try_from(b.len()).map_err(|_| malformed())?;
        self.u16(len);
        self.bytes(b);
        Ok(())
    }
    fn count(&mut self, n: usize) -> Result<()> {
        if n > usize::from(MAX_SHARES) {
            return Err(Error::TooLarge {
                what: WHAT,
                len: n,
                max: usize::from(MAX_SHARES),
            });
        }
        self.u16(u16::try_from(n).map_err(|_| malformed())?);
        Ok(())
    }
    fn context(&mut self, c: &RequestContext) -> Result<()> {
        self.u8(c.method.to_u8());
        self.bytes(&c.client_pubkey);
        self.bytes(&c.connection_id);
        let event = c.unsigned_event.as_bytes();
        if event.len() > MAX_UNSIGNED_EVENT {
            return Err(Error::TooLarge {
                what: WHAT,
                len: event.len(),
                max: MAX_UNSIGNED_EVENT,
            });
        }
        self.u32(u32::try_from(event.len()).map_err(|_| malformed())?);
        self.bytes(event);
        match &c.peer {
            None => self.u8(0),
            Some(p) => {
                self.u8(1);
                self.bytes(p);
            }
        }
        self.u64(c.policy_version);
        self.u64(c.timestamp_ms);
        Ok(())
    }
}

/// Lists must be ascending without duplicates; the encoder refuses anything else so a decoder
/// on the other side never has to.
fn check_sorted(ids: impl Iterator<Item = ParticipantId>) -> Result<()> {
    let mut last: Option<ParticipantId> = None;
    for id in ids {
        if last.is_some_and(|l| l >= id) {
            return Err(malformed());
        }
        last = Some(id);
    }
    Ok(())
}

fn encode_body(w: &mut Writer, body: &Body) -> Result<()> {
    match body {
        Body::Hello {
            min_version,
            max_version,
            role,
            descriptor,
        } => {
            w.bytes(PROTOCOL);
            w.u8(*min_version);
            w.u8(*max_version);
            w.u8(match role {
                Role::Coordinator => 0,
                Role::Node => 1,
            });
            w.field16(descriptor, MAX_DESCRIPTOR)?;
        }
        Body::HelloAck { version, clock_ms } => {
            w.u8(*version);
            w.u64(*clock_ms);
        }
        Body::Ping { nonce } => w.u64(*nonce),
        Body::Pong {
            nonce,
            active_sessions,
        } => {
            w.u64(*nonce);
            w.u32(*active_sessions);
        }
        Body::Error {
            code,
            culprit,
            text,
        } => {
            w.u16(code.0);
            w.opt_id(*culprit);
            w.field16(text.as_bytes(), MAX_ERROR_TEXT)?;
        }
        Body::SignCommitReq {
            session_id,
            key_id,
            deadline_ms,
            message,
            participants,
            context,
        } => {
            w.bytes(session_id);
            w.bytes(key_id);
            w.u32(*deadline_ms);
            w.field16(message, MAX_MESSAGE_LEN)?;
            check_sorted(participants.iter().copied())?;
            w.count(participants.len())?;
            for id in participants {
                w.id(*id);
            }
            w.context(context)?;
        }
        Body::SignCommitResp {
            session_id,
            id,
            commitments,
        } => {
            w.bytes(session_id);
            w.id(*id);
            w.field16(&commitments.serialize()?, MAX_ENCODED_LEN)?;
        }
        Body::SignShareReq {
            session_id,
            package,
        } => {
            w.bytes(session_id);
            w.field16(&package.serialize()?, MAX_ENCODED_LEN)?;
        }
        Body::SignShareResp {
            session_id,
            id,
            share,
        } => {
            w.bytes(session_id);
            w.id(*id);
            w.bytes(&share.to_bytes());
        }
        Body::SignAbort { session_id } => w.bytes(session_id),
        Body::EcdhReq {
            session_id,
            key_id,
            peer,
            context,
        } => {
            w.bytes(session_id);
            w.bytes(key_id);
            w.bytes(peer);
            w.context(context)?;
        }
        Body::EcdhResp {
            session_id,
            partial,
        } => {
            w.bytes(session_id);
            w.bytes(&partial.to_bytes());
        }
        Body::CeremonyStart {
            ceremony_id,
            kind,
            key_id,
            threshold,
            participants,
            round_deadline_ms,
            total_deadline_ms,
        } => {
            w.bytes(ceremony_id);
            w.u8(kind.to_u8());
            w.bytes(key_id);
            w.u16(*threshold);
            check_sorted(participants.iter().map(|p| p.id))?;
            w.count(participants.len())?;
            for p in participants {
                w.id(p.id);
                w.bytes(&p.node_id);
                w.bytes(&p.hpke_pk);
            }
            w.u32(*round_deadline_ms);
            w.u32(*total_deadline_ms);
        }
        Body::Round1 {
            ceremony_id,
            package,
        } => {
            w.bytes(ceremony_id);
            signed_round1(w, package)?;
        }
        Body::Round1Set {
            ceremony_id,
            packages,
        } => {
            w.bytes(ceremony_id);
            check_sorted(packages.iter().map(|p| p.id))?;
            w.count(packages.len())?;
            for p in packages {
                signed_round1(w, p)?;
            }
        }
        Body::Echo { ceremony_id, echo } => {
            w.bytes(ceremony_id);
            signed_echo(w, echo);
        }
        Body::EchoSet {
            ceremony_id,
            echoes,
        } => {
            w.bytes(ceremony_id);
            check_sorted(echoes.iter().map(|e| e.id))?;
            w.count(echoes.len())?;
            for e in echoes {
                signed_echo(w, e);
            }
        }
        Body::Sealed {
            ceremony_id,
            round,
            items,
        }
        | Body::SealedDeliver {
            ceremony_id,
            round,
            items,
        } => {
            w.bytes(ceremony_id);
            w.u8(*round);
            check_sorted(items.iter().map(|i| i.peer))?;
            w.count(items.len())?;
            for item in items {
                w.id(item.peer);
                w.field16(&item.payload, MAX_ENCODED_LEN)?;
            }
        }
        Body::KeyConfirm {
            ceremony_id,
            npub,
            public,
            hash,
            signature,
        } => {
            w.bytes(ceremony_id);
            w.bytes(npub);
            w.field16(&public.serialize()?, MAX_ENCODED_LEN)?;
            w.bytes(hash);
            w.bytes(signature);
        }
        Body::Commit { ceremony_id, hash } => {
            w.bytes(ceremony_id);
            w.bytes(hash);
        }
        Body::Committed {
            ceremony_id,
            share_version,
        } => {
            w.bytes(ceremony_id);
            w.u32(*share_version);
        }
        Body::CeremonyAbort {
            ceremony_id,
            reason,
        } => {
            w.bytes(ceremony_id);
            w.u16(reason.0);
        }
        Body::ImportShare {
            ceremony_id,
            key_id,
            id,
            sealed,
            public,
        } => {
            w.bytes(ceremony_id);
            w.bytes(key_id);
            w.id(*id);
            w.field16(sealed, MAX_ENCODED_LEN)?;
            w.field16(&public.serialize()?, MAX_ENCODED_LEN)?;
        }
    }
    Ok(())
}

fn signed_round1(w: &mut Writer, p: &SignedRound1) -> Result<()> {
    w.id(p.id);
    w.field16(&p.package.serialize()?, MAX_ENCODED_LEN)?;
    w.bytes(&p.signature);
    Ok(())
}

fn signed_echo(w: &mut Writer, e: &SignedEcho) {
    w.id(e.id);
    w.bytes(&e.hash);
    w.bytes(&e.signature);
}

// ----- decoding ----------------------------------------------------------------------------

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(malformed());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn id(&mut self) -> Result<ParticipantId> {
        ParticipantId::new(self.u16()?).map_err(|_| malformed())
    }
    fn opt_id(&mut self) -> Result<Option<ParticipantId>> {
        match self.u16()? {
            0 => Ok(None),
            v => ParticipantId::new(v).map(Some).map_err(|_| malformed()),
        }
    }
    /// `u16 len ‖ bytes`; the length is checked against `max` before anything else.
    fn field16(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(malformed());
        }
        self.take(len)
    }
    fn utf8(bytes: &[u8]) -> Result<String> {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| malformed())
    }
    /// A list count, at most [`MAX_SHARES`] and at most what the remaining bytes can hold.
    fn count(&mut self, min_item: usize) -> Result<usize> {
        let n = usize::from(self.u16()?);
        if n > usize::from(MAX_SHARES) || n.saturating_mul(min_item) > self.bytes.len() {
            return Err(malformed());
        }
        Ok(n)
    }
    fn context(&mut self) -> Result<RequestContext> {
        let method = Method::from_u8(self.u8()?)?;
        let client_pubkey = self.array()?;
        let connection_id = self.array()?;
        let len = self.u32()? as usize;
        if len > MAX_UNSIGNED_EVENT {
            return Err(malformed());
        }
        let unsigned_event = Self::utf8(self.take(len)?)?;
        let peer = match self.u8()? {
            0 => None,
            1 => Some(self.array()?),
            _ => return Err(malformed()),
        };
        Ok(RequestContext {
            method,
            client_pubkey,
            connection_id,
            unsigned_event,
            peer,
            policy_version: self.u64()?,
            timestamp_ms: self.u64()?,
        })
    }
    fn signed_round1(&mut self) -> Result<SignedRound1> {
        Ok(SignedRound1 {
            id: self.id()?,
            package: Round1Package::deserialize(self.field16(MAX_ENCODED_LEN)?)
                .map_err(|_| malformed())?,
            signature: self.array()?,
        })
    }
    fn signed_echo(&mut self) -> Result<SignedEcho> {
        Ok(SignedEcho {
            id: self.id()?,
            hash: self.array()?,
            signature: self.array()?,
        })
    }
}

fn sorted<T>(items: Vec<T>, id: impl Fn(&T) -> ParticipantId) -> Result<Vec<T>> {
    check_sorted(items.iter().map(id))?;
    Ok(items)
}

fn decode_body(r: &mut Reader<'_>, ty: u8, req_id: u64) -> Result<Body> {
    Ok(match ty {
        0x01 => {
            if r.take(PROTOCOL.len())? != PROTOCOL {
                return Err(malformed());
            }
            let min_version = r.u8()?;
            let max_version = r.u8()?;
            if min_version > max_version {
                return Err(malformed());
            }
            let role = match r.u8()? {
                0 => Role::Coordinator,
                1 => Role::Node,
                _ => return Err(malformed()),
            };
            Body::Hello {
                min_version,
                max_version,
                role,
                descriptor: r.field16(MAX_DESCRIPTOR)?.to_vec(),
            }
        }
        0x02 => Body::HelloAck {
            version: r.u8()?,
            clock_ms: r.u64()?,
        },
        0x03 => Body::Ping { nonce: r.u64()? },
        0x04 => Body::Pong {
            nonce: r.u64()?,
            active_sessions: r.u32()?,
        },
        0x05 => Body::Error {
            code: ErrorCode(r.u16()?),
            culprit: r.opt_id()?,
            text: Reader::utf8(r.field16(MAX_ERROR_TEXT)?)?,
        },
        0x10 => {
            let session_id = r.array()?;
            let key_id = r.array()?;
            let deadline_ms = r.u32()?;
            let message = r.field16(MAX_MESSAGE_LEN)?.to_vec();
            let n = r.count(2)?;
            let participants = (0..n).map(|_| r.id()).collect::<Result<Vec<_>>>()?;
            Body::SignCommitReq {
                session_id,
                key_id,
                deadline_ms,
                message,
                participants: sorted(participants, |id| *id)?,
                context: r.context()?,
            }
        }
        0x11 => Body::SignCommitResp {
            session_id: r.array()?,
            id: r.id()?,
            commitments: SigningCommitments::deserialize(r.field16(MAX_ENCODED_LEN)?)
                .map_err(|_| malformed())?,
        },
        0x12 => Body::SignShareReq {
            session_id: r.array()?,
            package: SigningPackage::deserialize(r.field16(MAX_ENCODED_LEN)?)
                .map_err(|_| malformed())?,
        },
        0x13 => Body::SignShareResp {
            session_id: r.array()?,
            id: r.id()?,
            share: SignatureShare::from_bytes(&r.array()?).map_err(|_| malformed())?,
        },
        0x14 => Body::SignAbort {
            session_id: r.array()?,
        },
        0x20 => Body::EcdhReq {
            session_id: r.array()?,
            key_id: r.array()?,
            peer: r.array()?,
            context: r.context()?,
        },
        0x21 => Body::EcdhResp {
            session_id: r.array()?,
            partial: EcdhPartial::from_bytes(r.take(EcdhPartial::LEN)?).map_err(|_| malformed())?,
        },
        0x30 => {
            let ceremony_id = r.array()?;
            let kind = CeremonyKind::from_u8(r.u8()?)?;
            let key_id = r.array()?;
            let threshold = r.u16()?;
            let n = r.count(66)?;
            let participants = (0..n)
                .map(|_| {
                    Ok(Participant {
                        id: r.id()?,
                        node_id: r.array()?,
                        hpke_pk: r.array()?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Body::CeremonyStart {
                ceremony_id,
                kind,
                key_id,
                threshold,
                participants: sorted(participants, |p| p.id)?,
                round_deadline_ms: r.u32()?,
                total_deadline_ms: r.u32()?,
            }
        }
        0x31 => Body::Round1 {
            ceremony_id: r.array()?,
            package: r.signed_round1()?,
        },
        0x32 => {
            let ceremony_id = r.array()?;
            let n = r.count(68)?;
            let packages = (0..n)
                .map(|_| r.signed_round1())
                .collect::<Result<Vec<_>>>()?;
            Body::Round1Set {
                ceremony_id,
                packages: sorted(packages, |p| p.id)?,
            }
        }
        0x33 => Body::Echo {
            ceremony_id: r.array()?,
            echo: r.signed_echo()?,
        },
        0x34 => {
            let ceremony_id = r.array()?;
            let n = r.count(98)?;
            let echoes = (0..n)
                .map(|_| r.signed_echo())
                .collect::<Result<Vec<_>>>()?;
            Body::EchoSet {
                ceremony_id,
                echoes: sorted(echoes, |e| e.id)?,
            }
        }
        0x35 | 0x36 => {
            let ceremony_id = r.array()?;
            let round = r.u8()?;
            let n = r.count(4)?;
            let items = (0..n)
                .map(|_| {
                    Ok(SealedItem {
                        peer: r.id()?,
                        payload: Zeroizing::new(r.field16(MAX_ENCODED_LEN)?.to_vec()),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let items = sorted(items, |i| i.peer)?;
            if ty == 0x35 {
                Body::Sealed {
                    ceremony_id,
                    round,
                    items,
                }
            } else {
                Body::SealedDeliver {
                    ceremony_id,
                    round,
                    items,
                }
            }
        }
        0x37 => Body::KeyConfirm {
            ceremony_id: r.array()?,
            npub: r.array()?,
            public: PublicKeyPackage::deserialize(r.field16(MAX_ENCODED_LEN)?)
                .map_err(|_| malformed())?,
            hash: r.array()?,
            signature: r.array()?,
        },
        0x38 => Body::Commit {
            ceremony_id: r.array()?,
            hash: r.array()?,
        },
        0x39 => Body::Committed {
            ceremony_id: r.array()?,
            share_version: r.u32()?,
        },
        0x3A => Body::CeremonyAbort {
            ceremony_id: r.array()?,
            reason: ErrorCode(r.u16()?),
        },
        0x40 => Body::ImportShare {
            ceremony_id: r.array()?,
            key_id: r.array()?,
            id: r.id()?,
            sealed: r.field16(MAX_ENCODED_LEN)?.to_vec(),
            public: PublicKeyPackage::deserialize(r.field16(MAX_ENCODED_LEN)?)
                .map_err(|_| malformed())?,
        },
        _ => return Err(Error::UnsupportedType { ty, req_id }),
    })
}
