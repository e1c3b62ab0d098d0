//! The coordinator's side of key ceremonies (spec §8.7 DKG and refresh, §8.8 import), sans-IO.
//! The node side is [`crate::node_ceremony`].
//!
//! DKG and refresh rounds ([`DkgSession::new`], [`DkgSession::refresh`]):
//!
//! | round | from every node | checked here | then to the nodes |
//! |---|---|---|---|
//! | 1 | `Round1` | author signature under the node's `node_id` | `Round1Set` (all n signed packages) |
//! | 2 | `Echo` | signature, and H1 equal to the transcript hash of the set sent | `EchoSet` (all n echoes) |
//! | 3 | `Sealed` | addressed to every other participant (ciphertexts relayed untouched) | `SealedDeliver` to each recipient |
//! | 4 | `KeyConfirm` | signature, hash = SHA-256 of the package, npub; all n identical (refresh: same group key; import: the dealt package) | `Commit` |
//! | 5 | `Committed` | the expected share version | done: [`DkgEvent::Done`] |
//!
//! Import ([`DkgSession::import`]): the coordinator is the dealer. It splits the key
//! (`import::split`, the caller's buffer is wiped), sends `CeremonyStart` and one
//! `ImportShare` per node, HPKE-sealed (mode base) to the node's `hpke_pk`, and continues at
//! round 4. The machine running the import saw the key.
//!
//! The coordinator only relays secrets: round-2 packages are HPKE-sealed node to node (mode
//! auth), so it never sees a share. It checks every signature itself, so a bad one is named
//! before it is relayed. All n nodes must take part: a node silent past a round's deadline
//! ([`CEREMONY_ROUND_TIMEOUT`]) or the whole deadline ([`CEREMONY_TIMEOUT`]) fails the
//! ceremony naming it and the round. Every message is recorded under `(round, from)` for the
//! whole ceremony: an identical resubmission is ignored, a **different** one is equivocation
//! and aborts naming the sender. A node's wire `Error` aborts too. Any failure sends
//! `CeremonyAbort` to every node, which wipes their secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::descriptor::seal_base;
use crate::limits::{CEREMONY_ROUND_TIMEOUT, CEREMONY_TIMEOUT};
use crate::node_ceremony::{
    SEALED_ROUND, import_aad, import_info, transcript_hash, verify_confirm, verify_echo,
    verify_round1,
};
use crate::session::{FailureReason, NodeFailure, Outgoing, Step};
use crate::wire::{
    Body, CeremonyId, CeremonyKind, ErrorCode, KeyId, Participant, SealedItem, SignedEcho,
    SignedRound1,
};
use crate::{Error, ParticipantId, PublicKeyPackage, Result, SignerRng, dkg, import};

/// Something a [`DkgSession`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DkgEvent {
    /// Every node committed the key.
    Done(PublicKeyPackage),
    /// The ceremony was aborted.
    Failed(Error),
}

/// Deadlines of a [`DkgSession`]; [`Default`] takes them from [`crate::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DkgConfig {
    /// Per-round deadline.
    pub round_timeout: Duration,
    /// Whole-ceremony deadline.
    pub total_timeout: Duration,
}

impl Default for DkgConfig {
    fn default() -> Self {
        Self {
            round_timeout: CEREMONY_ROUND_TIMEOUT,
            total_timeout: CEREMONY_TIMEOUT,
        }
    }
}

const ROUND1: u8 = 1;
const ECHO: u8 = 2;
const SEALED: u8 = 3;
const CONFIRM: u8 = 4;
const COMMITTED: u8 = 5;

/// What one node sent in one round.
#[derive(Clone, PartialEq, Eq)]
enum Submission {
    Round1(SignedRound1),
    Echo(SignedEcho),
    Sealed(Vec<SealedItem>),
    Confirm([u8; 32], PublicKeyPackage),
    Committed(u32),
}

/// What the key confirmations must match, beyond agreeing with each other.
enum Expect {
    /// A new key: the ceremony's threshold and participants.
    New,
    /// A refresh: the current key's group key.
    SameKey([u8; 33]),
    /// An import: exactly the dealt public key package.
    Exactly(Box<PublicKeyPackage>),
}

