//! The relay pairing state machine (spec 8.5): one test step per row P1–P25, on the sans-IO
//! machine (the relay crate repeats them over WebSockets).

use std::time::{Duration, Instant};

use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::SignalCode;
use keyline_sbrp::proto::pairing::*;

use Action::*;
use ControlCode as C;

fn paused(now: Instant) -> Pairing {
    let mut p = Pairing::new(5);
    p.handle(Event::DaemonDisconnected, now);
    p
}

fn pending(now: Instant) -> Pairing {
    let mut p = paused(now);
    p.handle(Event::DaemonReconnected { resumable: true }, now);
    p
}

#[test]
fn every_row() {
    let t = Instant::now();
    // P1
    let mut p = Pairing::new(5);
    assert_eq!((p.state(), p.sid()), (PairingState::Paired, 5));
    // P2-P5
    assert_eq!(
        admit_client(DaemonStatus::Offline, false, false, false),
        Admission::Refuse(C::DaemonOffline)
    );
    assert_eq!(
        admit_client(DaemonStatus::Unknown, false, false, false),
        Admission::Refuse(C::DaemonNotFound)
    );
    assert_eq!(
        admit_client(DaemonStatus::Online, false, true, false),
        Admission::Http(429, "too_many_sessions")
    );
    assert_eq!(
        admit_client(DaemonStatus::Online, false, false, true),
        Admission::Http(429, "too_many_connections")
    );
    assert_eq!(
        admit_client(DaemonStatus::Online, true, false, false),
        Admission::Http(409, "sid_in_use")
    );
    assert_eq!(
        admit_client(DaemonStatus::Online, false, false, false),
        Admission::Pair
    );
    // P6, P7, P11
    assert_eq!(p.handle(Event::ClientFrame, t), vec![ForwardToDaemon]);
    assert_eq!(p.handle(Event::DaemonFrame, t), vec![ForwardToClient]);
    assert_eq!(p.handle(Event::DaemonSignal(SignalCode::Ready), t), vec![]);
    assert_eq!(p.state(), PairingState::Paired);
    // P8
    assert_eq!(
        p.handle(Event::ClientClosed, t),
        vec![ControlToDaemon(C::SessionEnded)]
    );
    assert_eq!(p.state(), PairingState::Closed);
    assert_eq!(
        p.handle(Event::ClientFrame, t),
        vec![Drop(DropReason::Closed)]
    );
    // P9
    let mut p = Pairing::new(5);
    assert_eq!(
        p.handle(Event::DaemonDisconnected, t),
        vec![ControlToClient(C::SessionPaused)]
    );
    assert_eq!(p.poll_timeout(), Some(t + GRACE_PERIOD));
    // P10
    let mut p = Pairing::new(5);
    assert_eq!(
        p.handle(Event::DaemonSignal(SignalCode::Close), t),
        vec![ControlToClient(C::SessionExpired), CloseClient]
    );
    // P12
    let mut p = paused(t);
    assert_eq!(
        p.handle(Event::DaemonReconnected { resumable: true }, t),
        vec![ControlToClient(C::SessionPending)]
    );
    assert_eq!(p.state(), PairingState::Pending);
    // P13
    let mut p = paused(t);
    assert_eq!(
        p.handle(Event::DaemonReconnected { resumable: false }, t),
        vec![ControlToClient(C::SessionExpired), CloseClient]
    );
    // P14
    let mut p = paused(t);
    assert_eq!(p.handle_timeout(t + Duration::from_secs(29)), vec![]);
    assert_eq!(
        p.handle_timeout(t + GRACE_PERIOD),
        vec![ControlToClient(C::SessionExpired), CloseClient]
    );
    assert_eq!(p.poll_timeout(), None);
    // P15
    let mut p = paused(t);
    assert_eq!(p.handle(Event::ClientClosed, t), vec![]);
    assert_eq!(p.state(), PairingState::Closed);
    // P16
    let mut p = pending(t);
    assert_eq!(
        p.handle(Event::DaemonSignal(SignalCode::Ready), t),
        vec![ControlToClient(C::SessionResumed)]
    );
    assert_eq!((p.state(), p.poll_timeout()), (PairingState::Paired, None));
    // P17
    let mut p = pending(t);
    assert_eq!(
        p.handle(Event::DaemonSignal(SignalCode::Close), t),
        vec![ControlToClient(C::SessionExpired), CloseClient]
    );
    // P18
    let mut p = pending(t);
    assert_eq!(
        p.handle(Event::ClientClosed, t),
        vec![ControlToDaemon(C::SessionEnded)]
    );
    // P19
    let mut p = pending(t);
    assert_eq!(
        p.handle_timeout(t + GRACE_PERIOD),
        vec![ControlToClient(C::SessionExpired), CloseClient]
    );
    // P20
    assert_eq!(
        paused(t).handle(Event::ClientFrame, t),
        vec![Drop(DropReason::Paused)]
    );
    assert_eq!(
        pending(t).handle(Event::ClientFrame, t),
        vec![Drop(DropReason::Pending)]
    );
    // P21
    assert_eq!(
        pending(t).handle(Event::DaemonFrame, t),
        vec![Drop(DropReason::Pending)]
    );
    // P23 from Pending: paused again, new timer.
    let mut p = pending(t);
    let later = t + Duration::from_secs(10);
    assert_eq!(
        p.handle(Event::DaemonDisconnected, later),
        vec![ControlToClient(C::SessionPaused)]
    );
    assert_eq!(p.poll_timeout(), Some(later + GRACE_PERIOD));
    // P24
    assert_eq!(sid_used_until(1000), 1030);
    // P25
    for mut p in [Pairing::new(5), paused(t), pending(t)] {
        assert_eq!(
            p.handle(Event::DaemonProtocolError, t),
            vec![ControlToClient(C::SessionExpired), CloseClient]
        );
        assert_eq!(p.state(), PairingState::Closed);
    }
}
