//! keyline-http-v1 worked examples (shared/vectors/http-sig/keyline-http-v1/examples.json,
//! http.md B.3/B.10, B.18 item 5): every request and response reproduces byte for byte
//! (headers, base, signature), verifies, and the server nonce MAC reproduces.

use keyline_http::base::parse_signature_input;
use keyline_http::component::MessageRef;
use keyline_http::{
    MemoryReplayCache, PeerKey, PublicKey, PublicOrigin, Request, RequestBinding, Response, Scheme,
    SentRequest, ServerNonceKey, SignOptions, SigningKey, VerifyConfig, response::Challenge,
    sign_request, sign_response, unauthorized_response, verify_request, verify_response,
};
use keyline_testkit::{array, hex, hex_n, load_json, str_field};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn example<'a>(doc: &'a Value, name: &str) -> &'a Value {
    array(doc, "examples")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("example {name}"))
}

fn key_for(doc: &Value, keyid: &str) -> SigningKey {
    let keys = doc["keys"].as_object().unwrap();
    let (_, k) = keys
        .iter()
        .find(|(_, k)| k["keyid"] == keyid)
        .expect("key for keyid");
    let key = if k.get("seed_hex").is_some() {
        SigningKey::ed25519_from_seed(&hex_n::<32>(&k["seed_hex"]))
    } else {
        SigningKey::bip340_from_secret(&hex_n::<32>(&k["secret_hex"])).unwrap()
    };
    assert_eq!(key.public_key().keyid(), keyid);
    key
}

fn request_of(e: &Value) -> Request {
    let r = &e["request"];
    let mut req = Request::new(str_field(r, "method"), str_field(r, "target_uri"));
    if let Some(ct) = r["headers"].get("content-type") {
        req.headers.push("Content-Type", ct.as_str().unwrap());
    }
    req.body = str_field(r, "body_utf8").as_bytes().to_vec();
    req
}

fn params_of(e: &Value, which: &str) -> (u64, u64, String) {
    let si = str_field(&e[which]["headers"], "signature-input");
    let (_, input) = parse_signature_input(si).unwrap().remove(0);
    (
        input.integer_param("created").unwrap() as u64,
        input.integer_param("expires").unwrap() as u64,
        input.string_param("nonce").unwrap().to_string(),
    )
}

/// Signs the example's request and checks headers, base and signature byte for byte.
fn reproduce_request(doc: &Value, name: &str) -> (Request, SentRequest) {
    let e = example(doc, name);
    let key = key_for(doc, str_field(e, "keyid"));
    let (created, expires, nonce) = params_of(e, "request");
    let mut req = request_of(e);
    let mut options = SignOptions::new(created, nonce, [0; 32]);
    options.expires = expires;
    let sent = sign_request(&mut req, &key, &options).unwrap();
    let headers = e["request"]["headers"].as_object().unwrap();
    for (name_, value) in headers {
        assert_eq!(
            req.headers.combined(name_).as_deref(),
            value.as_str(),
            "{name}: header {name_}"
        );
    }
    assert_eq!(
        req.headers.iter().count(),
        headers.len(),
        "{name}: no extra headers"
    );
    let (_, input) = parse_signature_input(&req.headers.combined("signature-input").unwrap())
        .unwrap()
        .remove(0);
    let base = input.signature_base(&MessageRef::Request(&req)).unwrap();
    assert_eq!(base, str_field(e, "signature_base"), "{name}: base");
    if let Some(m) = e.get("bip340_message_hex").filter(|m| !m.is_null()) {
        assert_eq!(Sha256::digest(base.as_bytes()).to_vec(), hex(m), "{name}");
    }
    let sig = key.sign(base.as_bytes(), &[0; 32]).unwrap();
    assert_eq!(sig.to_vec(), hex(&e["signature_hex"]), "{name}: signature");
    (req, sent)
}

#[test]
fn requests_reproduce_and_verify() {
    let doc = load_json("http-sig/keyline-http-v1/examples.json");
    assert_eq!(doc["profile"], "keyline-http-v1");
    let config = VerifyConfig::new(PublicOrigin::new("https://api.example.com").unwrap());
    let mut count = 0;
    for name in [
        "request-post-ed25519",
        "request-post-bip340-secp256k1",
        "request-get-ed25519",
    ] {
        let (req, sent) = reproduce_request(&doc, name);
        let e = example(&doc, name);
        let (created, _, _) = params_of(e, "request");
        let mut cache = MemoryReplayCache::new();
        let verified = verify_request(&req, &config, created, &mut cache).unwrap();
        let key = PublicKey::from_keyid(str_field(e, "keyid")).unwrap();
        assert_eq!(verified.peer.key, PeerKey::from(key));
        assert_eq!(verified.peer.scheme, Scheme::KeylineHttpV1);
        assert_eq!(verified.nonce, sent.nonce);
        assert_eq!(verified.binding, sent.binding);
        count += 1;
    }
    assert_eq!(count, 3);
}

