//! The coordinator's own checks in a key ceremony (spec §8.7): honest node machines bring the
//! ceremony to a round, then one node's message is replaced; the coordinator must name the
//! sender before relaying anything, or ignore what is harmless. Every hop goes through the wire
//! codec. The full simulated runs are in `tests/ceremonies.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::SeededRng;
use keyline_signer::ceremony::{DkgConfig, DkgEvent, DkgSession};
use keyline_signer::descriptor::{NodeDescriptor, NodeKeys};
use keyline_signer::node_ceremony::{
    NodeCeremony, sign_confirm, sign_echo, sign_round1, transcript_hash,
};
use keyline_signer::session::{FailureReason, Outgoing, Step};
use keyline_signer::wire::{
    Body, ErrorCode, Message, Participant, SealedItem, decode_message, encode_message,
};
use keyline_signer::{Error, ParticipantId, dkg, local};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

const CID: [u8; 16] = [7; 16];

fn hop(body: Body) -> Body {
    let bytes = encode_message(&Message::new(0, body)).unwrap();
    decode_message(&bytes).unwrap().body
}

struct Fixture {
    keys: Vec<Arc<NodeKeys>>,
    session: DkgSession,
    machines: BTreeMap<ParticipantId, NodeCeremony>,
    rng: SeededRng,
    now: Duration,
    /// The last messages the coordinator sent.
    sent: Vec<Outgoing>,
}

impl Fixture {
    /// A 2-of-3 DKG brought to `round`: returns the honest node messages of that round, not
    /// yet given to the coordinator.
    fn at_round(round: u8, seed: u64) -> (Self, Vec<(ParticipantId, Body)>) {
        let mut rng = SeededRng::new(seed);
        let keys: Vec<Arc<NodeKeys>> = (0..3)
            .map(|_| Arc::new(NodeKeys::generate(&mut rng)))
            .collect();
        let descriptors: Vec<NodeDescriptor> = keys.iter().map(|k| k.descriptor(1)).collect();
        let participants: Vec<Participant> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Participant {
                id: id(i as u16 + 1),
                node_id: k.node_id(),
                hpke_pk: k.hpke_pk(),
            })
            .collect();
        let machines = (1..=3)
            .map(|i| {
                (
                    id(i),
                    NodeCeremony::new(keys[usize::from(i) - 1].clone(), &descriptors, None),
                )
            })
            .collect();
        let (session, step) = DkgSession::new(
            CID,
            [8; 16],
            2,
            participants,
            DkgConfig::default(),
            Duration::ZERO,
        )
        .unwrap();
        let mut f = Self {
            keys,
            session,
            machines,
            rng,
            now: Duration::ZERO,
            sent: Vec::new(),
        };
        let mut replies = f.deliver(step);
        while f.session.round() < round {
            let mut sends = Step::default();
            for (from, body) in replies {
                let step = f.send(from, body);
                sends.send.extend(step.send);
                assert!(step.events.is_empty(), "{:?}", step.events);
            }
            replies = f.deliver(sends);
        }
        assert_eq!(f.session.round(), round);
        (f, replies)
    }

    fn deliver(&mut self, step: Step<DkgEvent>) -> Vec<(ParticipantId, Body)> {
        self.now += Duration::from_millis(10);
        self.sent = step.send.clone();
        let mut out = Vec::new();
        for o in step.send {
            let m = self.machines.get_mut(&o.to).unwrap();
            let s = m.handle(&hop(o.body), self.now, &mut self.rng);
            out.extend(s.replies.into_iter().map(|b| (o.to, b)));
        }
        out
    }

    fn send(&mut self, from: ParticipantId, body: Body) -> Step<DkgEvent> {
        self.now += Duration::from_millis(1);
        self.session.on_message(from, &hop(body), self.now)
    }

    /// Feeds `replies`, replacing node `who`'s message with `bad`; returns the error the
    /// ceremony failed with, checking the abort went to every node.
    fn fails_with(&mut self, replies: Vec<(ParticipantId, Body)>, who: u16, bad: Body) -> Error {
        for (from, body) in replies {
            let body = if from == id(who) { bad.clone() } else { body };
            let step = self.send(from, body);
            if let Some(DkgEvent::Failed(err)) = step.events.first() {
                assert_eq!(step.send.len(), 3);
                assert!(
                    step.send
                        .iter()
                        .all(|o| matches!(o.body, Body::CeremonyAbort { .. }))
                );
                return err.clone();
            }
            assert!(step.send.is_empty(), "relayed before the check");
        }
        panic!("the ceremony did not fail");
    }
}

