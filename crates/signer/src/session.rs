//! Sans-IO signing sessions (spec §8.4, §8.5, §8.10): the coordinator's [`SignSession`] and
//! the node's [`NodeSigner`].
//!
//! Both take `(message, now)` and return what to send, what happened and when to call them
//! again; `on_timeout(now)` advances them. `now` is a [`Duration`] since any fixed origin of
//! the caller's monotonic clock: no sockets, clocks, tasks or global RNG inside, so every
//! round, loss, duplicate and timeout is testable without sleeping.
//!
//! Nodes are addressed by their [`ParticipantId`]; the transport layer maps identifiers to
//! pinned SHS connections and request ids.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::ecdh::{self, EcdhPartial, SessionId, SharedX};
use crate::limits::{
    ECDH_ATTEMPT_TIMEOUT, ECDH_TIMEOUT, NODE_SESSION_TIMEOUT, NODE_SIGN_SESSIONS, SIGN_IDEMPOTENCY,
    SIGN_ROUND1_TIMEOUT, SIGN_ROUND2_TIMEOUT, SIGN_SPARES, SIGN_TIMEOUT,
};
use crate::sign::{self, SignatureShare, SigningCommitments, SigningNonces, SigningPackage};
use crate::wire::{Body, ErrorCode, KeyId, RequestContext};
use crate::{Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng};

/// The nodes a session may ask: share holders of the key, each once.
fn check_nodes(public: &PublicKeyPackage, nodes: &[ParticipantId]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for id in nodes {
        if !public.contains(*id) {
            return Err(Error::UnknownParticipant { id: *id });
        }
        if !seen.insert(*id) {
            return Err(Error::DuplicateParticipant { id: *id });
        }
    }
    Ok(())
}

/// Why a node was dropped from a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// It did not answer before the round's deadline.
    Silent,
    /// It sent a signature share that does not verify (proven misbehaviour).
    BadShare,
    /// It sent an ECDH partial whose proof fails (proven misbehaviour).
    BadProof,
    /// It answered with a wire `Error`.
    Refused(ErrorCode),
}

/// A node dropped from a session, and in which round (1 = commitments, 2 = shares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeFailure {
    /// The node.
    pub id: ParticipantId,
    /// The round it failed in.
    pub round: u8,
    /// Why.
    pub reason: FailureReason,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            FailureReason::Silent => "no answer".to_string(),
            FailureReason::BadShare => "invalid signature share".to_string(),
            FailureReason::BadProof => "invalid ECDH proof".to_string(),
            FailureReason::Refused(ErrorCode::UNREACHABLE) => "unreachable".to_string(),
            FailureReason::Refused(code) => match code.name() {
                Some(name) => format!("refused ({name})"),
                None => format!("refused with code {}", code.0),
            },
        };
        write!(f, "node {} in round {}: {why}", self.id, self.round)
    }
}

/// A message for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: ParticipantId,
    /// The body (the transport adds a fresh request id).
    pub body: Body,
}

/// Something a [`SignSession`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignEvent {
    /// A node was dropped from the session (cool it down when `reason` is
    /// [`FailureReason::BadShare`]; mark it slow when [`FailureReason::Silent`]).
    NodeFailed(NodeFailure),
    /// The session finished with a BIP340 signature, verified under the npub.
    Signed([u8; 64]),
    /// The session gave up ([`Error::Unavailable`] naming every dropped node and round).
    Failed(Error),
}

/// The output of one call: messages to send, events, and when to call `on_timeout` next
/// (`None` once finished).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<E = SignEvent> {
    /// Messages to send, in order.
    pub send: Vec<Outgoing>,
    /// What happened.
    pub events: Vec<E>,
    /// The next deadline.
    pub deadline: Option<Duration>,
}

impl<E> Default for Step<E> {
    fn default() -> Self {
        Self {
            send: Vec::new(),
            events: Vec::new(),
            deadline: None,
        }
    }
}

/// Deadlines and spares of a [`SignSession`]; [`Default`] takes them from [`crate::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignConfig {
    /// Round 1 (commitments) deadline per attempt.
    pub round1_timeout: Duration,
    /// Round 2 (shares) deadline per attempt.
    pub round2_timeout: Duration,
    /// Whole-session deadline, all attempts.
    pub total_timeout: Duration,
    /// Nodes asked in round 1 beyond t.
    pub spares: usize,
}

