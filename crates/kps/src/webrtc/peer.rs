//! The str0m side of a KPS WebRTC peer (spec §6.2–§6.6, §7, §16.3): building an `Rtc` for
//! either role through str0m's direct API, without SDP.
//!
//! Both halves use the same ICE credentials (`ufrag`, the derived ice-pwd, spec §6.1). The
//! server is ICE-lite and controlled, DTLS passive with the identity certificate, and does not
//! authenticate the client (a placeholder remote fingerprint, verification off). The client is
//! full ICE and controlling, DTLS active, and pins the server's certificate: str0m refuses a
//! DTLS peer whose certificate's SHA-256 differs from the certhash digest. Both create the
//! negotiated channels 0 (control, reliable, ordered) and 1 (datagrams, unordered, no
//! retransmits) themselves; streams are DCEP channels (client ids even, server ids odd).
//!
//! DTLS is `Auto` on both sides (spec §6.6): 1.3 preferred, 1.2 accepted.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::DirectApi;
use str0m::channel::{ChannelConfig, Reliability};
use str0m::config::{DtlsCert, DtlsVersion, Fingerprint};
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use crate::Identity;
use crate::error::{Error, Result};

/// SCTP stream id of the control channel.
pub const CONTROL_CHANNEL: u16 = 0;
/// SCTP stream id of the datagram channel.
pub const DATAGRAM_CHANNEL: u16 = 1;
/// Label of the control channel (not semantic; receivers identify channels by id).
pub const CONTROL_LABEL: &str = "_kps_control";
/// Label of the datagram channel.
pub const DATAGRAM_LABEL: &str = "_kps_datagrams";

/// The ICE credentials both halves use: the client's ufrag and the pwd derived from it.
#[derive(Clone)]
pub struct Credentials {
    /// The ufrag (client-chosen).
    pub ufrag: String,
    /// The ice-pwd derived from the certhash digest and the ufrag.
    pub pwd: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    fn ice(&self) -> IceCreds {
        IceCreds {
            ufrag: self.ufrag.clone(),
            pass: self.pwd.clone(),
        }
    }
}

/// The server half for one client ufrag: ICE-lite, presenting `identity`'s certificate, with
/// one host candidate at `local` (every `Receive` fed to it must carry `local` as its
/// destination — str0m drops STUN for addresses that are not local candidates).
pub fn server_rtc(
    identity: &Identity,
    credentials: &Credentials,
    local: SocketAddr,
    now: Instant,
) -> Result<Rtc> {
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_local_ice_credentials(credentials.ice())
        .set_dtls_cert(DtlsCert {
            certificate: identity.cert_der().to_vec(),
            private_key: identity.private_key_pkcs8_der().to_vec(),
        })
        .set_fingerprint_verification(false)
        .set_dtls_version(DtlsVersion::Auto)
        .build(now);
    rtc.add_local_candidate(candidate(local)?);
    let mut api = rtc.direct_api();
    api.set_ice_controlling(false);
    api.set_remote_ice_credentials(credentials.ice());
    // str0m refuses DTLS without a remote fingerprint even with verification off (§16.3 #6).
    api.set_remote_fingerprint(Fingerprint {
        hash_func: "sha-256".into(),
        bytes: vec![0xAA; 32],
    });
    api.start_dtls(false).map_err(rtc_error)?;
    api.start_sctp(false);
    reserved_channels(&mut api);
    Ok(rtc)
}

/// The client half: full ICE, controlling, pinning the DTLS certificate to `digest`, with a
/// host candidate at `local` and the server's address as the remote candidate.
pub fn client_rtc(
    digest: &[u8; 32],
    credentials: &Credentials,
    local: SocketAddr,
    server: SocketAddr,
    now: Instant,
) -> Result<Rtc> {
    let mut rtc = RtcConfig::new()
        .set_local_ice_credentials(credentials.ice())
        .set_fingerprint_verification(true)
        .set_dtls_version(DtlsVersion::Auto)
        .build(now);
    rtc.add_local_candidate(candidate(local)?);
    rtc.add_remote_candidate(candidate(server)?);
    let mut api = rtc.direct_api();
    api.set_ice_controlling(true);
    api.set_remote_ice_credentials(credentials.ice());
    api.set_remote_fingerprint(Fingerprint {
        hash_func: "sha-256".into(),
        bytes: digest.to_vec(),
    });
    api.start_dtls(true).map_err(rtc_error)?;
    api.start_sctp(true);
    reserved_channels(&mut api);
    Ok(rtc)
}

/// Config of a stream channel (DCEP, reliable, ordered).
pub fn stream_channel(label: impl Into<String>) -> ChannelConfig {
    ChannelConfig {
        label: label.into(),
        ordered: true,
        reliability: Reliability::Reliable,
        negotiated: None,
        protocol: String::new(),
    }
}

fn reserved_channels(api: &mut DirectApi<'_>) {
    api.create_data_channel(ChannelConfig {
        label: CONTROL_LABEL.into(),
        ordered: true,
        reliability: Reliability::Reliable,
        negotiated: Some(CONTROL_CHANNEL),
        protocol: String::new(),
    });
    api.create_data_channel(ChannelConfig {
        label: DATAGRAM_LABEL.into(),
        ordered: false,
        reliability: Reliability::MaxRetransmits { retransmits: 0 },
        negotiated: Some(DATAGRAM_CHANNEL),
        protocol: String::new(),
    });
}

fn candidate(addr: SocketAddr) -> Result<Candidate> {
    Candidate::host(addr, "udp")
        .map_err(|e| Error::InvalidInput(format!("no ICE host candidate for {addr}: {e}")))
}

fn rtc_error(e: str0m::RtcError) -> Error {
    Error::InvalidInput(format!("WebRTC setup: {e}"))
}
