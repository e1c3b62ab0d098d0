//! NIP-98 HTTP Auth as a second scheme (B.12).
//!
//! `Authorization: Nostr <base64 of a kind-27235 event>`. The verifier here:
//!
//! 1. takes the value after `Nostr ` (≤ [`MAX_NIP98_ENCODED_BYTES`]) and decodes it with the
//!    standard alphabet, **padding optional** (the NIP's own example is unpadded), no
//!    whitespace, non-canonical trailing bits rejected;
//! 2. parses the NIP-01 event; `kind` must be 27235, `content` is ignored;
//! 3. recomputes the id as SHA-256 of `[0,pubkey,created_at,kind,tags,content]` serialized per
//!    NIP-01 and BIP340-verifies `sig` over it with the x-only `pubkey` (same `k256` calls as
//!    the profile, [`crate::keys::bip340_verify`]);
//! 4. checks `created_at` against the freshness window (60 s past, 30 s future by default);
//! 5. requires exactly one `u` tag equal to the request URL, both parsed and serialized with
//!    the `url` crate;
//! 6. requires exactly one `method` tag equal to the method, case-sensitive, any method
//!    (`DELETE`, `HEAD`, extension methods included);
//! 7. with content, requires a `payload` tag equal to the lowercase hex SHA-256 of the exact
//!    body bytes; without content, a `payload` tag if present must be SHA-256 of nothing;
//! 8. records (`nostr`, pubkey, event id) in the replay cache until `created_at` + max age + 1 s.
//!
//! Undecodable values and non-events are 400; every semantic failure is the uniform 401.
//! The `nostr` crate is deliberately not used (its `verify_auth_header` needs padding, cannot
//! verify `DELETE` and keeps no replay state).

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AuthFailure, Error, Malformed, Result};
use crate::keys::bip340_verify;
use crate::limits::{MAX_NIP98_ENCODED_BYTES, REPLAY_RETENTION_SLACK};
use crate::message::Request;
use crate::replay::{ReplayCache, ReplayKey};
use crate::request::{RequestBinding, Scheme, Verified, VerifiedPeer, VerifyConfig};

/// The NIP-98 event kind.
pub const KIND: u64 = 27235;

/// Standard alphabet, padding optional, canonical trailing bits.
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// A NIP-01 event as sent in the header.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Event {
    /// Lowercase hex SHA-256 of the serialized event.
    pub id: String,
    /// Lowercase hex x-only public key.
    pub pubkey: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Event kind (27235).
    pub kind: u64,
    /// Tags.
    pub tags: Vec<Vec<String>>,
    /// Content (ignored by NIP-98).
    pub content: String,
    /// Lowercase hex BIP340 signature over the id.
    pub sig: String,
}

impl Event {
    /// The NIP-01 serialization whose SHA-256 is the id:
    /// `[0,<pubkey>,<created_at>,<kind>,<tags>,<content>]` without whitespace.
    pub fn id_preimage(&self) -> String {
        keyline_core::nostr::id_preimage(
            &self.pubkey,
            self.created_at,
            self.kind,
            &self.tags,
            &self.content,
        )
    }

    /// SHA-256 of [`id_preimage`](Self::id_preimage).
    pub fn compute_id(&self) -> [u8; 32] {
        Sha256::digest(self.id_preimage().as_bytes()).into()
    }

    /// Whether the id is the hash of the event and the signature verifies over it.
    pub fn verify_id_and_signature(&self) -> Result<()> {
        let id = hex32(&self.id).ok_or(Malformed::Nip98("id is not 64 lowercase hex"))?;
        let pubkey =
            hex32(&self.pubkey).ok_or(Malformed::Nip98("pubkey is not 64 lowercase hex"))?;
        let sig = hex64(&self.sig).ok_or(Malformed::Nip98("sig is not 128 lowercase hex"))?;
        if self.compute_id() != id {
            return Err(AuthFailure::EventId.into());
        }
        if !bip340_verify(&pubkey, &id, &sig) {
            return Err(AuthFailure::BadSignature.into());
        }
        Ok(())
    }

    fn tags_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<String>> + 'a {
        self.tags
            .iter()
            .filter(move |t| t.first().is_some_and(|n| n == name))
    }

    /// The value of the only tag named `name`; `None` if absent, repeated or empty.
    fn single_tag<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut tags = self.tags_named(name);
        let tag = tags.next()?;
        if tags.next().is_some() {
            return None;
        }
        tag.get(1).map(String::as_str)
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (s.len() == 64 && is_lower_hex(s) && hex::decode_to_slice(s, &mut out).is_ok()).then_some(out)
}

