//! SBP, the inner protocol carried as Data plaintext (section 9), and `keyline.chunk/1`
//! chunking (section 11). All integers little-endian.
//!
//! * [`SbpFrame`] is the frame codec: `kind u8 ‖ flags u8 ‖ frame_id[16] ‖ [ts i64]` + body.
//! * [`SbpHandshake`] is the JSON of the Control/Handshake frame.
//! * [`Reassembler`] rebuilds chunked Messages with a bounded buffer; [`split_into_chunks`]
//!   makes the Chunk frames.
//! * [`SbpEndpoint`] is the per-session state machine: handshake first, capability
//!   negotiation, chunk reassembly, and [`SbpEndpoint::encode_message`] which picks one frame
//!   or a chunk run.
//!
//! # Chunking rule (`keyline.chunk/1`)
//!
//! When both handshakes list `keyline.chunk/1`, a Message whose encoded SBP frame is longer
//! than 65 508 bytes (one Data plaintext) is sent as Chunk frames (kind 4, flags 0, the
//! Message's frame id, `index u32le` from 0, `total u32le` = the encoded Message's length,
//! then a slice of 1–65 482 bytes). The slices in order concatenate to the encoded Message.
//! The receiver keeps one open run per direction, checks `total` against its maximum
//! (default 16 MiB) before allocating, and treats gaps, duplicates, a run not starting at
//! 0, a changed `total` or frame id, empty slices, excess bytes, non-zero flags, a second run
//! while one is open, or a reassembled frame that is not a Message with the same frame id as
//! a protocol violation (SBP Error 1000, then close). Other frames may be interleaved.
//! Without the capability nothing is chunked and an oversize Message cannot be sent
//! ([`SbpEndpoint::encode_message`] returns an error; an RPC layer answers
//! `result_too_large` instead, see [`crate::proto::rpc::Envelope::result_too_large`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result, SbpCode};
use crate::limits::{
    CHUNK_HEADER_LEN, DEFAULT_MAX_CHUNKED_MESSAGE, MAX_CHUNK_SLICE, MAX_PLAINTEXT,
    MAX_SBP_HANDSHAKE_JSON, MAX_SUBJECT_LEN,
};

/// The capability that enables chunking.
pub const CHUNK_CAPABILITY: &str = "keyline.chunk/1";
/// The RPC capability keyline advertises.
pub const RPC_CAPABILITY: &str = "rpc";
/// The handshake `protocol` value.
pub const PROTOCOL: &str = "sideband";
/// The handshake `version` value.
pub const VERSION: &str = "1";

const KIND_CONTROL: u8 = 0;
const KIND_MESSAGE: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_ERROR: u8 = 3;
const KIND_CHUNK: u8 = 4;
const FLAG_TIMESTAMP: u8 = 0x01;
const BASE_LEN: usize = 18;

/// SBP Control operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ControlOp {
    /// 0: handshake (data = JSON).
    Handshake = 0,
    /// 1: ping.
    Ping = 1,
    /// 2: pong.
    Pong = 2,
    /// 3: close with an optional UTF-8 reason.
    Close = 3,
}

/// An SBP frame body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbpBody<'a> {
    /// Kind 0.
    Control {
        /// The operation.
        op: ControlOp,
        /// Operation data.
        data: &'a [u8],
    },
    /// Kind 1.
    Message {
        /// 1–256 bytes of UTF-8, no NUL.
        subject: &'a str,
        /// The application data (for `rpc`/`event`: the JSON envelope).
        data: &'a [u8],
    },
    /// Kind 2.
    Ack {
        /// The acknowledged frame's id.
        ack_frame_id: [u8; 16],
    },
    /// Kind 3.
    Error {
        /// The SBP error code.
        code: u16,
        /// The message bytes (UTF-8; decode lossily).
        message: &'a [u8],
        /// Details: the rest of the frame.
        details: &'a [u8],
    },
    /// Kind 4 (`keyline.chunk/1`).
    Chunk {
        /// Position in the run, from 0.
        index: u32,
        /// Length of the complete encoded Message.
        total: u32,
        /// At least one byte.
        slice: &'a [u8],
    },
}

