//! Relay-side frame validation (section 7), sans-IO.
//!
//! For every binary WebSocket message the relay calls [`validate`] with who sent it and a
//! pairing lookup. It gets either a [`Verdict`] (answer a Ping, note liveness, handle a
//! Signal, forward the bytes unchanged) or a [`Rejection`]: the Control frame to send and
//! whether to close the connection or end one pairing. The checks run in the spec's order
//! and the first failure wins:
//!
//! 1. message shorter than 13 bytes → `malformed_frame`, sid 0
//! 2. declared length > 65 536 → `payload_too_large`, sid 0 (also before an unknown type)
//! 3. unknown type → `invalid_frame_type`, sid 0
//! 4. sid rule → `invalid_session_id`, sid 0
//! 5. direction (client: 01, 03, 10, 11; daemon: 02, 03, 04, 10, 11; nobody: 20) →
//!    `disallowed_sender`, sid = header sid
//! 6. declared length ≠ bytes after the header → `malformed_frame`, sid 0
//! 7. client 01/03 whose sid ≠ the token's sid → `forbidden`, sid 0
//! 8. Ping/Pong payload > 8 → `payload_too_large`; Signal payload ≠ 2 or unknown signal →
//!    `malformed_frame`; both sid 0
//! 9. daemon 02/03/04 for a sid with no pairing → `session_not_found`, sid S
//!
//! On a client connection every rejection closes the connection. On a daemon connection the
//! sid of the code decides: sid 0 closes the daemon WebSocket; a code with a sid leaves it
//! open and ends that pairing if one exists (and the code is terminal).

use crate::limits::{HEADER_LEN, MAX_PAYLOAD, MAX_PING_PAYLOAD};
use crate::proto::control::ControlCode;
use crate::proto::frame::{Frame, FrameType, Header, SignalCode, SignalReason, parse_signal};

/// Who sent the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A client connection, with the sid of its token.
    Client {
        /// The token's sid.
        token_sid: u64,
    },
    /// The daemon connection.
    Daemon,
}

/// What the relay does with a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// A Ping: answer with a Pong carrying this payload; never forward.
    Pong {
        /// The Ping's payload (≤ 8 bytes).
        payload: &'a [u8],
    },
    /// A Pong: liveness only.
    Liveness,
    /// A daemon Signal for a paired sid (section 8.5).
    Signal {
        /// The sid.
        sid: u64,
        /// Ready or close.
        signal: SignalCode,
        /// The reason (unknown reasons are none).
        reason: SignalReason,
    },
    /// Forward the message bytes unchanged to the paired connection.
    Forward {
        /// HandshakeInit, HandshakeAccept or Data.
        frame_type: FrameType,
        /// The sid (for a client, its token's sid).
        sid: u64,
    },
}

/// A validation failure: the Control frame to send and what happens to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The code to send.
    pub code: ControlCode,
    /// The sid of the Control frame.
    pub sid: u64,
    /// Close the WebSocket after sending.
    pub closes_connection: bool,
    /// Daemon connections only: end the pairing with `sid` (its client gets
    /// `session_expired`) while the daemon WebSocket stays open. On a client connection the
    /// pairing ends because the connection closes.
    pub ends_pairing: bool,
}

impl Rejection {
    /// The Control frame (empty message: the relay puts no identifiers in Control text).
    pub fn control_frame(&self) -> Vec<u8> {
        control_frame(self.code, self.sid)
    }

    /// The rejection for a WebSocket text message: `malformed_frame`, sid 0, close.
    pub fn text_message() -> Rejection {
        Rejection {
            code: ControlCode::MalformedFrame,
            sid: 0,
            closes_connection: true,
            ends_pairing: false,
        }
    }

    /// The rejection for a message the WebSocket layer refused for size:
    /// `payload_too_large`, sid 0, close.
    pub fn oversize_message() -> Rejection {
        Rejection {
            code: ControlCode::PayloadTooLarge,
            sid: 0,
            closes_connection: true,
            ends_pairing: false,
        }
    }
}

