//! `keyline signer …`: threshold keys held as FROST shares by share-holder nodes.
//!
//! State lives in the home directory: `keyline.db` holds the coordinator's keys, pinned
//! nodes, ceremonies and audit log, and (for nodes run from this home) the sealed shares;
//! `signer/node.key` is a node's identity (Ed25519 + X25519, mode 0600); `signer.kek` is
//! the file key-encryption key when no PKCS#11 token is configured. Without `--nodes`, keys
//! go to local in-process nodes (`signer/local-node-<i>.key`): **dev mode**, every share on
//! this machine, said so on stderr and in the JSON output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyline_core::Home;
use keyline_signer::bunker::policy::Decision;
use keyline_signer::ceremony::{DkgConfig, DkgSession};
use keyline_signer::descriptor::{NodeDescriptor, NodeKeys};
use keyline_signer::envelope::{AuthPin, FileKek, Kek, Pkcs11Config, Pkcs11Kek};
use keyline_signer::net::coordinator::{Coordinator, KeyHandle, NodeAddr, NodeEndpoint};
use keyline_signer::net::node::{CeremonyHost, NodeServer, NodeServerConfig};
use keyline_signer::node::{NodeCore, NodePolicy};
use keyline_signer::session::SignRequest;
use keyline_signer::store::{
    AuditEntry, KeyRecord, NewCeremony, NodeRecord, NodeStatus, ShareStatus, ShareVault, Store,
};
use keyline_signer::wire::{CeremonyKind, Participant, RequestContext};
use keyline_signer::{OsRng, ParticipantId, PublicKeyPackage};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{KekArgs, NodesArgs, SignerCommand};
use crate::error::{CliError, Result};
use crate::output::{announce, emit};

/// The protocol name of signer pins (coordinators a node serves).
pub(crate) const PIN_PROTOCOL: &str = "signer";

/// How long to wait for node links before giving up on a command.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Address recorded for nodes that run inside the coordinator's process.
const LOCAL_ADDRESS: &str = "local";

pub(crate) async fn run(home: &Home, command: SignerCommand, json: bool) -> Result<()> {
    match command {
        SignerCommand::Keygen {
            threshold,
            shares,
            nodes,
            kek,
        } => {
            let signer = Signer::open(home, &kek).await?;
            let key = signer
                .create(CreateKind::Dkg, threshold, shares, &nodes)
                .await?;
            print_key(json, &key);
            Ok(())
        }
        SignerCommand::Import {
            key,
            threshold,
            shares,
            nodes,
            kek,
        } => {
            let secret = read_secret_key(&key)?;
            let signer = Signer::open(home, &kek).await?;
            let key = signer
                .create(CreateKind::Import(secret), threshold, shares, &nodes)
                .await?;
            print_key(json, &key);
            Ok(())
        }
        SignerCommand::Sign { key, message, kek } => {
            let message = parse_hex32(&message, "message")?;
            let signer = Signer::open(home, &kek).await?;
            let record = signer.find_key(&key).await?;
            let sig = signer.sign_raw(&record, message).await?;
            emit(json, &json!({"sig": hex::encode(sig)}), || hex::encode(sig));
            Ok(())
        }
        SignerCommand::Refresh { key, kek } => {
            let signer = Signer::open(home, &kek).await?;
            let record = signer.find_key(&key).await?;
            let version = signer.refresh(&record).await?;
            emit(
                json,
                &json!({"npub": keyline_core::npub(&record.npub), "share_version": version}),
                || {
                    format!(
                        "refreshed {}: share version {version}",
                        keyline_core::npub(&record.npub)
                    )
                },
            );
            Ok(())
        }
        SignerCommand::Keys => {
            let store = open_store(home).await?;
            for key in store.list_keys().await? {
                let value = key_json(&key.public, key.share_version);
                emit(json, &value, || {
                    format!(
                        "{}  {}-of-{}  version {}",
                        keyline_core::npub(&key.npub),
                        key.threshold,
                        key.total,
                        key.share_version
                    )
                });
            }
            Ok(())
        }
        SignerCommand::Node {
            listen,
            coordinators,
            peers,
            describe,
            allow_raw_sign,
            kek,
        } => {
            node(
                home,
                NodeOptions {
                    listen,
                    coordinators,
                    peers,
                    describe,
                    allow_raw_sign,
                },
                &kek,
            )
            .await
        }
        SignerCommand::Serve {
            relays,
            local,
            bunker,
            kek,
        } => {
            // Keys created in dev mode always run on local nodes; --local is accepted for
            // clarity and for scripts written for the coordinator-only mode.
            let _ = local;
            crate::bunker_cmd::serve(home, relays, &bunker, &kek).await
        }
        SignerCommand::Connect { uri } => crate::bunker_cmd::connect(home, &uri, json).await,
        SignerCommand::Connections => crate::bunker_cmd::connections(home, json).await,
        SignerCommand::Revoke { client } => crate::bunker_cmd::revoke(home, &client, json).await,
        SignerCommand::Allow {
            client,
            grants,
            deny,
            ask,
            expires,
            per_minute,
            per_day,
        } => {
            let decision = if deny {
                Decision::Deny
            } else if ask {
                Decision::Ask
            } else {
                Decision::Allow
            };
            crate::bunker_cmd::allow(
                home,
                crate::bunker_cmd::AllowArgs {
                    client,
                    grants,
                    decision,
                    expires,
                    per_minute,
                    per_day,
                },
                json,
            )
            .await
        }
    }
}

