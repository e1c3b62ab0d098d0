//! Sans-IO signing sessions driven by an in-memory harness (spec §8.4, §8.5, §16 items 7–9):
//! engine shares from `local::dkg`, every message through the wire codec, a manual clock, and
//! loss, duplication and reordering from a seeded RNG. No wall-clock sleeps, no timed
//! assertions: every time below is the harness's manual clock.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{SeededRng, libsecp_verify};
use keyline_signer::rng::rand_core::RngCore;
use keyline_signer::session::{
    FailureReason, NodeFailure, NodeSigner, SignConfig, SignEvent, SignRequest, SignSession,
};
use keyline_signer::sign::{self, SignatureShare, SigningPackage};
use keyline_signer::wire::{
    Body, ErrorCode, KeyId, Message, Method, RequestContext, decode_message, encode_message,
};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, bip340, local};

const KEY: KeyId = [0x4b; 16];
const EVENT_ID: [u8; 32] = [0xE7; 32];

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn context() -> RequestContext {
    RequestContext {
        method: Method::SignEvent,
        client_pubkey: [1; 32],
        connection_id: [2; 16],
        unsigned_event: "{}".into(),
        peer: None,
        policy_version: 1,
        timestamp_ms: 0,
    }
}

fn request() -> SignRequest {
    SignRequest {
        key_id: KEY,
        message: EVENT_ID.to_vec(),
        context: context(),
    }
}

fn key(t: u16, n: u16) -> (PublicKeyPackage, Vec<NodeShare>) {
    local::dkg(t, n, &mut SeededRng::new(u64::from(t) << 8 | u64::from(n))).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Drops everything (down).
    Silent,
    /// Answers round 1, black-holes round 2.
    SilentRound2,
    /// Sends a corrupted signature share.
    BadShare,
}

#[derive(Clone, Copy, Debug)]
struct NetConfig {
    /// Per-mille probability a message is lost.
    loss: u32,
    /// Per-mille probability a message is delivered twice.
    dup: u32,
    /// Each copy is delayed 1..=max_delay ms, independently: this reorders.
    max_delay: u64,
}

const CLEAN: NetConfig = NetConfig {
    loss: 0,
    dup: 0,
    max_delay: 20,
};

enum Dest {
    Node(ParticipantId),
    /// `re`: the session and signing round of the request this answers (what a real
    /// transport recovers from the reply's `req_id`).
    Coordinator {
        from: ParticipantId,
        re: Option<([u8; 16], u8)>,
    },
}

struct Packet {
    at: Duration,
    seq: u64,
    dest: Dest,
    bytes: Vec<u8>,
}

struct Run {
    outcome: Result<[u8; 64], Error>,
    finished_at: Duration,
    events: Vec<SignEvent>,
    attempts: u32,
    nodes: BTreeMap<ParticipantId, NodeSigner>,
    public: PublicKeyPackage,
}

struct Harness {
    net: NetConfig,
    rng: SeededRng,
    queue: Vec<Packet>,
    seq: u64,
    now: Duration,
}

impl Harness {
    fn roll(&mut self, per_mille: u32) -> bool {
        self.rng.next_u32() % 1000 < per_mille
    }

    fn send(&mut self, dest: Dest, body: Body) {
        if self.roll(self.net.loss) {
            return;
        }
        let copies = if self.roll(self.net.dup) { 2 } else { 1 };
        let bytes = encode_message(&Message::new(self.seq, body))
            .unwrap()
            .to_vec();
        for _ in 0..copies {
            let delay = 1 + u64::from(self.rng.next_u32()) % self.net.max_delay;
            self.seq += 1;
            let dest = match &dest {
                Dest::Node(id) => Dest::Node(*id),
                Dest::Coordinator { from, re } => Dest::Coordinator {
                    from: *from,
                    re: *re,
                },
            };
            self.queue.push(Packet {
                at: self.now + ms(delay),
                seq: self.seq,
                dest,
                bytes: bytes.clone(),
            });
        }
    }

    fn pop(&mut self) -> Option<Packet> {
        let i = (0..self.queue.len()).min_by_key(|&i| (self.queue[i].at, self.queue[i].seq))?;
        Some(self.queue.swap_remove(i))
    }

    fn next_at(&self) -> Option<Duration> {
        self.queue.iter().map(|p| p.at).min()
    }
}

