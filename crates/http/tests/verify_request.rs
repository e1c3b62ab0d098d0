//! Request verification outcomes (http.md B.5–B.9; B.18 items 11–24 as far as they concern the
//! sans-IO core). Time is an argument: no test sleeps or reads a clock.

use keyline_http::{
    Error, MemoryReplayCache, PeerKey, PublicOrigin, ReplayLimits, Request, Scheme, ServerNonceKey,
    SignOptions, SigningKey, VerifyConfig, response::Challenge, sign_request,
    unauthorized_response, verify_request,
};

const NOW: u64 = 1_767_225_600;
const ORIGIN: &str = "https://api.example.com";

fn config() -> VerifyConfig {
    VerifyConfig::new(PublicOrigin::new(ORIGIN).unwrap())
}

fn keys() -> [SigningKey; 2] {
    [
        SigningKey::ed25519_from_seed(&[1; 32]),
        SigningKey::bip340_from_secret(&[2; 32]).unwrap(),
    ]
}

fn nonce(i: u8) -> String {
    keyline_http::nonce::encode_nonce(&[i; 16])
}

fn post() -> Request {
    Request::new("POST", format!("{ORIGIN}/v1/echo?x=1"))
        .with_header("Content-Type", "application/json")
        .with_body(br#"{"hello":"world"}"#.to_vec())
}

fn get() -> Request {
    Request::new("GET", format!("{ORIGIN}/v1/whoami"))
}

fn signed(mut req: Request, key: &SigningKey, created: u64, n: u8) -> Request {
    sign_request(&mut req, key, &SignOptions::new(created, nonce(n), [9; 32])).unwrap();
    req
}

/// Re-signs `req` over its current headers with the same `Signature-Input`.
fn resign(req: &mut Request, key: &SigningKey) {
    use keyline_http::base::{parse_signature_input, signature_field};
    use keyline_http::component::MessageRef;
    let (_, input) = parse_signature_input(&req.headers.combined("signature-input").unwrap())
        .unwrap()
        .remove(0);
    let base = input.signature_base(&MessageRef::Request(req)).unwrap();
    let sig = key.sign(base.as_bytes(), &[0; 32]).unwrap();
    req.headers
        .set("Signature", signature_field("sig1", &sig).unwrap());
}

fn verify(req: &Request, now: u64) -> Result<keyline_http::Verified, Error> {
    verify_request(req, &config(), now, &mut MemoryReplayCache::new())
}

fn code(req: &Request, now: u64) -> &'static str {
    verify(req, now).map(|_| "ok").unwrap_or_else(|e| e.code())
}

#[test]
fn valid_requests_both_algorithms_with_and_without_body() {
    for key in keys() {
        for req in [post(), get()] {
            let v = verify(&signed(req, &key, NOW, 1), NOW).unwrap();
            assert_eq!(v.peer.key, PeerKey::from(key.public_key()));
            assert_eq!(v.peer.scheme, Scheme::KeylineHttpV1);
        }
    }
}

#[test]
fn replay_is_401_and_other_nonce_passes() {
    let key = &keys()[0];
    let mut cache = MemoryReplayCache::new();
    let req = signed(post(), key, NOW, 1);
    verify_request(&req, &config(), NOW, &mut cache).unwrap();
    let err = verify_request(&req, &config(), NOW + 1, &mut cache).unwrap_err();
    assert_eq!((err.status(), err.code()), (401, "unauthorized.replay"));
    verify_request(&signed(post(), key, NOW, 2), &config(), NOW + 1, &mut cache).unwrap();
}

