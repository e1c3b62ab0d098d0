//! NIP-46 codec (spec §3): requests and responses, unknown methods, transport content with
//! NIP-44 and legacy NIP-04, `connect` params, `sign_event` with a threshold signature, URIs
//! both ways, malformed and oversized input → typed errors.

mod common;

use common::{SeededRng, npub_of, random_secret};
use keyline_signer::ecdh::SharedX;
use keyline_signer::limits::{
    MAX_NIP46_ID_LEN, MAX_NIP46_MESSAGE, MAX_NIP46_PARAMS, MAX_REQUEST_CONTENT, MAX_URI_LEN,
    MAX_URI_RELAYS,
};
use keyline_signer::nip46::{
    self, BunkerUri, ClientMetadata, ConnectParams, Encryption, Method, NostrConnectUri,
    Permission, Request, Response, SignedEvent,
};
use keyline_signer::{Error, local, nip04, nip44};

const PK: &str = "83f3b2ae6aa368e8275397b9c26cf550101d63ebaab900d19dd4a4429f5ad8f5";

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn request_round_trip_and_every_method() {
    for method in Method::KNOWN {
        let req = Request::new("abc-1", method.clone(), vec![s("p0"), s("a \"quoted\"\n")]);
        let json = req.to_json();
        assert_eq!(Request::parse(&json).unwrap(), req);
        assert_eq!(Method::from_name(method.name()), method);
        assert!(method.is_known());
    }
    let req =
        Request::parse(r#"{"id":"1","method":"sign_event","params":["{}"],"extra":5}"#).unwrap();
    assert_eq!(req.method, Method::SignEvent);
    assert_eq!(req.params, ["{}"]);
}

#[test]
fn unknown_methods_are_kept_and_answered() {
    for name in [
        "describe",
        "get_relays",
        "create_account",
        "disconnect",
        "sign_schnorr",
        "",
        "CONNECT",
    ] {
        let json = format!(r#"{{"id":"q","method":"{name}","params":[]}}"#);
        let req = Request::parse(&json).unwrap();
        assert_eq!(req.method, Method::Unknown(name.to_owned()));
        assert!(!req.method.is_known());
        let reply = Response::unsupported(&req.id, &req.method);
        assert_eq!(
            reply.error.as_deref(),
            Some(format!("unsupported method: {name}").as_str())
        );
        assert_eq!(reply.result.as_deref(), Some("error"));
        assert!(reply.is_error());
    }
}

#[test]
fn malformed_requests_are_typed() {
    let dropped = [
        "",
        "not json",
        "[]",
        "\"str\"",
        r#"{"method":"ping","params":[]}"#,
        r#"{"id":5,"method":"ping","params":[]}"#,
        r#"{"id":null,"method":"ping","params":[]}"#,
    ];
    for json in dropped {
        match Request::parse(json).unwrap_err() {
            Error::Nip46InvalidRequest { id: None, .. } => {}
            other => panic!("{json}: {other:?}"),
        }
    }
    let long_id = "i".repeat(MAX_NIP46_ID_LEN + 1);
    let err = Request::parse(&format!(
        r#"{{"id":"{long_id}","method":"ping","params":[]}}"#
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Nip46InvalidRequest { id: None, .. }));
    let ok_id = "i".repeat(MAX_NIP46_ID_LEN);
    assert!(
        Request::parse(&format!(
            r#"{{"id":"{ok_id}","method":"ping","params":[]}}"#
        ))
        .is_ok()
    );

    let too_many = vec!["\"x\""; MAX_NIP46_PARAMS + 1].join(",");
    let answered = [
        r#"{"id":"r1","params":[]}"#.to_owned(),
        r#"{"id":"r1","method":7,"params":[]}"#.to_owned(),
        r#"{"id":"r1","method":"ping"}"#.to_owned(),
        r#"{"id":"r1","method":"ping","params":"x"}"#.to_owned(),
        r#"{"id":"r1","method":"ping","params":[1]}"#.to_owned(),
        r#"{"id":"r1","method":"sign_event","params":[{"kind":1}]}"#.to_owned(),
        format!(r#"{{"id":"r1","method":"{}","params":[]}}"#, "m".repeat(65)),
        format!(r#"{{"id":"r1","method":"ping","params":[{too_many}]}}"#),
    ];
    for json in &answered {
        let err = Request::parse(json).unwrap_err();
        assert!(
            matches!(&err, Error::Nip46InvalidRequest { id: Some(id), .. } if id == "r1"),
            "{json}: {err:?}"
        );
        let reply = Response::for_invalid_request(&err).unwrap();
        assert_eq!(
            reply.to_json(),
            r#"{"id":"r1","result":"error","error":"invalid request"}"#
        );
        assert_eq!(nip46::reply_text(&err), "invalid request");
    }
    let max_params = vec!["\"x\""; MAX_NIP46_PARAMS].join(",");
    assert!(
        Request::parse(&format!(
            r#"{{"id":"r","method":"ping","params":[{max_params}]}}"#
        ))
        .is_ok()
    );

    // Oversized: refused before parsing.
    let big = format!(
        r#"{{"id":"r","method":"ping","params":["{}"]}}"#,
        "x".repeat(MAX_NIP46_MESSAGE)
    );
    assert!(matches!(
        Request::parse(&big).unwrap_err(),
        Error::TooLarge { .. }
    ));
    assert_eq!(
        Response::for_invalid_request(&Error::Nip46InvalidRequest {
            id: None,
            reason: "x"
        }),
        None
    );
    // Deep nesting does not overflow the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Request::parse(&deep).is_err());
}

#[test]
fn responses_round_trip() {
    let ok = Response::ok("1", "pong");
    assert_eq!(ok.to_json(), r#"{"id":"1","result":"pong"}"#);
    assert!(!ok.is_error());
    let err = Response::error("2", "not connected");
    assert_eq!(
        err.to_json(),
        r#"{"id":"2","result":"error","error":"not connected"}"#
    );
    let auth = Response::auth_url("3", "https://op.example/approve/x");
    assert!(!auth.is_error());
    for r in [ok, err, auth] {
        assert_eq!(Response::parse(&r.to_json()).unwrap(), r);
    }
    let parsed = Response::parse(r#"{"id":"4","result":null,"error":null}"#).unwrap();
    assert_eq!((parsed.result, parsed.error), (None, None));
    for bad in [r#"{"result":"x"}"#, r#"{"id":"1","result":5}"#, "[1]", "x"] {
        assert!(matches!(
            Response::parse(bad).unwrap_err(),
            Error::Nip46InvalidResponse { .. }
        ));
    }
}

#[test]
fn transport_content_nip44_and_nip04() {
    let mut rng = SeededRng::new(46);
    let transport = random_secret(&mut rng);
    let client = random_secret(&mut rng);
    let bunker_side = SharedX::from_secret(&transport, &npub_of(&client)).unwrap();
    let client_side = SharedX::from_secret(&client, &npub_of(&transport)).unwrap();
    let req = Request::new("id-9", Method::GetPublicKey, vec![]);

    // NIP-44 request from the client, reply in NIP-44.
    let content = nip44::encrypt_with_rng(
        &nip44::ConversationKey::derive(&client, &npub_of(&transport)).unwrap(),
        &req.to_json(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(Encryption::detect(&content), Encryption::Nip44);
    let (enc, got) = nip46::open_request(&bunker_side, &content, false).unwrap();
    assert_eq!((enc, &got), (Encryption::Nip44, &req));
    let reply =
        nip46::seal_response(&bunker_side, enc, &Response::ok("id-9", PK), &mut rng).unwrap();
    let (enc2, json) = nip46::open(&client_side, &reply, false).unwrap();
    assert_eq!(enc2, Encryption::Nip44);
    assert_eq!(Response::parse(&json).unwrap(), Response::ok("id-9", PK));

    // Legacy NIP-04 request: accepted only when allowed, answered in NIP-04.
    let legacy = nip04::encrypt_with_rng(&client_side, &req.to_json(), &mut rng).unwrap();
    assert_eq!(Encryption::detect(&legacy), Encryption::Nip04);
    assert!(matches!(
        nip46::open_request(&bunker_side, &legacy, false).unwrap_err(),
        Error::Nip46InvalidRequest { id: None, .. }
    ));
    let (enc, got) = nip46::open_request(&bunker_side, &legacy, true).unwrap();
    assert_eq!((enc, &got), (Encryption::Nip04, &req));
    let reply =
        nip46::seal_response(&bunker_side, enc, &Response::ok("id-9", "ack"), &mut rng).unwrap();
    assert!(reply.contains("?iv="));
    assert_eq!(
        nip04::decrypt(&client_side, &reply).unwrap(),
        Response::ok("id-9", "ack").to_json()
    );

    // Oversized content is refused before decryption; a wrong key fails the MAC.
    let huge = "A".repeat(MAX_REQUEST_CONTENT + 1);
    assert!(matches!(
        nip46::open(&bunker_side, &huge, true).unwrap_err(),
        Error::TooLarge { .. }
    ));
    let stranger = SharedX::from_secret(&random_secret(&mut rng), &npub_of(&client)).unwrap();
    assert_eq!(
        nip46::open(&stranger, &content, true).unwrap_err(),
        Error::Nip44InvalidMac
    );
    assert_eq!(
        nip46::reply_text(&Error::Nip44InvalidMac),
        "decryption failed"
    );
}

#[test]
fn connect_params() {
    let p = ConnectParams::parse(&[s(PK)]).unwrap();
    assert_eq!(hex::encode(p.remote_signer), PK);
    assert_eq!((p.secret, p.perms.len(), p.metadata), (None, 0, None));

    // nostr-tools: [pubkey, secret || "", "", JSON(metadata)]
    let p = ConnectParams::parse(&[
        s(PK),
        s(""),
        s(""),
        s(r#"{"name":"App","url":"https://app.example","image":"https://app.example/i.png","x":1}"#),
    ])
    .unwrap();
    assert_eq!(p.secret, None);
    assert_eq!(
        p.metadata,
        Some(ClientMetadata {
            name: Some(s("App")),
            url: Some(s("https://app.example")),
            image: Some(s("https://app.example/i.png")),
        })
    );
    let p = ConnectParams::parse(&[s(PK), s("0s8j2djs"), s("nip44_encrypt,sign_event:4, ping")])
        .unwrap();
    assert_eq!(p.secret.as_deref(), Some("0s8j2djs"));
    assert_eq!(
        p.perms,
        vec![
            Permission {
                method: Method::Nip44Encrypt,
                param: None
            },
            Permission {
                method: Method::SignEvent,
                param: Some(s("4"))
            },
            Permission {
                method: Method::Ping,
                param: None
            },
        ]
    );
    assert_eq!(p.perms[1].kind(), Some(4));

    assert_eq!(
        ConnectParams::parse(&[]).unwrap_err().code(),
        "nip46_invalid_params"
    );
    assert_eq!(
        ConnectParams::parse(&vec![s(PK); 5]).unwrap_err().code(),
        "nip46_invalid_params"
    );
    assert_eq!(
        ConnectParams::parse(&[s("xyz")]).unwrap_err(),
        Error::InvalidPeerKey
    );
    assert_eq!(
        ConnectParams::parse(&[PK.to_uppercase()]).unwrap_err(),
        Error::InvalidPeerKey
    );
    for bad in [
        vec![s(PK), "s".repeat(129)],
        vec![s(PK), s(""), s("sign_event:70000")],
        vec![s(PK), s(""), s("Sign Event")],
        vec![s(PK), s(""), s(""), s("[1]")],
        vec![
            s(PK),
            s(""),
            s(""),
            format!(r#"{{"name":"{}"}}"#, "n".repeat(65)),
        ],
        vec![s(PK), s(""), s(""), r#"{"name":5}"#.to_owned()],
    ] {
        let err = ConnectParams::parse(&bad).unwrap_err();
        assert_eq!(err.code(), "nip46_invalid_params", "{bad:?}");
        assert_eq!(nip46::reply_text(&err), "invalid params");
    }
}

#[test]
fn peer_and_text_params() {
    let params = [s(PK), s("hello")];
    let (peer, text) = nip46::peer_and_text(&params).unwrap();
    assert_eq!((hex::encode(peer), text), (s(PK), "hello"));
    assert_eq!(
        nip46::peer_and_text(&[s(PK)]).unwrap_err().code(),
        "nip46_invalid_params"
    );
    // Not on the curve (x = 5), wrong length, uppercase, not hex.
    let off_curve = format!("{}05", "0".repeat(62));
    for bad in [
        off_curve,
        s(&PK[..62]),
        PK.to_uppercase(),
        format!("{}zz", &PK[..62]),
    ] {
        let err = nip46::peer_and_text(&[bad.clone(), s("x")]).unwrap_err();
        assert_eq!(err, Error::InvalidPeerKey, "{bad}");
        assert_eq!(nip46::reply_text(&err), "invalid pubkey");
    }
}

#[test]
fn sign_event_with_a_threshold_signature() {
    let mut rng = SeededRng::new(47);
    let (public, shares) = local::dkg(2, 3, &mut rng).unwrap();
    let user = public.npub();
    let json = r#"{"kind":1,"content":"hello \"nostr\"\n","tags":[["t","keyline"],["p","x"]],"created_at":1700000000,"id":"ignored","sig":"ignored"}"#;
    let event = nip46::sign_event_param(&[s(json)], &user).unwrap();
    let id = SignedEvent::id_of(&event, &user);
    let sig = local::sign(&public, &[&shares[0], &shares[1]], &id, &mut rng).unwrap();
    let signed = SignedEvent::new(event, user, sig);
    assert_eq!(signed.id, id);
    signed.verify().unwrap();
    let reply = signed.to_json();
    let back = SignedEvent::parse(&reply).unwrap();
    assert_eq!(back, signed);
    back.verify().unwrap();
    // Field set and order of the reply.
    let value: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "content",
            "created_at",
            "id",
            "kind",
            "pubkey",
            "sig",
            "tags"
        ]
    );
    assert!(reply.starts_with(&format!(
        "{{\"id\":\"{}\",\"pubkey\":\"{}\"",
        hex::encode(id),
        hex::encode(user)
    )));
    // A tampered reply fails verification.
    let mut forged = back.clone();
    forged.content.push('!');
    assert!(forged.verify().is_err());

    // An included matching pubkey is fine; another one is refused.
    let with_key = format!(
        r#"{{"kind":1,"content":"","tags":[],"created_at":1,"pubkey":"{}"}}"#,
        hex::encode(user)
    );
    nip46::sign_event_param(&[with_key], &user).unwrap();
    let other = format!(r#"{{"kind":1,"content":"","tags":[],"created_at":1,"pubkey":"{PK}"}}"#);
    let err = nip46::sign_event_param(&[other], &user).unwrap_err();
    assert_eq!(
        err,
        Error::Nip46InvalidEvent {
            reason: s("pubkey mismatch")
        }
    );
    assert_eq!(nip46::reply_text(&err), "invalid event: pubkey mismatch");

    for bad in [
        s("not json"),
        s(r#"{"kind":70000,"content":"","tags":[],"created_at":1}"#),
        s(r#"{"kind":1,"content":"","tags":[[1]],"created_at":1}"#),
        s(r#"{"kind":1,"tags":[],"created_at":1}"#),
        format!(
            r#"{{"kind":1,"content":"{}","tags":[],"created_at":1}}"#,
            "c".repeat(256 * 1024)
        ),
    ] {
        let err = nip46::sign_event_param(&[bad], &user).unwrap_err();
        assert_eq!(err.code(), "nip46_invalid_event");
        assert!(nip46::reply_text(&err).starts_with("invalid event: "));
    }
    assert_eq!(
        nip46::sign_event_param(&[], &user).unwrap_err().code(),
        "nip46_invalid_params"
    );
    assert_eq!(
        nip46::sign_event_param(&[s("{}"), s("{}")], &user)
            .unwrap_err()
            .code(),
        "nip46_invalid_params"
    );
}

#[test]
fn bunker_uris_both_ways() {
    let uri = BunkerUri {
        remote_signer: hex_32(PK),
        relays: vec![s("wss://relay.example.com"), s("ws://127.0.0.1:7777/sub")],
        secret: Some(s("0123456789abcdef0123456789abcdef")),
    };
    let text = uri.to_uri();
    assert_eq!(
        text,
        format!(
            "bunker://{PK}?relay=wss%3A%2F%2Frelay.example.com&relay=ws%3A%2F%2F127.0.0.1%3A7777%2Fsub&secret=0123456789abcdef0123456789abcdef"
        )
    );
    assert_eq!(BunkerUri::parse(&text).unwrap(), uri);
    // Raw (unencoded) values, unknown keys, duplicate relays merged, no secret.
    let raw = format!(
        "bunker://{PK}?relay=wss://relay.example.com&foo=bar&relay=wss://relay.example.com&"
    );
    let parsed = BunkerUri::parse(&raw).unwrap();
    assert_eq!(parsed.relays, ["wss://relay.example.com"]);
    assert_eq!(parsed.secret, None);
    assert_eq!(
        BunkerUri::parse(&format!(
            "bunker://{PK}?relay=wss%3A%2F%2Fr.example&secret="
        ))
        .unwrap()
        .secret,
        None
    );

    let relays = |n: usize| {
        (0..n)
            .map(|i| format!("relay=wss://r{i}.example"))
            .collect::<Vec<_>>()
            .join("&")
    };
    assert_eq!(
        BunkerUri::parse(&format!("bunker://{PK}?{}", relays(MAX_URI_RELAYS)))
            .unwrap()
            .relays
            .len(),
        MAX_URI_RELAYS
    );
    let bad = [
        format!("bunker://{PK}?{}", relays(MAX_URI_RELAYS + 1)),
        format!("bunker://{PK}"),
        format!("Bunker://{PK}?relay=wss://r.example"),
        format!("nostrconnect://{PK}?relay=wss://r.example"),
        format!("bunker://{}?relay=wss://r.example", PK.to_uppercase()),
        format!("bunker://{}?relay=wss://r.example", &PK[..63]),
        format!("bunker://{}05?relay=wss://r.example", "0".repeat(62)),
        format!("bunker://{PK}?relay=https://r.example"),
        format!("bunker://{PK}?relay=ws://r.example"),
        format!("bunker://{PK}?relay=wss%3A%2F%2Fr.example%"),
        format!("bunker://{PK}?relay=wss%3A%2F%2Fr.example%zz"),
        format!("bunker://{PK}?relay=wss://r.example#frag"),
        format!("bunker://{PK}?relay=wss://r.example&secret=a&secret=b"),
        format!(
            "bunker://{PK}?relay=wss://r.example&secret={}",
            "s".repeat(129)
        ),
        format!("bunker://{PK}?relay=wss://r.example&secret=a%0Ab"),
        format!("bunker://{PK}/?relay=wss://r.example"),
        format!(
            "bunker://{PK}?relay=wss://r.example&x={}",
            "y".repeat(MAX_URI_LEN)
        ),
    ];
    for uri in &bad {
        let err = BunkerUri::parse(uri).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Nip46InvalidUri {
                    scheme: "bunker",
                    ..
                }
            ),
            "{uri}: {err:?}"
        );
    }
}

#[test]
fn nostrconnect_uris_both_ways() {
    // The NIP's example.
    let example = "nostrconnect://83f3b2ae6aa368e8275397b9c26cf550101d63ebaab900d19dd4a4429f5ad8f5?relay=wss%3A%2F%2Frelay1.example.com&perms=nip44_encrypt%2Cnip44_decrypt%2Csign_event%3A13%2Csign_event%3A14%2Csign_event%3A1059&name=My+Client&secret=0s8j2djs&relay=wss%3A%2F%2Frelay2.example2.com";
    let uri = NostrConnectUri::parse(example).unwrap();
    assert_eq!(hex::encode(uri.client), PK);
    assert_eq!(
        uri.relays,
        ["wss://relay1.example.com", "wss://relay2.example2.com"]
    );
    assert_eq!(uri.secret, "0s8j2djs");
    assert_eq!(uri.metadata.name.as_deref(), Some("My Client"));
    let kinds: Vec<Option<u16>> = uri.perms.iter().map(Permission::kind).collect();
    assert_eq!(kinds, [None, None, Some(13), Some(14), Some(1059)]);
    assert_eq!(uri.perms[0].method, Method::Nip44Encrypt);
    // Build → parse gives the same value.
    let full = NostrConnectUri {
        metadata: ClientMetadata {
            name: Some(s("My Client & Co")),
            url: Some(s("https://client.example/?a=1&b=2")),
            image: Some(s("https://client.example/i.png")),
        },
        ..uri.clone()
    };
    let text = full.to_uri();
    assert!(text.contains("name=My%20Client%20%26%20Co"));
    assert_eq!(NostrConnectUri::parse(&text).unwrap(), full);
    assert_eq!(NostrConnectUri::parse(&uri.to_uri()).unwrap(), uri);

    // Legacy metadata= fallback (rust-nostr 0.44 form).
    let legacy = format!(
        "nostrconnect://{PK}?relay=wss%3A%2F%2Fr.example&secret=s1&metadata=%7B%22name%22%3A%22Old%22%2C%22url%22%3A%22https%3A%2F%2Fold.example%22%2C%22description%22%3A%22d%22%7D"
    );
    let parsed = NostrConnectUri::parse(&legacy).unwrap();
    assert_eq!(parsed.metadata.name.as_deref(), Some("Old"));
    assert_eq!(parsed.metadata.url.as_deref(), Some("https://old.example"));
    // Explicit name wins over metadata=.
    let both = format!("{legacy}&name=New");
    assert_eq!(
        NostrConnectUri::parse(&both)
            .unwrap()
            .metadata
            .name
            .as_deref(),
        Some("New")
    );

    let bad = [
        format!("nostrconnect://{PK}?relay=wss://r.example"),
        format!("nostrconnect://{PK}?secret=s"),
        format!("nostrconnect://{PK}?relay=wss://r.example&secret="),
        format!("bunker://{PK}?relay=wss://r.example&secret=s"),
        format!("nostrconnect://{PK}?relay=wss://r.example&secret=s&perms=sign_event%3Ax"),
        format!(
            "nostrconnect://{PK}?relay=wss://r.example&secret=s&name={}",
            "n".repeat(65)
        ),
        format!(
            "nostrconnect://{PK}?relay=wss://r.example&secret=s&url={}",
            "u".repeat(513)
        ),
        format!("nostrconnect://{PK}?relay=wss://r.example&secret=s&name=a&name=b"),
        format!("nostrconnect://{PK}?relay=wss://r.example&secret=s&metadata=notjson"),
        format!("nostrconnect://{PK}?relay=wss://r.example&secret=s&name=%E2%28"),
    ];
    for uri in &bad {
        let err = NostrConnectUri::parse(uri).unwrap_err();
        assert!(
            matches!(err, Error::Nip46InvalidUri { .. }),
            "{uri}: {err:?}"
        );
    }
    assert_eq!(
        NostrConnectUri::parse(&format!(
            "nostrconnect://{PK}?relay=wss://r.example&secret=s&name={}",
            "n".repeat(64)
        ))
        .unwrap()
        .metadata
        .name
        .map(|n| n.len()),
        Some(64)
    );
}

#[test]
fn reply_texts() {
    assert_eq!(
        nip46::reply_text(&Error::Nip04DecryptionFailed),
        "decryption failed"
    );
    assert_eq!(
        nip46::reply_text(&Error::Internal {
            reason: "secret detail"
        }),
        "internal error"
    );
    assert_eq!(
        nip46::reply_text(&Error::Unavailable {
            operation: "signing",
            answered: 1,
            need: 2,
            failed: vec![],
        }),
        "signing unavailable: 1 of 2 nodes answered"
    );
}

fn hex_32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).unwrap();
    out
}

/// The remaining bounds, at the edge and one past it.
#[test]
fn list_and_field_limits() {
    use keyline_signer::limits::{
        MAX_CLIENT_METADATA, MAX_CLIENT_URL, MAX_CONNECT_SECRET_LEN, MAX_NIP46_METHOD_LEN,
        MAX_PERMS, MAX_PERMS_LEN, MAX_RELAY_URL_LEN,
    };
    let perms = |n: usize| vec!["ping"; n].join(",");
    assert_eq!(
        nip46::parse_perms(&perms(MAX_PERMS)).unwrap().len(),
        MAX_PERMS
    );
    assert!(nip46::parse_perms(&perms(MAX_PERMS + 1)).is_err());
    let long = format!("{}{}", "p".repeat(MAX_PERMS_LEN - 4), ",,,,");
    assert_eq!(long.len(), MAX_PERMS_LEN);
    assert!(nip46::parse_perms(&long).is_ok());
    assert!(nip46::parse_perms(&format!("{long},")).is_err());

    let host = |len: usize| format!("wss://{}", "r".repeat(len - "wss://".len()));
    assert_eq!(nip46::check_relay_url(&host(MAX_RELAY_URL_LEN)), Ok(()));
    assert!(nip46::check_relay_url(&host(MAX_RELAY_URL_LEN + 1)).is_err());

    let meta = |len: usize| {
        let pad = len - r#"{"name":"a","x":""}"#.len();
        format!(r#"{{"name":"a","x":"{}"}}"#, "x".repeat(pad))
    };
    assert!(ClientMetadata::parse(&meta(MAX_CLIENT_METADATA)).is_ok());
    assert!(ClientMetadata::parse(&meta(MAX_CLIENT_METADATA + 1)).is_err());
    let url = |len: usize| format!(r#"{{"url":"{}"}}"#, "u".repeat(len));
    assert!(ClientMetadata::parse(&url(MAX_CLIENT_URL)).is_ok());
    assert!(ClientMetadata::parse(&url(MAX_CLIENT_URL + 1)).is_err());

    let secret = |len: usize| vec![s(PK), "s".repeat(len)];
    assert!(ConnectParams::parse(&secret(MAX_CONNECT_SECRET_LEN)).is_ok());
    assert!(ConnectParams::parse(&secret(MAX_CONNECT_SECRET_LEN + 1)).is_err());
    let uri = |len: usize| {
        format!(
            "bunker://{PK}?relay=wss://r.example&secret={}",
            "s".repeat(len)
        )
    };
    assert!(BunkerUri::parse(&uri(MAX_CONNECT_SECRET_LEN)).is_ok());
    assert!(BunkerUri::parse(&uri(MAX_CONNECT_SECRET_LEN + 1)).is_err());

    let method = |len: usize| format!(r#"{{"id":"m","method":"{}","params":[]}}"#, "m".repeat(len));
    assert!(Request::parse(&method(MAX_NIP46_METHOD_LEN)).is_ok());
    assert!(Request::parse(&method(MAX_NIP46_METHOD_LEN + 1)).is_err());

    // The URI length bound: exactly at it parses, one past is refused.
    let at = |len: usize| {
        let base = format!("bunker://{PK}?relay=wss://r.example&x=");
        format!("{base}{}", "y".repeat(len - base.len()))
    };
    assert!(BunkerUri::parse(&at(MAX_URI_LEN)).is_ok());
    assert!(BunkerUri::parse(&at(MAX_URI_LEN + 1)).is_err());

    // Request content and message bounds: exactly at the message bound parses.
    let pad = MAX_NIP46_MESSAGE - r#"{"id":"r","method":"ping","params":[""]}"#.len();
    let at_max = format!(
        r#"{{"id":"r","method":"ping","params":["{}"]}}"#,
        "x".repeat(pad)
    );
    assert_eq!(at_max.len(), MAX_NIP46_MESSAGE);
    assert!(Request::parse(&at_max).is_ok());
}
