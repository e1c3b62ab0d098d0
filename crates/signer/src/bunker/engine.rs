//! The parts of request handling that need no I/O: the user key behind the bunker (a trait,
//! so tests and the CLI plug in the coordinator), duplicate suppression by `(client, request
//! id)`, the per-client rate table, and building the signed kind 24133 reply event.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use keyline_core::nostr::UnsignedEvent;

use crate::ecdh::SharedX;
use crate::limits::{BUNKER_DEDUPE_CAPACITY, BUNKER_RATE_CLIENTS, BUNKER_REQUEST_DEDUPE_WINDOW};
use crate::net::coordinator::{Coordinator, KeyHandle};
use crate::nip46::{KIND, SignedEvent};
use crate::session::{EcdhRequest, SignRequest};
use crate::wire::RequestContext;
use crate::{Error, Result};

/// The user key the bunker signs and decrypts with: the threshold key behind the coordinator
/// ([`CoordinatorKey`]), or anything else with the same contract.
pub trait UserKey: Send + Sync + 'static {
    /// The x-only user public key (npub).
    fn npub(&self) -> [u8; 32];
    /// A BIP340 signature of `message` (an event id the bunker computed). The context goes to
    /// every node, which re-checks it.
    fn sign(
        &self,
        message: [u8; 32],
        context: RequestContext,
    ) -> impl Future<Output = Result<[u8; 64]>> + Send;
    /// The ECDH shared x-coordinate of the user key with `peer`.
    fn ecdh(
        &self,
        peer: [u8; 32],
        context: RequestContext,
    ) -> impl Future<Output = Result<SharedX>> + Send;
}

/// The threshold key behind a [`Coordinator`]: every operation is a FROST session (signing) or
/// a threshold ECDH over the node links.
pub struct CoordinatorKey {
    coordinator: Coordinator,
    handle: KeyHandle,
}

impl CoordinatorKey {
    /// The key `handle` through `coordinator` (its node links set up by the caller).
    pub fn new(coordinator: Coordinator, handle: KeyHandle) -> Self {
        Self {
            coordinator,
            handle,
        }
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// The key handle.
    pub fn handle(&self) -> &KeyHandle {
        &self.handle
    }
}

impl UserKey for CoordinatorKey {
    fn npub(&self) -> [u8; 32] {
        self.handle.public.npub()
    }

    async fn sign(&self, message: [u8; 32], context: RequestContext) -> Result<[u8; 64]> {
        let request = SignRequest {
            key_id: self.handle.key_id,
            message: message.to_vec(),
            context,
        };
        self.coordinator.sign(&self.handle, request).await
    }

    async fn ecdh(&self, peer: [u8; 32], context: RequestContext) -> Result<SharedX> {
        let request = EcdhRequest {
            key_id: self.handle.key_id,
            peer,
            context,
        };
        self.coordinator.ecdh(&self.handle, request).await
    }
}

/// `(client, request id)` pairs seen in the last [`BUNKER_REQUEST_DEDUPE_WINDOW`], at most
/// [`BUNKER_DEDUPE_CAPACITY`] (the oldest forgotten first): the same request arriving on
/// several relays, or re-sent with a new event id, is processed once (spec §3.6).
#[derive(Debug, Default)]
pub struct RecentRequests {
    seen: HashMap<([u8; 32], String), Instant>,
    order: VecDeque<(([u8; 32], String), Instant)>,
}

impl RecentRequests {
    /// True the first time `(client, id)` is seen within the window; false for a duplicate.
    pub fn first_time(&mut self, client: &[u8; 32], id: &str, now: Instant) -> bool {
        while let Some((key, at)) = self.order.front() {
            if now.duration_since(*at) < BUNKER_REQUEST_DEDUPE_WINDOW
                && self.order.len() < BUNKER_DEDUPE_CAPACITY
            {
                break;
            }
            if self.seen.get(key) == Some(at) {
                self.seen.remove(key);
            }
            self.order.pop_front();
        }
        let key = (*client, id.to_owned());
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key.clone(), now);
        self.order.push_back((key, now));
        true
    }
}

/// Requests per client per minute (fixed windows), for at most [`BUNKER_RATE_CLIENTS`]
/// clients; when the table is full, clients not in it are refused until windows expire.
#[derive(Debug)]
pub struct ClientRate {
    per_minute: u32,
    clients: HashMap<[u8; 32], (Instant, u32)>,
}

impl ClientRate {
    /// A table allowing `per_minute` requests per client.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            clients: HashMap::new(),
        }
    }

    /// Counts a request; false when the client is over its rate.
    pub fn allow(&mut self, client: &[u8; 32], now: Instant) -> bool {
        const WINDOW: Duration = Duration::from_secs(60);
        if !self.clients.contains_key(client) && self.clients.len() >= BUNKER_RATE_CLIENTS {
            self.clients
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if self.clients.len() >= BUNKER_RATE_CLIENTS {
                return false;
            }
        }
        let entry = self.clients.entry(*client).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

/// The kind 24133 event carrying `content` from the transport key to `client`, signed by the
/// transport key (BIP340 with fresh auxiliary randomness).
pub fn reply_event(
    transport_secret: &[u8; 32],
    client: &[u8; 32],
    content: String,
    created_at: u64,
) -> Result<SignedEvent> {
    let key = k256::schnorr::SigningKey::from_slice(transport_secret)
        .map_err(|_| Error::InvalidSecretKey)?;
    let pubkey: [u8; 32] = key.verifying_key().to_bytes().into();
    let event = UnsignedEvent {
        kind: KIND,
        content,
        tags: vec![vec!["p".to_owned(), hex::encode(client)]],
        created_at,
        pubkey: None,
    };
    let id = event.id(&pubkey);
    let mut aux = [0u8; 32];
    getrandom::fill(&mut aux).map_err(|_| Error::Internal {
        reason: "the OS random source failed",
    })?;
    let sig = key.sign_raw(&id, &aux).map_err(|_| Error::Internal {
        reason: "BIP340 signing failed",
    })?;
    Ok(SignedEvent::new(event, pubkey, sig.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_suppressed_within_the_window() {
        let mut recent = RecentRequests::default();
        let t = Instant::now();
        assert!(recent.first_time(&[1; 32], "a", t));
        assert!(!recent.first_time(&[1; 32], "a", t));
        assert!(recent.first_time(&[2; 32], "a", t));
        assert!(recent.first_time(&[1; 32], "b", t));
        let later = t + BUNKER_REQUEST_DEDUPE_WINDOW + Duration::from_secs(1);
        assert!(recent.first_time(&[1; 32], "a", later));
    }

    #[test]
    fn rate_per_client() {
        let mut rate = ClientRate::new(2);
        let t = Instant::now();
        assert!(rate.allow(&[1; 32], t));
        assert!(rate.allow(&[1; 32], t));
        assert!(!rate.allow(&[1; 32], t));
        assert!(rate.allow(&[2; 32], t));
        assert!(rate.allow(&[1; 32], t + Duration::from_secs(60)));
    }

    #[test]
    fn reply_events_verify() {
        let secret = [7u8; 32];
        let event = reply_event(&secret, &[9; 32], "x".into(), 1_700_000_000).unwrap();
        event.verify().unwrap();
        assert_eq!(event.kind, KIND);
        assert_eq!(
            event.tags,
            vec![vec!["p".to_owned(), hex::encode([9u8; 32])]]
        );
    }
}
