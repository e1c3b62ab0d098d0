//! Coordinator ↔ node links (spec §8.3–§8.6) end to end: real SHS handshakes with mutually
//! pinned keys, the wire protocol on the box-stream, over in-memory pipes and over loopback
//! TCP; failover, policy refusals on the node, unpinned peers, malformed frames.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyline_shs::Keypair;
use keyline_signer::net::coordinator::{Coordinator, KeyHandle, NodeAddr, NodeEndpoint};
use keyline_signer::net::node::{NodeServer, NodeServerConfig};
use keyline_signer::node::{NodeCore, NodePolicy};
use keyline_signer::session::{EcdhRequest, SignRequest};
use keyline_signer::wire::{Body, ErrorCode, Message, Method, RequestContext, Role};
use keyline_signer::{Error, NodeShare, OsRng, ParticipantId, PublicKeyPackage, bip340, local};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const KEY_ID: [u8; 16] = [0x6b; 16];

fn raw_request(message: [u8; 32]) -> SignRequest {
    SignRequest {
        key_id: KEY_ID,
        message: message.to_vec(),
        context: context(Method::RawSign, String::new()),
    }
}

fn context(method: Method, unsigned_event: String) -> RequestContext {
    RequestContext {
        method,
        client_pubkey: [1; 32],
        connection_id: [2; 16],
        unsigned_event,
        peer: None,
        policy_version: 0,
        timestamp_ms: 0,
    }
}

struct Node {
    key: [u8; 32],
    server: NodeServer,
    core: Arc<Mutex<NodeCore>>,
}

fn node(share: NodeShare, policy: NodePolicy, coordinators: Vec<[u8; 32]>) -> Node {
    let keypair = Keypair::generate();
    let key = *keypair.public().as_bytes();
    let mut core = NodeCore::new(policy);
    core.add_key(KEY_ID, share, 1);
    let core = Arc::new(Mutex::new(core));
    let server = NodeServer::new(
        NodeServerConfig::new(keypair, coordinators),
        Arc::clone(&core),
    );
    Node { key, server, core }
}

struct Setup {
    coordinator: Coordinator,
    key: KeyHandle,
    nodes: Vec<Node>,
    public: PublicKeyPackage,
    shares: Vec<NodeShare>,
    tasks: Vec<JoinHandle<()>>,
}

/// A t-of-n key, n nodes pinning the coordinator, the coordinator pinning the nodes. Nodes in
/// `down` are never started (TCP) or never added (local).
async fn setup(t: u16, n: u16, tcp: bool, policy: NodePolicy, down: &[u16]) -> Setup {
    let (public, shares) = local::dkg(t, n, &mut OsRng).unwrap();
    let coordinator = Coordinator::new(Keypair::generate());
    let mut nodes = Vec::new();
    let mut holders = BTreeMap::new();
    let mut tasks = Vec::new();
    for share in &shares {
        let id = share.id();
        let node = node(copy(share), policy, vec![coordinator.public_key()]);
        holders.insert(id, node.key);
        let endpoint = if tcp {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            if !down.contains(&id.get()) {
                let server = node.server.clone();
                tasks.push(tokio::spawn(server.serve(listener, std::future::pending())));
            }
            NodeEndpoint::Tcp(addr)
        } else {
            NodeEndpoint::Local(node.server.clone())
        };
        // A down TCP node has an address but no server; a down local node is not added.
        if tcp || !down.contains(&id.get()) {
            coordinator.add_node(NodeAddr {
                key: node.key,
                endpoint,
            });
        }
        nodes.push(node);
    }
    let up: Vec<[u8; 32]> = nodes
        .iter()
        .filter(|n| !down.iter().any(|d| holders.get(&pid(*d)) == Some(&n.key)))
        .map(|n| n.key)
        .collect();
    let still_down = coordinator
        .wait_connected(&up, Duration::from_secs(10))
        .await;
    assert!(still_down.is_empty(), "links did not come up");
    let key = KeyHandle {
        key_id: KEY_ID,
        public: public.clone(),
        holders,
    };
    Setup {
        coordinator,
        key,
        nodes,
        public,
        shares,
        tasks,
    }
}

