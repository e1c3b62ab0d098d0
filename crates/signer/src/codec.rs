//! Small decoding helpers shared by the wrappers: the size limit, canonical re-encoding, and a
//! reader for keyline's own envelopes.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::limits::MAX_ENCODED_LEN;
use crate::{Error, Result};

/// Refuses input above [`MAX_ENCODED_LEN`] before anything is parsed.
pub(crate) fn check_len(what: &'static str, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max: MAX_ENCODED_LEN,
        });
    }
    Ok(())
}

/// Decodes a FROST object and insists that it re-encodes to exactly the input: the FROST
/// crate's decoder (postcard) ignores trailing bytes, keyline does not.
pub(crate) fn decode_canonical<T, E>(
    what: &'static str,
    bytes: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
    encode: impl FnOnce(&T) -> Option<Zeroizing<Vec<u8>>>,
) -> Result<T> {
    check_len(what, bytes)?;
    let value = decode(bytes).map_err(|_| Error::Malformed { what })?;
    let again = encode(&value).ok_or(Error::Malformed { what })?;
    if again.len() != bytes.len() || !bool::from(again.as_slice().ct_eq(bytes)) {
        return Err(Error::Malformed { what });
    }
    Ok(value)
}

/// A cursor over one of keyline's envelopes; every failure is `Malformed { what }`.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Result<Self> {
        check_len(what, bytes)?;
        Ok(Self { bytes, what })
    }

    fn malformed(&self) -> Error {
        Error::Malformed { what: self.what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(self.malformed());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn expect(&mut self, literal: &[u8]) -> Result<()> {
        if self.take(literal.len())? != literal {
            return Err(self.malformed());
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A `u16` length, then that many bytes.
    pub(crate) fn field(&mut self) -> Result<&'a [u8]> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// Everything left; the reader is then finished.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn finish(self) -> Result<()> {
        if !self.bytes.is_empty() {
            return Err(self.malformed());
        }
        Ok(())
    }
}

/// Appends a `u16` length and the bytes (callers keep fields below 64 KiB).
pub(crate) fn put_field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| Error::Internal {
        reason: "encoded field longer than 65535 bytes",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Lowercase hex, for `Debug` output of public values.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_short_and_trailing_input() {
        let mut r = Reader::new("thing", &[0, 3, 1, 2]).unwrap();
        assert!(r.field().is_err());
        let mut r = Reader::new("thing", &[0, 1, 9, 7]).unwrap();
        assert_eq!(r.field().unwrap(), &[9]);
        assert_eq!(r.finish(), Err(Error::Malformed { what: "thing" }));
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }
}
