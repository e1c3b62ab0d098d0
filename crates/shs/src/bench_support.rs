//! The raw secretbox of this build's backend, for `keyline bench` to measure the bound that
//! box-stream and the handshake are held to. Not a stable API.

use crate::proto::secretbox::BoxKey;

/// Which secretbox implementation this build uses.
pub use crate::proto::secretbox::BACKEND;

/// A raw XSalsa20-Poly1305 key of the backend in use.
#[derive(Clone)]
pub struct RawBox(BoxKey);

impl RawBox {
    /// A key.
    pub fn new(key: &[u8; 32]) -> Self {
        RawBox(BoxKey::new(key))
    }

    /// Seals `buf` in place, returns the tag.
    pub fn seal(&self, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; 16] {
        self.0.seal(nonce, buf)
    }

    /// Opens `buf` in place.
    pub fn open(&self, nonce: &[u8; 24], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        self.0.open(nonce, buf, tag)
    }
}

impl std::fmt::Debug for RawBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawBox(..)")
    }
}
