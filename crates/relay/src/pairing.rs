//! The per-daemon relay core (spec 8.4–8.5), sans-IO.
//!
//! One [`DaemonCore`] per daemon id owns that daemon's connection, its pairings, the sids it
//! remembers (P24), its pre-upgrade reservations and the pairings' grace timers. Each pairing
//! is a [`keyline_sbrp::proto::pairing::Pairing`] (the protocol crate's per-sid state
//! machine, rows P6–P25); admission (P1–P5) uses
//! [`keyline_sbrp::proto::pairing::admit_client`]; every message is validated with
//! [`keyline_sbrp::proto::relay::validate`] (spec section 7, in the spec's order). This
//! module adds what is per *daemon* and per *connection*: which connection is the daemon,
//! which connection is each client, the daemon replacement rule of 8.4, caps and reservations,
//! and turning the per-pairing actions into bytes for connections.
//!
//! The tokio adapter feeds it events with `now` and executes the returned [`Action`]s. The
//! core only ever reads frame headers and the 2-byte Signal payload; forwarded frames are the
//! very bytes received.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::FrameType;
use keyline_sbrp::proto::pairing::{
    self as sp, Admission, DaemonStatus, Event, Pairing, PairingState,
};
use keyline_sbrp::proto::relay::{Rejection, Sender, Verdict, control_frame, pong, validate};

use crate::limits::Limits;
use crate::metrics::Metrics;

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

#[derive(Debug, Clone)]
struct Entry {
    client: ConnId,
    pairing: Pairing,
}

#[derive(Debug, Clone, Copy)]
struct DaemonLink {
    conn: ConnId,
}