/// A coordinator-relayed DKG, refresh or import among n nodes (see the module docs).
pub struct DkgSession {
    ceremony_id: CeremonyId,
    kind: CeremonyKind,
    threshold: u16,
    participants: Vec<Participant>,
    round: u8,
    got: BTreeMap<ParticipantId, Submission>,
    history: BTreeMap<(u8, ParticipantId), Submission>,
    h1: Option<[u8; 32]>,
    expect: Expect,
    share_version: u32,
    round_deadline: Duration,
    total_deadline: Duration,
    config: DkgConfig,
    agreed: Option<PublicKeyPackage>,
    outcome: Option<Result<PublicKeyPackage>>,
}

impl fmt::Debug for DkgSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgSession")
            .field("kind", &self.kind)
            .field("round", &self.round)
            .field("received", &self.got.len())
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn check_distinct_nodes(participants: &[Participant]) -> Result<()> {
    let mut seen = BTreeSet::new();
    if participants.iter().all(|p| seen.insert(p.node_id)) {
        Ok(())
    } else {
        Err(Error::params("two participants share one node"))
    }
}

fn check_one_to_n(participants: &[Participant]) -> Result<u16> {
    let n =
        u16::try_from(participants.len()).map_err(|_| Error::params("too many participants"))?;
    for (i, p) in participants.iter().enumerate() {
        if usize::from(p.id.get()) != i + 1 {
            return Err(Error::params("participants must be 1..=n in order"));
        }
    }
    check_distinct_nodes(participants)?;
    Ok(n)
}

impl DkgSession {
    /// Starts a `threshold`-of-n DKG among `participants` (identifiers `1..=n`, ascending,
    /// each `(node_id, hpke_pk)` from the node's pinned descriptor).
    pub fn new(
        ceremony_id: CeremonyId,
        key_id: KeyId,
        threshold: u16,
        participants: Vec<Participant>,
        config: DkgConfig,
        now: Duration,
    ) -> Result<(Self, Step<DkgEvent>)> {
        let n = check_one_to_n(&participants)?;
        dkg::check_threshold(threshold, n)?;
        Ok(Self::start(
            ceremony_id,
            CeremonyKind::Dkg,
            key_id,
            threshold,
            participants,
            Expect::New,
            1,
            config,
            now,
        ))
    }

    /// Starts a refresh of the key `current` (whose share version is `current_version`) among
    /// `participants`: ascending, at least t, all current share holders; holders left out are
    /// removed from the key. The nodes' new shares get version `current_version + 1`.
    pub fn refresh(
        ceremony_id: CeremonyId,
        key_id: KeyId,
        current: &PublicKeyPackage,
        current_version: u32,
        participants: Vec<Participant>,
        config: DkgConfig,
        now: Duration,
    ) -> Result<(Self, Step<DkgEvent>)> {
        let threshold = current.threshold();
        let mut last: Option<ParticipantId> = None;
        for p in &participants {
            if last.is_some_and(|l| l >= p.id) {
                return Err(Error::params("participants must ascend without duplicates"));
            }
            last = Some(p.id);
            if !current.contains(p.id) {
                return Err(Error::UnknownParticipant { id: p.id });
            }
        }
        if participants.len() < usize::from(threshold) {
            return Err(Error::params(format!(
                "a refresh needs at least the threshold of {threshold} participants, {} given",
                participants.len()
            )));
        }
        check_distinct_nodes(&participants)?;
        let version = current_version
            .checked_add(1)
            .ok_or(Error::params("share version overflow"))?;
        Ok(Self::start(
            ceremony_id,
            CeremonyKind::Refresh,
            key_id,
            threshold,
            participants,
            Expect::SameKey(current.group_key().verifying_key()),
            version,
            config,
            now,
        ))
    }