impl Default for SignConfig {
    fn default() -> Self {
        Self {
            round1_timeout: SIGN_ROUND1_TIMEOUT,
            round2_timeout: SIGN_ROUND2_TIMEOUT,
            total_timeout: SIGN_TIMEOUT,
            spares: SIGN_SPARES,
        }
    }
}

/// What to sign: the key, the message (the event id) and the context nodes re-check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignRequest {
    /// Which key.
    pub key_id: KeyId,
    /// The message, at most [`crate::limits::MAX_MESSAGE_LEN`] bytes.
    pub message: Vec<u8>,
    /// The request context sent to every node.
    pub context: RequestContext,
}

enum Phase {
    Round1 {
        asked: BTreeSet<ParticipantId>,
        commitments: BTreeMap<ParticipantId, SigningCommitments>,
    },
    Round2 {
        asked: BTreeSet<ParticipantId>,
        package: SigningPackage,
        shares: BTreeMap<ParticipantId, SignatureShare>,
    },
    Done,
}

/// The coordinator's side of one signing request (spec §8.5).
///
/// Each attempt asks t + spares nodes for commitments under a fresh session id, builds the
/// package from the first t to answer and aborts the others, then collects and checks shares.
/// A node silent past a round's deadline, refusing, or sending a bad share is dropped and the
/// attempt restarts with fresh commitments from the remaining nodes; when fewer than t remain,
/// or the whole deadline passes, the session fails with [`Error::Unavailable`]. Messages for
/// another session id, from nodes not asked, or repeated, are ignored.
pub struct SignSession {
    public: PublicKeyPackage,
    request: SignRequest,
    config: SignConfig,
    /// Nodes in order of preference (healthiest first).
    nodes: Vec<ParticipantId>,
    failed: Vec<NodeFailure>,
    session_id: SessionId,
    phase: Phase,
    round_deadline: Duration,
    total_deadline: Duration,
    attempts: u32,
    outcome: Option<Result<[u8; 64]>>,
}