// ----- shared state ------------------------------------------------------------------------

/// Opens the signer store in the home's `keyline.db`.
pub(crate) async fn open_store(home: &Home) -> Result<Store> {
    home.ensure()?;
    Ok(Store::open(&home.db_path()).await?)
}

/// The key-encryption key: PKCS#11 when configured, else the home's `signer.kek` file.
pub(crate) fn open_kek(home: &Home, args: &KekArgs) -> Result<Arc<dyn Kek>> {
    if let Some(module) = &args.pkcs11_module {
        let token = args
            .pkcs11_token
            .clone()
            .ok_or_else(|| CliError::Usage("--pkcs11-module needs --pkcs11-token LABEL".into()))?;
        let pin = std::env::var(&args.pkcs11_pin_env).map_err(|_| {
            CliError::Usage(format!(
                "set the token's user PIN in the environment variable {}",
                args.pkcs11_pin_env
            ))
        })?;
        let config = Pkcs11Config::new(
            module.clone(),
            token,
            AuthPin::from(pin),
            args.pkcs11_key_label.clone(),
        );
        let kek = match Pkcs11Kek::open(&config) {
            Ok(kek) => kek,
            Err(keyline_signer::Error::KekNotFound { .. }) => Pkcs11Kek::generate(&config)?,
            Err(e) => return Err(e.into()),
        };
        return Ok(Arc::new(kek));
    }
    home.ensure()?;
    // FileKek warns on open that it is for local use.
    Ok(Arc::new(FileKek::open_or_create(
        &home.path().join("signer.kek"),
    )?))
}

