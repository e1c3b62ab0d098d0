//! One end of an established SBRP session plus its SBP endpoint: seals application messages
//! into Data frames (chunking when negotiated) and turns received Data frames into typed
//! inbound items. Shared by the daemon's connection task and the client's session task.

use serde_json::Value;

use crate::error::{Error, Result, SbpCode};
use crate::proto::rpc::{Cid, Envelope, SubjectKind, subject_kind};
use crate::proto::sbp::{
    ControlOp, SbpBody, SbpEndpoint, SbpEvent, SbpFrame, SbpHandshake, error_frame,
};
use crate::proto::session::Session;

/// A fresh random 16-byte SBP frame id.
pub(crate) fn frame_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(Error::Rng)?;
    Ok(id)
}

/// What one received Data frame amounted to.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Nothing to deliver (a buffered chunk, an Ack, a Pong, a dropped replay).
    Nothing,
    /// The peer's SBP handshake: the session is established.
    Established(SbpHandshake),
    /// An RPC or event envelope, with the size of its JSON.
    Envelope(Envelope, usize),
    /// A Message with another subject (`app/…`).
    Other {
        /// Subject.
        subject: String,
        /// Data.
        data: Vec<u8>,
    },
    /// An SBP Ping: answer with [`Channel::pong_frame`].
    Ping(Vec<u8>),
    /// The peer sent SBP Close.
    PeerClosed,
    /// The peer sent a non-fatal SBP Error.
    PeerError,
    /// The peer sent a fatal SBP Error (1000–1002): the session is over, send nothing back.
    PeerFatal(Error),
}

/// The session and SBP state of one sid.
pub(crate) struct Channel {
    pub(crate) session: Session,
    sbp: SbpEndpoint,
}

impl Channel {
    pub(crate) fn new(session: Session, peer_id: &str, max_message: usize) -> Self {
        Self {
            session,
            sbp: SbpEndpoint::new(SbpHandshake::keyline(peer_id), max_message),
        }
    }

    /// Whether both sides negotiated `keyline.chunk/1`.
    pub(crate) fn chunking(&self) -> bool {
        self.sbp.chunking()
    }

    /// Our SBP handshake, sealed.
    pub(crate) fn handshake_frame(&mut self) -> Result<Vec<u8>> {
        let plain = self.sbp.handshake_frame(frame_id()?)?;
        self.session.seal_to_vec(&plain)
    }

    fn seal_all(&mut self, plaintexts: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        plaintexts
            .iter()
            .map(|p| self.session.seal_to_vec(p))
            .collect()
    }

    /// A Message as sealed Data frames (one, or a chunk run).
    pub(crate) fn message_frames(&mut self, subject: &str, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        let plain = self.sbp.encode_message(frame_id()?, subject, data)?;
        self.seal_all(plain)
    }

    /// An envelope as sealed Data frames. A response too large for a peer without chunking
    /// becomes the `result_too_large` error (spec 11).
    pub(crate) fn envelope_frames(&mut self, env: &Envelope) -> Result<Vec<Vec<u8>>> {
        match self.message_frames(env.subject(), &env.to_json()) {
            Err(Error::PayloadTooLarge { .. }) if !self.chunking() => match env.cid() {
                Some(cid) if !matches!(env, Envelope::Request { .. }) => {
                    self.message_frames(env.subject(), &Envelope::result_too_large(cid).to_json())
                }
                _ => Err(Error::PayloadTooLarge {
                    len: env.to_json().len() as u64,
                    limit: crate::limits::MAX_PLAINTEXT,
                }),
            },
            other => other,
        }
    }

    /// A request; its cid is the Message's frame id.
    pub(crate) fn request_frames(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<(Cid, Vec<Vec<u8>>)> {
        let id = frame_id()?;
        let env = Envelope::Request {
            method: method.to_owned(),
            params,
            cid: Cid(id),
        };
        let plain = self.sbp.encode_message(id, env.subject(), &env.to_json())?;
        Ok((Cid(id), self.seal_all(plain)?))
    }

    /// An SBP Error frame for `error` (sealed), for reporting an inner-protocol error.
    pub(crate) fn error_frame(&mut self, code: SbpCode, message: &str) -> Result<Vec<u8>> {
        let plain = error_frame(frame_id()?, code, message);
        self.session.seal_to_vec(&plain)
    }

    fn control_frame(&mut self, op: ControlOp, data: &[u8]) -> Result<Vec<u8>> {
        let plain = SbpFrame {
            frame_id: frame_id()?,
            timestamp: None,
            body: SbpBody::Control { op, data },
        }
        .encode()?;
        self.session.seal_to_vec(&plain)
    }

    /// SBP Pong echoing `data`.
    pub(crate) fn pong_frame(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.control_frame(ControlOp::Pong, data)
    }

    /// SBP Close.
    pub(crate) fn close_frame(&mut self) -> Result<Vec<u8>> {
        self.control_frame(ControlOp::Close, &[])
    }

    /// Opens one Data payload and runs it through SBP.
    ///
    /// `Ok(Nothing)` for a replayed or too-old frame (dropped, counted by the session).
    /// Errors: [`Error::DecryptFailed`] (session over), SBP errors (report with
    /// [`Channel::error_frame`]; fatal unless [`Error::session_survives`]).
    pub(crate) fn receive(&mut self, payload: &[u8]) -> Result<Inbound> {
        let plain = match self.session.open(payload) {
            Ok(p) => p,
            Err(Error::SequenceError(_)) => return Ok(Inbound::Nothing),
            Err(e) => return Err(e),
        };
        Ok(match self.sbp.receive(&plain)? {
            SbpEvent::Handshake(hs) => {
                self.session.handshake_complete();
                Inbound::Established(hs)
            }
            SbpEvent::Message { subject, data, .. } => match subject_kind(&subject) {
                Some(SubjectKind::Rpc | SubjectKind::Event) => {
                    Inbound::Envelope(Envelope::decode(&subject, &data)?, data.len())
                }
                None => Inbound::Other { subject, data },
            },
            SbpEvent::Control {
                op: ControlOp::Ping,
                data,
            } => Inbound::Ping(data),
            SbpEvent::Control {
                op: ControlOp::Close,
                ..
            } => Inbound::PeerClosed,
            SbpEvent::Error { code, message } => {
                if matches!(code, 1000..=1002) {
                    Inbound::PeerFatal(Error::sbp(
                        SbpCode::ProtocolViolation,
                        format!("peer reported SBP error {code}: {}", truncate(&message)),
                    ))
                } else {
                    Inbound::PeerError
                }
            }
            _ => Inbound::Nothing,
        })
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}