#[test]
fn freshness_window() {
    let key = &keys()[1];
    let req = signed(get(), key, NOW, 1);
    assert_eq!(code(&req, NOW + 60), "ok");
    assert_eq!(code(&req, NOW + 61), "unauthorized.stale");
    assert_eq!(code(&req, NOW - 30), "ok");
    assert_eq!(code(&req, NOW - 31), "unauthorized.future");
    // expires passed (a 10 s signature verified 11 s later).
    let mut short = get();
    let mut opts = SignOptions::new(NOW, nonce(3), [0; 32]);
    opts.expires = NOW + 10;
    sign_request(&mut short, key, &opts).unwrap();
    assert_eq!(code(&short, NOW + 10), "ok");
    assert_eq!(code(&short, NOW + 11), "unauthorized.expired");
    // expires − created = 301 is malformed (the signer refuses too).
    let mut long = SignOptions::new(NOW, nonce(4), [0; 32]);
    long.expires = NOW + 301;
    assert_eq!(
        sign_request(&mut get(), key, &long).unwrap_err().code(),
        "invalid_input.sign_parameter"
    );
    let ok = signed(get(), key, NOW, 4);
    let mut bad = ok.clone();
    let si = ok.headers.combined("signature-input").unwrap();
    bad.headers.set(
        "Signature-Input",
        si.replace(
            &format!("expires={}", NOW + 60),
            &format!("expires={}", NOW + 301),
        ),
    );
    assert_eq!(code(&bad, NOW), "malformed.window");
}

#[test]
fn server_nonce_lets_a_wrong_clock_through() {
    let key = &keys()[0];
    let nonce_key = ServerNonceKey::new([5; 32]);
    let mut cfg = config();
    cfg.server_nonce_key = Some(nonce_key.clone());
    // The client's clock is 10 minutes behind; the first attempt fails.
    let skewed = NOW - 600;
    let first = signed(get(), key, skewed, 1);
    let err = verify_request(&first, &cfg, NOW, &mut MemoryReplayCache::new()).unwrap_err();
    assert_eq!(err.code(), "unauthorized.stale");
    // The 401 offers a server nonce; the retry uses it with the same wrong clock.
    let server_nonce = nonce_key.issue(NOW, [1; 8]);
    let mut retry = get();
    sign_request(
        &mut retry,
        key,
        &SignOptions::new(skewed, server_nonce.clone(), [0; 32]),
    )
    .unwrap();
    let mut cache = MemoryReplayCache::new();
    verify_request(&retry, &cfg, NOW + 5, &mut cache).unwrap();
    assert_eq!(
        verify_request(&retry, &cfg, NOW + 6, &mut cache)
            .unwrap_err()
            .code(),
        "unauthorized.replay"
    );
    // Older than 60 s: refused.
    assert_eq!(
        verify_request(&retry, &cfg, NOW + 61, &mut MemoryReplayCache::new())
            .unwrap_err()
            .code(),
        "unauthorized.stale"
    );
    // Forged MAC: an ordinary client nonce, judged by the (wrong) clock.
    let forged_key = ServerNonceKey::new([6; 32]);
    let mut forged = get();
    sign_request(
        &mut forged,
        key,
        &SignOptions::new(skewed, forged_key.issue(NOW, [1; 8]), [0; 32]),
    )
    .unwrap();
    assert_eq!(
        verify_request(&forged, &cfg, NOW + 5, &mut MemoryReplayCache::new())
            .unwrap_err()
            .code(),
        "unauthorized.stale"
    );
}

#[test]
fn digest_and_body_shape() {
    let key = &keys()[0];
    let req = signed(post(), key, NOW, 1);
    // One bit of the digest.
    let mut bad = req.clone();
    let cd = req.headers.combined("content-digest").unwrap();
    let flipped = cd.replacen("k6I5", "k6I4", 1);
    assert_ne!(flipped, cd);
    bad.headers.set("Content-Digest", flipped);
    assert_eq!(code(&bad, NOW), "unauthorized.digest_mismatch");
    // Body changed after signing.
    let mut changed = req.clone();
    changed.body[2] ^= 1;
    assert_eq!(code(&changed, NOW), "unauthorized.digest_mismatch");
    // Body on a body-less signature.
    let mut extra = signed(get(), key, NOW, 2);
    extra.body = b"x".to_vec();
    extra.headers.push("Content-Type", "text/plain");
    assert_eq!(code(&extra, NOW), "malformed.body_shape");
    // Body-list signature on a body-less request.
    let mut emptied = req.clone();
    emptied.body.clear();
    assert_eq!(code(&emptied, NOW), "malformed.body_shape");
    // Missing Content-Digest / Content-Type with a body.
    let mut no_cd = req.clone();
    no_cd.headers.remove("content-digest");
    assert_eq!(code(&no_cd, NOW), "malformed.missing_content_digest");
    let mut no_ct = req.clone();
    no_ct.headers.remove("content-type");
    assert_eq!(code(&no_ct, NOW), "malformed.missing_content_type");
    // An extra md5 member.
    let mut md5 = req.clone();
    md5.headers.set(
        "Content-Digest",
        format!("{cd}, md5=:Sd/dVLAcvNLSq16eXua5uQ==:"),
    );
    assert_eq!(code(&md5, NOW), "malformed.content_digest");
    // An additional, correct sha-512 member is accepted and checked.
    let mut both = signed(post(), key, NOW, 3);
    let sha512 = keyline_http::digest::digest_member("sha-512", &both.body).unwrap();
    both.headers
        .set("Content-Digest", format!("{cd}, {sha512}"));
    resign(&mut both, key);
    assert_eq!(code(&both, NOW), "ok");
    let wrong512 = keyline_http::digest::digest_member("sha-512", b"other").unwrap();
    both.headers
        .set("Content-Digest", format!("{cd}, {wrong512}"));
    resign(&mut both, key);
    assert_eq!(code(&both, NOW), "unauthorized.digest_mismatch");
}

