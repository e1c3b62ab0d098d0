//! `keyline bench signer`: 2-of-3 threshold signatures over node links, with the three nodes in
//! separate `keyline signer node` processes on loopback (real SHS links, a real DKG), next to
//! raw FROST with every party in this process and raw single-key BIP340 signing, measured in
//! the same run in interleaved rounds.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyline_signer::ceremony::{DkgConfig, DkgSession};
use keyline_signer::descriptor::NodeDescriptor;
use keyline_signer::net::coordinator::{Coordinator, KeyHandle, NodeAddr, NodeEndpoint};
use keyline_signer::session::SignRequest;
use keyline_signer::wire::{Participant, RequestContext};
use keyline_signer::{OsRng, ParticipantId, PublicKeyPackage, local};

use super::Row;
use super::measure::{Rounds, Step, summary};
use crate::error::{CliError, Result};

const AREA: &str = "signer";

fn rounds(quick: bool) -> usize {
    if quick { 5 } else { 11 }
}

fn signatures_per_round(quick: bool) -> usize {
    if quick { 100 } else { 300 }
}

const IN_FLIGHT: usize = 16;

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    raw(quick, print)?;
    let nodes = NodeProcesses::start(3)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("starting the benchmark runtime"))?;
    let result = runtime.block_on(over_links(quick, &nodes, print));
    drop(nodes);
    result
}

/// Thread CPU: raw BIP340 (k256) and raw FROST 2-of-3 in one process.
fn raw(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let (public, shares) = local::dkg(2, 3, &mut OsRng)?;
    let signers = [&shares[0], &shares[1]];
    let single = k256::schnorr::SigningKey::from_bytes(&[0x42; 32].into())
        .map_err(|_| CliError::Failed("bench: signing key".into()))?;
    let mut counter = 0u64;
    let mut message = [0u8; 32];
    let rounds = Rounds::measure(
        quick,
        vec![
            Step::Whole(Box::new(|| {
                counter += 1;
                message[..8].copy_from_slice(&counter.to_le_bytes());
                let sig: k256::schnorr::Signature = single
                    .sign_raw(&message, &[7; 32])
                    .unwrap_or_else(|_| unreachable_sig());
                std::hint::black_box(sig);
            })),
            Step::Whole(Box::new(|| {
                let sig = local::sign(&public, &signers, &[9; 32], &mut OsRng);
                std::hint::black_box(sig.ok());
            })),
        ],
    );
    let per_second = |secs: f64| 1.0 / secs;
    let (bip340, bip_fast, bip_slow) = summary(rounds.of(0));
    print(&Row {
        area: AREA,
        metric: "raw BIP340 signatures per second per core (k256)".into(),
        value: per_second(bip340),
        unit: "1/s",
        limit: None,
        ratio: None,
        spread: (per_second(bip_slow), per_second(bip_fast)),
    });
    let (frost, fast, slow) = summary(rounds.of(1));
    let ratios = rounds.per_round(|of| of(0) / of(1));
    print(&Row {
        area: AREA,
        metric: "FROST 2-of-3 signatures per second, one process".into(),
        value: per_second(frost),
        unit: "1/s",
        limit: Some((per_second(bip340), "raw BIP340 signing, same run".into())),
        ratio: Some(summary(&ratios).0),
        spread: (per_second(slow), per_second(fast)),
    });
    Ok(())
}

fn unreachable_sig() -> k256::schnorr::Signature {
    // A 32-byte message with 32-byte aux randomness always signs; keep the bench panic-free.
    k256::schnorr::Signature::try_from([1u8; 64].as_slice())
        .unwrap_or_else(|_| std::process::exit(1))
}

/// Three `keyline signer node` processes with their own temporary homes.
pub(super) struct NodeProcesses {
    _dirs: Vec<tempfile::TempDir>,
    children: Vec<Child>,
    nodes: Vec<([u8; 32], std::net::SocketAddr)>,
    coordinator: keyline_shs::Keypair,
}

