//! RFC 9180 Appendix A (shared/vectors/hpke/rfc9180-appendix-a.json; http.md B.18 item 6):
//! A.1 (AES-128-GCM) and A.2 (ChaCha20-Poly1305, keyline's default suite) in all four modes:
//! key derivation, `enc` from `ikmE`, every printed ciphertext, every export, and the receiver
//! opening all 257 ciphertexts. The suites are the `hpke` crate types that `keyline_http::seal`
//! uses; `seal_request`'s ephemeral key derivation is checked against `ikmE` → `enc`.

use hpke::aead::{AeadCtxR, AeadCtxS};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256 as Kem;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, PskBundle, Serializable};
use keyline_testkit::{array, hex, load_json, str_field};
use serde_json::Value;

struct FixedRng(Vec<u8>);

impl hpke::rand_core::TryRng for FixedRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unimplemented!("DHKEM only fills bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unimplemented!("DHKEM only fills bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert!(dst.len() <= self.0.len(), "RNG asked for more than ikmE");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}
impl hpke::rand_core::TryCryptoRng for FixedRng {}

fn clamp(mut k: Vec<u8>) -> Vec<u8> {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

fn field(v: &Value, name: &str) -> Vec<u8> {
    hex(&v[name])
}

fn run<A: hpke::aead::Aead>(v: &Value) -> (usize, usize) {
    let id = str_field(v, "appendix");
    let (sk_r, pk_r) = Kem::derive_keypair(&field(v, "ikmR"));
    assert_eq!(pk_r.to_bytes().to_vec(), field(v, "pkRm"), "{id} pkR");
    assert_eq!(
        sk_r.to_bytes().to_vec(),
        clamp(field(v, "skRm")),
        "{id} skR (clamped)"
    );
    let (_, pk_e) = Kem::derive_keypair(&field(v, "ikmE"));
    assert_eq!(pk_e.to_bytes().to_vec(), field(v, "pkEm"), "{id} pkE");
    let sender_keys = v.get("ikmS").map(|ikm| {
        let (sk, pk) = Kem::derive_keypair(&hex(ikm));
        assert_eq!(pk.to_bytes().to_vec(), field(v, "pkSm"), "{id} pkS");
        assert_eq!(sk.to_bytes().to_vec(), clamp(field(v, "skSm")), "{id} skS");
        (sk, pk)
    });
    let psk = v.get("psk").map(hex);
    let psk_id = v.get("psk_id").map(hex);
    let bundle = match (&psk, &psk_id) {
        (Some(p), Some(i)) => Some(PskBundle::new(p, i).unwrap()),
        _ => None,
    };
    let mode = v["mode"].as_u64().unwrap();
    let (mode_s, mode_r) = match (mode, sender_keys, bundle) {
        (0, None, None) => (OpModeS::Base, OpModeR::Base),
        (1, None, Some(b)) => (OpModeS::Psk(b), OpModeR::Psk(b)),
        (2, Some((sk, pk)), None) => (OpModeS::Auth((sk, pk.clone())), OpModeR::Auth(pk)),
        (3, Some((sk, pk)), Some(b)) => (
            OpModeS::AuthPsk((sk, pk.clone()), b),
            OpModeR::AuthPsk(pk, b),
        ),
        other => panic!("{id}: unexpected mode fields {:?}", other.0),
    };
    let info = field(v, "info");
    let (enc, mut sender): (_, AeadCtxS<A, HkdfSha256, Kem>) =
        hpke::setup_sender_with_rng(&mode_s, &pk_r, &info, &mut FixedRng(field(v, "ikmE")))
            .unwrap();
    assert_eq!(enc.to_bytes().to_vec(), field(v, "enc"), "{id} enc");
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&field(v, "enc")).unwrap();
    let mut receiver: AeadCtxR<A, HkdfSha256, Kem> =
        hpke::setup_receiver(&mode_r, &sk_r, &enc, &info).unwrap();

    let printed = array(v, "encryptions");
    let pt = field(&printed[0], "pt");
    let mut matched = 0;
    for seq in 0..=256u64 {
        let aad = format!("Count-{seq}");
        let ct = sender.seal(&pt, aad.as_bytes()).unwrap();
        if let Some(e) = printed
            .iter()
            .find(|e| e["sequence_number"].as_u64() == Some(seq))
        {
            assert_eq!(field(e, "aad"), aad.as_bytes(), "{id} #{seq} aad");
            assert_eq!(field(e, "pt"), pt);
            assert_eq!(ct, field(e, "ct"), "{id} #{seq} ct");
            matched += 1;
        }
        assert_eq!(
            receiver.open(&ct, aad.as_bytes()).unwrap(),
            pt,
            "{id} #{seq} open"
        );
    }
    assert_eq!(matched, printed.len(), "{id}: every printed encryption");
    let exports = array(v, "exports");
    for x in exports {
        let len = x["L"].as_u64().unwrap() as usize;
        let ctx = field(x, "exporter_context");
        let mut a = vec![0u8; len];
        let mut b = vec![0u8; len];
        sender.export(&ctx, &mut a).unwrap();
        receiver.export(&ctx, &mut b).unwrap();
        assert_eq!(a, field(x, "exported_value"), "{id} export");
        assert_eq!(b, a);
    }
    (matched, exports.len())
}