    /// Imports the 32-byte secret key `secret` (**zeroized** before returning, whatever the
    /// outcome) as a `threshold`-of-n key among `participants` (identifiers `1..=n`): splits
    /// it, seals each node's share to its `hpke_pk`, and sends `CeremonyStart` and
    /// `ImportShare` to every node.
    #[allow(clippy::too_many_arguments)]
    pub fn import(
        ceremony_id: CeremonyId,
        key_id: KeyId,
        secret: &mut [u8; 32],
        threshold: u16,
        participants: Vec<Participant>,
        config: DkgConfig,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Result<(Self, Step<DkgEvent>)> {
        let n = match check_one_to_n(&participants) {
            Ok(n) => n,
            Err(e) => {
                zeroize::Zeroize::zeroize(secret);
                return Err(e);
            }
        };
        let (public, dealt) = import::split(secret, threshold, n, rng)?;
        let info = import_info(&ceremony_id);
        let mut shares = Vec::with_capacity(dealt.len());
        for (p, share) in participants.iter().zip(&dealt) {
            if share.id() != p.id {
                return Err(Error::Internal {
                    reason: "dealt shares out of identifier order",
                });
            }
            let plaintext = share.serialize()?;
            let sealed = seal_base(
                &p.hpke_pk,
                &info,
                &import_aad(&key_id, p.id),
                &plaintext,
                rng,
            )?;
            shares.push(Outgoing {
                to: p.id,
                body: Body::ImportShare {
                    ceremony_id,
                    key_id,
                    id: p.id,
                    sealed,
                    public: public.clone(),
                },
            });
        }
        drop(dealt);
        let (mut session, mut step) = Self::start(
            ceremony_id,
            CeremonyKind::Import,
            key_id,
            threshold,
            participants,
            Expect::Exactly(Box::new(public)),
            1,
            config,
            now,
        );
        session.round = CONFIRM;
        step.send.extend(shares);
        Ok((session, step))
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        ceremony_id: CeremonyId,
        kind: CeremonyKind,
        key_id: KeyId,
        threshold: u16,
        participants: Vec<Participant>,
        expect: Expect,
        share_version: u32,
        config: DkgConfig,
        now: Duration,
    ) -> (Self, Step<DkgEvent>) {
        let mut step = Step::default();
        for p in &participants {
            step.send.push(Outgoing {
                to: p.id,
                body: Body::CeremonyStart {
                    ceremony_id,
                    kind,
                    key_id,
                    threshold,
                    participants: participants.clone(),
                    round_deadline_ms: ms(config.round_timeout),
                    total_deadline_ms: ms(config.total_timeout),
                },
            });
        }
        let session = Self {
            ceremony_id,
            kind,
            threshold,
            participants,
            round: ROUND1,
            got: BTreeMap::new(),
            history: BTreeMap::new(),
            h1: None,
            expect,
            share_version,
            round_deadline: now.saturating_add(config.round_timeout),
            total_deadline: now.saturating_add(config.total_timeout),
            config,
            agreed: None,
            outcome: None,
        };
        step.deadline = session.deadline();
        (session, step)
    }

    /// The result once finished.
    pub fn outcome(&self) -> Option<&Result<PublicKeyPackage>> {
        self.outcome.as_ref()
    }

    /// DKG, refresh or import.
    pub fn kind(&self) -> CeremonyKind {
        self.kind
    }

    /// The ceremony.
    pub fn ceremony_id(&self) -> CeremonyId {
        self.ceremony_id
    }

    /// The share version the nodes commit (1 for a DKG or an import).
    pub fn share_version(&self) -> u32 {
        self.share_version
    }

    /// The current round: 1 round-1 packages, 2 echoes, 3 sealed packages, 4 key
    /// confirmations, 5 commits (an import starts at 4); 0 once finished.
    pub fn round(&self) -> u8 {
        self.round
    }

    /// When to call [`DkgSession::on_timeout`] next; `None` once finished.
    pub fn deadline(&self) -> Option<Duration> {
        (self.outcome.is_none()).then(|| self.round_deadline.min(self.total_deadline))
    }

    fn ids(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants.iter().map(|p| p.id)
    }

    fn node_id(&self, id: ParticipantId) -> Option<&[u8; 32]> {
        self.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| &p.node_id)
    }

    fn abort(&mut self, err: Error, reason: ErrorCode, step: &mut Step<DkgEvent>) {
        for to in self.ids().collect::<Vec<_>>() {
            step.send.push(Outgoing {
                to,
                body: Body::CeremonyAbort {
                    ceremony_id: self.ceremony_id,
                    reason,
                },
            });
        }
        step.events.push(DkgEvent::Failed(err.clone()));
        self.outcome = Some(Err(err));
        self.round = 0;
    }