#[test]
fn key_and_profile_errors() {
    let [ed, bip] = keys();
    let req = signed(get(), &ed, NOW, 1);
    let si = req.headers.combined("signature-input").unwrap();
    // Signature from another key than keyid: swap the keyid to another Ed25519 key.
    let other = SigningKey::ed25519_from_seed(&[3; 32]).public_key().keyid();
    let mut swapped = req.clone();
    swapped.headers.set(
        "Signature-Input",
        si.replace(&ed.public_key().keyid(), &other),
    );
    assert_eq!(code(&swapped, NOW), "unauthorized.bad_signature");
    let cases = [
        (
            si.replace("alg=\"ed25519\"", "alg=\"bip340-secp256k1\""),
            "malformed.alg_keyid_mismatch",
        ),
        (si.replace("keyline-http-v1", "other"), "malformed.tag"),
        (
            si.replace(
                &ed.public_key().keyid(),
                &format!("{}=", ed.public_key().keyid()),
            ),
            "malformed.keyid",
        ),
        (si.replace("sig1=", "sig2="), "malformed.missing_label"),
        (
            si.replace(
                "(\"@method\" \"@target-uri\")",
                "(\"@target-uri\" \"@method\")",
            ),
            "malformed.covered_components",
        ),
        (
            si.replace(
                "(\"@method\" \"@target-uri\")",
                "(\"@method\" \"@target-uri\" \"keyline-seal\")",
            ),
            "malformed.missing_field",
        ),
        (si.clone() + ";nonce=\"x\"", "malformed.duplicate_key"),
        (
            "sig1=(\"@method\"".to_string(),
            "malformed.structured_field",
        ),
        (format!("{si}, {si}"), "malformed.duplicate_key"),
    ];
    for (value, want) in cases {
        let mut bad = req.clone();
        bad.headers.set("Signature-Input", value.clone());
        assert_eq!(code(&bad, NOW), want, "{value}");
    }
    // Signature field problems.
    let sig = req.headers.combined("signature").unwrap();
    for (value, want) in [
        ("sig1=:AAAA:".to_string(), "malformed.signature_length"),
        ("sig2=".to_string() + &sig[5..], "malformed.missing_label"),
        ("sig1=\"abc\"".to_string(), "malformed.wrong_type"),
        ("sig1=:AAAA".to_string(), "malformed.structured_field"),
    ] {
        let mut bad = req.clone();
        bad.headers.set("Signature", value.clone());
        assert_eq!(code(&bad, NOW), want, "{value}");
    }
    let mut no_sig = req.clone();
    no_sig.headers.remove("signature");
    assert_eq!(code(&no_sig, NOW), "malformed.missing_field");
    let mut no_input = req.clone();
    no_input.headers.remove("signature-input");
    assert_eq!(code(&no_input, NOW), "malformed.missing_field");
    // Nothing at all: 401 (unauthenticated).
    assert_eq!(code(&get(), NOW), "unauthorized.missing");
    // Two schemes at once.
    let mut both = signed(get(), &bip, NOW, 2);
    both.headers.push("Authorization", "Nostr eyJ9");
    assert_eq!(code(&both, NOW), "malformed.scheme_conflict");
    // Another Authorization scheme is left alone.
    let mut bearer = signed(get(), &bip, NOW, 3);
    bearer.headers.push("Authorization", "Bearer abc");
    assert_eq!(code(&bearer, NOW), "ok");
    // A label added by a proxy is ignored.
    let mut proxied = signed(get(), &bip, NOW, 4);
    proxied
        .headers
        .push("Signature-Input", "proxy=(\"@method\");created=1");
    proxied.headers.push("Signature", "proxy=:AAAA:");
    assert_eq!(code(&proxied, NOW), "ok");
}