impl fmt::Debug for SignSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignSession")
            .field("attempts", &self.attempts)
            .field("failed", &self.failed)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl SignSession {
    /// Starts signing `request` with the key of `public`, asking the share holders in `nodes`
    /// (most preferred first; unknown and repeated ids are refused).
    pub fn new(
        public: PublicKeyPackage,
        request: SignRequest,
        nodes: Vec<ParticipantId>,
        config: SignConfig,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Result<(Self, Step)> {
        if request.message.len() > crate::limits::MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong {
                len: request.message.len(),
                max: crate::limits::MAX_MESSAGE_LEN,
            });
        }
        check_nodes(&public, &nodes)?;
        let mut session = Self {
            public,
            request,
            config,
            nodes,
            failed: Vec::new(),
            session_id: [0; 16],
            phase: Phase::Done,
            round_deadline: now,
            total_deadline: now.saturating_add(config.total_timeout),
            attempts: 0,
            outcome: None,
        };
        let mut step = Step::default();
        session.start_attempt(now, rng, &mut step);
        step.deadline = session.deadline();
        Ok((session, step))
    }

    /// The result once finished.
    pub fn outcome(&self) -> Option<&Result<[u8; 64]>> {
        self.outcome.as_ref()
    }

    /// Nodes dropped so far, in order.
    pub fn failures(&self) -> &[NodeFailure] {
        &self.failed
    }

    /// Attempts started (1 without failover).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The current attempt's session id.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// When to call [`SignSession::on_timeout`] next; `None` once finished.
    pub fn deadline(&self) -> Option<Duration> {
        match self.phase {
            Phase::Done => None,
            _ => Some(self.round_deadline.min(self.total_deadline)),
        }
    }

    fn threshold(&self) -> usize {
        usize::from(self.public.threshold())
    }

    fn remaining(&self) -> Vec<ParticipantId> {
        self.nodes
            .iter()
            .copied()
            .filter(|id| !self.failed.iter().any(|f| f.id == *id))
            .collect()
    }

    fn finish(&mut self, result: Result<[u8; 64]>, step: &mut Step) {
        step.events.push(match &result {
            Ok(sig) => SignEvent::Signed(*sig),
            Err(e) => SignEvent::Failed(e.clone()),
        });
        self.outcome = Some(result);
        self.phase = Phase::Done;
    }

    fn unavailable(&self) -> Error {
        Error::Unavailable {
            operation: "signing",
            answered: self.remaining().len(),
            need: self.threshold(),
            failed: self.failed.clone(),
        }
    }

    fn start_attempt(&mut self, now: Duration, rng: &mut impl SignerRng, step: &mut Step) {
        let remaining = self.remaining();
        let t = self.threshold();
        if remaining.len() < t || now >= self.total_deadline {
            let err = self.unavailable();
            self.finish(Err(err), step);
            return;
        }
        self.attempts += 1;
        rng.fill_bytes(&mut self.session_id);
        let asked: BTreeSet<ParticipantId> = remaining
            .into_iter()
            .take(t.saturating_add(self.config.spares))
            .collect();
        let budget = self.config.round1_timeout + self.config.round2_timeout;
        let deadline_ms = u32::try_from(budget.as_millis()).unwrap_or(u32::MAX);
        for &to in &asked {
            step.send.push(Outgoing {
                to,
                body: Body::SignCommitReq {
                    session_id: self.session_id,
                    key_id: self.request.key_id,
                    deadline_ms,
                    message: self.request.message.clone(),
                    participants: asked.iter().copied().collect(),
                    context: self.request.context.clone(),
                },
            });
        }
        self.round_deadline = now.saturating_add(self.config.round1_timeout);
        self.phase = Phase::Round1 {
            asked,
            commitments: BTreeMap::new(),
        };
    }

    /// Aborts the current attempt (`SignAbort` to every node asked in it) and starts the next.
    fn restart(&mut self, now: Duration, rng: &mut impl SignerRng, step: &mut Step) {
        let asked = match &self.phase {
            Phase::Round1 { asked, .. } | Phase::Round2 { asked, .. } => asked.clone(),
            Phase::Done => BTreeSet::new(),
        };
        for to in asked {
            step.send.push(Outgoing {
                to,
                body: Body::SignAbort {
                    session_id: self.session_id,
                },
            });
        }
        self.start_attempt(now, rng, step);
    }

    fn drop_node(&mut self, id: ParticipantId, round: u8, reason: FailureReason, step: &mut Step) {
        let failure = NodeFailure { id, round, reason };
        self.failed.push(failure);
        step.events.push(SignEvent::NodeFailed(failure));
    }

    /// Handles a message from node `from` (commitments and shares; see
    /// [`SignSession::on_error`] for refusals). Anything else is ignored.
    pub fn on_message(
        &mut self,
        from: ParticipantId,
        body: &Body,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Step {
        let mut step = Step::default();
        if now >= self.total_deadline && !matches!(self.phase, Phase::Done) {
            return self.on_timeout(now, rng);
        }
        match body {
            Body::SignCommitResp {
                session_id,
                id,
                commitments,
            } if *session_id == self.session_id && *id == from => {
                self.on_commitments(from, *commitments, now, &mut step);
            }
            Body::SignShareResp {
                session_id,
                id,
                share,
            } if *session_id == self.session_id && *id == from => {
                self.on_share(from, *share, now, rng, &mut step);
            }
            _ => {}
        }
        step.deadline = self.deadline();
        step
    }

    /// Handles a wire `Error` from node `from` answering a request of session `session_id`
    /// (the transport maps the error's `req_id` back to the request it answers; an `Error`
    /// carries no session id of its own) and `round`, the round of the refused request (1 for
    /// `SignCommitReq`, 2 for `SignShareReq`). A refusal for the current attempt and round
    /// drops the node; one for an earlier attempt or round (e.g. a share request overtaken by
    /// its abort, or a late refusal of a duplicated round-1 request after the node signed) is
    /// ignored.
    pub fn on_error(
        &mut self,
        from: ParticipantId,
        session_id: &SessionId,
        round: u8,
        code: ErrorCode,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Step {
        let mut step = Step::default();
        if *session_id == self.session_id {
            let round = match &self.phase {
                Phase::Round1 { asked, commitments } if round == 1 && asked.contains(&from) => {
                    (!commitments.contains_key(&from)).then_some(1)
                }
                Phase::Round2 { asked, shares, .. } if round == 2 && asked.contains(&from) => {
                    (!shares.contains_key(&from)).then_some(2)
                }
                _ => None,
            };
            if let Some(round) = round {
                self.drop_node(from, round, FailureReason::Refused(code), &mut step);
                self.after_drop(now, rng, &mut step);
            }
        }
        step.deadline = self.deadline();
        step
    }

    fn on_commitments(
        &mut self,
        from: ParticipantId,
        commitments: SigningCommitments,
        now: Duration,
        step: &mut Step,
    ) {
        let t = self.threshold();
        let Phase::Round1 {
            asked,
            commitments: got,
        } = &mut self.phase
        else {
            return;
        };
        if !asked.contains(&from) || got.contains_key(&from) {
            return;
        }
        got.insert(from, commitments);
        if got.len() < t {
            return;
        }
        let chosen = std::mem::take(got);
        let spares: Vec<ParticipantId> = asked
            .iter()
            .copied()
            .filter(|id| !chosen.contains_key(id))
            .collect();
        let signers: BTreeSet<ParticipantId> = chosen.keys().copied().collect();
        let package = match SigningPackage::new(&self.public, chosen, &self.request.message) {
            Ok(p) => p,
            Err(e) => {
                self.finish(Err(e), step);
                return;
            }
        };
        for to in spares {
            step.send.push(Outgoing {
                to,
                body: Body::SignAbort {
                    session_id: self.session_id,
                },
            });
        }
        for &to in &signers {
            step.send.push(Outgoing {
                to,
                body: Body::SignShareReq {
                    session_id: self.session_id,
                    package: package.clone(),
                },
            });
        }
        self.round_deadline = now.saturating_add(self.config.round2_timeout);
        self.phase = Phase::Round2 {
            asked: signers,
            package,
            shares: BTreeMap::new(),
        };
    }

    fn on_share(
        &mut self,
        from: ParticipantId,
        share: SignatureShare,
        now: Duration,
        rng: &mut impl SignerRng,
        step: &mut Step,
    ) {
        let Phase::Round2 {
            asked,
            package,
            shares,
        } = &mut self.phase
        else {
            return;
        };
        if !asked.contains(&from) || shares.contains_key(&from) {
            return;
        }
        // Optimistic: shares are checked one by one only when the aggregate fails to verify
        // (cheater detection inside `sign::aggregate`), which names every bad sender. Checking
        // each share on arrival would recompute the group commitment t more times per
        // signature for the same outcome.
        shares.insert(from, share);
        if shares.len() < asked.len() {
            return;
        }
        let result = sign::aggregate(&self.public, package, shares);
        if let Err(e) = &result {
            let culprits = e.culprits();
            if !culprits.is_empty() {
                for id in culprits {
                    self.drop_node(id, 2, FailureReason::BadShare, step);
                }
                self.restart(now, rng, step);
                return;
            }
        }
        self.finish(result, step);
    }

    fn after_drop(&mut self, now: Duration, rng: &mut impl SignerRng, step: &mut Step) {
        // In round 1 the spares may still suffice; otherwise restart without the dropped node.
        if let Phase::Round1 { asked, .. } = &self.phase {
            let live = asked
                .iter()
                .filter(|id| !self.failed.iter().any(|f| f.id == **id))
                .count();
            if live >= self.threshold() {
                return;
            }
        }
        self.restart(now, rng, step);
    }

    /// Advances the session to `now`: drops nodes silent past the round deadline and restarts,
    /// or fails once the whole deadline passed.
    pub fn on_timeout(&mut self, now: Duration, rng: &mut impl SignerRng) -> Step {
        let mut step = Step::default();
        if matches!(self.phase, Phase::Done) {
            return step;
        }
        if now >= self.round_deadline || now >= self.total_deadline {
            let (round, silent): (u8, Vec<ParticipantId>) = match &self.phase {
                Phase::Round1 { asked, commitments } => (
                    1,
                    asked
                        .iter()
                        .copied()
                        .filter(|id| !commitments.contains_key(id))
                        .collect(),
                ),
                Phase::Round2 { asked, shares, .. } => (
                    2,
                    asked
                        .iter()
                        .copied()
                        .filter(|id| !shares.contains_key(id))
                        .collect(),
                ),
                Phase::Done => (0, Vec::new()),
            };
            for id in silent {
                if !self.failed.iter().any(|f| f.id == id) {
                    self.drop_node(id, round, FailureReason::Silent, &mut step);
                }
            }
            self.restart(now, rng, &mut step);
        }
        step.deadline = self.deadline();
        step
    }
}

/// What a node keeps for one live signing session: in memory only.
struct LiveSession {
    nonces: SigningNonces,
    commitments: SigningCommitments,
    message: Vec<u8>,
    deadline: Duration,
}

/// What a node remembers after signing, for the idempotency window.
struct Signed {
    package_hash: [u8; 32],
    share: SignatureShare,
    expires: Duration,
}

/// A node's signing core for one key (spec §8.4).
///
/// Nonces live only in this value's memory, bound to one session id, until the share is sent,
/// `SignAbort`, the session deadline (at most [`NODE_SESSION_TIMEOUT`]) or drop. A repeated
/// identical `SignShareReq` gets the same share for [`SIGN_IDEMPOTENCY`]; a different package for
/// a session whose nonces were used is refused with `Error{nonce_used}`.
///
/// A `SignShareReq` that is refused (wrong message, altered or missing commitment, too few
/// signers) still consumes the session's nonces: the coordinator restarts with fresh ones.
/// At most [`NODE_SIGN_SESSIONS`] live sessions and as many idempotency records are kept.
///
/// Policy re-checks and the NIP-01 id recomputation from the request context are done before
/// this, by [`crate::node::NodeCore`]; a bare `NodeSigner` signs the `message` of the
/// `SignCommitReq` it accepted.
pub struct NodeSigner {
    share: NodeShare,
    key_id: KeyId,
    live: BTreeMap<SessionId, LiveSession>,
    signed: BTreeMap<SessionId, Signed>,
    refused_reuse: u64,
}

impl fmt::Debug for NodeSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSigner")
            .field("id", &self.share.id())
            .field("live", &self.live.len())
            .field("signed", &self.signed.len())
            .finish_non_exhaustive()
    }
}