/// One SBP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbpFrame<'a> {
    /// 16 bytes, unique per sender (the Message's id for Chunk frames).
    pub frame_id: [u8; 16],
    /// Milliseconds since the Unix epoch, when flag bit 0 is set (never on Chunk frames).
    pub timestamp: Option<i64>,
    /// The body.
    pub body: SbpBody<'a>,
}

fn invalid(reason: &str) -> Error {
    Error::sbp(SbpCode::InvalidFrame, reason)
}

fn violation(reason: &str) -> Error {
    Error::sbp(SbpCode::ProtocolViolation, reason)
}

fn u32le(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

impl<'a> SbpFrame<'a> {
    /// Decodes one SBP frame (one Data plaintext or one reassembled Message).
    ///
    /// Errors: unknown kind, reserved flag bits, short or inconsistent lengths, a bad
    /// subject → 1002 InvalidFrame; any problem with a Chunk frame → 1000
    /// ProtocolViolation.
    pub fn decode(bytes: &'a [u8]) -> Result<SbpFrame<'a>> {
        if bytes.len() < BASE_LEN {
            return Err(invalid("frame shorter than 18 bytes"));
        }
        let kind = bytes[0];
        let flags = bytes[1];
        let mut frame_id = [0u8; 16];
        frame_id.copy_from_slice(&bytes[2..18]);
        if kind == KIND_CHUNK {
            return Self::decode_chunk(frame_id, flags, &bytes[BASE_LEN..]);
        }
        if flags & !FLAG_TIMESTAMP != 0 {
            return Err(invalid("reserved flag bits set"));
        }
        let mut rest = &bytes[BASE_LEN..];
        let timestamp = if flags & FLAG_TIMESTAMP != 0 {
            let (ts, tail) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| invalid("timestamp flag set but no timestamp"))?;
            rest = tail;
            Some(i64::from_le_bytes(*ts))
        } else {
            None
        };
        let body = match kind {
            KIND_CONTROL => {
                let (&op, data) = rest
                    .split_first()
                    .ok_or_else(|| invalid("Control frame without op"))?;
                let op = match op {
                    0 => ControlOp::Handshake,
                    1 => ControlOp::Ping,
                    2 => ControlOp::Pong,
                    3 => ControlOp::Close,
                    _ => return Err(invalid("unknown Control op")),
                };
                SbpBody::Control { op, data }
            }
            KIND_MESSAGE => {
                if rest.len() < 4 {
                    return Err(invalid("Message shorter than its subject length"));
                }
                let len = u32le(rest) as usize;
                rest = &rest[4..];
                if len == 0 || len > MAX_SUBJECT_LEN || len > rest.len() {
                    return Err(invalid("Message subject length out of range"));
                }
                let (subject, data) = rest.split_at(len);
                let subject = std::str::from_utf8(subject)
                    .map_err(|_| invalid("Message subject is not UTF-8"))?;
                if subject.contains('\0') {
                    return Err(invalid("Message subject contains NUL"));
                }
                SbpBody::Message { subject, data }
            }
            KIND_ACK => {
                let ack_frame_id: [u8; 16] = rest
                    .try_into()
                    .map_err(|_| invalid("Ack body must be 16 bytes"))?;
                SbpBody::Ack { ack_frame_id }
            }
            KIND_ERROR => {
                if rest.len() < 6 {
                    return Err(invalid("Error frame too short"));
                }
                let code = u16::from_le_bytes([rest[0], rest[1]]);
                let len = u32le(&rest[2..]) as usize;
                rest = &rest[6..];
                if len > rest.len() {
                    return Err(invalid("Error message length exceeds the frame"));
                }
                let (message, details) = rest.split_at(len);
                SbpBody::Error {
                    code,
                    message,
                    details,
                }
            }
            _ => return Err(invalid("unknown SBP frame kind")),
        };
        Ok(SbpFrame {
            frame_id,
            timestamp,
            body,
        })
    }

    fn decode_chunk(frame_id: [u8; 16], flags: u8, rest: &'a [u8]) -> Result<SbpFrame<'a>> {
        if flags != 0 {
            return Err(violation("Chunk frame with non-zero flags"));
        }
        if rest.len() < 8 {
            return Err(violation("Chunk frame too short"));
        }
        let index = u32le(rest);
        let total = u32le(&rest[4..]);
        let slice = &rest[8..];
        if total == 0 {
            return Err(violation("Chunk total is 0"));
        }
        if slice.is_empty() {
            return Err(violation("empty Chunk slice"));
        }
        Ok(SbpFrame {
            frame_id,
            timestamp: None,
            body: SbpBody::Chunk {
                index,
                total,
                slice,
            },
        })
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        let ts = if self.timestamp.is_some() { 8 } else { 0 };
        BASE_LEN
            + ts
            + match &self.body {
                SbpBody::Control { data, .. } => 1 + data.len(),
                SbpBody::Message { subject, data } => 4 + subject.len() + data.len(),
                SbpBody::Ack { .. } => 16,
                SbpBody::Error {
                    message, details, ..
                } => 6 + message.len() + details.len(),
                SbpBody::Chunk { slice, .. } => 8 + slice.len(),
            }
    }

    /// Encodes the frame. Refuses subjects outside 1–256 bytes or containing NUL, Chunk
    /// frames with a timestamp or an empty slice, and lengths above `u32`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let (kind, mut flags) = match &self.body {
            SbpBody::Control { .. } => (KIND_CONTROL, 0),
            SbpBody::Message { .. } => (KIND_MESSAGE, 0),
            SbpBody::Ack { .. } => (KIND_ACK, 0),
            SbpBody::Error { .. } => (KIND_ERROR, 0),
            SbpBody::Chunk { .. } => (KIND_CHUNK, 0),
        };
        if self.timestamp.is_some() {
            if kind == KIND_CHUNK {
                return Err(Error::param("SBP Chunk", "carries no timestamp"));
            }
            flags |= FLAG_TIMESTAMP;
        }
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&self.frame_id);
        if let Some(ts) = self.timestamp {
            out.extend_from_slice(&ts.to_le_bytes());
        }
        let len32 = |n: usize, what: &'static str| {
            u32::try_from(n).map_err(|_| Error::param(what, "longer than u32"))
        };
        match &self.body {
            SbpBody::Control { op, data } => {
                out.push(*op as u8);
                out.extend_from_slice(data);
            }
            SbpBody::Message { subject, data } => {
                if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN || subject.contains('\0') {
                    return Err(Error::param(
                        "SBP subject",
                        "must be 1–256 bytes of UTF-8 without NUL",
                    ));
                }
                out.extend_from_slice(&len32(subject.len(), "SBP subject")?.to_le_bytes());
                out.extend_from_slice(subject.as_bytes());
                out.extend_from_slice(data);
            }
            SbpBody::Ack { ack_frame_id } => out.extend_from_slice(ack_frame_id),
            SbpBody::Error {
                code,
                message,
                details,
            } => {
                out.extend_from_slice(&code.to_le_bytes());
                out.extend_from_slice(&len32(message.len(), "SBP error message")?.to_le_bytes());
                out.extend_from_slice(message);
                out.extend_from_slice(details);
            }
            SbpBody::Chunk {
                index,
                total,
                slice,
            } => {
                if slice.is_empty() || *total == 0 {
                    return Err(Error::param("SBP Chunk", "empty slice or total 0"));
                }
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&total.to_le_bytes());
                out.extend_from_slice(slice);
            }
        }
        Ok(out)
    }

    /// The Error body's message, decoded lossily.
    pub fn error_message(&self) -> Option<Cow<'a, str>> {
        match self.body {
            SbpBody::Error { message, .. } => Some(String::from_utf8_lossy(message)),
            _ => None,
        }
    }
}

