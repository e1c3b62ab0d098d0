//! The share holder's request handling (spec §8.4, §8.9), sans-IO: one [`NodeCore`] per node
//! process, holding a [`NodeSigner`] per key and the node's own policy. The transport
//! ([`crate::net`]) feeds it decoded requests with the time and sends back what it returns.
//!
//! Before any nonce is drawn, a `SignCommitReq` is re-checked here, independently of the
//! coordinator:
//!
//! * `sign_event`: the unsigned event in the request context is parsed (signer.md §12.5
//!   limits), an included `pubkey` must be the key's npub, and the NIP-01 id computed with
//!   that npub must equal the message the coordinator asks to sign. A coordinator cannot
//!   obtain a signature over anything but the event it shows the node.
//! * `raw_sign` (the CLI's 32-byte signing): refused unless [`NodePolicy::allow_raw_sign`];
//!   a raw message could be the id of an event the node has never seen (§8.4 item 4).
//! * other methods cannot sign; ECDH requests must be a NIP-44/NIP-04 method and
//!   [`NodePolicy::allow_ecdh`] must be on.
//!
//! Refusals are wire `Error{policy}` (code 4) naming the rule. The operator-signed policy
//! document of §8.9 (kinds, rate ceilings, `PolicyPut`) comes with the bunker.

use std::collections::BTreeMap;
use std::time::Duration;

use keyline_core::nostr::UnsignedEvent;

use crate::session::NodeSigner;
use crate::wire::{Body, ErrorCode, KeyId, Method, RequestContext};
use crate::{NodeShare, SignerRng};

/// What this node allows, whatever the coordinator asks (the coarse outer fence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodePolicy {
    /// Sign raw 32-byte messages (`raw_sign`). Off by default.
    pub allow_raw_sign: bool,
    /// Take part in threshold ECDH (NIP-44/NIP-04 encryption for the key). On by default.
    pub allow_ecdh: bool,
}

impl Default for NodePolicy {
    fn default() -> Self {
        Self {
            allow_raw_sign: false,
            allow_ecdh: true,
        }
    }
}

/// One node's signing state: its shares by key and its policy.
#[derive(Debug, Default)]
pub struct NodeCore {
    keys: BTreeMap<KeyId, (NodeSigner, u32)>,
    policy: NodePolicy,
}

impl NodeCore {
    /// A node with no keys yet.
    pub fn new(policy: NodePolicy) -> Self {
        Self {
            keys: BTreeMap::new(),
            policy,
        }
    }

    /// This node's policy.
    pub fn policy(&self) -> NodePolicy {
        self.policy
    }

    /// Starts serving `share` (share version `version`) under `key_id`, replacing an older
    /// share of that key, whose live nonces are dropped.
    pub fn add_key(&mut self, key_id: KeyId, share: NodeShare, version: u32) {
        self.keys
            .insert(key_id, (NodeSigner::new(share, key_id), version));
    }

    /// A copy of the share of `key_id` and its version, for a refresh ceremony.
    pub fn current_share(&self, key_id: &KeyId) -> Option<(NodeShare, u32)> {
        let (signer, version) = self.keys.get(key_id)?;
        signer.share_copy().ok().map(|share| (share, *version))
    }

    /// Stops serving `key_id`; returns whether it was held.
    pub fn remove_key(&mut self, key_id: &KeyId) -> bool {
        self.keys.remove(key_id).is_some()
    }

    /// The keys held, ascending.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// The signer of `key_id`, if held (status and tests).
    pub fn signer(&self, key_id: &KeyId) -> Option<&NodeSigner> {
        self.keys.get(key_id).map(|(signer, _)| signer)
    }

    /// Live nonce sessions over all keys.
    pub fn live_sessions(&self) -> usize {
        self.signers().map(NodeSigner::live_sessions).sum()
    }

    /// The earliest time something expires.
    pub fn deadline(&self) -> Option<Duration> {
        self.signers().filter_map(NodeSigner::deadline).min()
    }

    /// Wipes expired nonces and records.
    pub fn on_timeout(&mut self, now: Duration) {
        for (signer, _) in self.keys.values_mut() {
            signer.on_timeout(now);
        }
    }