/// A node identity file: 64 secret bytes (hex) and the descriptor's timestamp.
fn load_node_keys(path: &Path) -> Result<(Arc<NodeKeys>, NodeDescriptor)> {
    let (text, _) = keyline_core::load_or_create_secret_file(path, || {
        let keys = NodeKeys::generate(&mut OsRng);
        Zeroizing::new(format!(
            "{}\n{}\n",
            hex::encode(keys.to_secret_bytes().as_slice()),
            unix_ms()
        ))
    })?;
    let mut lines = text.lines();
    let bad = || CliError::Failed(format!("{} is not a keyline node key file", path.display()));
    let mut secret = Zeroizing::new([0u8; 64]);
    hex::decode_to_slice(lines.next().ok_or_else(bad)?.trim(), secret.as_mut_slice())
        .map_err(|_| bad())?;
    let created_at: u64 = lines
        .next()
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let keys = NodeKeys::from_secret_bytes(&secret)?;
    let descriptor = keys.descriptor(created_at);
    Ok((Arc::new(keys), descriptor))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Loads every active share of `vault`'s node into a signing core.
async fn load_core(vault: &ShareVault, policy: NodePolicy) -> Result<NodeCore> {
    let mut core = NodeCore::new(policy);
    for row in vault.store().list_shares(vault.node_id()).await? {
        if row.status == ShareStatus::Active {
            let share = vault.load_share(&row.key_id).await?;
            core.add_key(row.key_id, share, row.share_version);
        }
    }
    Ok(core)
}

struct LocalNode {
    keys: Arc<NodeKeys>,
    server: NodeServer,
}

/// Starts `n` in-process nodes from the home (dev mode), all sealing into the home's store.
async fn local_nodes(
    home: &Home,
    store: &Store,
    kek: &Arc<dyn Kek>,
    coordinator: &[u8; 32],
    n: u16,
) -> Result<Vec<LocalNode>> {
    let mut keys = Vec::new();
    for i in 1..=n {
        keys.push(load_node_keys(
            &home
                .path()
                .join("signer")
                .join(format!("local-node-{i}.key")),
        )?);
    }
    let descriptors: Vec<NodeDescriptor> = keys.iter().map(|(_, d)| *d).collect();
    let mut nodes = Vec::new();
    for (keys, descriptor) in keys {
        let vault = ShareVault::new(store.clone(), Arc::clone(kek), keys.node_id());
        // Dev mode: the CLI's raw signing is allowed on local nodes.
        let policy = NodePolicy {
            allow_raw_sign: true,
            ..NodePolicy::default()
        };
        let core = load_core(&vault, policy).await?;
        let config = NodeServerConfig::for_node(&keys, &descriptor, vec![*coordinator]);
        let host = CeremonyHost::new(Arc::clone(&keys), descriptors.clone(), Some(vault));
        let server = NodeServer::new(config, Arc::new(Mutex::new(core))).with_ceremonies(host);
        nodes.push(LocalNode { keys, server });
    }
    Ok(nodes)
}

/// `KEY@HOST:PORT`.
fn parse_node(text: &str) -> Result<([u8; 32], SocketAddr)> {
    let (key, addr) = text
        .rsplit_once('@')
        .ok_or_else(|| CliError::Usage(format!("node {text:?}: expected KEY@HOST:PORT")))?;
    let key = keyline_core::parse_ed25519_public(key)?;
    let addr = addr
        .parse()
        .map_err(|_| CliError::Usage(format!("node {text:?}: bad address {addr:?}")))?;
    Ok((key, addr))
}

pub(crate) enum CreateKind {
    Dkg,
    Import(Zeroizing<[u8; 32]>),
}

/// The coordinator with its store, KEK and identity.
pub(crate) struct Signer {
    home: Home,
    pub(crate) store: Store,
    pub(crate) kek: Arc<dyn Kek>,
    pub(crate) coordinator: Coordinator,
    pub(crate) dev_mode: bool,
    /// Keeps in-process nodes alive.
    _local: Vec<LocalNode>,
}

impl Signer {
    pub(crate) async fn open(home: &Home, kek: &KekArgs) -> Result<Signer> {
        let store = open_store(home).await?;
        let kek = open_kek(home, kek)?;
        let identity = crate::identity_cmd::load_or_create(home)?;
        let keypair = keyline_shs::Keypair::from_seed(identity.ed25519_seed());
        Ok(Signer {
            home: home.clone(),
            store,
            kek,
            coordinator: Coordinator::new(keypair),
            dev_mode: false,
            _local: Vec::new(),
        })
    }

    /// Links to `nodes` (or n local nodes), waits for them, and returns the participants
    /// 1..=n with their descriptors.
    async fn connect(
        &mut self,
        n: u16,
        nodes: &NodesArgs,
    ) -> Result<Vec<(Participant, Option<String>)>> {
        let mut targets = Vec::new();
        if nodes.nodes.is_empty() {
            self.dev_mode = true;
            eprintln!(
                "keyline: dev mode: {n} local nodes in this process, every share on this machine"
            );
            let local = local_nodes(
                &self.home,
                &self.store,
                &self.kek,
                &self.coordinator.public_key(),
                n,
            )
            .await?;
            for node in &local {
                targets.push((
                    node.keys.node_id(),
                    NodeEndpoint::Local(node.server.clone()),
                    None,
                ));
            }
            self._local = local;
        } else {
            if nodes.nodes.len() != usize::from(n) {
                return Err(CliError::Usage(format!(
                    "{} nodes given for {n} shares; give one node per share",
                    nodes.nodes.len()
                )));
            }
            for text in &nodes.nodes {
                let (key, addr) = parse_node(text)?;
                targets.push((key, NodeEndpoint::Tcp(addr), Some(addr.to_string())));
            }
        }
        self.link(&targets).await?;
        let mut participants = Vec::new();
        for (i, (key, _, address)) in targets.into_iter().enumerate() {
            let d = self.coordinator.descriptor(&key).ok_or_else(|| {
                CliError::Failed(format!(
                    "node {} sent no descriptor: it cannot take part in ceremonies",
                    keyline_core::ssb_id(&key)
                ))
            })?;
            let id = ParticipantId::new(u16::try_from(i + 1).unwrap_or(u16::MAX))?;
            participants.push((
                Participant {
                    id,
                    node_id: d.node_id,
                    hpke_pk: d.hpke_pk,
                },
                address,
            ));
        }
        Ok(participants)
    }

    async fn link(&self, targets: &[([u8; 32], NodeEndpoint, Option<String>)]) -> Result<()> {
        for (key, endpoint, _) in targets {
            self.coordinator.add_node(NodeAddr {
                key: *key,
                endpoint: endpoint.clone(),
            });
        }
        let keys: Vec<[u8; 32]> = targets.iter().map(|(k, _, _)| *k).collect();
        let down = self.coordinator.wait_connected(&keys, CONNECT_WAIT).await;
        if !down.is_empty() {
            let names: Vec<String> = down.iter().map(keyline_core::ssb_id).collect();
            return Err(CliError::Failed(format!(
                "no link to {} node(s) within {}s: {} (is `keyline signer node` running there, \
                 pinning this coordinator {}?)",
                down.len(),
                CONNECT_WAIT.as_secs(),
                names.join(", "),
                keyline_core::ssb_id(&self.coordinator.public_key())
            )));
        }
        Ok(())
    }

    pub(crate) async fn create(
        mut self,
        kind: CreateKind,
        threshold: u16,
        n: u16,
        nodes: &NodesArgs,
    ) -> Result<Created> {
        let participants = self.connect(n, nodes).await?;
        let list: Vec<Participant> = participants.iter().map(|(p, _)| *p).collect();
        let holders: BTreeMap<ParticipantId, [u8; 32]> =
            list.iter().map(|p| (p.id, p.node_id)).collect();
        let mut ceremony_id = [0u8; 16];
        let mut key_id = [0u8; 16];
        getrandom::fill(&mut ceremony_id).map_err(|e| CliError::Failed(format!("rng: {e}")))?;
        getrandom::fill(&mut key_id).map_err(|e| CliError::Failed(format!("rng: {e}")))?;
        let config = DkgConfig::default();
        let now = self.coordinator.now();
        let (ceremony_kind, (session, first)) = match kind {
            CreateKind::Dkg => (
                CeremonyKind::Dkg,
                DkgSession::new(ceremony_id, key_id, threshold, list.clone(), config, now)?,
            ),
            CreateKind::Import(mut secret) => (
                CeremonyKind::Import,
                DkgSession::import(
                    ceremony_id,
                    key_id,
                    &mut secret,
                    threshold,
                    list.clone(),
                    config,
                    now,
                    &mut OsRng,
                )?,
            ),
        };
        let started = unix_ms();
        self.store
            .create_ceremony(&NewCeremony {
                ceremony_id,
                kind: ceremony_kind,
                key_id,
                threshold,
                total: n,
                started_at_ms: started,
                deadline_at_ms: started
                    + u64::try_from(config.total_timeout.as_millis()).unwrap_or(0),
            })
            .await?;
        let public = match self
            .coordinator
            .run_ceremony(session, first, &holders)
            .await
        {
            Ok(public) => public,
            Err(e) => {
                let _ = self
                    .store
                    .finish_ceremony(
                        &ceremony_id,
                        keyline_signer::store::CeremonyOutcome::Aborted,
                        Some(&e.to_string()),
                        unix_ms(),
                    )
                    .await;
                return Err(e.into());
            }
        };
        self.store
            .commit_ceremony(&ceremony_id, &public, 1, unix_ms())
            .await?;
        for (p, address) in &participants {
            let descriptor = self
                .coordinator
                .descriptor(&p.node_id)
                .map(|d| d.encode().to_vec())
                .unwrap_or_default();
            self.store
                .add_node(&NodeRecord {
                    node_id: p.node_id,
                    descriptor,
                    hpke_pk: p.hpke_pk,
                    address: Some(address.clone().unwrap_or_else(|| LOCAL_ADDRESS.to_string())),
                    label: None,
                    pinned_at_ms: unix_ms(),
                    status: NodeStatus::Active,
                    cooldown_until_ms: None,
                })
                .await?;
            self.store.assign_member(&key_id, p.id, &p.node_id).await?;
        }
        let mut audit = AuditEntry::new(
            unix_ms(),
            "operator",
            match ceremony_kind {
                CeremonyKind::Import => "import",
                _ => "keygen",
            },
        );
        audit.key_id = Some(key_id);
        audit.nodes = list.iter().map(|p| hex::encode(p.node_id)).collect();
        self.store.audit_append(&audit).await?;
        Ok(Created {
            public,
            share_version: 1,
            dev_mode: self.dev_mode,
        })
    }

    async fn find_key(&self, text: &str) -> Result<KeyRecord> {
        let npub = if text.len() == 64 {
            parse_hex32(text, "key")?
        } else {
            keyline_core::parse_npub(text)?
        };
        self.store.get_key_by_npub(&npub).await?.ok_or_else(|| {
            CliError::Failed(format!(
                "no threshold key {} here (`keyline signer keys` lists them)",
                keyline_core::npub(&npub)
            ))
        })
    }

    /// Links to the holders of `key` (starting local nodes for dev-mode keys).
    pub(crate) async fn holders(
        &mut self,
        key: &KeyRecord,
    ) -> Result<BTreeMap<ParticipantId, [u8; 32]>> {
        let members = self.store.key_members(&key.key_id).await?;
        let mut holders = BTreeMap::new();
        let mut targets = Vec::new();
        let mut local = 0u16;
        for m in &members {
            let Some(node_id) = m.node_id else { continue };
            let record = self.store.get_node(&node_id).await?.ok_or_else(|| {
                CliError::Failed(format!(
                    "node {} is not pinned",
                    keyline_core::ssb_id(&node_id)
                ))
            })?;
            holders.insert(m.identifier, node_id);
            match record.address.as_deref() {
                Some(LOCAL_ADDRESS) | None => local += 1,
                Some(addr) => {
                    let addr: SocketAddr = addr.parse().map_err(|_| {
                        CliError::Failed(format!("stored node address {addr:?} is not HOST:PORT"))
                    })?;
                    targets.push((node_id, NodeEndpoint::Tcp(addr), None::<String>));
                }
            }
        }
        if local > 0 {
            self.dev_mode = true;
            let nodes = local_nodes(
                &self.home,
                &self.store,
                &self.kek,
                &self.coordinator.public_key(),
                key.total,
            )
            .await?;
            for node in &nodes {
                if holders.values().any(|id| *id == node.keys.node_id()) {
                    targets.push((
                        node.keys.node_id(),
                        NodeEndpoint::Local(node.server.clone()),
                        None,
                    ));
                }
            }
            self._local = nodes;
        }
        // Sign with whoever answers: missing nodes fail over inside the session.
        for (key, endpoint, _) in &targets {
            self.coordinator.add_node(NodeAddr {
                key: *key,
                endpoint: endpoint.clone(),
            });
        }
        let keys: Vec<[u8; 32]> = targets.iter().map(|(k, _, _)| *k).collect();
        let down = self
            .coordinator
            .wait_connected(&keys, Duration::from_secs(3))
            .await;
        for node in down {
            tracing::warn!(node = %keyline_core::ssb_id(&node), "node unreachable");
        }
        Ok(holders)
    }

    async fn sign_raw(mut self, key: &KeyRecord, message: [u8; 32]) -> Result<[u8; 64]> {
        let holders = self.holders(key).await?;
        let handle = KeyHandle {
            key_id: key.key_id,
            public: key.public.clone(),
            holders,
        };
        let request = SignRequest {
            key_id: key.key_id,
            message: message.to_vec(),
            context: RequestContext::raw_sign(unix_ms()),
        };
        let started = std::time::Instant::now();
        let result = self.coordinator.sign(&handle, request).await;
        let mut audit = AuditEntry::new(unix_ms(), "operator", "raw_sign");
        audit.key_id = Some(key.key_id);
        audit.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        audit.error_code = result.as_ref().err().map(|e| e.code().to_string());
        self.store.audit_append(&audit).await?;
        Ok(result?)
    }

    async fn refresh(mut self, key: &KeyRecord) -> Result<u32> {
        let holders = self.holders(key).await?;
        let mut list = Vec::new();
        for (id, node_id) in &holders {
            let d = self.coordinator.descriptor(node_id).ok_or_else(|| {
                CliError::Failed(format!(
                    "node {} is not reachable; a refresh needs every share holder",
                    keyline_core::ssb_id(node_id)
                ))
            })?;
            list.push(Participant {
                id: *id,
                node_id: d.node_id,
                hpke_pk: d.hpke_pk,
            });
        }
        let mut ceremony_id = [0u8; 16];
        getrandom::fill(&mut ceremony_id).map_err(|e| CliError::Failed(format!("rng: {e}")))?;
        let config = DkgConfig::default();
        let (session, first) = DkgSession::refresh(
            ceremony_id,
            key.key_id,
            &key.public,
            key.share_version,
            list,
            config,
            self.coordinator.now(),
        )?;
        let version = key.share_version + 1;
        let started = unix_ms();
        self.store
            .create_ceremony(&NewCeremony {
                ceremony_id,
                kind: CeremonyKind::Refresh,
                key_id: key.key_id,
                threshold: key.threshold,
                total: key.total,
                started_at_ms: started,
                deadline_at_ms: started
                    + u64::try_from(config.total_timeout.as_millis()).unwrap_or(0),
            })
            .await?;
        let public = self
            .coordinator
            .run_ceremony(session, first, &holders)
            .await?;
        self.store
            .commit_ceremony(&ceremony_id, &public, version, unix_ms())
            .await?;
        let mut audit = AuditEntry::new(unix_ms(), "operator", "refresh");
        audit.key_id = Some(key.key_id);
        self.store.audit_append(&audit).await?;
        Ok(version)
    }
}

pub(crate) struct Created {
    pub(crate) public: PublicKeyPackage,
    share_version: u32,
    dev_mode: bool,
}

fn key_json(public: &PublicKeyPackage, share_version: u32) -> serde_json::Value {
    json!({
        "npub": keyline_core::npub(&public.npub()),
        "pubkey": hex::encode(public.npub()),
        "threshold": public.threshold(),
        "shares": public.participants().len(),
        "share_version": share_version,
    })
}

fn print_key(json: bool, key: &Created) {
    let dev_mode = key.dev_mode;
    let mut value = key_json(&key.public, key.share_version);
    if dev_mode {
        value["dev_mode"] = json!(true);
    }
    emit(json, &value, || {
        format!(
            "{}\npubkey {}\n{}-of-{} shares{}",
            keyline_core::npub(&key.public.npub()),
            hex::encode(key.public.npub()),
            key.public.threshold(),
            key.public.participants().len(),
            if dev_mode {
                " (dev mode: all on local nodes)"
            } else {
                ""
            }
        )
    });
}

fn parse_hex32(text: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out)
        .map_err(|_| CliError::Usage(format!("{what}: expected 64 hex characters")))?;
    Ok(out)
}

