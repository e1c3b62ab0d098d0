//! NIP-98 (shared/vectors/nip98/nip98-examples.json; http.md B.12, B.18 items 8, 34, 35).

use base64::Engine;
use keyline_http::nip98::{Event, decode};
use keyline_http::{
    MemoryReplayCache, PeerKey, PublicOrigin, Request, Scheme, VerifyConfig, verify_request,
};
use keyline_testkit::{array, hex_n, load_json, str_field};
use serde_json::Value;

fn config() -> VerifyConfig {
    VerifyConfig::new(PublicOrigin::new("https://api.example.com").unwrap())
}

fn request(method: &str, url: &str, body: &Value, authorization: &str) -> Request {
    let mut req = Request::new(method, url).with_header("Authorization", authorization);
    if let Some(b) = body.as_str() {
        req = req
            .with_header("Content-Type", "application/octet-stream")
            .with_body(b.as_bytes().to_vec());
    }
    req
}

#[test]
fn generated_events_verify_padded_and_unpadded() {
    let doc = load_json("nip98/nip98-examples.json");
    let pubkey = hex_n::<32>(&doc["key"]["pubkey_xonly_hex"]);
    let created_at = doc["created_at"].as_u64().unwrap();
    let generated = array(&doc, "generated");
    let methods: Vec<&str> = generated
        .iter()
        .map(|g| str_field(&g["request"], "method"))
        .collect();
    assert_eq!(methods, ["GET", "POST", "PUT", "DELETE"]);
    for g in generated {
        let name = str_field(g, "name");
        let event = decode(str_field(g, "base64_padded")).unwrap();
        assert_eq!(event.id_preimage(), str_field(g, "id_preimage"), "{name}");
        assert_eq!(hex::encode(event.compute_id()), event.id, "{name}");
        event.verify_id_and_signature().unwrap();
        let json = base64::engine::general_purpose::STANDARD
            .decode(str_field(g, "base64_padded"))
            .unwrap();
        assert_eq!(json, str_field(g, "event_json").as_bytes());
        assert!(!str_field(g, "base64_unpadded").ends_with('='));
        for form in ["base64_padded", "base64_unpadded"] {
            let r = &g["request"];
            let req = request(
                str_field(r, "method"),
                str_field(r, "url"),
                &r["body"],
                &format!("Nostr {}", str_field(g, form)),
            );
            let v = verify_request(
                &req,
                &config(),
                created_at + 10,
                &mut MemoryReplayCache::new(),
            )
            .unwrap_or_else(|e| panic!("{name} {form}: {}", e.code()));
            assert_eq!(v.peer.key, PeerKey::Bip340(pubkey));
            assert_eq!(v.peer.scheme, Scheme::Nip98);
            assert_eq!(v.nonce, event.id);
        }
        assert_eq!(
            str_field(g, "authorization"),
            format!("Nostr {}", str_field(g, "base64_padded"))
        );
    }
}

#[test]
fn spec_example_quirks() {
    let doc = load_json("nip98/nip98-examples.json");
    let ex = &doc["spec_example"];
    let auth = str_field(ex, "authorization");
    let value = auth.strip_prefix("Nostr ").unwrap();
    assert_eq!(value.len() % 4, 2, "unpadded");
    let event = decode(value).unwrap();
    let printed: Event = serde_json::from_value(ex["event"].clone()).unwrap();
    assert_eq!(event, printed, "decodes to the printed event");
    // As printed: the id is not the hash of the event.
    assert_eq!(
        hex::encode(event.compute_id()),
        str_field(ex, "id_over_printed_tags")
    );
    assert_eq!(
        event.verify_id_and_signature().unwrap_err().code(),
        "unauthorized.event_id"
    );
    let req = Request::new("GET", "https://api.snort.social/api/v1/n5sp/list")
        .with_header("Authorization", auth);
    let cfg = VerifyConfig::new(PublicOrigin::new("https://api.snort.social").unwrap());
    let now = event.created_at;
    assert_eq!(
        verify_request(&req, &cfg, now, &mut MemoryReplayCache::new())
            .unwrap_err()
            .code(),
        "unauthorized.event_id"
    );
    // With the first tag renamed to `url`, id and signature verify …
    let mut renamed = event.clone();
    renamed.tags[0][0] = "url".to_string();
    assert_eq!(
        renamed.id_preimage(),
        str_field(ex, "id_preimage_url_tag_variant")
    );
    assert_eq!(
        hex::encode(renamed.compute_id()),
        str_field(ex, "id_over_url_tag_variant")
    );
    renamed.verify_id_and_signature().unwrap();
    // … but the event still fails NIP-98: it has no `u` tag.
    let json = serde_json::json!({
        "id": renamed.id, "pubkey": renamed.pubkey, "created_at": renamed.created_at,
        "kind": renamed.kind, "tags": renamed.tags, "content": renamed.content, "sig": renamed.sig,
    });
    let b64 = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    let req = Request::new("GET", "https://api.snort.social/api/v1/n5sp/list")
        .with_header("Authorization", format!("Nostr {b64}"));
    assert_eq!(
        verify_request(&req, &cfg, now, &mut MemoryReplayCache::new())
            .unwrap_err()
            .code(),
        "unauthorized.event_url"
    );
}

