//! RFC 9458 Appendix A (shared/vectors/ohttp/rfc9458-appendix-a.json; http.md B.18 item 7):
//! keyline's sealing construction with the OHTTP labels. The example uses AES-128-GCM, which
//! keyline's sealing core does not offer, so the HPKE open goes through the `hpke` crate with
//! the same KEM/KDF types, while `info` ([`labelled_info`]), the header ([`SealHeader`]) and
//! the response key schedule ([`response_key_schedule`]) are keyline's own code.
//! Not checked: the AES-128-GCM response ciphertext itself (no AES-GCM crate among the
//! dependencies); the response key and nonce it uses are.

use hpke::kem::X25519HkdfSha256 as Kem;
use hpke::{Deserializable, Kem as _, OpModeR, Serializable};
use keyline_http::seal::{SealHeader, labelled_info, response_key_schedule};
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
    assert!(
        SealHeader::parse(&header.to_bytes()).is_err(),
        "keyline refuses AES-128-GCM"
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
}