/// Runs one signing request over `n` nodes with the given behaviours (node i+1 gets
/// `behaviours[i]`), asking nodes in `order`.
fn run(
    t: u16,
    behaviours: &[Behaviour],
    order: &[u16],
    config: SignConfig,
    net: NetConfig,
    seed: u64,
) -> Run {
    let (public, shares) = key(t, behaviours.len() as u16);
    let mut nodes: BTreeMap<ParticipantId, NodeSigner> = shares
        .into_iter()
        .map(|s| (s.id(), NodeSigner::new(s, KEY)))
        .collect();
    let mut h = Harness {
        net,
        rng: SeededRng::new(seed),
        queue: Vec::new(),
        seq: 0,
        now: Duration::ZERO,
    };
    let mut node_rng = SeededRng::new(seed ^ 0xA5A5);
    let mut coord_rng = SeededRng::new(seed ^ 0x5A5A);
    let (mut session, step) = SignSession::new(
        public.clone(),
        request(),
        order.iter().map(|&v| id(v)).collect(),
        config,
        h.now,
        &mut coord_rng,
    )
    .unwrap();
    let mut events = step.events;
    for o in step.send {
        h.send(Dest::Node(o.to), o.body);
    }
    let mut guard = 0;
    while session.outcome().is_none() {
        guard += 1;
        assert!(guard < 100_000, "the session does not terminate");
        let deadline = session.deadline().expect("a live session has a deadline");
        let step = match h.next_at() {
            Some(at) if at <= deadline => {
                let packet = h.pop().unwrap();
                h.now = h.now.max(packet.at);
                let message = decode_message(&packet.bytes).unwrap();
                match packet.dest {
                    Dest::Node(to) => {
                        let behaviour = behaviours[usize::from(to.get()) - 1];
                        let drop = match behaviour {
                            Behaviour::Silent => true,
                            Behaviour::SilentRound2 => {
                                matches!(message.body, Body::SignShareReq { .. })
                            }
                            _ => false,
                        };
                        if !drop {
                            let node = nodes.get_mut(&to).unwrap();
                            if let Some(mut reply) =
                                node.handle(&message.body, h.now, &mut node_rng)
                            {
                                if behaviour == Behaviour::BadShare
                                    && let Body::SignShareResp { share, .. } = &mut reply
                                {
                                    *share = SignatureShare::from_bytes(&[1; 32]).unwrap();
                                }
                                let round = match &message.body {
                                    Body::SignShareReq { .. } => 2,
                                    _ => 1,
                                };
                                let re = message.body.session_id().map(|sid| (*sid, round));
                                h.send(Dest::Coordinator { from: to, re }, reply);
                            }
                        }
                        continue;
                    }
                    Dest::Coordinator { from, re } => match (&message.body, re) {
                        (Body::Error { code, .. }, Some((re, round))) => {
                            session.on_error(from, &re, round, *code, h.now, &mut coord_rng)
                        }
                        (body, _) => session.on_message(from, body, h.now, &mut coord_rng),
                    },
                }
            }
            _ => {
                h.now = h.now.max(deadline);
                session.on_timeout(h.now, &mut coord_rng)
            }
        };
        events.extend(step.events);
        for o in step.send {
            h.send(Dest::Node(o.to), o.body);
        }
    }
    let finished_at = h.now;
    // Deliver what is still in flight (aborts), then let node deadlines pass.
    while let Some(packet) = h.pop() {
        h.now = h.now.max(packet.at);
        if let Dest::Node(to) = packet.dest {
            let message = decode_message(&packet.bytes).unwrap();
            if behaviours[usize::from(to.get()) - 1] != Behaviour::Silent {
                let _ = nodes
                    .get_mut(&to)
                    .unwrap()
                    .handle(&message.body, h.now, &mut node_rng);
            }
        }
    }
    Run {
        outcome: session.outcome().unwrap().clone(),
        finished_at,
        events,
        attempts: session.attempts(),
        nodes,
        public,
    }
}

fn assert_valid(run: &Run) {
    let sig = run.outcome.as_ref().expect("signed");
    bip340::verify(&run.public.npub(), &EVENT_ID, sig).unwrap();
    assert!(libsecp_verify(&run.public.npub(), &EVENT_ID, sig));
    assert!(run.events.contains(&SignEvent::Signed(*sig)));
}

use Behaviour::{BadShare, Honest, Silent, SilentRound2};

