//! `keyline kps serve|dial|certhash`, keeping the upstream harness contract (kps.md §15).

use std::path::PathBuf;
use std::time::Duration;

use keyline_core::Home;
use keyline_kps::{
    Address, Code, Config, Connection, Identity, Listener, dial_webrtc_with, dial_with, echo,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{KpsCommand, KpsTransport};
use crate::error::{CliError, Result};
use crate::output::announce;

/// How long a datagram echo is awaited before the datagram is sent again.
const DATAGRAM_WAIT: Duration = Duration::from_millis(300);
/// Pause after a failed datagram send.
const DATAGRAM_RETRY: Duration = Duration::from_millis(50);
/// Time given to a connection close to reach the peer before the process exits.
const CLOSE_FLUSH: Duration = Duration::from_millis(100);

pub(crate) async fn run(home: &Home, command: KpsCommand, json: bool) -> Result<()> {
    match command {
        KpsCommand::Serve { listen, key, ip } => {
            let listener = bind(home, &listen, key)?;
            let address = listener.address(ip);
            if json {
                announce(&announcement(&listener, &address));
            } else {
                announce_text(&format!("listening; dial with kps.dial(\"{address}\")"));
            }
            tokio::select! {
                served = echo::serve(&listener) => Ok(served?),
                () = crate::serve_cmd::shutdown_signal() => Ok(()),
            }
        }
        KpsCommand::Dial {
            addr,
            transport,
            message,
            repeat,
            timeout,
            closecode,
            datagram,
        } => {
            let address: Address = addr
                .parse()
                .map_err(|err| CliError::Usage(format!("--addr {addr:?}: {err}")))?;
            let dial = Dial {
                address,
                transport,
                message,
                repeat,
                timeout,
                closecode,
            };
            if datagram {
                dial.datagram().await
            } else {
                dial.stream().await
            }
        }
        KpsCommand::Certhash { file } => {
            let identity = Identity::load(&file)?;
            println!("{}", identity.certhash());
            Ok(())
        }
    }
}

/// Loads or creates the key file (default `<home>/kps.key`) and binds a listener.
pub(crate) fn bind(home: &Home, listen: &str, key: Option<PathBuf>) -> Result<Listener> {
    let path = match key {
        Some(path) => path,
        None => {
            home.ensure()?;
            home.path().join("kps.key")
        }
    };
    let (identity, created) = Identity::load_or_create(&path)?;
    if created {
        tracing::info!(path = %path.display(), certhash = %identity.certhash(), "created a new KPS identity");
    }
    Ok(Listener::bind(listen, identity)?)
}

/// `{"listen", "address", "certhash"}`.
pub(crate) fn announcement(listener: &Listener, address: &Address) -> serde_json::Value {
    json!({
        "listen": listener.local_addr().to_string(),
        "address": address.to_string(),
        "certhash": listener.identity().certhash().to_string(),
    })
}

fn announce_text(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One `keyline kps dial` run.
struct Dial {
    address: Address,
    transport: KpsTransport,
    message: String,
    repeat: usize,
    timeout: Duration,
    closecode: u64,
}

impl Dial {
    fn config(&self) -> Config {
        let mut config = Config::default();
        config.dial_timeout = self.timeout;
        config
    }

    /// Over WebRTC the server answers nothing to a wrong certhash (the ICE password derives
    /// from it), so a timeout is all a client sees.
    fn silence_hint(&self) -> &'static str {
        match self.transport {
            KpsTransport::Quic => "",
            KpsTransport::Webrtc => {
                " (over WebRTC a wrong certhash and an unreachable server both look like silence)"
            }
        }
    }

    async fn connect(&self) -> keyline_kps::Result<Connection> {
        match self.transport {
            KpsTransport::Quic => dial_with(&self.address, &self.config()).await,
            KpsTransport::Webrtc => dial_webrtc_with(&self.address, &self.config()).await,
        }
    }

    /// Stream mode: send the payload, close our half, read the echo to EOF, compare.
    async fn stream(&self) -> Result<()> {
        let payload = self.message.repeat(self.repeat).into_bytes();
        let exchange = async {
            let connection = self.connect().await?;
            let (mut recv, mut send) = connection.open_stream().await?.into_split();
            let write = async {
                send.write_all(&payload).await?;
                send.close_write().map_err(std::io::Error::other)
            };
            let read = async {
                let mut echoed = Vec::with_capacity(payload.len());
                recv.read_to_end(&mut echoed).await.map(|_| echoed)
            };
            let (written, echoed) = tokio::join!(write, read);
            written.map_err(keyline_kps::Error::from_io)?;
            let echoed = echoed.map_err(keyline_kps::Error::from_io)?;
            Ok::<_, keyline_kps::Error>((connection, echoed))
        };
        let (connection, echoed) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                CliError::Failed(format!(
                    "dial: no complete echo within {:?}{}",
                    self.timeout,
                    self.silence_hint()
                ))
            })??;
        self.close(&connection).await;
        if echoed != payload {
            return Err(CliError::Failed(format!(
                "dial: echo mismatch: sent {} bytes, got {} bytes",
                payload.len(),
                echoed.len()
            )));
        }
        if self.repeat > 1 {
            println!("echoed {} bytes OK", echoed.len());
        } else {
            print_raw(&echoed);
        }
        Ok(())
    }

    /// Datagram mode: send, wait up to 300 ms for the echo, repeat until the timeout.
    async fn datagram(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let connection = tokio::time::timeout_at(deadline, self.connect())
            .await
            .map_err(|_| {
                CliError::Failed(format!(
                    "dial: not connected within {:?}{}",
                    self.timeout,
                    self.silence_hint()
                ))
            })??;
        let message = bytes::Bytes::from(self.message.clone().into_bytes());
        let echoed = loop {
            if tokio::time::Instant::now() >= deadline {
                self.close(&connection).await;
                return Err(CliError::Failed(format!(
                    "dial: no datagram echo within {:?}",
                    self.timeout
                )));
            }
            if let Err(err) = connection.send_datagram(message.clone()) {
                tracing::debug!(%err, "datagram send failed; retrying");
                tokio::time::sleep(DATAGRAM_RETRY).await;
                continue;
            }
            if let Ok(received) =
                tokio::time::timeout(DATAGRAM_WAIT, connection.recv_datagram()).await
            {
                break received?;
            }
        };
        self.close(&connection).await;
        if echoed != message {
            return Err(CliError::Failed(format!(
                "dial: echo mismatch: sent {} bytes, got {} bytes",
                message.len(),
                echoed.len()
            )));
        }
        print_raw(&echoed);
        Ok(())
    }

    async fn close(&self, connection: &keyline_kps::Connection) {
        connection.close(Code::from_wire(self.closecode));
        tokio::time::sleep(CLOSE_FLUSH).await;
    }
}

