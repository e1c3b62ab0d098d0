//! The sending half of a box-stream (spec §11).

use std::fmt;

use super::nonce::next;
use crate::error::{Error, InvalidInput, Result};
use crate::limits::{HEADER_LEN, MAX_PACKET};
use crate::proto::outcome::DirectionKeys;
use crate::proto::secretbox::{BoxKey, TAG_LEN};

/// Seals packets and the goodbye for one direction.
pub struct BoxEncoder {
    key: BoxKey,
    nonce: [u8; 24],
    finished: bool,
}

impl BoxEncoder {
    /// An encoder starting at the direction's nonce.
    pub fn new(keys: &DirectionKeys) -> Self {
        BoxEncoder {
            key: BoxKey::new(&keys.key),
            nonce: keys.nonce,
            finished: false,
        }
    }

    /// Seals one packet in place. `packet` holds [`HEADER_LEN`] bytes of room for the header
    /// followed by the plaintext body (1 to [`MAX_PACKET`] bytes); afterwards it is the
    /// packet as sent on the wire. This is the hot path: no allocation, no copy.
    pub fn seal_in_place(&mut self, packet: &mut [u8]) -> Result<()> {
        if self.finished {
            return Err(Error::InvalidInput(InvalidInput::WriteAfterGoodbye));
        }
        let body_len = packet.len().saturating_sub(HEADER_LEN);
        if packet.len() <= HEADER_LEN || body_len > MAX_PACKET {
            return Err(Error::InvalidInput(InvalidInput::PacketSize(body_len)));
        }
        let (header, body) = packet.split_at_mut(HEADER_LEN);
        let body_nonce = next(&self.nonce);
        let body_tag = self.key.seal(&body_nonce, body);
        let (header_tag, header_plain) = header.split_at_mut(TAG_LEN);
        // body_len ≤ 4096, so it fits in a u16.
        header_plain[..2].copy_from_slice(&(body_len as u16).to_be_bytes());
        header_plain[2..].copy_from_slice(&body_tag);
        header_tag.copy_from_slice(&self.key.seal(&self.nonce, header_plain));
        self.nonce = next(&body_nonce);
        Ok(())
    }

    /// Seals one packet of 1 to [`MAX_PACKET`] bytes and appends it to `out`.
    pub fn seal_packet(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        out.extend_from_slice(body);
        let sealed = self.seal_in_place(&mut out[start..]);
        if sealed.is_err() {
            out.truncate(start);
        }
        sealed
    }

    /// Encodes one write the way the JS reference does: split into packets of
    /// [`MAX_PACKET`] bytes and a remainder; an empty write produces nothing.
    pub fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.finished {
            return Err(Error::InvalidInput(InvalidInput::WriteAfterGoodbye));
        }
        for chunk in data.chunks(MAX_PACKET) {
            self.seal_packet(chunk, out)?;
        }
        Ok(())
    }

    /// Seals the goodbye (an all-zero header) and ends the stream: later writes fail.
    pub fn goodbye(&mut self) -> Result<[u8; HEADER_LEN]> {
        if self.finished {
            return Err(Error::InvalidInput(InvalidInput::WriteAfterGoodbye));
        }
        let mut goodbye = [0u8; HEADER_LEN];
        let (tag, plain) = goodbye.split_at_mut(TAG_LEN);
        tag.copy_from_slice(&self.key.seal(&self.nonce, plain));
        self.finished = true;
        Ok(goodbye)
    }

    /// True once the goodbye was sealed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The nonce the next header will use.
    pub fn nonce(&self) -> &[u8; 24] {
        &self.nonce
    }
}

impl fmt::Debug for BoxEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxEncoder")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
