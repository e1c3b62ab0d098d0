//! # keyline-signer: the threshold signing engine
//!
//! The in-process FROST engine of keyline's NIP-46 bunker (spec `signer.md` §6–§8): a Nostr
//! key held only as shares, any t of n share holders ("nodes") producing ordinary 64-byte
//! BIP340 signatures under the user's npub and the ECDH secrets NIP-44/NIP-04 need, without
//! the key ever being reassembled. Ciphersuite `FROST-secp256k1-SHA256-TR-v1`
//! (`frost-secp256k1-tr` 3).
//!
//! The engine is pure functions over keys and packages, with the RNG passed in and no I/O,
//! clock or state between calls. On top of it, [`wire`] is the framed coordinator ↔ node
//! protocol (spec §8.3) and [`session`] the sans-IO signing and ECDH state machines (time is an
//! input, deadlines from [`limits`]); [`ceremony`] and [`node_ceremony`] the two sides of key
//! ceremonies; [`node`] the share holder's request handling with its own policy checks;
//! [`net`] the tokio links over keyline-shs; [`store`] and [`envelope`] persistence with
//! shares sealed under a key-encryption key (file or PKCS#11).
//!
//! | module | who | what |
//! |---|---|---|
//! | [`dkg`] | nodes | distributed key generation, all three parts; npub = x-only **tweaked** key |
//! | [`import`] | dealer, nodes | split an existing nsec (npub unchanged, buffer wiped); nodes check their share |
//! | [`sign`] | nodes, coordinator | round 1 commit, round 2 sign (nonces consumed), aggregate with cheater detection |
//! | [`ecdh`] | nodes, coordinator | threshold ECDH: partial points with DLEQ proofs, Lagrange combination |
//! | [`refresh`] | nodes | new shares, same key; old shares stop combining with new ones |
//! | [`repair`] | nodes | rebuild a lost share with t helpers |
//! | [`recover`] | export tool | reconstruct the secret from t shares, checked against the npub |
//! | [`local`] | tests, benches | every party in one process |
//! | [`keys`] | all | [`NodeShare`], [`PublicKeyPackage`], [`GroupKey`]; how the npub relates to tweak and parity |
//! | [`bip340`] | all | the BIP340 verification every aggregate passes |
//! | [`wire`] | nodes, coordinator | the coordinator ↔ node frames (spec §8.3), strict decoding |
//! | [`ceremony`] | coordinator | sans-IO DKG/refresh/import [`ceremony::DkgSession`]: echo round, signature checks, deadlines, equivocation, key confirmation |
//! | [`node_ceremony`] | nodes | sans-IO DKG/refresh/import machine: author and echo signatures, HPKE-sealed round-2 packages and dealt shares |
//! | [`descriptor`] | nodes, coordinator | signed node descriptors, [`descriptor::NodeKeys`], HPKE between nodes |
//! | [`node`] | nodes | [`node::NodeCore`]: shares by key, NIP-01 id recomputation and node policy before any nonce |
//! | [`net`] | nodes, coordinator | tokio links over keyline-shs with mutual pins; [`net::coordinator::Coordinator`] drives sessions and ceremonies |
//! | [`store`] | nodes, coordinator | sqlx (SQLite) state: keys, nodes, ceremonies, audit, sealed shares; [`store::ShareVault`] |
//! | [`envelope`] | nodes | AES-256-GCM share envelopes under a file or PKCS#11 key-encryption key |
//! | [`session`] | nodes, coordinator | sans-IO signing: [`session::SignSession`] with failover, [`session::NodeSigner`] |
//! | [`nip44`] | coordinator | NIP-44 v2 (extended lengths): conversation and message keys, padding, encrypt/decrypt |
//! | [`nip04`] | coordinator | legacy NIP-04: AES-256-CBC under the shared x, `?iv=` format, strict decoding |
//! | [`nip46`] | coordinator | NIP-46 codec: requests/responses, transport content, `bunker://`/`nostrconnect://` URIs, `sign_event` |
//! | [`bunker`] | coordinator | the NIP-46 bunker: relay pool, permissions and caps, `auth_url` approvals, operator page, embedded relay |
//!
//! ```
//! use keyline_signer::{local, OsRng};
//! # fn main() -> keyline_signer::Result<()> {
//! let (public, shares) = local::dkg(2, 3, &mut OsRng)?;
//! let event_id = [7u8; 32];
//! let sig = local::sign(&public, &[&shares[0], &shares[2]], &event_id, &mut OsRng)?;
//! keyline_signer::bip340::verify(&public.npub(), &event_id, &sig)?;
//! # Ok(()) }
//! ```
//!
//! ## Threat model
//!
//! Fewer than t nodes learn nothing about the key and cannot sign; a node that sends a bad
//! signature share, ECDH partial, proof of knowledge or secret share is **named** in the error
//! ([`Error::culprits`]) so the coordinator can retry without it. The coordinator holds no
//! share; it sees commitments, signature shares, partial points and public packages, and can
//! deny service. Round-2 packages and dealt shares travel HPKE-sealed between nodes
//! ([`node_ceremony`]; repair is not wired to the wire protocol yet); the broadcast property of
//! DKG round 1 comes from the ceremony's echo round, whose signed transcript hashes expose an
//! equivocating node or a tampering coordinator. Nodes re-check every signing request against
//! the event they are shown and their own policy ([`node`]), so a compromised coordinator
//! obtains only signatures t nodes agree to. Nonces exist only inside [`sign::SigningNonces`], which
//! cannot be copied, serialised or used twice.
//!
//! The bunker ([`bunker`]) talks to clients with a separate transport key (sealed like a
//! share), so relays and clients never drive the user key directly. Relays are untrusted: they
//! see who talks to the bunker and when, can drop or delay messages, but cannot read or forge
//! them; every request is signature-checked, deduplicated and rate-limited before decryption.
//! Clients are trusted only as far as their grants: nothing before `connect` (single-use
//! secret or operator approval), per-kind and per-method allow/deny/ask with expiry and caps,
//! credential-like kinds only when named, 24133 never. The operator page is loopback-only,
//! token-authenticated, CSRF- and DNS-rebinding-hardened; knowing an approval URL grants nothing.
//!
//! ## Defaults and limits
//!
//! See [`limits`]: 2 ≤ t ≤ n ≤ 32, messages up to 1024 bytes, encoded objects up to 16 KiB.
//! Identifiers are the integers `1..=n` ([`ParticipantId`]).
//!
//! ## Non-features
//!
//! * Tapscript tweaks, `sign_with_tweak`/`aggregate_with_tweak`: DKG output is already tweaked;
//!   tweaking again would change the npub.
//! * Dealer-generated new keys: new keys come from DKG; the dealer path is only for importing
//!   an existing nsec.
//! * Changing t or adding participants in a refresh (the FROST scheme keeps t; a subset refresh
//!   removes participants).
//! * Robust signing: FROST aborts if a chosen signer fails; the caller restarts without it.
//! * Persisting nonces or ceremony secrets: they never serialise; a node that restarts
//!   mid-ceremony has lost its part by design and the ceremony is rerun.
//! * An operator-signed node policy document: a node's policy is [`node::NodePolicy`]; per-client
//!   grants live on the coordinator (the bunker).
//! * TLS to relays (`wss://`) inside the bunker's pool: use `ws://` on loopback or a local TLS
//!   terminator; the operator page binds loopback only.
//!
//! ## Security status
//!
//! Not audited. The cryptography is the Zcash Foundation's `frost-secp256k1-tr` 3.0.0 (itself
//! audited in earlier versions); keyline adds the glue, the threshold ECDH with Chaum–Pedersen
//! proofs, and checks the FROST crate leaves to callers (key confirmation, culprits for refresh
//! shares, reconstruct against the npub, canonical decoding). Tested against every `-tr` vector
//! file reproduced byte for byte through this API, the plain suite for parity, the BIP340 and
//! NIP-44 conversation-key vectors, libsecp256k1 as an independent verifier, and property
//! tests. Secrets are zeroized on drop where this crate holds them; copies made inside the
//! curve crates' scalar arithmetic are not.
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bip340;
pub mod bunker;
pub mod ceremony;
mod codec;
pub mod descriptor;
pub mod dkg;

pub mod ecdh;
pub mod envelope;
pub mod error;
mod id;
pub mod import;
pub mod keys;
pub mod limits;
pub mod local;
pub mod net;
pub mod nip04;
pub mod nip44;
pub mod nip46;
pub mod node;
pub mod node_ceremony;
mod point;
pub mod recover;
pub mod refresh;
pub mod repair;
pub mod rng;
pub mod session;
pub mod sign;
pub mod store;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
pub use id::ParticipantId;
pub use keys::{GroupKey, KeyOrigin, NodeShare, PublicKeyPackage};
pub use rng::{OsRng, SignerRng};
