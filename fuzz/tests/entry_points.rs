//! The fuzz entry points under the normal (stable) test run: every seed file, then random
//! inputs from proptest.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use keyline_shs_fuzz::{
    TARGETS, boxstream_decoder, core_parsers, http_parsers, kps_engine, kps_parsers, kps_wire_v1,
    nip46_messages, relay_tokens, shs_client_messages, shs_server_messages, signer_decoders,
};
use proptest::prelude::*;

fn seed_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target)
}

/// Runs every file of `seeds/<target>/` through the target's entry point. Seeds are
/// required: a missing or empty folder fails (regenerate with `tests/seeds.rs`).
#[test]
fn seed_corpus() {
    let mut failures = Vec::new();
    for &(target, entry) in TARGETS {
        let dir = seed_dir(target);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("seed folder {} missing: {e}", dir.display()))
            .map(|entry| entry.expect("readable seed folder").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(
            files.len() >= 10,
            "only {} seeds in {}",
            files.len(),
            dir.display()
        );
        for file in files {
            let data = fs::read(&file).expect("readable seed");
            if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "seeds that fail: {failures:#?}");
}

fn honest_zero_mask(mode: u8, ephemeral: [u8; 32], mask_len: usize) -> Vec<u8> {
    let mut input = vec![mode];
    input.extend_from_slice(&ephemeral);
    input.extend(std::iter::repeat_n(0, mask_len));
    input
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn http_parsers_random(selector in 0u8..7, value in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut input = vec![selector];
        input.extend_from_slice(&value);
        http_parsers(&input);
    }

    #[test]
    fn signer_decoders_random(selector in 0u8..9, bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut input = vec![selector];
        input.extend_from_slice(&bytes);
        signer_decoders(&input);
    }

    #[test]
    fn kps_wire_v1_random(selector in 0u8..3, bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut input = vec![selector];
        input.extend_from_slice(&bytes);
        kps_wire_v1(&input);
    }

    #[test]
    fn kps_engine_random(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        kps_engine(&bytes);
    }

    #[test]
    fn nip46_messages_random_text(selector in 0u8..8, text in ".{0,400}") {
        let mut input = vec![selector];
        input.extend_from_slice(text.as_bytes());
        nip46_messages(&input);
    }

    #[test]
    fn nip46_messages_random_requests(
        id in ".{0,70}",
        method in prop::sample::select(vec!["connect", "sign_event", "nip44_encrypt", "x", ""]),
        params in prop::collection::vec(".{0,80}", 0..5),
    ) {
        let json = serde_json::json!({"id": id, "method": method, "params": params}).to_string();
        for selector in [0u8, 2] {
            let mut input = vec![selector];
            if selector == 2 {
                input.extend_from_slice(serde_json::to_string(&params).unwrap().as_bytes());
            } else {
                input.extend_from_slice(json.as_bytes());
            }
            nip46_messages(&input);
        }
    }

    /// Signed header + claims JSON built from random fields, so the claim checks run.
    #[test]
    fn relay_tokens_random_claims(
        typ in prop::sample::select(vec!["sbrp-relay+jwt", "JWT", ""]),
        role in prop::sample::select(vec!["daemon", "client", "admin"]),
        exp in any::<i64>(),
        iat in any::<i64>(),
        sid in ".{0,14}",
        did in ".{0,10}",
    ) {
        let header = serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": "relay-test-1"}).to_string();
        let claims = serde_json::json!({
            "iss": "https://issuer.keyline.test", "aud": "sideband-relay", "region": "test-1",
            "iat": iat, "exp": exp, "ver": 1, "role": role, "did": did, "sub": "x", "sid": sid,
        }).to_string();
        let mut input = vec![1];
        input.extend_from_slice(&(header.len() as u16).to_le_bytes());
        input.extend_from_slice(header.as_bytes());
        input.extend_from_slice(claims.as_bytes());
        relay_tokens(&input);
    }

    #[test]
    fn relay_tokens_random_text(text in ".{0,400}") {
        let mut input = vec![0];
        input.extend_from_slice(text.as_bytes());
        relay_tokens(&input);
    }

    #[test]
    fn kps_parsers_random_text(text in "[0-9a-zA-Z:\\[\\]._-]{0,120}") {
        kps_parsers(text.as_bytes());
    }

    #[test]
    fn core_parsers_random_text(selector in 0u8..5, text in ".{0,300}") {
        let mut input = vec![selector];
        input.extend_from_slice(text.as_bytes());
        core_parsers(&input);
    }

    #[test]
    fn server_random_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
        shs_server_messages(&data);
    }

    #[test]
    fn client_random_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
        shs_client_messages(&data);
    }

    #[test]
    fn boxstream_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        boxstream_decoder(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// An honest peer with a random ephemeral key and an untouched message: the handshake
    /// completes (the entry point asserts it), with and without a denying authorize.
    #[test]
    fn honest_handshakes_complete(ephemeral in any::<[u8; 32]>(), deny in any::<bool>()) {
        shs_server_messages(&honest_zero_mask(if deny { 0x80 } else { 0 }, ephemeral, 112));
        shs_client_messages(&honest_zero_mask(0, ephemeral, 80));
    }

    /// Writes encoded, maybe one byte flipped, decoded in random pieces.
    #[test]
    fn boxstream_encoded_writes(
        key in 0u8..6,
        goodbye in any::<bool>(),
        flip in proptest::option::of((any::<u32>(), 1u8..)),
        read_into in any::<bool>(),
        sizes in prop::collection::vec(any::<u8>(), 0..16),
        writes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..6),
    ) {
        let mut flags = 0x01 | key << 1;
        if goodbye { flags |= 0x10 }
        if flip.is_some() { flags |= 0x20 }
        if read_into { flags |= 0x40 }
        let mut input = vec![flags, sizes.len() as u8];
        input.extend_from_slice(&sizes);
        if let Some((pos, mask)) = flip {
            input.extend_from_slice(&pos.to_be_bytes());
            input.push(mask);
        }
        for write in &writes {
            input.extend_from_slice(&(write.len() as u16).to_be_bytes());
            input.extend_from_slice(write);
        }
        boxstream_decoder(&input);
    }
}
