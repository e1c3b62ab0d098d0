//! The box-stream decoder (spec §10–§12), fed in fuzz-chosen pieces, and the encoder that
//! produces its valid input.

use keyline_shs::DirectionKeys;
use keyline_shs::limits::{HEADER_LEN, MAX_PACKET};
use keyline_shs::proto::boxstream::increment_nonce;
use keyline_shs::proto::{BoxDecoder, BoxEncoder};

use crate::Cursor;
use crate::fixtures::box_keys;

/// Flag: the rest of the input is a list of writes to encode first (else: raw wire bytes).
const ENCODE: u8 = 0x01;
/// Flag (encode mode): end the stream with a goodbye.
const GOODBYE: u8 = 0x10;
/// Flag (encode mode): XOR one byte of the encoded stream.
const MUTATE: u8 = 0x20;
/// Flag: drain plaintext with `read_into` and small buffers instead of `plaintext`/`consume`.
const READ_INTO: u8 = 0x40;
/// At most this many piece sizes.
const MAX_SIZES: usize = 16;
/// Piece size byte that means "everything left".
const SIZE_REST: u8 = 0xff;
/// Encode mode: longest write (three full packets), most writes, most plaintext in total.
const MAX_WRITE: usize = 3 * MAX_PACKET;
const MAX_WRITES: usize = 64;
const MAX_TOTAL: usize = 64 * 1024;

/// What a decoder delivered and how it ended: `Ok` at the goodbye, `Err(code)` otherwise.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    plaintext: Vec<u8>,
    result: Result<(), &'static str>,
}

/// Box-stream decoder under test.
///
/// Layout: `flags | n | size[n % 17] | rest`.
/// * `flags & 0x0e >> 1`: which (key, nonce) of [`crate::fixtures::BOX_KEYS`] to use.
/// * `size[]`: the pieces the input is fed in, used in a cycle: 1..=254 bytes; 0 = an empty
///   feed (then one byte); 255 = everything left. No sizes: the whole input at once.
/// * `flags & 0x40`: drain plaintext with `read_into` into buffers of the current piece size.
/// * `flags & 0x01 == 0` (raw): `rest` is the wire. It is decoded in pieces and in one go;
///   both must deliver the same plaintext and end the same way.
/// * `flags & 0x01 == 1` (encode): if `flags & 0x20`, `pos: u32 BE | mask: u8` come first;
///   `rest` is a list of writes `len: u16 BE | bytes` (`len % 12289`; bytes missing at the
///   end of the input are filled with a counter pattern). The writes are encoded with
///   `BoxEncoder` (plus a goodbye if `flags & 0x10`); with `0x20` the byte at
///   `pos % wire_len` is XORed with `mask` (0 counts as 1). Unmodified streams must decode
///   to exactly the written bytes; a modified one must deliver exactly the packets before the
///   modified one and fail with `invalid_header` or `invalid_body` for it.
///
/// Invariants checked on every step: `plaintext().len() ≤ 4096`, `feed` never consumes more
/// than it was given and stops early only with plaintext ready or at the goodbye, errors are
/// final (every later `feed`/`finish` returns the same error), the goodbye is final, and EOF
/// before the goodbye is `eof_before_goodbye`.
pub fn boxstream_decoder(data: &[u8]) {
    let mut input = Cursor::new(data);
    let flags = input.byte();
    let keys = box_keys((flags >> 1) & 7);
    let n_sizes = usize::from(input.byte()) % (MAX_SIZES + 1);
    let sizes = input.take(n_sizes);
    let read_into = flags & READ_INTO != 0;
    if flags & ENCODE == 0 {
        let wire = input.rest();
        let pieces = decode(&keys, wire, sizes, read_into);
        let whole = decode(&keys, wire, &[], false);
        assert_eq!(
            pieces, whole,
            "the result depends on how the input was split"
        );
        return;
    }

    let mutation = (flags & MUTATE != 0).then(|| {
        let pos = u32::from_be_bytes(input.array::<4>());
        (pos, input.byte().max(1))
    });
    let mut writes = Vec::new();
    let mut total = 0;
    while !input.is_empty() && writes.len() < MAX_WRITES && total < MAX_TOTAL {
        let len = usize::from(u16::from_be_bytes(input.array::<2>())) % (MAX_WRITE + 1);
        let mut write = input.take(len).to_vec();
        let have = write.len();
        write.extend((have..len).map(|i| i as u8));
        total += len;
        writes.push(write);
    }
    let (mut wire, packets, plaintext) = encode(&keys, &writes, flags & GOODBYE != 0);
    let expected = match mutation {
        Some((pos, mask)) if !wire.is_empty() => {
            let at = pos as usize % wire.len();
            wire[at] ^= mask;
            let hit = packets
                .iter()
                .position(|p| at < p.end)
                .expect("every wire byte is in a packet");
            let before = if hit == 0 {
                0
            } else {
                packets[hit - 1].plain_end
            };
            let code = if at < packets[hit].body {
                "invalid_header"
            } else {
                "invalid_body"
            };
            Decoded {
                plaintext: plaintext[..before].to_vec(),
                result: Err(code),
            }
        }
        _ => Decoded {
            plaintext,
            result: if flags & GOODBYE != 0 {
                Ok(())
            } else {
                Err("eof_before_goodbye")
            },
        },
    };
    assert_eq!(
        decode(&keys, &wire, sizes, read_into),
        expected,
        "encoded stream, in pieces"
    );
    assert_eq!(
        decode(&keys, &wire, &[], false),
        expected,
        "encoded stream, whole"
    );
}

