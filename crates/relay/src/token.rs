//! Relay token validation (spec 8.2), sans-IO: the token, the key set, the policy and `now`
//! (Unix seconds) in; the checked claims or the first failing step out.
//!
//! The steps run in the spec's order and the first failure wins:
//!
//! 1. token present, ≤ 4096 bytes, three dot-separated parts;
//! 2. header decodes, `typ` = `sbrp-relay+jwt`;
//! 3. `kid` present and known;
//! 4. `alg` = `EdDSA`, the key is Ed25519/EdDSA, the signature verifies — checked by
//!    `jsonwebtoken` (restricted to `EdDSA`) **and** by ed25519-dalek's `verify_strict`,
//!    because jsonwebtoken's RustCrypto backend uses the non-strict `verify`;
//! 5. `aud` (string or array) contains the audience; 6. `iss` matches;
//! 7. `iat`, `exp` are numbers; 8. `exp ≥ now − skew`; 9. `ver` absent or 1;
//! 10. `role` is `daemon` or `client`; 11. `did` non-empty string;
//! 12. client: `sub` non-empty, `sid` canonical 11-character base64url of a non-zero u64;
//! 13. `region` equals the relay's region when both are set; 14. client `exp − iat` ≤ 300
//!     (warning above 120); 15. `scp` array of strings; 16. `lim.concurrent_sessions`
//!     integer ≥ 1.
//!
//! The claim checks (5–16) are written by hand instead of using `jsonwebtoken::Validation`:
//! its `exp` check reads the system clock (time must be an input here) and it checks `iss`
//! before `aud`, which would change the reported reason.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::error::TokenError;
use crate::limits;

/// The `typ` every relay token carries.
pub const TOKEN_TYPE: &str = "sbrp-relay+jwt";
/// The audience a relay accepts by default.
pub const AUDIENCE: &str = "sideband-relay";
/// Scope of client session tokens.
pub const SCOPE_SESSION_CREATE: &str = "session:create";
/// Scope that lets a daemon resume sessions after a reconnect.
pub const SCOPE_SESSION_RESUME: &str = "session:resume";

/// Public keys the relay accepts tokens from, by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, TrustedKey>,
}

#[derive(Clone)]
struct TrustedKey {
    strict: VerifyingKey,
    jwt: DecodingKey,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an Ed25519 key under `kid`.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
        // from_ed_components only base64-decodes; it cannot fail on our own encoding.
        if let Ok(jwt) = DecodingKey::from_ed_components(&x) {
            self.keys
                .insert(kid.into(), TrustedKey { strict: key, jwt });
        }
    }

    /// Adds every usable key of a JWKS document (`{"keys": [...]}`): `kty` `OKP`, `crv`
    /// `Ed25519`, a `kid`, `alg` `EdDSA` when present, `use` `sig` when present. Other keys are
    /// skipped. Returns how many were added.
    pub fn extend_from_jwks(&mut self, jwks: &Value) -> usize {
        let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
            return 0;
        };
        let mut added = 0;
        for jwk in keys {
            let field = |name: &str| jwk.get(name).and_then(Value::as_str);
            if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
                continue;
            }
            if jwk.get("alg").is_some() && field("alg") != Some("EdDSA") {
                continue;
            }
            if jwk.get("use").is_some() && field("use") != Some("sig") {
                continue;
            }
            let (Some(kid), Some(x)) = (field("kid"), field("x")) else {
                continue;
            };
            let Ok(bytes) = URL_SAFE_NO_PAD.decode(x) else {
                continue;
            };
            let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                continue;
            };
            let Ok(key) = VerifyingKey::from_bytes(&bytes) else {
                continue;
            };
            self.insert(kid, key);
            added += 1;
        }
        added
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: &KeySet) {
        for (kid, key) in &other.keys {
            self.keys.insert(kid.clone(), key.clone());
        }
    }

    /// Whether `kid` is known.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

/// What the relay requires of a token (besides the key set).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPolicy {
    /// Required `iss`.
    pub issuer: String,
    /// Required member of `aud`.
    pub audience: String,
    /// The relay's region; `None` accepts any `region` claim.
    pub region: Option<String>,
    /// Allowed clock skew on `exp`.
    pub clock_skew: Duration,
    /// Largest client `exp − iat`.
    pub client_max_ttl: Duration,
    /// Client `exp − iat` above which the result carries a warning.
    pub client_warn_ttl: Duration,
    /// Largest token in bytes.
    pub max_token_len: usize,
    /// Longest `did` in bytes.
    pub max_daemon_id_len: usize,
}