fn hex64(s: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    (s.len() == 128 && is_lower_hex(s) && hex::decode_to_slice(s, &mut out).is_ok()).then_some(out)
}

/// The value after `Nostr ` of the request's `Authorization`, if its scheme is `Nostr`
/// (case-insensitive). Several such lines are joined with `", "`, which then fails to decode.
pub fn authorization_value(request: &Request) -> Option<String> {
    let values: Vec<&str> = request
        .headers
        .get_all("authorization")
        .filter_map(|v| {
            let v = v.trim_matches([' ', '\t']);
            let (scheme, rest) = v.split_at_checked(6)?;
            scheme.eq_ignore_ascii_case("nostr ").then_some(rest)
        })
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Decodes an `Authorization: Nostr` value into its event (400 on failure).
pub fn decode(value: &str) -> Result<Event> {
    if value.len() > MAX_NIP98_ENCODED_BYTES {
        return Err(Malformed::FieldTooLong {
            field: "authorization",
            len: value.len(),
        }
        .into());
    }
    let json = DECODER
        .decode(value)
        .map_err(|_| Malformed::Nip98("not base64"))?;
    serde_json::from_slice(&json).map_err(|_| Malformed::Nip98("not an event").into())
}

/// Signs `request` with NIP-98 (B.12): sets `Authorization: Nostr <base64 event>` with a
/// kind-27235 event carrying the `u` tag (the target URI as the `url` crate serializes it),
/// the `method` tag and, with content, the `payload` tag (hex SHA-256 of the exact body).
/// `key` must be a BIP340 key; `created_at` is the (offset-corrected) Unix time. The returned
/// [`SentRequest`](crate::SentRequest) carries the event id, which a keyline response echoes
/// as its `nonce`.
pub fn sign(
    request: &mut Request,
    key: &crate::keys::SigningKey,
    created_at: u64,
    aux_rand: &[u8; 32],
) -> Result<crate::request::SentRequest> {
    use base64::engine::general_purpose::STANDARD;
    let crate::keys::SigningKey::Bip340(secret) = key else {
        return Err(crate::error::InvalidInput::Message("NIP-98 needs a BIP340 key".into()).into());
    };
    let url = url::Url::parse(&request.target_uri)
        .map_err(|e| crate::error::InvalidInput::Message(format!("target URI: {e}")))?;
    let mut tags = vec![
        vec!["u".to_string(), url.as_str().to_string()],
        vec!["method".to_string(), request.method.clone()],
    ];
    if request.has_content() {
        tags.push(vec![
            "payload".to_string(),
            hex::encode(Sha256::digest(&request.body)),
        ]);
    }
    let mut event = Event {
        id: String::new(),
        pubkey: hex::encode(key.public_key().bytes()),
        created_at,
        kind: KIND,
        tags,
        content: String::new(),
        sig: String::new(),
    };
    let id = event.compute_id();
    let secret = zeroize::Zeroizing::new(<[u8; 32]>::from(secret.to_bytes()));
    let sig = crate::keys::bip340_sign(&secret, &id, aux_rand)?;
    event.id = hex::encode(id);
    event.sig = hex::encode(sig);
    let json = serde_json::to_vec(&event)
        .map_err(|e| crate::error::InvalidInput::Message(format!("event JSON: {e}")))?;
    request.headers.remove("authorization");
    request
        .headers
        .push("Authorization", format!("Nostr {}", STANDARD.encode(json)));
    Ok(crate::request::SentRequest {
        nonce: event.id,
        binding: RequestBinding::of(request),
    })
}

/// The event id of an `Authorization: Nostr` value, if it decodes (for echoing in responses).
pub fn event_id(value: &str) -> Option<String> {
    let event = decode(value).ok()?;
    hex32(&event.id).map(|_| event.id)
}

/// Verifies a NIP-98 request (B.12) whose `Authorization` value (after `Nostr `) is `value`.
pub fn verify(
    request: &Request,
    value: &str,
    config: &VerifyConfig,
    now: u64,
    cache: &mut dyn ReplayCache,
) -> Result<Verified> {
    let origin = crate::uri::TargetUri::parse(config.origin.as_str())?;
    let target = crate::uri::TargetUri::parse(&request.target_uri)?;
    if origin.scheme != target.scheme || origin.authority != target.authority {
        return Err(Malformed::ForeignAuthority.into());
    }
    let event = decode(value)?;
    if event.kind != KIND {
        return Err(AuthFailure::EventKind.into());
    }
    event.verify_id_and_signature()?;
    if event.created_at.saturating_add(config.max_age) < now {
        return Err(AuthFailure::Stale.into());
    }
    if event.created_at > now.saturating_add(config.max_future) {
        return Err(AuthFailure::Future.into());
    }
    let u = event.single_tag("u").ok_or(AuthFailure::EventUrl)?;
    if !same_url(u, &request.target_uri) {
        return Err(AuthFailure::EventUrl.into());
    }
    if event.single_tag("method") != Some(request.method.as_str()) {
        return Err(AuthFailure::EventMethod.into());
    }
    if request.body.len() > config.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: request.body.len(),
            limit: config.max_body_bytes,
        });
    }
    let body_hash = hex::encode(Sha256::digest(&request.body));
    let payload_ok = match event.single_tag("payload") {
        _ if event.tags_named("payload").count() > 1 => false,
        Some(p) => p == body_hash,
        None => !request.has_content(),
    };
    if !payload_ok {
        return Err(AuthFailure::EventPayload.into());
    }
    let pubkey = hex32(&event.pubkey).ok_or(Malformed::Nip98("pubkey"))?;
    cache.check_and_insert(
        ReplayKey {
            namespace: "nostr",
            public_key: pubkey,
            nonce: event.id.clone(),
        },
        event
            .created_at
            .saturating_add(config.max_age)
            .saturating_add(REPLAY_RETENTION_SLACK),
        now,
    )?;
    Ok(Verified {
        peer: VerifiedPeer {
            key: crate::request::PeerKey::Bip340(pubkey),
            scheme: Scheme::Nip98,
        },
        nonce: event.id,
        binding: RequestBinding::of(request),
        keyline_seal: false,
    })
}