/// Where one packet (or the goodbye) lies in the wire, and the plaintext up to its end.
struct Packet {
    /// Wire offset of the body (= header start + 34).
    body: usize,
    /// Wire offset just past the packet.
    end: usize,
    /// Plaintext length up to and including this packet.
    plain_end: usize,
}

/// Encodes `writes` the JS way and checks the encoder's output sizes and nonce.
fn encode(
    keys: &DirectionKeys,
    writes: &[Vec<u8>],
    goodbye: bool,
) -> (Vec<u8>, Vec<Packet>, Vec<u8>) {
    let mut encoder = BoxEncoder::new(keys);
    let mut wire = Vec::new();
    let mut packets = Vec::new();
    let mut plaintext = Vec::new();
    let mut nonce = *keys.nonce();

    // Bad sizes are refused without output and without using a nonce.
    for bad in [0, MAX_PACKET + 1] {
        let err = encoder
            .seal_packet(&vec![0u8; bad], &mut wire)
            .expect_err("bad packet size");
        assert_eq!(err.code(), "packet_size");
        assert!(wire.is_empty());
        assert_eq!(encoder.nonce(), &nonce);
    }

    for write in writes {
        encoder
            .encode(write, &mut wire)
            .expect("any write before the goodbye encodes");
        let mut at = wire.len() - write.len() - write.len().div_ceil(MAX_PACKET) * HEADER_LEN;
        for chunk in write.chunks(MAX_PACKET) {
            let end = at + HEADER_LEN + chunk.len();
            plaintext.extend_from_slice(chunk);
            packets.push(Packet {
                body: at + HEADER_LEN,
                end,
                plain_end: plaintext.len(),
            });
            at = end;
            increment_nonce(&mut nonce);
            increment_nonce(&mut nonce);
        }
        assert_eq!(at, wire.len());
        assert_eq!(encoder.nonce(), &nonce, "a packet uses two nonces");
    }
    if goodbye {
        let start = wire.len();
        wire.extend_from_slice(&encoder.goodbye().expect("first goodbye"));
        packets.push(Packet {
            body: start + HEADER_LEN,
            end: wire.len(),
            plain_end: plaintext.len(),
        });
        assert!(encoder.is_finished());
        let mut after = Vec::new();
        let err = encoder
            .encode(b"x", &mut after)
            .expect_err("write after goodbye");
        assert_eq!(err.code(), "write_after_goodbye");
        assert!(after.is_empty());
        assert!(encoder.goodbye().is_err(), "a second goodbye");
    } else {
        assert!(!encoder.is_finished());
    }
    (wire, packets, plaintext)
}

