//! The receiving half of a box-stream (spec §12), sans-IO: feed it ciphertext as it arrives,
//! take the plaintext it releases. It buffers at most one packet (34 + 4096 bytes), checks a
//! declared length before reading the body, and never panics on peer input.

use std::fmt;

use super::nonce::next;
use crate::error::{Error, PeerError, Result, Step};
use crate::limits::{HEADER_LEN, MAX_PACKET, MAX_WIRE_PACKET};
use crate::proto::outcome::DirectionKeys;
use crate::proto::secretbox::{BoxKey, TAG_LEN};

#[derive(Clone)]
enum State {
    /// Collecting a header into `buf[..HEADER_LEN]`.
    Header { have: usize },
    /// Collecting a body of `len` bytes into `buf[HEADER_LEN..]`.
    Body {
        len: usize,
        tag: [u8; TAG_LEN],
        have: usize,
    },
    /// Plaintext `buf[pos..end]` waits to be taken.
    Ready { pos: usize, end: usize },
    /// The goodbye arrived: a clean end.
    Finished,
    /// A final error; every later call returns it again.
    Failed(Error),
}

/// Opens packets of one direction.
pub struct BoxDecoder {
    key: BoxKey,
    nonce: [u8; 24],
    buf: Box<[u8; MAX_WIRE_PACKET]>,
    state: State,
}

impl BoxDecoder {
    /// A decoder starting at the direction's nonce.
    pub fn new(keys: &DirectionKeys) -> Self {
        BoxDecoder {
            key: BoxKey::new(&keys.key),
            nonce: keys.nonce,
            buf: Box::new([0u8; MAX_WIRE_PACKET]),
            state: State::Header { have: 0 },
        }
    }

    /// Feeds ciphertext and returns how many bytes were consumed. Consumption stops when a
    /// packet's plaintext is ready (take it with [`Self::plaintext`] and [`Self::consume`],
    /// then feed the rest), at the goodbye (bytes after it are never looked at), or when the
    /// input is used up. Errors are final.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                State::Failed(ref err) => return Err(err.clone()),
                State::Ready { .. } | State::Finished => return Ok(used),
                State::Header { have } => {
                    let take = rest.len().min(HEADER_LEN - have);
                    self.buf[have..have + take].copy_from_slice(&rest[..take]);
                    used += take;
                    if have + take < HEADER_LEN {
                        self.state = State::Header { have: have + take };
                        return Ok(used);
                    }
                    self.state = self.open_header()?;
                }
                State::Body { len, tag, have } => {
                    let take = rest.len().min(len - have);
                    let at = HEADER_LEN + have;
                    self.buf[at..at + take].copy_from_slice(&rest[..take]);
                    used += take;
                    if have + take < len {
                        self.state = State::Body {
                            len,
                            tag,
                            have: have + take,
                        };
                        return Ok(used);
                    }
                    self.state = self.open_body(len, &tag)?;
                }
            }
        }
    }

    fn open_header(&mut self) -> Result<State> {
        let (tag_bytes, plain) = self.buf[..HEADER_LEN].split_at_mut(TAG_LEN);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(tag_bytes);
        if !self.key.open(&self.nonce, plain, &tag) {
            return Err(self.fail(PeerError::InvalidHeader));
        }
        if plain.iter().all(|&b| b == 0) {
            return Ok(State::Finished);
        }
        let len = u16::from_be_bytes([plain[0], plain[1]]);
        if usize::from(len) > MAX_PACKET {
            return Err(self.fail(PeerError::PacketTooLong(len)));
        }
        let mut body_tag = [0u8; TAG_LEN];
        body_tag.copy_from_slice(&plain[2..]);
        Ok(State::Body {
            len: usize::from(len),
            tag: body_tag,
            have: 0,
        })
    }

    fn open_body(&mut self, len: usize, tag: &[u8; TAG_LEN]) -> Result<State> {
        let body_nonce = next(&self.nonce);
        if !self.key.open(
            &body_nonce,
            &mut self.buf[HEADER_LEN..HEADER_LEN + len],
            tag,
        ) {
            return Err(self.fail(PeerError::InvalidBody));
        }
        self.nonce = next(&body_nonce);
        // An empty packet carries no data; it must not look like the end of the stream.
        if len == 0 {
            return Ok(State::Header { have: 0 });
        }
        Ok(State::Ready {
            pos: HEADER_LEN,
            end: HEADER_LEN + len,
        })
    }

    fn fail(&mut self, kind: PeerError) -> Error {
        let err = Error::peer(Step::BoxStream, kind);
        self.state = State::Failed(err.clone());
        err
    }

    /// Plaintext released and not yet consumed (empty if none).
    pub fn plaintext(&self) -> &[u8] {
        match self.state {
            State::Ready { pos, end } => &self.buf[pos..end],
            _ => &[],
        }
    }

    /// Marks `n` bytes of [`Self::plaintext`] as taken.
    pub fn consume(&mut self, n: usize) {
        if let State::Ready { pos, end } = self.state {
            let pos = (pos + n).min(end);
            self.state = if pos == end {
                State::Header { have: 0 }
            } else {
                State::Ready { pos, end }
            };
        }
    }

    /// Copies released plaintext into `out` and consumes it; returns the count.
    pub fn read_into(&mut self, out: &mut [u8]) -> usize {
        let available = self.plaintext();
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        n
    }

    /// True once the goodbye arrived.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Bytes the current step still needs before it can make progress (a header, or the
    /// rest of a body); zero while plaintext waits, after the goodbye or after an error.
    pub fn wants(&self) -> usize {
        match self.state {
            State::Header { have } => HEADER_LEN - have,
            State::Body { len, have, .. } => len - have,
            _ => 0,
        }
    }

    /// Called at the end of input, once [`Self::plaintext`] is drained: a clean end only
    /// after the goodbye; otherwise the stream was cut (`eof_before_goodbye`), which is final.
    /// While plaintext still waits it returns `Ok` without deciding.
    pub fn finish(&mut self) -> Result<()> {
        match self.state {
            State::Finished => Ok(()),
            State::Failed(ref err) => Err(err.clone()),
            State::Ready { .. } => Ok(()),
            State::Header { .. } | State::Body { .. } => {
                let err = Error::UnexpectedEof {
                    step: Step::BoxStream,
                };
                self.state = State::Failed(err.clone());
                Err(err)
            }
        }
    }
}

impl fmt::Debug for BoxDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxDecoder")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
