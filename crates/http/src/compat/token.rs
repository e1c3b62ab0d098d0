//! Decoding of the legacy token and `data` strings (A.2, A.3, A.10 steps 1–3).

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use k256::ecdsa::{Signature, VerifyingKey};
use k256::elliptic_curve::scalar::IsHigh;

use crate::error::{LegacyFailure, Result};
use crate::limits::{
    LEGACY_MAX_SIGNATURE_BYTES, LEGACY_MIN_SIGNATURE_BYTES, MAX_LEGACY_TOKEN_CHARS,
};

/// base64url, no padding accepted, non-zero trailing bits ignored (as v1.1.10 decodes).
/// A length of 1 mod 4 (six bits that make no byte) is still refused: no v1.1.10 encoder
/// produces one.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Whether `value` matches `^[A-Za-z0-9_-]+$` (the v1.1.10 character check for the token and
/// `data`).
pub fn is_base64url(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Decodes base64url as v1.1.10 does: `^[A-Za-z0-9_-]+$`, no padding, trailing bits ignored.
/// `None` if it does not decode.
pub fn decode_base64url(value: &str) -> Option<Vec<u8>> {
    if !is_base64url(value) {
        return None;
    }
    LENIENT.decode(value).ok()
}

/// base64url without padding (canonical), as v1.1.10 encodes.
pub fn encode_base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A decoded legacy token (`authorization` value): a valid compressed public key and the raw
/// signature bytes, not yet parsed (A.10 steps 1–2).
#[derive(Clone)]
pub struct LegacyToken {
    key: [u8; 33],
    verifying_key: VerifyingKey,
    signature: Vec<u8>,
}

impl std::fmt::Debug for LegacyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyToken")
            .field("key", &hex::encode(self.key))
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

impl LegacyToken {
    /// Steps 1–2: at most [`MAX_LEGACY_TOKEN_CHARS`] characters of base64url (lenient), a
    /// decoded length in `33 + 8 ..= 33 + 72`, and a SEC1 compressed point (`02`/`03`) first.
    pub fn parse(value: &str) -> Result<Self> {
        if value.len() > MAX_LEGACY_TOKEN_CHARS {
            return Err(LegacyFailure::Token.into());
        }
        let bytes = decode_base64url(value).ok_or(LegacyFailure::Token)?;
        let sig_len = bytes.len().saturating_sub(33);
        if bytes.len() < 33
            || !(LEGACY_MIN_SIGNATURE_BYTES..=LEGACY_MAX_SIGNATURE_BYTES).contains(&sig_len)
        {
            return Err(LegacyFailure::Token.into());
        }
        let (key, signature) = bytes.split_at(33);
        let key: [u8; 33] = key.try_into().map_err(|_| LegacyFailure::Token)?;
        if !matches!(key[0], 0x02 | 0x03) {
            return Err(LegacyFailure::PublicKey.into());
        }
        let verifying_key =
            VerifyingKey::from_sec1_bytes(&key).map_err(|_| LegacyFailure::PublicKey)?;
        Ok(Self {
            key,
            verifying_key,
            signature: signature.to_vec(),
        })
    }

    /// The 33-byte compressed public key: the peer's identity.
    pub fn key(&self) -> &[u8; 33] {
        &self.key
    }

    /// The key as an ECDSA verifying key (and ECDH peer point).
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    /// The signature bytes as sent.
    pub fn signature_bytes(&self) -> &[u8] {
        &self.signature
    }

    /// Step 3: strict DER, else exactly 64 bytes of `r ‖ s`; `r`, `s` in `[1, n)`; low S.
    pub fn signature(&self) -> Result<Signature> {
        parse_signature(&self.signature)
    }
}

/// Step 3 on its own: strict DER (minimal integers and lengths, nothing trailing), else
/// exactly 64 bytes of `r ‖ s`; `r` and `s` in `[1, n)`; high S refused.
pub fn parse_signature(bytes: &[u8]) -> Result<Signature> {
    let signature = match Signature::from_der(bytes) {
        Ok(signature) => signature,
        Err(_) if bytes.len() == 64 => {
            Signature::from_slice(bytes).map_err(|_| LegacyFailure::SignatureEncoding)?
        }
        Err(_) => return Err(LegacyFailure::SignatureEncoding.into()),
    };
    if bool::from(signature.s().is_high()) {
        return Err(LegacyFailure::HighS.into());
    }
    Ok(signature)
}