#[test]
fn response_200_reproduces_and_verifies() {
    let doc = load_json("http-sig/keyline-http-v1/examples.json");
    let e = example(&doc, "response-200-ed25519");
    let (_, sent) = reproduce_request(&doc, str_field(e, "in_reply_to"));
    let key = key_for(&doc, str_field(e, "keyid"));
    let (created, _, nonce) = params_of(e, "response");
    assert_eq!(nonce, sent.nonce);
    let r = &e["response"];
    let mut resp = Response::new(r["status"].as_u64().unwrap() as u16)
        .with_header("Content-Type", str_field(&r["headers"], "content-type"))
        .with_body(str_field(r, "body_utf8").as_bytes().to_vec());
    sign_response(&mut resp, &sent.binding, &key, created, &nonce, &[0; 32]).unwrap();
    let headers = r["headers"].as_object().unwrap();
    for (name, value) in headers {
        assert_eq!(
            resp.headers.combined(name).as_deref(),
            value.as_str(),
            "{name}"
        );
    }
    assert_eq!(resp.headers.iter().count(), headers.len());
    let verified = verify_response(&resp, &sent, &key.public_key()).unwrap();
    assert_eq!(verified.created, created);
    assert_eq!(verified.date, "Thu, 01 Jan 2026 00:00:01 GMT");
}

#[test]
fn response_401_with_server_nonce() {
    let doc = load_json("http-sig/keyline-http-v1/examples.json");
    let e = example(&doc, "response-401-ed25519");
    let sn = &e["server_nonce"];
    let nonce_key = ServerNonceKey::new(hex_n::<32>(&sn["nonce_key_hex"]));
    let issued_at = sn["issued_at"].as_u64().unwrap();
    let server_nonce = nonce_key.issue(issued_at, hex_n::<8>(&sn["random_hex"]));
    assert_eq!(server_nonce, str_field(sn, "value"));
    {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&server_nonce)
            .unwrap();
        assert_eq!(raw, hex(&sn["raw_hex"]));
    }
    assert_eq!(nonce_key.verify(&server_nonce), Some(issued_at));
    // A forged MAC (one bit) is not a server nonce.
    let mut forged: Vec<char> = server_nonce.chars().collect();
    forged[30] = if forged[30] == 'A' { 'B' } else { 'A' };
    assert_eq!(
        nonce_key.verify(&forged.into_iter().collect::<String>()),
        None
    );

    // The request it answers: request-get-ed25519, "as if it had arrived stale".
    let (req, sent) = reproduce_request(&doc, "request-get-ed25519");
    let key = key_for(&doc, str_field(e, "keyid"));
    let config = {
        let mut c = VerifyConfig::new(PublicOrigin::new("https://api.example.com").unwrap());
        c.server_nonce_key = Some(nonce_key.clone());
        c
    };
    let (created, _, nonce) = params_of(e, "response");
    assert_eq!(nonce, sent.nonce, "the 401 echoes the request nonce");
    let err =
        verify_request(&req, &config, created + 61, &mut MemoryReplayCache::new()).unwrap_err();
    assert_eq!(err.code(), "unauthorized.stale");
    let resp = unauthorized_response(
        &Challenge {
            request: &req,
            server_nonce: &server_nonce,
            nip98: false,
        },
        &key,
        created,
        &[0; 32],
    )
    .unwrap();
    assert_eq!(resp.status, 401);
    let headers = e["response"]["headers"].as_object().unwrap();
    for (name, value) in headers {
        assert_eq!(
            resp.headers.combined(name).as_deref(),
            value.as_str(),
            "{name}"
        );
    }
    // B.9 also asks for Cache-Control: no-store (not covered; absent from the example).
    assert_eq!(
        resp.headers.combined("cache-control").as_deref(),
        Some("no-store")
    );
    assert!(resp.body.is_empty());
    verify_response(&resp, &sent, &key.public_key()).unwrap();
    // Another request's nonce does not bind.
    let other = SentRequest {
        nonce: "AAECAwQFBgcICQoLDA0ODw".into(),
        binding: sent.binding.clone(),
    };
    assert_eq!(
        verify_response(&resp, &other, &key.public_key())
            .unwrap_err()
            .code(),
        "unauthorized.response_binding"
    );
    let moved = SentRequest {
        nonce: sent.nonce.clone(),
        binding: RequestBinding {
            method: "GET".into(),
            target_uri: "https://api.example.com/v1/other".into(),
        },
    };
    assert_eq!(
        verify_response(&resp, &moved, &key.public_key())
            .unwrap_err()
            .code(),
        "unauthorized.bad_signature"
    );
}
