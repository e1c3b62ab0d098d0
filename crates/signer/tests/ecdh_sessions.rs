//! Sans-IO threshold ECDH sessions (spec §8.6, §16 item 10) over an in-memory harness: wire
//! codec on every hop, a manual clock, duplication and reordering from a seeded RNG.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{SeededRng, k256_ecdh, public_point, random_secret, x_only};
use keyline_signer::ecdh::EcdhPartial;
use keyline_signer::rng::rand_core::RngCore;
use keyline_signer::session::{
    EcdhConfig, EcdhEvent, EcdhRequest, EcdhSession, FailureReason, NodeFailure, NodeSigner,
};
use keyline_signer::wire::{Body, Message, Method, RequestContext, decode_message, encode_message};
use keyline_signer::{Error, ParticipantId, local};

const KEY: [u8; 16] = [0x4b; 16];

#[derive(Clone, Copy, PartialEq, Eq)]
enum B {
    Honest,
    Silent,
    BadProof,
}

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

struct Outcome {
    result: Result<[u8; 32], Error>,
    expected: [u8; 32],
    events: Vec<EcdhEvent>,
    attempts: u32,
    finished_at: Duration,
}

/// (deliver at, seq, to node (`Some`) or the coordinator (`None`), sender, frame).
type Packet = (Duration, u64, Option<ParticipantId>, ParticipantId, Vec<u8>);

fn run(behaviours: &[B], order: &[u16], config: EcdhConfig, dup: u32, seed: u64) -> Outcome {
    let mut rng = SeededRng::new(seed);
    let secret = random_secret(&mut rng);
    let (public, shares) =
        local::import(&mut secret.clone(), 2, behaviours.len() as u16, &mut rng).unwrap();
    let peer_secret = random_secret(&mut rng);
    let peer = x_only(&public_point(&peer_secret));
    // Single-key ECDH from the peer's side: x(b·D) = x(d·B).
    let expected = k256_ecdh(&peer_secret, &public_point(&secret));
    let mut nodes: BTreeMap<ParticipantId, NodeSigner> = shares
        .into_iter()
        .map(|s| (s.id(), NodeSigner::new(s, KEY)))
        .collect();
    let request = EcdhRequest {
        key_id: KEY,
        peer,
        context: RequestContext {
            method: Method::Nip44Decrypt,
            client_pubkey: [1; 32],
            connection_id: [2; 16],
            unsigned_event: String::new(),
            peer: Some(peer),
            policy_version: 1,
            timestamp_ms: 0,
        },
    };
    let mut now = Duration::ZERO;
    let (mut session, step) = EcdhSession::new(
        public,
        request,
        order.iter().map(|&v| id(v)).collect(),
        config,
        now,
        &mut rng,
    )
    .unwrap();
    let mut queue: Vec<Packet> = Vec::new();
    let mut seq = 0u64;
    let mut net = SeededRng::new(seed ^ 0xEC);
    let mut push = |queue: &mut Vec<_>, now: Duration, to, from, body: Body| {
        let bytes = encode_message(&Message::new(0, body)).unwrap().to_vec();
        let copies = if net.next_u32() % 1000 < dup { 2 } else { 1 };
        for _ in 0..copies {
            seq += 1;
            let at = now + Duration::from_millis(1 + u64::from(net.next_u32() % 40));
            queue.push((at, seq, to, from, bytes.clone()));
        }
    };
    let mut events = step.events;
    for o in step.send {
        push(&mut queue, now, Some(o.to), o.to, o.body);
    }
    let mut guard = 0;
    while !session.is_done() {
        guard += 1;
        assert!(guard < 10_000);
        let deadline = session.deadline().unwrap();
        let next = (0..queue.len()).min_by_key(|&i| (queue[i].0, queue[i].1));
        let step = match next {
            Some(i) if queue[i].0 <= deadline => {
                let (at, _, to, from, bytes) = queue.swap_remove(i);
                now = now.max(at);
                let body = decode_message(&bytes).unwrap().body;
                if let Some(to) = to {
                    let b = behaviours[usize::from(to.get()) - 1];
                    if b != B::Silent
                        && let Some(mut reply) =
                            nodes.get_mut(&to).unwrap().handle(&body, now, &mut rng)
                    {
                        if b == B::BadProof
                            && let Body::EcdhResp { partial, .. } = &mut reply
                        {
                            let mut raw = partial.to_bytes();
                            raw[EcdhPartial::LEN - 33] ^= 1;
                            *partial = EcdhPartial::from_bytes(&raw).unwrap();
                        }
                        push(&mut queue, now, None, to, reply);
                    }
                    continue;
                }
                session.on_message(from, &body, now, &mut rng)
            }
            _ => {
                now = now.max(deadline);
                session.on_timeout(now, &mut rng)
            }
        };
        events.extend(step.events);
        for o in step.send {
            push(&mut queue, now, Some(o.to), o.to, o.body);
        }
    }
    Outcome {
        result: session.take_outcome().unwrap().map(|x| *x.as_bytes()),
        expected,
        events,
        attempts: session.attempts(),
        finished_at: now,
    }
}

