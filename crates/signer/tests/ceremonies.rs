//! Key ceremonies end to end (spec §8.7, §8.8, §16 items 4–5): the coordinator's
//! [`DkgSession`] and n [`NodeCeremony`] machines, every hop through the wire codec, a manual
//! clock, duplication and reordering from a seeded RNG, and misbehaving nodes or coordinator.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{SeededRng, libsecp_verify, npub_of, random_secret};
use keyline_signer::ceremony::{DkgConfig, DkgEvent, DkgSession};
use keyline_signer::descriptor::{NodeDescriptor, NodeKeys};
use keyline_signer::node_ceremony::{
    CommittedShare, CurrentShare, NodeCeremony, NodeCeremonyEvent, NodeCeremonyState, NodeStep,
    sign_echo, sign_round1,
};
use keyline_signer::rng::rand_core::RngCore;
use keyline_signer::session::{FailureReason, NodeFailure, Step};
use keyline_signer::wire::{
    Body, CeremonyKind, ErrorCode, Message, Participant, SignedRound1, decode_message,
    encode_message,
};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, dkg, local};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

const CID: [u8; 16] = [7; 16];
const KEY: [u8; 16] = [8; 16];

/// The nodes of a deployment: keys and pinned descriptors.
struct Net {
    keys: Vec<Arc<NodeKeys>>,
    descriptors: Vec<NodeDescriptor>,
}

impl Net {
    fn new(n: u16, seed: u64) -> Self {
        let mut rng = SeededRng::new(seed ^ 0x6E6F_6465);
        let keys: Vec<Arc<NodeKeys>> = (0..n)
            .map(|_| Arc::new(NodeKeys::generate(&mut rng)))
            .collect();
        let descriptors = keys
            .iter()
            .map(|k| {
                let d = k.descriptor(1_700_000_000_000);
                NodeDescriptor::decode(&d.encode()).unwrap()
            })
            .collect();
        Self { keys, descriptors }
    }

    fn participants(&self, ids: &[u16]) -> Vec<Participant> {
        ids.iter()
            .map(|&i| {
                let k = &self.keys[usize::from(i) - 1];
                Participant {
                    id: id(i),
                    node_id: k.node_id(),
                    hpke_pk: k.hpke_pk(),
                }
            })
            .collect()
    }

