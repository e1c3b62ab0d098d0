//! The relay's pairing state machine (section 8.5), sans-IO: one [`Pairing`] per
//! (daemon id, sid). The relay actor feeds it events and `now`, and carries out the
//! [`Action`]s it returns; the grace timer is a deadline it reports
//! ([`Pairing::poll_timeout`]).
//!
//! Admission before the upgrade (P2–P5) is [`admit_client`]; per-frame validation is
//! [`crate::proto::relay::validate`].

use std::time::{Duration, Instant};

use crate::proto::control::ControlCode;
use crate::proto::frame::SignalCode;

/// The grace period after a daemon disconnects: 30 s.
pub const GRACE_PERIOD: Duration = Duration::from_secs(30);

/// How long a sid stays *used* after its token's `exp` (P24): 30 s.
pub const SID_REUSE_GUARD: Duration = Duration::from_secs(30);

/// Pairing states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairingState {
    /// Both sides connected; frames flow.
    Paired,
    /// The daemon disconnected; the grace timer runs.
    Paused,
    /// A resumable daemon reconnected; waiting for its Signal.
    Pending,
    /// Over; the sid stays used until its token's `exp` + 30 s.
    Closed,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The client sent an Init or Data frame (already validated).
    ClientFrame,
    /// The daemon sent an Accept or Data frame for this sid (already validated).
    DaemonFrame,
    /// The daemon sent a Signal for this sid.
    DaemonSignal(SignalCode),
    /// The client WebSocket closed (by the client, or for backpressure / keepalive).
    ClientClosed,
    /// The daemon WebSocket closed or was replaced (also backpressure / keepalive).
    DaemonDisconnected,
    /// The daemon connected again; `resumable` = its token has `session:resume`.
    DaemonReconnected {
        /// Whether the daemon may resume sessions.
        resumable: bool,
    },
    /// The daemon committed a protocol error with this sid (`disallowed_sender`, P25).
    DaemonProtocolError,
}

/// Why a frame was dropped (metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The pairing is Paused.
    Paused,
    /// The pairing is Pending.
    Pending,
    /// The pairing is Closed.
    Closed,
}

/// What the relay must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forward the frame bytes unchanged to the daemon.
    ForwardToDaemon,
    /// Forward the frame bytes unchanged to the client.
    ForwardToClient,
    /// Send a Control frame with this code and the pairing's sid to the client.
    ControlToClient(ControlCode),
    /// Send a Control frame with this code and the pairing's sid to the daemon.
    ControlToDaemon(ControlCode),
    /// Close the client WebSocket (after the Control just queued).
    CloseClient,
    /// Drop the frame and count it.
    Drop(DropReason),
}

/// One pairing.
#[derive(Debug, Clone)]
pub struct Pairing {
    sid: u64,
    state: PairingState,
    grace_deadline: Option<Instant>,
    grace: Duration,
}

impl Pairing {
    /// P1: a client connected while the daemon is online: Paired, nothing sent yet.
    pub fn new(sid: u64) -> Self {
        Self::with_grace(sid, GRACE_PERIOD)
    }

    /// [`new`](Self::new) with another grace period.
    pub fn with_grace(sid: u64, grace: Duration) -> Self {
        Self {
            sid,
            state: PairingState::Paired,
            grace_deadline: None,
            grace,
        }
    }

    /// The sid.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The state.
    pub fn state(&self) -> PairingState {
        self.state
    }

