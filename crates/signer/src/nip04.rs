//! NIP-04 (legacy, spec §5): AES-256-CBC with PKCS#7 padding under the **unhashed** 32-byte
//! ECDH x coordinate ([`SharedX`]), as `base64(ciphertext) + "?iv=" + base64(iv)`.
//!
//! Used by `nip04_encrypt`/`nip04_decrypt` (user key, threshold ECDH) and the legacy NIP-46
//! transport (transport key). There is no MAC: every decryption failure — format, base64, IV
//! length, ciphertext length, padding, UTF-8 — is the one [`Error::Nip04DecryptionFailed`], and
//! the padding is checked in constant time after decrypting every block (padding-oracle
//! hygiene). Input is bounded ([`MAX_NIP04_PAYLOAD`] before decoding, [`MAX_NIP04_PLAINTEXT`]
//! to encrypt). The IV is an input ([`encrypt`]) or drawn from a [`SignerRng`]
//! ([`encrypt_with_rng`]).

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use subtle::{Choice, ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

use crate::ecdh::SharedX;
use crate::limits::{MAX_NIP04_PAYLOAD, MAX_NIP04_PLAINTEXT};
use crate::{Error, Result, SignerRng};

/// The separator between ciphertext and IV.
pub const IV_SEPARATOR: &str = "?iv=";

/// AES block size and IV length.
const BLOCK: usize = 16;

/// Encrypts `plaintext` under the shared x with the given 16-byte `iv` (fresh and random
/// outside tests: use [`encrypt_with_rng`]). [`Error::TooLarge`] above
/// [`MAX_NIP04_PLAINTEXT`] bytes.
pub fn encrypt(shared: &SharedX, plaintext: &str, iv: &[u8; 16]) -> Result<String> {
    if plaintext.len() > MAX_NIP04_PLAINTEXT {
        return Err(Error::TooLarge {
            what: "NIP-04 plaintext",
            len: plaintext.len(),
            max: MAX_NIP04_PLAINTEXT,
        });
    }
    let ciphertext = cbc::Encryptor::<Aes256>::new(shared.as_bytes().into(), iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext.as_bytes());
    let mut out = STANDARD.encode(&ciphertext);
    out.push_str(IV_SEPARATOR);
    out.push_str(&STANDARD.encode(iv));
    Ok(out)
}

/// [`encrypt`] with a fresh random IV from `rng`.
pub fn encrypt_with_rng(
    shared: &SharedX,
    plaintext: &str,
    rng: &mut impl SignerRng,
) -> Result<String> {
    let mut iv = [0u8; BLOCK];
    rng.fill_bytes(&mut iv);
    encrypt(shared, plaintext, &iv)
}

/// Decrypts `base64(ct)?iv=base64(iv)`: split at the last `?iv=`, both halves strict base64,
/// IV exactly 16 bytes, ciphertext a non-zero multiple of 16 bytes, PKCS#7 padding valid,
/// UTF-8 valid. Any failure is [`Error::Nip04DecryptionFailed`]; content longer than
/// [`MAX_NIP04_PAYLOAD`] is [`Error::TooLarge`] (refused before decoding).
pub fn decrypt(shared: &SharedX, content: &str) -> Result<String> {
    if content.len() > MAX_NIP04_PAYLOAD {
        return Err(Error::TooLarge {
            what: "NIP-04 content",
            len: content.len(),
            max: MAX_NIP04_PAYLOAD,
        });
    }
    let failed = |_| Error::Nip04DecryptionFailed;
    let (ct_b64, iv_b64) = content
        .rsplit_once(IV_SEPARATOR)
        .ok_or(Error::Nip04DecryptionFailed)?;
    // 16 bytes are exactly 24 base64 characters with padding.
    if iv_b64.len() != 24 {
        return Err(Error::Nip04DecryptionFailed);
    }
    let iv: [u8; BLOCK] = STANDARD
        .decode(iv_b64)
        .map_err(failed)?
        .try_into()
        .map_err(|_| Error::Nip04DecryptionFailed)?;
    let mut buf = Zeroizing::new(STANDARD.decode(ct_b64).map_err(failed)?);
    if buf.is_empty() || buf.len() % BLOCK != 0 {
        return Err(Error::Nip04DecryptionFailed);
    }
    let total = buf.len();
    cbc::Decryptor::<Aes256>::new(shared.as_bytes().into(), (&iv).into())
        .decrypt_padded::<NoPadding>(&mut buf)
        .map_err(|_| Error::Nip04DecryptionFailed)?;
    let pad = pkcs7_pad_len(&buf[total - BLOCK..]).ok_or(Error::Nip04DecryptionFailed)?;
    buf.truncate(total - pad);
    let text = std::str::from_utf8(&buf).map_err(|_| Error::Nip04DecryptionFailed)?;
    Ok(text.to_owned())
}

/// The PKCS#7 padding length of the last block, checked in constant time over all 16 bytes.
fn pkcs7_pad_len(last: &[u8]) -> Option<usize> {
    let mut block = [0u8; BLOCK];
    block.copy_from_slice(last);
    let pad = block[BLOCK - 1];
    // 1 ≤ pad ≤ 16.
    let mut ok: Choice = !pad.ct_eq(&0) & pad.ct_lt(&(BLOCK as u8 + 1));
    for (i, byte) in block.iter().rev().enumerate() {
        let in_pad = (i as u8).ct_lt(&pad);
        ok &= !in_pad | byte.ct_eq(&pad);
    }
    if bool::from(ok) {
        Some(usize::from(pad))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs7_checks() {
        let mut block = [0u8; 16];
        block[15] = 1;
        assert_eq!(pkcs7_pad_len(&block), Some(1));
        assert_eq!(pkcs7_pad_len(&[16u8; 16]), Some(16));
        assert_eq!(pkcs7_pad_len(&[0u8; 16]), None);
        assert_eq!(pkcs7_pad_len(&[17u8; 16]), None);
        let mut block = [3u8; 16];
        block[13] = 2;
        assert_eq!(pkcs7_pad_len(&block), None);
        block[13] = 3;
        assert_eq!(pkcs7_pad_len(&block), Some(3));
    }
}
