//! The SBRP frame codec (spec section 2): a 13-byte big-endian header and a typed payload.
//!
//! [`Frame::decode`] is the *endpoint* decoder: it checks, in order, header ≥ 13 → known
//! type → length ≤ 65 536 → sid rule → declared length = bytes after the header → per-type
//! payload size, and so rejects trailing bytes. The relay uses
//! [`crate::proto::relay::validate`], which checks in the relay order of section 7.
//! [`Frame::encode`] writes into a caller buffer and refuses every frame the spec says an
//! encoder must not build.

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, Result};
use crate::limits::{
    ACCEPT_PAYLOAD_LEN, DATA_OVERHEAD, HEADER_LEN, INIT_PAYLOAD_LEN, MAX_PAYLOAD, MAX_PING_PAYLOAD,
    MIN_CONTROL_PAYLOAD, SIGNAL_PAYLOAD_LEN,
};
use crate::proto::control::ControlCode;

/// The frame types of section 2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// 0x01, client → daemon: the client's X25519 ephemeral key.
    HandshakeInit = 0x01,
    /// 0x02, daemon → client: identity key, daemon ephemeral key, signature.
    HandshakeAccept = 0x02,
    /// 0x03, either way: nonce ‖ ciphertext ‖ tag.
    Data = 0x03,
    /// 0x04, daemon → relay: `signal ‖ reason`.
    Signal = 0x04,
    /// 0x10, anyone, sid 0: 0–8 opaque bytes.
    Ping = 0x10,
    /// 0x11, anyone, sid 0: the Ping's bytes.
    Pong = 0x11,
    /// 0x20, relay only: `code u16be ‖ message`.
    Control = 0x20,
}

impl FrameType {
    /// The type for a type byte, or `None` for an unknown (reserved or invalid) one.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => Self::HandshakeInit,
            0x02 => Self::HandshakeAccept,
            0x03 => Self::Data,
            0x04 => Self::Signal,
            0x10 => Self::Ping,
            0x11 => Self::Pong,
            0x20 => Self::Control,
            _ => return None,
        })
    }

    /// Types 0x01–0x04: the sid must be non-zero.
    pub fn is_session_bound(self) -> bool {
        matches!(
            self,
            Self::HandshakeInit | Self::HandshakeAccept | Self::Data | Self::Signal
        )
    }

    /// Types 0x10/0x11: the sid must be zero; never forwarded.
    pub fn is_connection_scoped(self) -> bool {
        matches!(self, Self::Ping | Self::Pong)
    }

    /// Whether `sid` satisfies the type's sid rule (Control accepts any sid).
    pub fn sid_ok(self, sid: u64) -> bool {
        if self.is_session_bound() {
            sid != 0
        } else if self.is_connection_scoped() {
            sid == 0
        } else {
            true
        }
    }
}

/// A parsed 13-byte header. The length is not checked against anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The raw type byte.
    pub frame_type: u8,
    /// Declared payload length.
    pub length: u32,
    /// Session id.
    pub sid: u64,
}

impl Header {
    /// Parses the first 13 bytes; `None` if there are fewer.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        let mut length = [0u8; 4];
        length.copy_from_slice(&h[1..5]);
        let mut sid = [0u8; 8];
        sid.copy_from_slice(&h[5..13]);
        Some(Header {
            frame_type: h[0],
            length: u32::from_be_bytes(length),
            sid: u64::from_be_bytes(sid),
        })
    }

    /// The 13 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.frame_type;
        out[1..5].copy_from_slice(&self.length.to_be_bytes());
        out[5..13].copy_from_slice(&self.sid.to_be_bytes());
        out
    }
}

/// A Signal's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SignalCode {
    /// 0x00: session state kept, resume.
    Ready = 0x00,
    /// 0x01: session ended.
    Close = 0x01,
}

/// A Signal's second byte. Unknown reasons decode as [`SignalReason::None`] (spec 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SignalReason {
    /// 0x00 (also any unknown value).
    None = 0x00,
    /// 0x01: the daemon lost the session state.
    StateLost = 0x01,
    /// 0x02: the daemon shuts down.
    Shutdown = 0x02,
    /// 0x03: policy.
    Policy = 0x03,
    /// 0x04: error (handshake timeout, decrypt failure).
    Error = 0x04,
}

