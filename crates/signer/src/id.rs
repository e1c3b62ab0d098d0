//! Participant identifiers.

use std::fmt;

use crate::limits::MAX_SHARES;
use crate::{Error, Result};

/// A share holder's FROST identifier: a small integer `1..=`[`MAX_SHARES`], fixed when the key
/// is created and stored with each node (spec §6.3). It maps to the scalar of the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(u16);

impl ParticipantId {
    /// The identifier `value`; fails for 0 and values above [`MAX_SHARES`].
    pub fn new(value: u16) -> Result<Self> {
        if value == 0 || value > MAX_SHARES {
            return Err(Error::params(format!(
                "participant identifier {value} outside 1..={MAX_SHARES}"
            )));
        }
        Ok(Self(value))
    }

    /// The identifiers `1..=n` (`n` must be at most [`MAX_SHARES`]).
    pub fn range(n: u16) -> Result<Vec<Self>> {
        (1..=n).map(Self::new).collect()
    }

    /// The integer value.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Big-endian bytes, as on keyline's wire (`u16`).
    pub fn to_be_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// The FROST identifier (the scalar of the same value).
    pub(crate) fn to_frost(self) -> frost_secp256k1_tr::Identifier {
        // `Identifier::try_from` fails only for 0, which `new` excludes.
        match frost_secp256k1_tr::Identifier::try_from(self.0) {
            Ok(id) => id,
            Err(_) => unreachable!("non-zero u16 identifiers are valid"),
        }
    }

    /// The keyline identifier of a FROST identifier, if it is a small integer in range.
    pub(crate) fn from_frost(id: &frost_secp256k1_tr::Identifier) -> Option<Self> {
        let bytes = id.serialize();
        if bytes.len() != 32 || bytes[..30].iter().any(|b| *b != 0) {
            return None;
        }
        Self::new(u16::from_be_bytes([bytes[30], bytes[31]])).ok()
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<u16> for ParticipantId {
    type Error = Error;

    fn try_from(value: u16) -> Result<Self> {
        Self::new(value)
    }
}

impl From<ParticipantId> for u16 {
    fn from(id: ParticipantId) -> u16 {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frost_round_trip() {
        for v in 1..=MAX_SHARES {
            let id = ParticipantId::new(v).unwrap();
            assert_eq!(ParticipantId::from_frost(&id.to_frost()), Some(id));
        }
        assert!(ParticipantId::new(0).is_err());
        let big = frost_secp256k1_tr::Identifier::try_from(MAX_SHARES + 1).unwrap();
        assert_eq!(ParticipantId::from_frost(&big), None);
        let derived = frost_secp256k1_tr::Identifier::derive(b"node-a").unwrap();
        assert_eq!(ParticipantId::from_frost(&derived), None);
    }
}