/// The test keeps the shares it hands to nodes (NodeShare is deliberately not Clone).
fn copy(share: &NodeShare) -> NodeShare {
    NodeShare::deserialize(&share.serialize().unwrap()).unwrap()
}

fn pid(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

fn raw_policy() -> NodePolicy {
    NodePolicy {
        allow_raw_sign: true,
        ..NodePolicy::default()
    }
}

#[tokio::test]
async fn two_of_three_signs_over_in_memory_links() {
    let s = setup(2, 3, false, raw_policy(), &[]).await;
    for i in 0..5u8 {
        let message = [i; 32];
        let sig = s
            .coordinator
            .sign(&s.key, raw_request(message))
            .await
            .unwrap();
        bip340::verify(&s.public.npub(), &message, &sig).unwrap();
    }
    // Nonces are gone on every node once the signatures are made (spares were aborted).
    tokio::time::sleep(Duration::from_millis(50)).await;
    for node in &s.nodes {
        assert_eq!(node.core.lock().unwrap().live_sessions(), 0);
    }
}

#[tokio::test]
async fn three_of_five_signs_over_tcp() {
    let s = setup(3, 5, true, raw_policy(), &[]).await;
    let message = [0xa5; 32];
    let sig = s
        .coordinator
        .sign(&s.key, raw_request(message))
        .await
        .unwrap();
    bip340::verify(&s.public.npub(), &message, &sig).unwrap();
    // An independent verifier agrees.
    let secp = secp256k1::Secp256k1::verification_only();
    let pk = secp256k1::XOnlyPublicKey::from_byte_array(s.public.npub()).unwrap();
    let sig = secp256k1::schnorr::Signature::from_byte_array(sig);
    secp.verify_schnorr(&sig, &message, &pk).unwrap();
    drop(s.tasks);
}

#[tokio::test]
async fn one_node_down_still_signs_two_down_fails_fast_naming_them() {
    let s = setup(2, 3, true, raw_policy(), &[3]).await;
    let sig = s
        .coordinator
        .sign(&s.key, raw_request([9; 32]))
        .await
        .unwrap();
    bip340::verify(&s.public.npub(), &[9; 32], &sig).unwrap();

    // Stop node 2 as well: only one share holder answers.
    s.tasks[1].abort();
    // Its established link drops when the server task's connection task ends; kill the
    // connection by aborting: the link task reconnects and fails, leaving it down.
    let started = Instant::now();
    let mut err = None;
    for _ in 0..50 {
        match s.coordinator.sign(&s.key, raw_request([10; 32])).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("signing kept succeeding with one node");
    match &err {
        Error::Unavailable { answered, need, .. } => {
            assert_eq!(*need, 2);
            assert!(*answered < 2);
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("node 3"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "failed at the deadline, not before"
    );
}

#[tokio::test]
async fn nodes_check_the_event_id_and_their_policy() {
    let s = setup(2, 3, false, NodePolicy::default(), &[]).await;
    // Raw signing is off by default on nodes.
    let err = s
        .coordinator
        .sign(&s.key, raw_request([3; 32]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("policy"), "{err}");

    // sign_event: the message must be the NIP-01 id of the event with pubkey = npub.
    let unsigned =
        r#"{"kind":1,"content":"hello","tags":[["t","keyline"]],"created_at":1700000000}"#;
    let event = keyline_core::nostr::UnsignedEvent::parse(unsigned).unwrap();
    let id = event.id(&s.public.npub());
    let request = SignRequest {
        key_id: KEY_ID,
        message: id.to_vec(),
        context: context(Method::SignEvent, unsigned.to_string()),
    };
    let sig = s.coordinator.sign(&s.key, request).await.unwrap();
    bip340::verify(&s.public.npub(), &id, &sig).unwrap();

    // A coordinator asking to sign something else under cover of that event is refused.
    let request = SignRequest {
        key_id: KEY_ID,
        message: vec![0x42; 32],
        context: context(Method::SignEvent, unsigned.to_string()),
    };
    let err = s.coordinator.sign(&s.key, request).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("policy"), "{err}");

    // An event naming another pubkey is refused.
    let foreign = r#"{"kind":1,"content":"x","tags":[],"created_at":1,"pubkey":"1111111111111111111111111111111111111111111111111111111111111111"}"#;
    let event = keyline_core::nostr::UnsignedEvent::parse(foreign).unwrap();
    let request = SignRequest {
        key_id: KEY_ID,
        message: event.id(&s.public.npub()).to_vec(),
        context: context(Method::SignEvent, foreign.to_string()),
    };
    assert!(s.coordinator.sign(&s.key, request).await.is_err());
}

#[tokio::test]
async fn threshold_ecdh_over_links_equals_local_ecdh() {
    let s = setup(2, 3, true, NodePolicy::default(), &[]).await;
    let mut rng = common::SeededRng::new(7);
    let peer = common::x_only(&common::public_point(&common::random_secret(&mut rng)));
    let request = EcdhRequest {
        key_id: KEY_ID,
        peer,
        context: RequestContext {
            peer: Some(peer),
            ..context(Method::Nip44Encrypt, String::new())
        },
    };
    let over_links = s.coordinator.ecdh(&s.key, request).await.unwrap();
    let shares: Vec<&NodeShare> = s.shares.iter().take(2).collect();
    let direct = local::ecdh(&s.public, &shares, &peer, &mut OsRng).unwrap();
    assert_eq!(over_links.as_bytes(), direct.as_bytes());
}

#[tokio::test]
async fn a_node_refuses_an_unpinned_coordinator() {
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let pinned = Keypair::generate();
    let n = node(
        copy(&shares[0]),
        raw_policy(),
        vec![*pinned.public().as_bytes()],
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(n.server.clone().serve(listener, std::future::pending()));

    let stranger = Coordinator::new(Keypair::generate());
    stranger.add_node(NodeAddr {
        key: n.key,
        endpoint: NodeEndpoint::Tcp(addr),
    });
    let down = stranger
        .wait_connected(&[n.key], Duration::from_millis(800))
        .await;
    assert_eq!(down, vec![n.key], "an unpinned coordinator got a link");

    let trusted = Coordinator::new(pinned);
    trusted.add_node(NodeAddr {
        key: n.key,
        endpoint: NodeEndpoint::Tcp(addr),
    });
    assert!(
        trusted
            .wait_connected(&[n.key], Duration::from_secs(5))
            .await
            .is_empty()
    );

    // A coordinator pinning the wrong node key never completes the handshake either.
    let wrong = Coordinator::new(Keypair::generate());
    wrong.add_node(NodeAddr {
        key: *Keypair::generate().public().as_bytes(),
        endpoint: NodeEndpoint::Tcp(addr),
    });
    task.abort();
}

/// Speaks the link protocol by hand as a pinned coordinator.
async fn raw_link(
    addr: std::net::SocketAddr,
    me: Keypair,
    node: [u8; 32],
) -> keyline_shs::BoxStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let config =
        keyline_shs::ClientConfig::new(me, node).network(keyline_signer::net::network_key());
    let mut stream = keyline_shs::connect(tcp, config).await.unwrap();
    let hello = Message::new(
        1,
        Body::Hello {
            min_version: 1,
            max_version: 1,
            role: Role::Coordinator,
            descriptor: Vec::new(),
        },
    );
    stream
        .write_all(&keyline_signer::wire::encode_message(&hello).unwrap())
        .await
        .unwrap();
    stream.flush().await.unwrap();
    // Node Hello + HelloAck.
    for _ in 0..2 {
        read_message(&mut stream).await.unwrap();
    }
    stream
}

async fn read_message(
    stream: &mut keyline_shs::BoxStream<tokio::net::TcpStream>,
) -> Option<Message> {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes(head) as usize;
    let mut frame = head.to_vec();
    frame.resize(4 + len, 0);
    stream.read_exact(&mut frame[4..]).await.ok()?;
    Some(keyline_signer::wire::decode_message(&frame).unwrap())
}

#[tokio::test]
async fn malformed_frames_close_the_link_unknown_types_do_not() {
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let me = Keypair::generate();
    let n = node(
        copy(&shares[0]),
        raw_policy(),
        vec![*me.public().as_bytes()],
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(n.server.clone().serve(listener, std::future::pending()));

    let mut stream = raw_link(addr, me.clone(), n.key).await;
    // Unknown type 0x7f with req_id 77: Error{unsupported_type} echoing 77; link stays up.
    let mut frame = vec![0, 0, 0, 10, 1, 0x7f];
    frame.extend_from_slice(&77u64.to_be_bytes());
    stream.write_all(&frame).await.unwrap();
    stream.flush().await.unwrap();
    let reply = read_message(&mut stream).await.unwrap();
    assert_eq!(reply.req_id, 77);
    assert!(matches!(reply.body, Body::Error { code, .. } if code == ErrorCode::UNSUPPORTED_TYPE));
    // Still up: a Ping gets a Pong.
    let ping =
        keyline_signer::wire::encode_message(&Message::new(5, Body::Ping { nonce: 9 })).unwrap();
    stream.write_all(&ping).await.unwrap();
    stream.flush().await.unwrap();
    let reply = read_message(&mut stream).await.unwrap();
    assert!(matches!(reply.body, Body::Pong { nonce: 9, .. }));

    // A Ping with a trailing byte is malformed: Error{malformed}, then the node closes.
    let mut bad = ping.to_vec();
    bad.push(0);
    bad[3] += 1;
    stream.write_all(&bad).await.unwrap();
    stream.flush().await.unwrap();
    let reply = read_message(&mut stream).await.unwrap();
    assert!(matches!(reply.body, Body::Error { code, .. } if code == ErrorCode::MALFORMED));
    assert!(
        read_message(&mut stream).await.is_none(),
        "link stayed up after a malformed frame"
    );

    // An oversized length is refused before anything is buffered.
    let mut stream = raw_link(addr, me, n.key).await;
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let reply = read_message(&mut stream).await.unwrap();
    assert!(matches!(reply.body, Body::Error { code, .. } if code == ErrorCode::MALFORMED));
    assert!(read_message(&mut stream).await.is_none());
    task.abort();
}

#[tokio::test]
async fn a_restarted_node_is_redialled() {
    let (public, shares) = local::dkg(2, 2, &mut OsRng).unwrap();
    let coordinator = Coordinator::new(Keypair::generate());
    let mut holders = BTreeMap::new();
    let mut servers = Vec::new();
    for share in &shares {
        let n = node(copy(share), raw_policy(), vec![coordinator.public_key()]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        holders.insert(share.id(), n.key);
        coordinator.add_node(NodeAddr {
            key: n.key,
            endpoint: NodeEndpoint::Tcp(addr),
        });
        let task = tokio::spawn(n.server.clone().serve(listener, std::future::pending()));
        servers.push((n, addr, task));
    }
    let key = KeyHandle {
        key_id: KEY_ID,
        public: public.clone(),
        holders: holders.clone(),
    };
    let keys: Vec<[u8; 32]> = holders.values().copied().collect();
    assert!(
        coordinator
            .wait_connected(&keys, Duration::from_secs(5))
            .await
            .is_empty()
    );
    coordinator.sign(&key, raw_request([1; 32])).await.unwrap();

    // Restart node 1 on the same port (its listener task and connections go away).
    let (n, addr, task) = servers.remove(0);
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let _task = tokio::spawn(n.server.clone().serve(listener, std::future::pending()));
    let mut signed = false;
    for _ in 0..100 {
        if coordinator.sign(&key, raw_request([2; 32])).await.is_ok() {
            signed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signed, "the coordinator did not redial the restarted node");
}

// ----- key ceremonies over the links -------------------------------------------------------

mod ceremonies {
    use super::*;
    use keyline_signer::ceremony::{DkgConfig, DkgSession};
    use keyline_signer::descriptor::{NodeDescriptor, NodeKeys};
    use keyline_signer::envelope::FileKek;
    use keyline_signer::net::node::CeremonyHost;
    use keyline_signer::store::{ShareVault, Store};
    use keyline_signer::wire::Participant;

    struct Cluster {
        coordinator: Coordinator,
        nodes: Vec<(Arc<NodeKeys>, NodeServer, Option<ShareVault>)>,
        _dir: tempfile::TempDir,
        tasks: Vec<JoinHandle<()>>,
    }

    /// n nodes over TCP, each pinning the coordinator and every node's descriptor, each
    /// sealing its shares into its own store under a file KEK.
    async fn cluster(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = Coordinator::new(Keypair::generate());
        let keys: Vec<Arc<NodeKeys>> = (0..n)
            .map(|_| Arc::new(NodeKeys::generate(&mut OsRng)))
            .collect();
        let descriptors: Vec<NodeDescriptor> = keys.iter().map(|k| k.descriptor(1)).collect();
        let mut nodes = Vec::new();
        let mut tasks = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let store = Store::open(&dir.path().join(format!("node{i}.db")))
                .await
                .unwrap();
            let kek = FileKek::open_or_create(&dir.path().join(format!("node{i}.kek"))).unwrap();
            let vault = ShareVault::new(store, Arc::new(kek), k.node_id());
            let config =
                NodeServerConfig::for_node(k, &descriptors[i], vec![coordinator.public_key()]);
            let core = Arc::new(Mutex::new(NodeCore::new(raw_policy())));
            let host = CeremonyHost::new(Arc::clone(k), descriptors.clone(), Some(vault.clone()));
            let server = NodeServer::new(config, core).with_ceremonies(host);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            coordinator.add_node(NodeAddr {
                key: k.node_id(),
                endpoint: NodeEndpoint::Tcp(listener.local_addr().unwrap()),
            });
            tasks.push(tokio::spawn(
                server.clone().serve(listener, std::future::pending()),
            ));
            nodes.push((Arc::clone(k), server, Some(vault)));
        }
        let ids: Vec<[u8; 32]> = keys.iter().map(|k| k.node_id()).collect();
        assert!(
            coordinator
                .wait_connected(&ids, Duration::from_secs(10))
                .await
                .is_empty()
        );
        Cluster {
            coordinator,
            nodes,
            _dir: dir,
            tasks,
        }
    }

    fn participants(c: &Cluster) -> (Vec<Participant>, BTreeMap<ParticipantId, [u8; 32]>) {
        let mut list = Vec::new();
        let mut holders = BTreeMap::new();
        for (i, (keys, _, _)) in c.nodes.iter().enumerate() {
            let d = c
                .coordinator
                .descriptor(&keys.node_id())
                .expect("descriptor from Hello");
            let id = pid(u16::try_from(i + 1).unwrap());
            list.push(Participant {
                id,
                node_id: d.node_id,
                hpke_pk: d.hpke_pk,
            });
            holders.insert(id, d.node_id);
        }
        (list, holders)
    }

    #[tokio::test]
    async fn dkg_refresh_and_import_over_tcp_links_with_sealed_storage() {
        let c = cluster(3).await;
        let (list, holders) = participants(&c);
        let key_id = [0x11; 16];
        let (session, first) = DkgSession::new(
            [1; 16],
            key_id,
            2,
            list.clone(),
            DkgConfig::default(),
            c.coordinator.now(),
        )
        .unwrap();
        let public = c
            .coordinator
            .run_ceremony(session, first, &holders)
            .await
            .unwrap();
        let key = KeyHandle {
            key_id,
            public: public.clone(),
            holders: holders.clone(),
        };
        let request = SignRequest {
            key_id,
            ..raw_request([5; 32])
        };
        let sig = c.coordinator.sign(&key, request.clone()).await.unwrap();
        bip340::verify(&public.npub(), &[5; 32], &sig).unwrap();
        // Every node sealed its share: it opens from the vault and matches the key.
        for (_, _, vault) in &c.nodes {
            let share = vault.as_ref().unwrap().load_share(&key_id).await.unwrap();
            assert_eq!(share.public().npub(), public.npub());
        }

        // Refresh: same npub, new shares; the old sealed shares are gone.
        let old: Vec<NodeShare> = {
            let mut v = Vec::new();
            for (_, _, vault) in &c.nodes {
                v.push(vault.as_ref().unwrap().load_share(&key_id).await.unwrap());
            }
            v
        };
        let (session, first) = DkgSession::refresh(
            [2; 16],
            key_id,
            &public,
            1,
            list.clone(),
            DkgConfig::default(),
            c.coordinator.now(),
        )
        .unwrap();
        let refreshed = c
            .coordinator
            .run_ceremony(session, first, &holders)
            .await
            .unwrap();
        assert_eq!(refreshed.npub(), public.npub());
        let key = KeyHandle {
            key_id,
            public: refreshed.clone(),
            holders: holders.clone(),
        };
        let sig = c.coordinator.sign(&key, request).await.unwrap();
        bip340::verify(&public.npub(), &[5; 32], &sig).unwrap();
        for (i, (_, _, vault)) in c.nodes.iter().enumerate() {
            let vault = vault.as_ref().unwrap();
            let new = vault.load_share(&key_id).await.unwrap();
            assert_ne!(
                new.serialize().unwrap().as_slice(),
                old[i].serialize().unwrap().as_slice()
            );
            assert!(
                vault.load_share_version(&key_id, 1).await.is_err(),
                "old share kept"
            );
        }
        // An old share no longer combines with a new one.
        let new0 = c.nodes[0]
            .2
            .as_ref()
            .unwrap()
            .load_share(&key_id)
            .await
            .unwrap();
        assert!(local::sign(&refreshed, &[&new0, &old[1]], &[6; 32], &mut OsRng).is_err());

        // Import: the npub of the imported secret.
        let mut secret = [0x42u8; 32];
        let expected = k256::schnorr::SigningKey::from_slice(&secret)
            .unwrap()
            .verifying_key()
            .to_bytes();
        let import_id = [0x22; 16];
        let (session, first) = DkgSession::import(
            [3; 16],
            import_id,
            &mut secret,
            2,
            list,
            DkgConfig::default(),
            c.coordinator.now(),
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(secret, [0; 32], "the imported secret was not wiped");
        let imported = c
            .coordinator
            .run_ceremony(session, first, &holders)
            .await
            .unwrap();
        assert_eq!(imported.npub().as_slice(), expected.as_slice());
        let key = KeyHandle {
            key_id: import_id,
            public: imported.clone(),
            holders,
        };
        let sig = c
            .coordinator
            .sign(
                &key,
                SignRequest {
                    key_id: import_id,
                    ..raw_request([7; 32])
                },
            )
            .await
            .unwrap();
        bip340::verify(&imported.npub(), &[7; 32], &sig).unwrap();
        drop(c.tasks);
    }

    #[tokio::test]
    async fn a_dkg_with_a_node_down_fails_naming_it() {
        let c = cluster(3).await;
        let (list, holders) = participants(&c);
        c.tasks[2].abort();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (session, first) = DkgSession::new(
            [9; 16],
            [0x33; 16],
            2,
            list,
            DkgConfig {
                round_timeout: Duration::from_secs(2),
                total_timeout: Duration::from_secs(5),
            },
            c.coordinator.now(),
        )
        .unwrap();
        let started = Instant::now();
        let err = c
            .coordinator
            .run_ceremony(session, first, &holders)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("node 3"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