impl SignalReason {
    /// The reason for a byte; unknown values are `None`.
    pub fn from_u8(byte: u8) -> Self {
        match byte {
            0x01 => Self::StateLost,
            0x02 => Self::Shutdown,
            0x03 => Self::Policy,
            0x04 => Self::Error,
            _ => Self::None,
        }
    }
}

/// Parses a 2-byte Signal payload: unknown signal → `malformed_frame`, unknown reason → none.
pub fn parse_signal(payload: &[u8]) -> Result<(SignalCode, SignalReason)> {
    let [signal, reason] = payload else {
        return Err(Error::malformed("Signal payload must be 2 bytes"));
    };
    let signal = match signal {
        0x00 => SignalCode::Ready,
        0x01 => SignalCode::Close,
        _ => return Err(Error::malformed("unknown Signal code")),
    };
    Ok((signal, SignalReason::from_u8(*reason)))
}

/// The 128-byte HandshakeAccept payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Accept {
    /// The daemon's Ed25519 identity public key.
    pub identity_key: [u8; 32],
    /// The daemon's X25519 ephemeral public key.
    pub daemon_ephemeral: [u8; 32],
    /// Ed25519 signature over the signature payload (section 3.2).
    pub signature: [u8; 64],
}

impl Accept {
    /// Parses exactly 128 bytes (the obsolete 96-byte layout is `malformed_frame`).
    pub fn from_bytes(payload: &[u8]) -> Result<Accept> {
        let p: &[u8; ACCEPT_PAYLOAD_LEN] = payload
            .try_into()
            .map_err(|_| Error::malformed("HandshakeAccept payload must be 128 bytes"))?;
        let mut accept = Accept {
            identity_key: [0; 32],
            daemon_ephemeral: [0; 32],
            signature: [0; 64],
        };
        accept.identity_key.copy_from_slice(&p[..32]);
        accept.daemon_ephemeral.copy_from_slice(&p[32..64]);
        accept.signature.copy_from_slice(&p[64..]);
        Ok(accept)
    }

    /// The 128 payload bytes.
    pub fn to_bytes(&self) -> [u8; ACCEPT_PAYLOAD_LEN] {
        let mut out = [0u8; ACCEPT_PAYLOAD_LEN];
        out[..32].copy_from_slice(&self.identity_key);
        out[32..64].copy_from_slice(&self.daemon_ephemeral);
        out[64..].copy_from_slice(&self.signature);
        out
    }
}

impl fmt::Debug for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept")
            .field("identity_key", &hex::encode(self.identity_key))
            .field("daemon_ephemeral", &hex::encode(self.daemon_ephemeral))
            .finish_non_exhaustive()
    }
}

