//! # keyline-shs: SSB secret-handshake v1 and box-stream
//!
//! The Secure Scuttlebutt secret-handshake (SHS v1) and the box-stream that runs over it,
//! byte-compatible with the JavaScript reference (npm `secret-handshake` 1.1.21 and
//! `pull-box-stream` 1.0.13). Two peers that know each other's Ed25519 key and share a
//! 32-byte network key authenticate each other in four messages and then exchange
//! XSalsa20-Poly1305 packets.
//!
//! * [`proto`] is the sans-IO core: handshake typestates ([`proto::ClientHandshake`],
//!   [`proto::ServerHandshake`]) and the box-stream codec ([`proto::BoxEncoder`],
//!   [`proto::BoxDecoder`]).
//! * [`connect`] and [`accept`] run the handshake over any tokio byte stream under one
//!   deadline and return a [`BoxStream`] (`AsyncRead + AsyncWrite`, splittable).
//!
//! ```no_run
//! # async fn demo() -> Result<(), keyline_shs::Error> {
//! use keyline_shs::{Keypair, NetworkKey, ClientConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let me = Keypair::generate();
//! let server_key = [0u8; 32]; // the server's Ed25519 key, known in advance
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:8008").await.map_err(|e| keyline_shs::Error::from_io(e, keyline_shs::Step::Setup))?;
//! let mut stream = keyline_shs::connect(tcp, ClientConfig::new(me, server_key)).await?;
//! stream.write_all(b"hello").await.map_err(|e| keyline_shs::Error::from_io(e, keyline_shs::Step::BoxStream))?;
//! stream.shutdown().await.ok(); // sends the goodbye, waits for the peer's
//! # Ok(()) }
//! ```
//!
//! ## Threat model
//! The network between the peers is hostile: it may read, drop, reorder, replay and inject
//! bytes. A peer that completes the handshake proved possession of the long-term key the
//! other side expected; box-stream packets are authenticated and in order, and a cut stream
//! is an error, never a silent end. A client learns nothing about a server it dialled with
//! the wrong key; a server learns the client's key only after the client proved it knows
//! the server's key. The network key is not a secret on public networks (SSB's is public).
//!
//! ## Defaults and limits
//! See [`limits`]: one 10 s deadline for the whole handshake, 3 s for authorize, 5 s to wait
//! for the peer's goodbye, packets of at most 4096 bytes. The decoder buffers one packet.
//!
//! ## Non-features
//! * SHS v2 and other cipher suites: v1 is what the SSB network speaks.
//! * Plaintext or "insecure" modes: there is no way to skip the key checks.
//! * Half-closing TCP after the goodbye: Node peers would drop their unsent data (spec §13).
//! * Replay protection across connections: each handshake uses fresh ephemeral keys.
//!
//! ## Security status
//! Not audited. Tested against the reference vectors (every positive and negative case),
//! the JS reference over TCP in both roles, the `shs1-test` conformance suite, property
//! tests and fuzz targets. Deviations from JS are deliberate and stricter: strict Ed25519
//! verification, torsion checks on long-term keys, packets above 4096 bytes refused.
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod error;
pub mod keys;
pub mod limits;
pub mod proto;
mod tokio;

#[doc(hidden)]
pub mod bench_support;

pub use error::{Error, InvalidInput, PeerError, Refusal, Result, Step};
pub use keys::{EphemeralKey, Keypair, NetworkKey, PublicKey};
pub use proto::{DirectionKeys, HandshakeOutcome};
pub use tokio::{
    BoxStream, BoxStreamReader, BoxStreamWriter, ClientConfig, ServerConfig, accept, connect,
};
