//! The token issuer (spec 8.3), sans-IO: challenges, proofs, registrations and signed tokens.
//! Time and the daemon's online state are inputs; randomness comes from the OS RNG.
//!
//! The issuer is a separate component from the relay endpoint even though `serve` mounts
//! both in one process: the relay only validates tokens, the issuer only signs them.
//!
//! # Wire formats (defined by keyline)
//!
//! Binary values in requests and responses (`identity_key`, `client_key`, `challenge`,
//! `signature`) are **unpadded base64url**. A challenge is 32 random bytes; the signed
//! message uses the 32 *raw* bytes, not their base64url text:
//!
//! ```text
//! presence: "keyline-relay-presence-v1" ‖ 0x00 ‖ daemon_id (UTF-8) ‖ 0x00 ‖ challenge (32 bytes)
//! session:  "keyline-relay-session-v1"  ‖ 0x00 ‖ daemon_id (UTF-8) ‖ 0x00 ‖ challenge (32 bytes)
//! ```
//!
//! signed with Ed25519 (RFC 8032, pure) by the identity key (presence) or the client key
//! (session), checked with `verify_strict`. A challenge is single use, expires after 60 s and
//! is bound to the daemon id and key it was requested for. See [`presence_message`] and
//! [`session_message`].
//!
//! Tokens are JWS compact with header `{"alg":"EdDSA","typ":"sbrp-relay+jwt","kid":…}`,
//! signed directly with ed25519-dalek so the secret key never leaves its zeroizing type
//! (jsonwebtoken's `EncodingKey` keeps a PKCS#8 copy that is not zeroized). The relay validates
//! them with jsonwebtoken like any other token.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::IssuerError;
use crate::limits::Limits;
use crate::token::{AUDIENCE, KeySet, SCOPE_SESSION_CREATE, SCOPE_SESSION_RESUME, TOKEN_TYPE};

/// Context string of the daemon presence proof.
pub const PRESENCE_CONTEXT: &[u8] = b"keyline-relay-presence-v1";
/// Context string of the client session proof.
pub const SESSION_CONTEXT: &[u8] = b"keyline-relay-session-v1";

/// How many signing keys stay published: the current one and its predecessor.
pub const PUBLISHED_KEYS: usize = 2;

/// The message a daemon signs to prove its identity key.
pub fn presence_message(daemon_id: &str, challenge: &[u8; 32]) -> Vec<u8> {
    proof_message(PRESENCE_CONTEXT, daemon_id, challenge)
}

/// The message a client signs to prove its client key.
pub fn session_message(daemon_id: &str, challenge: &[u8; 32]) -> Vec<u8> {
    proof_message(SESSION_CONTEXT, daemon_id, challenge)
}

fn proof_message(context: &[u8], daemon_id: &str, challenge: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(context.len() + daemon_id.len() + 34);
    out.extend_from_slice(context);
    out.push(0);
    out.extend_from_slice(daemon_id.as_bytes());
    out.push(0);
    out.extend_from_slice(challenge);
    out
}

/// Whether the relay currently sees a daemon (the protocol crate's type).
pub use keyline_sbrp::proto::pairing::DaemonStatus;

struct KeyEntry {
    kid: String,
    key: SigningKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Presence,
    Session,
}

struct Challenge {
    purpose: Purpose,
    daemon_id: String,
    key: [u8; 32],
    expires: Instant,
}

/// A challenge handed out: `{"challenge", "expires_in"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeGrant {
    /// 32 bytes, unpadded base64url.
    pub challenge: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A signed token and its lifetime.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The JWS compact token.
    pub token: String,
    /// Client tokens: the base64url sid.
    pub sid: Option<String>,
    /// Seconds until `exp`.
    pub expires_in: u64,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("token", &"<redacted>")
            .field("sid", &self.sid)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A daemon's proof of its identity key (`POST /v1/presence`).
#[derive(Debug, Clone, Copy)]
pub struct PresenceProof<'a> {
    /// The daemon id.
    pub daemon_id: &'a str,
    /// The daemon's Ed25519 identity key, base64url.
    pub identity_key: &'a str,
    /// The challenge from `POST /v1/presence/challenge`, base64url.
    pub challenge: &'a str,
    /// Signature over [`presence_message`], base64url.
    pub signature: &'a str,
    /// Ask for `session:resume`.
    pub resumable: bool,
}

