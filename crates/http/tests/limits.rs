//! Every bound in `keyline_http::limits`, driven to its edge and one step past it.

use keyline_http::base::parse_signature_input;
use keyline_http::limits::*;
use keyline_http::nonce::{decode_nonce, encode_nonce, random_client_nonce};
use keyline_http::{
    MemoryReplayCache, PublicOrigin, ReplayCache, ReplayKey, ReplayLimits, Request, ServerNonceKey,
    SignOptions, SigningKey, VerifyConfig, date_within_tolerance, sign_request, verify_request,
};

const NOW: u64 = 1_767_225_600;

fn config() -> VerifyConfig {
    VerifyConfig::new(PublicOrigin::new("https://a.example").unwrap())
}

fn key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[1; 32])
}

fn signed_get(created: u64, nonce: &str) -> Request {
    let mut r = Request::new("GET", "https://a.example/x");
    sign_request(&mut r, &key(), &SignOptions::new(created, nonce, [0; 32])).unwrap();
    r
}

fn code(req: &Request, config: &VerifyConfig, now: u64) -> &'static str {
    verify_request(req, config, now, &mut MemoryReplayCache::new())
        .map(|_| "ok")
        .unwrap_or_else(|e| e.code())
}

fn nonce(i: u8) -> String {
    encode_nonce(&[i; 16])
}

/// Pads a field with an extra dictionary member (ignored label) to exactly `len` bytes.
fn padded(value: &str, len: usize) -> String {
    let prefix = format!("{value}, pad=\"");
    let fill = len - prefix.len() - 1;
    format!("{prefix}{}\"", "a".repeat(fill))
}

#[test]
fn signature_field_bytes() {
    let req = signed_get(NOW, &nonce(1));
    for field in ["Signature-Input", "Signature"] {
        let value = req.headers.combined(field).unwrap();
        let mut at = req.clone();
        at.headers
            .set(field, padded(&value, MAX_SIGNATURE_FIELD_BYTES));
        assert_eq!(
            at.headers.combined(field).unwrap().len(),
            MAX_SIGNATURE_FIELD_BYTES
        );
        // The pad member is a string, not a signature: the Signature field refuses its type,
        // Signature-Input its syntax as a member; either way not a size refusal.
        assert_ne!(
            code(&at, &config(), NOW),
            "malformed.field_too_long",
            "{field}"
        );
        let mut past = req.clone();
        past.headers
            .set(field, padded(&value, MAX_SIGNATURE_FIELD_BYTES + 1));
        assert_eq!(
            code(&past, &config(), NOW),
            "malformed.field_too_long",
            "{field}"
        );
    }
    // Content-Digest and Keyline-Seal are bounded the same way.
    for field in ["Content-Digest", "Keyline-Seal"] {
        let mut at = req.clone();
        at.headers.set(field, "a".repeat(MAX_SIGNATURE_FIELD_BYTES));
        assert_ne!(
            code(&at, &config(), NOW),
            "malformed.field_too_long",
            "{field}"
        );
        let mut past = req.clone();
        past.headers
            .set(field, "a".repeat(MAX_SIGNATURE_FIELD_BYTES + 1));
        assert_eq!(
            code(&past, &config(), NOW),
            "malformed.field_too_long",
            "{field}"
        );
    }
}

#[test]
fn dictionary_members() {
    let req = signed_get(NOW, &nonce(1));
    let si = req.headers.combined("Signature-Input").unwrap();
    let extra = |n: usize| -> String { (0..n).map(|i| format!(", p{i}=()")).collect::<String>() };
    let mut at = req.clone();
    at.headers.set(
        "Signature-Input",
        format!("{si}{}", extra(MAX_DICTIONARY_MEMBERS - 1)),
    );
    assert_eq!(code(&at, &config(), NOW), "ok");
    let mut past = req.clone();
    past.headers.set(
        "Signature-Input",
        format!("{si}{}", extra(MAX_DICTIONARY_MEMBERS)),
    );
    assert_eq!(code(&past, &config(), NOW), "malformed.structured_field");
}

