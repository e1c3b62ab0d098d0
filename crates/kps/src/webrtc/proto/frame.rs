//! Application-channel frames (spec §8.1): one frame per data-channel message, a type byte and
//! a payload, decoded strictly (wire version 1: anything unexpected is connection-fatal
//! `protocol-error`).

use crate::error::Code;

/// Largest frame, type byte included: 16384 bytes.
pub const MAX_WEBRTC_FRAME_SIZE: usize = 16 * 1024;
/// Largest DATA payload: 16383 bytes.
pub const MAX_DATA_PAYLOAD: usize = MAX_WEBRTC_FRAME_SIZE - 1;
/// Ceiling of every offset, limit and count: 2^62 − 1 (spec §10.6).
pub const MAX_OFFSET: u64 = (1 << 62) - 1;

const DATA: u8 = 0x00;
const FIN: u8 = 0x01;
const RESET: u8 = 0x02;
const STOP_SENDING: u8 = 0x03;
const MAX_STREAM_DATA: u8 = 0x04;

/// A stream frame. DATA borrows its payload from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Stream bytes (1 to [`MAX_DATA_PAYLOAD`]).
    Data(&'a [u8]),
    /// The sender's half is finished.
    Fin,
    /// The sender's half is aborted with a code.
    Reset(u32),
    /// The receiver asks the sender to stop, with a code.
    StopSending(u32),
    /// New absolute stream credit (≤ [`MAX_OFFSET`]).
    MaxStreamData(u64),
}

impl<'a> Frame<'a> {
    /// Decodes one channel message. Every malformed message is [`Code::ProtocolError`].
    pub fn decode(message: &'a [u8]) -> Result<Frame<'a>, Code> {
        let bad = Code::ProtocolError;
        if message.len() > MAX_WEBRTC_FRAME_SIZE {
            return Err(bad);
        }
        let (&kind, payload) = message.split_first().ok_or(bad)?;
        match kind {
            DATA if !payload.is_empty() => Ok(Frame::Data(payload)),
            FIN if payload.is_empty() => Ok(Frame::Fin),
            RESET => Ok(Frame::Reset(u32_of(payload)?)),
            STOP_SENDING => Ok(Frame::StopSending(u32_of(payload)?)),
            MAX_STREAM_DATA => {
                let value = u64_of(payload)?;
                if value > MAX_OFFSET {
                    return Err(bad);
                }
                Ok(Frame::MaxStreamData(value))
            }
            _ => Err(bad),
        }
    }

    /// Appends the encoding to `out`. DATA must carry 1 to [`MAX_DATA_PAYLOAD`] bytes and
    /// MAX_STREAM_DATA at most [`MAX_OFFSET`] (the engine's own invariants; checked in debug).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            Frame::Data(payload) => {
                debug_assert!(!payload.is_empty() && payload.len() <= MAX_DATA_PAYLOAD);
                out.push(DATA);
                out.extend_from_slice(payload);
            }
            Frame::Fin => out.push(FIN),
            Frame::Reset(code) => {
                out.push(RESET);
                out.extend_from_slice(&code.to_be_bytes());
            }
            Frame::StopSending(code) => {
                out.push(STOP_SENDING);
                out.extend_from_slice(&code.to_be_bytes());
            }
            Frame::MaxStreamData(value) => {
                debug_assert!(value <= MAX_OFFSET);
                out.push(MAX_STREAM_DATA);
                out.extend_from_slice(&value.min(MAX_OFFSET).to_be_bytes());
            }
        }
    }

    /// The encoding as a new message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(match self {
            Frame::Data(p) => 1 + p.len(),
            _ => 9,
        });
        self.encode_into(&mut out);
        out
    }
}

pub(super) fn u32_of(payload: &[u8]) -> Result<u32, Code> {
    <[u8; 4]>::try_from(payload)
        .map(u32::from_be_bytes)
        .map_err(|_| Code::ProtocolError)
}

pub(super) fn u64_of(payload: &[u8]) -> Result<u64, Code> {
    <[u8; 8]>::try_from(payload)
        .map(u64::from_be_bytes)
        .map_err(|_| Code::ProtocolError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(Frame::Data(b"hi").encode(), [0x00, 0x68, 0x69]);
        assert_eq!(Frame::Fin.encode(), [0x01]);
        assert_eq!(
            Frame::Reset(Code::Reset.wire()).encode(),
            [0x02, 0, 0, 0, 3]
        );
        assert_eq!(
            Frame::StopSending(Code::Cancelled.wire()).encode(),
            [0x03, 0, 0, 0, 1]
        );
        assert_eq!(
            Frame::MaxStreamData(MAX_OFFSET).encode(),
            [0x04, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        for frame in [
            Frame::Data(b"hi"),
            Frame::Fin,
            Frame::Reset(3),
            Frame::StopSending(1),
            Frame::MaxStreamData(MAX_OFFSET),
        ] {
            assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn the_largest_data_frame_is_16384_bytes() {
        let payload = vec![7u8; MAX_DATA_PAYLOAD];
        let encoded = Frame::Data(&payload).encode();
        assert_eq!(encoded.len(), MAX_WEBRTC_FRAME_SIZE);
        assert_eq!(Frame::decode(&encoded), Ok(Frame::Data(&payload)));
        let mut over = encoded;
        over.push(0);
        assert_eq!(Frame::decode(&over), Err(Code::ProtocolError));
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        let too_big = {
            let mut m = vec![0x04];
            m.extend_from_slice(&(MAX_OFFSET + 1).to_be_bytes());
            m
        };
        for bad in [
            &[][..],
            &[0x00],
            &[0x01, 0x00],
            &[0x02, 0, 0, 0],
            &[0x02, 0, 0, 0, 0, 0],
            &[0x03],
            &[0x04, 0, 0, 0, 0, 0, 0, 0],
            &too_big,
            &[0x05],
            &[0xff, 1, 2],
        ] {
            assert_eq!(Frame::decode(bad), Err(Code::ProtocolError), "{bad:02x?}");
        }
    }
}