#[test]
fn threshold_ecdh_equals_single_key_ecdh() {
    for seed in 0..4 {
        let o = run(&[B::Honest; 3], &[1, 2, 3], EcdhConfig::default(), 0, seed);
        assert_eq!(o.result.unwrap(), o.expected);
        assert_eq!(o.attempts, 1);
        assert!(o.events.contains(&EcdhEvent::Done));
    }
}

#[test]
fn one_node_down_still_answers() {
    let cfg = EcdhConfig::default();
    let o = run(&[B::Honest, B::Silent, B::Honest], &[1, 2, 3], cfg, 0, 10);
    assert_eq!(o.result.unwrap(), o.expected);
    assert!(o.finished_at < cfg.attempt_timeout);
}

#[test]
fn bad_proof_is_named_and_the_retry_answers() {
    let cfg = EcdhConfig {
        spares: 0,
        ..EcdhConfig::default()
    };
    let o = run(&[B::Honest, B::BadProof, B::Honest], &[2, 1, 3], cfg, 0, 11);
    assert_eq!(o.result.unwrap(), o.expected);
    assert_eq!(o.attempts, 2);
    assert!(o.events.contains(&EcdhEvent::NodeFailed(NodeFailure {
        id: id(2),
        round: 1,
        reason: FailureReason::BadProof,
    })));
    // With a spare the bad proof costs no retry.
    let o = run(
        &[B::Honest, B::BadProof, B::Honest],
        &[2, 1, 3],
        EcdhConfig::default(),
        0,
        12,
    );
    assert_eq!(o.result.unwrap(), o.expected);
    assert_eq!(o.attempts, 1);
}

#[test]
fn two_nodes_down_fail_naming_both() {
    let cfg = EcdhConfig::default();
    let o = run(&[B::Silent, B::Honest, B::Silent], &[1, 2, 3], cfg, 0, 13);
    let err = o.result.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("ecdh unavailable: 1 of 2 nodes answered"),
        "{text}"
    );
    assert!(
        text.contains("node 1 in round 1") && text.contains("node 3 in round 1"),
        "{text}"
    );
    assert_eq!(o.finished_at, cfg.attempt_timeout);
    assert!(o.finished_at < cfg.total_timeout);
}

#[test]
fn duplicates_and_reordering_do_not_change_the_result() {
    for seed in 0..8 {
        let o = run(
            &[B::Honest; 3],
            &[1, 2, 3],
            EcdhConfig::default(),
            500,
            100 + seed,
        );
        assert_eq!(o.result.unwrap(), o.expected, "seed {seed}");
        let o = run(
            &[B::BadProof, B::Honest, B::Honest],
            &[1, 2, 3],
            EcdhConfig::default(),
            500,
            200 + seed,
        );
        assert_eq!(o.result.unwrap(), o.expected, "seed {seed}");
    }
}
