//! The client (initiator) side: sends msg1 and msg3, checks msg2 and msg4 (spec §5).

use std::fmt;

use ed25519_dalek::{Signature, Signer};
use zeroize::Zeroizing;

use super::{OutcomeInputs, client_signed_message, hello, outcome, server_signed_message};
use crate::error::{Error, InvalidInput, PeerError, Result, Step};
use crate::keys::{EphemeralKey, Keypair, NetworkKey, PublicKey};
use crate::limits::{MSG2_LEN, MSG3_LEN, MSG4_LEN};
use crate::proto::crypto::{Secret32, ZERO_NONCE, dh, hash, hmac_verify};
use crate::proto::outcome::HandshakeOutcome;
use crate::proto::secretbox::{BoxKey, open_combined, seal_combined};

/// A client handshake that has not started: holds the keys, sends msg1 first.
pub struct ClientHandshake {
    network: NetworkKey,
    me: Keypair,
    server: PublicKey,
    ephemeral: EphemeralKey,
}

impl ClientHandshake {
    /// Prepares a handshake with the server whose Ed25519 key is `server_key`. An unusable
    /// server key is refused here, before anything is sent.
    pub fn new(
        network: NetworkKey,
        me: Keypair,
        server_key: &[u8; 32],
        ephemeral: EphemeralKey,
    ) -> Result<Self> {
        let server = PublicKey::from_bytes(server_key)
            .map_err(|why| Error::InvalidInput(InvalidInput::ServerKey(why)))?;
        Ok(ClientHandshake {
            network,
            me,
            server,
            ephemeral,
        })
    }

    /// Produces msg1 (64 bytes).
    pub fn hello(self) -> ([u8; 64], ClientAwaitingHello) {
        let msg1 = hello(&self.network, self.ephemeral.public());
        let mut client_hello_mac = [0u8; 32];
        client_hello_mac.copy_from_slice(&msg1[..32]);
        (
            msg1,
            ClientAwaitingHello {
                start: self,
                client_hello_mac,
            },
        )
    }
}

/// msg1 is sent; waiting for msg2.
pub struct ClientAwaitingHello {
    start: ClientHandshake,
    client_hello_mac: [u8; 32],
}

impl ClientAwaitingHello {
    /// Checks msg2 and produces msg3 (112 bytes). Fails with `hmac` or `low_order_ephemeral`.
    pub fn read_hello(
        self,
        msg2: &[u8; MSG2_LEN],
    ) -> Result<([u8; MSG3_LEN], ClientAwaitingAccept)> {
        let ClientHandshake {
            network,
            me,
            server,
            ephemeral,
        } = self.start;
        let fail = |kind| Error::peer(Step::Msg2, kind);
        let (mac, server_ephemeral) = split_hello(msg2);
        if !hmac_verify(&network, &server_ephemeral, &mac) {
            return Err(fail(PeerError::BadHmac));
        }
        let ab =
            dh(ephemeral.secret(), &server_ephemeral).ok_or(fail(PeerError::LowOrderEphemeral))?;
        let ab_hash = hash(&[&ab[..]]);
        let a_b = dh(ephemeral.secret(), server.curve25519()).ok_or(Error::InvalidInput(
            InvalidInput::ServerKey("a point of small order"),
        ))?;
        let k3 = hash(&[&network.0, &ab[..], &a_b[..]]);
        let sig_a = me
            .signing_key()
            .sign(&client_signed_message(
                &network,
                server.as_bytes(),
                &ab_hash,
            ))
            .to_bytes();
        let big_a_b = dh(&me.curve25519_secret(), &server_ephemeral)
            .ok_or(fail(PeerError::LowOrderEphemeral))?;
        let k4 = hash(&[&network.0, &ab[..], &a_b[..], &big_a_b[..]]);

        let mut plaintext = Zeroizing::new([0u8; 96]);
        plaintext[..64].copy_from_slice(&sig_a);
        plaintext[64..].copy_from_slice(me.public().as_bytes());
        let mut msg3 = [0u8; MSG3_LEN];
        seal_combined(&BoxKey::new(&k3), &ZERO_NONCE, &plaintext[..], &mut msg3);

        let mut server_hello_mac = [0u8; 32];
        server_hello_mac.copy_from_slice(&mac);
        let next = ClientAwaitingAccept {
            network,
            client: *me.public(),
            server,
            sig_a,
            ab_hash,
            k4,
            client_hello_mac: self.client_hello_mac,
            server_hello_mac,
            #[cfg(test)]
            trace: ClientTrace {
                ab,
                a_b,
                big_a_b,
                k3,
            },
        };
        Ok((msg3, next))
    }
}

/// Splits a hello into its HMAC and ephemeral key.
pub(super) fn split_hello(msg: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut mac = [0u8; 32];
    let mut key = [0u8; 32];
    mac.copy_from_slice(&msg[..32]);
    key.copy_from_slice(&msg[32..]);
    (mac, key)
}

/// Intermediate values kept for the vector tests only.
#[cfg(test)]
pub(crate) struct ClientTrace {
    pub(crate) ab: Secret32,
    pub(crate) a_b: Secret32,
    pub(crate) big_a_b: Secret32,
    pub(crate) k3: Secret32,
}

/// msg3 is sent; waiting for msg4.
pub struct ClientAwaitingAccept {
    network: NetworkKey,
    client: PublicKey,
    server: PublicKey,
    pub(crate) sig_a: [u8; 64],
    pub(crate) ab_hash: Secret32,
    pub(crate) k4: Secret32,
    client_hello_mac: [u8; 32],
    server_hello_mac: [u8; 32],
    #[cfg(test)]
    pub(crate) trace: ClientTrace,
}

impl ClientAwaitingAccept {
    /// Checks msg4 and finishes. Fails with `box_open` or `signature`.
    pub fn read_accept(self, msg4: &[u8; MSG4_LEN]) -> Result<HandshakeOutcome> {
        let fail = |kind| Error::peer(Step::Msg4, kind);
        let mut sig_b = [0u8; 64];
        if !open_combined(&BoxKey::new(&self.k4), &ZERO_NONCE, msg4, &mut sig_b) {
            return Err(fail(PeerError::BoxOpen));
        }
        let signed = server_signed_message(
            &self.network,
            &self.sig_a,
            self.client.as_bytes(),
            &self.ab_hash,
        );
        let verifying = self
            .server
            .verifying_key()
            .map_err(|_| fail(PeerError::BadSignature))?;
        verifying
            .verify_strict(&signed, &Signature::from_bytes(&sig_b))
            .map_err(|_| fail(PeerError::BadSignature))?;
        Ok(outcome(
            OutcomeInputs {
                k4: &self.k4,
                client: &self.client,
                server: &self.server,
                client_hello_mac: &self.client_hello_mac,
                server_hello_mac: &self.server_hello_mac,
            },
            true,
        ))
    }

    /// The server key this handshake authenticates.
    pub fn server(&self) -> &PublicKey {
        &self.server
    }
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientAwaitingHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAwaitingHello")
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientAwaitingAccept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAwaitingAccept")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}
