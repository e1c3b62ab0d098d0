//! The coordinator's DKG relay (spec §8.7, §16 items 4–5) driven by an in-memory harness:
//! nodes run the engine's `dkg::part1..3`, every hop goes through the wire codec, a manual
//! clock, duplication and reordering from a seeded RNG.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{SeededRng, libsecp_verify};
use keyline_signer::ceremony::{DkgConfig, DkgEvent, DkgSession};
use keyline_signer::dkg::{Round1Package, Round1Secret, Round2Package, Round2Secret};
use keyline_signer::rng::rand_core::RngCore;
use keyline_signer::session::{FailureReason, NodeFailure};
use keyline_signer::wire::{
    Body, Message, Participant, SealedItem, SignedRound1, decode_message, encode_message,
};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, dkg, local};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum B {
    Honest,
    /// Black-holes everything from round `n` on.
    SilentFrom(u8),
    /// Sends a second, different round-1 package.
    Equivocate,
}

#[derive(Default)]
struct Node {
    r1: Option<Round1Secret>,
    r2: Option<Round2Secret>,
    round1: BTreeMap<ParticipantId, Round1Package>,
    share: Option<NodeShare>,
    committed: bool,
}

fn round_of(body: &Body) -> u8 {
    match body {
        Body::CeremonyStart { .. } => 1,
        Body::Round1Set { .. } => 2,
        Body::SealedDeliver { .. } => 3,
        Body::Commit { .. } => 4,
        _ => 0,
    }
}

fn node_step(me: ParticipantId, node: &mut Node, body: &Body, rng: &mut SeededRng) -> Vec<Body> {
    match body {
        Body::CeremonyStart {
            ceremony_id,
            threshold,
            participants,
            ..
        } => {
            if node.r1.is_some() || node.r2.is_some() {
                return vec![];
            }
            let (secret, package) =
                dkg::part1(me, *threshold, participants.len() as u16, rng).unwrap();
            node.r1 = Some(secret);
            vec![Body::Round1 {
                ceremony_id: *ceremony_id,
                package: SignedRound1 {
                    id: me,
                    package,
                    signature: [0; 64],
                },
            }]
        }
        Body::Round1Set {
            ceremony_id,
            packages,
        } => {
            let Some(secret) = node.r1.take() else {
                return vec![];
            };
            node.round1 = packages
                .iter()
                .filter(|p| p.id != me)
                .map(|p| (p.id, p.package.clone()))
                .collect();
            let (secret, out) = dkg::part2(secret, &node.round1).unwrap();
            node.r2 = Some(secret);
            vec![Body::Sealed {
                ceremony_id: *ceremony_id,
                round: 2,
                items: out
                    .iter()
                    .map(|(to, p)| SealedItem {
                        peer: *to,
                        payload: p.serialize().unwrap(),
                    })
                    .collect(),
            }]
        }
        Body::SealedDeliver {
            ceremony_id, items, ..
        } => {
            let Some(secret) = node.r2.take() else {
                return vec![];
            };
            let received: BTreeMap<ParticipantId, Round2Package> = items
                .iter()
                .map(|i| (i.peer, Round2Package::deserialize(&i.payload).unwrap()))
                .collect();
            let share = dkg::part3(secret, &node.round1, &received).unwrap();
            let public = share.public().clone();
            node.share = Some(share);
            vec![Body::KeyConfirm {
                ceremony_id: *ceremony_id,
                npub: public.npub(),
                hash: public.fingerprint().unwrap(),
                public,
                signature: [0; 64],
            }]
        }
        Body::Commit { ceremony_id, .. } => {
            node.committed = true;
            vec![Body::Committed {
                ceremony_id: *ceremony_id,
                share_version: 1,
            }]
        }
        _ => vec![],
    }
}

struct Run {
    outcome: Result<PublicKeyPackage, Error>,
    finished_at: Duration,
    nodes: BTreeMap<ParticipantId, Node>,
}

