//! keyline-signer's decoders of what share-holder nodes and coordinators exchange or store.

use keyline_signer::descriptor::NodeDescriptor;
use keyline_signer::dkg::{Round1Package, Round2Package};
use keyline_signer::sign::{SigningCommitments, SigningPackage};
use keyline_signer::{NodeShare, PublicKeyPackage};

/// Input: one selector byte, then the encoding. 0 DKG round-1 package, 1 round-2 package,
/// 2 signing commitments, 3 signing package, 4 public key package, 5 node share, 6 a
/// coordinator ↔ node wire frame, 7 a signed node descriptor, 8 Nostr decoding (see
/// [`nostr_decoders`]). Invariants: no panic; whatever decodes re-encodes to bytes that decode
/// again (wire frames and descriptors: to the same bytes).
pub fn signer_decoders(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 9 {
        0 => {
            if let Ok(p) = Round1Package::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                Round1Package::deserialize(&again).expect("own encoding decodes");
            }
        }
        1 => {
            if let Ok(p) = Round2Package::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                Round2Package::deserialize(&again).expect("own encoding decodes");
            }
        }
        2 => {
            if let Ok(c) = SigningCommitments::deserialize(bytes) {
                let again = c.serialize().expect("encodes");
                SigningCommitments::deserialize(&again).expect("own encoding decodes");
            }
        }
        3 => {
            if let Ok(p) = SigningPackage::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                SigningPackage::deserialize(&again).expect("own encoding decodes");
            }
        }
        4 => {
            if let Ok(p) = PublicKeyPackage::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                PublicKeyPackage::deserialize(&again).expect("own encoding decodes");
            }
        }
        7 => {
            if let Ok(d) = NodeDescriptor::decode(bytes) {
                assert_eq!(&d.encode()[..], bytes, "canonical encoding");
                d.verify().expect("a decoded descriptor verifies");
            }
        }
        8 => nostr_decoders(bytes),
        6 => {
            if let Ok(message) = keyline_signer::wire::decode_message(bytes) {
                let again = keyline_signer::wire::encode_message(&message).expect("encodes");
                assert_eq!(&again[..], bytes, "canonical encoding");
            }
        }
        _ => {
            if let Ok(share) = NodeShare::deserialize(bytes) {
                let again = share.serialize().expect("encodes");
                NodeShare::deserialize(&again).expect("own encoding decodes");
            }
        }
    }
}

/// The NIP-44 v2 vector file's first `encrypt_decrypt` conversation key (sec1 = 1, sec2 = 2),
/// so a seed can carry a payload that authenticates.
const NIP44_KEY: [u8; 32] = [
    0xc4, 0x1c, 0x77, 0x53, 0x56, 0xfd, 0x92, 0xea, 0xdc, 0x63, 0xff, 0x5a, 0x0d, 0xc1, 0xda, 0x21,
    0x1b, 0x26, 0x8c, 0xbe, 0xa2, 0x23, 0x16, 0x76, 0x70, 0x95, 0xb2, 0x87, 0x1e, 0xa1, 0x41, 0x2d,
];

/// Selector 8: one mode byte, then UTF-8 text (non-UTF-8 input is ignored). `mode % 3`:
/// 0 = NIP-46 request JSON (a parsed request re-encodes and parses to itself; an invalid
/// request with an id yields a reply that parses), 1 = a NIP-44 payload under [`NIP44_KEY`]
/// (a decrypted plaintext re-encrypts and decrypts to itself) and the same text as NIP-04
/// content and as a transport content, 2 = a `bunker://` or `nostrconnect://` URI (a parsed
/// URI prints and parses to itself).
fn nostr_decoders(data: &[u8]) {
    use keyline_signer::ecdh::SharedX;
    use keyline_signer::nip44::{self, ConversationKey};
    use keyline_signer::nip46::{BunkerUri, NostrConnectUri, Request, Response};
    use keyline_signer::{Error, nip04, nip46};

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => match Request::parse(text) {
            Ok(req) => {
                let again = Request::parse(&req.to_json()).expect("own encoding parses");
                assert_eq!(again, req);
            }
            Err(err) => {
                if let Some(reply) = Response::for_invalid_request(&err) {
                    assert!(matches!(
                        err,
                        Error::Nip46InvalidRequest { id: Some(_), .. }
                    ));
                    Response::parse(&reply.to_json()).expect("reply parses");
                }
            }
        },
        1 => {
            let key = ConversationKey::from_bytes(NIP44_KEY);
            if let Ok(plain) = nip44::decrypt(&key, text) {
                let payload = nip44::encrypt(&key, &plain, &[7; 32]).expect("re-encrypts");
                assert_eq!(nip44::decrypt(&key, &payload).expect("decrypts"), plain);
            }
            let mut one = [0u8; 32];
            one[31] = 1;
            // Any valid peer: the x-only key of 1·G.
            let peer = [
                0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87,
                0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b,
                0x16, 0xf8, 0x17, 0x98,
            ];
            let shared = SharedX::from_secret(&one, &peer).expect("valid keys");
            let _ = nip04::decrypt(&shared, text);
            let _ = nip46::open_request(&shared, text, true);
        }
        _ => {
            if let Ok(uri) = BunkerUri::parse(text) {
                assert_eq!(
                    BunkerUri::parse(&uri.to_uri()).expect("own URI parses"),
                    uri
                );
            }
            if let Ok(uri) = NostrConnectUri::parse(text) {
                assert_eq!(
                    NostrConnectUri::parse(&uri.to_uri()).expect("own URI parses"),
                    uri
                );
            }
        }
    }
}