/// An SBP Error frame for `code` with `message` (what a receiver sends before closing on a
/// fatal error).
pub fn error_frame(frame_id: [u8; 16], code: SbpCode, message: &str) -> Vec<u8> {
    SbpFrame {
        frame_id,
        timestamp: None,
        body: SbpBody::Error {
            code: code.to_u16(),
            message: message.as_bytes(),
            details: &[],
        },
    }
    .encode()
    .unwrap_or_default()
}

/// The JSON of an SBP Control/Handshake frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbpHandshake {
    /// Must be `"sideband"`.
    pub protocol: String,
    /// Must be `"1"`.
    pub version: String,
    /// The sender's peer id.
    #[serde(rename = "peerId")]
    pub peer_id: String,
    /// Capabilities; unknown ones are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// Namespaced metadata; unknown keys are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl SbpHandshake {
    /// keyline's handshake: `rpc` and `keyline.chunk/1`.
    pub fn keyline(peer_id: impl Into<String>) -> Self {
        Self {
            protocol: PROTOCOL.into(),
            version: VERSION.into(),
            peer_id: peer_id.into(),
            caps: vec![RPC_CAPABILITY.into(), CHUNK_CAPABILITY.into()],
            metadata: None,
        }
    }

    /// Whether `cap` is listed.
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }

    /// Parses handshake JSON (≤ 8 KiB). Not JSON or missing fields → 1000; another
    /// protocol or version → 1001.
    pub fn from_json(data: &[u8]) -> Result<Self> {
        if data.len() > MAX_SBP_HANDSHAKE_JSON {
            return Err(violation("handshake JSON larger than 8 KiB"));
        }
        let hs: SbpHandshake = serde_json::from_slice(data)
            .map_err(|e| violation(&format!("handshake JSON invalid: {e}")))?;
        if hs.protocol != PROTOCOL || hs.version != VERSION {
            return Err(Error::sbp(
                SbpCode::UnsupportedVersion,
                "peer speaks another protocol or version",
            ));
        }
        Ok(hs)
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let json =
            serde_json::to_vec(self).map_err(|e| Error::param("SBP handshake", e.to_string()))?;
        if json.len() > MAX_SBP_HANDSHAKE_JSON {
            return Err(Error::param("SBP handshake", "JSON larger than 8 KiB"));
        }
        Ok(json)
    }

    /// The complete Control/Handshake frame.
    pub fn to_frame(&self, frame_id: [u8; 16]) -> Result<Vec<u8>> {
        let json = self.to_json()?;
        SbpFrame {
            frame_id,
            timestamp: None,
            body: SbpBody::Control {
                op: ControlOp::Handshake,
                data: &json,
            },
        }
        .encode()
    }
}