fn reply_of(replies: &[(ParticipantId, Body)], who: u16) -> Body {
    replies
        .iter()
        .find(|(from, _)| *from == id(who))
        .unwrap()
        .1
        .clone()
}

#[test]
fn round1_with_a_forged_or_foreign_signature_is_named() {
    let (mut f, replies) = Fixture::at_round(1, 1);
    let Body::Round1 { package, .. } = reply_of(&replies, 2) else {
        panic!()
    };
    // Signed by node 1 instead of node 2.
    let forged = sign_round1(&f.keys[0], &CID, id(2), package.package.clone()).unwrap();
    let err = f.fails_with(
        replies,
        2,
        Body::Round1 {
            ceremony_id: CID,
            package: forged,
        },
    );
    assert_eq!(err.culprits(), vec![id(2)]);
    assert!(err.to_string().contains("author signature"), "{err}");

    // Signed for another ceremony.
    let (mut f, replies) = Fixture::at_round(1, 2);
    let mut rng = SeededRng::new(3);
    let (_, other) = dkg::part1(id(3), 2, 3, &mut rng).unwrap();
    let foreign = sign_round1(&f.keys[2], &[1; 16], id(3), other).unwrap();
    let err = f.fails_with(
        replies,
        3,
        Body::Round1 {
            ceremony_id: CID,
            package: foreign,
        },
    );
    assert_eq!(err.culprits(), vec![id(3)]);
}

#[test]
fn the_round1_set_carries_every_signed_package_and_h1_is_shared() {
    let (f, replies) = Fixture::at_round(2, 4);
    let Body::Round1Set { packages, .. } = &f.sent[0].body else {
        panic!("{:?}", f.sent[0].body)
    };
    assert_eq!(f.sent.len(), 3);
    assert!(f.sent.iter().all(|o| o.body == f.sent[0].body));
    let h1 = transcript_hash(&CID, 2, packages).unwrap();
    for (_, echo) in &replies {
        let Body::Echo { echo, .. } = echo else {
            panic!()
        };
        assert_eq!(echo.hash, h1);
    }
    // H1 depends on every input.
    assert_ne!(transcript_hash(&[0; 16], 2, packages).unwrap(), h1);
    assert_ne!(transcript_hash(&CID, 3, packages).unwrap(), h1);
    assert_ne!(transcript_hash(&CID, 2, &packages[..2]).unwrap(), h1);
    let mut swapped = packages.clone();
    swapped.swap(0, 1);
    assert!(transcript_hash(&CID, 2, &swapped).is_err(), "must ascend");
}

#[test]
fn an_echo_over_another_transcript_or_badly_signed_is_named() {
    let (mut f, replies) = Fixture::at_round(2, 5);
    let lying = sign_echo(&f.keys[1], &CID, id(2), [0xAA; 32]);
    let err = f.fails_with(
        replies,
        2,
        Body::Echo {
            ceremony_id: CID,
            echo: lying,
        },
    );
    assert_eq!(err.culprits(), vec![id(2)]);
    assert!(err.to_string().contains("transcript"), "{err}");

    let (mut f, replies) = Fixture::at_round(2, 6);
    let Body::Echo { mut echo, .. } = reply_of(&replies, 1) else {
        panic!()
    };
    echo.signature[0] ^= 1;
    let err = f.fails_with(
        replies,
        1,
        Body::Echo {
            ceremony_id: CID,
            echo,
        },
    );
    assert_eq!(err.culprits(), vec![id(1)]);
    assert!(err.to_string().contains("signature"), "{err}");
}

#[test]
fn sealed_packages_must_be_addressed_to_every_other_participant() {
    let (mut f, replies) = Fixture::at_round(3, 7);
    let Body::Sealed { items, .. } = reply_of(&replies, 3) else {
        panic!()
    };
    assert_eq!(
        items.iter().map(|i| i.peer).collect::<Vec<_>>(),
        vec![id(1), id(2)]
    );
    let short: Vec<SealedItem> = items[..1].to_vec();
    let err = f.fails_with(
        replies,
        3,
        Body::Sealed {
            ceremony_id: CID,
            round: 2,
            items: short,
        },
    );
    assert_eq!(err.culprits(), vec![id(3)]);
}

