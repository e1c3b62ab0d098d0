//! keyline-signer's decoders of what share-holder nodes and coordinators exchange or store.

use keyline_signer::descriptor::NodeDescriptor;
use keyline_signer::dkg::{Round1Package, Round2Package};
use keyline_signer::sign::{SigningCommitments, SigningPackage};
use keyline_signer::{NodeShare, PublicKeyPackage};

/// Input: one selector byte, then the encoding. 0 DKG round-1 package, 1 round-2 package,
/// 2 signing commitments, 3 signing package, 4 public key package, 5 node share, 6 a
/// coordinator ↔ node wire frame, 7 a signed node descriptor. Invariants: no panic; whatever
/// decodes re-encodes to bytes that decode again (wire frames and descriptors: to the same
/// bytes).
pub fn signer_decoders(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            if let Ok(p) = Round1Package::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                Round1Package::deserialize(&again).expect("own encoding decodes");
            }
        }
        1 => {
            if let Ok(p) = Round2Package::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                Round2Package::deserialize(&again).expect("own encoding decodes");
            }
        }
        2 => {
            if let Ok(c) = SigningCommitments::deserialize(bytes) {
                let again = c.serialize().expect("encodes");
                SigningCommitments::deserialize(&again).expect("own encoding decodes");
            }
        }
        3 => {
            if let Ok(p) = SigningPackage::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                SigningPackage::deserialize(&again).expect("own encoding decodes");
            }
        }
        4 => {
            if let Ok(p) = PublicKeyPackage::deserialize(bytes) {
                let again = p.serialize().expect("encodes");
                PublicKeyPackage::deserialize(&again).expect("own encoding decodes");
            }
        }
        7 => {
            if let Ok(d) = NodeDescriptor::decode(bytes) {
                assert_eq!(&d.encode()[..], bytes, "canonical encoding");
                d.verify().expect("a decoded descriptor verifies");
            }
        }
        6 => {
            if let Ok(message) = keyline_signer::wire::decode_message(bytes) {
                let again = keyline_signer::wire::encode_message(&message).expect("encodes");
                assert_eq!(&again[..], bytes, "canonical encoding");
            }
        }
        _ => {
            if let Ok(share) = NodeShare::deserialize(bytes) {
                let again = share.serialize().expect("encodes");
                NodeShare::deserialize(&again).expect("own encoding decodes");
            }
        }
    }
}
