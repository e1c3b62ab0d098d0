//! crypto-sessions v1.1.10 compat mode (`shared/specs/http.md` A.10, B.18 items 10 and 36–38)
//! against `shared/vectors/crypto-sessions/v1.1.10-wire.json`:
//!
//! - every exchange: the request verifies (and its body re-encrypts to the recorded bytes),
//!   the ECDH x-coordinate equals `keys.shared_x_hex`, and the response reproduces byte for
//!   byte from its plaintext and recorded IV;
//! - every behaviour case: where keyline claims parity the outcome matches v1.1.10; the cases
//!   that do not apply to a verify-only server say why and assert what keyline does instead;
//! - every malformed input of A.10 fails with its cause;
//! - end to end through the real axum layer (feature `server`).
//!
//! Run with `cargo test -p keyline-http --features compat-crypto-sessions`.
#![cfg(feature = "compat-crypto-sessions")]

use keyline_http::compat::{
    CompatConfig, Detection, FailureLimiter, LegacyRequest, LegacySecret, LegacyToken,
    LegacyVerified, decode_base64url, detect, encode_base64url, encrypt, parse_signature,
    verify_request,
};
use keyline_http::{AuthFailure, Error, Headers, LegacyFailure, PeerKey, Scheme};
use keyline_testkit::{array, hex, hex_n, load_json, str_field};
use serde_json::Value;

const NOW: u64 = 1_767_225_600;

fn vectors() -> Value {
    load_json("crypto-sessions/v1.1.10-wire.json")
}

/// The routes of the vectors' Express app (`behaviour_ports.express`).
const ROUTES: [&str; 5] = ["/getSend", "/getJson", "/postJson", "/postSend", "/echo"];

fn config(v: &Value) -> CompatConfig {
    let secret = LegacySecret::from_bytes(&hex_n::<32>(&v["keys"]["server"]["secret_hex"]))
        .expect("server secret");
    let mut config = CompatConfig::new(str_field(v, "host"), secret);
    for route in ROUTES {
        config = config.allow_route(route);
    }
    config
}

fn exchange<'a>(v: &'a Value, name: &str) -> &'a Value {
    array(v, "exchanges")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no exchange {name}"))
}

fn behaviour<'a>(v: &'a Value, name: &str) -> &'a Value {
    array(v, "behaviours")
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no behaviour {name}"))
}

fn legacy_cause(error: &Error) -> LegacyFailure {
    match error.auth_failure() {
        Some(AuthFailure::Legacy(why)) => why,
        other => panic!("expected a legacy 401, got {error} ({other:?})"),
    }
}

/// Verifies `method request_target` with `authorization` and `body` with a fresh limiter.
fn verify(
    config: &CompatConfig,
    method: &str,
    request_target: &str,
    authorization: &str,
    body: &[u8],
) -> keyline_http::Result<LegacyVerified> {
    verify_request(
        &LegacyRequest {
            method,
            request_target,
            authorization,
            body,
        },
        config,
        NOW,
        &mut FailureLimiter::new(),
    )
}

/// A recorded exchange's request, verified.
fn verify_exchange(config: &CompatConfig, e: &Value) -> keyline_http::Result<LegacyVerified> {
    let request = &e["request"];
    verify(
        config,
        str_field(request, "method"),
        str_field(request, "original_url"),
        str_field(&request["headers"], "authorization"),
        request["body"].as_str().unwrap_or("").as_bytes(),
    )
}

fn token_of(request: &Value) -> &str {
    request["authorization"]
        .as_str()
        .or_else(|| request["headers"]["authorization"].as_str())
        .expect("authorization")
}

// ---------------------------------------------------------------------------------------------
// Exchanges

