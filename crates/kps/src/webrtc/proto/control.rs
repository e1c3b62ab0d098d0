//! Control-channel messages (spec §9.1), channel 0: CONNECTION_CLOSE, HELLO, MAX_DATA,
//! MAX_STREAMS, with their exact sizes.

use super::frame::{MAX_OFFSET, u32_of, u64_of};
use crate::error::Code;

/// The wire version keyline speaks.
pub const WIRE_VERSION: u8 = 1;
/// Size of a version-1 HELLO.
pub const HELLO_LEN: usize = 26;

const CONNECTION_CLOSE: u8 = 0x00;
const HELLO: u8 = 0x01;
const MAX_DATA: u8 = 0x02;
const MAX_STREAMS: u8 = 0x03;

/// The receiver-chosen limits a HELLO carries (spec §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Initial credit per stream (DATA payload bytes).
    pub initial_max_stream_data: u64,
    /// Initial credit over all streams.
    pub initial_max_data: u64,
    /// Application streams the peer may open, cumulative.
    pub initial_max_streams: u64,
}

impl Default for Limits {
    /// The spec's defaults: 1 MiB per stream, 8 MiB per connection, 100 streams.
    fn default() -> Self {
        Limits {
            initial_max_stream_data: 1024 * 1024,
            initial_max_data: 8 * 1024 * 1024,
            initial_max_streams: 100,
        }
    }
}

/// A control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Teardown with a registry code (0 = clean).
    ConnectionClose(u32),
    /// Version 1 and the sender's limits.
    Hello(Limits),
    /// New absolute connection credit.
    MaxData(u64),
    /// New cumulative stream limit.
    MaxStreams(u64),
}

impl Control {
    /// Decodes one channel-0 message: a HELLO of another version is [`Code::Unsupported`]
    /// (checked before its length); everything else malformed is [`Code::ProtocolError`].
    pub fn decode(message: &[u8]) -> Result<Control, Code> {
        let bad = Code::ProtocolError;
        let (&kind, payload) = message.split_first().ok_or(bad)?;
        let limit = |v: u64| if v > MAX_OFFSET { Err(bad) } else { Ok(v) };
        match kind {
            CONNECTION_CLOSE => Ok(Control::ConnectionClose(u32_of(payload)?)),
            HELLO => {
                match payload.first() {
                    Some(&WIRE_VERSION) => {}
                    Some(_) => return Err(Code::Unsupported),
                    None => return Err(bad),
                }
                if message.len() != HELLO_LEN {
                    return Err(bad);
                }
                Ok(Control::Hello(Limits {
                    initial_max_stream_data: limit(u64_of(&payload[1..9])?)?,
                    initial_max_data: limit(u64_of(&payload[9..17])?)?,
                    initial_max_streams: limit(u64_of(&payload[17..25])?)?,
                }))
            }
            MAX_DATA => Ok(Control::MaxData(limit(u64_of(payload)?)?)),
            MAX_STREAMS => Ok(Control::MaxStreams(limit(u64_of(payload)?)?)),
            _ => Err(bad),
        }
    }

    /// The encoding (values saturate at [`MAX_OFFSET`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HELLO_LEN);
        match *self {
            Control::ConnectionClose(code) => {
                out.push(CONNECTION_CLOSE);
                out.extend_from_slice(&code.to_be_bytes());
            }
            Control::Hello(l) => {
                out.push(HELLO);
                out.push(WIRE_VERSION);
                for v in [
                    l.initial_max_stream_data,
                    l.initial_max_data,
                    l.initial_max_streams,
                ] {
                    out.extend_from_slice(&v.min(MAX_OFFSET).to_be_bytes());
                }
            }
            Control::MaxData(v) => {
                out.push(MAX_DATA);
                out.extend_from_slice(&v.min(MAX_OFFSET).to_be_bytes());
            }
            Control::MaxStreams(v) => {
                out.push(MAX_STREAMS);
                out.extend_from_slice(&v.min(MAX_OFFSET).to_be_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(
            Control::Hello(Limits::default()).encode(),
            [
                0x01, 0x01, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0x64
            ]
        );
        assert_eq!(
            Control::ConnectionClose(Code::ProtocolError.wire()).encode(),
            [0, 0, 0, 0, 6]
        );
        for m in [
            Control::Hello(Limits::default()),
            Control::ConnectionClose(0),
            Control::MaxData(MAX_OFFSET),
            Control::MaxStreams(0),
        ] {
            assert_eq!(Control::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn version_before_length_and_strict_sizes() {
        // A future HELLO, longer: unsupported, not protocol-error.
        let mut v2 = vec![0x01, 0x02];
        v2.extend_from_slice(&[0; 40]);
        assert_eq!(Control::decode(&v2), Err(Code::Unsupported));
        assert_eq!(Control::decode(&[0x01, 0x02]), Err(Code::Unsupported));
        let mut short = Control::Hello(Limits::default()).encode();
        short.pop();
        assert_eq!(Control::decode(&short), Err(Code::ProtocolError));
        let mut over = Control::Hello(Limits::default()).encode();
        over[2] = 0x40; // initialMaxStreamData above MAX_OFFSET
        assert_eq!(Control::decode(&over), Err(Code::ProtocolError));
        for bad in [
            &[][..],
            &[0x01],
            &[0x00, 0, 0, 0],
            &[0x00, 0, 0, 0, 0, 0],
            &[0x02, 0, 0, 0, 0, 0, 0, 0],
            &[0x03, 0x40, 0, 0, 0, 0, 0, 0, 0],
            &[0x04],
        ] {
            assert_eq!(Control::decode(bad), Err(Code::ProtocolError), "{bad:02x?}");
        }
    }
}