#[test]
fn nostr_tools_get_token() {
    let doc = load_json("nip98/nip98-examples.json");
    let t = &doc["nostr_tools_getToken"];
    let value = str_field(t, "authorization")
        .strip_prefix("Nostr ")
        .unwrap();
    let event = decode(value).unwrap();
    event.verify_id_and_signature().unwrap();
    assert_eq!(
        str_field(t, "hashPayload_of_object"),
        str_field(t, "sha256_of_body_bytes")
    );
    let req = Request::new("POST", "https://api.example.com/v1/echo")
        .with_header("Authorization", str_field(t, "authorization"))
        .with_header("Content-Type", "application/json")
        .with_body(br#"{"hello":"world"}"#.to_vec());
    verify_request(
        &req,
        &config(),
        event.created_at,
        &mut MemoryReplayCache::new(),
    )
    .unwrap();
}

#[test]
fn verifier_checks_table() {
    let doc = load_json("nip98/nip98-examples.json");
    let generated = array(&doc, "generated");
    let checks = array(&doc, "verifier_checks");
    let (mut accepted, mut rejected) = (0, 0);
    for c in checks {
        let g = generated
            .iter()
            .find(|g| g["name"] == c["case"])
            .expect("case");
        let req = request(
            str_field(c, "presented_method"),
            str_field(c, "presented_url"),
            &c["presented_body"],
            str_field(g, "authorization"),
        );
        let now = c["now"].as_u64().unwrap();
        // The server's public origin is the presented URL's (a server on http:// sees
        // http://… as its target URI).
        let url = str_field(c, "presented_url");
        let origin_end = url[8..].find('/').map_or(url.len(), |i| i + 8);
        let cfg = VerifyConfig::new(PublicOrigin::new(&url[..origin_end]).unwrap());
        let mut cache = MemoryReplayCache::new();
        if c["nonce_seen_before"] == true {
            let mut first = req.clone();
            // The earlier use of the same event (its own request).
            let r = &g["request"];
            first.method = str_field(r, "method").to_string();
            first.target_uri = str_field(r, "url").to_string();
            verify_request(&first, &cfg, now, &mut cache).unwrap();
        }
        let outcome = verify_request(&req, &cfg, now, &mut cache);
        match str_field(c, "expect") {
            "accept" => {
                outcome.unwrap_or_else(|e| panic!("{c}: {}", e.code()));
                accepted += 1;
            }
            "reject" => {
                let err = outcome.expect_err(str_field(c, "reason"));
                assert_eq!(err.status(), 401, "{}: {}", c["reason"], err.code());
                rejected += 1;
            }
            other => panic!("unknown expect {other}"),
        }
    }
    assert_eq!((accepted, rejected), (4, 9));
}

/// B.18 item 35 beyond the table: each 401 cause of NIP-98 by code.
#[test]
fn nip98_rejections_by_cause() {
    let doc = load_json("nip98/nip98-examples.json");
    let g = &array(&doc, "generated")[1]; // POST with body
    let now = doc["created_at"].as_u64().unwrap();
    let auth = str_field(g, "authorization");
    let url = str_field(&g["request"], "url");
    let body = g["request"]["body"].clone();
    let code = |req: &Request| {
        verify_request(req, &config(), now, &mut MemoryReplayCache::new())
            .map(|_| "ok")
            .unwrap_or_else(|e| e.code())
    };
    assert_eq!(code(&request("POST", url, &body, auth)), "ok");
    assert_eq!(
        code(&request("post", url, &body, auth)),
        "unauthorized.event_method"
    );
    assert_eq!(
        code(&request("POST", url, &Value::from("{}"), auth)),
        "unauthorized.event_payload"
    );
    assert_eq!(
        code(&request(
            "POST",
            "https://api.example.com/v1/echo?x",
            &body,
            auth
        )),
        "unauthorized.event_url"
    );
    // Default port and host case do not matter (URL comparison after parsing).
    let event = decode(auth.strip_prefix("Nostr ").unwrap()).unwrap();
    let resign = |mut e: Event, secret: &[u8; 32]| {
        let id = e.compute_id();
        e.id = hex::encode(id);
        e.sig = hex::encode(keyline_http::keys::bip340_sign(secret, &id, &[0; 32]).unwrap());
        let json = serde_json::json!({
            "id": e.id, "pubkey": e.pubkey, "created_at": e.created_at, "kind": e.kind,
            "tags": e.tags, "content": e.content, "sig": e.sig,
        });
        format!(
            "Nostr {}",
            base64::engine::general_purpose::STANDARD.encode(json.to_string())
        )
    };
    let secret = hex_n::<32>(&doc["key"]["secret_hex"]);
    let mut e = event.clone();
    e.tags[0][1] = "https://API.example.com:443/v1/echo".to_string();
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &secret))),
        "ok"
    );
    let mut e = event.clone();
    e.kind = 1;
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &secret))),
        "unauthorized.event_kind"
    );
    let mut e = event.clone();
    e.tags.retain(|t| t[0] != "payload");
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &secret))),
        "unauthorized.event_payload"
    );
    let mut e = event.clone();
    e.tags.push(vec!["u".into(), url.into()]);
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &secret))),
        "unauthorized.event_url"
    );
    let mut e = event.clone();
    e.created_at = now - 61;
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &secret))),
        "unauthorized.stale"
    );
    let mut e = event.clone();
    e.created_at = now + 31;
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &secret))),
        "unauthorized.future"
    );
    // A signature by another key than `pubkey`.
    let e = event.clone();
    assert_eq!(
        code(&request("POST", url, &body, &resign(e, &[0x11; 32]))),
        "unauthorized.bad_signature"
    );
    // HEAD and PATCH events are accepted like any method.
    for method in ["HEAD", "PATCH", "OPTIONS"] {
        let mut e = event.clone();
        e.tags.retain(|t| t[0] != "payload");
        e.tags[1][1] = method.to_string();
        assert_eq!(
            code(&request(method, url, &Value::Null, &resign(e, &secret))),
            "ok"
        );
    }
    // Malformed values are 400.
    for bad in ["Nostr ???", "Nostr eyJ9", "Nostr e30"] {
        let req = request("POST", url, &body, bad);
        assert_eq!(code(&req), "malformed.nip98", "{bad}");
    }
}

