//! Every bound of `keyline-shs`, with its default and the reason for it.
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`HANDSHAKE_TIMEOUT`] | 10 s | the whole handshake, both roles, every read, write and authorize |
//! | [`AUTHORIZE_TIMEOUT`] | 3 s | the server's authorize hook |
//! | [`CLOSE_TIMEOUT`] | 5 s | waiting for the peer's goodbye after sending ours |
//! | [`MAX_PACKET`] | 4096 | largest box-stream body emitted and accepted |
//! | [`HEADER_LEN`] | 34 | sealed box-stream header and goodbye |
//! | [`MSG1_LEN`] … [`MSG4_LEN`] | 64, 64, 112, 80 | the four handshake messages |

use std::time::Duration;

/// The whole handshake, from connect/accept to the outcome. One deadline, so a peer that
/// trickles bytes cannot stretch it (the JS reference restarts its 5 s timer on every read).
/// Longer than the JS per-read timeout, so a keyline client never gives up on a JS server first.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on the server's authorize hook; a slower answer counts as a denial. Below the 5 s
/// the JS client waits for msg4, so a JS client is not dropped by a slow but successful hook.
pub const AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a side that sent its goodbye waits for the peer's goodbye before closing.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest box-stream body, emitted and accepted. The JS decoder accepts up to 65535 but no
/// encoder emits more than 4096, so keyline refuses more to bound its buffer.
pub const MAX_PACKET: usize = 4096;

/// A sealed header: 16-byte tag and the 18-byte encrypted `len_be16 | body_tag`.
pub const HEADER_LEN: usize = 34;

/// Largest packet on the wire: header plus the longest body. The decoder buffers no more.
pub const MAX_WIRE_PACKET: usize = HEADER_LEN + MAX_PACKET;

/// msg1, the client hello.
pub const MSG1_LEN: usize = 64;
/// msg2, the server hello.
pub const MSG2_LEN: usize = 64;
/// msg3, the client authentication.
pub const MSG3_LEN: usize = 112;
/// msg4, the server accept.
pub const MSG4_LEN: usize = 80;
