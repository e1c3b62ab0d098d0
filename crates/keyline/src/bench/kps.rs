//! `keyline bench kps`: bulk throughput and handshakes through keyline's listener (the one-port
//! demux socket) and dialer, next to plain quinn endpoints with the same TLS and transport
//! settings, in interleaved rounds; plus the datagram echo rate.
//!
//! Wall-clock figures (both ends and quinn's drivers run on a 2-worker runtime, so thread CPU
//! time would miss half the work); the ratio is still taken per round, then the median.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keyline_kps::bench_support::{plain_client, plain_server};
use keyline_kps::{Address, Config, Identity, Listener, dial_with, echo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Row;
use super::measure::summary;
use crate::error::{CliError, Result};

const AREA: &str = "kps";
const CHUNK: usize = 64 * 1024;

fn rounds(quick: bool) -> usize {
    if quick { 5 } else { 11 }
}

fn bulk_bytes(quick: bool) -> usize {
    if quick { 32 << 20 } else { 128 << 20 }
}

fn handshakes_per_round(quick: bool) -> usize {
    if quick { 20 } else { 60 }
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
    let config = Config::default();
    let identity = Identity::generate()?;
    let listener = Listener::bind("127.0.0.1:0", identity.clone())?;
    let ours = listener.address(None);
    let plain = plain_server(&identity, &config, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let plain_addr = plain
        .local_addr()
        .map_err(CliError::io("plain endpoint address"))?;

    let (mut bulk_ours, mut bulk_plain, mut hs_ours, mut hs_plain) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds(quick) {
        bulk_ours.push(bulk_through_listener(&listener, &ours, &config, bulk_bytes(quick)).await?);
        bulk_plain
            .push(bulk_through_plain(&plain, plain_addr, &ours, &config, bulk_bytes(quick)).await?);
        hs_ours.push(
            handshakes_through_listener(&listener, &ours, &config, handshakes_per_round(quick))
                .await?,
        );
        hs_plain.push(
            handshakes_through_plain(
                &plain,
                plain_addr,
                &ours,
                &config,
                handshakes_per_round(quick),
            )
            .await?,
        );
    }
    let gbit = |secs: f64| bulk_bytes(quick) as f64 * 8.0 / secs / 1e9;
    print(&rate_row(
        "single-stream bulk throughput",
        &bulk_ours,
        &bulk_plain,
        gbit,
        "Gbit/s",
        "plain quinn, same TLS",
    ));
    let per_second = |secs: f64| 1.0 / secs;
    print(&rate_row(
        "handshakes per second (serial)",
        &hs_ours,
        &hs_plain,
        per_second,
        "1/s",
        "plain quinn, same TLS",
    ));

    let (rate, spread) = datagram_echo_rate(quick).await?;
    print(&Row {
        area: AREA,
        metric: "datagram echo round trips per second (1000 B, 32 in flight)".into(),
        value: rate,
        unit: "1/s",
        limit: None,
        ratio: None,
        spread,
    });
    Ok(())
}

/// A row from per-round seconds per unit: ours next to the plain endpoint.
fn rate_row(
    metric: &str,
    ours: &[f64],
    plain: &[f64],
    to_rate: impl Fn(f64) -> f64,
    unit: &'static str,
    what: &str,
) -> Row {
    let (median, fastest, slowest) = summary(ours);
    let per_round: Vec<f64> = plain.iter().zip(ours).map(|(p, o)| p / o).collect();
    Row {
        area: AREA,
        metric: metric.into(),
        value: to_rate(median),
        unit,
        limit: Some((to_rate(summary(plain).0), what.into())),
        ratio: Some(summary(&per_round).0),
        spread: (to_rate(slowest), to_rate(fastest)),
    }
}

async fn write_bulk<W: AsyncWriteExt + Unpin>(send: &mut W, bytes: usize) -> std::io::Result<()> {
    let chunk = vec![7u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        send.write_all(&chunk[..n]).await?;
        left -= n;
    }
    Ok(())
}

async fn read_all<R: AsyncReadExt + Unpin>(recv: &mut R) -> std::io::Result<usize> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match recv.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

fn io_failed(what: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Failed(format!("bench: {what}: {source}"))
}

/// Seconds to move `bytes` over one stream, client → listener.
async fn bulk_through_listener(
    listener: &Listener,
    addr: &Address,
    config: &Config,
    bytes: usize,
) -> Result<f64> {
    let (server, client) = tokio::join!(listener.accept(), dial_with(addr, config));
    let (server, client) = (server?, client?);
    let (_, mut send) = client.open_stream().await?.into_split();
    let start = Instant::now();
    let write = async {
        write_bulk(&mut send, bytes).await?;
        send.close_write().map_err(std::io::Error::other)
    };
    let read = async {
        let (mut recv, _) = server
            .accept_stream()
            .await
            .map_err(std::io::Error::other)?
            .into_split();
        read_all(&mut recv).await
    };
    let (written, read) = tokio::join!(write, read);
    written.map_err(io_failed("write"))?;
    let received = read.map_err(io_failed("read"))?;
    let secs = start.elapsed().as_secs_f64();
    check_received(received, bytes)?;
    client.close(keyline_kps::Code::from_wire(0));
    Ok(secs)
}

/// The same through plain quinn endpoints.
async fn bulk_through_plain(
    server: &quinn::Endpoint,
    at: SocketAddr,
    pin: &Address,
    config: &Config,
    bytes: usize,
) -> Result<f64> {
    let (endpoint, server_conn, client_conn) = plain_connect(server, at, pin, config).await?;
    let (mut send, _) = client_conn
        .open_bi()
        .await
        .map_err(|e| CliError::Failed(format!("bench: plain open: {e}")))?;
    let start = Instant::now();
    let write = async {
        write_bulk(&mut send, bytes).await?;
        send.finish().map_err(std::io::Error::other)
    };
    let read = async {
        let (_, mut recv) = server_conn
            .accept_bi()
            .await
            .map_err(std::io::Error::other)?;
        read_all(&mut recv).await
    };
    let (written, read) = tokio::join!(write, read);
    written.map_err(io_failed("plain write"))?;
    let received = read.map_err(io_failed("plain read"))?;
    let secs = start.elapsed().as_secs_f64();
    check_received(received, bytes)?;
    client_conn.close(0u32.into(), b"");
    endpoint.wait_idle().await;
    Ok(secs)
}

fn check_received(received: usize, bytes: usize) -> Result<()> {
    if received == bytes {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "bench: received {received} of {bytes} bytes"
        )))
    }
}