#[test]
fn two_of_three_signs() {
    let cfg = SignConfig::default();
    let r = run(2, &[Honest; 3], &[1, 2, 3], cfg, CLEAN, 1);
    assert_valid(&r);
    assert_eq!(r.attempts, 1);
    assert!(r.finished_at < cfg.round1_timeout);
    // Nonces are gone everywhere: used by the signers, aborted on the spare.
    assert!(r.nodes.values().all(|n| n.live_sessions() == 0));
}

#[test]
fn three_of_five_signs() {
    let r = run(
        3,
        &[Honest; 5],
        &[5, 4, 3, 2, 1],
        SignConfig::default(),
        CLEAN,
        2,
    );
    assert_valid(&r);
    assert!(r.nodes.values().all(|n| n.live_sessions() == 0));
}

#[test]
fn one_node_down_still_signs_in_one_attempt() {
    let cfg = SignConfig::default();
    for down in 1..=3usize {
        let mut b = [Honest; 3];
        b[down - 1] = Silent;
        let r = run(2, &b, &[1, 2, 3], cfg, CLEAN, down as u64);
        assert_valid(&r);
        // The spare covered it: no failover, no failure recorded, well inside round 1.
        assert_eq!(r.attempts, 1);
        assert!(r.finished_at < cfg.round1_timeout);
    }
}

#[test]
fn node_black_holing_round_2_fails_over() {
    // No spares, so node 1 is certainly chosen; it answers round 1 and then goes silent.
    let cfg = SignConfig {
        spares: 0,
        ..SignConfig::default()
    };
    let r = run(
        2,
        &[SilentRound2, Honest, Honest],
        &[1, 2, 3],
        cfg,
        CLEAN,
        3,
    );
    assert_valid(&r);
    assert_eq!(r.attempts, 2);
    let failure = NodeFailure {
        id: id(1),
        round: 2,
        reason: FailureReason::Silent,
    };
    assert!(r.events.contains(&SignEvent::NodeFailed(failure)));
    // Restarted at the round-2 deadline and finished within a few network hops after it.
    let eps = ms(8 * CLEAN.max_delay);
    assert!(r.finished_at > cfg.round2_timeout);
    assert!(r.finished_at <= cfg.round2_timeout + eps);
    assert!(r.finished_at < cfg.total_timeout);
}

#[test]
fn two_nodes_down_fail_naming_both_before_the_deadline() {
    let cfg = SignConfig::default();
    let r = run(2, &[Honest, Silent, Silent], &[1, 2, 3], cfg, CLEAN, 4);
    let err = r.outcome.unwrap_err();
    assert_eq!(
        err,
        Error::Unavailable {
            operation: "signing",
            answered: 1,
            need: 2,
            failed: vec![
                NodeFailure {
                    id: id(2),
                    round: 1,
                    reason: FailureReason::Silent
                },
                NodeFailure {
                    id: id(3),
                    round: 1,
                    reason: FailureReason::Silent
                },
            ],
        }
    );
    let text = err.to_string();
    assert!(
        text.starts_with("signing unavailable: 1 of 2 nodes answered"),
        "{text}"
    );
    assert!(text.contains("node 2 in round 1: no answer"), "{text}");
    assert!(text.contains("node 3 in round 1: no answer"), "{text}");
    // Failed at the round-1 deadline, far before the whole-session deadline.
    assert_eq!(r.finished_at, cfg.round1_timeout);
    assert!(r.finished_at < cfg.total_timeout);
    assert!(matches!(r.events.last(), Some(SignEvent::Failed(_))));
    // The node that did answer holds no nonces once the abort arrived.
    assert_eq!(r.nodes[&id(1)].live_sessions(), 0);
}

#[test]
fn failures_in_different_rounds_are_named_with_their_round() {
    // Node 2 black-holes round 2, node 3 is down: 1 and 2 commit, 2 times out in round 2, the
    // retry with {1, 3} times out in round 1.
    let cfg = SignConfig::default();
    let r = run(
        2,
        &[Honest, SilentRound2, Silent],
        &[1, 2, 3],
        cfg,
        CLEAN,
        5,
    );
    let err = r.outcome.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("node 2 in round 2"), "{text}");
    assert!(text.contains("node 3 in round 1"), "{text}");
    let bound = cfg.round2_timeout + cfg.round1_timeout + ms(4 * CLEAN.max_delay);
    assert!(r.finished_at <= bound && r.finished_at < cfg.total_timeout);
}

