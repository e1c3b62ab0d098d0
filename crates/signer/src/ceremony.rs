//! The coordinator's side of a DKG ceremony (spec §8.7), sans-IO: it only **relays**.
//!
//! Rounds: 1 `Round1` from every node → `Round1Set` to all; 2 `Sealed` from every node →
//! `SealedDeliver` to each recipient; 3 `KeyConfirm` from every node, all identical → `Commit`;
//! 4 `Committed` from every node → done. All n nodes must take part: a node silent past a
//! round's deadline ([`CEREMONY_ROUND_TIMEOUT`]) or the whole deadline ([`CEREMONY_TIMEOUT`])
//! fails the ceremony naming it and the round. An identical resubmission is ignored; a
//! **different** message from the same node in the same round is equivocation and aborts
//! naming the sender. Any failure sends `CeremonyAbort` to every node.
//!
//! Not here yet: the echo round (`Echo`/`EchoSet`, the broadcast check), author signatures and
//! HPKE sealing are node-side checks; this relay passes signatures and sealed payloads through
//! untouched.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::limits::{CEREMONY_ROUND_TIMEOUT, CEREMONY_TIMEOUT};
use crate::session::{FailureReason, NodeFailure, Outgoing, Step};
use crate::wire::{
    Body, CeremonyId, CeremonyKind, ErrorCode, KeyId, Participant, SealedItem, SignedRound1,
};
use crate::{Error, ParticipantId, PublicKeyPackage, Result, dkg};

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

/// What one node sent in the current round.
#[derive(Clone, PartialEq, Eq)]
enum Submission {
    Round1(SignedRound1),
    Sealed(Vec<SealedItem>),
    Confirm([u8; 32], PublicKeyPackage),
    Committed,
}

/// A coordinator-relayed DKG among n nodes (see the module docs).
pub struct DkgSession {
    ceremony_id: CeremonyId,
    participants: Vec<Participant>,
    round: u8,
    got: BTreeMap<ParticipantId, Submission>,
    history: BTreeMap<(u8, ParticipantId), Submission>,
    round_deadline: Duration,
    total_deadline: Duration,
    config: DkgConfig,
    agreed: Option<PublicKeyPackage>,
    outcome: Option<Result<PublicKeyPackage>>,
}

