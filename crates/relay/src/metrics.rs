//! Relay metrics (spec 8.8), rendered as Prometheus text at `GET /metrics`.
//!
//! Counters are plain atomics; nothing here reads payloads or identifiers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::FrameType;

use crate::error::TokenError;

pub use keyline_sbrp::proto::pairing::DropReason;

const FORWARDED: [FrameType; 3] = [
    FrameType::HandshakeInit,
    FrameType::HandshakeAccept,
    FrameType::Data,
];

fn type_name(t: FrameType) -> &'static str {
    match t {
        FrameType::HandshakeInit => "handshake_init",
        FrameType::HandshakeAccept => "handshake_accept",
        FrameType::Data => "data",
        FrameType::Signal => "signal",
        FrameType::Ping => "ping",
        FrameType::Pong => "pong",
        FrameType::Control => "control",
    }
}

/// The relay's counters and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open client connections.
    pub client_connections: AtomicU64,
    /// Open daemon connections.
    pub daemon_connections: AtomicU64,
    frames_forwarded: [AtomicU64; 3],
    bytes_forwarded: [AtomicU64; 3],
    drops_paused: AtomicU64,
    drops_pending: AtomicU64,
    drops_closed: AtomicU64,
    /// `rate_limited` Control frames sent.
    pub rate_limited: AtomicU64,
    /// Connections closed for backpressure.
    pub backpressure_closes: AtomicU64,
    /// Connections closed by keepalive.
    pub keepalive_closes: AtomicU64,
    /// Connections closed by the write timeout.
    pub write_timeout_closes: AtomicU64,
    validation: [AtomicU64; 18],
    token_rejections: [AtomicU64; 32],
    /// HTTP 409 `sid_in_use` answers.
    pub sid_in_use: AtomicU64,
    /// HTTP 429 answers.
    pub too_many: AtomicU64,
}

impl Metrics {
    pub(crate) fn forwarded(&self, frame_type: FrameType, len: usize) {
        if let Some(i) = FORWARDED.iter().position(|&t| t == frame_type) {
            self.frames_forwarded[i].fetch_add(1, Relaxed);
            self.bytes_forwarded[i].fetch_add(len as u64, Relaxed);
        }
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        match reason {
            DropReason::Paused => self.drops_paused.fetch_add(1, Relaxed),
            DropReason::Pending => self.drops_pending.fetch_add(1, Relaxed),
            DropReason::Closed => self.drops_closed.fetch_add(1, Relaxed),
        };
    }

    pub(crate) fn validation_failure(&self, code: ControlCode) {
        let i = ControlCode::ALL
            .iter()
            .position(|&c| c == code)
            .unwrap_or(ControlCode::ALL.len());
        if let Some(counter) = self.validation.get(i) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn token_rejected(&self, reason: TokenError) {
        if let Some(counter) = self.token_rejections.get(reason.index()) {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Frames forwarded of one type.
    pub fn frames_forwarded(&self, frame_type: FrameType) -> u64 {
        FORWARDED
            .iter()
            .position(|&t| t == frame_type)
            .map_or(0, |i| self.frames_forwarded[i].load(Relaxed))
    }

    /// Frames dropped for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Paused => self.drops_paused.load(Relaxed),
            DropReason::Pending => self.drops_pending.load(Relaxed),
            DropReason::Closed => self.drops_closed.load(Relaxed),
        }
    }

    /// Validation failures answered with `code`.
    pub fn validation_failures(&self, code: ControlCode) -> u64 {
        ControlCode::ALL
            .iter()
            .position(|&c| c == code)
            .and_then(|i| self.validation.get(i))
            .map_or(0, |c| c.load(Relaxed))
    }

    /// Token rejections for `reason`.
    pub fn token_rejections(&self, reason: TokenError) -> u64 {
        self.token_rejections
            .get(reason.index())
            .map_or(0, |c| c.load(Relaxed))
    }

    /// Prometheus text exposition. `pairings` gives the pairing gauge by state.
    pub fn render(&self, pairings: [(&str, u64); 3]) -> String {
        let mut out = String::new();
        let mut line = |name: &str, labels: &str, value: u64| {
            let _ = if labels.is_empty() {
                writeln!(out, "{name} {value}")
            } else {
                writeln!(out, "{name}{{{labels}}} {value}")
            };
        };
        line(
            "sbrp_relay_connections",
            "role=\"client\"",
            self.client_connections.load(Relaxed),
        );
        line(
            "sbrp_relay_connections",
            "role=\"daemon\"",
            self.daemon_connections.load(Relaxed),
        );
        for (state, n) in pairings {
            line("sbrp_relay_pairings", &format!("state=\"{state}\""), n);
        }
        for (i, t) in FORWARDED.iter().enumerate() {
            let label = format!("type=\"{}\"", type_name(*t));
            line(
                "sbrp_relay_frames_forwarded_total",
                &label,
                self.frames_forwarded[i].load(Relaxed),
            );
            line(
                "sbrp_relay_bytes_forwarded_total",
                &label,
                self.bytes_forwarded[i].load(Relaxed),
            );
        }
        line(
            "sbrp_relay_handshakes_seen_total",
            "",
            self.frames_forwarded[0].load(Relaxed),
        );
        line(
            "sbrp_relay_drops_total",
            "reason=\"paused\"",
            self.drops_paused.load(Relaxed),
        );
        line(
            "sbrp_relay_drops_total",
            "reason=\"pending\"",
            self.drops_pending.load(Relaxed),
        );
        line(
            "sbrp_relay_drops_total",
            "reason=\"closed\"",
            self.drops_closed.load(Relaxed),
        );
        line(
            "sbrp_relay_rate_limited_total",
            "",
            self.rate_limited.load(Relaxed),
        );
        line(
            "sbrp_relay_backpressure_closes_total",
            "",
            self.backpressure_closes.load(Relaxed),
        );
        line(
            "sbrp_relay_keepalive_closes_total",
            "",
            self.keepalive_closes.load(Relaxed),
        );
        line(
            "sbrp_relay_write_timeout_closes_total",
            "",
            self.write_timeout_closes.load(Relaxed),
        );
        for (i, code) in ControlCode::ALL.iter().enumerate() {
            let n = self.validation.get(i).map_or(0, |c| c.load(Relaxed));
            if n > 0 {
                line(
                    "sbrp_relay_validation_failures_total",
                    &format!("code=\"{}\"", code.name()),
                    n,
                );
            }
        }
        for reason in TokenError::ALL {
            line(
                "sbrp_relay_token_rejections_total",
                &format!("reason=\"{}\"", reason.reason()),
                self.token_rejections(*reason),
            );
        }
        line(
            "sbrp_relay_sid_in_use_total",
            "",
            self.sid_in_use.load(Relaxed),
        );
        line("sbrp_relay_too_many_total", "", self.too_many.load(Relaxed));
        out
    }
}