fn same_url(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.as_str() == b.as_str(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        use crate::{MemoryReplayCache, PublicOrigin, SigningKey, VerifyConfig, verify_request};
        let key = SigningKey::bip340_from_secret(&[3; 32]).unwrap();
        let config = VerifyConfig::new(PublicOrigin::new("https://api.example.com").unwrap());
        let now = 1_767_225_600;
        let mut request = Request::new("DELETE", "https://api.example.com/v1/x?y=1")
            .with_header("Content-Type", "text/plain")
            .with_body(b"bye".to_vec());
        let sent = sign(&mut request, &key, now, &[0; 32]).unwrap();
        let mut cache = MemoryReplayCache::new();
        let verified = verify_request(&request, &config, now + 1, &mut cache).unwrap();
        assert_eq!(verified.nonce, sent.nonce);
        assert_eq!(verified.peer.scheme, crate::Scheme::Nip98);
        assert_eq!(
            verified.peer.key,
            crate::PeerKey::Bip340(*key.public_key().bytes())
        );
        // Replay, then a changed body: 401.
        let err = verify_request(&request, &config, now + 2, &mut cache).unwrap_err();
        assert_eq!(err.code(), "unauthorized.replay");
        let mut tampered = request.clone();
        tampered.body = b"BYE".to_vec();
        let err =
            verify_request(&tampered, &config, now + 2, &mut MemoryReplayCache::new()).unwrap_err();
        assert_eq!(err.code(), "unauthorized.event_payload");
        // Ed25519 keys cannot sign NIP-98.
        let ed = SigningKey::ed25519_from_seed(&[1; 32]);
        assert!(sign(&mut request, &ed, now, &[0; 32]).is_err());
    }

    #[test]
    fn authorization_header() {
        let r = Request::new("GET", "https://a.example/").with_header("Authorization", "Bearer x");
        assert_eq!(authorization_value(&r), None);
        let r = r.with_header("authorization", "nostr abc");
        assert_eq!(authorization_value(&r).as_deref(), Some("abc"));
        assert!(decode("ab c").is_err());
        assert!(decode(&"A".repeat(MAX_NIP98_ENCODED_BYTES + 1)).is_err());
        assert!(same_url(
            "https://A.example:443/x?y",
            "https://a.example/x?y"
        ));
        assert!(!same_url("https://a.example/x?y", "https://a.example/x?z"));
        assert!(!same_url("not a url", "not a url"));
    }
}