impl Drop for NodeProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl NodeProcesses {
    pub(super) fn start(n: usize) -> Result<Self> {
        let exe = std::env::current_exe().map_err(CliError::io("finding the keyline binary"))?;
        let coordinator = keyline_shs::Keypair::generate();
        let coordinator_key = keyline_core::ssb_id(coordinator.public().as_bytes());
        let mut dirs = Vec::new();
        let mut descriptors = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().map_err(CliError::io("creating a node home"))?;
            let out = Command::new(&exe)
                .args(["--home"])
                .arg(dir.path())
                .args(["signer", "node", "--describe"])
                .stderr(Stdio::null())
                .output()
                .map_err(CliError::io("running keyline signer node --describe"))?;
            let line: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|_| CliError::Failed("bench: node --describe printed no JSON".into()))?;
            let descriptor = line["descriptor"].as_str().unwrap_or_default().to_string();
            descriptors.push(descriptor);
            dirs.push(dir);
        }
        let mut children = Vec::new();
        let mut nodes = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let mut command = Command::new(&exe);
            command
                .arg("--home")
                .arg(dir.path())
                .args([
                    "signer",
                    "node",
                    "--listen",
                    "127.0.0.1:0",
                    "--allow-raw-sign",
                ])
                .args(["--coordinator", &coordinator_key])
                .env("RUST_LOG", "error")
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            for (j, d) in descriptors.iter().enumerate() {
                if j != i {
                    command.args(["--peer", d]);
                }
            }
            let mut child = command
                .spawn()
                .map_err(CliError::io("starting keyline signer node"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| CliError::Failed("bench: node stdout".into()))?;
            children.push(child);
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(CliError::io("reading the node's announcement"))?;
            let value: serde_json::Value = serde_json::from_str(&line)
                .map_err(|_| CliError::Failed(format!("bench: node printed {line:?}")))?;
            let listen = value["listen"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| CliError::Failed("bench: node listen address".into()))?;
            let bytes = hex::decode(&descriptors[i])
                .map_err(|_| CliError::Failed("bench: descriptor hex".into()))?;
            let descriptor = NodeDescriptor::decode(&bytes)?;
            nodes.push((descriptor.node_id, listen));
        }
        Ok(Self {
            _dirs: dirs,
            children,
            nodes,
            coordinator,
        })
    }
}

pub(super) fn raw_request(key_id: [u8; 16], counter: u64) -> SignRequest {
    let mut message = [0u8; 32];
    message[..8].copy_from_slice(&counter.to_le_bytes());
    SignRequest {
        key_id,
        message: message.to_vec(),
        context: RequestContext::raw_sign(0),
    }
}

/// Links a coordinator to the node processes and runs a 2-of-3 DKG over them.
pub(super) async fn threshold_key(
    processes: &NodeProcesses,
) -> Result<(Coordinator, Arc<KeyHandle>, PublicKeyPackage)> {
    let coordinator = Coordinator::new(processes.coordinator.clone());
    for (key, addr) in &processes.nodes {
        coordinator.add_node(NodeAddr {
            key: *key,
            endpoint: NodeEndpoint::Tcp(*addr),
        });
    }
    let keys: Vec<[u8; 32]> = processes.nodes.iter().map(|(k, _)| *k).collect();
    if !coordinator
        .wait_connected(&keys, Duration::from_secs(10))
        .await
        .is_empty()
    {
        return Err(CliError::Failed("bench: node links did not come up".into()));
    }
    let mut participants = Vec::new();
    let mut holders = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let d = coordinator
            .descriptor(key)
            .ok_or_else(|| CliError::Failed("bench: no node descriptor".into()))?;
        let id = ParticipantId::new(u16::try_from(i + 1).unwrap_or(u16::MAX))?;
        participants.push(Participant {
            id,
            node_id: d.node_id,
            hpke_pk: d.hpke_pk,
        });
        holders.insert(id, *key);
    }
    let key_id = [0x5b; 16];
    let (session, first) = DkgSession::new(
        [0x5c; 16],
        key_id,
        2,
        participants,
        DkgConfig::default(),
        coordinator.now(),
    )?;
    let public = coordinator.run_ceremony(session, first, &holders).await?;
    let key = Arc::new(KeyHandle {
        key_id,
        public: public.clone(),
        holders,
    });
    Ok((coordinator, key, public))
}