/// Splits an encoded Message frame (`frame_id` is its id) into Chunk frames with slices of at
/// most `max_slice` bytes (1..=[`MAX_CHUNK_SLICE`]).
pub fn split_into_chunks(
    message_frame: &[u8],
    frame_id: [u8; 16],
    max_slice: usize,
) -> Result<Vec<Vec<u8>>> {
    if max_slice == 0 || max_slice > MAX_CHUNK_SLICE {
        return Err(Error::param(
            "chunk slice size",
            format!("must be 1..={MAX_CHUNK_SLICE}"),
        ));
    }
    let total = u32::try_from(message_frame.len())
        .map_err(|_| Error::param("chunked message", "longer than u32"))?;
    if total == 0 {
        return Err(Error::param("chunked message", "empty"));
    }
    message_frame
        .chunks(max_slice)
        .enumerate()
        .map(|(i, slice)| {
            let index = u32::try_from(i).map_err(|_| Error::param("chunk index", "overflow"))?;
            let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + slice.len());
            out.extend_from_slice(&[KIND_CHUNK, 0]);
            out.extend_from_slice(&frame_id);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&total.to_le_bytes());
            out.extend_from_slice(slice);
            Ok(out)
        })
        .collect()
}

#[derive(Debug)]
struct Run {
    frame_id: [u8; 16],
    total: u32,
    next_index: u32,
    buf: Vec<u8>,
}

