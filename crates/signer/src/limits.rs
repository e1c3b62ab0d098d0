//! Every bound the engine enforces, with its default and the reason for it.
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`MIN_THRESHOLD`] | 2 | smallest threshold t of a key |
//! | [`MAX_SHARES`] | 32 | most shares n of a key, and the largest participant identifier |
//! | [`MAX_MESSAGE_LEN`] | 1024 bytes | longest message a signing package may carry |
//! | [`MAX_ENCODED_LEN`] | 16 KiB | longest encoded engine object accepted by any `deserialize` |
//!
//! The protocol bounds of spec §8 (frame size, in-flight requests, deadlines, ECDH rate) belong
//! to the node and coordinator state machines built on this engine, not here.
//!
//! Each bound is driven to its edge and one step past it by `tests/limits.rs`.

/// Smallest threshold t: 2.
///
/// FROST needs at least two signers (`min_signers ≥ 2`); a 1-of-n key would put the whole
/// secret on every node, which is what keyline-signer exists to avoid.
pub const MIN_THRESHOLD: u16 = 2;

/// Most shares n of one key, and therefore the largest [`crate::ParticipantId`]: 32.
///
/// Every node takes part in every DKG and refresh ceremony, whose work and messages grow with
/// n² (each node seals a round-2 package to each other node), and a public key package grows by
/// one verifying share per node. Real deployments are a handful of machines; 32 leaves ample room
/// while keeping every per-key structure small and every ceremony short.
pub const MAX_SHARES: u16 = 32;

/// Longest message a [`crate::sign::SigningPackage`] may carry: 1024 bytes.
///
/// Nostr signs 32-byte event ids (and `raw_sign` a 32-byte hash); BIP340 allows any length, so
/// short non-hash messages stay possible, but a signing package travels to every signer and a
/// message that is not a hash has no business being large.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest encoded object any `deserialize` of this crate accepts: 16 KiB (16 384 bytes).
///
/// The largest legitimate objects are a [`crate::NodeShare`] or a signing package with
/// [`MAX_SHARES`] participants and a [`MAX_MESSAGE_LEN`] message, each below 6 KiB. Longer
/// input is refused before it is parsed.
pub const MAX_ENCODED_LEN: usize = 16 * 1024;
