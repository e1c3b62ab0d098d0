//! The coordinator ↔ node codec (spec §8.3, §16 item 14): every message round-trips; truncated,
//! oversized, trailing-byte, bad-enum, bad-length and unknown frames are refused without a panic.

mod common;

use std::collections::BTreeMap;

use common::SeededRng;
use keyline_signer::limits::{MAX_ERROR_TEXT, MAX_MESSAGE_LEN, MAX_NODE_FRAME, MAX_UNSIGNED_EVENT};
use keyline_signer::wire::{
    Body, CeremonyKind, ErrorCode, HEADER_LEN, Message, Method, Participant, RequestContext, Role,
    SealedItem, SignedEcho, SignedRound1, VERSION, decode_message, encode_message, frame_len,
    negotiate_version,
};
use keyline_signer::{Error, ParticipantId, dkg, ecdh, local, sign};
use proptest::prelude::*;
use zeroize::Zeroizing;

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

fn context() -> RequestContext {
    RequestContext {
        method: Method::SignEvent,
        client_pubkey: [3; 32],
        connection_id: [4; 16],
        unsigned_event: r#"{"kind":1,"content":"hé","tags":[],"created_at":1}"#.to_string(),
        peer: None,
        policy_version: 7,
        timestamp_ms: 1_700_000_000_000,
    }
}

/// One body of every type, with real FROST objects.
fn samples() -> Vec<Body> {
    let mut rng = SeededRng::new(1);
    let (public, shares) = local::dkg(2, 3, &mut rng).unwrap();
    let (n1, c1) = sign::commit(&shares[0], &mut rng);
    let (_n2, c2) = sign::commit(&shares[1], &mut rng);
    let package = sign::SigningPackage::new(
        &public,
        BTreeMap::from([(id(1), c1), (id(2), c2)]),
        &[9; 32],
    )
    .unwrap();
    let share = sign::sign(&shares[0], n1, &package).unwrap();
    let peer = common::x_only(&common::public_point(&[5; 32]));
    let partial = ecdh::partial(&shares[0], &peer, &[1; 16], &mut rng).unwrap();
    let (secret1, r1) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
    let (_s2, r2) = dkg::part1(id(2), 2, 3, &mut rng).unwrap();
    let (_s3, r3) = dkg::part1(id(3), 2, 3, &mut rng).unwrap();
    let (_secret2, round2) =
        dkg::part2(secret1, &BTreeMap::from([(id(2), r2.clone()), (id(3), r3)])).unwrap();
    let sealed: Vec<SealedItem> = round2
        .iter()
        .map(|(to, p)| SealedItem {
            peer: *to,
            payload: p.serialize().unwrap(),
        })
        .collect();
    let signed = |i: u16, p: &dkg::Round1Package| SignedRound1 {
        id: id(i),
        package: p.clone(),
        signature: [i as u8; 64],
    };
    let echo = |i: u16| SignedEcho {
        id: id(i),
        hash: [0xEE; 32],
        signature: [i as u8; 64],
    };
    let mut ecdh_ctx = context();
    ecdh_ctx.method = Method::Nip44Decrypt;
    ecdh_ctx.unsigned_event.clear();
    ecdh_ctx.peer = Some(peer);
    vec![
        Body::Hello {
            min_version: 1,
            max_version: 1,
            role: Role::Node,
            descriptor: vec![1, 2, 3],
        },
        Body::Hello {
            min_version: 1,
            max_version: 3,
            role: Role::Coordinator,
            descriptor: vec![],
        },
        Body::HelloAck {
            version: 1,
            clock_ms: 42,
        },
        Body::Ping { nonce: 5 },
        Body::Pong {
            nonce: 5,
            active_sessions: 2,
        },
        Body::error(ErrorCode::NONCE_USED, Some(id(2)), "refused"),
        Body::error(ErrorCode(999), None, ""),
        Body::SignCommitReq {
            session_id: [1; 16],
            key_id: [2; 16],
            deadline_ms: 3000,
            message: vec![9; 32],
            participants: vec![id(1), id(2), id(3)],
            context: context(),
        },
        Body::SignCommitResp {
            session_id: [1; 16],
            id: id(1),
            commitments: c1,
        },
        Body::SignShareReq {
            session_id: [1; 16],
            package: package.clone(),
        },
        Body::SignShareResp {
            session_id: [1; 16],
            id: id(1),
            share,
        },
        Body::SignAbort {
            session_id: [1; 16],
        },
        Body::EcdhReq {
            session_id: [1; 16],
            key_id: [2; 16],
            peer,
            context: ecdh_ctx,
        },
        Body::EcdhResp {
            session_id: [1; 16],
            partial,
        },
        Body::CeremonyStart {
            ceremony_id: [8; 16],
            kind: CeremonyKind::Dkg,
            key_id: [2; 16],
            threshold: 2,
            participants: (1..=3)
                .map(|i| Participant {
                    id: id(i),
                    node_id: [i as u8; 32],
                    hpke_pk: [0x40 + i as u8; 32],
                })
                .collect(),
            round_deadline_ms: 30_000,
            total_deadline_ms: 120_000,
        },
        Body::Round1 {
            ceremony_id: [8; 16],
            package: signed(1, &r1),
        },
        Body::Round1Set {
            ceremony_id: [8; 16],
            packages: vec![signed(1, &r1), signed(2, &r2)],
        },
        Body::Echo {
            ceremony_id: [8; 16],
            echo: echo(1),
        },
        Body::EchoSet {
            ceremony_id: [8; 16],
            echoes: vec![echo(1), echo(2), echo(3)],
        },
        Body::Sealed {
            ceremony_id: [8; 16],
            round: 2,
            items: sealed.clone(),
        },
        Body::SealedDeliver {
            ceremony_id: [8; 16],
            round: 2,
            items: sealed,
        },
        Body::KeyConfirm {
            ceremony_id: [8; 16],
            npub: public.npub(),
            public: public.clone(),
            hash: public.fingerprint().unwrap(),
            signature: [6; 64],
        },
        Body::Commit {
            ceremony_id: [8; 16],
            hash: [7; 32],
        },
        Body::Committed {
            ceremony_id: [8; 16],
            share_version: 2,
        },
        Body::CeremonyAbort {
            ceremony_id: [8; 16],
            reason: ErrorCode::INTERNAL,
        },
        import_share(&public, vec![0x5A; 120]),
    ]
}

