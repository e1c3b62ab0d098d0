//! The four-message handshake as typestates (spec §4–§8). No I/O: each state takes the
//! peer's message and returns the next message to send and the next state, so sending out of
//! order cannot be written. Secrets are wiped when a state is dropped, on success or failure.
//!
//! Client: [`ClientHandshake::hello`] → [`ClientAwaitingHello::read_hello`] →
//! [`ClientAwaitingAccept::read_accept`] → [`HandshakeOutcome`].
//!
//! Server: [`ServerHandshake::read_hello`] → [`ServerAwaitingAuth::read_auth`] →
//! [`ServerAuthorizing::accept`] (or [`ServerAuthorizing::deny`]).
//!
//! [`HandshakeOutcome`]: crate::proto::HandshakeOutcome

mod client;
mod server;
#[cfg(test)]
mod tests;

pub use client::{ClientAwaitingAccept, ClientAwaitingHello, ClientHandshake};
pub use server::{ServerAuthorizing, ServerAwaitingAuth, ServerHandshake};

use crate::keys::{NetworkKey, PublicKey};
use crate::proto::crypto::{Secret32, hash, hmac};
use crate::proto::outcome::{DirectionKeys, HandshakeOutcome};

/// `hmac(N, eph_pub) | eph_pub`: msg1 or msg2.
fn hello(network: &NetworkKey, ephemeral_public: &[u8; 32]) -> [u8; 64] {
    let mut msg = [0u8; 64];
    msg[..32].copy_from_slice(&hmac(network, ephemeral_public));
    msg[32..].copy_from_slice(ephemeral_public);
    msg
}

/// `N | B_pub | H_ab` (96 bytes): what the client signs.
fn client_signed_message(network: &NetworkKey, server: &[u8; 32], ab_hash: &[u8; 32]) -> [u8; 96] {
    let mut msg = [0u8; 96];
    msg[..32].copy_from_slice(&network.0);
    msg[32..64].copy_from_slice(server);
    msg[64..].copy_from_slice(ab_hash);
    msg
}

/// `N | sig_A | A_pub | H_ab`: what the server signs.
fn server_signed_message(
    network: &NetworkKey,
    sig_a: &[u8; 64],
    client: &[u8; 32],
    ab_hash: &[u8; 32],
) -> [u8; 160] {
    let mut msg = [0u8; 160];
    msg[..32].copy_from_slice(&network.0);
    msg[32..96].copy_from_slice(sig_a);
    msg[96..128].copy_from_slice(client);
    msg[128..].copy_from_slice(ab_hash);
    msg
}

/// The secrets both sides hold once the outcome is known: K4, the nonces' sources and the
/// two long-term keys. Turned into the outcome by [`outcome`].
struct OutcomeInputs<'a> {
    k4: &'a Secret32,
    client: &'a PublicKey,
    server: &'a PublicKey,
    /// `hmac(N, a_pub)`, the first half of msg1.
    client_hello_mac: &'a [u8; 32],
    /// `hmac(N, b_pub)`, the first half of msg2.
    server_hello_mac: &'a [u8; 32],
}

/// Spec §7. Each direction's key and nonce come from the recipient's keys.
fn outcome(inputs: OutcomeInputs<'_>, is_client: bool) -> HandshakeOutcome {
    let shared = hash(&[&inputs.k4[..]]);
    let to_server = DirectionKeys {
        key: hash(&[&shared[..], inputs.server.as_bytes()]),
        nonce: first_24(inputs.server_hello_mac),
    };
    let to_client = DirectionKeys {
        key: hash(&[&shared[..], inputs.client.as_bytes()]),
        nonce: first_24(inputs.client_hello_mac),
    };
    if is_client {
        HandshakeOutcome {
            peer: *inputs.server,
            send: to_server,
            recv: to_client,
        }
    } else {
        HandshakeOutcome {
            peer: *inputs.client,
            send: to_client,
            recv: to_server,
        }
    }
}

fn first_24(mac: &[u8; 32]) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&mac[..24]);
    nonce
}
