//! The node side of key ceremonies (spec §8.7 DKG and refresh, §8.8 import), sans-IO.
//!
//! One [`NodeCeremony`] runs one ceremony: the transport creates it when a `CeremonyStart`
//! arrives (routing by [`Body::ceremony_id`]), feeds it every ceremony message from the
//! coordinator with [`NodeCeremony::handle`], calls [`NodeCeremony::on_timeout`] at
//! [`NodeCeremony::deadline`], sends every reply body to the coordinator, and persists the
//! share of a [`NodeCeremonyEvent::Committed`] event.
//!
//! # Flow (DKG and refresh)
//!
//! | receives | checks | replies |
//! |---|---|---|
//! | `CeremonyStart` | every participant's `(node_id, hpke_pk)` is pinned here; this node is one of them; t, n, identifiers (refresh: the current share's key, threshold and participants) | `Round1`: `dkg::part1` / `refresh::part1`, author signature |
//! | `Round1Set` | one package per participant, every author signature, this node's own package unchanged | `Echo`: signed H1 |
//! | `EchoSet` | one echo per participant, every signature, this node's own echo unchanged, every H1 equal to this node's | `Sealed`: `part2`, each package HPKE-sealed to its recipient |
//! | `SealedDeliver` | one sealed package from every other participant; each opens (else its sender is named) | `KeyConfirm` (`Result`): `part3` (a bad share names its sender), signed SHA-256 of the public key package |
//! | `Commit` | the hash is this node's | `Committed`, and the [`NodeCeremonyEvent::Committed`] event |
//!
//! Import: `CeremonyStart` (no reply) → `ImportShare` (opened, `import::accept`) →
//! `KeyConfirm` → `Commit` → `Committed`.
//!
//! # Signed messages
//!
//! All signatures are Ed25519 by the node's identity key ([`NodeKeys`]), over
//! domain-separated messages (identifiers `u16`, integers big-endian):
//!
//! * round 1 (spec §8.7 step 2): `"keyline/signer/dkg/r1/v1" ‖ ceremony_id ‖ identifier ‖
//!   SHA-256(package)`, the package in its crate encoding ([`round1_message`]);
//! * transcript (step 3): `H1 = SHA-256("keyline/signer/dkg/transcript/v1" ‖ ceremony_id ‖
//!   t:u16 ‖ n:u16 ‖ for each identifier ascending: identifier:u16 ‖ len:u32 ‖ package)`
//!   ([`transcript_hash`]); the echo signs `"keyline/signer/dkg/echo/v1" ‖ ceremony_id ‖
//!   identifier ‖ H1` ([`echo_message`]);
//! * key confirmation (step 5): `"keyline/signer/dkg/confirm/v1" ‖ ceremony_id ‖ identifier ‖
//!   npub ‖ SHA-256(public key package)` ([`confirm_message`]).
//!
//! Round-2 packages are sealed with HPKE mode auth ([`crate::descriptor`]):
//! `info = "keyline/signer/dkg/r2/v1" ‖ ceremony_id`, `aad = round:u8 (2) ‖ from:u16 ‖ to:u16`.
//! Import shares use HPKE mode base from the dealer: `info = "keyline/signer/import/v1" ‖
//! ceremony_id`, `aad = key_id ‖ identifier:u16`.
//!
//! # Duplicates, misbehaviour, deadlines
//!
//! An identical repeat of a message already handled gets the same reply again; a **different**
//! message for a step already handled is coordinator misbehaviour. Any failure, a
//! `CeremonyAbort`, or a passed deadline wipes every ceremony secret (round secrets, the pending
//! share, the old share of a refresh), emits [`NodeCeremonyEvent::Failed`] and, except for an
//! abort, replies with a wire `Error` naming the culprit participant if there is one. Deadlines
//! come from `CeremonyStart`, capped at [`CEREMONY_ROUND_TIMEOUT`] per step and
//! [`CEREMONY_TIMEOUT`] overall.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::descriptor::{NodeDescriptor, NodeKeys, verify_ed25519};
use crate::dkg::{self, Round1Package, Round1Secret, Round2Package, Round2Secret};
use crate::import::{self, DealtShare};
use crate::limits::{CEREMONY_ROUND_TIMEOUT, CEREMONY_TIMEOUT};
use crate::wire::{
    Body, CeremonyId, CeremonyKind, ErrorCode, KeyId, Message, Participant, SealedItem, SignedEcho,
    SignedRound1,
};
use crate::{Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng, refresh};