/// A Control frame with `code`, `sid` and no message (15 bytes).
pub fn control_frame(code: ControlCode, sid: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 2);
    out.extend_from_slice(
        &Header {
            frame_type: FrameType::Control as u8,
            length: 2,
            sid,
        }
        .to_bytes(),
    );
    out.extend_from_slice(&code.to_u16().to_be_bytes());
    out
}

fn may_send(sender: Sender, frame_type: FrameType) -> bool {
    use FrameType::*;
    match sender {
        Sender::Client { .. } => matches!(frame_type, HandshakeInit | Data | Ping | Pong),
        Sender::Daemon => matches!(frame_type, HandshakeAccept | Data | Signal | Ping | Pong),
    }
}

/// Validates one binary message in the order of section 7. `is_paired(sid)` tells whether
/// the daemon has a pairing with that sid (only asked for daemon messages).
pub fn validate<'a>(
    message: &'a [u8],
    sender: Sender,
    is_paired: impl Fn(u64) -> bool,
) -> Result<Verdict<'a>, Rejection> {
    let reject = |code: ControlCode, sid: u64| {
        let (closes_connection, ends_pairing) = match sender {
            Sender::Client { .. } => (true, false),
            Sender::Daemon if sid == 0 => (true, false),
            Sender::Daemon => (false, code.is_terminal() && is_paired(sid)),
        };
        Rejection {
            code,
            sid,
            closes_connection,
            ends_pairing,
        }
    };
    // 1.
    let Some(header) = Header::parse(message) else {
        return Err(reject(ControlCode::MalformedFrame, 0));
    };
    // 2.
    if header.length as usize > MAX_PAYLOAD {
        return Err(reject(ControlCode::PayloadTooLarge, 0));
    }
    // 3.
    let Some(frame_type) = FrameType::from_u8(header.frame_type) else {
        return Err(reject(ControlCode::InvalidFrameType, 0));
    };
    // 4.
    if !frame_type.sid_ok(header.sid) {
        return Err(reject(ControlCode::InvalidSessionId, 0));
    }
    // 5.
    if !may_send(sender, frame_type) {
        return Err(reject(ControlCode::DisallowedSender, header.sid));
    }
    // 6.
    let payload = &message[HEADER_LEN..];
    if payload.len() != header.length as usize {
        return Err(reject(ControlCode::MalformedFrame, 0));
    }
    // 7.
    if let Sender::Client { token_sid } = sender
        && matches!(frame_type, FrameType::HandshakeInit | FrameType::Data)
        && header.sid != token_sid
    {
        return Err(reject(ControlCode::Forbidden, 0));
    }
    // 8.
    let signal = match frame_type {
        FrameType::Ping | FrameType::Pong if payload.len() > MAX_PING_PAYLOAD => {
            return Err(reject(ControlCode::PayloadTooLarge, 0));
        }
        FrameType::Signal => match parse_signal(payload) {
            Ok(parsed) => Some(parsed),
            Err(_) => return Err(reject(ControlCode::MalformedFrame, 0)),
        },
        _ => None,
    };
    // 9.
    if sender == Sender::Daemon
        && matches!(
            frame_type,
            FrameType::HandshakeAccept | FrameType::Data | FrameType::Signal
        )
        && !is_paired(header.sid)
    {
        return Err(reject(ControlCode::SessionNotFound, header.sid));
    }
    Ok(match (frame_type, signal) {
        (FrameType::Ping, _) => Verdict::Pong { payload },
        (FrameType::Pong, _) => Verdict::Liveness,
        (FrameType::Signal, Some((signal, reason))) => Verdict::Signal {
            sid: header.sid,
            signal,
            reason,
        },
        _ => Verdict::Forward {
            frame_type,
            sid: header.sid,
        },
    })
}

/// The Pong the relay answers a Ping with.
pub fn pong(ping_payload: &[u8]) -> Vec<u8> {
    // ≤ 8 bytes, sid 0: always encodable.
    Frame::Pong {
        payload: &ping_payload[..ping_payload.len().min(MAX_PING_PAYLOAD)],
    }
    .to_vec()
    .unwrap_or_default()
}
