//! The per-daemon pairing state machine (spec 8.5), sans-IO.
//!
//! One [`DaemonCore`] per daemon id owns that daemon's connection, its pairings, the sids it
//! remembers and its grace timer. The tokio adapter feeds it events (connections, messages,
//! closes, timer ticks) with `now`, and executes the [`Action`]s it returns: queue bytes on a
//! connection, close a connection. It validates every message with
//! [`keyline_sbrp::proto::relay::validate`] (spec section 7, in the spec's order) and only
//! ever reads frame headers and the 2-byte Signal payload; forwarded frames are the very
//! bytes received.
//!
//! Rows of the spec's table are referenced as `P1`…`P25` in the code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::{FrameType, SignalCode};
use keyline_sbrp::proto::relay::{Rejection, Sender, Verdict, control_frame, pong, validate};

use crate::limits::Limits;
use crate::metrics::{DropReason, Metrics};

/// Identifies one WebSocket connection inside a relay.
pub type ConnId = u64;

/// How a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// After the frames already queued (e.g. a terminal Control frame): normal close.
    AfterControl,
    /// The daemon connection was replaced by a newer one: close code 1008, no Control.
    Replaced,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue these bytes (one SBRP frame) on `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The whole frame.
        frame: Bytes,
    },
    /// Close `conn` once what is queued before this action has been written.
    Close {
        /// The connection.
        conn: ConnId,
        /// How.
        kind: CloseKind,
    },
}

/// State of one pairing (spec 8.5). Closed pairings are removed; their sid is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairState {
    /// Both sides connected; frames flow.
    Paired,
    /// The daemon is gone; waiting for it (grace period).
    Paused,
    /// A resumable daemon reconnected; waiting for its `Signal`.
    Pending,
}

#[derive(Debug, Clone, Copy)]
struct Pairing {
    client: ConnId,
    state: PairState,
}

#[derive(Debug, Clone, Copy)]
struct DaemonLink {
    conn: ConnId,
    resumable: bool,
}

/// Outcome of the pre-upgrade admission check for a client (P4, P5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted; a slot is reserved until the upgrade completes.
    Admitted,
    /// The sid is paired, reserved or was used recently: HTTP 409 `sid_in_use`.
    SidInUse,
    /// The daemon's session cap is reached: HTTP 429 `too_many_sessions`.
    TooManySessions,
}

/// One daemon id's pairings and connection.
#[derive(Debug)]
pub struct DaemonCore {
    daemon: Option<DaemonLink>,
    cap: Option<u64>,
    pairings: HashMap<u64, Pairing>,
    reserved: HashMap<u64, Instant>,
    used: HashMap<u64, i64>,
    grace_deadline: Option<Instant>,
    sessions_per_daemon: usize,
    grace_period: Duration,
    max_used_sids: usize,
    clock_skew: Duration,
    reservation: Duration,
    metrics: Arc<Metrics>,
}

fn control(code: ControlCode, sid: u64) -> Bytes {
    Bytes::from(control_frame(code, sid))
}

impl DaemonCore {
    /// A core with no daemon connected.
    pub fn new(limits: &Limits, metrics: Arc<Metrics>) -> Self {
        DaemonCore {
            daemon: None,
            cap: None,
            pairings: HashMap::new(),
            reserved: HashMap::new(),
            used: HashMap::new(),
            grace_deadline: None,
            sessions_per_daemon: limits.sessions_per_daemon,
            grace_period: limits.grace_period,
            max_used_sids: limits.max_used_sids,
            clock_skew: limits.clock_skew,
            reservation: limits.upgrade_reservation,
            metrics,
        }
    }

    /// Whether the daemon is connected.
    pub fn is_online(&self) -> bool {
        self.daemon.is_some()
    }

    /// The state of the pairing with `sid`, if open.
    pub fn pairing_state(&self, sid: u64) -> Option<PairState> {
        self.pairings.get(&sid).map(|p| p.state)
    }

    /// Number of pairings in `state`.
    pub fn count_in_state(&self, state: PairState) -> usize {
        self.pairings.values().filter(|p| p.state == state).count()
    }

    /// Number of open pairings.
    pub fn pairing_count(&self) -> usize {
        self.pairings.len()
    }

    /// The next time [`on_tick`](Self::on_tick) has work (grace expiry), if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.grace_deadline
    }

    /// P4/P5: checks a client token before the upgrade and reserves its sid.
    pub fn admit_client(
        &mut self,
        sid: u64,
        token_exp: i64,
        now: Instant,
        now_unix: u64,
    ) -> Admission {
        self.expire_remembered(now, now_unix);
        if self.pairings.contains_key(&sid)
            || self.reserved.contains_key(&sid)
            || self.used.contains_key(&sid)
        {
            return Admission::SidInUse;
        }
        let cap = self
            .cap
            .map_or(self.sessions_per_daemon, |c| usize::try_from(c).unwrap_or(usize::MAX));
        if self.pairings.len() + self.reserved.len() >= cap
            || self.used.len() >= self.max_used_sids
        {
            return Admission::TooManySessions;
        }
        self.reserved.insert(sid, now + self.reservation);
        let skew = i64::try_from(self.clock_skew.as_secs()).unwrap_or(i64::MAX);
        let until = token_exp.saturating_add(skew).max(now_unix as i64 + skew);
        self.used.insert(sid, until);
        Admission::Admitted
    }

    /// P1/P2: an admitted client finished its upgrade.
    pub fn client_connected(&mut self, conn: ConnId, sid: u64) -> Vec<Action> {
        self.reserved.remove(&sid);
        if self.daemon.is_none() {
            // P2.
            return vec![
                Action::Send {
                    conn,
                    frame: control(ControlCode::DaemonOffline, sid),
                },
                Action::Close {
                    conn,
                    kind: CloseKind::AfterControl,
                },
            ];
        }
        if self.pairings.contains_key(&sid) {
            return self.reject_client(
                conn,
                sid,
                Rejection {
                    code: ControlCode::Forbidden,
                    sid: 0,
                    closes_connection: true,
                    ends_pairing: false,
                },
            );
        }
        // P1.
        self.pairings.insert(
            sid,
            Pairing {
                client: conn,
                state: PairState::Paired,
            },
        );
        Vec::new()
    }

    /// A binary message from the client connection `conn` whose token sid is `sid`.
    pub fn on_client_message(&mut self, conn: ConnId, sid: u64, message: Bytes) -> Vec<Action> {
        let verdict = validate(&message, Sender::Client { token_sid: sid }, |_| false);
        match verdict {
            Err(rejection) => self.reject_client(conn, sid, rejection),
            Ok(Verdict::Pong { payload }) => vec![Action::Send {
                conn,
                frame: Bytes::from(pong(payload)),
            }],
            Ok(Verdict::Liveness) | Ok(Verdict::Signal { .. }) => Vec::new(),
            Ok(Verdict::Forward { frame_type, .. }) => {
                let Some(pairing) = self.pairings.get(&sid).filter(|p| p.client == conn) else {
                    return Vec::new();
                };
                match (pairing.state, self.daemon) {
                    // P6.
                    (PairState::Paired, Some(daemon)) => {
                        self.metrics.forwarded(frame_type, message.len());
                        vec![Action::Send {
                            conn: daemon.conn,
                            frame: message,
                        }]
                    }
                    // P20.
                    (PairState::Paused, _) => {
                        self.metrics.dropped(DropReason::Paused);
                        Vec::new()
                    }
                    _ => {
                        self.metrics.dropped(DropReason::Pending);
                        Vec::new()
                    }
                }
            }
        }
    }

    /// A client connection refused by validation (text message, oversize message, or a
    /// failed section 7 check): Control, close, and the pairing ends.
    pub fn reject_client(&mut self, conn: ConnId, sid: u64, rejection: Rejection) -> Vec<Action> {
        self.metrics.validation_failure(rejection.code);
        let mut actions = vec![
            Action::Send {
                conn,
                frame: Bytes::from(rejection.control_frame()),
            },
            Action::Close {
                conn,
                kind: CloseKind::AfterControl,
            },
        ];
        actions.extend(self.client_closed(conn, sid));
        actions
    }

    /// P8/P15/P18/P22: the client connection `conn` (token sid `sid`) is gone.
    pub fn client_closed(&mut self, conn: ConnId, sid: u64) -> Vec<Action> {
        self.reserved.remove(&sid);
        let Some(pairing) = self.pairings.get(&sid).copied() else {
            return Vec::new();
        };
        if pairing.client != conn {
            return Vec::new();
        }
        self.pairings.remove(&sid);
        match (pairing.state, self.daemon) {
            (PairState::Paired | PairState::Pending, Some(daemon)) => vec![Action::Send {
                conn: daemon.conn,
                frame: control(ControlCode::SessionEnded, sid),
            }],
            _ => Vec::new(),
        }
    }

    /// A daemon connection with a valid presence token. A previous connection is replaced
    /// (closed with 1008, its pairings paused), then P12/P13 apply to paused pairings.
    pub fn daemon_connected(
        &mut self,
        conn: ConnId,
        resumable: bool,
        cap: Option<u64>,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(old) = self.daemon.take() {
            actions.push(Action::Close {
                conn: old.conn,
                kind: CloseKind::Replaced,
            });
            actions.extend(self.daemon_gone(now));
        }
        self.daemon = Some(DaemonLink { conn, resumable });
        self.cap = cap;
        let mut expired = Vec::new();
        for (&sid, pairing) in self.pairings.iter_mut() {
            if pairing.state != PairState::Paused {
                continue;
            }
            if resumable {
                // P12.
                pairing.state = PairState::Pending;
                actions.push(Action::Send {
                    conn: pairing.client,
                    frame: control(ControlCode::SessionPending, sid),
                });
            } else {
                // P13.
                expired.push(sid);
            }
        }
        for sid in expired {
            actions.extend(self.expire(sid));
        }
        if !self
            .pairings
            .values()
            .any(|p| matches!(p.state, PairState::Paused | PairState::Pending))
        {
            self.grace_deadline = None;
        }
        actions
    }

    /// A binary message from daemon connection `conn`.
    pub fn on_daemon_message(&mut self, conn: ConnId, message: Bytes, now: Instant) -> Vec<Action> {
        let Some(daemon) = self.daemon.filter(|d| d.conn == conn) else {
            // A replaced connection that is being closed.
            return Vec::new();
        };
        let pairings = &self.pairings;
        let verdict = validate(&message, Sender::Daemon, |sid| pairings.contains_key(&sid));
        match verdict {
            Err(rejection) => self.reject_daemon(conn, rejection, now),
            Ok(Verdict::Pong { payload }) => vec![Action::Send {
                conn,
                frame: Bytes::from(pong(payload)),
            }],
            Ok(Verdict::Liveness) => Vec::new(),
            Ok(Verdict::Signal { sid, signal, .. }) => {
                let Some(pairing) = self.pairings.get_mut(&sid) else {
                    return Vec::new();
                };
                match signal {
                    SignalCode::Ready => {
                        // P16; P11 and non-resumable daemons: ignored.
                        if pairing.state == PairState::Pending && daemon.resumable {
                            pairing.state = PairState::Paired;
                            vec![Action::Send {
                                conn: pairing.client,
                                frame: control(ControlCode::SessionResumed, sid),
                            }]
                        } else {
                            Vec::new()
                        }
                    }
                    // P10/P17.
                    SignalCode::Close => self.expire(sid),
                }
            }
            Ok(Verdict::Forward { frame_type, sid }) => {
                let Some(pairing) = self.pairings.get(&sid) else {
                    return Vec::new();
                };
                match pairing.state {
                    // P7.
                    PairState::Paired => {
                        self.metrics.forwarded(frame_type, message.len());
                        vec![Action::Send {
                            conn: pairing.client,
                            frame: message,
                        }]
                    }
                    // P21.
                    _ => {
                        self.metrics.dropped(DropReason::Pending);
                        Vec::new()
                    }
                }
            }
        }
    }

    /// A daemon message refused by validation: Control to the daemon; sid 0 closes the
    /// daemon connection (its pairings pause), a code with a sid ends at most that pairing
    /// (P25).
    pub fn reject_daemon(&mut self, conn: ConnId, rejection: Rejection, now: Instant) -> Vec<Action> {
        if self.daemon.is_none_or(|d| d.conn != conn) {
            return Vec::new();
        }
        self.metrics.validation_failure(rejection.code);
        let mut actions = vec![Action::Send {
            conn,
            frame: Bytes::from(rejection.control_frame()),
        }];
        if rejection.closes_connection {
            actions.push(Action::Close {
                conn,
                kind: CloseKind::AfterControl,
            });
            actions.extend(self.daemon_closed(conn, now));
        } else if rejection.ends_pairing {
            actions.extend(self.expire(rejection.sid));
        }
        actions
    }

    /// P9/P23: the daemon connection `conn` is gone.
    pub fn daemon_closed(&mut self, conn: ConnId, now: Instant) -> Vec<Action> {
        if self.daemon.is_none_or(|d| d.conn != conn) {
            return Vec::new();
        }
        self.daemon = None;
        self.daemon_gone(now)
    }

    fn daemon_gone(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for (&sid, pairing) in self.pairings.iter_mut() {
            if pairing.state != PairState::Paused {
                pairing.state = PairState::Paused;
                actions.push(Action::Send {
                    conn: pairing.client,
                    frame: control(ControlCode::SessionPaused, sid),
                });
            }
        }
        if !self.pairings.is_empty() {
            self.grace_deadline = Some(now + self.grace_period);
        }
        actions
    }

    /// Ends the pairing `sid`: `session_expired` to its client, which is closed.
    fn expire(&mut self, sid: u64) -> Vec<Action> {
        let Some(pairing) = self.pairings.remove(&sid) else {
            return Vec::new();
        };
        vec![
            Action::Send {
                conn: pairing.client,
                frame: control(ControlCode::SessionExpired, sid),
            },
            Action::Close {
                conn: pairing.client,
                kind: CloseKind::AfterControl,
            },
        ]
    }

    fn expire_remembered(&mut self, now: Instant, now_unix: u64) {
        self.reserved.retain(|_, deadline| now < *deadline);
        let now_unix = i64::try_from(now_unix).unwrap_or(i64::MAX);
        self.used.retain(|_, until| now_unix <= *until);
    }

    /// Timers: P14/P19 (grace end), reservations, remembered sids (P24).
    pub fn on_tick(&mut self, now: Instant, now_unix: u64) -> Vec<Action> {
        self.expire_remembered(now, now_unix);
        let mut actions = Vec::new();
        if self.grace_deadline.is_some_and(|d| now >= d) {
            self.grace_deadline = None;
            let waiting: Vec<u64> = self
                .pairings
                .iter()
                .filter(|(_, p)| matches!(p.state, PairState::Paused | PairState::Pending))
                .map(|(&sid, _)| sid)
                .collect();
            for sid in waiting {
                actions.extend(self.expire(sid));
            }
        }
        actions
    }

    /// Whether the core holds nothing worth keeping (no connection, pairing or remembered sid).
    pub fn is_idle(&self) -> bool {
        self.daemon.is_none()
            && self.pairings.is_empty()
            && self.reserved.is_empty()
            && self.used.is_empty()
    }
}

/// The frame type of a message if it has a valid header type byte (for metrics).
pub fn frame_type_of(message: &[u8]) -> Option<FrameType> {
    message.first().copied().and_then(FrameType::from_u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyline_sbrp::proto::frame::{Frame, SignalReason};

    const D: ConnId = 1;
    const C: ConnId = 2;

    fn core() -> DaemonCore {
        DaemonCore::new(&Limits::default(), Arc::new(Metrics::default()))
    }

    fn data(sid: u64) -> Bytes {
        Bytes::from(Frame::Data { sid, payload: &[9; 40] }.to_vec().unwrap())
    }

    fn signal(sid: u64, signal: SignalCode) -> Bytes {
        Bytes::from(
            Frame::Signal { sid, signal, reason: SignalReason::None }.to_vec().unwrap(),
        )
    }

    fn sent(actions: &[Action], conn: ConnId) -> Vec<Bytes> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn: c, frame } if *c == conn => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    fn closes(actions: &[Action], conn: ConnId) -> bool {
        actions.iter().any(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn))
    }

    fn paired(now: Instant, resumable: bool) -> DaemonCore {
        let mut core = core();
        assert!(core.daemon_connected(D, resumable, None, now).is_empty());
        assert_eq!(core.admit_client(5, 1000, now, 900), Admission::Admitted);
        assert!(core.client_connected(C, 5).is_empty());
        core
    }

    #[test]
    fn p1_p6_p7_p8() {
        let now = Instant::now();
        let mut core = paired(now, false);
        assert_eq!(core.pairing_state(5), Some(PairState::Paired));
        let a = core.on_client_message(C, 5, data(5));
        assert_eq!(sent(&a, D), vec![data(5)]);
        let a = core.on_daemon_message(D, data(5), now);
        assert_eq!(sent(&a, C), vec![data(5)]);
        let a = core.client_closed(C, 5);
        assert_eq!(sent(&a, D), vec![control(ControlCode::SessionEnded, 5)]);
        assert_eq!(core.pairing_state(5), None);
    }

    #[test]
    fn p2_p4_p5_p24() {
        let now = Instant::now();
        let mut core = core();
        assert_eq!(core.admit_client(5, 1000, now, 900), Admission::Admitted);
        let a = core.client_connected(C, 5);
        assert_eq!(sent(&a, C), vec![control(ControlCode::DaemonOffline, 5)]);
        assert!(closes(&a, C));
        // P5: the sid stays used until exp + 30.
        assert_eq!(core.admit_client(5, 1000, now, 1000), Admission::SidInUse);
        assert_eq!(core.admit_client(5, 1000, now, 1031), Admission::Admitted);
        // P4: cap 5 (one reserved already).
        for sid in 10..14 {
            assert_eq!(core.admit_client(sid, 1000, now, 900), Admission::Admitted);
        }
        assert_eq!(core.admit_client(20, 1000, now, 900), Admission::TooManySessions);
    }

    #[test]
    fn p9_p12_p16_resume() {
        let now = Instant::now();
        let mut core = paired(now, true);
        let a = core.daemon_closed(D, now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionPaused, 5)]);
        // P20.
        assert!(core.on_client_message(C, 5, data(5)).is_empty());
        let a = core.daemon_connected(3, true, None, now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionPending, 5)]);
        // P21.
        assert!(core.on_daemon_message(3, data(5), now).is_empty());
        let a = core.on_daemon_message(3, signal(5, SignalCode::Ready), now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionResumed, 5)]);
        assert_eq!(core.pairing_state(5), Some(PairState::Paired));
        // P11.
        assert!(core.on_daemon_message(3, signal(5, SignalCode::Ready), now).is_empty());
    }

    #[test]
    fn p13_p14_p10_p25() {
        let now = Instant::now();
        let mut core = paired(now, false);
        core.daemon_closed(D, now);
        let a = core.daemon_connected(3, false, None, now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);
        assert!(closes(&a, C));

        let mut core = paired(now, true);
        core.daemon_closed(D, now);
        assert!(core.on_tick(now + Duration::from_secs(29), 900).is_empty());
        let a = core.on_tick(now + Duration::from_secs(30), 900);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);

        let mut core = paired(now, false);
        let a = core.on_daemon_message(D, signal(5, SignalCode::Close), now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);

        let mut core = paired(now, false);
        let init = Bytes::from(Frame::HandshakeInit { sid: 5, client_ephemeral: [1; 32] }.to_vec().unwrap());
        let a = core.on_daemon_message(D, init, now);
        assert_eq!(sent(&a, D), vec![control(ControlCode::DisallowedSender, 5)]);
        assert!(!closes(&a, D));
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);
    }

    #[test]
    fn replacement_and_stale() {
        let now = Instant::now();
        let mut core = paired(now, true);
        let a = core.daemon_connected(3, true, None, now);
        assert!(a.contains(&Action::Close { conn: D, kind: CloseKind::Replaced }));
        assert_eq!(
            sent(&a, C),
            vec![control(ControlCode::SessionPaused, 5), control(ControlCode::SessionPending, 5)]
        );
        // The old connection's messages and close are ignored.
        assert!(core.on_daemon_message(D, data(5), now).is_empty());
        assert!(core.daemon_closed(D, now).is_empty());
        assert!(core.is_online());
    }

    #[test]
    fn client_validation_ends_pairing() {
        let now = Instant::now();
        let mut core = paired(now, false);
        let a = core.on_client_message(C, 5, data(6));
        assert_eq!(sent(&a, C), vec![control(ControlCode::Forbidden, 0)]);
        assert!(closes(&a, C));
        assert_eq!(sent(&a, D), vec![control(ControlCode::SessionEnded, 5)]);
    }
}