    /// When the grace timer fires, if it runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.grace_deadline
    }

    /// P14 / P19: the grace period ended.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        match self.grace_deadline {
            Some(deadline) if now >= deadline => self.expire(),
            _ => Vec::new(),
        }
    }

    /// Applies an event.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        use PairingState::*;
        match (self.state, event) {
            (Closed, Event::ClientFrame | Event::DaemonFrame) => {
                vec![Action::Drop(DropReason::Closed)]
            }
            (Closed, _) => Vec::new(),
            // P6, P20
            (Paired, Event::ClientFrame) => vec![Action::ForwardToDaemon],
            (Paused, Event::ClientFrame) => vec![Action::Drop(DropReason::Paused)],
            (Pending, Event::ClientFrame) => vec![Action::Drop(DropReason::Pending)],
            // P7, P21
            (Paired, Event::DaemonFrame) => vec![Action::ForwardToClient],
            (Pending, Event::DaemonFrame) => vec![Action::Drop(DropReason::Pending)],
            (Paused, Event::DaemonFrame) => vec![Action::Drop(DropReason::Paused)],
            // P11, P16
            (Paired, Event::DaemonSignal(SignalCode::Ready)) => Vec::new(),
            (Pending, Event::DaemonSignal(SignalCode::Ready)) => {
                self.state = Paired;
                self.grace_deadline = None;
                vec![Action::ControlToClient(ControlCode::SessionResumed)]
            }
            (Paused, Event::DaemonSignal(SignalCode::Ready)) => Vec::new(),
            // P10, P17
            (_, Event::DaemonSignal(SignalCode::Close)) => self.expire(),
            // P8, P15, P18, P22
            (Paired | Pending, Event::ClientClosed) => {
                self.close();
                vec![Action::ControlToDaemon(ControlCode::SessionEnded)]
            }
            (Paused, Event::ClientClosed) => {
                self.close();
                Vec::new()
            }
            // P9, P23
            (Paired | Pending, Event::DaemonDisconnected) => {
                self.state = Paused;
                self.grace_deadline = now.checked_add(self.grace);
                vec![Action::ControlToClient(ControlCode::SessionPaused)]
            }
            (Paused, Event::DaemonDisconnected) => Vec::new(),
            // P12, P13
            (Paused, Event::DaemonReconnected { resumable: true }) => {
                self.state = Pending;
                vec![Action::ControlToClient(ControlCode::SessionPending)]
            }
            (Paused, Event::DaemonReconnected { resumable: false }) => self.expire(),
            (Paired | Pending, Event::DaemonReconnected { .. }) => Vec::new(),
            // P25
            (_, Event::DaemonProtocolError) => self.expire(),
        }
    }

    fn expire(&mut self) -> Vec<Action> {
        self.close();
        vec![
            Action::ControlToClient(ControlCode::SessionExpired),
            Action::CloseClient,
        ]
    }

    fn close(&mut self) {
        self.state = PairingState::Closed;
        self.grace_deadline = None;
    }
}

/// The relay's view of the token's daemon when a client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonStatus {
    /// Unknown to the registry.
    Unknown,
    /// Known, not connected.
    Offline,
    /// Connected.
    Online,
}

/// Admission of a client connection (P1–P5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// P1: upgrade and create a [`Pairing`].
    Pair,
    /// P2 / P3: upgrade, send this Control with the sid, close.
    Refuse(ControlCode),
    /// P4 / P5: answer before the upgrade with this HTTP status and error code.
    Http(u16, &'static str),
}

/// Decides what happens to a client with a valid token: sid reuse (409) and caps (429) are
/// checked before the daemon's status.
pub fn admit_client(
    daemon: DaemonStatus,
    sid_in_use: bool,
    daemon_sessions_full: bool,
    relay_connections_full: bool,
) -> Admission {
    if sid_in_use {
        Admission::Http(409, "sid_in_use")
    } else if relay_connections_full {
        Admission::Http(429, "too_many_connections")
    } else if daemon_sessions_full {
        Admission::Http(429, "too_many_sessions")
    } else {
        match daemon {
            DaemonStatus::Unknown => Admission::Refuse(ControlCode::DaemonNotFound),
            DaemonStatus::Offline => Admission::Refuse(ControlCode::DaemonOffline),
            DaemonStatus::Online => Admission::Pair,
        }
    }
}

/// P24: until when (Unix seconds) a closed pairing's sid counts as used.
pub fn sid_used_until(token_exp_unix: u64) -> u64 {
    token_exp_unix.saturating_add(SID_REUSE_GUARD.as_secs())
}