impl TokenPolicy {
    /// A policy with the given issuer and the defaults of [`crate::limits`].
    pub fn new(issuer: impl Into<String>) -> Self {
        TokenPolicy {
            issuer: issuer.into(),
            audience: AUDIENCE.to_owned(),
            region: None,
            clock_skew: limits::CLOCK_SKEW,
            client_max_ttl: limits::CLIENT_MAX_TTL,
            client_warn_ttl: limits::CLIENT_WARN_TTL,
            max_token_len: limits::MAX_TOKEN_LEN,
            max_daemon_id_len: limits::MAX_DAEMON_ID_LEN,
        }
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
}

/// The role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenRole {
    /// A daemon (presence token).
    Daemon,
    /// A client (session token).
    Client,
}

/// The claims of a valid token that the relay acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayClaims {
    /// Daemon or client.
    pub role: TokenRole,
    /// The daemon id (`did`).
    pub daemon_id: String,
    /// The principal (`sub`); may be empty for daemons.
    pub subject: String,
    /// Client tokens: the session id.
    pub sid: Option<u64>,
    /// Daemon tokens: whether `scp` contains `session:resume`.
    pub resumable: bool,
    /// `lim.concurrent_sessions`, if present.
    pub concurrent_sessions: Option<u64>,
    /// `exp`, whole seconds (fractions dropped).
    pub exp: i64,
    /// `iat`, whole seconds (fractions dropped).
    pub iat: i64,
}

/// A valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidToken {
    /// Its claims.
    pub claims: RelayClaims,
    /// Client `exp − iat` above the warning threshold: accepted, but worth a log line.
    pub warn_ttl: bool,
}