/// A client's proof of its key, for daemons with an allow-list.
#[derive(Debug, Clone, Copy)]
pub struct ClientProof<'a> {
    /// The client's Ed25519 public key, base64url.
    pub client_key: &'a str,
    /// The challenge from `POST /v1/sessions/challenge`, base64url.
    pub challenge: &'a str,
    /// Signature over [`session_message`], base64url.
    pub signature: &'a str,
}

/// The issuer: signing keys, registrations, allow-lists and outstanding challenges.
pub struct Issuer {
    issuer: String,
    audience: String,
    region: Option<String>,
    limits: Limits,
    keys: Vec<KeyEntry>,
    registry: HashMap<String, [u8; 32]>,
    allow_lists: HashMap<String, HashSet<[u8; 32]>>,
    challenges: HashMap<[u8; 32], Challenge>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("kids", &self.kids())
            .field("registered", &self.registry.len())
            .field("challenges", &self.challenges.len())
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], IssuerError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| IssuerError::Rng)?;
    Ok(out)
}

fn decode_32(text: &str, what: &'static str) -> Result<[u8; 32], IssuerError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or(IssuerError::BadRequest(what))
}

fn verify_proof(key: &[u8; 32], message: &[u8], signature: &str) -> Result<(), IssuerError> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| IssuerError::BadSignature)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(IssuerError::BadRequest(
            "signature must be 64 bytes of base64url",
        ))?;
    key.verify_strict(message, &signature)
        .map_err(|_| IssuerError::BadSignature)
}

impl Issuer {
    /// A new issuer named `issuer` (the `iss` of its tokens) with one fresh random key.
    pub fn new(issuer: impl Into<String>, limits: Limits) -> Result<Self, IssuerError> {
        let mut me = Issuer {
            issuer: issuer.into(),
            audience: AUDIENCE.to_owned(),
            region: None,
            limits,
            keys: Vec::new(),
            registry: HashMap::new(),
            allow_lists: HashMap::new(),
            challenges: HashMap::new(),
        };
        me.rotate()?;
        Ok(me)
    }

    /// Puts `region` into every token.
    pub fn set_region(&mut self, region: Option<String>) {
        self.region = region;
    }

    /// Sets the audience of issued tokens (default `sideband-relay`).
    pub fn set_audience(&mut self, audience: impl Into<String>) {
        self.audience = audience.into();
    }

    /// The configured `iss`.
    pub fn issuer_name(&self) -> &str {
        &self.issuer
    }

    /// Adds a signing key from a 32-byte seed under `kid` and makes it current (tests,
    /// persisted keys). The seed buffer is the caller's to zeroize.
    pub fn install_key(&mut self, kid: impl Into<String>, seed: &[u8; 32]) {
        self.keys.push(KeyEntry {
            kid: kid.into(),
            key: SigningKey::from_bytes(seed),
        });
        self.trim_keys();
    }

    /// Rotates: a fresh random key becomes current, the previous one stays published, any
    /// older one is dropped. Returns the new `kid`. Rotate no more often than the longest
    /// token lifetime (presence: 1 h) plus the clock skew, or tokens signed by the dropped key
    /// stop validating.
    pub fn rotate(&mut self) -> Result<String, IssuerError> {
        let seed = Zeroizing::new(random::<32>()?);
        let kid = format!("k-{}", URL_SAFE_NO_PAD.encode(random::<9>()?));
        self.install_key(kid.clone(), &seed);
        Ok(kid)
    }

    /// Drops every key but the current one (a configured fixed key replaces the random
    /// one generated at start).
    pub fn retain_current(&mut self) {
        let keep = self.keys.len().saturating_sub(1);
        self.keys.drain(..keep);
    }

    fn trim_keys(&mut self) {
        while self.keys.len() > PUBLISHED_KEYS {
            self.keys.remove(0);
        }
    }

    /// Published kids, oldest first (the last one signs).
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// The public key set for the relay's validator.
    pub fn key_set(&self) -> KeySet {
        let mut set = KeySet::new();
        for entry in &self.keys {
            set.insert(entry.kid.clone(), entry.key.verifying_key());
        }
        set
    }

    /// The JWKS document (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .rev()
            .map(|entry| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(entry.key.verifying_key().as_bytes()),
                    "kid": entry.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Value) -> Result<String, IssuerError> {
        let entry = self.keys.last().ok_or(IssuerError::Rng)?;
        let header = json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": entry.kid});
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = entry.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(token)
    }