    fn machine(&self, i: u16, current: Option<CurrentShare>) -> NodeCeremony {
        NodeCeremony::new(
            self.keys[usize::from(i) - 1].clone(),
            &self.descriptors,
            current,
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum B {
    Honest,
    /// Black-holes every coordinator message of step `n` and later (1 start, 2 round-1 set,
    /// 3 echo set, 4 sealed delivery / import share, 5 commit).
    SilentFrom(u8),
    /// Sends a second, different, validly signed round-1 package.
    Equivocate,
    /// Flips a byte of the sealed round-2 package it sends to this participant.
    CorruptSealedTo(u16),
}

fn step_of(body: &Body) -> u8 {
    match body {
        Body::CeremonyStart { .. } => 1,
        Body::Round1Set { .. } => 2,
        Body::EchoSet { .. } => 3,
        Body::SealedDeliver { .. } | Body::ImportShare { .. } => 4,
        Body::Commit { .. } => 5,
        _ => 0,
    }
}

type Tamper = Box<dyn FnMut(ParticipantId, &mut Body) -> bool>;

struct Opts {
    behaviours: BTreeMap<u16, B>,
    /// Applied to every coordinator → node message; `false` drops it.
    tamper: Option<Tamper>,
    /// Per-mille chance of delivering a message twice.
    dup: u32,
    seed: u64,
}

impl Opts {
    fn seed(seed: u64) -> Self {
        Self {
            behaviours: BTreeMap::new(),
            tamper: None,
            dup: 0,
            seed,
        }
    }
}

struct NodeRec {
    machine: NodeCeremony,
    committed: Option<Box<CommittedShare>>,
    failed: Option<Error>,
    /// Every reply the machine produced (before misbehaviour transforms).
    replies: Vec<Body>,
    /// A silent node has gone quiet: nothing it produces is sent.
    silenced: bool,
}

struct Run {
    outcome: Result<PublicKeyPackage, Error>,
    finished_at: Duration,
    nodes: BTreeMap<ParticipantId, NodeRec>,
    now: Duration,
}

impl Run {
    fn shares(&self) -> Vec<&NodeShare> {
        self.nodes
            .values()
            .map(|n| &n.committed.as_ref().expect("committed").share)
            .collect()
    }

    fn take_current(&mut self) -> BTreeMap<u16, CurrentShare> {
        self.nodes
            .iter_mut()
            .map(|(i, n)| {
                let c = n.committed.take().expect("committed");
                (
                    i.get(),
                    CurrentShare {
                        key_id: c.key_id,
                        share: c.share,
                        version: c.share_version,
                    },
                )
            })
            .collect()
    }
}

type Packet = (Duration, u64, bool, ParticipantId, Vec<u8>);

/// The links: each (direction, node) link is FIFO like the SHS stream it models; links are
/// independent, so messages of different nodes are reordered freely. A duplicate is delivered
/// after the original.
struct Wire {
    queue: Vec<Packet>,
    seq: u64,
    net: SeededRng,
    dup: u32,
    last: BTreeMap<(bool, ParticipantId), Duration>,
}

impl Wire {
    fn push(&mut self, now: Duration, to_node: bool, peer: ParticipantId, body: Body) {
        let bytes = encode_message(&Message::new(0, body)).unwrap().to_vec();
        let copies = if self.net.next_u32() % 1000 < self.dup {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.seq += 1;
            let random = now + Duration::from_millis(1 + u64::from(self.net.next_u32() % 300));
            let last = self.last.entry((to_node, peer)).or_default();
            let at = random.max(*last);
            *last = at;
            self.queue
                .push((at, self.seq, to_node, peer, bytes.clone()));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn node_output(
    wire: &mut Wire,
    now: Duration,
    me: ParticipantId,
    rec: &mut NodeRec,
    behaviour: B,
    step: NodeStep,
    rng: &mut SeededRng,
    keys: &NodeKeys,
) {
    for event in step.events {
        match event {
            NodeCeremonyEvent::Committed(c) => rec.committed = Some(c),
            NodeCeremonyEvent::Failed(e) => rec.failed = Some(e),
        }
    }
    for mut reply in step.replies {
        rec.replies.push(reply.clone());
        if rec.silenced {
            continue;
        }
        match (&behaviour, &mut reply) {
            (B::Equivocate, Body::Round1 { package, .. }) => {
                let t = package.package.commitments().len() as u16;
                let (_, other) = dkg::part1(me, t, 3, rng).unwrap();
                let evil = sign_round1(keys, &CID, me, other).unwrap();
                wire.push(
                    now,
                    false,
                    me,
                    Body::Round1 {
                        ceremony_id: CID,
                        package: evil,
                    },
                );
            }
            (B::CorruptSealedTo(to), Body::Sealed { items, .. }) => {
                for item in items.iter_mut().filter(|i| i.peer == id(*to)) {
                    let last = item.payload.len() - 1;
                    item.payload[last] ^= 1;
                }
            }
            _ => {}
        }
        wire.push(now, false, me, reply);
    }
}

/// Runs a ceremony until the coordinator finishes and every message in flight is delivered.
fn drive(
    net: &Net,
    ids: &[u16],
    mut current: BTreeMap<u16, CurrentShare>,
    start: (DkgSession, Step<DkgEvent>),
    mut opts: Opts,
) -> Run {
    let mut rng = SeededRng::new(opts.seed);
    let mut wire = Wire {
        queue: Vec::new(),
        seq: 0,
        net: SeededRng::new(opts.seed ^ 0xD6),
        dup: opts.dup,
        last: BTreeMap::new(),
    };
    let mut nodes: BTreeMap<ParticipantId, NodeRec> = ids
        .iter()
        .map(|&i| {
            (
                id(i),
                NodeRec {
                    machine: net.machine(i, current.remove(&i)),
                    committed: None,
                    failed: None,
                    replies: Vec::new(),
                    silenced: false,
                },
            )
        })
        .collect();
    let (mut session, step) = start;
    let mut now = Duration::ZERO;
    let mut finished_at = None;
    let to_nodes = |wire: &mut Wire, now, step: Step<DkgEvent>, opts: &mut Opts| {
        for mut o in step.send {
            if let Some(t) = opts.tamper.as_mut()
                && !t(o.to, &mut o.body)
            {
                continue;
            }
            wire.push(now, true, o.to, o.body);
        }
    };
    to_nodes(&mut wire, now, step, &mut opts);
    for guard in 0.. {
        assert!(guard < 100_000);
        if session.outcome().is_some() && finished_at.is_none() {
            finished_at = Some(now);
        }
        let next = (0..wire.queue.len()).min_by_key(|&i| (wire.queue[i].0, wire.queue[i].1));
        if session.outcome().is_some() && next.is_none() {
            break;
        }
        let node_deadline = nodes.values().filter_map(|n| n.machine.deadline()).min();
        let deadline = [session.deadline(), node_deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::MAX);
        match next {
            Some(i) if wire.queue[i].0 <= deadline => {
                let (at, _, to_node, peer, bytes) = wire.queue.swap_remove(i);
                now = now.max(at);
                let body = decode_message(&bytes).unwrap().body;
                if to_node {
                    let behaviour = opts
                        .behaviours
                        .get(&peer.get())
                        .copied()
                        .unwrap_or(B::Honest);
                    let rec = nodes.get_mut(&peer).unwrap();
                    if let B::SilentFrom(r) = behaviour
                        && step_of(&body) >= r
                    {
                        rec.silenced = true;
                        continue;
                    }
                    let step = rec.machine.handle(&body, now, &mut rng);
                    let keys = net.keys[usize::from(peer.get()) - 1].clone();
                    node_output(&mut wire, now, peer, rec, behaviour, step, &mut rng, &keys);
                } else {
                    let step = session.on_message(peer, &body, now);
                    to_nodes(&mut wire, now, step, &mut opts);
                }
            }
            _ => {
                now = now.max(deadline);
                let step = session.on_timeout(now);
                to_nodes(&mut wire, now, step, &mut opts);
                for (&peer, rec) in nodes.iter_mut() {
                    if rec.machine.deadline().is_some_and(|d| d <= now) {
                        let step = rec.machine.on_timeout(now);
                        let behaviour = opts
                            .behaviours
                            .get(&peer.get())
                            .copied()
                            .unwrap_or(B::Honest);
                        let keys = net.keys[usize::from(peer.get()) - 1].clone();
                        node_output(&mut wire, now, peer, rec, behaviour, step, &mut rng, &keys);
                    }
                }
            }
        }
    }
    Run {
        outcome: session.outcome().unwrap().clone(),
        finished_at: finished_at.unwrap_or(now),
        nodes,
        now,
    }
}

fn dkg_run(net: &Net, t: u16, n: u16, opts: Opts) -> Run {
    let ids: Vec<u16> = (1..=n).collect();
    let start = DkgSession::new(
        CID,
        KEY,
        t,
        net.participants(&ids),
        DkgConfig::default(),
        Duration::ZERO,
    )
    .unwrap();
    drive(net, &ids, BTreeMap::new(), start, opts)
}

fn sign_and_verify(public: &PublicKeyPackage, shares: &[&NodeShare], seed: u64) {
    let msg = [0x42; 32];
    let sig = local::sign(public, shares, &msg, &mut SeededRng::new(seed)).unwrap();
    assert!(libsecp_verify(&public.npub(), &msg, &sig));
}

fn assert_all_committed(r: &Run, public: &PublicKeyPackage, version: u32) {
    for (i, n) in &r.nodes {
        let c = n
            .committed
            .as_ref()
            .unwrap_or_else(|| panic!("node {i}: {:?}", n.failed));
        assert_eq!(c.public, *public);
        assert_eq!(c.share.public(), public);
        assert_eq!(c.share.id(), *i);
        assert_eq!(c.share_version, version);
        assert_eq!(c.key_id, KEY);
        assert_eq!(n.machine.state(), NodeCeremonyState::Done);
        assert!(!n.machine.has_secrets());
        assert!(n.failed.is_none());
    }
}

// ----- success paths ---------------------------------------------------------------------------

#[test]
fn dkg_2_of_3_and_3_of_5_then_sign() {
    for (t, n) in [(2u16, 3u16), (3, 5)] {
        let net = Net::new(n, u64::from(n));
        let r = dkg_run(&net, t, n, Opts::seed(u64::from(t)));
        let public = r.outcome.clone().unwrap();
        assert_all_committed(&r, &public, 1);
        for c in r.nodes.values() {
            assert_eq!(c.committed.as_ref().unwrap().kind, CeremonyKind::Dkg);
            assert_eq!(c.committed.as_ref().unwrap().replaces, None);
        }
        let shares = r.shares();
        sign_and_verify(&public, &shares[..usize::from(t)], 1);
        sign_and_verify(&public, &shares[usize::from(n - t)..], 2);
        // Round-2 packages never travel in clear: every sealed payload is HPKE output.
        for rec in r.nodes.values() {
            for reply in &rec.replies {
                if let Body::Sealed { items, .. } = reply {
                    assert_eq!(items.len(), usize::from(n) - 1);
                }
            }
        }
    }
}

#[test]
fn refresh_keeps_the_key_and_retires_old_shares() {
    let net = Net::new(3, 30);
    let mut first = dkg_run(&net, 2, 3, Opts::seed(31));
    let public = first.outcome.clone().unwrap();
    let old_copies: Vec<NodeShare> = first
        .shares()
        .iter()
        .map(|s| NodeShare::deserialize(&s.serialize().unwrap()).unwrap())
        .collect();
    let current = first.take_current();
    let ids = [1u16, 2, 3];
    let start = DkgSession::refresh(
        [9; 16],
        KEY,
        &public,
        1,
        net.participants(&ids),
        DkgConfig::default(),
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(start.0.kind(), CeremonyKind::Refresh);
    let r = drive(&net, &ids, current, start, Opts::seed(32));
    let new_public = r.outcome.clone().unwrap();
    assert_eq!(new_public.npub(), public.npub());
    assert_eq!(
        new_public.group_key().verifying_key(),
        public.group_key().verifying_key()
    );
    assert_ne!(new_public, public, "verifying shares changed");
    assert_all_committed(&r, &new_public, 2);
    for c in r.nodes.values() {
        assert_eq!(c.committed.as_ref().unwrap().replaces, Some(1));
    }
    let new = r.shares();
    sign_and_verify(&new_public, &[new[0], new[2]], 3);
    // The old share of node 1 no longer combines with a new share, and is named.
    let err = local::sign(
        &new_public,
        &[&old_copies[0], new[1]],
        &[1; 32],
        &mut SeededRng::new(4),
    )
    .unwrap_err();
    assert!(err.culprits().contains(&id(1)), "{err}");
}

#[test]
fn refresh_with_a_subset_removes_the_others() {
    let net = Net::new(3, 40);
    let mut first = dkg_run(&net, 2, 3, Opts::seed(41));
    let public = first.outcome.clone().unwrap();
    let mut current = first.take_current();
    current.remove(&2);
    let ids = [1u16, 3];
    let start = DkgSession::refresh(
        [9; 16],
        KEY,
        &public,
        1,
        net.participants(&ids),
        DkgConfig::default(),
        Duration::ZERO,
    )
    .unwrap();
    let r = drive(&net, &ids, current, start, Opts::seed(42));
    let new_public = r.outcome.clone().unwrap();
    assert_eq!(new_public.npub(), public.npub());
    assert_eq!(new_public.participants(), &[id(1), id(3)]);
    let new = r.shares();
    sign_and_verify(&new_public, &new, 5);
}

#[test]
fn import_keeps_the_npub() {
    let net = Net::new(3, 50);
    let mut rng = SeededRng::new(51);
    let secret = random_secret(&mut rng);
    let mut buffer = secret;
    let ids = [1u16, 2, 3];
    let start = DkgSession::import(
        CID,
        KEY,
        &mut buffer,
        2,
        net.participants(&ids),
        DkgConfig::default(),
        Duration::ZERO,
        &mut rng,
    )
    .unwrap();
    assert_eq!(buffer, [0; 32], "the nsec buffer is wiped");
    assert_eq!(start.0.round(), 4);
    let r = drive(&net, &ids, BTreeMap::new(), start, Opts::seed(52));
    let public = r.outcome.clone().unwrap();
    assert_eq!(public.npub(), npub_of(&secret));
    assert_all_committed(&r, &public, 1);
    let shares = r.shares();
    sign_and_verify(&public, &[shares[1], shares[2]], 6);
    // The import share travels sealed: the dealt share's bytes are not on the wire.
    for rec in r.nodes.values() {
        assert!(matches!(rec.replies[0], Body::KeyConfirm { .. }));
    }
}

#[test]
fn duplicates_and_reordering_are_harmless() {
    let net = Net::new(3, 60);
    for seed in 0..6 {
        let mut opts = Opts::seed(100 + seed);
        opts.dup = 500;
        let r = dkg_run(&net, 2, 3, opts);
        let public = r.outcome.clone().unwrap();
        assert_all_committed(&r, &public, 1);
    }
    // Import and refresh too.
    let mut rng = SeededRng::new(61);
    let mut secret = random_secret(&mut rng);
    let start = DkgSession::import(
        CID,
        KEY,
        &mut secret,
        2,
        net.participants(&[1, 2, 3]),
        DkgConfig::default(),
        Duration::ZERO,
        &mut rng,
    )
    .unwrap();
    let mut opts = Opts::seed(62);
    opts.dup = 700;
    let mut r = drive(&net, &[1, 2, 3], BTreeMap::new(), start, opts);
    let public = r.outcome.clone().unwrap();
    let current = r.take_current();
    let start = DkgSession::refresh(
        [3; 16],
        KEY,
        &public,
        1,
        net.participants(&[1, 2, 3]),
        DkgConfig::default(),
        Duration::ZERO,
    )
    .unwrap();
    let mut opts = Opts::seed(63);
    opts.dup = 700;
    let r = drive(&net, &[1, 2, 3], current, start, opts);
    let new_public = r.outcome.clone().unwrap();
    assert_eq!(new_public.npub(), public.npub());
    assert_all_committed(&r, &new_public, 2);
}

// ----- failures --------------------------------------------------------------------------------

fn assert_all_wiped(r: &Run) {
    for (i, n) in &r.nodes {
        assert!(!n.machine.has_secrets(), "node {i} kept secrets");
        assert!(n.committed.is_none(), "node {i} committed");
    }
}

#[test]
fn a_node_missing_a_step_fails_the_coordinator_at_that_rounds_deadline_naming_it() {
    let cfg = DkgConfig::default();
    let net = Net::new(3, 70);
    for round in 1..=5u8 {
        let mut opts = Opts::seed(10 + u64::from(round));
        opts.behaviours.insert(2, B::SilentFrom(round));
        let r = dkg_run(&net, 2, 3, opts);
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
        assert!(r.finished_at <= cfg.round_timeout * u32::from(round));
        assert!(r.finished_at <= cfg.total_timeout);
        // Every honest node got the abort (or, racing it, reached its own deadline) and wiped
        // its secrets.
        for i in [1u16, 3] {
            let n = &r.nodes[&id(i)];
            if round == 5 {
                // The commit is not atomic: nodes that got `Commit` activated their share
                // before the coordinator gave up on node 2's `Committed`.
                assert!(n.committed.is_some() && n.failed.is_none());
                continue;
            }
            assert!(
                matches!(n.failed, Some(Error::CeremonyAborted { code }) if code == ErrorCode::EXPIRED.0)
                    || matches!(n.failed, Some(Error::CeremonyTimeout { .. })),
                "{:?}",
                n.failed
            );
            assert!(!n.machine.has_secrets());
        }
    }
}

#[test]
fn equivocation_is_named() {
    let net = Net::new(3, 80);
    let mut opts = Opts::seed(20);
    opts.behaviours.insert(3, B::Equivocate);
    let r = dkg_run(&net, 2, 3, opts);
    let err = r.outcome.clone().unwrap_err();
    assert_eq!(err.culprits(), vec![id(3)], "{err}");
    assert!(err.to_string().contains("equivocation"), "{err}");
    assert_all_wiped(&r);
}

#[test]
fn a_forged_author_signature_is_named_by_the_coordinator() {
    let net = Net::new(3, 81);
    let ids = [1u16, 2, 3];
    let (mut session, _) = DkgSession::new(
        CID,
        KEY,
        2,
        net.participants(&ids),
        DkgConfig::default(),
        Duration::ZERO,
    )
    .unwrap();
    let mut rng = SeededRng::new(82);
    let (_, package) = dkg::part1(id(2), 2, 3, &mut rng).unwrap();
    // Node 2's package signed with node 1's key.
    let forged = sign_round1(&net.keys[0], &CID, id(2), package).unwrap();
    let step = session.on_message(
        id(2),
        &Body::Round1 {
            ceremony_id: CID,
            package: forged,
        },
        Duration::from_millis(5),
    );
    let err = session.outcome().unwrap().clone().unwrap_err();
    assert_eq!(err.culprits(), vec![id(2)]);
    assert!(err.to_string().contains("signature"), "{err}");
    assert_eq!(step.send.len(), 3);
    assert!(
        step.send
            .iter()
            .all(|o| matches!(o.body, Body::CeremonyAbort { .. }))
    );
}

#[test]
fn a_tampered_round1_set_makes_nodes_name_the_coordinator() {
    let net = Net::new(3, 90);
    let mut opts = Opts::seed(91);
    let mut rng = SeededRng::new(92);
    let (_, other) = dkg::part1(id(3), 2, 3, &mut rng).unwrap();
    // Node 1 gets a Round1Set where node 3's package is swapped (signature kept).
    opts.tamper = Some(Box::new(move |to, body| {
        if to == id(1)
            && let Body::Round1Set { packages, .. } = body
        {
            packages[2] = SignedRound1 {
                package: other.clone(),
                ..packages[2].clone()
            };
        }
        true
    }));
    let r = dkg_run(&net, 2, 3, opts);
    let n1 = &r.nodes[&id(1)];
    assert!(
        matches!(n1.failed, Some(Error::CoordinatorMisbehaved { .. })),
        "{:?}",
        n1.failed
    );
    assert_eq!(n1.failed.as_ref().unwrap().code(), "coordinator_misbehaved");
    // The coordinator's ceremony fails on node 1's refusal.
    let err = r.outcome.clone().unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable { failed, .. } if failed[0].id == id(1)
            && failed[0].reason == FailureReason::Refused(ErrorCode::REJECTED)),
        "{err}"
    );
    assert_all_wiped(&r);
}

#[test]
fn a_sealed_package_that_does_not_open_names_its_sender() {
    let net = Net::new(3, 100);
    let mut opts = Opts::seed(101);
    opts.behaviours.insert(2, B::CorruptSealedTo(3));
    let r = dkg_run(&net, 2, 3, opts);
    let n3 = &r.nodes[&id(3)];
    let err = n3.failed.clone().unwrap();
    assert_eq!(err.culprits(), vec![id(2)], "{err}");
    assert!(err.to_string().contains("does not open"), "{err}");
    // Node 3 told the coordinator, naming node 2 in its wire error.
    assert!(n3.replies.iter().any(|b| matches!(
        b,
        Body::Error { culprit: Some(c), .. } if *c == id(2)
    )));
    assert!(r.outcome.is_err());
    assert_all_wiped(&r);
}

#[test]
fn a_wrong_commit_hash_aborts_and_wipes() {
    let net = Net::new(3, 110);
    let mut opts = Opts::seed(111);
    opts.tamper = Some(Box::new(|_, body| {
        if let Body::Commit { hash, .. } = body {
            hash[0] ^= 1;
        }
        true
    }));
    let r = dkg_run(&net, 2, 3, opts);
    for n in r.nodes.values() {
        assert!(
            matches!(n.failed, Some(Error::CoordinatorMisbehaved { .. })),
            "{:?}",
            n.failed
        );
    }
    assert!(r.outcome.is_err());
    assert_all_wiped(&r);
}

#[test]
fn a_lost_commit_leaves_pending_shares_that_the_deadline_wipes() {
    let net = Net::new(3, 120);
    let mut opts = Opts::seed(121);
    opts.tamper = Some(Box::new(|_, body| !matches!(body, Body::Commit { .. })));
    let mut r = dkg_run(&net, 2, 3, opts);
    // The coordinator times out waiting for `Committed`; its abort reaches the nodes.
    assert!(r.outcome.is_err());
    assert_all_wiped(&r);
    // Without the abort, the node's own deadline wipes the pending share.
    let mut opts = Opts::seed(122);
    opts.tamper = Some(Box::new(|_, body| {
        !matches!(body, Body::Commit { .. } | Body::CeremonyAbort { .. })
    }));
    r = dkg_run(&net, 2, 3, opts);
    for n in r.nodes.values_mut() {
        if n.machine.state() == NodeCeremonyState::Confirm {
            assert!(n.machine.has_secrets());
            let d = n.machine.deadline().unwrap();
            let step = n.machine.on_timeout(d);
            assert!(matches!(
                step.events[..],
                [NodeCeremonyEvent::Failed(Error::CeremonyTimeout { .. })]
            ));
        }
        assert!(!n.machine.has_secrets());
        assert_eq!(n.machine.state(), NodeCeremonyState::Failed);
    }
    assert!(r.now > Duration::ZERO);
}

// ----- one node machine driven by hand --------------------------------------------------------

fn start_body(net: &Net, kind: CeremonyKind, ids: &[u16]) -> Body {
    Body::CeremonyStart {
        ceremony_id: CID,
        kind,
        key_id: KEY,
        threshold: 2,
        participants: net.participants(ids),
        round_deadline_ms: 30_000,
        total_deadline_ms: 120_000,
    }
}

#[test]
fn deadlines_and_aborts_wipe_secrets() {
    let net = Net::new(3, 130);
    let mut rng = SeededRng::new(131);
    let t0 = Duration::from_secs(5);

    // Deadline in round 1.
    let mut m = net.machine(1, None);
    assert!(!m.has_secrets());
    assert_eq!(m.deadline(), None);
    let step = m.handle(
        &start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert!(matches!(step.replies[..], [Body::Round1 { .. }]));
    assert!(m.has_secrets());
    assert_eq!(step.deadline, Some(t0 + Duration::from_secs(30)));
    assert!(m.on_timeout(t0 + Duration::from_secs(29)).events.is_empty());
    assert!(m.has_secrets());
    let step = m.on_timeout(t0 + Duration::from_secs(30));
    assert!(matches!(
        step.events[..],
        [NodeCeremonyEvent::Failed(Error::CeremonyTimeout { .. })]
    ));
    assert!(matches!(
        step.replies[..],
        [Body::Error {
            code: ErrorCode::EXPIRED,
            ..
        }]
    ));
    assert!(!m.has_secrets());
    assert_eq!(m.deadline(), None);

    // A coordinator deadline shorter than the node's cap wins; a longer one is capped.
    let mut m = net.machine(2, None);
    let mut short = start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]);
    if let Body::CeremonyStart {
        round_deadline_ms, ..
    } = &mut short
    {
        *round_deadline_ms = 1000;
    }
    assert_eq!(
        m.handle(&short, t0, &mut rng).deadline,
        Some(t0 + Duration::from_secs(1))
    );
    let mut m = net.machine(2, None);
    let mut long = start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]);
    if let Body::CeremonyStart {
        round_deadline_ms,
        total_deadline_ms,
        ..
    } = &mut long
    {
        *round_deadline_ms = u32::MAX;
        *total_deadline_ms = u32::MAX;
    }
    assert_eq!(
        m.handle(&long, t0, &mut rng).deadline,
        Some(t0 + Duration::from_secs(30))
    );

    // CeremonyAbort: wipes, no reply; a later message of the ceremony is ignored.
    let mut m = net.machine(3, None);
    m.handle(
        &start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert!(m.has_secrets());
    // An abort for another ceremony is ignored.
    let other = Body::CeremonyAbort {
        ceremony_id: [1; 16],
        reason: ErrorCode::INTERNAL,
    };
    assert!(m.handle(&other, t0, &mut rng).events.is_empty());
    assert!(m.has_secrets());
    let abort = Body::CeremonyAbort {
        ceremony_id: CID,
        reason: ErrorCode::INTERNAL,
    };
    let step = m.handle(&abort, t0, &mut rng);
    assert!(step.replies.is_empty());
    assert!(matches!(
        step.events[..],
        [NodeCeremonyEvent::Failed(Error::CeremonyAborted {
            code: 11
        })]
    ));
    assert!(!m.has_secrets());
    assert_eq!(m.state(), NodeCeremonyState::Failed);
    let again = m.handle(
        &start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert!(again.replies.is_empty() && again.events.is_empty());

    // A refresh machine holds the old share until the abort.
    let r = dkg_run(&net, 2, 3, Opts::seed(132));
    let mut r = r;
    let mut current = r.take_current();
    let mut m = net.machine(1, current.remove(&1));
    assert!(m.has_secrets(), "the old share is a secret");
    let step = m.handle(&abort, t0, &mut rng);
    assert!(
        step.events.is_empty(),
        "not started: the abort is not for it yet"
    );
    let step = m.handle(
        &start_body(&net, CeremonyKind::Refresh, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert!(
        matches!(step.replies[..], [Body::Round1 { .. }]),
        "{step:?}"
    );
    m.handle(&abort, t0, &mut rng);
    assert!(!m.has_secrets());
}

#[test]
fn start_checks_pins_membership_and_parameters() {
    let net = Net::new(4, 140);
    let stranger = Net::new(1, 141);
    let mut rng = SeededRng::new(142);
    let t0 = Duration::ZERO;
    let failed = |step: &NodeStep| match &step.events[..] {
        [NodeCeremonyEvent::Failed(e)] => e.clone(),
        other => panic!("{other:?}"),
    };

    // Node 4 is not pinned by the others (they pin only 1..3).
    let pinned: Vec<NodeDescriptor> = net.descriptors[..3].to_vec();
    let mut m = NodeCeremony::new(net.keys[0].clone(), &pinned, None);
    let step = m.handle(
        &start_body(&net, CeremonyKind::Dkg, &[1, 2, 3, 4]),
        t0,
        &mut rng,
    );
    assert_eq!(failed(&step), Error::CeremonyUnpinned { id: id(4) });
    assert!(matches!(step.replies[..], [Body::Error { .. }]));
    assert!(!m.has_secrets());

    // A pinned node with another HPKE key than its descriptor's.
    let mut m = net.machine(1, None);
    let mut body = start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]);
    if let Body::CeremonyStart { participants, .. } = &mut body {
        participants[1].hpke_pk = stranger.keys[0].hpke_pk();
    }
    let step = m.handle(&body, t0, &mut rng);
    assert_eq!(failed(&step), Error::CeremonyUnpinned { id: id(2) });

    // This node is not a participant.
    let mut m = net.machine(4, None);
    let step = m.handle(
        &start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert_eq!(failed(&step).code(), "mismatch");

    // Threshold above n.
    let mut m = net.machine(1, None);
    let mut body = start_body(&net, CeremonyKind::Dkg, &[1, 2]);
    if let Body::CeremonyStart { threshold, .. } = &mut body {
        *threshold = 3;
    }
    let step = m.handle(&body, t0, &mut rng);
    assert_eq!(failed(&step).code(), "invalid_parameters");

    // A refresh without the current share; repair is not supported.
    let mut m = net.machine(1, None);
    let step = m.handle(
        &start_body(&net, CeremonyKind::Refresh, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert_eq!(failed(&step).code(), "mismatch");
    let mut m = net.machine(1, None);
    let step = m.handle(
        &start_body(&net, CeremonyKind::Repair, &[1, 2, 3]),
        t0,
        &mut rng,
    );
    assert_eq!(failed(&step).code(), "invalid_parameters");

    // Messages before the start, and bodies that are not ceremony messages, are ignored.
    let mut m = net.machine(1, None);
    let commit = Body::Commit {
        ceremony_id: CID,
        hash: [0; 32],
    };
    let step = m.handle(&commit, t0, &mut rng);
    assert!(step.replies.is_empty() && step.events.is_empty());
    let step = m.handle(&Body::Ping { nonce: 1 }, t0, &mut rng);
    assert!(step.replies.is_empty() && step.events.is_empty());
    assert_eq!(m.state(), NodeCeremonyState::Idle);
}

#[test]
fn repeated_messages_get_the_same_reply_and_different_ones_are_refused() {
    let net = Net::new(3, 150);
    let mut rng = SeededRng::new(151);
    let t0 = Duration::ZERO;
    let mut m = net.machine(1, None);
    let start = start_body(&net, CeremonyKind::Dkg, &[1, 2, 3]);
    let first = m.handle(&start, t0, &mut rng);
    let again = m.handle(&start, t0 + Duration::from_millis(5), &mut rng);
    assert_eq!(
        first.replies, again.replies,
        "same round-1 package, not a new polynomial"
    );
    // A different start for the same ceremony is coordinator misbehaviour.
    let mut other = start.clone();
    if let Body::CeremonyStart {
        round_deadline_ms, ..
    } = &mut other
    {
        *round_deadline_ms = 29_000;
    }
    let step = m.handle(&other, t0, &mut rng);
    assert!(matches!(
        step.events[..],
        [NodeCeremonyEvent::Failed(
            Error::CoordinatorMisbehaved { .. }
        )]
    ));
    assert!(!m.has_secrets());
}

#[test]
fn coordinator_parameters_are_checked() {
    let net = Net::new(3, 160);
    let mut p = net.participants(&[1, 2, 3]);
    let cfg = DkgConfig::default();
    assert!(DkgSession::new(CID, KEY, 4, p.clone(), cfg, Duration::ZERO).is_err());
    assert!(DkgSession::new(CID, KEY, 1, p.clone(), cfg, Duration::ZERO).is_err());
    let mut dup = p.clone();
    dup[2].node_id = dup[1].node_id;
    assert!(DkgSession::new(CID, KEY, 2, dup, cfg, Duration::ZERO).is_err());
    p.swap(0, 1);
    assert!(DkgSession::new(CID, KEY, 2, p, cfg, Duration::ZERO).is_err());
    // A failed import still wipes the caller's buffer.
    let mut secret = [0x11; 32];
    let mut rng = SeededRng::new(161);
    assert!(
        DkgSession::import(
            CID,
            KEY,
            &mut secret,
            5,
            net.participants(&[1, 2, 3]),
            cfg,
            Duration::ZERO,
            &mut rng
        )
        .is_err()
    );
    assert_eq!(secret, [0; 32]);
    // A refresh needs at least t current holders.
    let (public, _) = local::dkg(2, 3, &mut rng).unwrap();
    assert!(
        DkgSession::refresh(
            CID,
            KEY,
            &public,
            1,
            net.participants(&[1]),
            cfg,
            Duration::ZERO
        )
        .is_err()
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let net = Net::new(3, 170);
    let r = dkg_run(&net, 2, 3, Opts::seed(171));
    for (i, n) in &r.nodes {
        let keys = &net.keys[usize::from(i.get()) - 1];
        let c = n.committed.as_ref().unwrap();
        let dbg = format!("{c:?} {:?} {keys:?}", n.machine);
        let secret = keys.to_secret_bytes();
        assert!(!dbg.contains(&hex::encode(&secret[..32])[..16]), "{dbg}");
        assert!(!dbg.contains(&hex::encode(&secret[32..])[..16]), "{dbg}");
        assert!(dbg.contains(&hex::encode(keys.node_id())), "{dbg}");
    }
}

#[test]
fn an_echo_set_with_a_differing_or_forged_echo_is_refused_by_the_node() {
    // A validly signed echo over another transcript: the node names its author.
    let net = Net::new(3, 180);
    let liar = net.keys[1].clone();
    let mut opts = Opts::seed(181);
    opts.tamper = Some(Box::new(move |to, body| {
        if to == id(1)
            && let Body::EchoSet { echoes, .. } = body
        {
            echoes[1] = sign_echo(&liar, &CID, id(2), [0xAB; 32]);
        }
        true
    }));
    let r = dkg_run(&net, 2, 3, opts);
    let err = r.nodes[&id(1)].failed.clone().unwrap();
    assert_eq!(
        err,
        Error::EchoMismatch {
            participants: vec![id(2)]
        }
    );
    assert_eq!(err.culprits(), vec![id(2)]);
    assert!(r.outcome.is_err());
    assert_all_wiped(&r);

    // An echo whose signature does not verify: the coordinator tampered.
    let mut opts = Opts::seed(182);
    opts.tamper = Some(Box::new(move |to, body| {
        if to == id(3)
            && let Body::EchoSet { echoes, .. } = body
        {
            echoes[0].hash[0] ^= 1;
        }
        true
    }));
    let r = dkg_run(&net, 2, 3, opts);
    assert!(matches!(
        r.nodes[&id(3)].failed,
        Some(Error::CoordinatorMisbehaved { .. })
    ));
    assert_all_wiped(&r);
}

#[test]
fn a_tampered_or_misdirected_import_share_is_refused() {
    let net = Net::new(3, 190);
    let import = |seed: u64| {
        let mut rng = SeededRng::new(seed);
        let mut secret = random_secret(&mut rng);
        DkgSession::import(
            CID,
            KEY,
            &mut secret,
            2,
            net.participants(&[1, 2, 3]),
            DkgConfig::default(),
            Duration::ZERO,
            &mut rng,
        )
        .unwrap()
    };
    // A flipped ciphertext byte.
    let mut opts = Opts::seed(191);
    opts.tamper = Some(Box::new(|to, body| {
        if to == id(2)
            && let Body::ImportShare { sealed, .. } = body
        {
            sealed[40] ^= 1;
        }
        true
    }));
    let r = drive(&net, &[1, 2, 3], BTreeMap::new(), import(192), opts);
    let err = r.nodes[&id(2)].failed.clone().unwrap();
    assert_eq!(err.code(), "coordinator_misbehaved", "{err}");
    assert!(r.outcome.is_err());
    assert_all_wiped(&r);

    // Node 1's share relabelled for node 3 does not open there (recipient and aad differ).
    let (session, mut step) = import(193);
    let node1 = step
        .send
        .iter()
        .find(|o| o.to == id(1) && matches!(o.body, Body::ImportShare { .. }))
        .unwrap()
        .body
        .clone();
    for o in step.send.iter_mut() {
        if o.to == id(3)
            && let (Body::ImportShare { sealed, .. }, Body::ImportShare { sealed: s1, .. }) =
                (&mut o.body, &node1)
        {
            sealed.clone_from(s1);
        }
    }
    let r = drive(
        &net,
        &[1, 2, 3],
        BTreeMap::new(),
        (session, step),
        Opts::seed(194),
    );
    assert_eq!(
        r.nodes[&id(3)].failed.as_ref().unwrap().code(),
        "coordinator_misbehaved"
    );
    assert_all_wiped(&r);
}