#[test]
fn covered_component_changes_fail() {
    let key = &keys()[0];
    let base = Request::new("GET", format!("{ORIGIN}/a/b?x=1&y=%2F"));
    let req = signed(base, key, NOW, 1);
    assert_eq!(code(&req, NOW), "ok");
    for (method, uri) in [
        ("POST", format!("{ORIGIN}/a/b?x=1&y=%2F")),
        ("get", format!("{ORIGIN}/a/b?x=1&y=%2F")),
        ("GET", format!("{ORIGIN}/a/c?x=1&y=%2F")),
        ("GET", format!("{ORIGIN}/a/b?x=2&y=%2F")),
        ("GET", format!("{ORIGIN}/a/b?y=%2F&x=1")),
        ("GET", format!("{ORIGIN}/a/b?x=1&y=/")),
        ("GET", format!("{ORIGIN}/a/b?x=1&y=%2f")),
        ("GET", format!("{ORIGIN}/a/b")),
    ] {
        let mut changed = req.clone();
        changed.method = method.to_string();
        changed.target_uri = uri.clone();
        assert_eq!(
            code(&changed, NOW),
            "unauthorized.bad_signature",
            "{method} {uri}"
        );
    }
    // Host or scheme change: another origin is refused before the signature (400).
    for uri in [
        "https://evil.example/a/b?x=1&y=%2F",
        "http://api.example.com/a/b?x=1&y=%2F",
    ] {
        let mut changed = req.clone();
        changed.target_uri = uri.to_string();
        assert_eq!(code(&changed, NOW), "malformed.foreign_authority", "{uri}");
    }
    // X-Forwarded-Host / Forwarded / Host do not change @target-uri.
    let mut forwarded = req.clone();
    forwarded.headers.push("X-Forwarded-Host", "evil.example");
    forwarded
        .headers
        .push("Forwarded", "host=evil.example;proto=http");
    forwarded.headers.push("Host", "evil.example");
    assert_eq!(code(&forwarded, NOW), "ok");
}

#[test]
fn body_and_signature_moved_to_another_route() {
    let key = &keys()[1];
    let a = signed(
        Request::new("POST", format!("{ORIGIN}/a"))
            .with_header("Content-Type", "application/json")
            .with_body(b"{}".to_vec()),
        key,
        NOW,
        1,
    );
    let mut b = a.clone();
    b.target_uri = format!("{ORIGIN}/b");
    assert_eq!(code(&b, NOW), "unauthorized.bad_signature");
}

#[test]
fn absolute_form_and_origin() {
    let origin = PublicOrigin::new(ORIGIN).unwrap();
    assert_eq!(
        origin
            .target_uri("https://other.example/x")
            .unwrap_err()
            .to_string(),
        "absolute-form target names another authority than the public origin"
    );
    let key = &keys()[0];
    let uri = origin.target_uri("/v1/x?q").unwrap();
    let req = signed(Request::new("GET", uri), key, NOW, 1);
    assert_eq!(code(&req, NOW), "ok");
}

#[test]
fn body_over_limit_is_413() {
    let key = &keys()[0];
    let mut cfg = config();
    cfg.max_body_bytes = 16;
    let at = signed(post().with_body(vec![b'a'; 16]), key, NOW, 1);
    verify_request(&at, &cfg, NOW, &mut MemoryReplayCache::new()).unwrap();
    let past = signed(post().with_body(vec![b'a'; 17]), key, NOW, 2);
    let err = verify_request(&past, &cfg, NOW, &mut MemoryReplayCache::new()).unwrap_err();
    assert_eq!((err.status(), err.code()), (413, "body_too_large"));
}