fn run(t: u16, behaviours: &[B], config: DkgConfig, dup: u32, seed: u64) -> Run {
    let n = behaviours.len() as u16;
    let participants: Vec<Participant> = (1..=n)
        .map(|i| Participant {
            id: id(i),
            node_id: [i as u8; 32],
            hpke_pk: [0x80 | i as u8; 32],
        })
        .collect();
    let mut rng = SeededRng::new(seed);
    let mut net = SeededRng::new(seed ^ 0xD6);
    let mut nodes: BTreeMap<ParticipantId, Node> =
        (1..=n).map(|i| (id(i), Node::default())).collect();
    let mut now = Duration::ZERO;
    let (mut session, step) =
        DkgSession::new([7; 16], [8; 16], t, participants, config, now).unwrap();
    type Packet = (Duration, u64, bool, ParticipantId, Vec<u8>);
    let mut queue: Vec<Packet> = Vec::new();
    let mut seq = 0;
    let mut push = |queue: &mut Vec<Packet>, now: Duration, to_node: bool, peer, body: Body| {
        let bytes = encode_message(&Message::new(0, body)).unwrap().to_vec();
        let copies = if net.next_u32() % 1000 < dup { 2 } else { 1 };
        for _ in 0..copies {
            seq += 1;
            let at = now + Duration::from_millis(1 + u64::from(net.next_u32() % 300));
            queue.push((at, seq, to_node, peer, bytes.clone()));
        }
    };
    for o in step.send {
        push(&mut queue, now, true, o.to, o.body);
    }
    let mut guard = 0;
    while session.outcome().is_none() {
        guard += 1;
        assert!(guard < 100_000);
        let deadline = session.deadline().unwrap();
        let next = (0..queue.len()).min_by_key(|&i| (queue[i].0, queue[i].1));
        let step = match next {
            Some(i) if queue[i].0 <= deadline => {
                let (at, _, to_node, peer, bytes) = queue.swap_remove(i);
                now = now.max(at);
                let body = decode_message(&bytes).unwrap().body;
                if to_node {
                    let b = behaviours[usize::from(peer.get()) - 1];
                    if let B::SilentFrom(r) = b
                        && round_of(&body) >= r
                    {
                        continue;
                    }
                    let replies = node_step(peer, nodes.get_mut(&peer).unwrap(), &body, &mut rng);
                    for reply in replies {
                        if b == B::Equivocate
                            && let Body::Round1 { ceremony_id, .. } = &reply
                        {
                            let (_, other) = dkg::part1(peer, t, n, &mut rng).unwrap();
                            let evil = Body::Round1 {
                                ceremony_id: *ceremony_id,
                                package: SignedRound1 {
                                    id: peer,
                                    package: other,
                                    signature: [0; 64],
                                },
                            };
                            push(&mut queue, now, false, peer, evil);
                        }
                        push(&mut queue, now, false, peer, reply);
                    }
                    continue;
                }
                session.on_message(peer, &body, now)
            }
            _ => {
                now = now.max(deadline);
                session.on_timeout(now)
            }
        };
        if let Some(DkgEvent::Done(_)) = step.events.last() {
            assert!(session.outcome().unwrap().is_ok());
        }
        for o in step.send {
            push(&mut queue, now, true, o.to, o.body);
        }
    }
    Run {
        outcome: session.outcome().unwrap().clone(),
        finished_at: now,
        nodes,
    }
}

#[test]
fn dkg_2_of_3_and_3_of_5_through_the_relay_then_sign() {
    for (t, n) in [(2u16, 3usize), (3, 5)] {
        let r = run(
            t,
            &vec![B::Honest; n],
            DkgConfig::default(),
            0,
            u64::from(t),
        );
        let public = r.outcome.unwrap();
        let shares: Vec<&NodeShare> = r
            .nodes
            .values()
            .map(|n| n.share.as_ref().unwrap())
            .collect();
        assert!(r.nodes.values().all(|n| n.committed));
        assert!(shares.iter().all(|s| *s.public() == public));
        let msg = [0x42; 32];
        let sig = local::sign(
            &public,
            &shares[..usize::from(t)],
            &msg,
            &mut SeededRng::new(1),
        )
        .unwrap();
        assert!(libsecp_verify(&public.npub(), &msg, &sig));
    }
}

#[test]
fn a_node_missing_a_round_fails_at_that_rounds_deadline_naming_it() {
    let cfg = DkgConfig::default();
    for round in 1..=4u8 {
        let r = run(
            2,
            &[B::Honest, B::SilentFrom(round), B::Honest],
            cfg,
            0,
            10 + u64::from(round),
        );
        let err = r.outcome.unwrap_err();
        match &err {
            Error::Unavailable {
                operation: "dkg",
                failed,
                ..
            } => assert_eq!(
                failed,
                &vec![NodeFailure {
                    id: id(2),
                    round,
                    reason: FailureReason::Silent
                }]
            ),
            other => panic!("round {round}: {other}"),
        }
        // The deadline of round r is at most r round timeouts after the start.
        assert!(r.finished_at <= cfg.round_timeout * u32::from(round));
        assert!(r.finished_at <= cfg.total_timeout);
    }
}

#[test]
fn equivocation_is_named() {
    let r = run(
        2,
        &[B::Honest, B::Honest, B::Equivocate],
        DkgConfig::default(),
        0,
        20,
    );
    let err = r.outcome.unwrap_err();
    assert_eq!(err.culprits(), vec![id(3)], "{err}");
    assert!(err.to_string().contains("equivocation"));
}

#[test]
fn duplicates_and_reordering_are_harmless() {
    for seed in 0..6 {
        let r = run(2, &[B::Honest; 3], DkgConfig::default(), 500, 100 + seed);
        let public = r.outcome.unwrap();
        assert!(
            r.nodes
                .values()
                .all(|n| n.share.as_ref().unwrap().public() == &public)
        );
    }
}
