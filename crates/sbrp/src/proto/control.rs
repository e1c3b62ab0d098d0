//! Relay → endpoint Control codes (spec section 6) and the SDK-only error codes.

use std::fmt;

/// Which sid a Control code is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SidScope {
    /// Connection-level: header sid 0.
    Connection,
    /// Session-level: the session's sid.
    Session,
}

macro_rules! control_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $terminal:literal, $scope:ident; )*) => {
        /// A Control code. Codes outside the spec's table decode as [`ControlCode::Unknown`]
        /// and are terminal (fail-safe).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ControlCode {
            $( $(#[$doc])* $variant, )*
            /// A code not in the table; treated as terminal.
            Unknown(u16),
        }

        impl ControlCode {
            /// Every code of the table, in table order.
            pub const ALL: &'static [ControlCode] = &[$(ControlCode::$variant),*];

            /// The code from its wire value.
            pub fn from_u16(code: u16) -> Self {
                match code {
                    $( $code => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }

            /// The wire value.
            pub fn to_u16(self) -> u16 {
                match self {
                    $( Self::$variant => $code, )*
                    Self::Unknown(code) => code,
                }
            }

            /// The spec's snake_case name (`"unknown"` for codes outside the table).
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Unknown(_) => "unknown",
                }
            }

            /// Terminal: the relay closes the WebSocket after sending it (on a daemon
            /// connection, a terminal code with a sid ends only that pairing). Unknown codes
            /// are terminal.
            pub fn is_terminal(self) -> bool {
                match self {
                    $( Self::$variant => $terminal, )*
                    Self::Unknown(_) => true,
                }
            }

            /// Which sid the relay sends the code with; `None` for unknown codes.
            pub fn sid_scope(self) -> Option<SidScope> {
                match self {
                    $( Self::$variant => Some(SidScope::$scope), )*
                    Self::Unknown(_) => None,
                }
            }
        }
    };
}

control_codes! {
    /// Token invalid or expired.
    Unauthorized = 0x0101, "unauthorized", true, Connection;
    /// Valid token, action not allowed (also: client Init/Data with a foreign sid).
    Forbidden = 0x0102, "forbidden", true, Connection;
    /// The token's daemon id is unknown to the relay.
    DaemonNotFound = 0x0201, "daemon_not_found", true, Session;
    /// The daemon is not connected when the client connects.
    DaemonOffline = 0x0202, "daemon_offline", true, Session;
    /// A frame names a sid with no pairing.
    SessionNotFound = 0x0301, "session_not_found", true, Session;
    /// Grace expired, `Signal(close)`, or a non-resumable daemon reconnected.
    SessionExpired = 0x0302, "session_expired", true, Session;
    /// Short header, length mismatch, text message, bad Signal payload.
    MalformedFrame = 0x0401, "malformed_frame", true, Connection;
    /// Declared length above 65 536, or Ping/Pong payload above 8.
    PayloadTooLarge = 0x0402, "payload_too_large", true, Connection;
    /// Unknown type byte.
    InvalidFrameType = 0x0403, "invalid_frame_type", true, Connection;
    /// Session-bound frame with sid 0, or Ping/Pong with sid ≠ 0.
    InvalidSessionId = 0x0404, "invalid_session_id", true, Connection;
    /// The sender may not send this frame type (sid = the header's sid).
    DisallowedSender = 0x0405, "disallowed_sender", true, Session;
    /// Unrecoverable relay failure.
    InternalError = 0x0601, "internal_error", true, Connection;
    /// The connection exceeds its frame rate (informational).
    RateLimited = 0x0901, "rate_limited", false, Connection;
    /// The connection's send queue is full.
    Backpressure = 0x0902, "backpressure", true, Connection;
    /// To the client: the daemon disconnected.
    SessionPaused = 0x1001, "session_paused", false, Session;
    /// To the client: the daemon sent `Signal(ready)`.
    SessionResumed = 0x1002, "session_resumed", false, Session;
    /// To the daemon: the client disconnected.
    SessionEnded = 0x1003, "session_ended", false, Session;
    /// To the client: a resumable daemon reconnected, awaiting its Signal.
    SessionPending = 0x1004, "session_pending", false, Session;
}

impl fmt::Display for ControlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:04X})", self.name(), self.to_u16())
    }
}

/// Error codes that never appear on the wire: what an endpoint reports locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum SdkCode {
    /// The daemon's identity key differs from the pinned one.
    IdentityKeyChanged = 0xE001,
    /// Signature verification or another handshake step failed.
    HandshakeFailed = 0xE002,
    /// The 30 s handshake deadline passed.
    HandshakeTimeout = 0xE003,
    /// A Data frame failed to open.
    DecryptFailed = 0xE004,
    /// A Data frame's sequence number is a duplicate or older than the window.
    SequenceError = 0xE005,
}

impl SdkCode {
    /// Every SDK code.
    pub const ALL: [SdkCode; 5] = [
        Self::IdentityKeyChanged,
        Self::HandshakeFailed,
        Self::HandshakeTimeout,
        Self::DecryptFailed,
        Self::SequenceError,
    ];

    /// The numeric code.
    pub fn to_u16(self) -> u16 {
        self as u16
    }

    /// The spec's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::IdentityKeyChanged => "identity_key_changed",
            Self::HandshakeFailed => "handshake_failed",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::DecryptFailed => "decrypt_failed",
            Self::SequenceError => "sequence_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown() {
        for &c in ControlCode::ALL {
            assert_eq!(ControlCode::from_u16(c.to_u16()), c);
            assert!(c.sid_scope().is_some());
        }
        let u = ControlCode::from_u16(0x0903);
        assert_eq!(u, ControlCode::Unknown(0x0903));
        assert!(u.is_terminal());
        assert_eq!(u.to_string(), "unknown (0x0903)");
    }
}