/// nsec1…, 64 hex characters, or `-` (standard input).
fn read_secret_key(text: &str) -> Result<Zeroizing<[u8; 32]>> {
    let text = if text == "-" {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .map_err(CliError::io("reading the key from standard input"))?;
        line
    } else {
        Zeroizing::new(text.to_string())
    };
    Ok(keyline_core::parse_nsec(text.trim())?)
}

// ----- nodes -------------------------------------------------------------------------------

struct NodeOptions {
    listen: SocketAddr,
    coordinators: Vec<String>,
    peers: Vec<String>,
    describe: bool,
    allow_raw_sign: bool,
}

async fn node(home: &Home, options: NodeOptions, kek: &KekArgs) -> Result<()> {
    home.ensure()?;
    let (keys, descriptor) = load_node_keys(&home.path().join("signer").join("node.key"))?;
    let describe = json!({
        "node": keyline_core::ssb_id(&keys.node_id()),
        "descriptor": hex::encode(descriptor.encode()),
    });
    if options.describe {
        announce(&describe);
        return Ok(());
    }
    let mut coordinators = Vec::new();
    for text in &options.coordinators {
        coordinators.push(keyline_core::parse_ed25519_public(text)?);
    }
    let pins = keyline_core::PinStore::open(&home.db_path()).await?;
    for pin in pins.list(Some(PIN_PROTOCOL)).await? {
        if let Ok(key) = <[u8; 32]>::try_from(pin.key.as_slice()) {
            coordinators.push(key);
        }
    }
    if coordinators.is_empty() {
        return Err(CliError::Usage(
            "no coordinator to serve: pass --coordinator KEY (or pin one with \
             `keyline pin add --protocol signer`)"
                .into(),
        ));
    }
    let mut pinned = vec![descriptor];
    for text in &options.peers {
        let bytes = hex::decode(text.trim())
            .map_err(|_| CliError::Usage("--peer takes a node descriptor in hex".into()))?;
        pinned.push(NodeDescriptor::decode(&bytes)?);
    }
    let store = open_store(home).await?;
    let kek = open_kek(home, kek)?;
    let vault = ShareVault::new(store, kek, keys.node_id());
    let policy = NodePolicy {
        allow_raw_sign: options.allow_raw_sign,
        ..NodePolicy::default()
    };
    let core = load_core(&vault, policy).await?;
    let held = core.key_ids().count();
    let config = NodeServerConfig::for_node(&keys, &descriptor, coordinators);
    let host = CeremonyHost::new(Arc::clone(&keys), pinned, Some(vault));
    let server = NodeServer::new(config, Arc::new(Mutex::new(core))).with_ceremonies(host);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(CliError::io(format!("binding {}", options.listen)))?;
    let listen = listener
        .local_addr()
        .map_err(CliError::io("reading the listen address"))?;
    let mut line = describe;
    line["listen"] = json!(listen.to_string());
    line["keys"] = json!(held);
    announce(&line);
    server
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