fn print_raw(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// Rewrites the upstream single-dash spellings (`-listen`, `-addr=…`) of `keyline kps …`
/// to clap's double-dash form, so the upstream interop harness can call keyline directly.
pub(crate) fn rewrite_single_dash(args: Vec<String>) -> Vec<String> {
    if args.get(1).map(String::as_str) != Some("kps") {
        return args;
    }
    args.into_iter()
        .map(|arg| {
            let name = arg.strip_prefix('-').unwrap_or_default();
            let bare = name.split('=').next().unwrap_or_default();
            if !arg.starts_with("--")
                && bare.len() > 1
                && bare.chars().all(|c| c.is_ascii_lowercase())
            {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_flags_become_double_dash_for_kps_only() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            rewrite_single_dash(args(
                "keyline kps serve -listen 127.0.0.1:0 -ip 127.0.0.1 -key=/k -v"
            )),
            args("keyline kps serve --listen 127.0.0.1:0 --ip 127.0.0.1 --key=/k -v")
        );
        assert_eq!(
            rewrite_single_dash(args("keyline shs serve -listen x")),
            args("keyline shs serve -listen x")
        );
        assert_eq!(
            rewrite_single_dash(args("keyline kps dial --addr a -datagram")),
            args("keyline kps dial --addr a --datagram")
        );
    }
}