/// Domain of the round-1 author signature.
pub const ROUND1_DOMAIN: &[u8] = b"keyline/signer/dkg/r1/v1";
/// Domain of the round-1 transcript hash H1.
pub const TRANSCRIPT_DOMAIN: &[u8] = b"keyline/signer/dkg/transcript/v1";
/// Domain of the echo signature.
pub const ECHO_DOMAIN: &[u8] = b"keyline/signer/dkg/echo/v1";
/// HPKE `info` prefix of round-2 packages.
pub const ROUND2_INFO: &[u8] = b"keyline/signer/dkg/r2/v1";
/// Domain of the key-confirmation signature.
pub const CONFIRM_DOMAIN: &[u8] = b"keyline/signer/dkg/confirm/v1";
/// HPKE `info` prefix of import shares.
pub const IMPORT_INFO: &[u8] = b"keyline/signer/import/v1";
/// The ceremony round of sealed round-2 packages (the `round` field of `Sealed`).
pub const SEALED_ROUND: u8 = 2;

/// The message a round-1 author signs (see the module docs).
pub fn round1_message(
    ceremony_id: &CeremonyId,
    id: ParticipantId,
    package: &Round1Package,
) -> Result<Vec<u8>> {
    let digest: [u8; 32] = Sha256::digest(package.serialize()?).into();
    let mut m = Vec::with_capacity(ROUND1_DOMAIN.len() + 50);
    m.extend_from_slice(ROUND1_DOMAIN);
    m.extend_from_slice(ceremony_id);
    m.extend_from_slice(&id.get().to_be_bytes());
    m.extend_from_slice(&digest);
    Ok(m)
}

/// Signs a round-1 package as its author `id`.
pub fn sign_round1(
    keys: &NodeKeys,
    ceremony_id: &CeremonyId,
    id: ParticipantId,
    package: Round1Package,
) -> Result<SignedRound1> {
    let signature = keys.sign(&round1_message(ceremony_id, id, &package)?);
    Ok(SignedRound1 {
        id,
        package,
        signature,
    })
}

/// Checks a round-1 author signature under the author's `node_id`.
pub fn verify_round1(
    node_id: &[u8; 32],
    ceremony_id: &CeremonyId,
    signed: &SignedRound1,
) -> Result<()> {
    let message = round1_message(ceremony_id, signed.id, &signed.package)?;
    verify_ed25519(node_id, &message, &signed.signature)
}

/// H1 over a round-1 set (see the module docs); `packages` ascending by identifier.
pub fn transcript_hash(
    ceremony_id: &CeremonyId,
    threshold: u16,
    packages: &[SignedRound1],
) -> Result<[u8; 32]> {
    let n = u16::try_from(packages.len()).map_err(|_| Error::params("too many packages"))?;
    let mut h = Sha256::new();
    h.update(TRANSCRIPT_DOMAIN);
    h.update(ceremony_id);
    h.update(threshold.to_be_bytes());
    h.update(n.to_be_bytes());
    let mut last: Option<ParticipantId> = None;
    for p in packages {
        if last.is_some_and(|l| l >= p.id) {
            return Err(Error::params("round-1 packages must ascend by identifier"));
        }
        last = Some(p.id);
        let bytes = p.package.serialize()?;
        let len = u32::try_from(bytes.len()).map_err(|_| Error::params("package too long"))?;
        h.update(p.id.get().to_be_bytes());
        h.update(len.to_be_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().into())
}

/// The message an echo signs.
pub fn echo_message(ceremony_id: &CeremonyId, id: ParticipantId, h1: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ECHO_DOMAIN.len() + 50);
    m.extend_from_slice(ECHO_DOMAIN);
    m.extend_from_slice(ceremony_id);
    m.extend_from_slice(&id.get().to_be_bytes());
    m.extend_from_slice(h1);
    m
}

/// Signs H1 as participant `id` (the `Echo` a node sends).
pub fn sign_echo(
    keys: &NodeKeys,
    ceremony_id: &CeremonyId,
    id: ParticipantId,
    h1: [u8; 32],
) -> SignedEcho {
    SignedEcho {
        id,
        hash: h1,
        signature: keys.sign(&echo_message(ceremony_id, id, &h1)),
    }
}

/// Checks an echo signature under the author's `node_id`.
pub fn verify_echo(node_id: &[u8; 32], ceremony_id: &CeremonyId, echo: &SignedEcho) -> Result<()> {
    verify_ed25519(
        node_id,
        &echo_message(ceremony_id, echo.id, &echo.hash),
        &echo.signature,
    )
}

/// The message a key confirmation signs.
pub fn confirm_message(
    ceremony_id: &CeremonyId,
    id: ParticipantId,
    npub: &[u8; 32],
    hash: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONFIRM_DOMAIN.len() + 82);
    m.extend_from_slice(CONFIRM_DOMAIN);
    m.extend_from_slice(ceremony_id);
    m.extend_from_slice(&id.get().to_be_bytes());
    m.extend_from_slice(npub);
    m.extend_from_slice(hash);
    m
}