/// One SBRP frame, borrowing variable-size payloads from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// 0x01.
    HandshakeInit {
        /// Session id (≠ 0).
        sid: u64,
        /// The client's X25519 ephemeral public key.
        client_ephemeral: [u8; 32],
    },
    /// 0x02.
    HandshakeAccept {
        /// Session id (≠ 0).
        sid: u64,
        /// The payload.
        accept: Accept,
    },
    /// 0x03.
    Data {
        /// Session id (≠ 0).
        sid: u64,
        /// `nonce (12) ‖ ciphertext ‖ tag (16)`, at least 28 bytes.
        payload: &'a [u8],
    },
    /// 0x04.
    Signal {
        /// Session id (≠ 0).
        sid: u64,
        /// Ready or close.
        signal: SignalCode,
        /// Why (none for ready).
        reason: SignalReason,
    },
    /// 0x10 (sid 0).
    Ping {
        /// 0–8 opaque bytes.
        payload: &'a [u8],
    },
    /// 0x11 (sid 0).
    Pong {
        /// The Ping's bytes.
        payload: &'a [u8],
    },
    /// 0x20.
    Control {
        /// 0 for connection-level codes, else the session's sid.
        sid: u64,
        /// The code.
        code: ControlCode,
        /// Diagnostic text; decode with [`Frame::control_message`], never act on it.
        message: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// Decodes one whole frame (one WebSocket message) as an endpoint does.
    pub fn decode(bytes: &'a [u8]) -> Result<Frame<'a>> {
        let header =
            Header::parse(bytes).ok_or(Error::malformed("header shorter than 13 bytes"))?;
        let frame_type = FrameType::from_u8(header.frame_type).ok_or(Error::InvalidFrameType {
            frame_type: header.frame_type,
        })?;
        let length = header.length as usize;
        if length > MAX_PAYLOAD {
            return Err(Error::PayloadTooLarge {
                len: header.length.into(),
                limit: MAX_PAYLOAD,
            });
        }
        if !frame_type.sid_ok(header.sid) {
            return Err(Error::InvalidSessionId {
                frame_type: header.frame_type,
            });
        }
        let payload = &bytes[HEADER_LEN..];
        if payload.len() != length {
            return Err(Error::malformed(
                "declared length differs from the bytes after the header",
            ));
        }
        let sid = header.sid;
        Ok(match frame_type {
            FrameType::HandshakeInit => Frame::HandshakeInit {
                sid,
                client_ephemeral: payload
                    .try_into()
                    .map_err(|_| Error::malformed("HandshakeInit payload must be 32 bytes"))?,
            },
            FrameType::HandshakeAccept => Frame::HandshakeAccept {
                sid,
                accept: Accept::from_bytes(payload)?,
            },
            FrameType::Data => {
                if payload.len() < DATA_OVERHEAD {
                    return Err(Error::malformed("Data payload shorter than 28 bytes"));
                }
                Frame::Data { sid, payload }
            }
            FrameType::Signal => {
                let (signal, reason) = parse_signal(payload)?;
                Frame::Signal {
                    sid,
                    signal,
                    reason,
                }
            }
            FrameType::Ping | FrameType::Pong => {
                if payload.len() > MAX_PING_PAYLOAD {
                    return Err(Error::PayloadTooLarge {
                        len: payload.len() as u64,
                        limit: MAX_PING_PAYLOAD,
                    });
                }
                if frame_type == FrameType::Ping {
                    Frame::Ping { payload }
                } else {
                    Frame::Pong { payload }
                }
            }
            FrameType::Control => {
                if payload.len() < MIN_CONTROL_PAYLOAD {
                    return Err(Error::malformed("Control payload shorter than 2 bytes"));
                }
                Frame::Control {
                    sid,
                    code: ControlCode::from_u16(u16::from_be_bytes([payload[0], payload[1]])),
                    message: &payload[2..],
                }
            }
        })
    }

    /// The frame's type.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Self::HandshakeInit { .. } => FrameType::HandshakeInit,
            Self::HandshakeAccept { .. } => FrameType::HandshakeAccept,
            Self::Data { .. } => FrameType::Data,
            Self::Signal { .. } => FrameType::Signal,
            Self::Ping { .. } => FrameType::Ping,
            Self::Pong { .. } => FrameType::Pong,
            Self::Control { .. } => FrameType::Control,
        }
    }

    /// The header sid (0 for Ping/Pong).
    pub fn sid(&self) -> u64 {
        match self {
            Self::HandshakeInit { sid, .. }
            | Self::HandshakeAccept { sid, .. }
            | Self::Data { sid, .. }
            | Self::Signal { sid, .. }
            | Self::Control { sid, .. } => *sid,
            Self::Ping { .. } | Self::Pong { .. } => 0,
        }
    }

    /// Payload length in bytes.
    pub fn payload_len(&self) -> usize {
        match self {
            Self::HandshakeInit { .. } => INIT_PAYLOAD_LEN,
            Self::HandshakeAccept { .. } => ACCEPT_PAYLOAD_LEN,
            Self::Data { payload, .. } | Self::Ping { payload } | Self::Pong { payload } => {
                payload.len()
            }
            Self::Signal { .. } => SIGNAL_PAYLOAD_LEN,
            Self::Control { message, .. } => MIN_CONTROL_PAYLOAD + message.len(),
        }
    }

    /// Encoded length: header plus payload.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// The Control message decoded lossily (invalid UTF-8 → U+FFFD); `None` for other
    /// frames. Diagnostic only: never base decisions on it.
    pub fn control_message(&self) -> Option<Cow<'a, str>> {
        match self {
            Self::Control { message, .. } => Some(String::from_utf8_lossy(message)),
            _ => None,
        }
    }

    /// Checks the encoder rules of section 2.5 without writing anything.
    pub fn check(&self) -> Result<()> {
        let frame_type = self.frame_type();
        let len = self.payload_len();
        if len > MAX_PAYLOAD {
            return Err(Error::PayloadTooLarge {
                len: len as u64,
                limit: MAX_PAYLOAD,
            });
        }
        if !frame_type.sid_ok(self.sid()) {
            return Err(Error::param(
                "SBRP frame",
                format!("sid {} not allowed for {frame_type:?}", self.sid()),
            ));
        }
        match self {
            Self::Data { payload, .. } if payload.len() < DATA_OVERHEAD => Err(Error::param(
                "SBRP frame",
                "Data payload shorter than 28 bytes",
            )),
            Self::Ping { payload } | Self::Pong { payload } if payload.len() > MAX_PING_PAYLOAD => {
                Err(Error::PayloadTooLarge {
                    len: payload.len() as u64,
                    limit: MAX_PING_PAYLOAD,
                })
            }
            _ => Ok(()),
        }
    }

    /// Writes the frame into `out`, returning the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
        self.check()?;
        let total = self.encoded_len();
        let available = out.len();
        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall {
            needed: total,
            available,
        })?;
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let header = Header {
            frame_type: self.frame_type() as u8,
            // check() bounded the payload by MAX_PAYLOAD.
            length: self.payload_len() as u32,
            sid: self.sid(),
        };
        head.copy_from_slice(&header.to_bytes());
        match self {
            Self::HandshakeInit {
                client_ephemeral, ..
            } => body.copy_from_slice(client_ephemeral),
            Self::HandshakeAccept { accept, .. } => body.copy_from_slice(&accept.to_bytes()),
            Self::Data { payload, .. } | Self::Ping { payload } | Self::Pong { payload } => {
                body.copy_from_slice(payload)
            }
            Self::Signal { signal, reason, .. } => {
                body.copy_from_slice(&[*signal as u8, *reason as u8])
            }
            Self::Control { code, message, .. } => {
                body[..2].copy_from_slice(&code.to_u16().to_be_bytes());
                body[2..].copy_from_slice(message);
            }
        }
        Ok(total)
    }

    /// Encodes into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        self.check()?;
        let mut out = vec![0u8; self.encoded_len()];
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// Encodes the Pong answering a Ping payload.
pub fn pong_for(ping_payload: &[u8]) -> Result<Vec<u8>> {
    Frame::Pong {
        payload: ping_payload,
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            frame_type: 3,
            length: 0x0102_0304,
            sid: 0x8000_0000_0000_0001,
        };
        assert_eq!(Header::parse(&h.to_bytes()), Some(h));
        assert_eq!(Header::parse(&[0; 12]), None);
    }

    #[test]
    fn encoder_refusals() {
        let payload = [0u8; 27];
        assert!(
            Frame::Data {
                sid: 1,
                payload: &payload
            }
            .to_vec()
            .is_err()
        );
        assert!(
            Frame::Data {
                sid: 0,
                payload: &[0; 28]
            }
            .to_vec()
            .is_err()
        );
        assert!(Frame::Ping { payload: &[0; 9] }.to_vec().is_err());
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(
            Frame::Data {
                sid: 1,
                payload: &big
            }
            .to_vec()
            .is_err()
        );
        let ok = vec![0u8; MAX_PAYLOAD];
        assert_eq!(
            Frame::Data {
                sid: 1,
                payload: &ok
            }
            .to_vec()
            .unwrap()
            .len(),
            HEADER_LEN + MAX_PAYLOAD
        );
        let mut small = [0u8; 20];
        assert!(matches!(
            Frame::Data {
                sid: 1,
                payload: &[0; 28]
            }
            .encode(&mut small),
            Err(Error::BufferTooSmall {
                needed: 41,
                available: 20
            })
        ));
        assert!(
            Frame::Signal {
                sid: 0,
                signal: SignalCode::Ready,
                reason: SignalReason::None
            }
            .to_vec()
            .is_err()
        );
    }
}
