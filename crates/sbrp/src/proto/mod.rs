//! The sans-IO core: bytes and `now` in; bytes, errors and deadlines out. No sockets, no
//! runtime, no clock.
//!
//! | module | spec | what |
//! |---|---|---|
//! | [`frame`] | 2 | SBRP frame codec |
//! | [`control`] | 6 | Control codes, terminality, sid scope |
//! | [`handshake`] | 3 | handshake formulas, daemon and client sides |
//! | [`session`] | 4 | sealing, replay window, exhaustion |
//! | [`trust`] | 5 | fingerprints and the trust decision |
//! | [`sid`] | 8.2 | the base64url sid of tokens |
//! | [`sbp`] | 9, 11 | SBP frames, handshake JSON, chunking |
//! | [`rpc`] | 10 | the RPC/event envelope |
//! | [`relay`] | 7 | relay frame validation |
//! | [`pairing`] | 8.5 | relay pairing state machine |

pub mod control;
pub mod frame;
pub mod handshake;
pub mod pairing;
pub mod relay;
pub mod rpc;
pub mod sbp;
pub mod session;
pub mod sid;
pub mod trust;

pub use control::{ControlCode, SdkCode, SidScope};
pub use frame::{Accept, Frame, FrameType, Header, SignalCode, SignalReason};
pub use handshake::{ClientHandshake, DaemonIdentity};
pub use pairing::Pairing;
pub use relay::{Rejection, Sender, Verdict};
pub use sbp::{SbpEndpoint, SbpEvent, SbpFrame, SbpHandshake};
pub use session::{Direction, Opener, Role, Sealer, Session, SessionConfig, SessionKeys};
pub use trust::{TrustDecision, fingerprint};