impl NodeSigner {
    /// A node holding `share` of the key `key_id`.
    pub fn new(share: NodeShare, key_id: KeyId) -> Self {
        Self {
            share,
            key_id,
            live: BTreeMap::new(),
            signed: BTreeMap::new(),
            refused_reuse: 0,
        }
    }

    /// This node's identifier.
    pub fn id(&self) -> ParticipantId {
        self.share.id()
    }

    /// Whether nonces are held for `session_id` (a test and status hook; never the nonces).
    pub fn has_nonces(&self, session_id: &SessionId) -> bool {
        self.live.contains_key(session_id)
    }

    /// Whether `session_id` is live or recently signed here (routes round-2 and abort
    /// messages, which carry no key id).
    pub fn knows(&self, session_id: &SessionId) -> bool {
        self.live.contains_key(session_id) || self.signed.contains_key(session_id)
    }

    /// A copy of the share (for a refresh ceremony, which consumes the old share).
    pub fn share_copy(&self) -> crate::Result<NodeShare> {
        NodeShare::deserialize(&self.share.serialize()?)
    }

    /// The x-only public key (npub) of the key this signer holds a share of.
    pub fn npub(&self) -> [u8; 32] {
        self.share.public().npub()
    }

    /// Live nonce sessions.
    pub fn live_sessions(&self) -> usize {
        self.live.len()
    }