#[test]
fn every_exchange_verifies_and_every_response_reproduces() {
    let v = vectors();
    let config = config(&v);
    let client = hex_n::<33>(&v["keys"]["client"]["pubkey33_hex"]);
    let server = hex_n::<33>(&v["keys"]["server"]["pubkey33_hex"]);
    assert_eq!(config.secret.public_key(), server);
    let exchanges = array(&v, "exchanges");
    assert_eq!(exchanges.len(), 10, "exchange count");
    for e in exchanges {
        let name = str_field(e, "name");
        let request = &e["request"];
        let response = &e["response"];
        let authorization = str_field(&request["headers"], "authorization");

        // The token splits into the recorded key and DER signature.
        let token = LegacyToken::parse(authorization).expect(name);
        assert_eq!(token.key(), &client, "{name}");
        assert_eq!(
            token.signature_bytes(),
            hex(&request["token"]["signature_der_hex"]),
            "{name}"
        );
        // ECDH x-coordinate = the recorded AES key.
        let shared = config.secret.shared_key(&token);
        assert_eq!(&shared[..], hex(&v["keys"]["shared_x_hex"]), "{name}");

        let verified = verify_exchange(&config, e).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(verified.peer.key, PeerKey::Secp256k1Compressed(client));
        assert_eq!(verified.peer.scheme, Scheme::CryptoSessionsV1_1_10);
        assert_eq!(verified.peer.scheme.name(), "crypto-sessions-v1.1.10");
        assert_eq!(verified.key, client);
        match str_field(request, "method") {
            "GET" => {
                // payload = host ‖ raw request-target
                let payload = format!(
                    "{}{}",
                    str_field(&v, "host"),
                    str_field(request, "original_url")
                );
                assert_eq!(payload, str_field(request, "signed_payload_utf8"), "{name}");
                assert!(verified.body.is_empty() && verified.content_type.is_none());
            }
            "POST" => {
                let plaintext = hex(&request["plaintext_hex"]);
                assert_eq!(verified.body, plaintext, "{name}");
                assert_eq!(plaintext, hex(&request["signed_payload_hex"]), "{name}");
                let json = serde_json::from_slice::<Value>(&plaintext).is_ok();
                assert_eq!(
                    verified.content_type,
                    Some(if json {
                        "application/json"
                    } else {
                        "text/plain; charset=utf-8"
                    }),
                    "{name}"
                );
                // The request body re-encrypts to the recorded bytes with its IV.
                let data = encrypt(&shared, &hex_n::<16>(&request["iv_hex"]), &plaintext);
                let mut recorded = hex(&request["iv_hex"]);
                recorded.extend(hex(&request["ciphertext_hex"]));
                assert_eq!(data, recorded, "{name}");
                assert_eq!(
                    encode_base64url(&data),
                    str_field(request, "data_b64url"),
                    "{name}"
                );
            }
            other => panic!("unexpected method {other}"),
        }

        // The response reproduces byte for byte from its plaintext and recorded IV.
        let plaintext = hex(&response["plaintext_hex"]);
        let iv = hex_n::<16>(&response["iv_hex"]);
        let legacy = verified.respond(&config, &plaintext, &iv).expect(name);
        assert_eq!(
            legacy.authorization,
            str_field(&response["headers"], "authorization"),
            "{name}: response token"
        );
        assert_eq!(legacy.body, str_field(response, "body"), "{name}: body");
        assert_eq!(legacy.body, str_field(response, "data_b64url"), "{name}");
        let server_token = LegacyToken::parse(&legacy.authorization).expect("server token");
        assert_eq!(server_token.key(), &server);
        assert_eq!(
            server_token.signature_bytes(),
            hex(&response["token"]["signature_der_hex"]),
            "{name}"
        );
    }
}