    fn base_claims(&self, now_unix: u64, ttl: Duration) -> Result<Value, IssuerError> {
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now_unix,
            "exp": now_unix.saturating_add(ttl.as_secs()),
            "jti": URL_SAFE_NO_PAD.encode(random::<16>()?),
            "ver": 1,
        });
        if let Some(region) = &self.region {
            claims["region"] = json!(region);
        }
        Ok(claims)
    }

    fn check_daemon_id(&self, daemon_id: &str) -> Result<(), IssuerError> {
        if daemon_id.is_empty() || daemon_id.len() > self.limits.max_daemon_id_len {
            return Err(IssuerError::BadRequest(
                "daemon_id must be 1 to 256 bytes of UTF-8",
            ));
        }
        Ok(())
    }

    fn new_challenge(
        &mut self,
        purpose: Purpose,
        daemon_id: &str,
        key: [u8; 32],
        now: Instant,
    ) -> Result<ChallengeGrant, IssuerError> {
        self.sweep(now);
        if self.challenges.len() >= self.limits.max_challenges {
            return Err(IssuerError::TooMany);
        }
        let bytes = random::<32>()?;
        self.challenges.insert(
            bytes,
            Challenge {
                purpose,
                daemon_id: daemon_id.to_owned(),
                key,
                expires: now + self.limits.challenge_ttl,
            },
        );
        Ok(ChallengeGrant {
            challenge: URL_SAFE_NO_PAD.encode(bytes),
            expires_in: self.limits.challenge_ttl.as_secs(),
        })
    }

    /// Takes (single use) a challenge and checks it was issued for these inputs.
    fn take_challenge(
        &mut self,
        purpose: Purpose,
        daemon_id: &str,
        key: &[u8; 32],
        challenge: &str,
        now: Instant,
    ) -> Result<[u8; 32], IssuerError> {
        let bytes = decode_32(challenge, "challenge must be 32 bytes of base64url")?;
        let entry = self
            .challenges
            .remove(&bytes)
            .ok_or(IssuerError::InvalidChallenge)?;
        if entry.purpose != purpose
            || entry.daemon_id != daemon_id
            || entry.key != *key
            || now >= entry.expires
        {
            return Err(IssuerError::InvalidChallenge);
        }
        Ok(bytes)
    }

    /// Drops expired challenges.
    pub fn sweep(&mut self, now: Instant) {
        if self.challenges.len() >= self.limits.max_challenges / 2 {
            self.challenges.retain(|_, c| now < c.expires);
        }
    }

    /// `POST /v1/presence/challenge`.
    pub fn presence_challenge(
        &mut self,
        daemon_id: &str,
        identity_key: &str,
        now: Instant,
    ) -> Result<ChallengeGrant, IssuerError> {
        self.check_daemon_id(daemon_id)?;
        let key = decode_32(identity_key, "identity_key must be 32 bytes of base64url")?;
        self.new_challenge(Purpose::Presence, daemon_id, key, now)
    }

    /// `POST /v1/presence`: checks the proof, registers `daemon_id → identity_key` on first
    /// use, and returns a presence token.
    pub fn presence(
        &mut self,
        proof: PresenceProof<'_>,
        now: Instant,
        now_unix: u64,
    ) -> Result<TokenGrant, IssuerError> {
        let PresenceProof {
            daemon_id,
            identity_key,
            challenge,
            signature,
            resumable,
        } = proof;
        self.check_daemon_id(daemon_id)?;
        let key = decode_32(identity_key, "identity_key must be 32 bytes of base64url")?;
        let challenge = self.take_challenge(Purpose::Presence, daemon_id, &key, challenge, now)?;
        verify_proof(&key, &presence_message(daemon_id, &challenge), signature)?;
        match self.registry.get(daemon_id) {
            Some(registered) if *registered != key => return Err(IssuerError::IdentityMismatch),
            Some(_) => {}
            None => {
                if self.registry.len() >= self.limits.max_daemons {
                    return Err(IssuerError::TooMany);
                }
                self.registry.insert(daemon_id.to_owned(), key);
            }
        }
        let ttl = self.limits.presence_token_ttl;
        let mut claims = self.base_claims(now_unix, ttl)?;
        claims["role"] = json!("daemon");
        claims["sub"] = json!(daemon_id);
        claims["did"] = json!(daemon_id);
        let scopes: Vec<&str> = if resumable {
            vec![SCOPE_SESSION_RESUME]
        } else {
            Vec::new()
        };
        claims["scp"] = json!(scopes);
        Ok(TokenGrant {
            token: self.sign(&claims)?,
            sid: None,
            expires_in: ttl.as_secs(),
        })
    }

    /// The identity key registered for `daemon_id`.
    pub fn registered_key(&self, daemon_id: &str) -> Option<[u8; 32]> {
        self.registry.get(daemon_id).copied()
    }

    /// Whether the issuer registered `daemon_id`.
    pub fn is_registered(&self, daemon_id: &str) -> bool {
        self.registry.contains_key(daemon_id)
    }

    /// Operator action: forget the identity key registered for `daemon_id`.
    pub fn reset_identity(&mut self, daemon_id: &str) -> bool {
        self.registry.remove(daemon_id).is_some()
    }

    /// Restricts `POST /v1/sessions` for `daemon_id` to these client keys (`None`: open).
    pub fn set_allow_list(&mut self, daemon_id: &str, keys: Option<Vec<[u8; 32]>>) {
        match keys {
            Some(keys) => {
                self.allow_lists
                    .insert(daemon_id.to_owned(), keys.into_iter().collect());
            }
            None => {
                self.allow_lists.remove(daemon_id);
            }
        }
    }

    /// `POST /v1/sessions/challenge`.
    pub fn session_challenge(
        &mut self,
        daemon_id: &str,
        client_key: &str,
        now: Instant,
    ) -> Result<ChallengeGrant, IssuerError> {
        self.check_daemon_id(daemon_id)?;
        let key = decode_32(client_key, "client_key must be 32 bytes of base64url")?;
        self.new_challenge(Purpose::Session, daemon_id, key, now)
    }

    /// `POST /v1/sessions`: a client session token with a fresh random sid. `status` is what
    /// the relay knows about the daemon; a daemon the issuer never registered but the relay
    /// sees online (an externally issued presence token) is served too.
    pub fn session(
        &mut self,
        daemon_id: &str,
        status: DaemonStatus,
        proof: Option<ClientProof<'_>>,
        now: Instant,
        now_unix: u64,
    ) -> Result<TokenGrant, IssuerError> {
        self.check_daemon_id(daemon_id)?;
        match status {
            DaemonStatus::Online => {}
            DaemonStatus::Offline => return Err(IssuerError::DaemonOffline),
            DaemonStatus::Unknown if self.is_registered(daemon_id) => {
                return Err(IssuerError::DaemonOffline);
            }
            DaemonStatus::Unknown => return Err(IssuerError::DaemonNotFound),
        }
        let subject = match self.allow_lists.get(daemon_id) {
            None => "anonymous".to_owned(),
            Some(allowed) => {
                let proof = proof.ok_or(IssuerError::ClientKeyRequired)?;
                let key = decode_32(proof.client_key, "client_key must be 32 bytes of base64url")?;
                if !allowed.contains(&key) {
                    return Err(IssuerError::NotAllowed);
                }
                let challenge =
                    self.take_challenge(Purpose::Session, daemon_id, &key, proof.challenge, now)?;
                verify_proof(
                    &key,
                    &session_message(daemon_id, &challenge),
                    proof.signature,
                )?;
                format!("ck_{}", URL_SAFE_NO_PAD.encode(key))
            }
        };
        let sid = loop {
            let sid = u64::from_be_bytes(random::<8>()?);
            if sid != 0 {
                break sid;
            }
        };
        let sid_text = keyline_sbrp::proto::sid::encode_sid(sid);
        let ttl = self.limits.client_token_ttl;
        let mut claims = self.base_claims(now_unix, ttl)?;
        claims["role"] = json!("client");
        claims["sub"] = json!(subject);
        claims["did"] = json!(daemon_id);
        claims["sid"] = json!(sid_text);
        claims["scp"] = json!([SCOPE_SESSION_CREATE]);
        Ok(TokenGrant {
            token: self.sign(&claims)?,
            sid: Some(sid_text),
            expires_in: ttl.as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{TokenPolicy, TokenRole, validate_token};

    fn pp<'a>(
        daemon_id: &'a str,
        identity_key: &'a str,
        challenge: &'a str,
        signature: &'a str,
        resumable: bool,
    ) -> PresenceProof<'a> {
        PresenceProof {
            daemon_id,
            identity_key,
            challenge,
            signature,
            resumable,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn presence_session_and_rotation() {
        let now = Instant::now();
        let unix = 1_800_000_000;
        let mut issuer = Issuer::new("https://relay.test", Limits::default()).unwrap();
        let daemon = SigningKey::from_bytes(&[7; 32]);
        let idk = b64(daemon.verifying_key().as_bytes());
        let grant = issuer.presence_challenge("d1", &idk, now).unwrap();
        let raw: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&grant.challenge)
            .unwrap()
            .try_into()
            .unwrap();
        let sig = b64(&daemon.sign(&presence_message("d1", &raw)).to_bytes());
        let token = issuer
            .presence(pp("d1", &idk, &grant.challenge, &sig, true), now, unix)
            .unwrap();
        // Single use.
        assert_eq!(
            issuer.presence(pp("d1", &idk, &grant.challenge, &sig, true), now, unix),
            Err(IssuerError::InvalidChallenge)
        );
        let policy = TokenPolicy::new("https://relay.test");
        let valid = validate_token(&token.token, &issuer.key_set(), &policy, unix).unwrap();
        assert_eq!(valid.claims.role, TokenRole::Daemon);
        assert!(valid.claims.resumable);
        // Another key for the same id: identity_mismatch.
        let other = SigningKey::from_bytes(&[8; 32]);
        let okey = b64(other.verifying_key().as_bytes());
        let g2 = issuer.presence_challenge("d1", &okey, now).unwrap();
        let raw2: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&g2.challenge)
            .unwrap()
            .try_into()
            .unwrap();
        let sig2 = b64(&other.sign(&presence_message("d1", &raw2)).to_bytes());
        assert_eq!(
            issuer.presence(pp("d1", &okey, &g2.challenge, &sig2, false), now, unix),
            Err(IssuerError::IdentityMismatch)
        );
        // Expired challenge.
        let g3 = issuer.presence_challenge("d1", &idk, now).unwrap();
        let raw3: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&g3.challenge)
            .unwrap()
            .try_into()
            .unwrap();
        let sig3 = b64(&daemon.sign(&presence_message("d1", &raw3)).to_bytes());
        assert_eq!(
            issuer.presence(
                pp("d1", &idk, &g3.challenge, &sig3, false),
                now + Duration::from_secs(61),
                unix
            ),
            Err(IssuerError::InvalidChallenge)
        );
        // Sessions.
        let s = issuer
            .session("d1", DaemonStatus::Online, None, now, unix)
            .unwrap();
        let valid = validate_token(&s.token, &issuer.key_set(), &policy, unix).unwrap();
        assert_eq!(valid.claims.role, TokenRole::Client);
        assert_eq!(valid.claims.exp - valid.claims.iat, 120);
        assert_eq!(
            issuer.session("d1", DaemonStatus::Offline, None, now, unix),
            Err(IssuerError::DaemonOffline)
        );
        assert_eq!(
            issuer.session("nope", DaemonStatus::Unknown, None, now, unix),
            Err(IssuerError::DaemonNotFound)
        );
        // Rotation keeps two.
        let first = issuer.kids()[0].clone();
        let second = issuer.rotate().unwrap();
        assert!(validate_token(&s.token, &issuer.key_set(), &policy, unix).is_ok());
        issuer.rotate().unwrap();
        assert_eq!(issuer.kids().len(), 2);
        assert!(!issuer.kids().contains(&first));
        assert!(issuer.kids().contains(&second));
        assert!(validate_token(&s.token, &issuer.key_set(), &policy, unix).is_err());
    }

    #[test]
    fn challenge_cap() {
        let now = Instant::now();
        let limits = Limits {
            max_challenges: 4,
            ..Limits::default()
        };
        let mut issuer = Issuer::new("iss", limits).unwrap();
        let key = b64(&[9; 32]);
        for _ in 0..4 {
            issuer.presence_challenge("d", &key, now).unwrap();
        }
        assert_eq!(
            issuer.presence_challenge("d", &key, now),
            Err(IssuerError::TooMany)
        );
        // Expired challenges make room again.
        let later = now + Duration::from_secs(61);
        assert!(issuer.presence_challenge("d", &key, later).is_ok());
        // Bad inputs.
        assert!(matches!(
            issuer.presence_challenge("", &key, later),
            Err(IssuerError::BadRequest(_))
        ));
        assert!(matches!(
            issuer.presence_challenge("d", "short", later),
            Err(IssuerError::BadRequest(_))
        ));
    }
}