/// Signs a key confirmation as participant `id`.
pub fn sign_confirm(
    keys: &NodeKeys,
    ceremony_id: &CeremonyId,
    id: ParticipantId,
    npub: &[u8; 32],
    hash: &[u8; 32],
) -> [u8; 64] {
    keys.sign(&confirm_message(ceremony_id, id, npub, hash))
}

/// Checks a key-confirmation signature under the author's `node_id`.
pub fn verify_confirm(
    node_id: &[u8; 32],
    ceremony_id: &CeremonyId,
    id: ParticipantId,
    npub: &[u8; 32],
    hash: &[u8; 32],
    signature: &[u8; 64],
) -> Result<()> {
    verify_ed25519(
        node_id,
        &confirm_message(ceremony_id, id, npub, hash),
        signature,
    )
}

pub(crate) fn round2_info(ceremony_id: &CeremonyId) -> Vec<u8> {
    [ROUND2_INFO, ceremony_id.as_slice()].concat()
}

pub(crate) fn round2_aad(from: ParticipantId, to: ParticipantId) -> [u8; 5] {
    let f = from.get().to_be_bytes();
    let t = to.get().to_be_bytes();
    [SEALED_ROUND, f[0], f[1], t[0], t[1]]
}

pub(crate) fn import_info(ceremony_id: &CeremonyId) -> Vec<u8> {
    [IMPORT_INFO, ceremony_id.as_slice()].concat()
}

pub(crate) fn import_aad(key_id: &KeyId, id: ParticipantId) -> Vec<u8> {
    [key_id.as_slice(), &id.get().to_be_bytes()].concat()
}

/// A node's current share of a key, the input of a refresh.
pub struct CurrentShare {
    /// The key.
    pub key_id: KeyId,
    /// The share.
    pub share: NodeShare,
    /// Its version.
    pub version: u32,
}

impl fmt::Debug for CurrentShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentShare")
            .field("share", &self.share)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A share a ceremony committed: persist it as active (sealed, spec §10); for a refresh,
/// then delete the share of version `replaces`.
#[derive(Debug)]
pub struct CommittedShare {
    /// The ceremony.
    pub ceremony_id: CeremonyId,
    /// DKG, refresh or import.
    pub kind: CeremonyKind,
    /// The key.
    pub key_id: KeyId,
    /// This node's new share (secret; seal it before it touches a disk).
    pub share: NodeShare,
    /// The key's public key package (the one every participant confirmed).
    pub public: PublicKeyPackage,
    /// The new share's version: 1 after a DKG or an import, the old version + 1 after a
    /// refresh.
    pub share_version: u32,
    /// The share version this one replaces (refresh), to be deleted.
    pub replaces: Option<u32>,
}

/// Something a [`NodeCeremony`] reports.
#[derive(Debug)]
pub enum NodeCeremonyEvent {
    /// The coordinator committed: the share is active.
    Committed(Box<CommittedShare>),
    /// The ceremony failed or was aborted; every ceremony secret is wiped. The error names
    /// the culprit participant ([`Error::culprits`]) or the coordinator
    /// ([`Error::CoordinatorMisbehaved`]) when one is proven.
    Failed(Error),
}

/// The output of one call: bodies to send to the coordinator, events, and when to call
/// [`NodeCeremony::on_timeout`] next (`None` once finished).
#[derive(Debug, Default)]
pub struct NodeStep {
    /// Replies to the coordinator, in order.
    pub replies: Vec<Body>,
    /// What happened.
    pub events: Vec<NodeCeremonyEvent>,
    /// The next deadline.
    pub deadline: Option<Duration>,
}

/// Where a [`NodeCeremony`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCeremonyState {
    /// Waiting for `CeremonyStart`.
    Idle,
    /// Sent `Round1`, waiting for `Round1Set`.
    Round1,
    /// Sent `Echo`, waiting for `EchoSet`.
    Echo,
    /// Sent `Sealed`, waiting for `SealedDeliver`.
    Round2,
    /// Waiting for `ImportShare`.
    Import,
    /// Sent `KeyConfirm`, waiting for `Commit` (the share is pending).
    Confirm,
    /// Committed.
    Done,
    /// Failed or aborted (secrets wiped).
    Failed,
}