#[test]
fn bad_share_is_named_and_the_retry_signs() {
    let cfg = SignConfig {
        spares: 0,
        ..SignConfig::default()
    };
    let r = run(2, &[Honest, BadShare, Honest], &[2, 1, 3], cfg, CLEAN, 6);
    assert_valid(&r);
    assert_eq!(r.attempts, 2);
    let failure = NodeFailure {
        id: id(2),
        round: 2,
        reason: FailureReason::BadShare,
    };
    assert!(r.events.contains(&SignEvent::NodeFailed(failure)));
    // Found at once, not at a deadline.
    assert!(r.finished_at < cfg.round1_timeout);
}

#[test]
fn duplicates_and_reordering_do_not_change_the_outcome() {
    let noisy = NetConfig {
        loss: 0,
        dup: 400,
        max_delay: 60,
    };
    let cfg = SignConfig::default();
    for seed in 0..12 {
        let r = run(2, &[Honest; 3], &[1, 2, 3], cfg, noisy, 100 + seed);
        assert_valid(&r);
        assert_eq!(r.attempts, 1, "seed {seed}");
        let r = run(
            2,
            &[Honest, BadShare, Honest],
            &[2, 1, 3],
            cfg,
            noisy,
            200 + seed,
        );
        assert_valid(&r);
        let r = run(
            2,
            &[Silent, Honest, Silent],
            &[1, 2, 3],
            cfg,
            noisy,
            300 + seed,
        );
        let err = r.outcome.unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable { answered: 1, need: 2, failed, .. }
                if failed.iter().map(|f| (f.id.get(), f.round)).collect::<Vec<_>>() == [(1, 1), (3, 1)]),
            "seed {seed}: {err}"
        );
    }
}

#[test]
fn lossy_network_always_terminates_before_the_deadline() {
    let lossy = NetConfig {
        loss: 150,
        dup: 100,
        max_delay: 200,
    };
    let cfg = SignConfig::default();
    let mut signed = 0;
    for seed in 0..24 {
        let r = run(2, &[Honest; 3], &[1, 2, 3], cfg, lossy, 400 + seed);
        assert!(r.finished_at <= cfg.total_timeout, "seed {seed}");
        match &r.outcome {
            Ok(_) => {
                assert_valid(&r);
                signed += 1;
            }
            Err(e) => assert_eq!(e.code(), "unavailable", "seed {seed}"),
        }
    }
    assert!(signed > 0);
}

// ----- node rules (spec §8.4) ------------------------------------------------------------------

fn commit_req(session_id: [u8; 16], message: &[u8], participants: &[u16]) -> Body {
    Body::SignCommitReq {
        session_id,
        key_id: KEY,
        deadline_ms: 3000,
        message: message.to_vec(),
        participants: participants.iter().map(|&v| id(v)).collect(),
        context: context(),
    }
}

fn commitments_of(reply: Option<Body>) -> sign::SigningCommitments {
    match reply {
        Some(Body::SignCommitResp { commitments, .. }) => commitments,
        other => panic!("expected commitments, got {other:?}"),
    }
}