    /// Handles a message from node `from`.
    pub fn on_message(
        &mut self,
        from: ParticipantId,
        body: &Body,
        now: Duration,
    ) -> Step<DkgEvent> {
        let mut step = Step::default();
        if self.outcome.is_some() {
            return step;
        }
        if now >= self.round_deadline || now >= self.total_deadline {
            return self.on_timeout(now);
        }
        if let Err(err) = self.receive(from, body, now, &mut step) {
            self.abort(err, ErrorCode::REJECTED, &mut step);
        }
        step.deadline = self.deadline();
        step
    }

    fn receive(
        &mut self,
        from: ParticipantId,
        body: &Body,
        now: Duration,
        step: &mut Step<DkgEvent>,
    ) -> Result<()> {
        let Some(node_id) = self.node_id(from).copied() else {
            return Ok(());
        };
        if let Body::Error { code, .. } = body {
            // The transport routes a node's `Error` for this ceremony here.
            return Err(Error::Unavailable {
                operation: "dkg",
                answered: self.participants.len() - 1,
                need: self.participants.len(),
                failed: vec![NodeFailure {
                    id: from,
                    round: self.round,
                    reason: FailureReason::Refused(*code),
                }],
            });
        }
        if body.ceremony_id() != Some(&self.ceremony_id) {
            return Ok(());
        }
        let bad = |reason: &'static str| Error::InvalidPackage {
            culprit: from,
            reason,
        };
        let (round, submission) = match body {
            Body::Round1 { package, .. } if package.id == from => {
                (ROUND1, Submission::Round1(package.clone()))
            }
            Body::Echo { echo, .. } if echo.id == from => (ECHO, Submission::Echo(*echo)),
            Body::Sealed { round, items, .. } if *round == SEALED_ROUND => {
                (SEALED, Submission::Sealed(items.clone()))
            }
            Body::KeyConfirm {
                npub,
                public,
                hash,
                signature,
                ..
            } => {
                if verify_confirm(&node_id, &self.ceremony_id, from, npub, hash, signature).is_err()
                {
                    return Err(bad("invalid signature on its key confirmation"));
                }
                if public.fingerprint().ok() != Some(*hash) || public.npub() != *npub {
                    return Err(bad(
                        "key confirmation whose hash or npub is not its package's",
                    ));
                }
                (CONFIRM, Submission::Confirm(*hash, public.clone()))
            }
            Body::Committed { share_version, .. } => {
                (COMMITTED, Submission::Committed(*share_version))
            }
            _ => return Ok(()),
        };
        let previous = self.history.get(&(round, from));
        if previous == Some(&submission) {
            return Ok(());
        }
        // Signatures first, so a forged message is named as such rather than as equivocation.
        match &submission {
            Submission::Round1(p) if verify_round1(&node_id, &self.ceremony_id, p).is_err() => {
                return Err(bad("invalid author signature on its round-1 package"));
            }
            Submission::Echo(e) if verify_echo(&node_id, &self.ceremony_id, e).is_err() => {
                return Err(bad("invalid signature on its echo"));
            }
            _ => {}
        }
        if previous.is_some() {
            return Err(bad("equivocation: two different messages for one round"));
        }
        if round != self.round {
            return Ok(());
        }
        match &submission {
            Submission::Echo(e) if Some(e.hash) != self.h1 => {
                return Err(bad("its echo is over another round-1 transcript"));
            }
            Submission::Sealed(items) => {
                let expected: Vec<ParticipantId> = self.ids().filter(|id| *id != from).collect();
                if items.iter().map(|i| i.peer).ne(expected.iter().copied()) {
                    return Err(bad(
                        "round-2 packages not addressed to every other participant",
                    ));
                }
            }
            Submission::Committed(v) if *v != self.share_version => {
                return Err(bad("committed another share version"));
            }
            _ => {}
        }
        self.history.insert((round, from), submission.clone());
        self.got.insert(from, submission);
        if self.got.len() == self.participants.len() {
            self.advance(now, step)?;
        }
        Ok(())
    }

    fn broadcast(&self, body: &Body, step: &mut Step<DkgEvent>) {
        for to in self.ids() {
            step.send.push(Outgoing {
                to,
                body: body.clone(),
            });
        }
    }

    fn advance(&mut self, now: Duration, step: &mut Step<DkgEvent>) -> Result<()> {
        let got = std::mem::take(&mut self.got);
        match self.round {
            ROUND1 => {
                let packages: Vec<SignedRound1> = got
                    .into_values()
                    .filter_map(|s| match s {
                        Submission::Round1(p) => Some(p),
                        _ => None,
                    })
                    .collect();
                self.h1 = Some(transcript_hash(
                    &self.ceremony_id,
                    self.threshold,
                    &packages,
                )?);
                let body = Body::Round1Set {
                    ceremony_id: self.ceremony_id,
                    packages,
                };
                self.broadcast(&body, step);
            }
            ECHO => {
                let echoes: Vec<SignedEcho> = got
                    .into_values()
                    .filter_map(|s| match s {
                        Submission::Echo(e) => Some(e),
                        _ => None,
                    })
                    .collect();
                let body = Body::EchoSet {
                    ceremony_id: self.ceremony_id,
                    echoes,
                };
                self.broadcast(&body, step);
            }
            SEALED => {
                let mut inbox: BTreeMap<ParticipantId, Vec<SealedItem>> = BTreeMap::new();
                for (from, s) in got {
                    if let Submission::Sealed(items) = s {
                        for item in items {
                            inbox.entry(item.peer).or_default().push(SealedItem {
                                peer: from,
                                payload: item.payload,
                            });
                        }
                    }
                }
                for (to, items) in inbox {
                    step.send.push(Outgoing {
                        to,
                        body: Body::SealedDeliver {
                            ceremony_id: self.ceremony_id,
                            round: SEALED_ROUND,
                            items,
                        },
                    });
                }
            }
            CONFIRM => {
                let mut confirms = got.into_values().filter_map(|s| match s {
                    Submission::Confirm(hash, public) => Some((hash, public)),
                    _ => None,
                });
                let first = confirms.next();
                let agree = first.as_ref().is_some_and(|(hash, public)| {
                    confirms.all(|(h, p)| h == *hash && p == *public)
                });
                let Some((hash, public)) = first.filter(|_| agree) else {
                    return Err(Error::PublicKeyMismatch);
                };
                let ids: Vec<ParticipantId> = self.ids().collect();
                let fits = match &self.expect {
                    Expect::New => {
                        public.threshold() == self.threshold && public.participants() == ids
                    }
                    Expect::SameKey(key) => {
                        public.group_key().verifying_key() == *key
                            && public.threshold() == self.threshold
                            && public.participants() == ids
                    }
                    Expect::Exactly(expected) => public == **expected,
                };
                if !fits {
                    return Err(Error::PublicKeyMismatch);
                }
                self.agreed = Some(public);
                let body = Body::Commit {
                    ceremony_id: self.ceremony_id,
                    hash,
                };
                self.broadcast(&body, step);
            }
            _ => {
                if let Some(public) = self.agreed.take() {
                    step.events.push(DkgEvent::Done(public.clone()));
                    self.outcome = Some(Ok(public));
                }
                self.round = 0;
                return Ok(());
            }
        }
        self.round += 1;
        self.round_deadline = now.saturating_add(self.config.round_timeout);
        Ok(())
    }

    /// Advances to `now`: past a deadline, the ceremony fails naming every node that has not
    /// answered the current round.
    pub fn on_timeout(&mut self, now: Duration) -> Step<DkgEvent> {
        let mut step = Step::default();
        if self.outcome.is_some() || (now < self.round_deadline && now < self.total_deadline) {
            step.deadline = self.deadline();
            return step;
        }
        let failed: Vec<NodeFailure> = self
            .ids()
            .filter(|id| !self.got.contains_key(id))
            .map(|id| NodeFailure {
                id,
                round: self.round,
                reason: FailureReason::Silent,
            })
            .collect();
        let err = Error::Unavailable {
            operation: "dkg",
            answered: self.got.len(),
            need: self.participants.len(),
            failed,
        };
        self.abort(err, ErrorCode::EXPIRED, &mut step);
        step
    }
}