// One machine per ceremony, never in a hot collection: boxing the secrets would only scatter
// them over more heap allocations.
#[allow(clippy::large_enum_variant)]
enum Stage {
    Idle,
    Round1 {
        secret: Round1Secret,
        mine: SignedRound1,
    },
    Echo {
        secret: Round1Secret,
        round1: BTreeMap<ParticipantId, Round1Package>,
        mine: SignedEcho,
    },
    Round2 {
        secret: Round2Secret,
        round1: BTreeMap<ParticipantId, Round1Package>,
    },
    Import,
    Confirm {
        share: NodeShare,
        hash: [u8; 32],
        version: u32,
    },
    Done,
    Failed,
}

struct Setup {
    ceremony_id: CeremonyId,
    kind: CeremonyKind,
    key_id: KeyId,
    threshold: u16,
    participants: Vec<Participant>,
    me: ParticipantId,
    round_timeout: Duration,
}

impl Setup {
    fn ids(&self) -> Vec<ParticipantId> {
        self.participants.iter().map(|p| p.id).collect()
    }

    fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id == id)
    }
}

/// What handling one message led to.
#[allow(clippy::large_enum_variant)]
enum Handled {
    /// Not for this step (no state change, not recorded).
    Ignored,
    /// Accepted; the reply, if any.
    Reply(Option<Body>),
}

/// One ceremony on one node (see the module docs).
pub struct NodeCeremony {
    keys: Arc<NodeKeys>,
    pinned: BTreeMap<[u8; 32], [u8; 32]>,
    current: Option<CurrentShare>,
    setup: Option<Setup>,
    stage: Stage,
    /// Per handled message type: SHA-256 of its encoding and the reply sent.
    answered: Vec<(u8, [u8; 32], Option<Body>)>,
    step_deadline: Option<Duration>,
    total_deadline: Option<Duration>,
}

impl fmt::Debug for NodeCeremony {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCeremony")
            .field("node", &self.keys)
            .field("state", &self.state())
            .field("has_secrets", &self.has_secrets())
            .finish_non_exhaustive()
    }
}

impl NodeCeremony {
    /// A ceremony machine for this node: `keys` are the node's own, `pinned` the descriptors of
    /// the nodes this node accepts as ceremony participants (its own may be included), and
    /// `current` the node's current share of the key, needed for a refresh (`None` for a DKG
    /// or an import). Feed it the `CeremonyStart` next.
    pub fn new(
        keys: Arc<NodeKeys>,
        pinned: &[NodeDescriptor],
        current: Option<CurrentShare>,
    ) -> Self {
        let mut map: BTreeMap<[u8; 32], [u8; 32]> = pinned
            .iter()
            .filter(|d| d.verify().is_ok())
            .map(|d| (d.node_id, d.hpke_pk))
            .collect();
        map.insert(keys.node_id(), keys.hpke_pk());
        Self {
            keys,
            pinned: map,
            current,
            setup: None,
            stage: Stage::Idle,
            answered: Vec::new(),
            step_deadline: None,
            total_deadline: None,
        }
    }

    /// The ceremony, once started.
    pub fn ceremony_id(&self) -> Option<CeremonyId> {
        self.setup.as_ref().map(|s| s.ceremony_id)
    }

    /// This node's identifier in the ceremony, once started.
    pub fn id(&self) -> Option<ParticipantId> {
        self.setup.as_ref().map(|s| s.me)
    }

    /// Where the machine is.
    pub fn state(&self) -> NodeCeremonyState {
        match self.stage {
            Stage::Idle => NodeCeremonyState::Idle,
            Stage::Round1 { .. } => NodeCeremonyState::Round1,
            Stage::Echo { .. } => NodeCeremonyState::Echo,
            Stage::Round2 { .. } => NodeCeremonyState::Round2,
            Stage::Import => NodeCeremonyState::Import,
            Stage::Confirm { .. } => NodeCeremonyState::Confirm,
            Stage::Done => NodeCeremonyState::Done,
            Stage::Failed => NodeCeremonyState::Failed,
        }
    }

    /// True while the machine holds ceremony secrets: a round secret package, a pending share,
    /// or the old share of a refresh.
    pub fn has_secrets(&self) -> bool {
        self.current.is_some()
            || matches!(
                self.stage,
                Stage::Round1 { .. }
                    | Stage::Echo { .. }
                    | Stage::Round2 { .. }
                    | Stage::Confirm { .. }
            )
    }