fn error_code(reply: Option<Body>) -> ErrorCode {
    match reply {
        Some(Body::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn node_signs_once_per_session_and_refuses_a_second_package() {
    let (public, shares) = key(2, 3);
    let mut rng = SeededRng::new(7);
    let mut node = NodeSigner::new(copy(&shares[0]), KEY);
    let sid = [9; 16];
    let now = Duration::ZERO;
    let c1 = commitments_of(node.handle(&commit_req(sid, &EVENT_ID, &[1, 2, 3]), now, &mut rng));
    // A duplicate request for a live session returns the same commitments.
    let again = commitments_of(node.handle(&commit_req(sid, &EVENT_ID, &[1, 2, 3]), now, &mut rng));
    assert_eq!(c1, again);
    assert!(node.has_nonces(&sid));

    let (_, c2) = sign::commit(&shares[1], &mut rng);
    let (_, c3) = sign::commit(&shares[2], &mut rng);
    let pkg = |other: u16, c| {
        SigningPackage::new(
            &public,
            BTreeMap::from([(id(1), c1), (id(other), c)]),
            &EVENT_ID,
        )
        .unwrap()
    };
    let a = pkg(2, c2);
    let b = pkg(3, c3);
    let req = |p: &SigningPackage| Body::SignShareReq {
        session_id: sid,
        package: p.clone(),
    };
    let share = node.handle(&req(&a), now, &mut rng);
    assert!(matches!(share, Some(Body::SignShareResp { .. })));
    // Nonces are gone once the share is sent.
    assert!(!node.has_nonces(&sid));
    // The identical request gets the same share; a different package is refused.
    assert_eq!(node.handle(&req(&a), now, &mut rng), share);
    assert_eq!(
        error_code(node.handle(&req(&b), now, &mut rng)),
        ErrorCode::NONCE_USED
    );
    assert_eq!(node.refused_reuse(), 1);
    // Round 1 again for a used session is refused too: no fresh nonces under a used id.
    assert_eq!(
        error_code(node.handle(&commit_req(sid, &EVENT_ID, &[1, 2, 3]), now, &mut rng)),
        ErrorCode::NONCE_USED
    );
    // After the idempotency window the record is forgotten.
    node.on_timeout(keyline_signer::limits::SIGN_IDEMPOTENCY);
    assert_eq!(
        error_code(node.handle(&req(&a), keyline_signer::limits::SIGN_IDEMPOTENCY, &mut rng)),
        ErrorCode::UNKNOWN_SESSION
    );
}

#[test]
fn node_wipes_nonces_on_abort_deadline_and_bad_packages() {
    let (public, shares) = key(2, 3);
    let mut rng = SeededRng::new(8);
    let mut node = NodeSigner::new(copy(&shares[0]), KEY);
    let t0 = Duration::ZERO;

    // SignAbort wipes, and is idempotent.
    let s1 = [1; 16];
    commitments_of(node.handle(&commit_req(s1, &EVENT_ID, &[1, 2]), t0, &mut rng));
    assert!(
        node.handle(&Body::SignAbort { session_id: s1 }, t0, &mut rng)
            .is_none()
    );
    assert!(
        node.handle(&Body::SignAbort { session_id: s1 }, t0, &mut rng)
            .is_none()
    );
    assert!(!node.has_nonces(&s1));

    // The deadline (the request's, capped by NODE_SESSION_TIMEOUT) wipes.
    let s2 = [2; 16];
    commitments_of(node.handle(&commit_req(s2, &EVENT_ID, &[1, 2]), t0, &mut rng));
    assert_eq!(node.deadline(), Some(ms(3000)));
    node.on_timeout(ms(2999));
    assert!(node.has_nonces(&s2));
    node.on_timeout(ms(3000));
    assert!(!node.has_nonces(&s2));
    let mut long = commit_req([3; 16], &EVENT_ID, &[1, 2]);
    if let Body::SignCommitReq { deadline_ms, .. } = &mut long {
        *deadline_ms = u32::MAX;
    }
    commitments_of(node.handle(&long, t0, &mut rng));
    assert_eq!(
        node.deadline(),
        Some(keyline_signer::limits::NODE_SESSION_TIMEOUT)
    );

    // A package for another message is refused, and burns the nonces.
    let s4 = [4; 16];
    let c1 = commitments_of(node.handle(&commit_req(s4, &EVENT_ID, &[1, 2]), t0, &mut rng));
    let (_, c2) = sign::commit(&shares[1], &mut rng);
    let other = SigningPackage::new(
        &public,
        BTreeMap::from([(id(1), c1), (id(2), c2)]),
        &[0; 32],
    )
    .unwrap();
    let req = Body::SignShareReq {
        session_id: s4,
        package: other,
    };
    assert_eq!(
        error_code(node.handle(&req, t0, &mut rng)),
        ErrorCode::REJECTED
    );
    assert!(!node.has_nonces(&s4));

    // A package without this node's commitment is refused.
    let s5 = [5; 16];
    commitments_of(node.handle(&commit_req(s5, &EVENT_ID, &[1, 2]), t0, &mut rng));
    let (_, c3) = sign::commit(&shares[2], &mut rng);
    let (_, c2) = sign::commit(&shares[1], &mut rng);
    let without = SigningPackage::new(
        &public,
        BTreeMap::from([(id(2), c2), (id(3), c3)]),
        &EVENT_ID,
    )
    .unwrap();
    let req = Body::SignShareReq {
        session_id: s5,
        package: without,
    };
    assert_eq!(
        error_code(node.handle(&req, t0, &mut rng)),
        ErrorCode::REJECTED
    );

    // Unknown key, and requests that leave this node out, are refused.
    let mut wrong_key = commit_req([6; 16], &EVENT_ID, &[1, 2]);
    if let Body::SignCommitReq { key_id, .. } = &mut wrong_key {
        *key_id = [0; 16];
    }
    assert_eq!(
        error_code(node.handle(&wrong_key, t0, &mut rng)),
        ErrorCode::UNKNOWN_KEY
    );
    assert_eq!(
        error_code(node.handle(&commit_req([7; 16], &EVENT_ID, &[2, 3]), t0, &mut rng)),
        ErrorCode::REJECTED
    );
}

#[test]
fn coordinator_ignores_other_sessions_strangers_and_duplicates() {
    let (public, shares) = key(2, 3);
    let mut rng = SeededRng::new(9);
    let cfg = SignConfig {
        spares: 0,
        ..SignConfig::default()
    };
    let (mut s, step) = SignSession::new(
        public.clone(),
        request(),
        vec![id(1), id(2)],
        cfg,
        Duration::ZERO,
        &mut rng,
    )
    .unwrap();
    assert_eq!(step.send.len(), 2);
    assert_eq!(step.deadline, Some(cfg.round1_timeout));
    let sid = s.session_id();
    let (_, c1) = sign::commit(&shares[0], &mut rng);
    let (_, c3) = sign::commit(&shares[2], &mut rng);
    let resp = |session_id, from: u16, c| Body::SignCommitResp {
        session_id,
        id: id(from),
        commitments: c,
    };
    let t = ms(5);
    // Another session, a node not asked, an identifier that is not the sender's: ignored.
    assert!(
        s.on_message(id(1), &resp([0; 16], 1, c1), t, &mut rng)
            .send
            .is_empty()
    );
    assert!(
        s.on_message(id(3), &resp(sid, 3, c3), t, &mut rng)
            .send
            .is_empty()
    );
    assert!(
        s.on_message(id(2), &resp(sid, 1, c1), t, &mut rng)
            .send
            .is_empty()
    );
    // The real one, twice: the duplicate changes nothing.
    assert!(
        s.on_message(id(1), &resp(sid, 1, c1), t, &mut rng)
            .send
            .is_empty()
    );
    assert!(
        s.on_message(id(1), &resp(sid, 1, c1), t, &mut rng)
            .send
            .is_empty()
    );
    assert!(s.outcome().is_none());
    assert!(s.failures().is_empty());
    // A refusal from an asked node drops it and, with no spare, restarts and then fails.
    // A refusal for another session is ignored.
    let step = s.on_error(id(2), &[0; 16], 1, ErrorCode::POLICY, t, &mut rng);
    assert!(step.events.is_empty() && s.failures().is_empty());
    let step = s.on_error(id(2), &sid, 1, ErrorCode::POLICY, t, &mut rng);
    assert!(step.events.iter().any(|e| matches!(
        e,
        SignEvent::NodeFailed(NodeFailure {
            round: 1,
            reason: FailureReason::Refused(ErrorCode::POLICY),
            ..
        })
    )));
    assert!(matches!(s.outcome(), Some(Err(Error::Unavailable { .. }))));
    assert_eq!(s.deadline(), None);
    assert!(s.on_timeout(ms(10_000), &mut rng).send.is_empty());
}

/// `NodeShare` is deliberately not `Clone`; tests copy it through its sealed-storage encoding.
fn copy(share: &NodeShare) -> NodeShare {
    NodeShare::deserialize(&share.serialize().unwrap()).unwrap()
}

#[test]
fn node_live_sessions_are_bounded() {
    let (_, shares) = key(2, 3);
    let mut rng = SeededRng::new(10);
    let mut node = NodeSigner::new(copy(&shares[0]), KEY);
    let max = keyline_signer::limits::NODE_SIGN_SESSIONS;
    for i in 0..max {
        let mut sid = [0u8; 16];
        sid[..8].copy_from_slice(&(i as u64).to_be_bytes());
        commitments_of(node.handle(
            &commit_req(sid, &EVENT_ID, &[1, 2]),
            Duration::ZERO,
            &mut rng,
        ));
    }
    assert_eq!(node.live_sessions(), max);
    assert_eq!(
        error_code(node.handle(
            &commit_req([0xFF; 16], &EVENT_ID, &[1, 2]),
            Duration::ZERO,
            &mut rng
        )),
        ErrorCode::BUSY
    );
    // Expired sessions free their slots.
    node.on_timeout(ms(3000));
    assert_eq!(node.live_sessions(), 0);
    commitments_of(node.handle(
        &commit_req([0xFF; 16], &EVENT_ID, &[1, 2]),
        ms(3000),
        &mut rng,
    ));
}