#[test]
fn key_confirmations_are_checked_and_must_agree() {
    // A bad signature is named.
    let (mut f, replies) = Fixture::at_round(4, 8);
    let Body::KeyConfirm {
        npub,
        public,
        hash,
        mut signature,
        ..
    } = reply_of(&replies, 2)
    else {
        panic!()
    };
    signature[5] ^= 1;
    let bad = Body::KeyConfirm {
        ceremony_id: CID,
        npub,
        public: public.clone(),
        hash,
        signature,
    };
    let err = f.fails_with(replies, 2, bad);
    assert_eq!(err.culprits(), vec![id(2)]);

    // A validly signed confirmation of another package: the nodes disagree.
    let (mut f, replies) = Fixture::at_round(4, 9);
    let (other, _) = local::dkg(2, 3, &mut SeededRng::new(10)).unwrap();
    let other_hash = other.fingerprint().unwrap();
    let signature = sign_confirm(&f.keys[0], &CID, id(1), &other.npub(), &other_hash);
    let bad = Body::KeyConfirm {
        ceremony_id: CID,
        npub: other.npub(),
        public: other.clone(),
        hash: other_hash,
        signature,
    };
    let err = f.fails_with(replies, 1, bad);
    assert_eq!(err, Error::PublicKeyMismatch);

    // A hash that is not the package's is named.
    let (mut f, replies) = Fixture::at_round(4, 11);
    let Body::KeyConfirm { npub, public, .. } = reply_of(&replies, 3) else {
        panic!()
    };
    let signature = sign_confirm(&f.keys[2], &CID, id(3), &npub, &[1; 32]);
    let bad = Body::KeyConfirm {
        ceremony_id: CID,
        npub,
        public,
        hash: [1; 32],
        signature,
    };
    let err = f.fails_with(replies, 3, bad);
    assert_eq!(err.culprits(), vec![id(3)]);
}

#[test]
fn committed_must_carry_the_expected_version() {
    let (mut f, replies) = Fixture::at_round(5, 12);
    let err = f.fails_with(
        replies,
        1,
        Body::Committed {
            ceremony_id: CID,
            share_version: 2,
        },
    );
    assert_eq!(err.culprits(), vec![id(1)]);
    let (mut f, replies) = Fixture::at_round(5, 13);
    for (from, body) in replies {
        let step = f.send(from, body);
        if f.session.outcome().is_some() {
            assert!(matches!(step.events[..], [DkgEvent::Done(_)]));
        }
    }
    assert!(f.session.outcome().unwrap().is_ok());
    assert_eq!(f.session.round(), 0);
    assert_eq!(f.session.deadline(), None);
}

#[test]
fn harmless_messages_are_ignored() {
    let (mut f, replies) = Fixture::at_round(2, 14);
    // A repeat of a round-1 package, another ceremony's message, a non-participant, a message
    // of a later round: nothing happens.
    let (_, round1) = Fixture::at_round(1, 14);
    for (from, body) in &round1 {
        assert_eq!(f.send(*from, body.clone()), step_with_deadline(&f));
    }
    let (_, other) = Fixture::at_round(2, 15);
    let mut elsewhere = other[0].1.clone();
    if let Body::Echo { ceremony_id, .. } = &mut elsewhere {
        *ceremony_id = [1; 16];
    }
    assert!(f.send(id(1), elsewhere).send.is_empty());
    assert!(f.send(id(9), replies[0].1.clone()).send.is_empty());
    assert!(
        f.send(
            id(1),
            Body::Committed {
                ceremony_id: CID,
                share_version: 1
            }
        )
        .send
        .is_empty()
    );
    assert!(f.session.outcome().is_none());
    // Duplicates of this round's messages are idempotent.
    for (from, body) in &replies[..2] {
        f.send(*from, body.clone());
        assert!(f.send(*from, body.clone()).send.is_empty());
    }
    let step = f.send(replies[2].0, replies[2].1.clone());
    assert!(matches!(step.send[0].body, Body::EchoSet { .. }));
    assert!(f.session.outcome().is_none());
}

fn step_with_deadline(f: &Fixture) -> Step<DkgEvent> {
    Step {
        send: vec![],
        events: vec![],
        deadline: f.session.deadline(),
    }
}

#[test]
fn a_node_error_aborts_naming_it() {
    let (mut f, _) = Fixture::at_round(3, 16);
    let step = f.send(
        id(2),
        Body::error(ErrorCode::REJECTED, Some(id(1)), "cannot open"),
    );
    match &step.events[..] {
        [DkgEvent::Failed(Error::Unavailable { failed, .. })] => {
            assert_eq!(failed[0].id, id(2));
            assert_eq!(failed[0].round, 3);
            assert_eq!(
                failed[0].reason,
                FailureReason::Refused(ErrorCode::REJECTED)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(step.send.len(), 3);
}