    /// True once committed or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Done | Stage::Failed)
    }

    /// When to call [`NodeCeremony::on_timeout`] next; `None` before the start and once
    /// finished.
    pub fn deadline(&self) -> Option<Duration> {
        if self.is_finished() {
            return None;
        }
        match (self.step_deadline, self.total_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn expired(&self, now: Duration) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// Advances to `now`: past a deadline, wipes every secret and fails.
    pub fn on_timeout(&mut self, now: Duration) -> NodeStep {
        let mut step = NodeStep::default();
        if self.expired(now) {
            let waiting = match self.stage {
                Stage::Round1 { .. } => "the round-1 set",
                Stage::Echo { .. } => "the echo set",
                Stage::Round2 { .. } => "the sealed round-2 packages",
                Stage::Import => "the import share",
                Stage::Confirm { .. } => "the commit",
                _ => "the coordinator",
            };
            let err = Error::CeremonyTimeout { step: waiting };
            self.fail(err, Some(ErrorCode::EXPIRED), &mut step);
        }
        step.deadline = self.deadline();
        step
    }

    fn fail(&mut self, err: Error, reply: Option<ErrorCode>, step: &mut NodeStep) {
        // Dropping the stage and the old share zeroizes every secret they hold.
        self.stage = Stage::Failed;
        self.current = None;
        if let Some(code) = reply {
            step.replies.push(Body::error(
                code,
                err.culprits().first().copied(),
                &err.to_string(),
            ));
        }
        step.events.push(NodeCeremonyEvent::Failed(err));
    }

    /// Handles one message from the coordinator at `now`.
    pub fn handle(&mut self, body: &Body, now: Duration, rng: &mut impl SignerRng) -> NodeStep {
        let mut step = NodeStep::default();
        if self.is_finished() && !matches!(self.stage, Stage::Done) {
            return step;
        }
        if self.expired(now) {
            return self.on_timeout(now);
        }
        let Some(ceremony_id) = body.ceremony_id() else {
            step.deadline = self.deadline();
            return step;
        };
        match &self.setup {
            Some(s) if s.ceremony_id != *ceremony_id => {
                step.deadline = self.deadline();
                return step;
            }
            None if !matches!(body, Body::CeremonyStart { .. }) => return step,
            _ => {}
        }
        if let Body::CeremonyAbort { reason, .. } = body {
            if !self.is_finished() {
                self.fail(Error::CeremonyAborted { code: reason.0 }, None, &mut step);
            }
            return step;
        }
        let ty = body.type_byte();
        if !matches!(ty, 0x30 | 0x32 | 0x34 | 0x36 | 0x38 | 0x40) {
            step.deadline = self.deadline();
            return step;
        }
        let Ok(encoded) = crate::wire::encode_message(&Message::new(0, body.clone())) else {
            step.deadline = self.deadline();
            return step;
        };
        let hash: [u8; 32] = Sha256::digest(encoded.as_slice()).into();
        if let Some((_, seen, reply)) = self.answered.iter().find(|(t, ..)| *t == ty) {
            if *seen == hash {
                step.replies.extend(reply.clone());
            } else if !self.is_finished() {
                let err = Error::CoordinatorMisbehaved {
                    reason: "two different messages for one ceremony step",
                };
                self.fail(err, Some(ErrorCode::REJECTED), &mut step);
            }
            step.deadline = self.deadline();
            return step;
        }
        if self.is_finished() {
            return step;
        }
        match self.dispatch(body, now, rng, &mut step) {
            Ok(Handled::Ignored) => {}
            Ok(Handled::Reply(reply)) => {
                self.answered.push((ty, hash, reply.clone()));
                step.replies.extend(reply);
                if !self.is_finished() {
                    let round = self
                        .setup
                        .as_ref()
                        .map_or(CEREMONY_ROUND_TIMEOUT, |s| s.round_timeout);
                    self.step_deadline = Some(now.saturating_add(round));
                }
            }
            Err(err) => self.fail(err, Some(ErrorCode::REJECTED), &mut step),
        }
        step.deadline = self.deadline();
        step
    }

    fn dispatch(
        &mut self,
        body: &Body,
        now: Duration,
        rng: &mut impl SignerRng,
        step: &mut NodeStep,
    ) -> Result<Handled> {
        match (body, &self.stage) {
            (Body::CeremonyStart { .. }, Stage::Idle) => self.on_start(body, now, rng),
            (Body::Round1Set { packages, .. }, Stage::Round1 { .. }) => {
                self.on_round1_set(packages)
            }
            (Body::EchoSet { echoes, .. }, Stage::Echo { .. }) => self.on_echo_set(echoes, rng),
            (Body::SealedDeliver { round, items, .. }, Stage::Round2 { .. }) => {
                self.on_sealed(*round, items)
            }
            (
                Body::ImportShare {
                    key_id,
                    id,
                    sealed,
                    public,
                    ..
                },
                Stage::Import,
            ) => self.on_import(key_id, *id, sealed, public),
            (Body::Commit { hash, .. }, Stage::Confirm { .. }) => self.on_commit(hash, step),
            _ => Ok(Handled::Ignored),
        }
    }

    fn setup(&self) -> Result<&Setup> {
        self.setup.as_ref().ok_or(Error::Internal {
            reason: "ceremony step before its start",
        })
    }

    fn on_start(
        &mut self,
        body: &Body,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Result<Handled> {
        let Body::CeremonyStart {
            ceremony_id,
            kind,
            key_id,
            threshold,
            participants,
            round_deadline_ms,
            total_deadline_ms,
        } = body
        else {
            return Ok(Handled::Ignored);
        };
        let round_timeout =
            Duration::from_millis(u64::from(*round_deadline_ms)).min(CEREMONY_ROUND_TIMEOUT);
        let total_timeout =
            Duration::from_millis(u64::from(*total_deadline_ms)).min(CEREMONY_TIMEOUT);
        self.total_deadline = Some(now.saturating_add(total_timeout));
        // Record the ceremony first so that later messages of it are matched even if the
        // start is refused.
        self.setup = Some(Setup {
            ceremony_id: *ceremony_id,
            kind: *kind,
            key_id: *key_id,
            threshold: *threshold,
            participants: participants.clone(),
            // Replaced below once this node's place is checked.
            me: ParticipantId::new(1)?,
            round_timeout,
        });
        let me = self.check_participants(*kind, *key_id, *threshold, participants)?;
        if let Some(s) = self.setup.as_mut() {
            s.me = me;
        }
        let ids: Vec<ParticipantId> = participants.iter().map(|p| p.id).collect();
        let n = u16::try_from(ids.len()).map_err(|_| Error::params("too many participants"))?;
        let (secret, package) = match kind {
            CeremonyKind::Dkg => dkg::part1(me, *threshold, n, rng)?,
            CeremonyKind::Refresh => {
                let current = self.current.as_ref().ok_or(Error::Internal {
                    reason: "checked: a refresh has the current share",
                })?;
                refresh::part1(&current.share, &ids, rng)?
            }
            CeremonyKind::Import => {
                self.stage = Stage::Import;
                return Ok(Handled::Reply(None));
            }
            CeremonyKind::Repair => {
                return Err(Error::params("this node does not run repair ceremonies"));
            }
        };
        let mine = sign_round1(&self.keys, ceremony_id, me, package)?;
        let reply = Body::Round1 {
            ceremony_id: *ceremony_id,
            package: mine.clone(),
        };
        self.stage = Stage::Round1 { secret, mine };
        Ok(Handled::Reply(Some(reply)))
    }

    /// Checks the participant list against the pins and this node; returns this node's
    /// identifier.
    fn check_participants(
        &self,
        kind: CeremonyKind,
        key_id: KeyId,
        threshold: u16,
        participants: &[Participant],
    ) -> Result<ParticipantId> {
        let n = u16::try_from(participants.len())
            .map_err(|_| Error::params("too many participants"))?;
        let mut ids = BTreeSet::new();
        let mut node_ids = BTreeSet::new();
        for p in participants {
            if !ids.insert(p.id) {
                return Err(Error::DuplicateParticipant { id: p.id });
            }
            if !node_ids.insert(p.node_id) {
                return Err(Error::params(format!(
                    "participant {} uses the node of another participant",
                    p.id
                )));
            }
            if self.pinned.get(&p.node_id) != Some(&p.hpke_pk) {
                return Err(Error::CeremonyUnpinned { id: p.id });
            }
        }
        let me = participants
            .iter()
            .find(|p| p.node_id == self.keys.node_id())
            .map(|p| p.id)
            .ok_or(Error::Mismatch {
                reason: "this node is not a participant of the ceremony",
            })?;
        match kind {
            CeremonyKind::Dkg | CeremonyKind::Import => {
                dkg::check_threshold(threshold, n)?;
                if ids.iter().map(|id| id.get()).ne(1..=n) {
                    return Err(Error::params("participants must be 1..=n"));
                }
            }
            CeremonyKind::Refresh => {
                let current = self.current.as_ref().ok_or(Error::Mismatch {
                    reason: "a refresh needs this node's current share of the key",
                })?;
                if current.key_id != key_id {
                    return Err(Error::Mismatch {
                        reason: "the refresh is for another key than the current share's",
                    });
                }
                let public = current.share.public();
                if current.share.id() != me {
                    return Err(Error::Mismatch {
                        reason: "this node's identifier in the refresh differs from its share's",
                    });
                }
                if threshold != public.threshold() {
                    return Err(Error::Mismatch {
                        reason: "the refresh threshold differs from the key's",
                    });
                }
                if let Some(id) = ids.iter().find(|id| !public.contains(**id)) {
                    return Err(Error::UnknownParticipant { id: *id });
                }
                if ids.len() < usize::from(threshold) {
                    return Err(Error::params("a refresh needs at least t participants"));
                }
            }
            CeremonyKind::Repair => {}
        }
        Ok(me)
    }

    fn on_round1_set(&mut self, packages: &[SignedRound1]) -> Result<Handled> {
        let setup = self.setup()?;
        let ids = setup.ids();
        if packages.iter().map(|p| p.id).ne(ids.iter().copied()) {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the round-1 set does not hold exactly one package per participant",
            });
        }
        for p in packages {
            let author = setup.participant(p.id).ok_or(Error::Internal {
                reason: "checked: every package has a participant",
            })?;
            if verify_round1(&author.node_id, &setup.ceremony_id, p).is_err() {
                return Err(Error::CoordinatorMisbehaved {
                    reason: "the round-1 set carries a package without its author's valid signature",
                });
            }
        }
        let Stage::Round1 { mine, .. } = &self.stage else {
            return Ok(Handled::Ignored);
        };
        if !packages.iter().any(|p| p == mine) {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the round-1 set alters this node's own package",
            });
        }
        let h1 = transcript_hash(&setup.ceremony_id, setup.threshold, packages)?;
        let me = setup.me;
        let ceremony_id = setup.ceremony_id;
        let round1: BTreeMap<ParticipantId, Round1Package> = packages
            .iter()
            .filter(|p| p.id != me)
            .map(|p| (p.id, p.package.clone()))
            .collect();
        let echo = sign_echo(&self.keys, &ceremony_id, me, h1);
        let Stage::Round1 { secret, .. } = std::mem::replace(&mut self.stage, Stage::Failed) else {
            return Err(Error::Internal {
                reason: "stage changed while handling the round-1 set",
            });
        };
        self.stage = Stage::Echo {
            secret,
            round1,
            mine: echo,
        };
        Ok(Handled::Reply(Some(Body::Echo { ceremony_id, echo })))
    }

    fn on_echo_set(&mut self, echoes: &[SignedEcho], rng: &mut impl SignerRng) -> Result<Handled> {
        let setup = self.setup()?;
        let ids = setup.ids();
        if echoes.iter().map(|e| e.id).ne(ids.iter().copied()) {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the echo set does not hold exactly one echo per participant",
            });
        }
        for e in echoes {
            let author = setup.participant(e.id).ok_or(Error::Internal {
                reason: "checked: every echo has a participant",
            })?;
            if verify_echo(&author.node_id, &setup.ceremony_id, e).is_err() {
                return Err(Error::CoordinatorMisbehaved {
                    reason: "the echo set carries an echo without its author's valid signature",
                });
            }
        }
        let Stage::Echo { mine, .. } = &self.stage else {
            return Ok(Handled::Ignored);
        };
        if !echoes.iter().any(|e| e == mine) {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the echo set alters this node's own echo",
            });
        }
        let differing: Vec<ParticipantId> = echoes
            .iter()
            .filter(|e| e.hash != mine.hash)
            .map(|e| e.id)
            .collect();
        if !differing.is_empty() {
            return Err(Error::EchoMismatch {
                participants: differing,
            });
        }
        let kind = setup.kind;
        let me = setup.me;
        let ceremony_id = setup.ceremony_id;
        let recipients: BTreeMap<ParticipantId, [u8; 32]> = setup
            .participants
            .iter()
            .map(|p| (p.id, p.hpke_pk))
            .collect();
        let Stage::Echo { secret, round1, .. } = std::mem::replace(&mut self.stage, Stage::Failed)
        else {
            return Err(Error::Internal {
                reason: "stage changed while handling the echo set",
            });
        };
        let (secret, packages) = match kind {
            CeremonyKind::Refresh => refresh::part2(secret, &round1)?,
            _ => dkg::part2(secret, &round1)?,
        };
        let info = round2_info(&ceremony_id);
        let mut items = Vec::with_capacity(packages.len());
        for (to, package) in &packages {
            let pk = recipients.get(to).ok_or(Error::Internal {
                reason: "round-2 recipient outside the ceremony",
            })?;
            let plaintext = package.serialize()?;
            let payload = self
                .keys
                .seal_to(pk, &info, &round2_aad(me, *to), &plaintext, rng)?;
            items.push(SealedItem {
                peer: *to,
                payload: payload.into(),
            });
        }
        self.stage = Stage::Round2 { secret, round1 };
        Ok(Handled::Reply(Some(Body::Sealed {
            ceremony_id,
            round: SEALED_ROUND,
            items,
        })))
    }

    fn on_sealed(&mut self, round: u8, items: &[SealedItem]) -> Result<Handled> {
        let setup = self.setup()?;
        let me = setup.me;
        let others: Vec<ParticipantId> = setup.ids().into_iter().filter(|id| *id != me).collect();
        if round != SEALED_ROUND || items.iter().map(|i| i.peer).ne(others.iter().copied()) {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the sealed delivery is not one round-2 package from every other participant",
            });
        }
        let info = round2_info(&setup.ceremony_id);
        let mut received: BTreeMap<ParticipantId, Round2Package> = BTreeMap::new();
        for item in items {
            let sender = setup.participant(item.peer).ok_or(Error::Internal {
                reason: "checked: every sender is a participant",
            })?;
            let plaintext = self
                .keys
                .open_from(
                    &sender.hpke_pk,
                    &info,
                    &round2_aad(item.peer, me),
                    &item.payload,
                )
                .ok_or(Error::InvalidPackage {
                    culprit: item.peer,
                    reason: "its sealed round-2 package does not open",
                })?;
            let package =
                Round2Package::deserialize(&plaintext).map_err(|_| Error::InvalidPackage {
                    culprit: item.peer,
                    reason: "its round-2 package does not decode",
                })?;
            received.insert(item.peer, package);
        }
        let kind = setup.kind;
        let Stage::Round2 { secret, round1 } = std::mem::replace(&mut self.stage, Stage::Failed)
        else {
            return Err(Error::Internal {
                reason: "stage changed while handling the sealed delivery",
            });
        };
        let (share, version) = match kind {
            CeremonyKind::Refresh => {
                let current = self.current.as_ref().ok_or(Error::Internal {
                    reason: "checked: a refresh has the current share",
                })?;
                let share = refresh::part3(secret, &round1, &received, &current.share)?;
                let version = current.version.checked_add(1).ok_or(Error::Internal {
                    reason: "share version overflow",
                })?;
                (share, version)
            }
            _ => (dkg::part3(secret, &round1, &received)?, 1),
        };
        self.confirm(share, version)
            .map(|b| Handled::Reply(Some(b)))
    }

    fn on_import(
        &mut self,
        key_id: &KeyId,
        id: ParticipantId,
        sealed: &[u8],
        public: &PublicKeyPackage,
    ) -> Result<Handled> {
        let setup = self.setup()?;
        if *key_id != setup.key_id || id != setup.me {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the import share is for another key or node",
            });
        }
        let plaintext = self
            .keys
            .open_base(
                &import_info(&setup.ceremony_id),
                &import_aad(key_id, id),
                sealed,
            )
            .ok_or(Error::CoordinatorMisbehaved {
                reason: "the import share does not open",
            })?;
        let dealt =
            DealtShare::deserialize(&plaintext).map_err(|_| Error::CoordinatorMisbehaved {
                reason: "the import share does not decode",
            })?;
        if dealt.id() != id
            || public.threshold() != setup.threshold
            || public.participants() != setup.ids().as_slice()
        {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the import share or its public key package does not fit the ceremony",
            });
        }
        let share = import::accept(dealt, public)?;
        self.confirm(share, 1).map(|b| Handled::Reply(Some(b)))
    }

    fn confirm(&mut self, share: NodeShare, version: u32) -> Result<Body> {
        let setup = self.setup()?;
        let public = share.public().clone();
        let hash = public.fingerprint()?;
        let npub = public.npub();
        let signature = sign_confirm(&self.keys, &setup.ceremony_id, setup.me, &npub, &hash);
        let reply = Body::KeyConfirm {
            ceremony_id: setup.ceremony_id,
            npub,
            public,
            hash,
            signature,
        };
        self.stage = Stage::Confirm {
            share,
            hash,
            version,
        };
        Ok(reply)
    }

    fn on_commit(&mut self, hash: &[u8; 32], step: &mut NodeStep) -> Result<Handled> {
        let Stage::Confirm { hash: mine, .. } = &self.stage else {
            return Ok(Handled::Ignored);
        };
        if hash != mine {
            return Err(Error::CoordinatorMisbehaved {
                reason: "the commit is for another public key package than this node's",
            });
        }
        let setup = self.setup()?;
        let (ceremony_id, kind, key_id) = (setup.ceremony_id, setup.kind, setup.key_id);
        let Stage::Confirm { share, version, .. } = std::mem::replace(&mut self.stage, Stage::Done)
        else {
            return Err(Error::Internal {
                reason: "stage changed while handling the commit",
            });
        };
        let replaces = self.current.take().map(|c| c.version);
        let public = share.public().clone();
        step.events
            .push(NodeCeremonyEvent::Committed(Box::new(CommittedShare {
                ceremony_id,
                kind,
                key_id,
                share,
                public,
                share_version: version,
                replaces,
            })));
        Ok(Handled::Reply(Some(Body::Committed {
            ceremony_id,
            share_version: version,
        })))
    }
}