    /// How many different packages were refused for used nonces (coordinator misbehaviour).
    pub fn refused_reuse(&self) -> u64 {
        self.refused_reuse
    }

    /// The earliest time something expires; call [`NodeSigner::on_timeout`] then.
    pub fn deadline(&self) -> Option<Duration> {
        let live = self.live.values().map(|s| s.deadline);
        let signed = self.signed.values().map(|s| s.expires);
        live.chain(signed).min()
    }

    /// Wipes nonces past their deadline and forgets expired idempotency records.
    pub fn on_timeout(&mut self, now: Duration) {
        self.live.retain(|_, s| now < s.deadline);
        self.signed.retain(|_, s| now < s.expires);
    }

    fn refuse(&self, code: ErrorCode, text: &str) -> Option<Body> {
        Some(Body::error(code, Some(self.share.id()), text))
    }

    /// Handles one request; returns the reply, if any (`SignAbort` has none; messages that are
    /// not signing requests are ignored).
    pub fn handle(&mut self, body: &Body, now: Duration, rng: &mut impl SignerRng) -> Option<Body> {
        self.on_timeout(now);
        match body {
            Body::SignCommitReq {
                session_id,
                key_id,
                deadline_ms,
                message,
                participants,
                ..
            } => self.commit(
                *session_id,
                key_id,
                *deadline_ms,
                message,
                participants,
                now,
                rng,
            ),
            Body::SignShareReq {
                session_id,
                package,
            } => self.sign(*session_id, package, now),
            Body::SignAbort { session_id } => {
                self.live.remove(session_id);
                None
            }
            Body::EcdhReq {
                session_id,
                key_id,
                peer,
                ..
            } => {
                if *key_id != self.key_id {
                    return self.refuse(ErrorCode::UNKNOWN_KEY, "key not held by this node");
                }
                // Stateless: the partial and its proof are bound to the session id.
                match ecdh::partial(&self.share, peer, session_id, rng) {
                    Ok(partial) => Some(Body::EcdhResp {
                        session_id: *session_id,
                        partial,
                    }),
                    Err(e) => self.refuse(ErrorCode::REJECTED, &e.to_string()),
                }
            }
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        session_id: SessionId,
        key_id: &KeyId,
        deadline_ms: u32,
        message: &[u8],
        participants: &[ParticipantId],
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Option<Body> {
        let me = self.share.id();
        if *key_id != self.key_id {
            return self.refuse(ErrorCode::UNKNOWN_KEY, "key not held by this node");
        }
        if !participants.contains(&me) {
            return self.refuse(
                ErrorCode::REJECTED,
                "this node is not among the participants",
            );
        }
        if participants
            .iter()
            .any(|id| !self.share.public().contains(*id))
        {
            return self.refuse(ErrorCode::REJECTED, "participant not a share holder");
        }
        if self.signed.contains_key(&session_id) {
            self.refused_reuse += 1;
            return self.refuse(ErrorCode::NONCE_USED, "session already signed");
        }
        if let Some(live) = self.live.get(&session_id) {
            if live.message != message {
                return self.refuse(ErrorCode::REJECTED, "session exists with another message");
            }
            return Some(Body::SignCommitResp {
                session_id,
                id: me,
                commitments: live.commitments,
            });
        }
        if self.live.len() >= NODE_SIGN_SESSIONS {
            return self.refuse(ErrorCode::BUSY, "too many live sessions");
        }
        let keep = Duration::from_millis(u64::from(deadline_ms)).min(NODE_SESSION_TIMEOUT);
        let (nonces, commitments) = sign::commit(&self.share, rng);
        self.live.insert(
            session_id,
            LiveSession {
                nonces,
                commitments,
                message: message.to_vec(),
                deadline: now.saturating_add(keep),
            },
        );
        Some(Body::SignCommitResp {
            session_id,
            id: me,
            commitments,
        })
    }

    fn sign(
        &mut self,
        session_id: SessionId,
        package: &SigningPackage,
        now: Duration,
    ) -> Option<Body> {
        let me = self.share.id();
        let Ok(bytes) = package.serialize() else {
            return self.refuse(ErrorCode::REJECTED, "package does not encode");
        };
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(done) = self.signed.get(&session_id) {
            if done.package_hash == hash {
                return Some(Body::SignShareResp {
                    session_id,
                    id: me,
                    share: done.share,
                });
            }
            self.refused_reuse += 1;
            return self.refuse(ErrorCode::NONCE_USED, "another package for a used session");
        }
        let Some(live) = self.live.remove(&session_id) else {
            return self.refuse(ErrorCode::UNKNOWN_SESSION, "no live session");
        };
        if now >= live.deadline {
            return self.refuse(ErrorCode::EXPIRED, "session expired");
        }
        if live.message != package.message() {
            return self.refuse(ErrorCode::REJECTED, "package message differs from round 1");
        }
        // `sign::sign` checks this node's commitment, t and the signers, and consumes the
        // nonces whatever the outcome.
        match sign::sign(&self.share, live.nonces, package) {
            Ok(share) => {
                // Bounded: evicting the oldest record is safe, its nonces are already gone (a
                // later request for it gets `unknown_session`, or fresh nonces in round 1).
                if self.signed.len() >= NODE_SIGN_SESSIONS
                    && let Some(oldest) = self
                        .signed
                        .iter()
                        .min_by_key(|(_, s)| s.expires)
                        .map(|(k, _)| *k)
                {
                    self.signed.remove(&oldest);
                }
                self.signed.insert(
                    session_id,
                    Signed {
                        package_hash: hash,
                        share,
                        expires: now.saturating_add(SIGN_IDEMPOTENCY),
                    },
                );
                Some(Body::SignShareResp {
                    session_id,
                    id: me,
                    share,
                })
            }
            Err(e) => self.refuse(ErrorCode::REJECTED, &e.to_string()),
        }
    }
}

/// Something an [`EcdhSession`] reports. The shared secret itself is only available through
/// [`EcdhSession::take_outcome`], never in an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcdhEvent {
    /// A node was dropped (cool it down on [`FailureReason::BadProof`]).
    NodeFailed(NodeFailure),
    /// The shared x coordinate is ready.
    Done,
    /// The session gave up ([`Error::Unavailable`]).
    Failed(Error),
}

/// What an ECDH is for: the key, the peer's x-only key and the context nodes re-check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcdhRequest {
    /// Which key.
    pub key_id: KeyId,
    /// The peer's x-only public key.
    pub peer: [u8; 32],
    /// The request context sent to every node.
    pub context: RequestContext,
}

