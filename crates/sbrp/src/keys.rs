//! Fresh X25519 ephemeral keys, the only place this crate reads the OS random number
//! generator (the sans-IO core in [`crate::proto`] takes the keys as inputs).

use std::fmt;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// An X25519 ephemeral key pair for one handshake; the secret is zeroized on drop.
pub struct EphemeralKey {
    pub(crate) secret: StaticSecret,
    public: [u8; 32],
}

impl EphemeralKey {
    /// A fresh key from the OS random number generator.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(Error::Rng)?;
        Ok(Self::from_secret(*bytes))
    }

    /// An injected private key (test vectors). Never reuse one across handshakes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}
