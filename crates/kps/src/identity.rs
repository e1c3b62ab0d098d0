//! The server identity: an ECDSA P-256 key and its self-signed certificate (spec §3).
//!
//! The certificate has an empty subject and issuer, a random positive 128-bit serial,
//! notBefore = now − 1 h, a 200 × 365-day lifetime, KeyUsage digitalSignature and EKU
//! serverAuth + clientAuth — nothing that names KPS or keyline. The key file is the upstream
//! format: a PKCS#8 `PRIVATE KEY` block (`EC PRIVATE KEY` accepted when reading) and a
//! `CERTIFICATE` block in either order, written with mode 0600. Loading keeps the certificate
//! DER verbatim, so the certhash is stable across restarts.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::pem::{PemObject as _, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::certhash::Certhash;
use crate::error::{Error, KeyFileError, Result};
use crate::limits::{CERT_BACKDATE, CERT_LIFETIME, MAX_KEY_FILE_LEN};

/// A KPS server identity. `Debug` prints the certhash only; the private key is zeroized on
/// drop and never printed.
#[derive(Clone)]
pub struct Identity {
    cert_der: CertificateDer<'static>,
    key_pkcs8: Arc<Zeroizing<Vec<u8>>>,
    certhash: Certhash,
}

impl Identity {
    /// Mints a fresh identity (spec §3).
    pub fn generate() -> Result<Identity> {
        Identity::generate_at(SystemTime::now())
    }

    /// Mints a fresh identity as if the clock read `now`.
    pub fn generate_at(now: SystemTime) -> Result<Identity> {
        let rc = |e: rcgen::Error| Error::InvalidInput(format!("certificate generation: {e}"));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(rc)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = Vec::new();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&random_serial()?));
        let not_before = time::OffsetDateTime::from(now.checked_sub(CERT_BACKDATE).unwrap_or(now));
        params.not_before = not_before;
        params.not_after = not_before + CERT_LIFETIME;
        params.is_ca = rcgen::IsCa::NoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = false;
        let cert = params.self_signed(&key).map_err(rc)?;
        let cert_der = cert.der().clone();
        let key_pkcs8 = Zeroizing::new(key.serialize_der());
        Ok(Identity {
            certhash: Certhash::of_der(&cert_der),
            cert_der,
            key_pkcs8: Arc::new(key_pkcs8),
        })
    }

    /// The certhash clients pin.
    pub const fn certhash(&self) -> Certhash {
        self.certhash
    }

    /// The certificate DER, byte for byte as minted or loaded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The PKCS#8 DER of the private key (for the DTLS stack). Handle with care.
    pub fn private_key_pkcs8_der(&self) -> &[u8] {
        &self.key_pkcs8
    }

    pub(crate) fn rustls_cert(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    pub(crate) fn rustls_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.to_vec()))
    }

    /// The key file text: `PRIVATE KEY` then `CERTIFICATE`.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        pem_block(&mut out, "PRIVATE KEY", &self.key_pkcs8);
        pem_block(&mut out, "CERTIFICATE", &self.cert_der);
        out
    }

    /// Parses key file text strictly: exactly one key block and one certificate block, in
    /// either order, nothing else; the key must be ECDSA P-256 and belong to the certificate.
    pub fn from_pem(text: &[u8]) -> std::result::Result<Identity, KeyFileError> {
        if text.len() > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::Pem(format!(
                "larger than {MAX_KEY_FILE_LEN} bytes"
            )));
        }
        let begins = text.windows(11).filter(|w| w == b"-----BEGIN ").count();
        let mut key: Option<Zeroizing<Vec<u8>>> = None;
        let mut cert: Option<Vec<u8>> = None;
        let mut seen = 0usize;
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(text) {
            let (kind, der) = item.map_err(|e| KeyFileError::Pem(e.to_string()))?;
            let der = Zeroizing::new(der);
            seen += 1;
            match kind {
                SectionKind::PrivateKey => {
                    if key.replace(der).is_some() {
                        return Err(KeyFileError::Duplicate("PRIVATE KEY"));
                    }
                }
                SectionKind::EcPrivateKey => {
                    let wrapped = Zeroizing::new(sec1_to_pkcs8(&der));
                    if key.replace(wrapped).is_some() {
                        return Err(KeyFileError::Duplicate("PRIVATE KEY"));
                    }
                }
                SectionKind::Certificate => {
                    if cert.replace(der.to_vec()).is_some() {
                        return Err(KeyFileError::Duplicate("CERTIFICATE"));
                    }
                }
                _ => return Err(KeyFileError::Pem("unexpected block type".into())),
            }
        }
        if seen != begins {
            return Err(KeyFileError::Pem("unexpected or malformed block".into()));
        }
        let key = key.ok_or(KeyFileError::MissingKey)?;
        let Some(cert) = cert else {
            return Err(KeyFileError::KeyOnly);
        };
        // The key must be P-256 and match the certificate's public key.
        let pkcs8 = PrivatePkcs8KeyDer::from(key.as_slice());
        let kp = rcgen::KeyPair::try_from(&pkcs8)
            .map_err(|_| KeyFileError::Key("not a PKCS#8 ECDSA P-256 key"))?;
        if kp.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(KeyFileError::Key("not an ECDSA P-256 key"));
        }
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())))
            .map_err(|_| KeyFileError::Key("the TLS library refuses the key"))?;
        let certified =
            rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert.clone())], signing);
        certified
            .keys_match()
            .map_err(|_| KeyFileError::Key("the key does not belong to the certificate"))?;
        Ok(Identity {
            certhash: Certhash::of_der(&cert),
            cert_der: CertificateDer::from(cert),
            key_pkcs8: Arc::new(key),
        })
    }

    /// Loads a key file.
    pub fn load(path: &Path) -> Result<Identity> {
        let text = Zeroizing::new(
            fs::read(path).map_err(|e| Error::io("reading the key file", at(path, e)))?,
        );
        Identity::from_pem(&text).map_err(|reason| Error::KeyFile {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes a new key file with mode 0600; refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| Error::io("creating the key file", at(path, e)))?;
        f.write_all(self.to_pem().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("writing the key file", at(path, e)))
    }

    /// Loads the key file, or mints and writes a new identity if it does not exist. Returns
    /// whether the file was created.
    pub fn load_or_create(path: &Path) -> Result<(Identity, bool)> {
        match Identity::load(path) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let id = Identity::generate()?;
                match id.save(path) {
                    Ok(()) => Ok((id, true)),
                    Err(Error::Io { source, .. })
                        if source.kind() == io::ErrorKind::AlreadyExists =>
                    {
                        Ok((Identity::load(path)?, false))
                    }
                    Err(e) => Err(e),
                }
            }
            other => other.map(|id| (id, false)),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certhash", &self.certhash)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> Result<[u8; 16]> {
    let mut serial = [0u8; 16];
    loop {
        getrandom::fill(&mut serial)
            .map_err(|e| Error::InvalidInput(format!("random source failed: {e}")))?;
        serial[0] &= 0x7f;
        if serial.iter().any(|&b| b != 0) {
            return Ok(serial);
        }
    }
}

fn pem_block(out: &mut String, label: &str, der: &[u8]) {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// Wraps a SEC1 `ECPrivateKey` (assumed P-256; checked later) into PKCS#8.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { id-ecPublicKey, prime256v1 }
    const ALG: [u8; 21] = [
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut octets = vec![0x04];
    der_len(&mut octets, sec1.len());
    octets.extend_from_slice(sec1);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&ALG);
    body.extend_from_slice(&octets);
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// Names the file in an I/O error, keeping its kind.
fn at(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