fn import_share(public: &keyline_signer::PublicKeyPackage, sealed: Vec<u8>) -> Body {
    Body::ImportShare {
        ceremony_id: [8; 16],
        key_id: [2; 16],
        id: id(3),
        sealed,
        public: public.clone(),
    }
}

fn frames() -> Vec<(Message, Zeroizing<Vec<u8>>)> {
    samples()
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let m = Message::new(i as u64 * 0x0101_0101, body);
            let bytes = encode_message(&m).unwrap();
            (m, bytes)
        })
        .collect()
}

#[test]
fn every_message_round_trips() {
    let frames = frames();
    let types: std::collections::BTreeSet<u8> =
        frames.iter().map(|(m, _)| m.body.type_byte()).collect();
    assert_eq!(types.len(), 24, "one sample per type");
    for (m, bytes) in &frames {
        assert_eq!(
            u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len() - 4
        );
        assert_eq!(bytes[4], VERSION);
        assert_eq!(bytes[5], m.body.type_byte());
        assert_eq!(frame_len(bytes).unwrap(), Some(bytes.len()));
        assert_eq!(&decode_message(bytes).unwrap(), m, "{:?}", m.body);
        assert_eq!(m.encode().unwrap(), *bytes);
    }
}

#[test]
fn truncated_and_trailing_frames_are_refused() {
    for (_, bytes) in frames() {
        for cut in 0..bytes.len() {
            assert!(decode_message(&bytes[..cut]).is_err());
            // A consistent length field over a shortened body is still refused.
            if cut >= HEADER_LEN {
                let mut short = bytes[..cut].to_vec();
                short[..4].copy_from_slice(&((cut - 4) as u32).to_be_bytes());
                if cut < bytes.len() {
                    assert!(decode_message(&short).is_err(), "cut at {cut}");
                }
            }
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(decode_message(&long).is_err());
        let n = (long.len() - 4) as u32;
        long[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(
            decode_message(&long),
            Err(Error::Malformed { what: "node frame" })
        );
    }
}

#[test]
fn version_type_and_enum_bytes_are_checked() {
    let (_, ping) = &frames()[3];
    let mut v = ping.to_vec();
    v[4] = 2;
    assert_eq!(
        decode_message(&v),
        Err(Error::UnsupportedVersion { version: 2 })
    );
    let mut t = ping.to_vec();
    t[5] = 0x7f;
    let err = decode_message(&t).unwrap_err();
    assert_eq!(
        err,
        Error::UnsupportedType {
            ty: 0x7f,
            req_id: 3 * 0x0101_0101
        }
    );
    assert_eq!(err.code(), "unsupported_type");

    // Hello: role byte 2, min > max, wrong protocol name.
    let hello = encode_message(&Message::new(
        0,
        Body::Hello {
            min_version: 1,
            max_version: 1,
            role: Role::Node,
            descriptor: vec![],
        },
    ))
    .unwrap();
    let role_at = HEADER_LEN + 14 + 2;
    let mut bad = hello.to_vec();
    bad[role_at] = 2;
    assert!(decode_message(&bad).is_err());
    let mut bad = hello.to_vec();
    bad[HEADER_LEN + 14] = 2;
    assert!(decode_message(&bad).is_err());
    let mut bad = hello.to_vec();
    bad[HEADER_LEN] ^= 0x20;
    assert!(decode_message(&bad).is_err());

    // Identifier 0 and 33 are out of range; an unsorted participant list is refused.
    let abort = |id: u16| {
        let mut b = encode_message(&Message::new(
            0,
            Body::Error {
                code: ErrorCode::POLICY,
                culprit: Some(ParticipantId::new(1).unwrap()),
                text: String::new(),
            },
        ))
        .unwrap()
        .to_vec();
        b[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(&id.to_be_bytes());
        decode_message(&b)
    };
    assert!(abort(0).is_ok(), "culprit 0 means none");
    assert!(abort(32).is_ok());
    assert!(abort(33).is_err());
    let unsorted = Body::SignCommitReq {
        session_id: [1; 16],
        key_id: [2; 16],
        deadline_ms: 1,
        message: vec![1],
        participants: vec![id(2), id(1)],
        context: context(),
    };
    assert!(encode_message(&Message::new(0, unsorted)).is_err());
}

#[test]
fn lengths_are_checked_against_limits() {
    // The frame length field: above MAX_NODE_FRAME is refused from the first four bytes.
    let huge = ((MAX_NODE_FRAME + 1) as u32).to_be_bytes();
    assert!(matches!(frame_len(&huge), Err(Error::TooLarge { .. })));
    assert!(matches!(decode_message(&huge), Err(Error::TooLarge { .. })));
    assert_eq!(
        frame_len(&(MAX_NODE_FRAME as u32).to_be_bytes()).unwrap(),
        Some(MAX_NODE_FRAME + 4)
    );
    assert!(frame_len(&9u32.to_be_bytes()).is_err());
    assert_eq!(frame_len(&[0, 0]).unwrap(), None);

    // Error text: 256 bytes fit, 257 do not (Body::error truncates at a char boundary).
    let text = |n: usize| Body::Error {
        code: ErrorCode::POLICY,
        culprit: None,
        text: "a".repeat(n),
    };
    assert!(encode_message(&Message::new(0, text(MAX_ERROR_TEXT))).is_ok());
    assert!(encode_message(&Message::new(0, text(MAX_ERROR_TEXT + 1))).is_err());
    let Body::Error { text: cut, .. } = Body::error(ErrorCode::POLICY, None, &"é".repeat(200))
    else {
        unreachable!()
    };
    assert_eq!(cut.len(), MAX_ERROR_TEXT);
    // A decoder sees a length field of 257 and refuses before reading.
    let mut b = encode_message(&Message::new(0, text(MAX_ERROR_TEXT)))
        .unwrap()
        .to_vec();
    b.push(b'a');
    let n = (b.len() - 4) as u32;
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[HEADER_LEN + 4..HEADER_LEN + 6].copy_from_slice(&((MAX_ERROR_TEXT + 1) as u16).to_be_bytes());
    assert!(decode_message(&b).is_err());

    // Message to sign: MAX_MESSAGE_LEN fits, one more does not.
    let req = |len: usize, event: usize| Body::SignCommitReq {
        session_id: [1; 16],
        key_id: [2; 16],
        deadline_ms: 1,
        message: vec![0; len],
        participants: vec![id(1), id(2)],
        context: RequestContext {
            unsigned_event: "x".repeat(event),
            ..context()
        },
    };
    let ok = encode_message(&Message::new(0, req(MAX_MESSAGE_LEN, MAX_UNSIGNED_EVENT))).unwrap();
    assert!(decode_message(&ok).is_ok());
    assert!(encode_message(&Message::new(0, req(MAX_MESSAGE_LEN + 1, 0))).is_err());
    assert!(encode_message(&Message::new(0, req(32, MAX_UNSIGNED_EVENT + 1))).is_err());

    // Invalid UTF-8 in the event is refused.
    let mut b = encode_message(&Message::new(0, req(32, 4)))
        .unwrap()
        .to_vec();
    let at = b.len() - 8 - 8 - 1 - 4;
    b[at] = 0xff;
    assert!(decode_message(&b).is_err());
}

#[test]
fn import_share_decoding_is_strict() {
    let mut rng = SeededRng::new(4);
    let (public, _) = local::dkg(2, 3, &mut rng).unwrap();
    let body = import_share(&public, vec![0x11; 80]);
    let bytes = encode_message(&Message::new(9, body.clone())).unwrap();
    assert_eq!(bytes[5], 0x40);
    assert_eq!(body.ceremony_id(), Some(&[8; 16]));
    let m = decode_message(&bytes).unwrap();
    assert_eq!(m.body, body);
    assert_eq!(encode_message(&m).unwrap(), bytes);

    // Layout: ceremony_id ‖ key_id ‖ identifier ‖ u16 len ‖ sealed ‖ u16 len ‖ package.
    let id_at = HEADER_LEN + 32;
    for bad_id in [0u16, 33] {
        let mut b = bytes.to_vec();
        b[id_at..id_at + 2].copy_from_slice(&bad_id.to_be_bytes());
        assert!(decode_message(&b).is_err(), "identifier {bad_id}");
    }
    // A sealed length beyond the limit is refused before anything is read.
    let mut b = bytes.to_vec();
    b[id_at + 2..id_at + 4].copy_from_slice(&(16 * 1024 + 1u16).to_be_bytes());
    assert!(matches!(decode_message(&b), Err(Error::Malformed { .. })));
    // A sealed length that runs into the package makes the package undecodable.
    let mut b = bytes.to_vec();
    b[id_at + 2..id_at + 4].copy_from_slice(&81u16.to_be_bytes());
    assert!(decode_message(&b).is_err());
    // A corrupted public key package is refused.
    let pkg_at = id_at + 4 + 80 + 2;
    let mut b = bytes.to_vec();
    b[pkg_at] ^= 0xFF;
    assert!(decode_message(&b).is_err());
    // The encoder refuses an oversized sealed share.
    assert!(
        encode_message(&Message::new(
            0,
            import_share(&public, vec![0; 16 * 1024 + 1])
        ))
        .is_err()
    );
    assert!(encode_message(&Message::new(0, import_share(&public, vec![0; 16 * 1024]))).is_ok());
    // An empty sealed share still decodes (the node refuses it when opening).
    let empty = encode_message(&Message::new(0, import_share(&public, vec![]))).unwrap();
    assert!(decode_message(&empty).is_ok());
}

#[test]
fn version_negotiation_picks_the_highest_common_version() {
    assert_eq!(negotiate_version(1, 1), Some(1));
    assert_eq!(negotiate_version(1, 9), Some(1));
    assert_eq!(negotiate_version(0, 1), Some(1));
    assert_eq!(negotiate_version(2, 9), None);
    assert_eq!(negotiate_version(0, 0), None);
    assert_eq!(negotiate_version(3, 1), None);
}

#[test]
fn sealed_payloads_are_redacted_in_debug() {
    let item = SealedItem {
        peer: id(2),
        payload: Zeroizing::new(vec![0xAB; 40]),
    };
    let s = format!("{item:?}");
    assert!(
        !s.to_lowercase().contains("ab, ") && !s.contains("171"),
        "{s}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_message(&bytes);
        let _ = frame_len(&bytes);
        // Also with a consistent length field, so the body decoders are reached.
        let mut framed = ((bytes.len()) as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        if framed.len() > 4 { framed[4] = VERSION; }
        let _ = decode_message(&framed);
    }

    #[test]
    fn mutated_frames_never_panic_and_reencode(
        which in 0usize..25,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let frames = frames_cached();
        let bytes = &frames[which % frames.len()];
        let mut b = bytes.clone();
        for (at, v) in flips { let n = b.len(); b[at % n] ^= v | 1; }
        if let Ok(m) = decode_message(&b) {
            // Anything accepted is canonical: it re-encodes to the same bytes.
            prop_assert_eq!(encode_message(&m).unwrap().to_vec(), b);
        }
    }
}

fn frames_cached() -> &'static Vec<Vec<u8>> {
    static FRAMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FRAMES.get_or_init(|| frames().into_iter().map(|(_, b)| b.to_vec()).collect())
}