/// Rebuilds chunked Messages: one open run at a time, `total` checked against the maximum
/// before anything is allocated.
#[derive(Debug)]
pub struct Reassembler {
    max_total: usize,
    run: Option<Run>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CHUNKED_MESSAGE)
    }
}

impl Reassembler {
    /// A reassembler accepting messages up to `max_total` bytes.
    pub fn new(max_total: usize) -> Self {
        Self {
            max_total,
            run: None,
        }
    }

    /// Whether a run is open.
    pub fn is_open(&self) -> bool {
        self.run.is_some()
    }

    /// Feeds one decoded Chunk frame. Returns the complete encoded Message frame when the
    /// run completes (already checked to be a Message with the run's frame id). Any rule
    /// broken → 1000 ProtocolViolation; the reassembler is then reset.
    pub fn push(
        &mut self,
        frame_id: [u8; 16],
        index: u32,
        total: u32,
        slice: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let result = self.push_inner(frame_id, index, total, slice);
        if result.is_err() {
            self.run = None;
        }
        result
    }

    fn push_inner(
        &mut self,
        frame_id: [u8; 16],
        index: u32,
        total: u32,
        slice: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        if slice.is_empty() {
            return Err(violation("empty Chunk slice"));
        }
        let run = match &mut self.run {
            None => {
                if index != 0 {
                    return Err(violation("chunk run does not start at index 0"));
                }
                if total == 0 || total as usize > self.max_total {
                    return Err(violation("chunk total is 0 or above the maximum"));
                }
                self.run.insert(Run {
                    frame_id,
                    total,
                    next_index: 0,
                    buf: Vec::with_capacity(total as usize),
                })
            }
            Some(run) => {
                if run.frame_id != frame_id {
                    return Err(violation(if index == 0 {
                        "second chunk run opened while one is open"
                    } else {
                        "chunk frame id changed inside a run"
                    }));
                }
                run
            }
        };
        if index != run.next_index {
            return Err(violation("chunk index gap or duplicate"));
        }
        if total != run.total {
            return Err(violation("chunk total changed inside a run"));
        }
        if slice.len() > run.total as usize - run.buf.len() {
            return Err(violation("chunks carry more bytes than total"));
        }
        run.buf.extend_from_slice(slice);
        run.next_index = run.next_index.wrapping_add(1);
        if run.buf.len() < run.total as usize {
            return Ok(None);
        }
        let run = self.run.take().expect("run is open");
        match SbpFrame::decode(&run.buf) {
            Ok(SbpFrame {
                frame_id,
                body: SbpBody::Message { .. },
                ..
            }) if frame_id == run.frame_id => Ok(Some(run.buf)),
            _ => Err(violation(
                "reassembled frame is not a Message with the chunk frame id",
            )),
        }
    }
}

/// What [`SbpEndpoint::receive`] delivers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SbpEvent {
    /// The peer's handshake: the inner handshake is done (disarm the session deadline).
    Handshake(SbpHandshake),
    /// A Message (whole or reassembled).
    Message {
        /// Its frame id.
        frame_id: [u8; 16],
        /// Subject.
        subject: String,
        /// Data.
        data: Vec<u8>,
    },
    /// A chunk was buffered; nothing to deliver yet.
    ChunkBuffered,
    /// An Ack.
    Ack {
        /// The acknowledged frame id.
        ack_frame_id: [u8; 16],
    },
    /// An Error from the peer (fatal codes end the session).
    Error {
        /// Code.
        code: u16,
        /// Message, lossily decoded.
        message: String,
    },
    /// A Control frame other than the handshake.
    Control {
        /// The op.
        op: ControlOp,
        /// Its data.
        data: Vec<u8>,
    },
}

/// The SBP side of one session: our handshake, the peer's, chunk negotiation and
/// reassembly. Feed it Data plaintexts; errors are SBP errors to report (fatal ones: send
/// [`error_frame`], then close).
#[derive(Debug)]
pub struct SbpEndpoint {
    local: SbpHandshake,
    peer: Option<SbpHandshake>,
    reassembler: Reassembler,
}