/// Feeds `wire` in the pieces given by `sizes` (cycled), drains all plaintext, then calls
/// `finish`. Checks the decoder's invariants along the way.
fn decode(keys: &DirectionKeys, wire: &[u8], sizes: &[u8], read_into: bool) -> Decoded {
    let mut decoder = BoxDecoder::new(keys);
    let mut plaintext = Vec::new();
    let mut pos = 0;
    let mut next_size = sizes.iter().copied().cycle();
    let outcome = 'feed: loop {
        if pos == wire.len() {
            break 'feed None;
        }
        let size = if sizes.is_empty() {
            SIZE_REST
        } else {
            next_size.next().unwrap_or(SIZE_REST)
        };
        let len = match size {
            0 => {
                if let Err(err) = feed(&mut decoder, &[], &mut plaintext, 1, read_into) {
                    break 'feed Some(Err(err));
                }
                1
            }
            SIZE_REST => wire.len() - pos,
            n => usize::from(n),
        };
        let piece = &wire[pos..wire.len().min(pos + len)];
        match feed(&mut decoder, piece, &mut plaintext, len, read_into) {
            Err(err) => break 'feed Some(Err(err)),
            Ok(true) => break 'feed Some(Ok(())),
            Ok(false) => pos += piece.len(),
        }
    };
    let result = match outcome {
        Some(result) => result,
        // Input used up before the goodbye: EOF is an error.
        None => {
            assert!(!decoder.is_finished());
            let err = decoder
                .finish()
                .expect_err("EOF before the goodbye must be an error");
            assert_eq!(err.code(), "eof_before_goodbye");
            Err(err.code())
        }
    };
    match result {
        Ok(()) => {
            // The goodbye is final: later input is never looked at.
            assert!(decoder.is_finished());
            assert_eq!(decoder.feed(b"more bytes").ok(), Some(0));
            assert!(decoder.finish().is_ok());
            assert!(decoder.plaintext().is_empty());
            assert_eq!(decoder.wants(), 0);
        }
        Err(code) => {
            // Errors are final.
            for more in [&b""[..], &b"x"[..], &[0u8; HEADER_LEN][..]] {
                let err = decoder.feed(more).expect_err("feed after an error");
                assert_eq!(err.code(), code, "a later feed returned another error");
            }
            assert_eq!(decoder.finish().map_err(|e| e.code()), Err(code));
            assert!(!decoder.is_finished());
            assert!(decoder.plaintext().is_empty());
            assert_eq!(decoder.wants(), 0);
        }
    }
    assert!(plaintext.len() <= wire.len());
    Decoded { plaintext, result }
}

/// Feeds one piece completely (draining plaintext whenever `feed` stops early). Returns
/// `Ok(true)` at the goodbye, `Err(code)` on an error.
fn feed(
    decoder: &mut BoxDecoder,
    piece: &[u8],
    plaintext: &mut Vec<u8>,
    drain_size: usize,
    read_into: bool,
) -> Result<bool, &'static str> {
    let mut off = 0;
    loop {
        let rest = &piece[off..];
        let used = match decoder.feed(rest) {
            Ok(used) => used,
            Err(err) => {
                assert!(decoder.plaintext().is_empty());
                return Err(err.code());
            }
        };
        assert!(
            used <= rest.len(),
            "feed consumed {used} of {} bytes",
            rest.len()
        );
        off += used;
        let ready = decoder.plaintext().len();
        assert!(ready <= MAX_PACKET, "{ready} bytes of plaintext buffered");
        assert!(
            used == rest.len() || ready > 0 || decoder.is_finished(),
            "feed stopped early without plaintext or goodbye"
        );
        if ready > 0 {
            // Plaintext still waiting: finish must not decide yet.
            assert!(decoder.finish().is_ok());
            assert_eq!(decoder.plaintext().len(), ready);
            assert_eq!(decoder.wants(), 0);
            drain(decoder, plaintext, drain_size, read_into);
        }
        if decoder.is_finished() {
            assert_eq!(decoder.wants(), 0);
            return Ok(true);
        }
        let wants = decoder.wants();
        assert!(
            (1..=MAX_PACKET.max(HEADER_LEN)).contains(&wants),
            "wants() = {wants}"
        );
        if off == piece.len() {
            return Ok(false);
        }
    }
}

fn drain(decoder: &mut BoxDecoder, plaintext: &mut Vec<u8>, size: usize, read_into: bool) {
    let mut buf = [0u8; MAX_PACKET];
    loop {
        let ready = decoder.plaintext().len();
        if ready == 0 {
            return;
        }
        if read_into {
            let want = size.clamp(1, MAX_PACKET);
            let n = decoder.read_into(&mut buf[..want]);
            assert_eq!(n, want.min(ready));
            plaintext.extend_from_slice(&buf[..n]);
        } else {
            plaintext.extend_from_slice(decoder.plaintext());
            decoder.consume(ready);
        }
        assert!(
            decoder.plaintext().len() < ready,
            "draining made no progress"
        );
    }
}
