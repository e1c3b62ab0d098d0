//! The sans-IO protocol core: no sockets, no clocks, no tasks. Bytes in, bytes out.

pub mod boxstream;
pub(crate) mod crypto;
pub mod handshake;
pub mod outcome;
pub(crate) mod secretbox;

pub use boxstream::{BoxDecoder, BoxEncoder};
pub use handshake::{
    ClientAwaitingAccept, ClientAwaitingHello, ClientHandshake, ServerAuthorizing,
    ServerAwaitingAuth, ServerHandshake,
};
pub use outcome::{DirectionKeys, HandshakeOutcome};
pub use secretbox::BACKEND as SECRETBOX_BACKEND;
