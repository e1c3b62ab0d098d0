//! `keyline bench bunker`: NIP-46 `sign_event` end to end — clients publish NIP-44 encrypted
//! kind 24133 requests to the embedded relay, the bunker checks and decides them (store,
//! permissions, caps, audit) and signs with the 2-of-3 threshold key whose nodes run as three
//! `keyline signer node` processes, the reply travels back through the relay and the client
//! decrypts and verifies it — next to raw threshold signing over the same node links, measured
//! in the same run in interleaved rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use keyline_signer::OsRng;
use keyline_signer::bunker::embedded::EmbeddedRelay;
use keyline_signer::bunker::engine::{CoordinatorKey, reply_event};
use keyline_signer::bunker::policy::{Decision, Grant};
use keyline_signer::bunker::service::{Bunker, BunkerConfig};
use keyline_signer::envelope::FileKek;
use keyline_signer::net::coordinator::{Coordinator, KeyHandle};
use keyline_signer::nip44::{self, ConversationKey};
use keyline_signer::nip46::{Response, SignedEvent};
use keyline_signer::store::{Connection, Store};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::Row;
use super::measure::summary;
use super::signer::{NodeProcesses, raw_request, threshold_key};
use crate::error::{CliError, Result};

const AREA: &str = "bunker";
/// Clients sending at once in the throughput phase (each one request at a time).
const CLIENTS: usize = 16;
const WAIT: Duration = Duration::from_secs(20);

fn rounds(quick: bool) -> usize {
    if quick { 3 } else { 7 }
}

fn per_round(quick: bool) -> usize {
    if quick { 64 } else { 192 }
}

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let nodes = NodeProcesses::start(3)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("starting the benchmark runtime"))?;
    let result = runtime.block_on(measure(quick, &nodes, print));
    drop(nodes);
    result
}

