//! Box-stream vectors, byte for byte (spec §18, checklist items 10–15).

use keyline_shs::proto::{BoxDecoder, BoxEncoder, boxstream::increment_nonce};
use keyline_shs::{DirectionKeys, Error};
use keyline_testkit::{array, hex, hex_n, load_json, str_field};
use proptest::prelude::*;
use serde_json::Value;

fn keys(v: &Value) -> DirectionKeys {
    DirectionKeys::new(hex_n(&v["key"]), hex_n(&v["nonce"]))
}

/// Decodes `wire` fed in pieces of `piece` bytes; returns the delivered packets and the end.
fn decode(keys: &DirectionKeys, wire: &[u8], piece: usize) -> (Vec<Vec<u8>>, Result<(), Error>) {
    let mut decoder = BoxDecoder::new(keys);
    let mut delivered = vec![];
    let mut chunks = wire.chunks(piece.max(1));
    let mut pending: &[u8] = &[];
    loop {
        if !decoder.plaintext().is_empty() {
            delivered.push(decoder.plaintext().to_vec());
            let n = decoder.plaintext().len();
            decoder.consume(n);
            continue;
        }
        if decoder.is_finished() {
            return (delivered, Ok(()));
        }
        if pending.is_empty() {
            match chunks.next() {
                Some(chunk) => pending = chunk,
                None => return (delivered, decoder.finish()),
            }
        }
        match decoder.feed(pending) {
            Ok(used) => pending = &pending[used..],
            Err(err) => return (delivered, Err(err)),
        }
    }
}

#[test]
fn streams_encode_byte_for_byte() {
    let file = load_json("shs/boxstream-vectors.json");
    let streams = array(&file, "streams");
    assert_eq!(streams.len(), 9);
    for stream in streams {
        let name = str_field(stream, "name");
        let mut encoder = BoxEncoder::new(&keys(stream));
        let mut wire = Vec::new();
        let mut chunks = Vec::new();
        let mut packet_index = 0;
        for write in array(stream, "writes") {
            let data = hex(write);
            let before = wire.len();
            encoder.encode(&data, &mut wire).expect("encode");
            // Every packet of this write, checked against the vector's packet list.
            let mut at = before;
            while at < wire.len() {
                let packet = &array(stream, "packets")[packet_index];
                let len = packet["length"].as_u64().expect("length") as usize;
                assert_eq!(
                    wire[at..at + 34],
                    hex(&packet["header"])[..],
                    "{name} header {packet_index}"
                );
                assert_eq!(
                    wire[at + 34..at + 34 + len],
                    hex(&packet["body"])[..],
                    "{name} body"
                );
                chunks.extend([34, len]);
                at += 34 + len;
                packet_index += 1;
            }
        }
        assert_eq!(
            packet_index,
            array(stream, "packets").len(),
            "{name}: packet count"
        );
        if stream["goodbye"].is_null() {
            assert_eq!(stream["source_ends_with_error"], true, "{name}");
        } else {
            assert_eq!(
                encoder.nonce()[..],
                hex(&stream["goodbye"]["nonce"])[..],
                "{name} goodbye nonce"
            );
            let goodbye = encoder.goodbye().expect("goodbye");
            assert_eq!(
                goodbye[..],
                hex(&stream["goodbye"]["bytes"])[..],
                "{name} goodbye"
            );
            wire.extend_from_slice(&goodbye);
            chunks.push(34);
            assert!(
                encoder.encode(b"x", &mut Vec::new()).is_err(),
                "write after goodbye"
            );
        }
        assert_eq!(wire, hex(&stream["wire"]), "{name}: wire");
        let expected_chunks: Vec<usize> = array(stream, "encoder_chunks")
            .iter()
            .map(|c| c.as_u64().expect("chunk") as usize)
            .collect();
        assert_eq!(chunks, expected_chunks, "{name}: chunk boundaries");
    }
}

#[test]
fn packets_use_the_listed_nonces_and_header_plaintexts() {
    let file = load_json("shs/boxstream-vectors.json");
    for stream in array(&file, "streams") {
        let mut nonce: [u8; 24] = hex_n(&stream["nonce"]);
        for packet in array(stream, "packets") {
            assert_eq!(nonce[..], hex(&packet["header_nonce"])[..]);
            increment_nonce(&mut nonce);
            assert_eq!(nonce[..], hex(&packet["body_nonce"])[..]);
            increment_nonce(&mut nonce);
            let plain = hex(&packet["header_plaintext"]);
            let len = packet["length"].as_u64().expect("length") as u16;
            assert_eq!(plain[..2], len.to_be_bytes());
        }
    }
}

