//! XSalsa20-Poly1305 (NaCl secretbox), detached, in place. RustCrypto by default; libsodium
//! (vectorised Salsa20, about 2.5× faster on these machines) with the `libsodium` feature.
//! Both are tested against the same vectors.

/// Tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Which implementation seals and opens boxes in this build.
pub const BACKEND: &str = if cfg!(feature = "libsodium") {
    "libsodium"
} else {
    "RustCrypto crypto_secretbox"
};

#[cfg(not(feature = "libsodium"))]
mod imp {
    use crypto_secretbox::aead::AeadInPlace;
    use crypto_secretbox::{KeyInit, XSalsa20Poly1305};

    use super::TAG_LEN;

    /// A secretbox key, wiped on drop.
    #[derive(Clone)]
    pub(crate) struct BoxKey(XSalsa20Poly1305);

    impl BoxKey {
        pub(crate) fn new(key: &[u8; 32]) -> Self {
            BoxKey(XSalsa20Poly1305::new(key.into()))
        }

        /// Encrypts `buf` in place and returns the tag.
        pub(crate) fn seal(&self, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; TAG_LEN] {
            match self.0.encrypt_in_place_detached(nonce.into(), b"", buf) {
                Ok(tag) => tag.into(),
                // Only non-empty associated data fails, and there is none.
                Err(_) => unreachable!("secretbox sealing without associated data cannot fail"),
            }
        }

        /// Checks the tag and decrypts `buf` in place; on failure `buf` is left as it was.
        pub(crate) fn open(&self, nonce: &[u8; 24], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
            self.0
                .decrypt_in_place_detached(nonce.into(), b"", buf, tag.into())
                .is_ok()
        }
    }
}

#[cfg(feature = "libsodium")]
mod imp {
    //! libsodium through `libsodium-rs` (built from the libsodium source it bundles). Its
    //! safe API has no detached XSalsa20-Poly1305, so each call goes through one combined
    //! buffer; the copy costs a few per cent at 4 KiB (see `keyline bench shs`).
    use libsodium_rs::crypto_secretbox::{Key, Nonce, open, seal};

    use super::TAG_LEN;

    /// A secretbox key.
    #[derive(Clone)]
    pub(crate) struct BoxKey(std::sync::Arc<Key>);

    impl BoxKey {
        pub(crate) fn new(key: &[u8; 32]) -> Self {
            if libsodium_rs::ensure_init().is_err() {
                panic!("libsodium failed to initialise");
            }
            BoxKey(std::sync::Arc::new(Key::from(*key)))
        }

        pub(crate) fn seal(&self, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; TAG_LEN] {
            let sealed = seal(buf, &Nonce::from(*nonce), &self.0);
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&sealed[..TAG_LEN]);
            buf.copy_from_slice(&sealed[TAG_LEN..]);
            tag
        }

        pub(crate) fn open(&self, nonce: &[u8; 24], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
            let mut boxed = Vec::with_capacity(TAG_LEN + buf.len());
            boxed.extend_from_slice(tag);
            boxed.extend_from_slice(buf);
            match open(&boxed, &Nonce::from(*nonce), &self.0) {
                Ok(plain) => {
                    buf.copy_from_slice(&plain);
                    true
                }
                Err(_) => false,
            }
        }
    }
}

pub(crate) use imp::BoxKey;

/// `seal(k, n, m)` as one buffer `tag | ciphertext`.
pub(crate) fn seal_combined(key: &BoxKey, nonce: &[u8; 24], plaintext: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), TAG_LEN + plaintext.len());
    let (tag_out, body) = out.split_at_mut(TAG_LEN);
    body.copy_from_slice(plaintext);
    tag_out.copy_from_slice(&key.seal(nonce, body));
}

/// `open(k, n, c)` of a `tag | ciphertext` buffer into `out` (plaintext length).
pub(crate) fn open_combined(key: &BoxKey, nonce: &[u8; 24], boxed: &[u8], out: &mut [u8]) -> bool {
    if boxed.len() != TAG_LEN + out.len() {
        return false;
    }
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&boxed[..TAG_LEN]);
    out.copy_from_slice(&boxed[TAG_LEN..]);
    key.open(nonce, out, &tag)
}
