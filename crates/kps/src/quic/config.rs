//! QUIC and TLS configuration (spec §5): ALPN `h3`, TLS 1.3 only, no SNI, pinning verifier.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use subtle::{Choice, ConstantTimeEq as _};

use crate::certhash::{Certhash, sha256};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::limits;

/// The ALPN both sides offer: non-identifying (never `kps/1`).
pub const ALPN: &[u8] = b"h3";

/// Bounds and timeouts of a listener or dialer; defaults are the [`crate::limits`] constants.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// [`limits::IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// [`limits::HANDSHAKE_TIMEOUT`] (listener).
    pub handshake_timeout: Duration,
    /// [`limits::DIAL_TIMEOUT`] (dialer).
    pub dial_timeout: Duration,
    /// [`limits::MAX_CONNECTIONS`] (listener).
    pub max_connections: usize,
    /// [`limits::MAX_HANDSHAKES`] (listener).
    pub max_handshakes: usize,
    /// [`limits::ACCEPT_BACKLOG`] (listener).
    pub accept_backlog: usize,
    /// [`limits::MAX_STREAMS`].
    pub max_streams: u32,
    /// [`limits::STREAM_WINDOW`].
    pub stream_window: u32,
    /// [`limits::CONNECTION_WINDOW`].
    pub connection_window: u32,
    /// [`limits::SEND_WINDOW`].
    pub send_window: u64,
    /// [`limits::DATAGRAM_QUEUE_BYTES`].
    pub datagram_queue_bytes: usize,
    /// [`limits::DEMUX_INBOX`] (listener).
    pub demux_inbox: usize,
    /// Serve WebRTC on the listener's port too (feature `webrtc`; default true). The stream
    /// and connection windows and `max_streams` above are the credit granted over WebRTC as
    /// well (the HELLO limits, spec §10).
    pub webrtc: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout: limits::IDLE_TIMEOUT,
            handshake_timeout: limits::HANDSHAKE_TIMEOUT,
            dial_timeout: limits::DIAL_TIMEOUT,
            max_connections: limits::MAX_CONNECTIONS,
            max_handshakes: limits::MAX_HANDSHAKES,
            accept_backlog: limits::ACCEPT_BACKLOG,
            max_streams: limits::MAX_STREAMS,
            stream_window: limits::STREAM_WINDOW,
            connection_window: limits::CONNECTION_WINDOW,
            send_window: limits::SEND_WINDOW,
            datagram_queue_bytes: limits::DATAGRAM_QUEUE_BYTES,
            demux_inbox: limits::DEMUX_INBOX,
            webrtc: true,
        }
    }
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn transport(config: &Config) -> Result<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| Error::InvalidInput("idle timeout out of range".into()))?;
    t.max_idle_timeout(Some(idle))
        .stream_receive_window(quinn::VarInt::from_u32(config.stream_window))
        .receive_window(quinn::VarInt::from_u32(config.connection_window))
        .send_window(config.send_window)
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(config.max_streams))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .datagram_receive_buffer_size(Some(config.datagram_queue_bytes));
    Ok(t)
}

fn tls_err(e: rustls::Error) -> Error {
    Error::InvalidInput(format!("TLS configuration: {e}"))
}

pub(crate) fn server_config(identity: &Identity, config: &Config) -> Result<quinn::ServerConfig> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(vec![identity.rustls_cert()], identity.rustls_key())
        .map_err(tls_err)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| Error::InvalidInput(format!("QUIC TLS configuration: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(config)?));
    server.max_incoming(config.max_handshakes.max(1));
    Ok(server)
}

pub(crate) fn client_config(
    pins: &[Certhash],
    config: &Config,
) -> Result<(quinn::ClientConfig, Arc<AtomicBool>)> {
    if pins.is_empty() {
        return Err(Error::InvalidInput(
            "no certhash to pin; a dial always needs one".into(),
        ));
    }
    let provider = provider();
    let mismatch = Arc::new(AtomicBool::new(false));
    let verifier = PinVerifier {
        pins: pins.iter().map(|c| *c.digest()).collect(),
        provider: provider.clone(),
        mismatch: mismatch.clone(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_sni = false;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| Error::InvalidInput(format!("QUIC TLS configuration: {e}")))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(transport(config)?));
    Ok((client, mismatch))
}

/// Accepts the server's certificate only if its SHA-256 is in the pin set (constant-time
/// against every member), and still verifies the handshake signature. No CA path, no names,
/// no dates: the pin is the trust.
#[derive(Debug)]
struct PinVerifier {
    pins: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
    mismatch: Arc<AtomicBool>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let digest = sha256(end_entity);
        let mut found = Choice::from(0);
        for pin in &self.pins {
            found |= pin.ct_eq(&digest);
        }
        if bool::from(found) {
            Ok(ServerCertVerified::assertion())
        } else {
            self.mismatch.store(true, Ordering::Relaxed);
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_accepts_any_member_refuses_others() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        let c = Identity::generate().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let v = PinVerifier {
            pins: vec![*a.certhash().digest(), *b.certhash().digest()],
            provider: provider(),
            mismatch: flag.clone(),
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let now = UnixTime::now();
        for id in [&a, &b] {
            let der = CertificateDer::from(id.cert_der());
            assert!(v.verify_server_cert(&der, &[], &name, &[], now).is_ok());
        }
        assert!(!flag.load(Ordering::Relaxed));
        let der = CertificateDer::from(c.cert_der());
        assert!(v.verify_server_cert(&der, &[], &name, &[], now).is_err());
        assert!(flag.load(Ordering::Relaxed));
    }

    #[test]
    fn no_pin_no_dial() {
        assert!(client_config(&[], &Config::default()).is_err());
    }

    #[test]
    fn transport_carries_limits() {
        let c = Config::default();
        assert_eq!(c.max_streams, limits::MAX_STREAMS);
        assert_eq!(c.datagram_queue_bytes, 256 * 1200);
        assert!(transport(&c).is_ok());
        let bad = Config {
            idle_timeout: Duration::from_secs(u64::MAX / 2),
            ..Config::default()
        };
        assert!(transport(&bad).is_err());
    }
}
