//! Threshold ECDH (spec §7): the shared x coordinate x(d·B) that NIP-44 and NIP-04 need,
//! computed from t partial points without d ever existing.
//!
//! * Node ([`partial`]): lifts the peer's x-only key B (even y), returns E_i = s_i'·B with a
//!   Chaum–Pedersen proof that log_G(Y_i) = log_B(E_i), where s_i' is the share **as stored**
//!   (tweak included for a DKG key) and Y_i its verifying share in the public key package. The
//!   node does not multiply by its Lagrange coefficient, so its answer does not depend on who
//!   else answers.
//! * Coordinator ([`combine`]): checks every proof (a failure names the node), then computes
//!   D = Σ λ_i·E_i over the answering set, rejects the identity, and returns x(D).
//!
//! Because the stored shares interpolate to the secret d of the stored group key (Q for a
//! DKG key, the nsec for an imported key), D = d·B, and x(D) equals what the peer computes as
//! x(b·lift_x(npub)) whatever the parity of the stored key, since x(−P) = x(P). Nothing
//! extra is added for the tweak: the shares already carry it, and using the untweaked DKG key
//! would give a different, wrong secret.
//!
//! Proof (points as 33-byte SEC1, `session_id` the 16-byte session identifier):
//! k random, A1 = k·G, A2 = k·B,
//! c = int(SHA-256("keyline/signer/ecdh-dleq/v1" ‖ session_id ‖ Y_i ‖ B ‖ E_i ‖ A1 ‖ A2)) mod n,
//! z = k + c·s_i'; the verifier recomputes A1 = z·G − c·Y_i, A2 = z·B − c·E_i and c.
//! keyline hedges k: it is a hash of 32 fresh random bytes, the share, the session and both
//! points (a verifier cannot tell; a broken RNG then does not leak the share).

use std::collections::BTreeSet;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use k256::{ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::codec::Reader;
use crate::{Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng, point};

/// Domain separator of the proof's challenge (spec §7).
const DLEQ_TAG: &[u8] = b"keyline/signer/ecdh-dleq/v1";
/// Domain separator of keyline's hedged proof nonce.
const NONCE_TAG: &[u8] = b"keyline/signer/ecdh-dleq-nonce/v1";

/// A session identifier: 16 random bytes chosen by the coordinator (spec §8.3).
pub type SessionId = [u8; 16];

/// One node's answer: E_i = s_i'·B and the proof (c, z). Public.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EcdhPartial {
    id: ParticipantId,
    point: [u8; 33],
    c: [u8; 32],
    z: [u8; 32],
}

impl EcdhPartial {
    /// Length of [`EcdhPartial::to_bytes`]: identifier (2) ‖ E_i (33) ‖ c (32) ‖ z (32).
    pub const LEN: usize = 2 + 33 + 32 + 32;

    /// The answering node.
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// E_i (33-byte SEC1).
    pub fn point(&self) -> [u8; 33] {
        self.point
    }

    /// `u16 id ‖ E_i ‖ c ‖ z`, the body of an `EcdhResp` after the session id.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..2].copy_from_slice(&self.id.to_be_bytes());
        out[2..35].copy_from_slice(&self.point);
        out[35..67].copy_from_slice(&self.c);
        out[67..].copy_from_slice(&self.z);
        out
    }

    /// Parses [`EcdhPartial::to_bytes`]'s output. Values are checked by [`verify_partial`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "ECDH partial";
        let mut r = Reader::new(WHAT, bytes)?;
        let id = ParticipantId::new(r.u16()?).map_err(|_| Error::Malformed { what: WHAT })?;
        let partial = Self {
            id,
            point: r.array()?,
            c: r.array()?,
            z: r.array()?,
        };
        r.finish()?;
        Ok(partial)
    }
}

impl fmt::Debug for EcdhPartial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdhPartial")
            .field("id", &self.id)
            .field("point", &crate::codec::hex(&self.point))
            .finish_non_exhaustive()
    }
}

/// The shared x coordinate x(d·B). Secret; zeroized on drop; `Debug` prints nothing of it.
pub struct SharedX(Zeroizing<[u8; 32]>);