#[test]
fn replay_cache_per_key_bound_is_429_for_that_key_only() {
    let [ed, bip] = keys();
    let mut cache = MemoryReplayCache::with_limits(ReplayLimits {
        capacity: 100,
        per_key: 3,
    });
    for n in 0..3 {
        verify_request(&signed(get(), &ed, NOW, n), &config(), NOW, &mut cache).unwrap();
    }
    let err = verify_request(&signed(get(), &ed, NOW, 3), &config(), NOW, &mut cache).unwrap_err();
    assert_eq!(err.status(), 429);
    assert!(matches!(err, Error::ReplayCacheFull { retry_after: 61 }));
    verify_request(&signed(get(), &bip, NOW, 3), &config(), NOW, &mut cache).unwrap();
    // Once the entries expire, the key passes again.
    verify_request(
        &signed(get(), &ed, NOW + 61, 4),
        &config(),
        NOW + 61,
        &mut cache,
    )
    .unwrap();
}

#[test]
fn every_401_cause_gets_the_same_response_shape() {
    let key = SigningKey::ed25519_from_seed(&[8; 32]);
    let client = &keys()[0];
    let ok = signed(get(), client, NOW, 1);
    let mut bad_sig = ok.clone();
    bad_sig.target_uri = format!("{ORIGIN}/v1/other");
    let stale = signed(get(), client, NOW - 100, 1);
    let mut responses = Vec::new();
    for req in [&bad_sig, &stale] {
        let err = verify(req, NOW).unwrap_err();
        assert_eq!(err.status(), 401);
        let resp = unauthorized_response(
            &Challenge {
                request: &ok,
                server_nonce: &ServerNonceKey::new([1; 32]).issue(NOW, [0; 8]),
                nip98: true,
            },
            &key,
            NOW,
            &[0; 32],
        )
        .unwrap();
        responses.push(resp);
    }
    assert_eq!(responses[0], responses[1]);
    let r = &responses[0];
    assert_eq!(
        r.headers.get_all("www-authenticate").collect::<Vec<_>>(),
        ["Signature realm=\"keyline-http-v1\"", "Nostr"]
    );
    assert!(
        r.headers
            .combined("accept-signature")
            .unwrap()
            .starts_with("sig1=(\"@method\" \"@target-uri\");nonce=")
    );
    // A request without any signature: the response nonce is the server nonce.
    let sn = ServerNonceKey::new([1; 32]).issue(NOW, [0; 8]);
    let unsigned = unauthorized_response(
        &Challenge {
            request: &post(),
            server_nonce: &sn,
            nip98: false,
        },
        &key,
        NOW,
        &[0; 32],
    )
    .unwrap();
    assert!(
        unsigned
            .headers
            .combined("signature-input")
            .unwrap()
            .contains(&sn)
    );
    assert!(
        unsigned
            .headers
            .combined("accept-signature")
            .unwrap()
            .contains("\"content-digest\"")
    );
}

/// B.18 item 36: a crypto-sessions v1.1.10 token (`Authorization: <bare base64url>`) is an
/// unknown scheme to the core verifier, with or without the compat feature (compat mode lives
/// in the layer, on allow-listed routes only): a protected route answers the usual 401.
#[test]
fn legacy_tokens_are_an_unknown_scheme() {
    let token = "AsIxb2ky0R0uBABoSjEgd1I2vO98sf_AqCMTwOUg8xmSMEQCIF6Rqr4oiIBFVblvpMRhMcLL3u0niQQmXi_RvJJTVEJAAiB9oq5n3nB7Dc6yQTjLgAeogOtx7ti0QSLEAL58i6jeqg";
    let request = get().with_header("Authorization", token);
    let error = verify_request(&request, &config(), NOW, &mut MemoryReplayCache::new())
        .expect_err("not a keyline request");
    assert_eq!(error.status(), 401);
    assert_eq!(error.code(), "unauthorized.missing");
}
