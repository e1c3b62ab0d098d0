//! secp256k1 arithmetic on k256 0.14, and the byte bridge to the FROST crate's k256 0.13.
//!
//! The FROST crate keeps its own (older) curve crate; values cross between the two only as
//! bytes: 32-byte big-endian scalars, 33-byte SEC1 compressed points, 32-byte x-only keys
//! (spec §6.3).

use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::ops::{Reduce, ReduceNonZero};
use k256::elliptic_curve::point::{AffineCoordinates, DecompactPoint};
use k256::elliptic_curve::{CurveAffine, PrimeField};
use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};

use crate::ParticipantId;

/// Parses a 33-byte SEC1 compressed point; `None` if it is not on the curve or is the
/// identity.
pub(crate) fn from_sec1(bytes: &[u8; 33]) -> Option<ProjectivePoint> {
    if bytes[0] != 0x02 && bytes[0] != 0x03 {
        return None;
    }
    let repr = (*bytes).into();
    let point: Option<AffinePoint> = AffinePoint::from_bytes(&repr).into();
    point
        .filter(|p| !bool::from(p.is_identity()))
        .map(ProjectivePoint::from)
}

/// The 33-byte SEC1 compressed encoding; `None` for the identity.
pub(crate) fn to_sec1(point: &ProjectivePoint) -> Option<[u8; 33]> {
    let affine = point.to_affine();
    if bool::from(affine.is_identity()) {
        return None;
    }
    let bytes = affine.to_bytes();
    let mut out = [0u8; 33];
    out.copy_from_slice(bytes.as_slice());
    Some(out)
}

/// BIP340 `lift_x`: the point with x coordinate `x` and even y; `None` if there is none.
pub(crate) fn lift_x(x: &[u8; 32]) -> Option<ProjectivePoint> {
    let bytes = FieldBytes::from(*x);
    let point: Option<AffinePoint> = AffinePoint::decompact(&bytes).into();
    point.map(ProjectivePoint::from)
}

/// The 32-byte x coordinate (the x-only key) of a non-identity point.
pub(crate) fn x_only(point: &ProjectivePoint) -> [u8; 32] {
    point.to_affine().x().into()
}

/// True when the point's y coordinate is odd.
#[cfg(test)]
pub(crate) fn y_is_odd(point: &ProjectivePoint) -> bool {
    point.to_affine().y_is_odd().into()
}

/// A canonical scalar (below the group order), zero included.
pub(crate) fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
    Scalar::from_repr(FieldBytes::from(*bytes)).into()
}

/// The 32-byte big-endian encoding of a scalar.
pub(crate) fn scalar_to_bytes(scalar: &Scalar) -> [u8; 32] {
    scalar.to_repr().into()
}

/// A 32-byte hash reduced modulo the group order.
pub(crate) fn scalar_reduce(bytes: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*bytes))
}

/// A 32-byte hash mapped to a non-zero scalar.
pub(crate) fn scalar_reduce_nonzero(bytes: &[u8; 32]) -> Scalar {
    <Scalar as ReduceNonZero<FieldBytes>>::reduce_nonzero(&FieldBytes::from(*bytes))
}

/// The scalar of a participant identifier.
pub(crate) fn id_scalar(id: ParticipantId) -> Scalar {
    Scalar::from(u64::from(id.get()))
}

/// The Lagrange coefficient at 0 of `i` over the (distinct) set `ids`:
/// λ_i = Π_{j≠i} x_j / (x_j − x_i).
pub(crate) fn lagrange_at_zero(ids: &[ParticipantId], i: ParticipantId) -> Option<Scalar> {
    let xi = id_scalar(i);
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for &j in ids {
        if j == i {
            continue;
        }
        let xj = id_scalar(j);
        num *= xj;
        den *= xj - xi;
    }
    let inv: Option<Scalar> = den.invert().into();
    inv.map(|inv| num * inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sec1_round_trip_and_rejections() {
        let g = ProjectivePoint::GENERATOR;
        let bytes = to_sec1(&g).unwrap();
        assert_eq!(from_sec1(&bytes), Some(g));
        assert_eq!(to_sec1(&ProjectivePoint::IDENTITY), None);
        assert_eq!(from_sec1(&[0u8; 33]), None);
        let mut bad = bytes;
        bad[0] = 0x04;
        assert_eq!(from_sec1(&bad), None);
        // x = 5 is not on secp256k1 (5³ + 7 = 132 is a non-residue mod p).
        let mut off = [0u8; 33];
        off[0] = 0x02;
        off[32] = 5;
        assert_eq!(from_sec1(&off), None);
    }

    #[test]
    fn lift_x_has_even_y() {
        let g = ProjectivePoint::GENERATOR;
        let lifted = lift_x(&x_only(&g)).unwrap();
        assert!(!y_is_odd(&lifted));
        assert_eq!(x_only(&lifted), x_only(&g));
        assert_eq!(lift_x(&[0xff; 32]), None);
    }

    #[test]
    fn lagrange_interpolates_a_line() {
        // f(x) = 7 + 3x; f(0) from f(2) and f(5).
        let ids = [
            ParticipantId::new(2).unwrap(),
            ParticipantId::new(5).unwrap(),
        ];
        let f = |x: u64| Scalar::from(7u64) + Scalar::from(3u64) * Scalar::from(x);
        let sum = lagrange_at_zero(&ids, ids[0]).unwrap() * f(2)
            + lagrange_at_zero(&ids, ids[1]).unwrap() * f(5);
        assert_eq!(sum, Scalar::from(7u64));
    }
}