/// B.12 step 9 / B.10: the response to a NIP-98 request is signed with `nonce` = the event id,
/// and the client verifies it like any response.
#[test]
fn nip98_response_echoes_event_id() {
    use keyline_http::{
        SentRequest, SigningKey, response::response_nonce, sign_response, verify_response,
    };
    let doc = load_json("nip98/nip98-examples.json");
    let g = &array(&doc, "generated")[3]; // DELETE
    let r = &g["request"];
    let req = request(
        str_field(r, "method"),
        str_field(r, "url"),
        &r["body"],
        str_field(g, "authorization"),
    );
    let now = doc["created_at"].as_u64().unwrap();
    let verified = verify_request(&req, &config(), now, &mut MemoryReplayCache::new()).unwrap();
    assert_eq!(
        response_nonce(&req).as_deref(),
        Some(verified.nonce.as_str())
    );
    let server = SigningKey::ed25519_from_seed(&[4; 32]);
    let mut resp = keyline_http::Response::new(204);
    sign_response(
        &mut resp,
        &verified.binding,
        &server,
        now,
        &verified.nonce,
        &[0; 32],
    )
    .unwrap();
    let sent = SentRequest {
        nonce: verified.nonce.clone(),
        binding: verified.binding.clone(),
    };
    verify_response(&resp, &sent, &server.public_key()).unwrap();
}
