//! RFC 9458 Appendix A (shared/vectors/ohttp/rfc9458-appendix-a.json; http.md B.18 item 7):
//! keyline's sealing construction with the OHTTP labels, for the example's suite
//! (AES-128-GCM). keyline's own code builds `info` ([`labelled_info`]) and the header
//! ([`SealHeader`]), opens the encapsulated request ([`open_labelled`]), runs the response
//! key schedule ([`response_key_schedule`]) and reproduces the encapsulated response byte for
//! byte ([`seal_response_labelled`]); the intermediate values (export, salt, PRK) are also
//! checked through the `hpke` crate directly.

use hpke::kem::X25519HkdfSha256 as Kem;
use hpke::{Deserializable, Kem as _, OpModeR, Serializable};
use keyline_http::seal::{
    HpkeKeyPair, SealHeader, Suite, labelled_info, open_labelled, response_key_schedule,
    seal_response_labelled,
};
use keyline_testkit::{hex, load_json, str_field};

#[test]
fn rfc9458_appendix_a_with_keyline_code() {
    let doc = load_json("ohttp/rfc9458-appendix-a.json");
    let v = &doc["values"];
    let d = &doc["derived"];

    // Key configuration: key_id ‖ kem_id ‖ pkR ‖ suites; pkR from skR.
    let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&hex(&v["gateway_secret_key_skR"]))
        .expect("skR");
    let pk_r = Kem::sk_to_pk(&sk_r);
    assert_eq!(pk_r.to_bytes().to_vec(), hex(&d["gateway_public_key_pkR"]));
    assert_eq!(
        hex(&v["key_config"])[3..35],
        hex(&d["gateway_public_key_pkR"])
    );
    let sk_e =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&hex(&v["client_ephemeral_secret_key_skE"]))
            .expect("skE");
    assert_eq!(Kem::sk_to_pk(&sk_e).to_bytes().to_vec(), hex(&v["enc"]));

    // Header and info, built by keyline.
    let header = SealHeader {
        key_id: 1,
        kem_id: 0x0020,
        kdf_id: 0x0001,
        aead_id: 0x0001,
    };
    assert_eq!(
        header.to_bytes().to_vec(),
        hex(&d["encapsulated_request_header"])
    );
    assert_eq!(header, SealHeader::with_suite(1, Suite::Aes128Gcm));
    assert_eq!(
        SealHeader::parse(&header.to_bytes()).expect("AES-128-GCM header"),
        header
    );
    let request_label = str_field(&doc, "request_label");
    let info = labelled_info(request_label.as_bytes(), &header, None);
    assert_eq!(info, hex(&v["hpke_info"]));

    // The encapsulated request: header ‖ enc ‖ ct (80 bytes; the printed 78 is wrong).
    let encapsulated = hex(&v["encapsulated_request"]);
    assert_eq!(encapsulated.len(), 80);
    assert_eq!(encapsulated[..7], header.to_bytes());
    assert_eq!(encapsulated[7..39], hex(&v["enc"]));
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&encapsulated[7..39]).expect("enc");
    let mut ctx = hpke::setup_receiver::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk_r,
        &enc,
        &info,
    )
    .expect("setup");
    let pt = ctx.open(&encapsulated[39..], b"").expect("open");
    assert_eq!(pt, hex(&v["request_bhttp"]));

    // Response: export, then keyline's key schedule.
    let mut secret = [0u8; 16];
    ctx.export(str_field(&doc, "response_label").as_bytes(), &mut secret)
        .expect("export");
    assert_eq!(secret.to_vec(), hex(&v["exported_secret"]));
    let response_nonce = hex(&d["response_nonce"]);
    let mut salt = hex(&v["enc"]);
    salt.extend_from_slice(&response_nonce);
    assert_eq!(salt, hex(&v["response_salt"]));
    let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), &secret);
    assert_eq!(prk.to_vec(), hex(&v["prk"]));
    let (mut key, mut nonce) = ([0u8; 16], [0u8; 12]);
    response_key_schedule(
        &secret,
        &hex(&v["enc"]),
        &response_nonce,
        &mut key,
        &mut nonce,
    )
    .expect("schedule");
    assert_eq!(key.to_vec(), hex(&v["aead_key"]));
    assert_eq!(nonce.to_vec(), hex(&v["aead_nonce"]));

    // The encapsulated response: response_nonce (16) ‖ ct (35 bytes; the printed 38 is wrong).
    let response = hex(&v["encapsulated_response"]);
    assert_eq!(response.len(), 35);
    assert_eq!(response[..16], response_nonce[..]);
    assert_eq!(response[16..], hex(&d["response_ciphertext"])[..]);

    // The same through keyline's sealing code: open the request as the gateway, seal the
    // response with the printed nonce, byte for byte.
    let gateway =
        HpkeKeyPair::from_secret_bytes(1, &hex(&v["gateway_secret_key_skR"])).expect("skR");
    assert_eq!(
        gateway.public_key().to_vec(),
        hex(&d["gateway_public_key_pkR"])
    );
    let (pt, context) = open_labelled(
        &encapsulated,
        |id| (id == 1).then(|| gateway.clone()),
        request_label.as_bytes(),
        None,
    )
    .expect("keyline opens the encapsulated request");
    assert_eq!(pt.to_vec(), hex(&v["request_bhttp"]));
    assert_eq!(context.suite(), Suite::Aes128Gcm);
    assert_eq!(Suite::Aes128Gcm.response_nonce_len(), response_nonce.len());
    let sealed = seal_response_labelled(
        &context,
        str_field(&doc, "response_label").as_bytes(),
        &response_nonce,
        &hex(&v["response_bhttp"]),
    )
    .expect("seal the response");
    assert_eq!(sealed, response, "the encapsulated response, byte for byte");
    // With the keyline label instead, or another key id, it differs / does not open.
    let other = seal_response_labelled(&context, b"keyline-http-v1 response", &response_nonce, b"")
        .expect("seal");
    assert_ne!(other[16..], response[16..]);
    assert!(open_labelled(&encapsulated, |_| None, request_label.as_bytes(), None).is_err());
}
