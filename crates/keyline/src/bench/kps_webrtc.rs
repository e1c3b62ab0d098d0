//! `keyline bench kps --webrtc`: WebRTC streams through keyline's listener — 8 MiB echo
//! throughput and connect time, Rust client ↔ listener — next to the QUIC path of the same
//! listener in interleaved rounds of the same run.
//!
//! Wall-clock figures on a 2-worker runtime (both ends in this process).

use std::time::Instant;

use keyline_kps::{Address, Config, Connection, Identity, Listener, dial_webrtc_with, dial_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Row;
use super::measure::summary;
use crate::error::{CliError, Result};

const AREA: &str = "kps";
/// The echo payload of the target (8 MiB).
const ECHO_BYTES: usize = 8 << 20;
const CHUNK: usize = 64 * 1024;
/// Pause between connects: under the listener's 8 new ufrags per second per source.
const CONNECT_PACING: std::time::Duration = std::time::Duration::from_millis(150);

fn rounds(quick: bool) -> usize {
    if quick { 3 } else { 9 }
}

fn connects_per_round(quick: bool) -> usize {
    if quick { 4 } else { 10 }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Quic,
    WebRtc,
}

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("starting the benchmark runtime"))?;
    runtime.block_on(measure(quick, print))
}

async fn measure(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let listener = Listener::bind("127.0.0.1:0", Identity::generate()?)?;
    let address = listener.address(None);
    let served = std::sync::Arc::new(listener);
    let server = {
        let listener = std::sync::Arc::clone(&served);
        tokio::spawn(async move { keyline_kps::echo::serve(&listener).await })
    };
    let config = Config::default();
    let (mut echo_rtc, mut echo_quic) = (Vec::new(), Vec::new());
    let (mut connect_rtc, mut connect_quic) = (Vec::new(), Vec::new());
    for _ in 0..rounds(quick) {
        echo_rtc.push(echo_round(&address, &config, Via::WebRtc).await?);
        echo_quic.push(echo_round(&address, &config, Via::Quic).await?);
        for _ in 0..connects_per_round(quick) {
            connect_rtc.push(connect_once(&address, &config, Via::WebRtc).await?);
            connect_quic.push(connect_once(&address, &config, Via::Quic).await?);
            // The listener admits 8 new WebRTC ufrags per second per source address (an
            // anti-probing bound); connecting faster would measure that bound instead.
            tokio::time::sleep(CONNECT_PACING).await;
        }
    }
    server.abort();

    let mbit = |secs: f64| ECHO_BYTES as f64 * 8.0 / secs / 1e6;
    let per_round: Vec<f64> = echo_quic
        .iter()
        .zip(&echo_rtc)
        .map(|(q, r)| q / r)
        .collect();
    let (median, fastest, slowest) = summary(&echo_rtc);
    print(&Row {
        area: AREA,
        metric: "WebRTC 8 MiB echo, Rust client (each way)".into(),
        value: mbit(median),
        unit: "Mbit/s",
        limit: Some((
            mbit(summary(&echo_quic).0),
            "QUIC 8 MiB echo, same listener".into(),
        )),
        ratio: Some(summary(&per_round).0),
        spread: (mbit(slowest), mbit(fastest)),
    });
    let ms = |secs: f64| secs * 1e3;
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        let rtc = percentile(&connect_rtc, p);
        let quic = percentile(&connect_quic, p);
        print(&Row {
            area: AREA,
            metric: format!("WebRTC connect {label} (dial to HELLO both ways)"),
            value: ms(rtc),
            unit: "ms",
            limit: Some((ms(quic), format!("QUIC connect {label}, same listener"))),
            ratio: Some(quic / rtc),
            spread: (ms(rtc), ms(rtc)),
        });
    }
    Ok(())
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

async fn dial(address: &Address, config: &Config, via: Via) -> Result<Connection> {
    Ok(match via {
        Via::Quic => dial_with(address, config).await?,
        Via::WebRtc => dial_webrtc_with(address, config).await?,
    })
}

/// Seconds from dial to an established connection.
async fn connect_once(address: &Address, config: &Config, via: Via) -> Result<f64> {
    let start = Instant::now();
    let connection = dial(address, config, via).await?;
    let secs = start.elapsed().as_secs_f64();
    connection.close(keyline_kps::Code::None);
    Ok(secs)
}

/// Seconds to send 8 MiB through the echo server and read them back (writing and reading
/// concurrently), on a fresh connection.
async fn echo_round(address: &Address, config: &Config, via: Via) -> Result<f64> {
    let connection = dial(address, config, via).await?;
    let (mut recv, mut send) = connection.open_stream().await?.into_split();
    let start = Instant::now();
    let write = async {
        let chunk = vec![7u8; CHUNK];
        let mut left = ECHO_BYTES;
        while left > 0 {
            let n = left.min(CHUNK);
            send.write_all(&chunk[..n]).await?;
            left -= n;
        }
        send.close_write().map_err(std::io::Error::other)
    };
    let read = async {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0usize;
        loop {
            match recv.read(&mut buf).await? {
                0 => return Ok::<_, std::io::Error>(total),
                n => total += n,
            }
        }
    };
    let (written, read) = tokio::join!(write, read);
    written.map_err(|e| CliError::Failed(format!("bench: echo write: {e}")))?;
    let received = read.map_err(|e| CliError::Failed(format!("bench: echo read: {e}")))?;
    let secs = start.elapsed().as_secs_f64();
    connection.close(keyline_kps::Code::None);
    if received != ECHO_BYTES {
        return Err(CliError::Failed(format!(
            "bench: echoed {received} of {ECHO_BYTES} bytes"
        )));
    }
    Ok(secs)
}