/// One daemon id's pairings and connection.
#[derive(Debug)]
pub struct DaemonCore {
    daemon: Option<DaemonLink>,
    cap: Option<u64>,
    pairings: HashMap<u64, Entry>,
    reserved: HashMap<u64, Instant>,
    used: HashMap<u64, u64>,
    sessions_per_daemon: usize,
    grace_period: Duration,
    max_used_sids: usize,
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
            sessions_per_daemon: limits.sessions_per_daemon,
            grace_period: limits.grace_period,
            max_used_sids: limits.max_used_sids,
            reservation: limits.upgrade_reservation,
            metrics,
        }
    }

    /// Whether the daemon is connected.
    pub fn is_online(&self) -> bool {
        self.daemon.is_some()
    }

    /// The state of the pairing with `sid`, if open.
    pub fn pairing_state(&self, sid: u64) -> Option<PairingState> {
        self.pairings.get(&sid).map(|e| e.pairing.state())
    }

    /// Number of pairings in `state`.
    pub fn count_in_state(&self, state: PairingState) -> usize {
        self.pairings
            .values()
            .filter(|e| e.pairing.state() == state)
            .count()
    }

    /// Number of open pairings.
    pub fn pairing_count(&self) -> usize {
        self.pairings.len()
    }

    /// The earliest grace deadline, if a grace timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pairings
            .values()
            .filter_map(|e| e.pairing.poll_timeout())
            .min()
    }

    /// P1–P5 before the upgrade, with `connections_full` = the relay-wide cap is reached.
    /// On [`Admission::Pair`] (and on a `daemon_offline` refusal, so a token's sid is used
    /// once) the sid is reserved for the upgrade and remembered until `exp` + 30 s (P24).
    pub fn admit_client(
        &mut self,
        sid: u64,
        token_exp: i64,
        connections_full: bool,
        now: Instant,
        now_unix: u64,
    ) -> Admission {
        self.expire_remembered(now, now_unix);
        let sid_in_use = self.pairings.contains_key(&sid)
            || self.reserved.contains_key(&sid)
            || self.used.contains_key(&sid);
        let cap = self.cap.map_or(self.sessions_per_daemon, |c| {
            usize::try_from(c).unwrap_or(usize::MAX)
        });
        let sessions_full = self.daemon.is_some()
            && (self.pairings.len() + self.reserved.len() >= cap
                || self.used.len() >= self.max_used_sids);
        let status = if self.daemon.is_some() {
            DaemonStatus::Online
        } else {
            DaemonStatus::Offline
        };
        let admission = sp::admit_client(status, sid_in_use, sessions_full, connections_full);
        if matches!(admission, Admission::Pair | Admission::Refuse(_))
            && self.used.len() < self.max_used_sids
        {
            let exp = u64::try_from(token_exp).unwrap_or(0).max(now_unix);
            self.used.insert(sid, sp::sid_used_until(exp));
            if admission == Admission::Pair {
                self.reserved.insert(sid, now + self.reservation);
            }
        }
        admission
    }

    /// P1/P2: an admitted client finished its upgrade.
    pub fn client_connected(&mut self, conn: ConnId, sid: u64) -> Vec<Action> {
        self.reserved.remove(&sid);
        if self.daemon.is_none() {
            // P2 (the daemon left between admission and upgrade).
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
            return vec![
                Action::Send {
                    conn,
                    frame: control(ControlCode::Forbidden, 0),
                },
                Action::Close {
                    conn,
                    kind: CloseKind::AfterControl,
                },
            ];
        }
        // P1.
        self.pairings.insert(
            sid,
            Entry {
                client: conn,
                pairing: Pairing::with_grace(sid, self.grace_period),
            },
        );
        Vec::new()
    }

    /// Applies a pairing event and turns the pairing's actions into connection actions.
    fn apply(
        &mut self,
        sid: u64,
        event: Option<Event>,
        message: Option<&Bytes>,
        now: Instant,
    ) -> Vec<Action> {
        let daemon = self.daemon.map(|d| d.conn);
        let Some(entry) = self.pairings.get_mut(&sid) else {
            return Vec::new();
        };
        let steps = match event {
            Some(event) => entry.pairing.handle(event, now),
            None => entry.pairing.handle_timeout(now),
        };
        let client = entry.client;
        let closed = entry.pairing.state() == PairingState::Closed;
        if closed {
            self.pairings.remove(&sid);
        }
        let mut actions = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                sp::Action::ForwardToDaemon | sp::Action::ForwardToClient => {
                    let to = if step == sp::Action::ForwardToDaemon {
                        daemon
                    } else {
                        Some(client)
                    };
                    if let (Some(conn), Some(message)) = (to, message) {
                        if let Some(t) = message.first().copied().and_then(FrameType::from_u8) {
                            self.metrics.forwarded(t, message.len());
                        }
                        actions.push(Action::Send {
                            conn,
                            frame: message.clone(),
                        });
                    }
                }
                sp::Action::ControlToClient(code) => actions.push(Action::Send {
                    conn: client,
                    frame: control(code, sid),
                }),
                sp::Action::ControlToDaemon(code) => {
                    if let Some(conn) = daemon {
                        actions.push(Action::Send {
                            conn,
                            frame: control(code, sid),
                        });
                    }
                }
                sp::Action::CloseClient => actions.push(Action::Close {
                    conn: client,
                    kind: CloseKind::AfterControl,
                }),
                sp::Action::Drop(reason) => self.metrics.dropped(reason),
            }
        }
        actions
    }

    /// A binary message from the client connection `conn` whose token sid is `sid`.
    pub fn on_client_message(
        &mut self,
        conn: ConnId,
        sid: u64,
        message: Bytes,
        now: Instant,
    ) -> Vec<Action> {
        match validate(&message, Sender::Client { token_sid: sid }, |_| false) {
            Err(rejection) => self.reject_client(conn, sid, rejection, now),
            Ok(Verdict::Pong { payload }) => vec![Action::Send {
                conn,
                frame: Bytes::from(pong(payload)),
            }],
            Ok(Verdict::Liveness) | Ok(Verdict::Signal { .. }) => Vec::new(),
            // P6 / P20.
            Ok(Verdict::Forward { .. }) => {
                if self.pairings.get(&sid).is_none_or(|e| e.client != conn) {
                    return Vec::new();
                }
                self.apply(sid, Some(Event::ClientFrame), Some(&message), now)
            }
        }
    }

    /// A client connection refused by validation (text message, oversize message, or a
    /// failed section 7 check): Control, close, and the pairing ends.
    pub fn reject_client(
        &mut self,
        conn: ConnId,
        sid: u64,
        rejection: Rejection,
        now: Instant,
    ) -> Vec<Action> {
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
        actions.extend(self.client_closed(conn, sid, now));
        actions
    }

    /// P8/P15/P18/P22: the client connection `conn` (token sid `sid`) is gone.
    pub fn client_closed(&mut self, conn: ConnId, sid: u64, now: Instant) -> Vec<Action> {
        self.reserved.remove(&sid);
        if self.pairings.get(&sid).is_none_or(|e| e.client != conn) {
            return Vec::new();
        }
        let actions = self.apply(sid, Some(Event::ClientClosed), None, now);
        self.pairings.remove(&sid);
        actions
    }

    /// A daemon connection with a valid presence token. A previous connection is replaced
    /// (closed with 1008, no Control; its pairings pause, spec 8.4), then P12/P13 apply.
    pub fn daemon_connected(
        &mut self,
        conn: ConnId,
        resumable: bool,
        cap: Option<u64>,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(old) = self.daemon {
            actions.push(Action::Close {
                conn: old.conn,
                kind: CloseKind::Replaced,
            });
            actions.extend(self.daemon_closed(old.conn, now));
        }
        self.daemon = Some(DaemonLink { conn });
        self.cap = cap;
        let sids: Vec<u64> = self.pairings.keys().copied().collect();
        for sid in sids {
            actions.extend(self.apply(
                sid,
                Some(Event::DaemonReconnected { resumable }),
                None,
                now,
            ));
        }
        actions
    }

    /// A binary message from daemon connection `conn`.
    pub fn on_daemon_message(&mut self, conn: ConnId, message: Bytes, now: Instant) -> Vec<Action> {
        if self.daemon.is_none_or(|d| d.conn != conn) {
            // A replaced connection that is being closed.
            return Vec::new();
        }
        let pairings = &self.pairings;
        let verdict = validate(&message, Sender::Daemon, |sid| pairings.contains_key(&sid));
        match verdict {
            Err(rejection) => self.reject_daemon(conn, rejection, now),
            Ok(Verdict::Pong { payload }) => vec![Action::Send {
                conn,
                frame: Bytes::from(pong(payload)),
            }],
            Ok(Verdict::Liveness) => Vec::new(),
            // P10, P11, P16, P17.
            Ok(Verdict::Signal { sid, signal, .. }) => {
                self.apply(sid, Some(Event::DaemonSignal(signal)), None, now)
            }
            // P7, P21.
            Ok(Verdict::Forward { sid, .. }) => {
                self.apply(sid, Some(Event::DaemonFrame), Some(&message), now)
            }
        }
    }

    /// A daemon message refused by validation: Control to the daemon; sid 0 closes the
    /// daemon connection (its pairings pause, P23), a code with a sid ends at most that
    /// pairing (P25) and leaves the connection open.
    pub fn reject_daemon(
        &mut self,
        conn: ConnId,
        rejection: Rejection,
        now: Instant,
    ) -> Vec<Action> {
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
            actions.extend(self.apply(rejection.sid, Some(Event::DaemonProtocolError), None, now));
        }
        actions
    }

    /// P9/P23: the daemon connection `conn` is gone.
    pub fn daemon_closed(&mut self, conn: ConnId, now: Instant) -> Vec<Action> {
        if self.daemon.is_none_or(|d| d.conn != conn) {
            return Vec::new();
        }
        let sids: Vec<u64> = self.pairings.keys().copied().collect();
        let mut actions = Vec::new();
        for sid in sids {
            actions.extend(self.apply(sid, Some(Event::DaemonDisconnected), None, now));
        }
        self.daemon = None;
        actions
    }

    fn expire_remembered(&mut self, now: Instant, now_unix: u64) {
        self.reserved.retain(|_, deadline| now < *deadline);
        self.used.retain(|_, until| now_unix <= *until);
    }

    /// Timers: P14/P19 (grace end), reservations, remembered sids (P24).
    pub fn on_tick(&mut self, now: Instant, now_unix: u64) -> Vec<Action> {
        self.expire_remembered(now, now_unix);
        let due: Vec<u64> = self
            .pairings
            .iter()
            .filter(|(_, e)| e.pairing.poll_timeout().is_some_and(|d| now >= d))
            .map(|(&sid, _)| sid)
            .collect();
        let mut actions = Vec::new();
        for sid in due {
            actions.extend(self.apply(sid, None, None, now));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyline_sbrp::proto::frame::{Frame, SignalCode, SignalReason};
    use keyline_sbrp::proto::pairing::DropReason;

    const D: ConnId = 1;
    const C: ConnId = 2;

    fn core() -> DaemonCore {
        DaemonCore::new(&Limits::default(), Arc::new(Metrics::default()))
    }

    fn data(sid: u64) -> Bytes {
        Bytes::from(
            Frame::Data {
                sid,
                payload: &[9; 40],
            }
            .to_vec()
            .unwrap(),
        )
    }

    fn signal(sid: u64, signal: SignalCode) -> Bytes {
        Bytes::from(
            Frame::Signal {
                sid,
                signal,
                reason: SignalReason::None,
            }
            .to_vec()
            .unwrap(),
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
        actions
            .iter()
            .any(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn))
    }

    fn paired(now: Instant) -> DaemonCore {
        let mut core = core();
        assert!(core.daemon_connected(D, false, None, now).is_empty());
        assert_eq!(core.admit_client(5, 1000, false, now, 900), Admission::Pair);
        assert!(core.client_connected(C, 5).is_empty());
        core
    }

    #[test]
    fn p1_p6_p7_p8() {
        let now = Instant::now();
        let mut core = paired(now);
        assert_eq!(core.pairing_state(5), Some(PairingState::Paired));
        let a = core.on_client_message(C, 5, data(5), now);
        assert_eq!(sent(&a, D), vec![data(5)]);
        let a = core.on_daemon_message(D, data(5), now);
        assert_eq!(sent(&a, C), vec![data(5)]);
        let a = core.client_closed(C, 5, now);
        assert_eq!(sent(&a, D), vec![control(ControlCode::SessionEnded, 5)]);
        assert_eq!(core.pairing_state(5), None);
    }

    #[test]
    fn p2_p4_p5_p24() {
        let now = Instant::now();
        let mut core = core();
        assert_eq!(
            core.admit_client(5, 1000, false, now, 900),
            Admission::Refuse(ControlCode::DaemonOffline)
        );
        core.daemon_connected(D, false, Some(2), now);
        // P5: the sid stays used until exp + 30.
        assert_eq!(
            core.admit_client(5, 1000, false, now, 1030),
            Admission::Http(409, "sid_in_use")
        );
        assert_eq!(
            core.admit_client(5, 1000, false, now, 1031),
            Admission::Pair
        );
        // P4: cap 2 from the token's lim, one reserved already.
        assert_eq!(core.admit_client(6, 1000, false, now, 900), Admission::Pair);
        assert_eq!(
            core.admit_client(7, 1000, false, now, 900),
            Admission::Http(429, "too_many_sessions")
        );
        assert_eq!(
            core.admit_client(8, 1000, true, now, 900),
            Admission::Http(429, "too_many_connections")
        );
        // Reservations expire if the upgrade never completes.
        core.on_tick(now + Duration::from_secs(11), 900);
        assert_eq!(
            core.admit_client(9, 1000, false, now + Duration::from_secs(11), 900),
            Admission::Pair
        );
    }

    #[test]
    fn p9_p12_p16_resume() {
        let now = Instant::now();
        let mut core = paired(now);
        let a = core.daemon_closed(D, now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionPaused, 5)]);
        // P20.
        assert!(core.on_client_message(C, 5, data(5), now).is_empty());
        assert_eq!(core.metrics.drops(DropReason::Paused), 1);
        let a = core.daemon_connected(3, true, None, now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionPending, 5)]);
        // P21.
        assert!(core.on_daemon_message(3, data(5), now).is_empty());
        let a = core.on_daemon_message(3, signal(5, SignalCode::Ready), now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionResumed, 5)]);
        assert_eq!(core.pairing_state(5), Some(PairingState::Paired));
        // P11.
        assert!(
            core.on_daemon_message(3, signal(5, SignalCode::Ready), now)
                .is_empty()
        );
    }

    #[test]
    fn p13_p14_p10_p25() {
        let now = Instant::now();
        let mut core = paired(now);
        core.daemon_closed(D, now);
        let a = core.daemon_connected(3, false, None, now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);
        assert!(closes(&a, C));

        let mut core = paired(now);
        core.daemon_closed(D, now);
        assert_eq!(core.next_deadline(), Some(now + Duration::from_secs(30)));
        assert!(core.on_tick(now + Duration::from_secs(29), 900).is_empty());
        let a = core.on_tick(now + Duration::from_secs(30), 900);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);
        assert_eq!(core.pairing_count(), 0);

        let mut core = paired(now);
        let a = core.on_daemon_message(D, signal(5, SignalCode::Close), now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);

        let mut core = paired(now);
        let init = Bytes::from(
            Frame::HandshakeInit {
                sid: 5,
                client_ephemeral: [1; 32],
            }
            .to_vec()
            .unwrap(),
        );
        let a = core.on_daemon_message(D, init, now);
        assert_eq!(sent(&a, D), vec![control(ControlCode::DisallowedSender, 5)]);
        assert!(!closes(&a, D));
        assert_eq!(sent(&a, C), vec![control(ControlCode::SessionExpired, 5)]);
    }

    #[test]
    fn replacement_and_stale() {
        let now = Instant::now();
        let mut core = paired(now);
        let a = core.daemon_connected(3, true, None, now);
        assert!(a.contains(&Action::Close {
            conn: D,
            kind: CloseKind::Replaced
        }));
        assert_eq!(
            sent(&a, C),
            vec![
                control(ControlCode::SessionPaused, 5),
                control(ControlCode::SessionPending, 5)
            ]
        );
        // The old connection's messages and close are ignored.
        assert!(core.on_daemon_message(D, data(5), now).is_empty());
        assert!(core.daemon_closed(D, now).is_empty());
        assert!(core.is_online());
    }

    #[test]
    fn client_validation_ends_pairing() {
        let now = Instant::now();
        let mut core = paired(now);
        let a = core.on_client_message(C, 5, data(6), now);
        assert_eq!(sent(&a, C), vec![control(ControlCode::Forbidden, 0)]);
        assert!(closes(&a, C));
        assert_eq!(sent(&a, D), vec![control(ControlCode::SessionEnded, 5)]);
    }
}