impl SharedX {
    /// Ordinary single-key ECDH (spec §4): x(a·lift_x(peer)) for a local secret key `secret`
    /// (the bunker's transport key). [`Error::InvalidSecretKey`] unless `secret` is in
    /// [1, n−1]; [`Error::InvalidPeerKey`] unless `peer` is the x coordinate of a curve point.
    pub fn from_secret(secret: &[u8; 32], peer: &[u8; 32]) -> Result<Self> {
        let secret =
            k256::SecretKey::from_bytes(&(*secret).into()).map_err(|_| Error::InvalidSecretKey)?;
        let b = peer_point(peer)?;
        let shared = k256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), b.to_affine());
        let mut x = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(shared.raw_secret_bytes().as_slice());
        Ok(Self(x))
    }

    /// The 32 bytes (the NIP-04 AES key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The NIP-44 v2 conversation key: HMAC-SHA256(key = "nip44-v2", message = shared_x),
    /// i.e. HKDF-extract with salt "nip44-v2".
    pub fn nip44_conversation_key(&self) -> Zeroizing<[u8; 32]> {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(b"nip44-v2") {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(self.0.as_slice());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SharedX {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedX(..)")
    }
}

/// Lifts a peer's x-only key to the curve point with even y.
fn peer_point(peer: &[u8; 32]) -> Result<ProjectivePoint> {
    point::lift_x(peer).ok_or(Error::InvalidPeerKey)
}

fn challenge(
    session_id: &SessionId,
    y_i: &[u8; 33],
    b: &[u8; 33],
    e_i: &[u8; 33],
    a1: &ProjectivePoint,
    a2: &ProjectivePoint,
) -> Scalar {
    let mut h = Sha256::new();
    h.update(DLEQ_TAG);
    h.update(session_id);
    h.update(y_i);
    h.update(b);
    h.update(e_i);
    // A1 and A2 are the identity only for a forged proof; hash 33 zero bytes then.
    h.update(point::to_sec1(a1).unwrap_or([0u8; 33]));
    h.update(point::to_sec1(a2).unwrap_or([0u8; 33]));
    point::scalar_reduce(&h.finalize().into())
}

/// Node: the partial point for peer `peer` (x-only) in session `session_id`, with its proof.
///
/// Fails with [`Error::InvalidPeerKey`] when `peer` is not the x coordinate of a curve point.
/// Keeps no state. Rate limiting (spec §7, `NODE_ECDH_PER_MINUTE`) is the node's job.
pub fn partial(
    share: &NodeShare,
    peer: &[u8; 32],
    session_id: &SessionId,
    rng: &mut impl SignerRng,
) -> Result<EcdhPartial> {
    let b = peer_point(peer)?;
    let b_bytes = point::to_sec1(&b).ok_or(Error::InvalidPeerKey)?;
    let id = share.id();
    let y_i = share
        .public()
        .verifying_share(id)
        .ok_or(Error::UnknownParticipant { id })?;

    let s_bytes = share.signing_share_bytes()?;
    let mut s = point::scalar_from_bytes(&s_bytes).ok_or(Error::Internal {
        reason: "a signing share is not a canonical scalar",
    })?;
    let e_i = b * s;
    let e_bytes = point::to_sec1(&e_i).ok_or(Error::Internal {
        reason: "the partial point is the identity",
    })?;

    let mut random = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(random.as_mut_slice());
    let mut nonce_input = Sha256::new();
    nonce_input.update(NONCE_TAG);
    nonce_input.update(random.as_slice());
    nonce_input.update(s_bytes.as_slice());
    nonce_input.update(session_id);
    nonce_input.update(b_bytes);
    nonce_input.update(e_bytes);
    let mut k_bytes: [u8; 32] = nonce_input.finalize().into();
    let mut k = point::scalar_reduce_nonzero(&k_bytes);
    k_bytes.zeroize();

    let a1 = ProjectivePoint::GENERATOR * k;
    let a2 = b * k;
    let c = challenge(session_id, &y_i, &b_bytes, &e_bytes, &a1, &a2);
    let z = k + c * s;
    k.zeroize();
    s.zeroize();
    Ok(EcdhPartial {
        id,
        point: e_bytes,
        c: point::scalar_to_bytes(&c),
        z: point::scalar_to_bytes(&z),
    })
}

/// Coordinator: checks one partial's proof against the node's verifying share; a failure is
/// [`Error::InvalidEcdhProof`] naming the node.
pub fn verify_partial(
    public: &PublicKeyPackage,
    peer: &[u8; 32],
    session_id: &SessionId,
    partial: &EcdhPartial,
) -> Result<()> {
    let b = peer_point(peer)?;
    verify_with_point(public, &b, session_id, partial)
}

fn verify_with_point(
    public: &PublicKeyPackage,
    b: &ProjectivePoint,
    session_id: &SessionId,
    partial: &EcdhPartial,
) -> Result<()> {
    let id = partial.id;
    let culprit = || Error::InvalidEcdhProof { culprits: vec![id] };
    let y_bytes = public
        .verifying_share(id)
        .ok_or(Error::UnknownParticipant { id })?;
    let y_i = point::from_sec1(&y_bytes).ok_or(Error::Internal {
        reason: "a verifying share does not decode",
    })?;
    let b_bytes = point::to_sec1(b).ok_or(Error::InvalidPeerKey)?;
    let e_i = point::from_sec1(&partial.point).ok_or_else(culprit)?;
    let c = point::scalar_from_bytes(&partial.c).ok_or_else(culprit)?;
    let z = point::scalar_from_bytes(&partial.z).ok_or_else(culprit)?;
    let a1 = ProjectivePoint::GENERATOR * z - y_i * c;
    let a2 = *b * z - e_i * c;
    if challenge(session_id, &y_bytes, &b_bytes, &partial.point, &a1, &a2) != c {
        return Err(culprit());
    }
    Ok(())
}

/// Coordinator: checks every partial's proof and combines them into x(d·B).
///
/// `partials` must come from at least t distinct share holders ([`Error::NotEnoughShares`],
/// [`Error::DuplicateParticipant`], [`Error::UnknownParticipant`]); every node whose proof
/// fails is named in one [`Error::InvalidEcdhProof`] (retry with other nodes). All given
/// partials are used; any t of them would give the same result.
pub fn combine(
    public: &PublicKeyPackage,
    peer: &[u8; 32],
    session_id: &SessionId,
    partials: &[EcdhPartial],
) -> Result<SharedX> {
    let b = peer_point(peer)?;
    let mut ids = BTreeSet::new();
    for p in partials {
        if !public.contains(p.id) {
            return Err(Error::UnknownParticipant { id: p.id });
        }
        if !ids.insert(p.id) {
            return Err(Error::DuplicateParticipant { id: p.id });
        }
    }
    let need = usize::from(public.threshold());
    if ids.len() < need {
        return Err(Error::NotEnoughShares {
            have: ids.len(),
            need,
        });
    }
    let mut culprits = Vec::new();
    for p in partials {
        match verify_with_point(public, &b, session_id, p) {
            Ok(()) => {}
            Err(Error::InvalidEcdhProof { .. }) => culprits.push(p.id),
            Err(other) => return Err(other),
        }
    }
    if !culprits.is_empty() {
        culprits.sort();
        return Err(Error::InvalidEcdhProof { culprits });
    }
    let ids: Vec<ParticipantId> = ids.into_iter().collect();
    let mut d = ProjectivePoint::IDENTITY;
    for p in partials {
        let lambda = point::lagrange_at_zero(&ids, p.id).ok_or(Error::Internal {
            reason: "Lagrange coefficient of distinct identifiers",
        })?;
        let e_i = point::from_sec1(&p.point).ok_or(Error::Internal {
            reason: "a verified partial point does not decode",
        })?;
        d += e_i * lambda;
    }
    if point::to_sec1(&d).is_none() {
        return Err(Error::Internal {
            reason: "the combined ECDH point is the identity",
        });
    }
    Ok(SharedX(Zeroizing::new(point::x_only(&d))))
}
