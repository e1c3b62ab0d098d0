//! Property tests (http.md B.18 item 39): signer and verifier agree over random requests; any
//! single change to a covered component fails; structured fields are stable under
//! parse → serialize → parse; repeated field lines canonicalise like one combined line.

use keyline_http::base::{SignatureInput, parse_signature_input};
use keyline_http::component::{Component, MessageRef};
use keyline_http::{
    MemoryReplayCache, PublicOrigin, Request, SignOptions, SigningKey, VerifyConfig, sign_request,
    verify_request,
};
use proptest::prelude::*;

const NOW: u64 = 1_767_225_600;
const ORIGIN: &str = "https://api.example.com";

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        "[A-Z]{1,10}",
        "[a-z][a-zA-Z]{0,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof!["[a-zA-Z0-9._~-]{0,8}", "%[0-9A-F]{2}", "[é€日本]{1,3}"],
        0..5,
    )
    .prop_map(|segs| format!("/{}", segs.join("/")))
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::collection::vec("[a-zA-Z0-9%+=._-]{0,8}", 0..4).prop_map(|p| p.join("&")),
    )
}

fn target(path: &str, query: &Option<String>) -> String {
    match query {
        Some(q) => format!("{ORIGIN}{path}?{q}"),
        None => format!("{ORIGIN}{path}"),
    }
}

fn key(bip340: bool, seed: u8) -> SigningKey {
    if bip340 {
        // [0xff; 32] is above the secp256k1 group order: not a valid secret.
        SigningKey::bip340_from_secret(&[seed.clamp(1, 0xfe); 32]).unwrap()
    } else {
        SigningKey::ed25519_from_seed(&[seed; 32])
    }
}

fn verify(req: &Request) -> Result<(), String> {
    let config = VerifyConfig::new(PublicOrigin::new(ORIGIN).unwrap());
    verify_request(req, &config, NOW, &mut MemoryReplayCache::new())
        .map(|_| ())
        .map_err(|e| e.code().to_string())
}

#[derive(Debug, Clone)]
enum Change {
    Method,
    Path,
    Query,
    ContentType,
    Body(usize),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sign_then_verify_round_trip(
        method in method(),
        path in path(),
        query in query(),
        body in prop::option::of(prop::collection::vec(any::<u8>(), 1..64)),
        content_type in "[a-z]{1,8}/[a-z0-9.+-]{1,12}",
        extra in prop::collection::vec(("x-[a-z]{1,6}", "[ -~]{0,12}"), 0..4),
        bip340 in any::<bool>(),
        seed in any::<u8>(),
        nonce in prop::array::uniform16(any::<u8>()),
    ) {
        let mut req = Request::new(method, target(&path, &query));
        for (n, v) in &extra {
            req.headers.push(n.clone(), v.clone());
        }
        if let Some(body) = &body {
            req.headers.push("Content-Type", content_type.clone());
            req.body = body.clone();
        }
        let key = key(bip340, seed);
        let nonce = keyline_http::nonce::encode_nonce(&nonce);
        sign_request(&mut req, &key, &SignOptions::new(NOW, nonce, [seed; 32])).unwrap();
        prop_assert_eq!(verify(&req), Ok(()));
    }

    #[test]
    fn any_single_change_fails(
        method in "[A-Z]{3,6}",
        path in path(),
        query in query(),
        body in prop::collection::vec(any::<u8>(), 1..64),
        bip340 in any::<bool>(),
        change in prop_oneof![
            Just(Change::Method),
            Just(Change::Path),
            Just(Change::Query),
            Just(Change::ContentType),
            (0usize..64).prop_map(Change::Body),
        ],
    ) {
        let mut req = Request::new(method, target(&path, &query))
            .with_header("Content-Type", "application/json")
            .with_body(body);
        sign_request(&mut req, &key(bip340, 7), &SignOptions::new(NOW, "AAECAwQFBgcICQoLDA0ODw", [0; 32])).unwrap();
        prop_assert_eq!(verify(&req), Ok(()));
        let mut changed = req.clone();
        match change {
            Change::Method => changed.method.push('X'),
            Change::Path => changed.target_uri = target(&format!("{path}x"), &query),
            Change::Query => changed.target_uri = match &query {
                Some(q) => target(&path, &Some(format!("{q}x"))),
                None => target(&path, &Some(String::new())),
            },
            Change::ContentType => changed.headers.set("Content-Type", "application/jsonx"),
            Change::Body(i) => {
                let i = i % changed.body.len();
                changed.body[i] ^= 0x01;
            }
        }
        prop_assert!(verify(&changed).is_err());
    }

    #[test]
    fn signature_input_parse_serialize_parse(
        names in prop::collection::vec("[a-z][a-z0-9-]{0,8}", 0..6),
        derived in prop::collection::vec(prop_oneof![
            Just("@method"), Just("@target-uri"), Just("@authority"), Just("@path"),
            Just("@query"), Just("@scheme"), Just("@request-target"),
        ], 0..3),
        params in prop::collection::vec(("[a-z][a-z0-9_-]{0,6}", prop_oneof![
            any::<i32>().prop_map(|i| i.to_string()),
            "[ !#-\\[\\]-~]{0,12}".prop_map(|s| format!("\"{s}\"")),
            Just("?1".to_string()),
            Just("?0".to_string()),
            "[A-Za-z][A-Za-z0-9]{0,6}",
        ]), 0..6),
        spaces in "[ ]{0,3}",
    ) {
        let mut seen = std::collections::HashSet::new();
        let ids: Vec<String> = derived.iter().map(|d| d.to_string()).chain(names)
            .filter(|n| seen.insert(n.clone()))
            .map(|n| format!("\"{n}\""))
            .collect();
        let mut pseen = std::collections::HashSet::new();
        let params: String = params.into_iter()
            .filter(|(k, _)| pseen.insert(k.clone()))
            .map(|(k, v)| format!(";{spaces}{k}={v}"))
            .collect();
        let field = format!("lbl=({spaces}{}{spaces}){params}", ids.join(" "));
        let (label, first) = parse_signature_input(&field).unwrap().remove(0);
        let serialized = first.to_field(&label).unwrap();
        let (_, second) = parse_signature_input(&serialized).unwrap().remove(0);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(second.to_field(&label).unwrap(), serialized);
    }

    #[test]
    fn repeated_field_lines_equal_one_combined_line(
        values in prop::collection::vec("[!-~]([ -~]{0,10}[!-~])?", 1..5),
        pad in "[ \t]{0,2}",
    ) {
        let mut split = Request::new("GET", format!("{ORIGIN}/"));
        for v in &values {
            split.headers.push("X-Multi", format!("{pad}{v}{pad}"));
        }
        let joined = Request::new("GET", format!("{ORIGIN}/"))
            .with_header("x-multi", values.join(", "));
        let input = SignatureInput::new(
            vec![Component::new("x-multi").unwrap()],
            sfv::Parameters::new(),
        ).unwrap();
        prop_assert_eq!(
            input.signature_base(&MessageRef::Request(&split)).unwrap(),
            input.signature_base(&MessageRef::Request(&joined)).unwrap()
        );
    }
}