/// Deadlines and spares of an [`EcdhSession`]; [`Default`] takes them from [`crate::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdhConfig {
    /// Deadline per attempt.
    pub attempt_timeout: Duration,
    /// Whole-session deadline.
    pub total_timeout: Duration,
    /// Nodes asked beyond t.
    pub spares: usize,
}

impl Default for EcdhConfig {
    fn default() -> Self {
        Self {
            attempt_timeout: ECDH_ATTEMPT_TIMEOUT,
            total_timeout: ECDH_TIMEOUT,
            spares: SIGN_SPARES,
        }
    }
}

/// The coordinator's side of one threshold ECDH (spec §8.6): `EcdhReq` to t + spares nodes,
/// each partial's proof checked as it arrives (a bad one drops and names its node), the first t
/// valid partials combined. Silent nodes are dropped at the attempt deadline and a new attempt
/// (fresh session id) asks the remaining nodes; fewer than t left → [`Error::Unavailable`].
pub struct EcdhSession {
    public: PublicKeyPackage,
    request: EcdhRequest,
    config: EcdhConfig,
    nodes: Vec<ParticipantId>,
    failed: Vec<NodeFailure>,
    session_id: SessionId,
    asked: BTreeSet<ParticipantId>,
    partials: BTreeMap<ParticipantId, EcdhPartial>,
    deadline: Duration,
    total_deadline: Duration,
    attempts: u32,
    done: bool,
    outcome: Option<Result<SharedX>>,
}