/// Validates `token` at `now` (Unix seconds) in the order of spec 8.2.
pub fn validate_token(
    token: &str,
    keys: &KeySet,
    policy: &TokenPolicy,
    now: u64,
) -> Result<ValidToken, TokenError> {
    // 1.
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > policy.max_token_len {
        return Err(TokenError::TooLong);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
        return Err(TokenError::NotCompact);
    };
    // 2.
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::BadHeader)?;
    if header.typ.as_deref() != Some(TOKEN_TYPE) {
        return Err(TokenError::BadType);
    }
    // 3.
    let kid = header.kid.as_deref().ok_or(TokenError::MissingKid)?;
    let key = keys.keys.get(kid).ok_or(TokenError::UnknownKid)?;
    // 4.
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::BadAlgorithm);
    }
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(token, &key.jwt, &validation).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEddsaKey => TokenError::BadAlgorithm,
            _ => TokenError::BadClaims,
        }
    })?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(TokenError::BadSignature)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    key.strict
        .verify_strict(&token.as_bytes()[..signing_input_len], &signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = data.claims.as_object().ok_or(TokenError::BadClaims)?;
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    // 5.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == policy.audience,
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str() == Some(policy.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::BadAudience);
    }
    // 6.
    if str_claim("iss") != Some(policy.issuer.as_str()) {
        return Err(TokenError::BadIssuer);
    }
    // 7.
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_f64),
        claims.get("exp").and_then(Value::as_f64),
    ) else {
        return Err(TokenError::BadTimes);
    };
    if !iat.is_finite() || !exp.is_finite() {
        return Err(TokenError::BadTimes);
    }
    // 8.
    if exp < now as f64 - policy.clock_skew.as_secs_f64() {
        return Err(TokenError::Expired);
    }
    // 9.
    if let Some(ver) = claims.get("ver")
        && ver.as_f64() != Some(1.0)
    {
        return Err(TokenError::BadVersion);
    }
    // 10.
    let role = match str_claim("role") {
        Some("daemon") => TokenRole::Daemon,
        Some("client") => TokenRole::Client,
        _ => return Err(TokenError::BadRole),
    };
    // 11.
    let daemon_id = match str_claim("did") {
        Some(did) if !did.is_empty() && did.len() <= policy.max_daemon_id_len => did,
        _ => return Err(TokenError::BadDaemonId),
    };
    // 12.
    let mut sid = None;
    let subject = match role {
        TokenRole::Client => {
            let subject = match str_claim("sub") {
                Some(sub) if !sub.is_empty() => sub,
                _ => return Err(TokenError::BadSubject),
            };
            let text = str_claim("sid").ok_or(TokenError::BadSid)?;
            sid = Some(keyline_sbrp::proto::sid::decode_sid(text).map_err(|_| TokenError::BadSid)?);
            subject
        }
        TokenRole::Daemon => str_claim("sub").unwrap_or_default(),
    };
    // 13.
    if let Some(region) = claims.get("region")
        && let Some(ours) = &policy.region
        && region.as_str() != Some(ours.as_str())
    {
        return Err(TokenError::BadRegion);
    }
    // 14.
    let ttl = exp - iat;
    let mut warn_ttl = false;
    if role == TokenRole::Client {
        if ttl > policy.client_max_ttl.as_secs_f64() {
            return Err(TokenError::TtlTooLong);
        }
        warn_ttl = ttl > policy.client_warn_ttl.as_secs_f64();
    }
    // 15.
    let mut resumable = false;
    if let Some(scp) = claims.get("scp") {
        let scopes = scp.as_array().ok_or(TokenError::BadScope)?;
        for scope in scopes {
            let scope = scope.as_str().ok_or(TokenError::BadScope)?;
            resumable |= scope == SCOPE_SESSION_RESUME;
        }
    }
    // 16.
    let mut concurrent_sessions = None;
    if let Some(lim) = claims.get("lim") {
        let lim = lim.as_object().ok_or(TokenError::BadLimit)?;
        if let Some(cap) = lim.get("concurrent_sessions") {
            match cap.as_u64() {
                Some(n) if n >= 1 => concurrent_sessions = Some(n),
                _ => return Err(TokenError::BadLimit),
            }
        }
    }
    Ok(ValidToken {
        claims: RelayClaims {
            role,
            daemon_id: daemon_id.to_owned(),
            subject: subject.to_owned(),
            sid,
            resumable: resumable && role == TokenRole::Daemon,
            concurrent_sessions,
            exp: exp as i64,
            iat: iat as i64,
        },
        warn_ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::Issuer;
    use crate::limits::Limits;
    use serde_json::json;

    fn client_claims(now: u64) -> Value {
        json!({
            "iss": "iss", "aud": AUDIENCE, "iat": now, "exp": now + 120, "role": "client",
            "sub": "u", "did": "d", "sid": "AAALOnPOL_I",
        })
    }

    #[test]
    fn token_size_edge() {
        let issuer = Issuer::new("iss", Limits::default()).unwrap();
        let token = issuer.sign(&client_claims(1000)).unwrap();
        let mut policy = TokenPolicy::new("iss");
        policy.max_token_len = token.len();
        assert!(validate_token(&token, &issuer.key_set(), &policy, 1000).is_ok());
        policy.max_token_len = token.len() - 1;
        assert_eq!(
            validate_token(&token, &issuer.key_set(), &policy, 1000),
            Err(TokenError::TooLong)
        );
        assert_eq!(TokenPolicy::new("iss").max_token_len, 4096);
    }

    #[test]
    fn skew_and_ttl_edges() {
        let issuer = Issuer::new("iss", Limits::default()).unwrap();
        let keys = issuer.key_set();
        let policy = TokenPolicy::new("iss");
        let token = issuer.sign(&client_claims(1000)).unwrap();
        // exp = 1120: valid through now = 1150, expired at 1151.
        assert!(validate_token(&token, &keys, &policy, 1150).is_ok());
        assert_eq!(
            validate_token(&token, &keys, &policy, 1151),
            Err(TokenError::Expired)
        );
        let mut claims = client_claims(1000);
        claims["exp"] = json!(1300);
        let ok = validate_token(&issuer.sign(&claims).unwrap(), &keys, &policy, 1000).unwrap();
        assert!(ok.warn_ttl);
        claims["exp"] = json!(1301);
        assert_eq!(
            validate_token(&issuer.sign(&claims).unwrap(), &keys, &policy, 1000),
            Err(TokenError::TtlTooLong)
        );
        claims["exp"] = json!(1120);
        let ok = validate_token(&issuer.sign(&claims).unwrap(), &keys, &policy, 1000).unwrap();
        assert!(!ok.warn_ttl);
        // Daemon tokens have no TTL bound and no sid.
        let daemon = json!({
            "iss": "iss", "aud": [AUDIENCE, "other"], "iat": 1000, "exp": 9000, "role": "daemon",
            "did": "d", "scp": ["session:resume", "x"], "lim": {"concurrent_sessions": 3},
        });
        let ok = validate_token(&issuer.sign(&daemon).unwrap(), &keys, &policy, 1000).unwrap();
        assert_eq!(ok.claims.role, TokenRole::Daemon);
        assert!(ok.claims.resumable);
        assert_eq!(ok.claims.concurrent_sessions, Some(3));
    }

    #[test]
    fn jwks_filtering() {
        let issuer = Issuer::new("iss", Limits::default()).unwrap();
        let mut jwks = issuer.jwks();
        let good = jwks["keys"][0].clone();
        let mut wrong_alg = good.clone();
        wrong_alg["alg"] = json!("ES256");
        wrong_alg["kid"] = json!("a");
        let mut wrong_crv = good.clone();
        wrong_crv["crv"] = json!("X25519");
        wrong_crv["kid"] = json!("b");
        let mut enc = good.clone();
        enc["use"] = json!("enc");
        enc["kid"] = json!("c");
        jwks["keys"] = json!([good, wrong_alg, wrong_crv, enc]);
        let mut keys = KeySet::new();
        assert_eq!(keys.extend_from_jwks(&jwks), 1);
        assert_eq!(keys.len(), 1);
    }
}