async fn over_links(quick: bool, processes: &NodeProcesses, print: &dyn Fn(&Row)) -> Result<()> {
    let (coordinator, key, public) = threshold_key(processes).await?;
    let key_id = key.key_id;
    let (local_public, local_shares) = local::dkg(2, 3, &mut OsRng)?;

    let per_round = signatures_per_round(quick);
    let mut counter = 0u64;
    let (mut raw, mut sequential, mut parallel) = (Vec::new(), Vec::new(), Vec::new());
    let mut latencies = Vec::new();
    for _ in 0..rounds(quick) {
        // Raw FROST, every party in this thread.
        let start = Instant::now();
        for _ in 0..per_round {
            counter += 1;
            let message = raw_request(key_id, counter).message;
            local::sign(
                &local_public,
                &[&local_shares[0], &local_shares[1]],
                &message,
                &mut OsRng,
            )?;
        }
        raw.push(start.elapsed().as_secs_f64() / per_round as f64);

        // One request at a time over the links.
        let start = Instant::now();
        for _ in 0..per_round {
            counter += 1;
            let t = Instant::now();
            let request = raw_request(key_id, counter);
            let message = request.message.clone();
            let sig = coordinator.sign(&key, request).await?;
            latencies.push(t.elapsed().as_secs_f64());
            keyline_signer::bip340::verify(&public.npub(), &message, &sig)?;
        }
        sequential.push(start.elapsed().as_secs_f64() / per_round as f64);

        // IN_FLIGHT requests at a time.
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            let coordinator = coordinator.clone();
            let key = Arc::clone(&key);
            let first = counter;
            counter += (per_round / IN_FLIGHT) as u64 + 1;
            tasks.spawn(async move {
                for i in 0..(per_round / IN_FLIGHT) {
                    coordinator
                        .sign(&key, raw_request(key.key_id, first + i as u64))
                        .await?;
                }
                Ok::<_, keyline_signer::Error>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| CliError::Failed(format!("bench task: {e}")))??;
        }
        let signed = (per_round / IN_FLIGHT) * IN_FLIGHT;
        parallel.push(start.elapsed().as_secs_f64() / signed as f64);
    }

    let per_second = |secs: f64| 1.0 / secs;
    let row = |metric: &str, ours: &[f64]| {
        let (median, fastest, slowest) = summary(ours);
        let ratios: Vec<f64> = raw.iter().zip(ours).map(|(r, o)| r / o).collect();
        Row {
            area: AREA,
            metric: metric.into(),
            value: per_second(median),
            unit: "1/s",
            limit: Some((
                per_second(summary(&raw).0),
                "raw FROST 2-of-3, one process, same run".into(),
            )),
            ratio: Some(summary(&ratios).0),
            spread: (per_second(slowest), per_second(fastest)),
        }
    };
    print(&row(
        "2-of-3 signatures/s over node links, 1 in flight",
        &sequential,
    ));
    print(&row(
        &format!("2-of-3 signatures/s over node links, {IN_FLIGHT} in flight"),
        &parallel,
    ));
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        print(&Row {
            area: AREA,
            metric: format!("{name} latency of one signature over node links"),
            value: percentile(p) * 1e3,
            unit: "ms",
            limit: None,
            ratio: None,
            spread: (latencies[0] * 1e3, latencies[latencies.len() - 1] * 1e3),
        });
    }
    Ok(())
}