#[test]
fn covered_components() {
    let list = |n: usize| {
        format!(
            "s=({})",
            (0..n)
                .map(|i| format!("\"h{i}\""))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    assert!(parse_signature_input(&list(MAX_COVERED_COMPONENTS)).is_ok());
    assert_eq!(
        parse_signature_input(&list(MAX_COVERED_COMPONENTS + 1))
            .unwrap_err()
            .code(),
        "malformed.component"
    );
}

#[test]
fn nip98_encoded_bytes() {
    let at = Request::new("GET", "https://a.example/x").with_header(
        "Authorization",
        format!("Nostr {}", "A".repeat(MAX_NIP98_ENCODED_BYTES)),
    );
    assert_eq!(code(&at, &config(), NOW), "malformed.nip98");
    let past = Request::new("GET", "https://a.example/x").with_header(
        "Authorization",
        format!("Nostr {}", "A".repeat(MAX_NIP98_ENCODED_BYTES + 1)),
    );
    assert_eq!(code(&past, &config(), NOW), "malformed.field_too_long");
}

#[test]
fn body_limit_default() {
    assert_eq!(config().max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    let post = |len: usize, n: u8| {
        let mut r = Request::new("POST", "https://a.example/x")
            .with_header("Content-Type", "application/octet-stream")
            .with_body(vec![0u8; len]);
        sign_request(&mut r, &key(), &SignOptions::new(NOW, nonce(n), [0; 32])).unwrap();
        r
    };
    assert_eq!(code(&post(DEFAULT_MAX_BODY_BYTES, 1), &config(), NOW), "ok");
    assert_eq!(
        code(&post(DEFAULT_MAX_BODY_BYTES + 1, 2), &config(), NOW),
        "body_too_large"
    );
}

#[test]
fn freshness_bounds() {
    let cfg = config();
    assert_eq!(
        (cfg.max_age, cfg.max_future),
        (DEFAULT_MAX_AGE, DEFAULT_MAX_FUTURE)
    );
    let req = signed_get(NOW, &nonce(1));
    assert_eq!(code(&req, &cfg, NOW + DEFAULT_MAX_AGE), "ok");
    assert_eq!(
        code(&req, &cfg, NOW + DEFAULT_MAX_AGE + 1),
        "unauthorized.stale"
    );
    assert_eq!(code(&req, &cfg, NOW - DEFAULT_MAX_FUTURE), "ok");
    assert_eq!(
        code(&req, &cfg, NOW - DEFAULT_MAX_FUTURE - 1),
        "unauthorized.future"
    );
}

#[test]
fn signature_lifetime() {
    let opts = SignOptions::new(NOW, nonce(1), [0; 32]);
    assert_eq!(opts.expires - opts.created, DEFAULT_SIGNATURE_LIFETIME);
    let mut at = opts.clone();
    at.expires = NOW + MAX_SIGNATURE_LIFETIME;
    let mut r = Request::new("GET", "https://a.example/x");
    sign_request(&mut r, &key(), &at).unwrap();
    assert_eq!(code(&r, &config(), NOW), "ok");
    let mut past = opts;
    past.expires = NOW + MAX_SIGNATURE_LIFETIME + 1;
    let mut r2 = Request::new("GET", "https://a.example/x");
    assert!(sign_request(&mut r2, &key(), &past).is_err());
    let si = r.headers.combined("signature-input").unwrap().replace(
        &format!("expires={}", NOW + MAX_SIGNATURE_LIFETIME),
        &format!("expires={}", NOW + MAX_SIGNATURE_LIFETIME + 1),
    );
    r.headers.set("Signature-Input", si);
    assert_eq!(code(&r, &config(), NOW), "malformed.window");
}

#[test]
fn server_nonce_validity() {
    let nk = ServerNonceKey::new([3; 32]);
    let mut cfg = config();
    cfg.server_nonce_key = Some(nk.clone());
    assert_eq!(cfg.server_nonce_validity, SERVER_NONCE_VALIDITY);
    // A client 10 minutes behind, using a server nonce issued at NOW.
    let req = signed_get(NOW - 600, &nk.issue(NOW, [0; 8]));
    assert_eq!(code(&req, &cfg, NOW + SERVER_NONCE_VALIDITY), "ok");
    assert_eq!(
        code(&req, &cfg, NOW + SERVER_NONCE_VALIDITY + 1),
        "unauthorized.stale"
    );
}

#[test]
fn nonce_sizes() {
    assert_eq!(
        decode_nonce(&random_client_nonce().unwrap()).unwrap().len(),
        CLIENT_NONCE_BYTES
    );
    let req = signed_get(NOW, &nonce(1));
    let si = req.headers.combined("signature-input").unwrap();
    for (len, want) in [
        (MIN_NONCE_BYTES - 1, "malformed.nonce"),
        (MAX_NONCE_BYTES + 1, "malformed.nonce"),
    ] {
        let mut bad = req.clone();
        bad.headers.set(
            "Signature-Input",
            si.replace(&nonce(1), &encode_nonce(&vec![1; len])),
        );
        assert_eq!(code(&bad, &config(), NOW), want, "{len}");
    }
    for len in [MIN_NONCE_BYTES, MAX_NONCE_BYTES] {
        let r = signed_get(NOW, &encode_nonce(&vec![2; len]));
        assert_eq!(code(&r, &config(), NOW), "ok", "{len}");
    }
}

#[test]
fn replay_cache_default_bounds() {
    let mut cache = MemoryReplayCache::new();
    assert_eq!(
        cache.limits(),
        ReplayLimits {
            capacity: DEFAULT_REPLAY_CAPACITY,
            per_key: DEFAULT_REPLAY_PER_KEY
        }
    );
    let keys = DEFAULT_REPLAY_CAPACITY / DEFAULT_REPLAY_PER_KEY;
    let entry = |k: usize, n: usize| ReplayKey {
        namespace: "ed25519",
        public_key: [k as u8; 32],
        nonce: n.to_string(),
    };
    // Fill every key to its per-key bound: exactly the total capacity.
    for k in 0..keys {
        for n in 0..DEFAULT_REPLAY_PER_KEY {
            cache.check_and_insert(entry(k, n), NOW + 61, NOW).unwrap();
        }
    }
    assert_eq!(cache.len(), DEFAULT_REPLAY_CAPACITY);
    // Past the per-key bound, and past the total for a new key: 429 until the oldest expires.
    let per_key = cache
        .check_and_insert(entry(0, DEFAULT_REPLAY_PER_KEY), NOW + 61, NOW + 1)
        .unwrap_err();
    assert_eq!(
        (per_key.status(), per_key.to_string().contains("60 s")),
        (429, true)
    );
    let total = cache
        .check_and_insert(entry(keys, 0), NOW + 61, NOW + 1)
        .unwrap_err();
    assert_eq!(total.status(), 429);
    // Live entries were not evicted: every one is still a replay.
    assert_eq!(
        cache
            .check_and_insert(entry(0, 0), NOW + 61, NOW + 1)
            .unwrap_err()
            .status(),
        401
    );
    // After expiry everything is dropped.
    cache
        .check_and_insert(entry(keys, 0), NOW + 122, NOW + 61)
        .unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn replay_small_bounds_at_and_past() {
    let mut cache = MemoryReplayCache::with_limits(ReplayLimits {
        capacity: 4,
        per_key: 2,
    });
    let e = |k: u8, n: &str| ReplayKey {
        namespace: "nostr",
        public_key: [k; 32],
        nonce: n.into(),
    };
    cache.check_and_insert(e(1, "a"), NOW + 10, NOW).unwrap();
    cache.check_and_insert(e(1, "b"), NOW + 5, NOW).unwrap();
    let err = cache
        .check_and_insert(e(1, "c"), NOW + 10, NOW)
        .unwrap_err();
    assert!(matches!(
        err,
        keyline_http::Error::ReplayCacheFull { retry_after: 5 }
    ));
    cache.check_and_insert(e(2, "a"), NOW + 10, NOW).unwrap();
    cache.check_and_insert(e(3, "a"), NOW + 10, NOW).unwrap();
    let err = cache
        .check_and_insert(e(4, "a"), NOW + 10, NOW)
        .unwrap_err();
    assert!(matches!(
        err,
        keyline_http::Error::ReplayCacheFull { retry_after: 5 }
    ));
    // Bounds of 0 are raised to 1.
    let c = MemoryReplayCache::with_limits(ReplayLimits {
        capacity: 0,
        per_key: 0,
    });
    assert_eq!(
        c.limits(),
        ReplayLimits {
            capacity: 1,
            per_key: 1
        }
    );
}

#[test]
fn replay_retention_slack() {
    let mut cache = MemoryReplayCache::new();
    let req = signed_get(NOW, &nonce(1));
    // Verified at the last fresh second …
    verify_request(&req, &config(), NOW + DEFAULT_MAX_AGE, &mut cache).unwrap();
    // … it is remembered through max_age + slack.
    let e = ReplayKey {
        namespace: "ed25519",
        public_key: *key().public_key().bytes(),
        nonce: nonce(1),
    };
    let until = NOW + DEFAULT_MAX_AGE + REPLAY_RETENTION_SLACK;
    assert_eq!(
        cache
            .check_and_insert(e.clone(), until, until - 1)
            .unwrap_err()
            .status(),
        401
    );
    cache.check_and_insert(e, until + 60, until).unwrap();
}

#[test]
fn response_date_tolerance() {
    let date = keyline_http::date::imf_fixdate(NOW);
    assert_eq!(
        date_within_tolerance(&date, NOW + RESPONSE_DATE_TOLERANCE),
        Some(NOW)
    );
    assert_eq!(
        date_within_tolerance(&date, NOW - RESPONSE_DATE_TOLERANCE),
        Some(NOW)
    );
    assert_eq!(
        date_within_tolerance(&date, NOW + RESPONSE_DATE_TOLERANCE + 1),
        None
    );
    assert_eq!(
        date_within_tolerance(&date, NOW - RESPONSE_DATE_TOLERANCE - 1),
        None
    );
    assert_eq!(date_within_tolerance("yesterday", NOW), None);
}