#[test]
fn appendix_a1_and_a2_all_modes() {
    let doc = load_json("hpke/rfc9180-appendix-a.json");
    let vectors = array(&doc, "vectors");
    assert_eq!(vectors.len(), 28);
    let mut done = Vec::new();
    let (mut cts, mut exports) = (0, 0);
    for v in vectors {
        let ids = (
            v["kem_id"].as_u64().unwrap(),
            v["kdf_id"].as_u64().unwrap(),
            v["aead_id"].as_u64().unwrap(),
        );
        let (c, x) = match ids {
            (0x20, 1, 1) => run::<hpke::aead::AesGcm128>(v),
            (0x20, 1, 3) => run::<hpke::aead::ChaCha20Poly1305>(v),
            _ => continue,
        };
        cts += c;
        exports += x;
        done.push(str_field(v, "appendix").to_string());
    }
    assert_eq!(
        done,
        [
            "A.1.1", "A.1.2", "A.1.3", "A.1.4", "A.2.1", "A.2.2", "A.2.3", "A.2.4"
        ]
    );
    assert_eq!((cts, exports), (48, 24));
}

/// keyline's `seal_request` derives its ephemeral key from `ikm_e` exactly as RFC 9180's
/// DeriveKeyPair: with A.2.1's `ikmE` and `pkRm` the encapsulated key in the body is `enc`.
#[test]
fn seal_request_ephemeral_matches_ikm_e() {
    let doc = load_json("hpke/rfc9180-appendix-a.json");
    let v = array(&doc, "vectors")
        .iter()
        .find(|v| v["appendix"] == "A.2.1")
        .unwrap();
    let pk_r: [u8; 32] = field(v, "pkRm").try_into().unwrap();
    let ikm_e: [u8; 32] = field(v, "ikmE").try_into().unwrap();
    let (body, _) =
        keyline_http::seal::seal_request(&pk_r, 1, "ed25519:x", "n", "text/plain", b"hi", &ikm_e)
            .unwrap();
    assert_eq!(&body[..7], &[1, 0, 0x20, 0, 1, 0, 3]);
    assert_eq!(body[7..39].to_vec(), field(v, "enc"));
    let server = keyline_http::seal::HpkeKeyPair::derive(1, &field(v, "ikmR"));
    assert_eq!(server.public_key(), pk_r);
    let (ct, inner, _) =
        keyline_http::seal::open_request(&body, |_| Some(server.clone()), "ed25519:x", "n")
            .unwrap();
    assert_eq!((ct.as_str(), inner.as_slice()), ("text/plain", &b"hi"[..]));
}