fn failed(what: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("bench bunker: {what}"))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn random_secret() -> Result<[u8; 32]> {
    loop {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(failed)?;
        if k256::schnorr::SigningKey::from_slice(&secret).is_ok() {
            return Ok(secret);
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A NIP-46 client: its key, its relay connection, the conversation key with the bunker.
struct Client {
    secret: [u8; 32],
    transport: [u8; 32],
    npub: [u8; 32],
    conversation: ConversationKey,
    ws: Ws,
    counter: u64,
}

impl Client {
    async fn connect(url: &str, transport: [u8; 32], npub: [u8; 32]) -> Result<(Client, [u8; 32])> {
        let secret = random_secret()?;
        let pubkey: [u8; 32] = k256::schnorr::SigningKey::from_slice(&secret)
            .map_err(failed)?
            .verifying_key()
            .to_bytes()
            .into();
        let conversation = ConversationKey::derive(&secret, &transport)?;
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(failed)?;
        let filter = json!({"kinds": [24133], "authors": [hex::encode(transport)], "#p": [hex::encode(pubkey)]});
        ws.send(Message::text(json!(["REQ", "r", filter]).to_string()))
            .await
            .map_err(failed)?;
        // Wait for EOSE so no reply can arrive before the subscription is live.
        loop {
            let text = next_text(&mut ws).await?;
            if text.starts_with("[\"EOSE\"") {
                break;
            }
        }
        Ok((
            Client {
                secret,
                transport,
                npub,
                conversation,
                ws,
                counter: 0,
            },
            pubkey,
        ))
    }

    /// One `sign_event` of kind 1, answered and verified.
    async fn sign_one(&mut self) -> Result<()> {
        self.counter += 1;
        let id = format!("b{}", self.counter);
        let unsigned = json!({"kind": 1, "content": format!("bench {}", self.counter), "tags": [], "created_at": unix_ms() / 1000}).to_string();
        let request = json!({"id": id, "method": "sign_event", "params": [unsigned]}).to_string();
        let content = nip44::encrypt_with_rng(&self.conversation, &request, &mut OsRng)?;
        let event = reply_event(&self.secret, &self.transport, content, unix_ms() / 1000)?;
        let frame = format!("[\"EVENT\",{}]", event.to_json());
        self.ws.send(Message::text(frame)).await.map_err(failed)?;
        loop {
            let text = next_text(&mut self.ws).await?;
            let value: Value = serde_json::from_str(&text).map_err(failed)?;
            if value[0] != "EVENT" {
                continue;
            }
            let reply = SignedEvent::parse(&value[2].to_string())?;
            reply.verify()?;
            let plain = nip44::decrypt(&self.conversation, &reply.content)?;
            let response = Response::parse(&plain)?;
            if response.id != id {
                continue;
            }
            let result = response
                .result
                .filter(|_| response.error.is_none())
                .ok_or_else(|| failed(format!("the bunker answered {:?}", response.error)))?;
            let signed = SignedEvent::parse(&result)?;
            signed.verify()?;
            if signed.pubkey != self.npub {
                return Err(failed("signed by another key"));
            }
            return Ok(());
        }
    }
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.to_string()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(failed(e)),
            Ok(None) => return Err(failed("the relay closed the connection")),
            Err(_) => return Err(failed("no answer within 20 s")),
        }
    }
}

struct Stack {
    bunker: Bunker<CoordinatorKey>,
    relay: EmbeddedRelay,
    _dir: tempfile::TempDir,
}

async fn stack(coordinator: &Coordinator, key: &KeyHandle) -> Result<Stack> {
    let dir = tempfile::tempdir().map_err(CliError::io("creating the bunker's home"))?;
    let store = Store::open(&dir.path().join("keyline.db")).await?;
    store
        .put_key(&key.key_id, &key.public, 1, unix_ms())
        .await?;
    let kek = FileKek::create(&dir.path().join("signer.kek"))?;
    store
        .seal_transport_key(&kek, "bench", &random_secret()?, unix_ms())
        .await?;
    let transport = store
        .open_transport_key(&kek)
        .await?
        .ok_or_else(|| failed("no transport key"))?;
    let relay = EmbeddedRelay::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let config = BunkerConfig {
        requests_per_minute: u32::MAX,
        ..BunkerConfig::new("http://127.0.0.1:9")
    };
    let bunker = Bunker::start(
        store,
        CoordinatorKey::new(coordinator.clone(), key.clone()),
        key.key_id,
        transport,
        vec![relay.url()],
        config,
    )
    .await?;
    let deadline = Instant::now() + WAIT;
    while !bunker.pool().status().iter().all(|s| s.subscribed) {
        if Instant::now() > deadline {
            return Err(failed("the bunker did not subscribe"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Stack {
        bunker,
        relay,
        _dir: dir,
    })
}

/// A client connected and allowed to sign kind 1 (caps lifted for the benchmark).
async fn client(stack: &Stack, npub: [u8; 32]) -> Result<Client> {
    let (client, pubkey) =
        Client::connect(&stack.relay.url(), stack.bunker.transport_pubkey(), npub).await?;
    let store = stack.bunker.store();
    let now = unix_ms();
    store
        .upsert_connection(&Connection {
            client: pubkey,
            key_id: [0; 16],
            origin: "bunker".into(),
            name: Some("bench".into()),
            url: None,
            image: None,
            relays: Vec::new(),
            encryption: None,
            connected_at_ms: now,
            last_seen_at_ms: None,
            logged_out_at_ms: None,
            revoked_at_ms: None,
        })
        .await?;
    let grant = Grant {
        per_minute: Some(u32::MAX / 2),
        per_day: Some(u32::MAX / 2),
        ..Grant::new("sign_event", Some(1), Decision::Allow)
    };
    store
        .put_grants(&pubkey, &[grant], false, "bench", now)
        .await?;
    Ok(client)
}

async fn measure(quick: bool, processes: &NodeProcesses, print: &dyn Fn(&Row)) -> Result<()> {
    let (coordinator, key, public) = threshold_key(processes).await?;
    let npub = public.npub();
    let stack = stack(&coordinator, &key).await?;
    let mut single = client(&stack, npub).await?;
    let mut many = Vec::new();
    for _ in 0..CLIENTS {
        many.push(client(&stack, npub).await?);
    }
    // Warm-up: links, relay connections, SQLite pages.
    for _ in 0..8 {
        single.sign_one().await?;
    }

    let n = per_round(quick);
    let (mut e2e_latency, mut raw_latency) = (Vec::new(), Vec::new());
    let (mut e2e_rate, mut raw_rate, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut counter = 0u64;
    for _ in 0..rounds(quick) {
        // Latency: one request at a time.
        for _ in 0..n / 4 {
            let t = Instant::now();
            single.sign_one().await?;
            e2e_latency.push(t.elapsed().as_secs_f64());
            counter += 1;
            let t = Instant::now();
            coordinator
                .sign(&key, raw_request(key.key_id, counter))
                .await?;
            raw_latency.push(t.elapsed().as_secs_f64());
        }
        // Throughput: CLIENTS clients, or CLIENTS raw requests, in flight.
        let each = n / CLIENTS;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for mut c in many.drain(..) {
            tasks.spawn(async move {
                for _ in 0..each {
                    c.sign_one().await?;
                }
                Ok::<_, CliError>(c)
            });
        }
        while let Some(done) = tasks.join_next().await {
            many.push(done.map_err(failed)??);
        }
        let ours = (each * CLIENTS) as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let coordinator = coordinator.clone();
            let key = Arc::clone(&key);
            let first = counter;
            counter += each as u64 + 1;
            tasks.spawn(async move {
                for i in 0..each {
                    coordinator
                        .sign(&key, raw_request(key.key_id, first + i as u64))
                        .await?;
                }
                Ok::<_, keyline_signer::Error>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(failed)??;
        }
        let raw = (each * CLIENTS) as f64 / start.elapsed().as_secs_f64();
        e2e_rate.push(ours);
        raw_rate.push(raw);
        ratios.push(ours / raw);
    }
    stack.bunker.shutdown().await;
    stack.relay.shutdown().await;

    let (ours, slow, fast) = summary(&e2e_rate);
    print(&Row {
        area: AREA,
        metric: format!("sign_event/s end to end, {CLIENTS} clients"),
        value: ours,
        unit: "1/s",
        limit: Some((
            summary(&raw_rate).0,
            format!("raw threshold signing over the same links, {CLIENTS} in flight"),
        )),
        ratio: Some(summary(&ratios).0),
        spread: (slow.min(fast), fast.max(slow)),
    });
    for (what, values) in [
        ("sign_event end to end", &mut e2e_latency),
        ("raw threshold signature over the links", &mut raw_latency),
    ] {
        values.sort_by(f64::total_cmp);
        let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize] * 1e3;
        for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
            print(&Row {
                area: AREA,
                metric: format!("{name} latency, {what}"),
                value: at(p),
                unit: "ms",
                limit: None,
                ratio: None,
                spread: (at(0.0), at(1.0)),
            });
        }
    }
    Ok(())
}