    fn signers(&self) -> impl Iterator<Item = &NodeSigner> {
        self.keys.values().map(|(signer, _)| signer)
    }

    fn signer_mut(&mut self, key_id: &KeyId) -> Option<&mut NodeSigner> {
        self.keys.get_mut(key_id).map(|(signer, _)| signer)
    }

    fn signer_for_session(
        &mut self,
        session_id: &crate::ecdh::SessionId,
    ) -> Option<&mut NodeSigner> {
        self.keys
            .values_mut()
            .map(|(signer, _)| signer)
            .find(|s| s.knows(session_id))
    }

    /// Handles one request from a coordinator; returns the reply, if any. Messages that are
    /// not signing, ECDH or liveness requests get `None` (the transport answers
    /// `unsupported_type` for those it does not route elsewhere).
    pub fn handle(&mut self, body: &Body, now: Duration, rng: &mut impl SignerRng) -> Option<Body> {
        match body {
            Body::Ping { nonce } => Some(Body::Pong {
                nonce: *nonce,
                active_sessions: u32::try_from(self.live_sessions()).unwrap_or(u32::MAX),
            }),
            Body::SignCommitReq {
                key_id,
                message,
                context,
                ..
            } => {
                let policy = self.policy;
                let Some(signer) = self.signer_mut(key_id) else {
                    return Some(refuse(ErrorCode::UNKNOWN_KEY, "key not held by this node"));
                };
                let npub = signer.npub();
                if let Err(rule) = check_sign(&policy, &npub, message, context) {
                    return Some(refuse(ErrorCode::POLICY, rule));
                }
                signer.handle(body, now, rng)
            }
            Body::EcdhReq {
                key_id, context, ..
            } => {
                let policy = self.policy;
                let Some(signer) = self.signer_mut(key_id) else {
                    return Some(refuse(ErrorCode::UNKNOWN_KEY, "key not held by this node"));
                };
                if let Err(rule) = check_ecdh(&policy, context) {
                    return Some(refuse(ErrorCode::POLICY, rule));
                }
                signer.handle(body, now, rng)
            }
            Body::SignShareReq { session_id, .. } => match self.signer_for_session(session_id) {
                Some(signer) => signer.handle(body, now, rng),
                None => Some(refuse(ErrorCode::UNKNOWN_SESSION, "no live session")),
            },
            Body::SignAbort { session_id } => {
                if let Some(signer) = self.signer_for_session(session_id) {
                    signer.handle(body, now, rng);
                }
                None
            }
            _ => None,
        }
    }
}

fn refuse(code: ErrorCode, text: &str) -> Body {
    Body::error(code, None, text)
}

/// The node-side checks of a `SignCommitReq` (module docs); `Err` names the rule.
fn check_sign(
    policy: &NodePolicy,
    npub: &[u8; 32],
    message: &[u8],
    context: &RequestContext,
) -> Result<(), &'static str> {
    match context.method {
        Method::SignEvent => {
            let event = UnsignedEvent::parse(&context.unsigned_event)
                .map_err(|_| "the request context does not hold a valid unsigned event")?;
            event
                .check_pubkey(npub)
                .map_err(|_| "the event's pubkey is not this key")?;
            if event.id(npub).as_slice() != message {
                return Err("the message is not the NIP-01 id of the event in the context");
            }
            Ok(())
        }
        Method::RawSign if policy.allow_raw_sign => Ok(()),
        Method::RawSign => Err("raw signing is off on this node"),
        _ => Err("this method does not sign"),
    }
}

fn check_ecdh(policy: &NodePolicy, context: &RequestContext) -> Result<(), &'static str> {
    match context.method {
        Method::Nip44Encrypt
        | Method::Nip44Decrypt
        | Method::Nip04Encrypt
        | Method::Nip04Decrypt
            if policy.allow_ecdh =>
        {
            Ok(())
        }
        Method::Nip44Encrypt
        | Method::Nip44Decrypt
        | Method::Nip04Encrypt
        | Method::Nip04Decrypt => Err("ECDH is off on this node"),
        _ => Err("this method does not use ECDH"),
    }
}