#[test]
fn streams_decode_whole_and_in_pieces() {
    let file = load_json("shs/boxstream-vectors.json");
    for stream in array(&file, "streams") {
        let name = str_field(stream, "name");
        let wire = hex(&stream["wire"]);
        let decoded: Vec<Vec<u8>> = array(stream, "decoded").iter().map(hex).collect();
        for piece in [wire.len().max(1), 1, 7, 34, 35, 4130] {
            let (delivered, end) = decode(&keys(stream), &wire, piece);
            assert_eq!(delivered, decoded, "{name} piece {piece}");
            if stream["goodbye"].is_null() {
                assert_eq!(
                    end.expect_err("no goodbye").code(),
                    "eof_before_goodbye",
                    "{name}"
                );
            } else {
                end.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

#[test]
fn decode_cases_give_the_expected_result() {
    let file = load_json("shs/boxstream-vectors.json");
    let cases = array(&file, "decode_cases");
    assert_eq!(cases.len(), 12);
    for case in cases {
        let name = str_field(case, "name");
        let wire = hex(&case["wire"]);
        let expected = &case["expected"];
        // keyline's decoder never delivers empty packets: drop them from the expectation.
        let want: Vec<Vec<u8>> = array(expected, "delivered")
            .iter()
            .map(hex)
            .filter(|p| !p.is_empty())
            .collect();
        for piece in [wire.len().max(1), 1, 5, 34] {
            let (delivered, end) = decode(&keys(case), &wire, piece);
            assert_eq!(delivered, want, "{name} piece {piece}");
            match str_field(expected, "result") {
                "clean_end" => end.unwrap_or_else(|e| panic!("{name}: {e}")),
                "error" => assert_eq!(
                    end.expect_err(name).code(),
                    str_field(expected, "error"),
                    "{name} piece {piece}"
                ),
                other => panic!("unknown result {other}"),
            }
        }
    }
}

#[test]
fn box_stream_c_vector() {
    let v = load_json("shs/box-stream-c-test-vector.json");
    let k = keys(&v);
    let mut encoder = BoxEncoder::new(&k);
    let mut wire = Vec::new();
    for packet in array(&v, "packets") {
        let mut one = Vec::new();
        encoder
            .seal_packet(&hex(&packet["plaintext"]), &mut one)
            .expect("seal");
        assert_eq!(one[..34], hex(&packet["header"])[..]);
        assert_eq!(one[34..], hex(&packet["body"])[..]);
        wire.extend(one);
    }
    let goodbye = encoder.goodbye().expect("goodbye");
    assert_eq!(goodbye[..], hex(&v["goodbye"])[..]);
    wire.extend_from_slice(&goodbye);
    let (delivered, end) = decode(&k, &wire, 3);
    let plaintexts: Vec<Vec<u8>> = array(&v, "packets")
        .iter()
        .map(|p| hex(&p["plaintext"]))
        .collect();
    assert_eq!(delivered, plaintexts);
    end.expect("clean end");

    let invalid = &v["invalid_body"];
    let mut bad = hex(&invalid["header"]);
    bad.extend(hex(&invalid["body"]));
    let (delivered, end) = decode(&k, &bad, bad.len());
    assert!(delivered.is_empty());
    assert_eq!(end.expect_err("invalid body").code(), "invalid_body");
}

#[test]
fn nonce_survives_the_2_192_wrap_over_many_packets() {
    // box-stream-c's boundary test: from its starting nonce the counter wraps after 384 packets.
    let v = load_json("shs/box-stream-c-test-vector.json");
    let start = hex_n(&v["nonce_boundary_test"]["start_nonce"]);
    let k = DirectionKeys::new(hex_n(&v["key"]), start);
    let mut encoder = BoxEncoder::new(&k);
    let mut wire = Vec::new();
    for i in 0..1000u32 {
        encoder
            .seal_packet(&i.to_be_bytes(), &mut wire)
            .expect("seal");
    }
    wire.extend_from_slice(&encoder.goodbye().expect("goodbye"));
    let (delivered, end) = decode(&k, &wire, 4096);
    end.expect("clean end");
    assert_eq!(delivered.len(), 1000);
    assert!(
        delivered
            .iter()
            .enumerate()
            .all(|(i, p)| p[..] == (i as u32).to_be_bytes())
    );
}

#[test]
fn encoder_refuses_bad_sizes_and_writes_after_goodbye() {
    let k = DirectionKeys::new([7; 32], [0; 24]);
    let mut encoder = BoxEncoder::new(&k);
    let mut out = Vec::new();
    assert_eq!(
        encoder
            .seal_packet(&[], &mut out)
            .expect_err("empty")
            .code(),
        "packet_size"
    );
    assert_eq!(
        encoder
            .seal_packet(&[0; 4097], &mut out)
            .expect_err("4097")
            .code(),
        "packet_size"
    );
    assert!(out.is_empty(), "a refused packet leaves nothing behind");
    encoder
        .seal_packet(&[0; 4096], &mut out)
        .expect("4096 is the limit");
    encoder.goodbye().expect("goodbye");
    assert_eq!(
        encoder.goodbye().expect_err("twice").code(),
        "write_after_goodbye"
    );
    assert_eq!(
        encoder
            .seal_packet(&[1], &mut out)
            .expect_err("after")
            .code(),
        "write_after_goodbye"
    );
}

proptest! {
    #[test]
    fn random_writes_round_trip_in_random_pieces(
        writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..9000), 0..6),
        piece in 1usize..5000,
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
    ) {
        let k = DirectionKeys::new(key, nonce);
        let mut encoder = BoxEncoder::new(&k);
        let mut wire = Vec::new();
        for w in &writes {
            encoder.encode(w, &mut wire).expect("encode");
        }
        wire.extend_from_slice(&encoder.goodbye().expect("goodbye"));
        let (delivered, end) = decode(&k, &wire, piece);
        prop_assert!(end.is_ok());
        prop_assert_eq!(delivered.concat(), writes.concat());
    }

    #[test]
    fn arbitrary_input_never_panics(wire in proptest::collection::vec(any::<u8>(), 0..9000), piece in 1usize..200) {
        let k = DirectionKeys::new([3; 32], [9; 24]);
        let (delivered, end) = decode(&k, &wire, piece);
        prop_assert!(delivered.is_empty());
        prop_assert!(end.is_err());
    }
}
