//! The result of a finished handshake: the peer's key and one (key, nonce) pair per direction.

use std::fmt;

use zeroize::Zeroizing;

use crate::keys::PublicKey;
use crate::proto::boxstream::{BoxDecoder, BoxEncoder};

/// The key and starting nonce of one box-stream direction.
#[derive(Clone)]
pub struct DirectionKeys {
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) nonce: [u8; 24],
}

impl DirectionKeys {
    /// Keys for one direction (tests, and peers whose handshake ran elsewhere).
    pub fn new(key: [u8; 32], nonce: [u8; 24]) -> Self {
        DirectionKeys {
            key: Zeroizing::new(key),
            nonce,
        }
    }

    /// The XSalsa20-Poly1305 key.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The starting nonce (a big-endian 192-bit counter).
    pub fn nonce(&self) -> &[u8; 24] {
        &self.nonce
    }
}

impl fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirectionKeys(..)")
    }
}

/// What both sides know after a successful handshake (spec §7). Keys are wiped on drop.
pub struct HandshakeOutcome {
    pub(crate) peer: PublicKey,
    pub(crate) send: DirectionKeys,
    pub(crate) recv: DirectionKeys,
}

impl HandshakeOutcome {
    /// The peer's verified long-term key.
    pub fn peer(&self) -> &PublicKey {
        &self.peer
    }

    /// Keys for what this side sends (JS `encryptKey`/`encryptNonce`).
    pub fn send(&self) -> &DirectionKeys {
        &self.send
    }

    /// Keys for what this side receives (JS `decryptKey`/`decryptNonce`).
    pub fn recv(&self) -> &DirectionKeys {
        &self.recv
    }

    /// `encrypt_key | encrypt_nonce | decrypt_key | decrypt_nonce`: what an `shs1-test`
    /// executable writes after the handshake.
    pub fn shs1_test_bytes(&self) -> Zeroizing<[u8; 112]> {
        let mut out = Zeroizing::new([0u8; 112]);
        out[..32].copy_from_slice(&self.send.key[..]);
        out[32..56].copy_from_slice(&self.send.nonce);
        out[56..88].copy_from_slice(&self.recv.key[..]);
        out[88..].copy_from_slice(&self.recv.nonce);
        out
    }

    /// The box-stream encoder for sending and decoder for receiving.
    pub fn into_codec(self) -> (BoxEncoder, BoxDecoder) {
        (BoxEncoder::new(&self.send), BoxDecoder::new(&self.recv))
    }
}

impl fmt::Debug for HandshakeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeOutcome")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}