#[test]
fn iv_log_follows_the_iv_rule() {
    let v = vectors();
    for entry in array(&v, "iv_log") {
        let k = entry["k"].as_u64().expect("k");
        let iv = keyline_testkit::sha256_label(&format!("keyline/crypto-sessions/iv/{k}"));
        assert_eq!(hex(&entry["iv"]), iv[..16]);
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviours

fn behaviour_get(config: &CompatConfig, b: &Value) -> keyline_http::Result<LegacyVerified> {
    let request = &b["request"];
    verify(
        config,
        str_field(request, "method"),
        str_field(request, "path"),
        token_of(request),
        b"",
    )
}

#[test]
fn behaviours_where_keyline_matches_v1_1_10() {
    let v = vectors();
    let config = config(&v);
    // Accepted by v1.1.10 and by keyline.
    for name in [
        "get-compact-signature",
        "get-token-trailing-bits",
        "get-unregistered-key",
    ] {
        let b = behaviour(&v, name);
        assert_eq!(b["v1_1_10_result"]["accepted"], true, "{name}");
        let verified = behaviour_get(&config, b).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.peer.scheme, Scheme::CryptoSessionsV1_1_10);
    }
    // get-unregistered-key: any key is an identity; the peer is that key.
    let b = behaviour(&v, "get-unregistered-key");
    let verified = behaviour_get(&config, b).expect("unregistered key");
    assert_eq!(
        verified.peer.key,
        PeerKey::Secp256k1Compressed(hex_n::<33>(&b["request"]["client_pubkey33_hex"]))
    );
    // get-token-trailing-bits decodes to the same bytes as the original token.
    let original = token_of(&exchange(&v, "get-query")["request"]).to_string();
    let flipped = token_of(&behaviour(&v, "get-token-trailing-bits")["request"]);
    assert_ne!(original, flipped);
    assert_eq!(decode_base64url(&original), decode_base64url(flipped));
    // get-compact-signature carries the recorded r ‖ s.
    let b = behaviour(&v, "get-compact-signature");
    let token = LegacyToken::parse(token_of(&b["request"])).expect("token");
    assert_eq!(
        token.signature_bytes(),
        hex(&b["request"]["signature_compact_hex"])
    );

    // Refused by v1.1.10 (401) and by keyline, each for the recorded reason.
    for (name, cause) in [
        ("get-other-query", LegacyFailure::Signature),
        ("get-wrong-host-string", LegacyFailure::Signature),
        ("get-high-s", LegacyFailure::HighS),
        ("get-token-extra-char", LegacyFailure::SignatureEncoding),
    ] {
        let b = behaviour(&v, name);
        assert_eq!(b["v1_1_10_result"]["status"], 401, "{name}");
        let error = behaviour_get(&config, b).expect_err(name);
        assert_eq!(error.status(), 401, "{name}");
        assert_eq!(legacy_cause(&error), cause, "{name}");
    }
    // get-high-s is mathematically valid (`openssl_verifies`): its normalized form verifies.
    let b = behaviour(&v, "get-high-s");
    assert_eq!(b["openssl_verifies"], true);
    let der = hex(&b["request"]["signature_der_hex"]);
    let high = k256::ecdsa::Signature::from_der(&der).expect("DER");
    let normalized = high.normalize_s().to_der();
    assert_eq!(
        normalized.as_bytes(),
        hex(&exchange(&v, "get-query")["request"]["token"]["signature_der_hex"])
    );
    assert_eq!(
        legacy_cause(&parse_signature(&der).expect_err("high S")),
        LegacyFailure::HighS
    );

    // Padded or scheme-prefixed tokens are refused by v1.1.10's character check; keyline does
    // not even detect them as legacy (so on a protected route they are the usual 401 for a
    // request without credentials), and the token decoder refuses them too.
    let headers_with = |value: &str| {
        let mut h = Headers::new();
        h.push("authorization", value);
        h
    };
    for name in ["get-token-padded", "get-token-with-scheme"] {
        let b = behaviour(&v, name);
        assert_eq!(b["v1_1_10_result"]["status"], 401, "{name}");
        let token = token_of(&b["request"]);
        assert_eq!(
            detect(&headers_with(token), "/getSend", &config),
            Detection::NotLegacy,
            "{name}"
        );
        assert_eq!(
            legacy_cause(&behaviour_get(&config, b).expect_err(name)),
            LegacyFailure::Token
        );
    }
    // The genuine token is detected on allow-listed routes only.
    assert_eq!(
        detect(&headers_with(&original), "/getSend", &config),
        Detection::Legacy(original.clone())
    );
    assert_eq!(
        detect(&headers_with(&original), "/other", &config),
        Detection::NotLegacy
    );
}

/// post-bad-padding and post-iv-bitflip: v1.1.10's Express wrapper answers 401 to both (the
/// Next wrapper runs the handler for the bit-flipped IV: a padding oracle by status). keyline
/// answers the same uniform 401 to both, after the same work (a dummy verification runs after
/// a padding failure), and counts both against the key.
#[test]
fn padding_and_signature_failures_look_the_same() {
    let v = vectors();
    let config = config(&v);
    let mut causes = Vec::new();
    for name in ["post-bad-padding", "post-iv-bitflip"] {
        let b = behaviour(&v, name);
        assert_eq!(b["v1_1_10_result"]["express_status"], 401, "{name}");
        let request = &b["request"];
        let error = verify(
            &config,
            "POST",
            "/postJson",
            token_of(request),
            str_field(request, "body").as_bytes(),
        )
        .expect_err(name);
        assert_eq!(error.status(), 401);
        causes.push(legacy_cause(&error));
    }
    assert_eq!(causes, [LegacyFailure::Padding, LegacyFailure::Signature]);
}

/// Weaknesses of the format that a verify-only server cannot fix (A.9, A.10 last paragraph):
/// keyline behaves like v1.1.10 here, by construction, and the tests pin that down so the
/// documentation stays honest.
#[test]
fn behaviours_keyline_cannot_change() {
    let v = vectors();
    let config = config(&v);
    let post_object = exchange(&v, "post-object");
    let post_body = str_field(&post_object["request"], "body").as_bytes();
    let post_token = str_field(&post_object["request"]["headers"], "authorization");

    // replay-get / replay-post: identical requests carry identical tokens; no nonce, no time.
    let b = behaviour(&v, "replay-get");
    assert_eq!(
        b["v1_1_10_result"]["statuses"],
        serde_json::json!([200, 200])
    );
    let mut limiter = FailureLimiter::new();
    for _ in 0..3 {
        let request = LegacyRequest {
            method: "GET",
            request_target: str_field(&b["request"], "path"),
            authorization: token_of(&b["request"]),
            body: b"",
        };
        verify_request(&request, &config, NOW, &mut limiter).expect("replayed GET");
    }
    assert_eq!(
        behaviour(&v, "replay-post")["v1_1_10_result"]["accepted"],
        true
    );
    for _ in 0..2 {
        verify(&config, "POST", "/postJson", post_token, post_body).expect("replayed POST");
    }
    // post-route-swap: the POST signature covers only the body.
    let b = behaviour(&v, "post-route-swap");
    assert_eq!(b["v1_1_10_result"]["status"], 200);
    verify(&config, "POST", "/postSend", post_token, post_body).expect("route swap");
    verify(
        &config,
        "POST",
        "/postSend?any=query",
        post_token,
        post_body,
    )
    .expect("any query");
    // method-confusion-post-token-as-get: a body-less POST signs the URL string.
    let b = behaviour(&v, "method-confusion-post-token-as-get");
    assert_eq!(b["v1_1_10_result"]["status"], 200);
    behaviour_get(&config, b).expect("POST token as GET token");
    // plaintext-guess: anyone can confirm a guessed plaintext against the request signature.
    let b = behaviour(&v, "plaintext-guess");
    let token = LegacyToken::parse(post_token).expect("token");
    let signature = token.signature().expect("signature");
    let confirmed: Vec<bool> = array(&b["request"], "guesses")
        .iter()
        .map(|guess| {
            use k256::ecdsa::signature::hazmat::PrehashVerifier;
            use sha2::Digest;
            let digest = sha2::Sha256::digest(guess.as_str().expect("guess").as_bytes());
            token
                .verifying_key()
                .verify_prehash(&digest, &signature)
                .is_ok()
        })
        .collect();
    assert_eq!(
        serde_json::json!(confirmed),
        b["v1_1_10_result"]["confirmed"]
    );
}

/// Cases that concern the v1.1.10 *client* or the Next wrapper, which keyline does not have:
/// keyline never sends legacy requests, and its layer never runs a handler for a legacy
/// request that failed.
#[test]
fn behaviours_that_do_not_apply_to_a_verify_only_server() {
    let v = vectors();
    let config = config(&v);
    let get_token = token_of(&exchange(&v, "get-query")["request"]).to_string();

    // next-wrapper-bad-signature: the Next wrapper runs the handler unauthenticated (fail
    // open). keyline: the uniform 401 (the signature covers host + /getSend…, not /api/hello).
    let b = behaviour(&v, "next-wrapper-bad-signature");
    let config_next = config.clone().allow_route("/api/hello");
    let error = behaviour_get(&config_next, b).expect_err("bad signature");
    assert_eq!(legacy_cause(&error), LegacyFailure::Signature);

    // next-wrapper-delete, express-delete: keyline refuses every method but exactly GET/POST.
    for name in ["next-wrapper-delete", "express-delete"] {
        let b = behaviour(&v, name);
        let request = &b["request"];
        let error = verify(
            &config_next,
            str_field(request, "method"),
            str_field(request, "path"),
            token_of(request),
            b"",
        )
        .expect_err(name);
        assert_eq!(legacy_cause(&error), LegacyFailure::Method, "{name}");
    }

    // next-wrapper-no-token: without a token the request is not legacy at all.
    let b = behaviour(&v, "next-wrapper-no-token");
    assert_eq!(b["v1_1_10_result"]["status"], 401);
    assert_eq!(
        detect(&Headers::new(), "/api/hello", &config_next),
        Detection::NotLegacy
    );

    // client-other-methods: the v1.1.10 client sends other methods unsigned and in clear.
    // keyline has no legacy client; its verifier refuses those methods even with a valid token
    // (and without one the request is simply not legacy).
    let b = behaviour(&v, "client-other-methods");
    for method in array(&b["request"], "methods") {
        let method = method.as_str().expect("method");
        let error = verify(&config, method, "/postJson", &get_token, b"").expect_err(method);
        assert_eq!(legacy_cause(&error), LegacyFailure::Method, "{method}");
    }

    // response-swap: the v1.1.10 client accepts a recorded response to another request.
    // keyline's legacy responses are just as unbound (they can only be, in this format): the
    // response to get-hostname-option, given get-query's plaintext and IV, is byte for byte
    // get-query's recorded response.
    let b = behaviour(&v, "response-swap");
    assert_eq!(b["v1_1_10_result"]["client_ok"], true);
    let other = verify_exchange(&config, exchange(&v, "get-hostname-option")).expect("verify");
    let recorded = &exchange(&v, "get-query")["response"];
    let swapped = other
        .respond(
            &config,
            &hex(&recorded["plaintext_hex"]),
            &hex_n::<16>(&recorded["iv_hex"]),
        )
        .expect("respond");
    assert_eq!(swapped.body, str_field(recorded, "body"));
    assert_eq!(
        swapped.authorization,
        str_field(&recorded["headers"], "authorization")
    );
}

#[test]
fn every_behaviour_case_is_covered() {
    let v = vectors();
    let covered = [
        "replay-get",
        "get-other-query",
        "get-wrong-host-string",
        "post-route-swap",
        "replay-post",
        "method-confusion-post-token-as-get",
        "get-high-s",
        "get-compact-signature",
        "get-token-extra-char",
        "get-token-trailing-bits",
        "get-token-padded",
        "get-token-with-scheme",
        "get-unregistered-key",
        "post-bad-padding",
        "post-iv-bitflip",
        "next-wrapper-bad-signature",
        "next-wrapper-delete",
        "next-wrapper-no-token",
        "express-delete",
        "client-other-methods",
        "response-swap",
        "plaintext-guess",
    ];
    let names: Vec<&str> = array(&v, "behaviours")
        .iter()
        .map(|b| str_field(b, "name"))
        .collect();
    assert_eq!(names, covered, "a behaviour case was added or renamed");
}

// ---------------------------------------------------------------------------------------------
// Malformed input (A.10 steps 1–5), each with its cause.

fn get_query(v: &Value) -> (String, String) {
    let request = &exchange(v, "get-query")["request"];
    (
        str_field(&request["headers"], "authorization").to_string(),
        str_field(request, "original_url").to_string(),
    )
}

fn token_from(key: &[u8], signature: &[u8]) -> String {
    let mut bytes = key.to_vec();
    bytes.extend_from_slice(signature);
    encode_base64url(&bytes)
}

#[test]
fn malformed_tokens() {
    let v = vectors();
    let config = config(&v);
    let (token, target) = get_query(&v);
    let raw = decode_base64url(&token).expect("decodes");
    let (key, der) = raw.split_at(33);
    let cause = |authorization: &str| {
        legacy_cause(&verify(&config, "GET", &target, authorization, b"").expect_err(authorization))
    };
    use LegacyFailure::*;

    // Step 1: characters, padding, length mod 4, decoded length bounds, encoded length bound.
    assert_eq!(cause(""), Token);
    assert_eq!(cause(&format!("{token}=")), Token);
    assert_eq!(cause(&token.replace('_', "/")), Token);
    assert_eq!(cause(&format!("{token} ")), Token);
    let one_mod_four = format!("{}A", &token[..token.len() - token.len() % 4]);
    assert_eq!(one_mod_four.len() % 4, 1);
    assert_eq!(cause(&one_mod_four), Token);
    assert_eq!(cause(&encode_base64url(&raw[..33 + 7])), Token);
    assert_eq!(cause(&encode_base64url(&raw[..33])), Token);
    assert_eq!(cause(&token_from(key, &[0x30; 73])), Token);
    assert_eq!(cause(&"A".repeat(141)), Token);

    // Step 2: not a compressed point.
    for prefix in [0x00, 0x04, 0x05] {
        let mut bad = key.to_vec();
        bad[0] = prefix;
        assert_eq!(cause(&token_from(&bad, der)), PublicKey, "prefix {prefix}");
    }
    let mut off_curve = key.to_vec();
    off_curve[1..].fill(0xff); // x ≥ p
    assert_eq!(cause(&token_from(&off_curve, der)), PublicKey);
    let mut x5 = [0u8; 33];
    x5[0] = 2;
    x5[32] = 5; // x = 5: 125 + 7 = 132 is not a square mod p
    assert_eq!(cause(&token_from(&x5, der)), PublicKey);

    // Step 3: strict DER or 64-byte r ‖ s.
    let mut trailing = der.to_vec();
    trailing.push(0);
    assert_eq!(cause(&token_from(key, &trailing)), SignatureEncoding);
    let mut wrong_len = der.to_vec();
    wrong_len[1] += 1;
    assert_eq!(cause(&token_from(key, &wrong_len)), SignatureEncoding);
    let mut not_sequence = der.to_vec();
    not_sequence[0] = 0x31;
    assert_eq!(cause(&token_from(key, &not_sequence)), SignatureEncoding);
    // A non-minimal INTEGER (an extra 00 before a byte < 0x80) is not strict DER.
    let signature = k256::ecdsa::Signature::from_der(der).expect("DER");
    let (r, s) = signature.split_bytes();
    let der_of = |r: &[u8], s: &[u8]| {
        let mut body = vec![0x02, r.len() as u8];
        body.extend_from_slice(r);
        body.extend_from_slice(&[0x02, s.len() as u8]);
        body.extend_from_slice(s);
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    };
    assert_eq!(
        &der_of(&r, &s)[..],
        der,
        "r and s are 32 bytes without 00 here"
    );
    let mut padded_s = vec![0];
    padded_s.extend_from_slice(&s);
    assert_eq!(
        cause(&token_from(key, &der_of(&r, &padded_s))),
        SignatureEncoding
    );
    // r with its top bit set and no 00 prefix (a negative INTEGER): v1.1.10's lax parser
    // accepts it, strict DER does not.
    let high_r = [0x80u8; 32];
    assert_eq!(
        cause(&token_from(key, &der_of(&high_r, &s))),
        SignatureEncoding
    );
    // Compact r ‖ s with r = 0, or s = n (out of range); 63 and 65 bytes.
    let n =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").expect("n");
    let compact = |r: &[u8], s: &[u8]| [r, s].concat();
    assert_eq!(
        cause(&token_from(key, &compact(&[0; 32], &s))),
        SignatureEncoding
    );
    assert_eq!(cause(&token_from(key, &compact(&r, &n))), SignatureEncoding);
    assert_eq!(
        cause(&token_from(key, &compact(&r, &s)[..63])),
        SignatureEncoding
    );
    assert_eq!(
        cause(&token_from(key, &[compact(&r, &s), vec![0]].concat())),
        SignatureEncoding
    );
    // High S in compact form (from the get-high-s behaviour's DER).
    let high_der = hex(&behaviour(&v, "get-high-s")["request"]["signature_der_hex"]);
    let high = k256::ecdsa::Signature::from_der(&high_der)
        .expect("DER")
        .to_bytes();
    assert_eq!(cause(&token_from(key, &high)), HighS);
    assert_eq!(cause(&token_from(key, &high_der)), HighS);
    // Sanity: the compact form of the genuine signature verifies.
    verify(
        &config,
        "GET",
        &target,
        &token_from(key, &compact(&r, &s)),
        b"",
    )
    .expect("compact");
}

#[test]
fn malformed_requests() {
    let v = vectors();
    let config = config(&v);
    let (get_token, target) = get_query(&v);
    let post = &exchange(&v, "post-object")["request"];
    let post_token = str_field(&post["headers"], "authorization");
    let post_body = str_field(post, "body");
    let data = str_field(post, "data_b64url");
    use LegacyFailure::*;
    let post_cause = |body: &str| {
        legacy_cause(
            &verify(&config, "POST", "/postJson", post_token, body.as_bytes()).expect_err(body),
        )
    };

    // Methods other than exactly GET/POST.
    for method in [
        "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "post", "Get",
    ] {
        let error = verify(&config, method, &target, &get_token, b"").expect_err(method);
        assert_eq!(legacy_cause(&error), Method, "{method}");
    }
    // GET with a body.
    let error = verify(&config, "GET", &target, &get_token, b"x").expect_err("GET body");
    assert_eq!(legacy_cause(&error), Body);
    // POST bodies that are not {"data": base64url}.
    for body in [
        "",
        "data=abc",
        "[]",
        "{}",
        r#"{"data":1}"#,
        r#"{"data":null}"#,
        r#"{"data":""}"#,
        &format!(r#"{{"data":"{data}="}}"#),
        &format!(r#"{{"data":"{data} "}}"#),
        &format!(r#"{{"data":"{}"}}"#, data.replace('-', "+")),
        &format!(r#"{{"data":"{data}","extra":1}}"#),
        &format!(r#"{{"data":"{data}","data":"{data}"}}"#),
        &format!(r#"{{"data":"{data}"}}x"#),
    ] {
        assert_eq!(post_cause(body), Body, "{body}");
    }
    // Decoded data shorter than IV + one block, or not whole blocks.
    let raw = decode_base64url(data).expect("data");
    for len in [16, 31, raw.len() - 1, raw.len() - 8] {
        let body = format!(r#"{{"data":"{}"}}"#, encode_base64url(&raw[..len]));
        assert_eq!(post_cause(&body), CiphertextLength, "{len}");
    }
    // Bad padding (last byte of the last block changed) and a changed IV (bad signature).
    let mut bad_padding = raw.clone();
    let last = bad_padding.len() - 17;
    bad_padding[last] ^= 0x01;
    let body = format!(r#"{{"data":"{}"}}"#, encode_base64url(&bad_padding));
    assert_eq!(post_cause(&body), Padding);
    let mut iv_flip = raw.clone();
    iv_flip[0] ^= 0x80;
    let body = format!(r#"{{"data":"{}"}}"#, encode_base64url(&iv_flip));
    assert_eq!(post_cause(&body), Signature);
    // The untouched request passes, with whitespace around the JSON member too.
    verify(
        &config,
        "POST",
        "/postJson",
        post_token,
        post_body.as_bytes(),
    )
    .expect("genuine");
    let spaced = format!("{{ \"data\" : \"{data}\" }}\n");
    verify(&config, "POST", "/postJson", post_token, spaced.as_bytes()).expect("spaced");
    // The GET token over another target (path case, encoding, trailing slash) fails.
    for other in [
        target.replace("getSend", "getsend"),
        target.replace("challenge", "%63hallenge"),
        format!("{target}&"),
        target.replace('?', "/?"),
    ] {
        let error = verify(&config, "GET", &other, &get_token, b"").expect_err(&other);
        assert_eq!(legacy_cause(&error), Signature, "{other}");
    }
    // Another host string in the configuration.
    let mut other_host = config.clone();
    other_host.host = "http://localhost:3001/".into();
    let error = verify(&other_host, "GET", &target, &get_token, b"").expect_err("host");
    assert_eq!(legacy_cause(&error), Signature);
}

#[test]
fn the_failure_limit_engages_after_five_failures() {
    let v = vectors();
    let config = config(&v);
    let (token, target) = get_query(&v);
    let mut limiter = FailureLimiter::new();
    let request = |target: &str| {
        verify_request(
            &LegacyRequest {
                method: "GET",
                request_target: target,
                authorization: &token,
                body: b"",
            },
            &config,
            NOW,
            &mut FailureLimiter::new(),
        )
    };
    request(&target).expect("genuine");
    let mut run = |target: &str, now: u64| {
        verify_request(
            &LegacyRequest {
                method: "GET",
                request_target: target,
                authorization: &token,
                body: b"",
            },
            &config,
            now,
            &mut limiter,
        )
    };
    for i in 0..5 {
        assert_eq!(run("/wrong", NOW + i).expect_err("bad").status(), 401);
    }
    // Blocked: even the genuine request gets 429 for 600 s.
    let error = run(&target, NOW + 5).expect_err("blocked");
    assert_eq!(error.status(), 429);
    assert_eq!(error.code(), "rate_limited");
    assert_eq!(error.retry_after(), Some(599));
    assert_eq!(run(&target, NOW + 603).expect_err("blocked").status(), 429);
    run(&target, NOW + 604).expect("unblocked");
    // Undecodable tokens carry no key and are not counted.
    let mut limiter = FailureLimiter::new();
    for _ in 0..10 {
        let request = LegacyRequest {
            method: "GET",
            request_target: &target,
            authorization: "AAAA",
            body: b"",
        };
        assert_eq!(
            verify_request(&request, &config, NOW, &mut limiter)
                .expect_err("junk")
                .status(),
            401
        );
    }
    assert!(limiter.is_empty());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let v = vectors();
    let config = config(&v);
    let secret_hex = str_field(&v["keys"]["server"], "secret_hex").to_string();
    let shown = format!("{config:?} {:?}", config.secret);
    assert!(!shown.contains(&secret_hex[2..]), "{shown}");
    assert!(shown.contains(str_field(&v["keys"]["server"], "pubkey33_hex")));
    let verified = verify_exchange(&config, exchange(&v, "post-object")).expect("verify");
    let shown = format!("{verified:?}");
    assert!(
        !shown.contains(&str_field(&v["keys"], "shared_x_hex")[..16]),
        "{shown}"
    );
    assert!(LegacySecret::from_hex(&secret_hex).is_ok());
    assert!(LegacySecret::from_bytes(&[0; 32]).is_err());
    assert!(LegacySecret::from_hex("zz").is_err());
}

// ---------------------------------------------------------------------------------------------
// End to end: the recorded legacy requests through the real axum layer over loopback.

#[cfg(feature = "server")]
mod e2e {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, OnceLock};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::Extension;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use keyline_core::ManualClock;
    use keyline_http::{
        OsRandom, PublicOrigin, RandomSource, Scheme, ServerConfig, SigningKey, VerifiedPeer,
    };
    use serde_json::Value;

    use super::*;

    /// Hands out the queued IVs for 16-byte draws (the response IVs), the OS RNG otherwise.
    #[derive(Debug, Default)]
    struct IvQueue(Mutex<VecDeque<[u8; 16]>>);

    impl RandomSource for IvQueue {
        fn fill(&self, buf: &mut [u8]) -> keyline_http::Result<()> {
            if buf.len() == 16
                && let Some(iv) = self.0.lock().expect("lock").pop_front()
            {
                buf.copy_from_slice(&iv);
                return Ok(());
            }
            OsRandom.fill(buf)
        }
    }

    fn peer_is_legacy(peer: &Option<Extension<VerifiedPeer>>) -> bool {
        matches!(peer, Some(Extension(p)) if p.scheme == Scheme::CryptoSessionsV1_1_10)
    }

    fn query(uri: &Uri) -> Vec<(String, String)> {
        uri.query()
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn is_json(headers: &HeaderMap) -> bool {
        headers
            .get("content-type")
            .is_some_and(|v| v == "application/json")
    }

    /// The body as the Express app's `req.body` would serialize: JSON as is, else a string.
    fn body_json(headers: &HeaderMap, body: &Bytes) -> String {
        if is_json(headers) {
            String::from_utf8(body.to_vec()).expect("utf-8")
        } else {
            serde_json::to_string(&String::from_utf8_lossy(body)).expect("json")
        }
    }

    /// Handlers modelled on crypto-sessions' `test/server/app.ts`; each refuses (403) unless
    /// the layer put a legacy `VerifiedPeer` in the extensions.
    fn app_routes() -> Router {
        async fn get_send(peer: Option<Extension<VerifiedPeer>>, uri: Uri) -> Response {
            if !peer_is_legacy(&peer) {
                return StatusCode::FORBIDDEN.into_response();
            }
            let challenge = query(&uri)
                .into_iter()
                .find(|(k, _)| k == "challenge")
                .map(|(_, v)| v)
                .unwrap_or_default();
            challenge.into_response()
        }
        async fn get_json(peer: Option<Extension<VerifiedPeer>>, uri: Uri) -> Response {
            if !peer_is_legacy(&peer) {
                return StatusCode::FORBIDDEN.into_response();
            }
            let members: Vec<String> = query(&uri)
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(k).expect("json"),
                        serde_json::to_string(v).expect("json")
                    )
                })
                .collect();
            format!("{{{}}}", members.join(",")).into_response()
        }
        async fn post_json(
            peer: Option<Extension<VerifiedPeer>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            if !peer_is_legacy(&peer) {
                return StatusCode::FORBIDDEN.into_response();
            }
            body_json(&headers, &body).into_response()
        }
        async fn post_send(peer: Option<Extension<VerifiedPeer>>, body: Bytes) -> Response {
            if !peer_is_legacy(&peer) {
                return StatusCode::FORBIDDEN.into_response();
            }
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            value["challenge"]
                .as_str()
                .unwrap_or_default()
                .to_string()
                .into_response()
        }
        async fn echo(
            peer: Option<Extension<VerifiedPeer>>,
            method: Method,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            if !peer_is_legacy(&peer) {
                return StatusCode::FORBIDDEN.into_response();
            }
            if method == Method::GET {
                return r#"{"method":"GET"}"#.into_response();
            }
            format!(
                r#"{{"method":"{method}","body":{}}}"#,
                body_json(&headers, &body)
            )
            .into_response()
        }
        async fn public(peer: Option<Extension<VerifiedPeer>>) -> Response {
            format!("peer: {}", peer.is_some()).into_response()
        }
        Router::new()
            .route("/getSend", get(get_send))
            .route("/getJson", get(get_json))
            .route("/postJson", post(post_json))
            .route("/postSend", post(post_send))
            .route("/echo", get(echo).post(echo))
            .route("/public", get(public))
    }

    /// Starts the app behind the layer with compat mode for `routes`; returns the origin.
    async fn start(routes: &[&str], ivs: Vec<[u8; 16]>) -> String {
        let v = vectors();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let mut compat = CompatConfig::new(str_field(&v, "host"), config(&v).secret);
        for route in routes {
            compat = compat.allow_route(*route);
        }
        let server = ServerConfig::new(
            PublicOrigin::new(&origin).expect("origin"),
            SigningKey::ed25519_from_seed(&[1; 32]),
        )
        .expect("config")
        .with_clock(Arc::new(ManualClock::new(NOW)))
        .with_random(Arc::new(IvQueue(Mutex::new(ivs.into()))))
        .public_path("/public")
        .with_compat(compat);
        let app = app_routes().layer(keyline_http::KeylineHttpLayer::new(server));
        tokio::spawn(async move { axum::serve(listener, app).await });
        origin
    }

    async fn send(
        origin: &str,
        method: &str,
        target: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> reqwest::Response {
        let mut builder = reqwest::Client::new().request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{origin}{target}"),
        );
        if let Some(token) = authorization {
            builder = builder.header("authorization", token);
        }
        if let Some(body) = body {
            builder = builder
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        builder.send().await.expect("send")
    }

    async fn send_exchange(origin: &str, e: &Value) -> reqwest::Response {
        let request = &e["request"];
        send(
            origin,
            str_field(request, "method"),
            str_field(request, "original_url"),
            Some(str_field(&request["headers"], "authorization")),
            request["body"].as_str(),
        )
        .await
    }

    /// Captures WARN (and ERROR) events of every thread, for the per-request warning.
    fn warnings() -> &'static Mutex<Vec<String>> {
        static LOG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
        static INSTALL: OnceLock<()> = OnceLock::new();
        INSTALL.get_or_init(|| {
            let _ = tracing::subscriber::set_global_default(Capture);
        });
        LOG.get_or_init(|| Mutex::new(Vec::new()))
    }

    struct Capture;

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
            *metadata.level() <= tracing::Level::WARN
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(format!("{} ", event.metadata().level()));
            event.record(&mut fields);
            warnings().lock().expect("log").push(fields.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn recorded_exchanges_reproduce_through_the_layer() {
        let v = vectors();
        let log = warnings();
        let exchanges = array(&v, "exchanges");
        let ivs = exchanges
            .iter()
            .map(|e| hex_n::<16>(&e["response"]["iv_hex"]))
            .collect();
        let origin = start(&ROUTES, ivs).await;
        let client_key = str_field(&v["keys"]["client"], "pubkey33_hex");
        for e in exchanges {
            let name = str_field(e, "name");
            let response = send_exchange(&origin, e).await;
            assert_eq!(response.status(), 200, "{name}");
            let recorded = &e["response"];
            assert_eq!(
                response.headers()["authorization"],
                str_field(&recorded["headers"], "authorization"),
                "{name}"
            );
            assert_eq!(
                response.headers()["content-type"],
                "text/plain; charset=utf-8"
            );
            assert_eq!(
                response.text().await.expect("body"),
                str_field(recorded, "body"),
                "{name}"
            );
            // One WARN per request: key, method, path, and the text of A.10.
            let path = str_field(&e["request"], "original_url")
                .split('?')
                .next()
                .expect("path")
                .to_string();
            let method = str_field(&e["request"], "method");
            let expected = format!("secp256k1:{client_key}");
            let found = log.lock().expect("log").iter().any(|line| {
                line.starts_with("WARN")
                    && line.contains("crypto-sessions v1.1.10: no replay protection")
                    && line.contains(&expected)
                    && line.contains(&format!("method={method}"))
                    && line.contains(&format!("path={path}"))
            });
            assert!(found, "{name}: no warning logged");
        }
        // Replays are accepted (compat mode cannot detect them); the response IV is fresh.
        let e = exchange(&v, "get-query");
        let again = send_exchange(&origin, e).await;
        assert_eq!(again.status(), 200);
        assert_ne!(
            again.text().await.expect("body"),
            str_field(&e["response"], "body")
        );
    }

    #[tokio::test]
    async fn refusals_through_the_layer() {
        let v = vectors();
        // /getSend is not allow-listed here: the legacy token is an unknown scheme.
        let origin = start(&["/postJson"], Vec::new()).await;
        let get = exchange(&v, "get-query");
        let response = send_exchange(&origin, get).await;
        assert_eq!(response.status(), 401, "non-allow-listed route");
        assert!(response.headers().contains_key("www-authenticate"));
        let uniform = header_names(&response);
        assert!(response.text().await.expect("body").is_empty());

        // Tampered bodies: bad padding and a flipped IV give the same 401.
        for name in ["post-bad-padding", "post-iv-bitflip"] {
            let b = behaviour(&v, name);
            let response = send(
                &origin,
                "POST",
                "/postJson",
                Some(token_of(&b["request"])),
                Some(str_field(&b["request"], "body")),
            )
            .await;
            assert_eq!(response.status(), 401, "{name}");
            assert_eq!(header_names(&response), uniform, "{name}");
            assert!(response.text().await.expect("body").is_empty());
        }

        // Other methods with a valid token, and a GET with a body: 401.
        let token = token_of(&get["request"]);
        for method in ["PUT", "DELETE", "PATCH"] {
            let response = send(&origin, method, "/postJson", Some(token), None).await;
            assert_eq!(response.status(), 401, "{method}");
        }

        // A legacy token next to Signature-Input: two schemes, 400.
        let response = reqwest::Client::new()
            .post(format!("{origin}/postJson"))
            .header("authorization", token)
            .header("signature-input", "sig1=()")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400);

        // A public route that is not allow-listed serves a legacy-looking request normally.
        let response = send(&origin, "GET", "/public?x", Some(token), None).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("signature"));
        assert_eq!(response.text().await.expect("body"), "peer: false");
    }

    fn header_names(response: &reqwest::Response) -> Vec<String> {
        let mut names: Vec<String> = response
            .headers()
            .keys()
            .map(|k| k.as_str().to_string())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn failure_rate_limit_through_the_layer() {
        let v = vectors();
        let origin = start(&ROUTES, Vec::new()).await;
        let b = behaviour(&v, "post-iv-bitflip");
        for i in 0..5 {
            let response = send(
                &origin,
                "POST",
                "/postJson",
                Some(token_of(&b["request"])),
                Some(str_field(&b["request"], "body")),
            )
            .await;
            assert_eq!(response.status(), 401, "failure {i}");
        }
        // The genuine request of the same key is now refused for 600 s.
        let response = send_exchange(&origin, exchange(&v, "post-object")).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "600");
        assert!(response.headers().contains_key("signature"));
        // Other keys are not affected.
        let other = behaviour(&v, "get-unregistered-key");
        let response = send(
            &origin,
            "GET",
            str_field(&other["request"], "path"),
            Some(token_of(&other["request"])),
            None,
        )
        .await;
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn non_2xx_handler_responses_go_out_as_they_are() {
        let v = vectors();
        let e = exchange(&v, "post-null-body");
        // The body-less POST to /echo signs host + /echo; serve /echo with a handler that
        // answers 418 instead.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let compat =
            CompatConfig::new(str_field(&v, "host"), config(&v).secret).allow_route("/echo");
        let server = ServerConfig::new(
            PublicOrigin::new(&origin).expect("origin"),
            SigningKey::ed25519_from_seed(&[1; 32]),
        )
        .expect("config")
        .with_clock(Arc::new(ManualClock::new(NOW)))
        .with_compat(compat);
        let app = Router::new()
            .route(
                "/echo",
                post(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
            )
            .layer(keyline_http::KeylineHttpLayer::new(server));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = send_exchange(&origin, e).await;
        assert_eq!(response.status(), 418);
        assert!(!response.headers().contains_key("authorization"));
        assert_eq!(response.text().await.expect("body"), "short and stout");
    }
}
