//! The tokio adapters: run the handshake over any `AsyncRead + AsyncWrite` under one deadline
//! and hand back a [`BoxStream`].

mod handshake;
mod stream;

pub use handshake::{ClientConfig, ServerConfig, accept, connect};
pub use stream::{BoxStream, BoxStreamReader, BoxStreamWriter};
