//! The token form of a session id: unpadded base64url of the 8-byte big-endian u64
//! (`AAALOnPOL_I` = 0x00000B3A73CE2FF2).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Encodes a sid as 11 base64url characters (no padding).
pub fn encode_sid(sid: u64) -> String {
    URL_SAFE_NO_PAD.encode(sid.to_be_bytes())
}

/// Decodes a token `sid`: exactly 11 characters of the URL-safe alphabet, no padding,
/// canonical last character, decoding to 8 bytes, non-zero.
pub fn decode_sid(text: &str) -> Result<u64> {
    if text.len() != 11 {
        return Err(Error::InvalidSid {
            reason: "must be exactly 11 base64url characters",
        });
    }
    let mut out = [0u8; 9];
    let n = URL_SAFE_NO_PAD
        .decode_slice(text, &mut out)
        .map_err(|_| Error::InvalidSid {
            reason: "not canonical unpadded base64url",
        })?;
    let bytes: [u8; 8] = out[..n].try_into().map_err(|_| Error::InvalidSid {
        reason: "does not decode to 8 bytes",
    })?;
    match u64::from_be_bytes(bytes) {
        0 => Err(Error::InvalidSid {
            reason: "sid must not be 0",
        }),
        sid => Ok(sid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example() {
        assert_eq!(encode_sid(0x0000_0B3A_73CE_2FF2), "AAALOnPOL_I");
        assert_eq!(decode_sid("AAALOnPOL_I").unwrap(), 0x0000_0B3A_73CE_2FF2);
        assert!(decode_sid("AAALOnPOL_J").is_err());
    }
}