impl fmt::Debug for DkgSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgSession")
            .field("round", &self.round)
            .field("received", &self.got.len())
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl DkgSession {
    /// Starts a `threshold`-of-n DKG among `participants` (identifiers `1..=n`, ascending).
    pub fn new(
        ceremony_id: CeremonyId,
        key_id: KeyId,
        threshold: u16,
        participants: Vec<Participant>,
        config: DkgConfig,
        now: Duration,
    ) -> Result<(Self, Step<DkgEvent>)> {
        let n = u16::try_from(participants.len())
            .map_err(|_| Error::params("too many participants"))?;
        dkg::check_threshold(threshold, n)?;
        for (i, p) in participants.iter().enumerate() {
            if usize::from(p.id.get()) != i + 1 {
                return Err(Error::params("participants must be 1..=n in order"));
            }
        }
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let mut step = Step::default();
        for p in &participants {
            step.send.push(Outgoing {
                to: p.id,
                body: Body::CeremonyStart {
                    ceremony_id,
                    kind: CeremonyKind::Dkg,
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
            participants,
            round: 1,
            got: BTreeMap::new(),
            history: BTreeMap::new(),
            round_deadline: now.saturating_add(config.round_timeout),
            total_deadline: now.saturating_add(config.total_timeout),
            config,
            agreed: None,
            outcome: None,
        };
        step.deadline = session.deadline();
        Ok((session, step))
    }

    /// The result once finished.
    pub fn outcome(&self) -> Option<&Result<PublicKeyPackage>> {
        self.outcome.as_ref()
    }

    /// The current round (1–4), 0 once finished.
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
        if !self.ids().any(|id| id == from) {
            return step;
        }
        if let Body::Error { code, .. } = body {
            // The transport routes a node's `Error` for this ceremony here.
            let err = Error::Unavailable {
                operation: "dkg",
                answered: self.participants.len() - 1,
                need: self.participants.len(),
                failed: vec![NodeFailure {
                    id: from,
                    round: self.round,
                    reason: FailureReason::Refused(*code),
                }],
            };
            self.abort(err, ErrorCode::REJECTED, &mut step);
            return step;
        }
        let (round, submission) = match body {
            Body::Round1 {
                ceremony_id,
                package,
            } if *ceremony_id == self.ceremony_id && package.id == from => {
                (1, Submission::Round1(package.clone()))
            }
            Body::Sealed {
                ceremony_id,
                round: 2,
                items,
            } if *ceremony_id == self.ceremony_id => (2, Submission::Sealed(items.clone())),
            Body::KeyConfirm {
                ceremony_id,
                public,
                hash,
                ..
            } if *ceremony_id == self.ceremony_id => {
                (3, Submission::Confirm(*hash, public.clone()))
            }
            Body::Committed { ceremony_id, .. } if *ceremony_id == self.ceremony_id => {
                (4, Submission::Committed)
            }
            _ => return step,
        };
        // Every message is recorded under (round, from) for the whole ceremony: an identical
        // resubmission is harmless, a different one is equivocation, even rounds later.
        match self.history.get(&(round, from)) {
            Some(previous) if *previous == submission => return step,
            Some(_) => {
                let err = Error::InvalidPackage {
                    culprit: from,
                    reason: "equivocation: two different messages for one round",
                };
                self.abort(err, ErrorCode::REJECTED, &mut step);
                return step;
            }
            None if round != self.round => return step,
            None => {}
        }
        if let Submission::Sealed(items) = &submission {
            let expected: Vec<ParticipantId> = self.ids().filter(|id| *id != from).collect();
            if items.iter().map(|i| i.peer).collect::<Vec<_>>() != expected {
                let err = Error::InvalidPackage {
                    culprit: from,
                    reason: "round-2 packages not addressed to every other participant",
                };
                self.abort(err, ErrorCode::REJECTED, &mut step);
                return step;
            }
        }
        self.history.insert((round, from), submission.clone());
        self.got.insert(from, submission);
        if self.got.len() == self.participants.len() {
            self.advance(now, &mut step);
        }
        step.deadline = self.deadline();
        step
    }

    fn advance(&mut self, now: Duration, step: &mut Step<DkgEvent>) {
        let got = std::mem::take(&mut self.got);
        let ids: Vec<ParticipantId> = self.ids().collect();
        match self.round {
            1 => {
                let packages: Vec<SignedRound1> = got
                    .into_values()
                    .filter_map(|s| match s {
                        Submission::Round1(p) => Some(p),
                        _ => None,
                    })
                    .collect();
                for &to in &ids {
                    step.send.push(Outgoing {
                        to,
                        body: Body::Round1Set {
                            ceremony_id: self.ceremony_id,
                            packages: packages.clone(),
                        },
                    });
                }
            }
            2 => {
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
                            round: 2,
                            items,
                        },
                    });
                }
            }
            3 => {
                let mut confirms = got.into_values().filter_map(|s| match s {
                    Submission::Confirm(hash, public) => Some((hash, public)),
                    _ => None,
                });
                let first = confirms.next();
                let agree = first.as_ref().is_some_and(|(hash, public)| {
                    public.fingerprint().ok() == Some(*hash)
                        && confirms.all(|(h, p)| h == *hash && p == *public)
                });
                let Some((hash, public)) = first.filter(|_| agree) else {
                    self.abort(Error::PublicKeyMismatch, ErrorCode::REJECTED, step);
                    return;
                };
                self.agreed = Some(public);
                for &to in &ids {
                    step.send.push(Outgoing {
                        to,
                        body: Body::Commit {
                            ceremony_id: self.ceremony_id,
                            hash,
                        },
                    });
                }
            }
            _ => {
                if let Some(public) = self.agreed.take() {
                    step.events.push(DkgEvent::Done(public.clone()));
                    self.outcome = Some(Ok(public));
                }
                self.round = 0;
                return;
            }
        }
        self.round += 1;
        self.round_deadline = now.saturating_add(self.config.round_timeout);
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