impl SbpEndpoint {
    /// An endpoint that sends `local` and reassembles up to `max_chunked` bytes.
    pub fn new(local: SbpHandshake, max_chunked: usize) -> Self {
        Self {
            local,
            peer: None,
            reassembler: Reassembler::new(max_chunked),
        }
    }

    /// The handshake frame to seal and send first.
    pub fn handshake_frame(&self, frame_id: [u8; 16]) -> Result<Vec<u8>> {
        self.local.to_frame(frame_id)
    }

    /// The peer's handshake, once received.
    pub fn peer(&self) -> Option<&SbpHandshake> {
        self.peer.as_ref()
    }

    /// Whether both sides listed `keyline.chunk/1`.
    pub fn chunking(&self) -> bool {
        self.local.has_cap(CHUNK_CAPABILITY)
            && self
                .peer
                .as_ref()
                .is_some_and(|p| p.has_cap(CHUNK_CAPABILITY))
    }

    /// Handles one Data plaintext.
    pub fn receive(&mut self, plaintext: &[u8]) -> Result<SbpEvent> {
        let frame = SbpFrame::decode(plaintext)?;
        if self.peer.is_none() {
            return match frame.body {
                SbpBody::Control {
                    op: ControlOp::Handshake,
                    data,
                } => {
                    let hs = SbpHandshake::from_json(data)?;
                    self.peer = Some(hs.clone());
                    Ok(SbpEvent::Handshake(hs))
                }
                _ => Err(violation("frame before the SBP handshake")),
            };
        }
        Ok(match frame.body {
            SbpBody::Control {
                op: ControlOp::Handshake,
                ..
            } => return Err(violation("second SBP handshake")),
            SbpBody::Control { op, data } => SbpEvent::Control {
                op,
                data: data.to_vec(),
            },
            SbpBody::Message { subject, data } => SbpEvent::Message {
                frame_id: frame.frame_id,
                subject: subject.to_owned(),
                data: data.to_vec(),
            },
            SbpBody::Ack { ack_frame_id } => SbpEvent::Ack { ack_frame_id },
            SbpBody::Error { code, message, .. } => SbpEvent::Error {
                code,
                message: String::from_utf8_lossy(message).into_owned(),
            },
            SbpBody::Chunk {
                index,
                total,
                slice,
            } => {
                if !self.chunking() {
                    return Err(violation("Chunk frame without keyline.chunk/1"));
                }
                match self.reassembler.push(frame.frame_id, index, total, slice)? {
                    None => SbpEvent::ChunkBuffered,
                    Some(whole) => match SbpFrame::decode(&whole)? {
                        SbpFrame {
                            frame_id,
                            body: SbpBody::Message { subject, data },
                            ..
                        } => SbpEvent::Message {
                            frame_id,
                            subject: subject.to_owned(),
                            data: data.to_vec(),
                        },
                        _ => return Err(violation("reassembled frame is not a Message")),
                    },
                }
            }
        })
    }

    /// Encodes a Message as the plaintexts to seal, each ≤ 65 508 bytes: one frame, or a
    /// chunk run when it is larger and chunking was negotiated. Larger than one frame without
    /// chunking → [`Error::PayloadTooLarge`] (answer with `result_too_large` instead).
    pub fn encode_message(
        &self,
        frame_id: [u8; 16],
        subject: &str,
        data: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        let whole = SbpFrame {
            frame_id,
            timestamp: None,
            body: SbpBody::Message { subject, data },
        }
        .encode()?;
        if whole.len() <= MAX_PLAINTEXT {
            return Ok(vec![whole]);
        }
        if !self.chunking() {
            return Err(Error::PayloadTooLarge {
                len: whole.len() as u64,
                limit: MAX_PLAINTEXT,
            });
        }
        split_into_chunks(&whole, frame_id, MAX_CHUNK_SLICE)
    }
}
