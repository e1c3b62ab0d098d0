//! # keyline-http: signed stateless HTTP (keyline-http-v1), sans-IO core
//!
//! keyline-http-v1 is an RFC 9421 (HTTP Message Signatures) profile with RFC 9530
//! `Content-Digest`, Ed25519 and BIP340 keys, freshness, nonces and a replay cache, and signed
//! responses bound to their request; NIP-98 is accepted as a second scheme
//! (`shared/specs/http.md`, Part B). A peer *is* its key: the `keyid` carries the public key.
//!
//! This crate is the **sans-IO core**: it takes a framework-free [`Request`]/[`Response`]
//! (method, target URI, ordered header lines, exact body bytes) and `now` (Unix seconds), and
//! returns headers to add or a typed outcome. No sockets, no clock reads, no spawned tasks.
//! Randomness (nonces, BIP340 `aux_rand`) is an argument too; the `random` helpers draw it from
//! the operating system for callers that do not care.
//!
//! ```
//! use keyline_http::{
//!     MemoryReplayCache, PublicOrigin, Request, SignOptions, SigningKey, VerifyConfig,
//!     sign_request, verify_request,
//! };
//!
//! # fn main() -> keyline_http::Result<()> {
//! let client = SigningKey::ed25519_from_seed(&[7; 32]);
//! let now = 1_767_225_600;
//!
//! // Client: sign.
//! let mut request = Request::new("POST", "https://api.example.com/v1/echo?x=1")
//!     .with_header("Content-Type", "application/json")
//!     .with_body(br#"{"hello":"world"}"#.to_vec());
//! let sent = sign_request(&mut request, &client, &SignOptions::random(now)?)?;
//!
//! // Server: verify (the target URI is the public origin + the raw request-target).
//! let config = VerifyConfig::new(PublicOrigin::new("https://api.example.com")?);
//! let mut cache = MemoryReplayCache::new();
//! let verified = verify_request(&request, &config, now + 1, &mut cache)?;
//! assert_eq!(verified.nonce, sent.nonce);
//! // The same request again is a replay: 401.
//! let replay = verify_request(&request, &config, now + 2, &mut cache).unwrap_err();
//! assert_eq!(replay.status(), 401);
//! # Ok(()) }
//! ```
//!
//! ## What is implemented
//!
//! - [`base`], [`component`]: RFC 9421 `Signature-Input`/`Signature` parsing (with the `sfv`
//!   crate; no hand-written structured-field parser) and the signature base for `@method`,
//!   `@target-uri`, `@authority`, `@scheme`, `@request-target`, `@path`, `@query`,
//!   `@query-param`, `@status`, HTTP fields (with `key` and `bs`), and `;req` on responses.
//!   All eight RFC 9421 Appendix B signatures verify (RSA-PSS and ECDSA P-256 through dev-only
//!   crates, since the profile uses neither).
//! - [`digest`]: RFC 9530 `Content-Digest` (`sha-256`, optionally `sha-512`), compared in
//!   constant time.
//! - [`request`], [`response`], [`profile`]: the keyline-http-v1 profile — [`sign_request`],
//!   [`verify_request`] in the order of B.5 with typed outcomes ([`Error::status`]: 400 for
//!   malformed input, one uniform 401 for every authentication failure, 413, 429),
//!   [`sign_response`], [`verify_response`] and the signed 401 challenge
//!   ([`unauthorized_response`]) with stateless server nonces ([`ServerNonceKey`]).
//! - [`keys`]: `ed25519` (strict verification) and `bip340-secp256k1` (BIP340 over SHA-256 of
//!   the base) with their canonical `keyid`s.
//! - [`replay`]: the replay cache trait and a bounded in-memory cache; the asynchronous
//!   [`ReplayStore`] the layer takes as a trait object (B.7); and, with feature
//!   `sqlx-replay` (off by default), `replay::sqlite::SqliteReplayStore`: one SQLite file
//!   shared by several server instances behind one origin (atomic check-and-insert under a
//!   unique constraint, expiry cleanup, the same bounds and 429 as the memory cache).
//! - [`nip98`]: NIP-98 signing and verification (padding-agnostic base64, NIP-01 id, BIP340, `u`,
//!   `method`, `payload`, window, replay; every method including `DELETE`).
//! - [`seal`]: the cryptographic core of HPKE sealed bodies (B.11), X25519 / HKDF-SHA256 with
//!   ChaCha20-Poly1305 (default) or AES-128-GCM ([`seal::Suite`]): sealing and opening
//!   requests with `keyid` and `nonce` bound into `info`, and the OHTTP-style sealed response
//!   (`max(Nn, Nk)`-byte response nonce: 32 or 16), plus the key configuration document
//!   ([`seal::KeyConfig`], both suites listed, ChaCha20-Poly1305 first) and key rotation
//!   ([`seal::HpkeKeyring`]: one current key announced first, retired keys open requests
//!   for a grace period of at least `max_age` + the clients' configuration cache lifetime,
//!   then are deleted). Checked against RFC 9180 Appendix A (A.1 and A.2, all modes) and
//!   RFC 9458 Appendix A (AES-128-GCM; the encapsulated response reproduces byte for byte).
//!   The layer serves `GET /.well-known/keyline-http` (signed), verifies
//!   a sealed request's signature over the ciphertext first, opens it at B.5 step 9 (failure:
//!   400), hands the handler the inner body and content type, and seals the response;
//!   [`SignedClient::sealed`] / [`SignedClient::send_sealed`] fetch and verify the key
//!   configuration, seal (the body, or `Keyline-Seal` for a body-less request), and open the
//!   response.
//! - [`server`] (feature `server`, default on): [`KeylineHttpLayer`], a tower layer for axum
//!   0.8 — original URI + configured public origin, body limit while reading (413), uniform
//!   signed 401 with a fresh server nonce, signed 400/413/429, [`VerifiedPeer`] in the request
//!   extensions, every response signed and bound to its request, per-route modes
//!   ([`RouteMode`]), injectable clock and RNG, HPKE key rotation
//!   ([`ServerConfig::rotate_hpke_key`], [`ServerConfig::with_hpke_rotation`]), CORS
//!   ([`ServerConfig::with_cors`]: preflights answered before verification, signature
//!   headers exposed), any [`ReplayStore`] ([`ServerConfig::with_replay_cache`]) — plus the
//!   demo API ([`demo_router`]: `GET /whoami`, `POST /echo`) and [`serve`].
//! - [`client`] (feature `client`, default on): [`SignedClient`] over reqwest (rustls) —
//!   keyline-http-v1 or NIP-98 ([`nip98::sign`]) signing, response verification against a
//!   given key or `PinStore` pins (TOFU), clock offset from the signed `Date`, one retry on a
//!   401 with the server nonce, no redirects; sealing picks the first listed key and suite it
//!   supports ([`SignedClient::with_hpke_suites`]) and re-fetches the key configuration
//!   after [`limits::KEY_CONFIG_CACHE_LIFETIME`].
//! - `compat` (feature `compat-crypto-sessions`, **off by default**): the crypto-sessions
//!   v1.1.10 verify-only compatibility mode (Part A.10), see below.
//!
//! ## crypto-sessions v1.1.10 compatibility (feature `compat-crypto-sessions`)
//!
//! For migrations only. With the feature compiled in and `ServerConfig::with_compat` given a
//! `compat::CompatConfig` (the legacy `CRYPTO_SESSION_HOST` string, the legacy secp256k1 server
//! secret, a route allow-list), the layer accepts v1.1.10 requests — `authorization: <token>`
//! with no scheme, no `Signature-Input` — on the allow-listed routes only: it verifies them
//! (GET: ECDSA over `host ‖ request-target`; POST: AES-256-CBC `{"data": …}` decrypted with the
//! ECDH x-coordinate, then ECDSA over the plaintext), hands the handler the plaintext and
//! `VerifiedPeer { key: Secp256k1Compressed, scheme: CryptoSessionsV1_1_10 }`, answers 2xx
//! responses in the legacy format (server token, encrypted body) and logs a WARN per request.
//! Every failure is the uniform 401; 5 failures in 60 s from one legacy key give 429 for
//! 600 s. Elsewhere, or without the configuration, a legacy token is an unknown scheme. The
//! format makes some things impossible: compat mode **cannot detect replays, cannot bind POST
//! bodies to routes, cannot remove the plaintext-guess leak and gives no forward secrecy**
//! (details in the `compat` module). All ten exchanges of the v1.1.10 wire vectors verify
//! and their responses reproduce byte for byte with the recorded IVs.
//!
//! ## Not implemented yet
//!
//! - In the layer: a streaming (unbuffered) path for large handler responses, authorization
//!   policy hooks (allow-lists) beyond `VerifiedPeer`.
//! - HPKE keys live in memory: nothing persists them across restarts or shares them between
//!   instances behind one origin (each instance announces and rotates its own keys; a client
//!   sealing to one instance's key gets 400 from another).
//! - `keyline http` CLI flags for CORS, HPKE rotation and the SQLite replay store (the library
//!   has them).
//!
//! ## Threat model
//!
//! The network between client and server is hostile, TLS-terminating intermediaries
//! included. A verified request proves that the holder of the `keyid` key signed this method,
//! this full target URI, this content type and these exact body bytes, within the freshness
//! window, once. The server's `@target-uri` comes from its configured [`PublicOrigin`] and the
//! raw request-target, never from `Host` or `X-Forwarded-*`. A signed response proves the
//! server key answered *this* request (its nonce, method and target URI) with this status,
//! date, content type and body. Authorization (which keys may do what) is the application's;
//! any key is an identity. Headers other than the covered ones, and the query and path
//! interpretation by the application, are not protected beyond the exact URI string.
//!
//! ## Defaults and limits
//!
//! See [`limits`]: max age 60 s, max future skew 30 s, `expires − created` ≤ 300 s (signers
//! use 60 s), server nonces valid 60 s, nonces of 16–32 bytes, signature fields ≤ 8 KiB, 8
//! labels, 32 covered components, NIP-98 value ≤ 8 KiB, body 1 MiB, replay cache 131 072
//! entries and 4 096 per key (429 beyond, live entries never evicted).
//!
//! ## Non-features
//!
//! - Other RFC 9421 algorithms (RSA, ECDSA P-256/P-384, HMAC) in the profile: keys are Ed25519
//!   or BIP340 only; the others are exercised in tests to check the base construction.
//! - Keys fetched from the `keyid` (as Mastodon dereferences URLs): the `keyid` *is* the key.
//! - Long windows without nonces, unsigned-payload modes, signing without a body digest.
//! - Decompressing signed bodies: the digest covers the bytes as transferred.
//! - `sf` re-serialization and trailers (`tr`) as component parameters.
//!
//! ## Security status
//!
//! Not audited. Tested against the RFC 9421 Appendix B and RFC 9530 vectors, keyline's own
//! byte-exact profile examples, the NIP-98 examples (including the NIP's broken printed
//! event), the full BIP340 CSV through the same `k256` calls the profile uses, RFC 9180
//! Appendix A (A.1, A.2) for the HPKE layer, RFC 9458 Appendix A for sealing, the limits at and
//! past each edge, and property tests (sign → verify over random requests; any single change
//! to a covered component fails).
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod base;
pub mod component;
pub mod date;
pub mod digest;
pub mod error;
pub mod keys;
pub mod limits;
pub mod message;
pub mod nip98;
pub mod nonce;
pub mod profile;
pub mod random;
pub mod replay;
pub mod request;
pub mod response;
pub mod seal;
mod sf;
pub mod uri;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "compat-crypto-sessions")]
pub mod compat;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "compat-crypto-sessions")]
pub use error::LegacyFailure;
pub use error::{AuthFailure, Error, InvalidInput, Malformed, Result};
pub use keys::{Algorithm, PublicKey, SigningKey};
pub use message::{Headers, Request, Response};
pub use nonce::ServerNonceKey;
pub use random::{OsRandom, RandomSource};
pub use replay::{
    DeferredReplay, MemoryReplayCache, ReplayCache, ReplayKey, ReplayLimits, ReplayStore,
};
pub use request::{
    PeerKey, RequestBinding, Scheme, SentRequest, SignOptions, Verified, VerifiedPeer,
    VerifyConfig, sign_request, verify_request,
};
pub use response::{
    Challenge, VerifiedResponse, date_within_tolerance, sign_response, unauthorized_response,
    verify_response,
};
pub use uri::PublicOrigin;

#[cfg(feature = "client")]
pub use client::{ClientScheme, ServerTrust, SignedClient, SignedResponse};
#[cfg(feature = "server")]
pub use server::{KeylineHttpLayer, RouteMode, ServerConfig, demo_app, demo_router, serve};
