//! Node links (spec §8.3): the coordinator and the share-holder nodes talk over keyline-shs
//! (secret handshake + box-stream) with **mutually pinned** keys, then exchange [`crate::wire`]
//! frames on the decrypted byte stream.
//!
//! * A node accepts only coordinators whose Ed25519 keys it pins: the check runs inside the
//!   handshake (between msg3 and msg4), so an unpinned client learns nothing but a closed
//!   connection. A coordinator dials only nodes it pins: SHS proves the server's key.
//! * The SHS network key is [`network_key`], specific to the signer, so a node never accepts
//!   a connection meant for another keyline service (SSB, `keyline shs serve`).
//! * After the handshake: the coordinator sends `Hello`; the node answers `Hello` and
//!   `HelloAck` with the highest common version; the coordinator acknowledges with `HelloAck`.
//!   Every step has a deadline ([`crate::limits::LINK_HELLO_TIMEOUT`]).
//! * Requests carry a `req_id`, replies echo it; several may be in flight on one link
//!   ([`crate::limits::NODE_INFLIGHT`]). An undecodable frame closes the link after an
//!   `Error{malformed}`; an unknown type gets `Error{unsupported_type}` and the link stays up.
//! * The same code runs over TCP and over in-memory pipes ([`coordinator::NodeEndpoint::Local`]),
//!   so the single-process dev mode exercises the real protocol.
//!
//! [`node`] is the node's server, [`coordinator`] the coordinator's links and the signing and
//! ECDH drivers that run the sans-IO sessions of [`crate::session`] against them.

pub mod coordinator;
pub mod node;

use std::time::{Duration, Instant};

use keyline_shs::NetworkKey;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::limits::MAX_NODE_FRAME;
use crate::wire::{self, Message};
use crate::{Error, Result};

/// The SHS network key of signer links: SHA-256 of `"keyline/signer/shs-network/v1"`.
pub fn network_key() -> NetworkKey {
    NetworkKey(Sha256::digest(b"keyline/signer/shs-network/v1").into())
}

/// A peer's key as text for errors and logs (`@<base64>.ed25519`).
pub fn peer_name(key: &[u8; 32]) -> String {
    keyline_core::ssb_id(key)
}

/// Time on a monotonic clock since `start`, the `now` the sans-IO machines take.
pub(crate) fn since(start: Instant) -> Duration {
    start.elapsed()
}

/// Reads one whole frame; `Ok(None)` on a clean end of stream before a frame starts. The
/// length is checked against [`MAX_NODE_FRAME`] before the body is buffered.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    peer: &str,
) -> Result<Option<Message>> {
    let mut head = [0u8; 4];
    match reader.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(link(peer, format!("read failed: {e}"))),
    }
    let Some(total) = wire::frame_len(&head).map_err(|e| protocol(peer, e.to_string()))? else {
        return Err(protocol(peer, "short frame".into()));
    };
    debug_assert!(total <= MAX_NODE_FRAME + 4);
    let mut frame = zeroize::Zeroizing::new(vec![0u8; total]);
    frame[..4].copy_from_slice(&head);
    reader
        .read_exact(&mut frame[4..])
        .await
        .map_err(|e| link(peer, format!("read failed mid-frame: {e}")))?;
    wire::decode_message(&frame).map(Some)
}

/// Encodes and writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
    peer: &str,
) -> Result<()> {
    let bytes = wire::encode_message(message)?;
    writer
        .write_all(&bytes)
        .await
        .map_err(|e| link(peer, format!("write failed: {e}")))?;
    writer
        .flush()
        .await
        .map_err(|e| link(peer, format!("write failed: {e}")))
}

pub(crate) fn link(peer: &str, reason: String) -> Error {
    Error::Link {
        peer: peer.to_string(),
        reason,
    }
}

pub(crate) fn protocol(peer: &str, reason: String) -> Error {
    Error::LinkProtocol {
        peer: peer.to_string(),
        reason,
    }
}

/// Milliseconds since the Unix epoch (the `HelloAck` clock).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
