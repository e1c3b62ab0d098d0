//! The echo server behind `keyline kps serve` (spec §15): every stream is copied back until
//! EOF and then finished (FIN); every datagram is sent back.

use tokio::io::AsyncWriteExt as _;

use crate::connection::{Connection, Stream};
use crate::error::{Code, Error, Result};
use crate::quic::listener::Listener;

/// Accepts connections and echoes on each until the listener is closed.
pub async fn serve(listener: &Listener) -> Result<()> {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                tracing::debug!(remote = %conn.remote_address(), "connection");
                tokio::spawn(serve_connection(conn));
            }
            Err(Error::ListenerClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Echoes every stream and datagram of one connection until it closes.
pub async fn serve_connection(conn: Connection) {
    let datagrams = {
        let conn = conn.clone();
        tokio::spawn(async move {
            while let Ok(d) = conn.recv_datagram().await {
                if let Err(e) = conn.send_datagram(d) {
                    tracing::debug!(error = %e, "datagram echo failed");
                }
            }
        })
    };
    while let Ok(stream) = conn.accept_stream().await {
        tokio::spawn(echo_stream(stream));
    }
    datagrams.abort();
}

/// Copies a stream back to its sender, then finishes it; a read error resets the write half
/// with the same code.
pub async fn echo_stream(stream: Stream) {
    let (mut recv, mut send) = stream.into_split();
    match tokio::io::copy(&mut recv, &mut send).await {
        Ok(_) => {
            let _ = send.shutdown().await;
            let _ = send.stopped().await;
        }
        Err(e) => {
            let code = Error::of_io(&e).map_or(Code::InternalError, Error::code);
            send.reset_write(code);
        }
    }
}
