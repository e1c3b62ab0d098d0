//! The server (responder) side: checks msg1 and msg3, asks to authorize, sends msg2 and msg4
//! (spec §6).

use std::fmt;

use ed25519_dalek::{Signature, Signer, VerifyingKey};

use super::client::split_hello;
use super::{OutcomeInputs, client_signed_message, hello, outcome, server_signed_message};
use crate::error::{Error, PeerError, Refusal, Result, Step};
use crate::keys::{EphemeralKey, Keypair, NetworkKey, PublicKey};
use crate::limits::{MSG1_LEN, MSG2_LEN, MSG3_LEN, MSG4_LEN};
use crate::proto::crypto::{Secret32, ZERO_NONCE, dh, hash, hmac_verify};
use crate::proto::outcome::HandshakeOutcome;
use crate::proto::secretbox::{BoxKey, open_combined, seal_combined};
use zeroize::Zeroizing;

/// A server handshake waiting for msg1.
pub struct ServerHandshake {
    network: NetworkKey,
    me: Keypair,
    ephemeral: EphemeralKey,
}

impl ServerHandshake {
    /// Prepares a handshake for one incoming connection with a fresh ephemeral key.
    pub fn new(network: NetworkKey, me: Keypair, ephemeral: EphemeralKey) -> Self {
        ServerHandshake {
            network,
            me,
            ephemeral,
        }
    }

    /// Checks msg1 and produces msg2 (64 bytes). Fails with `hmac` or `low_order_ephemeral`,
    /// in which case nothing must be sent.
    pub fn read_hello(self, msg1: &[u8; MSG1_LEN]) -> Result<([u8; MSG2_LEN], ServerAwaitingAuth)> {
        let fail = |kind| Error::peer(Step::Msg1, kind);
        let (client_hello_mac, client_ephemeral) = split_hello(msg1);
        if !hmac_verify(&self.network, &client_ephemeral, &client_hello_mac) {
            return Err(fail(PeerError::BadHmac));
        }
        let ab = dh(self.ephemeral.secret(), &client_ephemeral)
            .ok_or(fail(PeerError::LowOrderEphemeral))?;
        let ab_hash = hash(&[&ab[..]]);
        let msg2 = hello(&self.network, self.ephemeral.public());
        let mut server_hello_mac = [0u8; 32];
        server_hello_mac.copy_from_slice(&msg2[..32]);
        let next = ServerAwaitingAuth {
            start: self,
            client_ephemeral,
            client_hello_mac,
            server_hello_mac,
            ab,
            ab_hash,
        };
        Ok((msg2, next))
    }
}

/// msg2 is sent; waiting for msg3.
pub struct ServerAwaitingAuth {
    start: ServerHandshake,
    client_ephemeral: [u8; 32],
    client_hello_mac: [u8; 32],
    server_hello_mac: [u8; 32],
    ab: Secret32,
    ab_hash: Secret32,
}

impl ServerAwaitingAuth {
    /// Opens msg3 and verifies the client's signature with the key found inside it. Fails
    /// with `box_open`, `signature` or `invalid_client_key`; then nothing more must be sent.
    pub fn read_auth(self, msg3: &[u8; MSG3_LEN]) -> Result<ServerAuthorizing> {
        let fail = |kind| Error::peer(Step::Msg3, kind);
        let ServerAwaitingAuth {
            start,
            client_ephemeral,
            client_hello_mac,
            server_hello_mac,
            ab,
            ab_hash,
        } = self;
        let network = start.network;
        let a_b = dh(&start.me.curve25519_secret(), &client_ephemeral)
            .ok_or(fail(PeerError::LowOrderEphemeral))?;
        let k3 = hash(&[&network.0, &ab[..], &a_b[..]]);
        let mut plaintext = Zeroizing::new([0u8; 96]);
        if !open_combined(&BoxKey::new(&k3), &ZERO_NONCE, msg3, &mut plaintext[..]) {
            return Err(fail(PeerError::BoxOpen));
        }
        let mut sig_a = [0u8; 64];
        sig_a.copy_from_slice(&plaintext[..64]);
        let mut client_key = [0u8; 32];
        client_key.copy_from_slice(&plaintext[64..]);

        let signed = client_signed_message(&network, start.me.public().as_bytes(), &ab_hash);
        VerifyingKey::from_bytes(&client_key)
            .and_then(|key| key.verify_strict(&signed, &Signature::from_bytes(&sig_a)))
            .map_err(|_| fail(PeerError::BadSignature))?;
        let client =
            PublicKey::from_bytes(&client_key).map_err(|_| fail(PeerError::InvalidClientKey))?;
        let big_a_b = dh(start.ephemeral.secret(), client.curve25519())
            .ok_or(fail(PeerError::InvalidClientKey))?;
        let k4 = hash(&[&network.0, &ab[..], &a_b[..], &big_a_b[..]]);
        Ok(ServerAuthorizing {
            network,
            me: start.me,
            client,
            sig_a,
            ab_hash,
            k4,
            client_hello_mac,
            server_hello_mac,
        })
    }
}

#[cfg(test)]
impl ServerAwaitingAuth {
    /// `(ab, H_ab)`, for the vector tests only.
    pub(super) fn trace_ab(&self) -> (&Secret32, &Secret32) {
        (&self.ab, &self.ab_hash)
    }
}

/// msg3 is verified; the application decides whether to accept [`Self::client`].
pub struct ServerAuthorizing {
    network: NetworkKey,
    me: Keypair,
    client: PublicKey,
    sig_a: [u8; 64],
    ab_hash: Secret32,
    k4: Secret32,
    client_hello_mac: [u8; 32],
    server_hello_mac: [u8; 32],
}

impl ServerAuthorizing {
    /// The client's verified long-term key, to authorize.
    pub fn client(&self) -> &PublicKey {
        &self.client
    }

    /// Accepts the client: produces msg4 (80 bytes) and the outcome.
    pub fn accept(self) -> ([u8; MSG4_LEN], HandshakeOutcome) {
        let signed = server_signed_message(
            &self.network,
            &self.sig_a,
            self.client.as_bytes(),
            &self.ab_hash,
        );
        let sig_b = self.me.signing_key().sign(&signed).to_bytes();
        let mut msg4 = [0u8; MSG4_LEN];
        seal_combined(&BoxKey::new(&self.k4), &ZERO_NONCE, &sig_b, &mut msg4);
        let result = outcome(
            OutcomeInputs {
                k4: &self.k4,
                client: &self.client,
                server: self.me.public(),
                client_hello_mac: &self.client_hello_mac,
                server_hello_mac: &self.server_hello_mac,
            },
            false,
        );
        (msg4, result)
    }

    /// Denies the client: wipes the state and returns the `unauthorized` error. Nothing
    /// must be sent.
    pub fn deny(self) -> Error {
        Error::Refused {
            step: Step::Authorize,
            reason: Refusal::Unauthorized,
        }
    }
}

#[cfg(test)]
impl ServerAuthorizing {
    /// `(sig_A, H_ab, K4)`, for the vector tests only.
    pub(super) fn trace(&self) -> (&[u8; 64], &Secret32, &Secret32) {
        (&self.sig_a, &self.ab_hash, &self.k4)
    }
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("me", self.me.public())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ServerAwaitingAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAwaitingAuth").finish_non_exhaustive()
    }
}

impl fmt::Debug for ServerAuthorizing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAuthorizing")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}