/// Seconds per handshake, `n` in a row, each with a fresh client endpoint.
async fn handshakes_through_listener(
    listener: &Listener,
    addr: &Address,
    config: &Config,
    n: usize,
) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        let (server, client) = tokio::join!(listener.accept(), dial_with(addr, config));
        let (server, client) = (server?, client?);
        client.close(keyline_kps::Code::from_wire(0));
        drop(server);
    }
    Ok(start.elapsed().as_secs_f64() / n as f64)
}

async fn handshakes_through_plain(
    server: &quinn::Endpoint,
    at: SocketAddr,
    pin: &Address,
    config: &Config,
    n: usize,
) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        let (_endpoint, server_conn, client_conn) = plain_connect(server, at, pin, config).await?;
        client_conn.close(0u32.into(), b"");
        drop(server_conn);
    }
    Ok(start.elapsed().as_secs_f64() / n as f64)
}

/// Connects a fresh plain client endpoint to the plain server: (client endpoint, server side,
/// client side).
async fn plain_connect(
    server: &quinn::Endpoint,
    at: SocketAddr,
    pin: &Address,
    config: &Config,
) -> Result<(quinn::Endpoint, quinn::Connection, quinn::Connection)> {
    let (endpoint, client_config) = plain_client(&pin.certhash(), config)?;
    let connecting = endpoint
        .connect_with(client_config, at, "127.0.0.1")
        .map_err(|e| CliError::Failed(format!("bench: plain connect: {e}")))?;
    let accept = async {
        server
            .accept()
            .await
            .ok_or_else(|| CliError::Failed("plain endpoint closed".into()))?
            .await
            .map_err(|e| CliError::Failed(format!("bench: plain accept: {e}")))
    };
    let (server_conn, client_conn) = tokio::join!(accept, connecting);
    let client_conn =
        client_conn.map_err(|e| CliError::Failed(format!("bench: plain dial: {e}")))?;
    Ok((endpoint, server_conn?, client_conn))
}

/// Round trips per second against `echo::serve`, 32 datagrams of 1000 bytes in flight.
async fn datagram_echo_rate(quick: bool) -> Result<(f64, (f64, f64))> {
    let listener = Listener::bind("127.0.0.1:0", Identity::generate()?)?;
    let addr = listener.address(None);
    let server = tokio::spawn(async move { echo::serve(&listener).await });
    let connection = dial_with(&addr, &Config::default()).await?;
    let payload = bytes::Bytes::from(vec![5u8; 1000]);
    let window = Duration::from_millis(if quick { 200 } else { 500 });
    let mut rates = Vec::new();
    for _ in 0..rounds(quick) {
        let start = Instant::now();
        let mut echoed = 0u64;
        while start.elapsed() < window {
            for _ in 0..32 {
                connection.send_datagram(payload.clone())?;
            }
            for _ in 0..32 {
                match tokio::time::timeout(Duration::from_millis(50), connection.recv_datagram())
                    .await
                {
                    Ok(received) => {
                        received?;
                        echoed += 1;
                    }
                    Err(_) => break, // a lost datagram: datagrams are unreliable
                }
            }
        }
        rates.push(echoed as f64 / start.elapsed().as_secs_f64());
    }
    connection.close(keyline_kps::Code::from_wire(0));
    server.abort();
    let (median, min, max) = summary(&rates);
    Ok((median, (min, max)))
}
