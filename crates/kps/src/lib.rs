//! # keyline-kps: KPS key-pinned streams
//!
//! KPS (upstream `privacy-ethereum/kps`, SPEC draft v0.2.1) gives a client that knows
//! `ip:port:certhash` an authenticated, encrypted, multiplexed connection to a server whose
//! identity is the SHA-256 of its self-signed certificate: no CA, no domain name. A
//! connection carries unnamed reliable bidirectional streams and unreliable datagrams.
//! Native clients speak QUIC; browsers speak WebRTC (str0m on our side, feature `webrtc`, on
//! by default), on the same UDP port through [`demux`] and [`webrtc`], with the same
//! [`Connection`] and [`Stream`] API and error semantics on both ([`Transport`]).
//!
//! * [`Address`], [`Certhash`] — the sans-IO codecs ([`parse_address`], [`parse_certhash`]).
//! * [`Identity`] — the ECDSA P-256 certificate and the upstream key file format.
//! * [`Listener`], [`dial`] (QUIC), [`dial_webrtc`], [`Connection`], [`Stream`] — the tokio
//!   API; a listener accepts both transports. A stream's
//!   termination is observable with [`Stream::closed`] (or per half, [`SendHalf::closed`],
//!   [`RecvHalf::closed`]): ok for an orderly teardown, the reason code otherwise (spec §8.4).
//!   Every future is cancel-safe in the sense that dropping it (a dial, `accept`,
//!   `accept_stream`, `open_stream`) leaves no state behind that blocks later calls.
//! * [`demux`] — the one-port classifier (sans-IO) and the socket shim under quinn.
//! * [`echo`] — the echo server behind `keyline kps serve`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keyline_kps::Error> {
//! use keyline_kps::{Identity, Listener, dial, Code};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let listener = Listener::bind("127.0.0.1:0", Identity::generate()?)?;
//! let address = listener.address(None); // print this; clients dial it
//! tokio::spawn(async move { keyline_kps::echo::serve(&listener).await });
//!
//! let conn = dial(&address).await?;
//! let mut stream = conn.open_stream().await?;
//! stream.write_all(b"hello").await.map_err(keyline_kps::Error::from_io)?;
//! stream.close_write()?;
//! let mut back = Vec::new();
//! stream.read_to_end(&mut back).await.map_err(keyline_kps::Error::from_io)?;
//! conn.close(Code::None);
//! # Ok(()) }
//! ```
//!
//! ## Threat model
//! The network is hostile. The address pins the server's certificate by hash: the client
//! accepts a server only if the SHA-256 of its certificate DER is in the pin set
//! (constant-time compare), and the TLS 1.3 CertificateVerify signature proves the server
//! holds the key. No CA path, no host names, no dates; no flag or option skips the pin. The
//! server does not authenticate clients. On the wire: ALPN `h3`, no SNI (IP-literal server
//! name), a certificate with an empty subject and a random serial, so the QUIC Initial carries
//! nothing that says KPS. The QUIC path is not probe-resistant: anyone can complete a
//! handshake and learn the certificate (and so the certhash). The WebRTC path is: the
//! server answers a STUN request only when its integrity verifies under an ICE password
//! derived from the certhash, and allocates nothing before; the DTLS certificate is pinned to
//! the certhash by the client. Over WebRTC, KPS adds its own credit flow control (SCTP has no
//! receive pressure), and a peer breaking any wire-v1 rule loses the connection
//! (`protocol-error`).
//!
//! ## Defaults and limits
//! See [`limits`]: 30 s idle timeout, 10 s accept-side handshake timeout, 15 s dial timeout,
//! 1024 connections and 128 concurrent handshakes per listener, 100 concurrent streams per
//! connection, 1 MiB stream and 8 MiB connection windows, 256 queued datagrams (drop-oldest).
//! WebRTC: the same windows and stream count as HELLO limits, 1024 peers per listener, 8 new
//! ICE ufrags per second per source IP, 15 s to HELLO, 1200-byte datagrams, at most 1 MiB
//! queued unsent per connection (writers wait beyond it).
//!
//! ## Non-features
//! * No unpinned or "insecure" dial, no CA validation, no SNI.
//! * No client authentication (the application's business).
//! * No 0-RTT; no unidirectional streams (KPS has none).
//! * [`Listener::close`] closes QUIC connections only; established WebRTC connections live
//!   until they close themselves or their owner drops them.
//! * Legacy key-only key files are refused, not migrated.
//!
//! ## Security status
//! Not audited. Tested: the spec's address and certhash vectors and rejects, property tests,
//! certificate contents (DER scan), key file round trips, the QUIC scenarios of SPEC §10 and
//! the upstream Go/Rust/JS QUIC cases over loopback (v4 and v6) including pre-cancelled
//! dials and accepts and 128 parked 1 MiB writes settling on connection close, pin mismatch
//! before any application byte, every limit at and past its edge where it can be driven
//! (including a silent half-open handshake released by the handshake timeout, and the
//! handshake limit refusing dials past it).
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod address;
#[doc(hidden)]
pub mod bench_support;
pub mod certhash;
pub mod connection;
pub mod demux;
pub mod echo;
pub mod error;
pub mod identity;
pub mod limits;
mod quic;
pub mod webrtc;

pub use address::{Address, parse_address};
pub use certhash::{Certhash, parse_certhash};
pub use connection::{Connection, RecvHalf, SendHalf, Stream, Transport};
pub use error::{AddressError, CerthashError, Code, Error, KeyFileError, Result};
pub use identity::Identity;
pub use quic::config::{ALPN, Config};
pub use quic::dial::{dial, dial_pinned, dial_with};
pub use quic::listener::{Listener, parse_listen};
#[cfg(feature = "webrtc")]
pub use webrtc::client::{dial_webrtc, dial_webrtc_with};