impl fmt::Debug for EcdhSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdhSession")
            .field("attempts", &self.attempts)
            .field("failed", &self.failed)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl EcdhSession {
    /// Starts ECDH of the key of `public` with the request's peer, asking `nodes` in order of
    /// preference.
    pub fn new(
        public: PublicKeyPackage,
        request: EcdhRequest,
        nodes: Vec<ParticipantId>,
        config: EcdhConfig,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Result<(Self, Step<EcdhEvent>)> {
        check_nodes(&public, &nodes)?;
        let mut session = Self {
            public,
            request,
            config,
            nodes,
            failed: Vec::new(),
            session_id: [0; 16],
            asked: BTreeSet::new(),
            partials: BTreeMap::new(),
            deadline: now,
            total_deadline: now.saturating_add(config.total_timeout),
            attempts: 0,
            done: false,
            outcome: None,
        };
        let mut step = Step::default();
        session.start_attempt(now, rng, &mut step);
        step.deadline = session.deadline();
        Ok((session, step))
    }

    /// Whether the session finished (its outcome may already have been taken).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes the result once finished.
    pub fn take_outcome(&mut self) -> Option<Result<SharedX>> {
        self.outcome.take()
    }

    /// Nodes dropped so far.
    pub fn failures(&self) -> &[NodeFailure] {
        &self.failed
    }

    /// Attempts started.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When to call [`EcdhSession::on_timeout`] next; `None` once finished.
    pub fn deadline(&self) -> Option<Duration> {
        (!self.done).then(|| self.deadline.min(self.total_deadline))
    }

    fn threshold(&self) -> usize {
        usize::from(self.public.threshold())
    }

    fn is_failed(&self, id: ParticipantId) -> bool {
        self.failed.iter().any(|f| f.id == id)
    }

    fn finish(&mut self, result: Result<SharedX>, step: &mut Step<EcdhEvent>) {
        step.events.push(match &result {
            Ok(_) => EcdhEvent::Done,
            Err(e) => EcdhEvent::Failed(e.clone()),
        });
        self.outcome = Some(result);
        self.done = true;
    }

    fn drop_node(&mut self, id: ParticipantId, reason: FailureReason, step: &mut Step<EcdhEvent>) {
        let failure = NodeFailure {
            id,
            round: 1,
            reason,
        };
        self.failed.push(failure);
        step.events.push(EcdhEvent::NodeFailed(failure));
    }

    fn start_attempt(
        &mut self,
        now: Duration,
        rng: &mut impl SignerRng,
        step: &mut Step<EcdhEvent>,
    ) {
        let remaining: Vec<ParticipantId> = self
            .nodes
            .iter()
            .copied()
            .filter(|id| !self.is_failed(*id))
            .collect();
        let t = self.threshold();
        if remaining.len() < t || now >= self.total_deadline {
            let err = Error::Unavailable {
                operation: "ecdh",
                answered: remaining.len(),
                need: t,
                failed: self.failed.clone(),
            };
            self.finish(Err(err), step);
            return;
        }
        self.attempts += 1;
        rng.fill_bytes(&mut self.session_id);
        self.partials.clear();
        self.asked = remaining
            .into_iter()
            .take(t.saturating_add(self.config.spares))
            .collect();
        for &to in &self.asked {
            step.send.push(Outgoing {
                to,
                body: Body::EcdhReq {
                    session_id: self.session_id,
                    key_id: self.request.key_id,
                    peer: self.request.peer,
                    context: self.request.context.clone(),
                },
            });
        }
        self.deadline = now.saturating_add(self.config.attempt_timeout);
    }

    /// Whether the nodes still pending in this attempt can still bring the valid partials to t.
    fn attempt_viable(&self) -> bool {
        let pending = self
            .asked
            .iter()
            .filter(|id| !self.is_failed(**id) && !self.partials.contains_key(id))
            .count();
        self.partials.len() + pending >= self.threshold()
    }

    /// Handles an `EcdhResp` from node `from`; anything else is ignored.
    pub fn on_message(
        &mut self,
        from: ParticipantId,
        body: &Body,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Step<EcdhEvent> {
        let mut step = Step::default();
        if self.done {
            return step;
        }
        if now >= self.total_deadline {
            return self.on_timeout(now, rng);
        }
        if let Body::EcdhResp {
            session_id,
            partial,
        } = body
            && *session_id == self.session_id
            && partial.id() == from
            && self.asked.contains(&from)
            && !self.is_failed(from)
            && !self.partials.contains_key(&from)
        {
            if ecdh::verify_partial(&self.public, &self.request.peer, &self.session_id, partial)
                .is_err()
            {
                self.drop_node(from, FailureReason::BadProof, &mut step);
                if !self.attempt_viable() {
                    self.start_attempt(now, rng, &mut step);
                }
            } else {
                self.partials.insert(from, *partial);
                if self.partials.len() >= self.threshold() {
                    let partials: Vec<EcdhPartial> = self.partials.values().copied().collect();
                    let result = ecdh::combine(
                        &self.public,
                        &self.request.peer,
                        &self.session_id,
                        &partials,
                    );
                    self.finish(result, &mut step);
                }
            }
        }
        step.deadline = self.deadline();
        step
    }

    /// Handles a wire `Error` from `from` answering a request of session `session_id`.
    pub fn on_error(
        &mut self,
        from: ParticipantId,
        session_id: &SessionId,
        code: ErrorCode,
        now: Duration,
        rng: &mut impl SignerRng,
    ) -> Step<EcdhEvent> {
        let mut step = Step::default();
        if !self.done
            && *session_id == self.session_id
            && self.asked.contains(&from)
            && !self.is_failed(from)
            && !self.partials.contains_key(&from)
        {
            self.drop_node(from, FailureReason::Refused(code), &mut step);
            if !self.attempt_viable() {
                self.start_attempt(now, rng, &mut step);
            }
        }
        step.deadline = self.deadline();
        step
    }

    /// Advances to `now`: drops nodes silent past the attempt deadline and retries, or fails.
    pub fn on_timeout(&mut self, now: Duration, rng: &mut impl SignerRng) -> Step<EcdhEvent> {
        let mut step = Step::default();
        if self.done {
            return step;
        }
        if now >= self.deadline || now >= self.total_deadline {
            let silent: Vec<ParticipantId> = self
                .asked
                .iter()
                .copied()
                .filter(|id| !self.is_failed(*id) && !self.partials.contains_key(id))
                .collect();
            for id in silent {
                self.drop_node(id, FailureReason::Silent, &mut step);
            }
            self.start_attempt(now, rng, &mut step);
        }
        step.deadline = self.deadline();
        step
    }
}
