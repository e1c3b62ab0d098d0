//! Certificate and key-file rules (spec §3), property tests for the codecs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyline_kps::{Certhash, Identity, KeyFileError, parse_address, parse_certhash};
use proptest::prelude::*;

/// Minimal DER reader: (tag, content, rest).
fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = d[0];
    let (len, hdr) = if d[1] < 0x80 {
        (d[1] as usize, 2)
    } else {
        let n = (d[1] & 0x7f) as usize;
        let mut l = 0usize;
        for b in &d[2..2 + n] {
            l = (l << 8) | *b as usize;
        }
        (l, 2 + n)
    };
    (tag, &d[hdr..hdr + len], &d[hdr + len..])
}

struct Tbs<'a> {
    serial: &'a [u8],
    issuer: &'a [u8],
    not_before: &'a [u8],
    not_after: &'a [u8],
    subject: &'a [u8],
}

fn tbs(der: &[u8]) -> Tbs<'_> {
    let (t, cert, _) = tlv(der);
    assert_eq!(t, 0x30);
    let (t, tbs, _) = tlv(cert);
    assert_eq!(t, 0x30);
    let (t, _version, rest) = tlv(tbs);
    assert_eq!(t, 0xa0);
    let (t, serial, rest) = tlv(rest);
    assert_eq!(t, 0x02);
    let (_, _alg, rest) = tlv(rest);
    let (_, issuer, rest) = tlv(rest);
    let (_, validity, rest) = tlv(rest);
    let (_, subject, _) = tlv(rest);
    let (_, not_before, vr) = tlv(validity);
    let (_, not_after, _) = tlv(vr);
    Tbs {
        serial,
        issuer,
        not_before,
        not_after,
        subject,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Parses UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ` to a year.
fn year(t: &[u8]) -> u32 {
    let s = std::str::from_utf8(t).unwrap();
    if s.len() == 13 {
        let yy: u32 = s[..2].parse().unwrap();
        if yy >= 50 { 1900 + yy } else { 2000 + yy }
    } else {
        s[..4].parse().unwrap()
    }
}

#[test]
fn generate_and_certhash_is_sha256_of_der() {
    let id = Identity::generate().unwrap();
    assert_eq!(id.certhash(), Certhash::of_der(id.cert_der()));
    assert_eq!(id.certhash().to_string().len(), 47);
}

#[test]
fn subject_is_empty_and_serial_random() {
    let a = Identity::generate().unwrap();
    let b = Identity::generate().unwrap();
    assert_ne!(a.certhash(), b.certhash());
    for id in [&a, &b] {
        let der = id.cert_der();
        let t = tbs(der);
        assert!(t.subject.is_empty(), "subject must be an empty DN");
        assert!(t.issuer.is_empty(), "issuer must be an empty DN");
        assert!(t.serial[0] & 0x80 == 0, "serial must be positive");
        assert!(t.serial.len() <= 16 && t.serial.len() >= 8);
        assert!(t.serial.iter().any(|&b| b != 0));
        for word in [&b"kps"[..], b"keyline", b"rcgen", b"localhost"] {
            assert!(
                !contains(der, word),
                "DER contains {:?}",
                String::from_utf8_lossy(word)
            );
        }
        // ecdsa-with-SHA256 and id-ecPublicKey / prime256v1 OIDs.
        assert!(contains(
            der,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]
        ));
        assert!(contains(
            der,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        ));
        // EKU serverAuth (1.3.6.1.5.5.7.3.1) and clientAuth (…3.2).
        assert!(contains(
            der,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
        ));
        assert!(contains(
            der,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]
        ));
        // No SAN extension (2.5.29.17).
        assert!(!contains(der, &[0x06, 0x03, 0x55, 0x1d, 0x11]));
    }
    assert_ne!(tbs(a.cert_der()).serial, tbs(b.cert_der()).serial);
}

#[test]
fn validity_is_backdated_one_hour_and_200_years() {
    // 2030-01-01T00:00:00Z
    let now = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    let id = Identity::generate_at(now).unwrap();
    let t = tbs(id.cert_der());
    let nb = std::str::from_utf8(t.not_before).unwrap();
    assert_eq!(nb, "291231230000Z", "notBefore = now - 1h");
    // 2029-12-31T23:00 + 73000 days = 2229-11-13T23:00 (GeneralizedTime after 2049).
    assert_eq!(year(t.not_after), 2229);
    assert_eq!(std::str::from_utf8(t.not_after).unwrap(), "22291113230000Z");
    let _ = SystemTime::now();
}

#[test]
fn key_file_round_trip_keeps_certhash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kps.key");
    let (a, created) = Identity::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (b, created) = Identity::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(a.certhash(), b.certhash());
    assert_eq!(a.cert_der(), b.cert_der());
    assert_eq!(Identity::load(&path).unwrap().certhash(), a.certhash());
    // save refuses to overwrite.
    assert!(a.save(&path).is_err());
}

#[test]
fn pem_round_trip_either_order() {
    let id = Identity::generate().unwrap();
    let pem = id.to_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(pem.contains("-----BEGIN CERTIFICATE-----\n"));
    let back = Identity::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(back.certhash(), id.certhash());
    let split = pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    let swapped = format!("{}{}", &pem[split..], &pem[..split]);
    assert_eq!(
        Identity::from_pem(swapped.as_bytes()).unwrap().certhash(),
        id.certhash()
    );
}

#[test]
fn debug_never_prints_the_key() {
    let id = Identity::generate().unwrap();
    let dbg = format!("{id:?}");
    assert!(dbg.contains(&id.certhash().to_string()));
    let pem = id.to_pem();
    let key_b64 = pem.lines().nth(1).unwrap();
    assert!(!dbg.contains(key_b64));
}

#[test]
fn malformed_key_files_give_clear_errors() {
    let a = Identity::generate().unwrap();
    let b = Identity::generate().unwrap();
    let pa = a.to_pem();
    let pb = b.to_pem();
    let (ka, ca) = pa.split_at(pa.find("-----BEGIN CERTIFICATE").unwrap());
    let (kb, cb) = pb.split_at(pb.find("-----BEGIN CERTIFICATE").unwrap());
    assert_eq!(
        Identity::from_pem(b"").unwrap_err(),
        KeyFileError::MissingKey
    );
    assert_eq!(
        Identity::from_pem(ca.as_bytes()).unwrap_err(),
        KeyFileError::MissingKey
    );
    assert_eq!(
        Identity::from_pem(ka.as_bytes()).unwrap_err(),
        KeyFileError::KeyOnly
    );
    assert_eq!(
        Identity::from_pem(format!("{ka}{kb}{ca}").as_bytes()).unwrap_err(),
        KeyFileError::Duplicate("PRIVATE KEY")
    );
    assert_eq!(
        Identity::from_pem(format!("{ka}{ca}{cb}").as_bytes()).unwrap_err(),
        KeyFileError::Duplicate("CERTIFICATE")
    );
    // Key of one identity, certificate of another.
    assert!(matches!(
        Identity::from_pem(format!("{ka}{cb}").as_bytes()).unwrap_err(),
        KeyFileError::Key(_)
    ));
    // Broken base64 and unknown blocks.
    let broken = pa.replacen("MI", "M!", 1);
    assert!(Identity::from_pem(broken.as_bytes()).is_err());
    let extra = format!("{}-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", &*pa);
    assert!(matches!(
        Identity::from_pem(extra.as_bytes()).unwrap_err(),
        KeyFileError::Pem(_)
    ));
    let public = format!(
        "{}-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        &*pa
    );
    assert!(Identity::from_pem(public.as_bytes()).is_err());
    // Size bound: at the edge a padded file still parses; past it, refused.
    let limit = keyline_kps::limits::MAX_KEY_FILE_LEN;
    let padded = format!("{}{}", &*pa, "\n".repeat(limit - pa.len()));
    assert_eq!(padded.len(), limit);
    assert!(Identity::from_pem(padded.as_bytes()).is_ok());
    let past = format!("{padded}\n");
    assert!(matches!(
        Identity::from_pem(past.as_bytes()).unwrap_err(),
        KeyFileError::Pem(_)
    ));
    // The error names the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.key");
    std::fs::write(&path, "garbage").unwrap();
    let msg = Identity::load(&path).unwrap_err().to_string();
    assert!(msg.contains("bad.key"), "{msg}");
}

proptest! {
    #[test]
    fn certhash_round_trip(digest in any::<[u8; 32]>()) {
        let c = Certhash::from_digest(digest);
        let s = c.to_string();
        prop_assert_eq!(s.len(), 47);
        prop_assert_eq!(parse_certhash(&s), Ok(c));
    }

    #[test]
    fn address_round_trip(v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), port in 1u16.., digest in any::<[u8; 32]>(), use_v6: bool) {
        let ip: std::net::IpAddr = if use_v6 { std::net::Ipv6Addr::from(v6).into() } else { std::net::Ipv4Addr::from(v4).into() };
        let a = keyline_kps::Address::new(ip, port, Certhash::from_digest(digest)).unwrap();
        let s = a.to_string();
        let back = parse_address(&s).unwrap();
        prop_assert_eq!(back, a);
        prop_assert_eq!(back.to_string(), s);
    }

    #[test]
    fn parsers_never_panic(s in ".{0,200}") {
        let _ = parse_address(&s);
        let _ = parse_certhash(&s);
    }

    #[test]
    fn key_file_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Identity::from_pem(&bytes);
    }
}
