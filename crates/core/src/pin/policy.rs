//! Pin policies and [`PinStore::check`].

use std::fmt;
use std::str::FromStr;

use super::store::{Inserted, keys_equal};
use super::{Pin, PinStore, validate_key, validate_peer, validate_protocol};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::keys::fingerprint;

/// Note stored with pins created by the `tofu` policy.
const TOFU_NOTE: &str = "pinned on first use";
/// Note stored with pins created or replaced at a prompt.
const PROMPT_NOTE: &str = "pinned at prompt";

/// How [`PinStore::check`] treats a key it has not seen pinned for that peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Only pinned keys are accepted.
    Strict,
    /// Trust on first use: an unpinned peer's key is pinned; a changed key is refused.
    Tofu,
    /// A [`Prompt`] decides about unpinned and changed keys.
    Prompt,
}

impl Policy {
    /// The policy's name as used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Tofu => "tofu",
            Self::Prompt => "prompt",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = Error;

    /// Parses `strict`, `tofu` or `prompt` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        [Self::Strict, Self::Tofu, Self::Prompt]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let shown: String = s.chars().take(32).collect();
                Error::param(
                    "pin policy",
                    format!("unknown policy {shown:?}; use strict, tofu or prompt"),
                )
            })
    }
}

/// What a [`Prompt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptDecision {
    /// Refuse the key: [`Error::PinRefused`].
    Reject,
    /// Accept the key for this connection only: [`PinOutcome::Accepted`].
    AcceptOnce,
    /// Accept and pin the key, replacing a different pinned one.
    Pin,
}

/// Asks someone (usually the user at a terminal) whether to accept a key.
///
/// Called by [`PinStore::check`] under [`Policy::Prompt`] when the presented key is not the
/// pinned one, with no database lock held. `decide` is synchronous and runs on the calling
/// task: it must not block for long inside an async runtime; an interactive prompt belongs
/// in a CLI, not in a server.
pub trait Prompt: Send + Sync {
    /// Decides about `fingerprint`, presented by `peer` over `protocol`. `pinned` is the
    /// fingerprint of the currently pinned key, if the peer has one (the key changed).
    fn decide(
        &self,
        protocol: &str,
        peer: &str,
        fingerprint: &str,
        pinned: Option<&str>,
    ) -> PromptDecision;
}

impl<F> Prompt for F
where
    F: Fn(&str, &str, &str, Option<&str>) -> PromptDecision + Send + Sync,
{
    fn decide(
        &self,
        protocol: &str,
        peer: &str,
        fingerprint: &str,
        pinned: Option<&str>,
    ) -> PromptDecision {
        self(protocol, peer, fingerprint, pinned)
    }
}

/// Why [`PinStore::check`] accepted a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinOutcome {
    /// The key is the pinned one.
    Known,
    /// The peer had no pin; the key is pinned now (`tofu`, or `prompt` answered
    /// [`PromptDecision::Pin`]).
    NewlyPinned,
    /// The prompt replaced a different pinned key with this one.
    Replaced {
        /// Fingerprint of the key that was pinned before.
        previous_fingerprint: String,
    },
    /// The prompt accepted the key for this connection without pinning it.
    Accepted,
}

impl PinStore {
    /// Decides whether `presented_key` is acceptable for `peer` under `policy` (see the
    /// table in [`crate::pin`]); `now_unix` stamps a new pin.
    ///
    /// Rejections are errors that carry the fingerprints: [`Error::PinMismatch`],
    /// [`Error::NotPinned`], [`Error::PinRefused`], and [`Error::PromptUnavailable`] if the
    /// policy is `prompt` but `prompt` is `None`. Pinning is race-free across processes: if
    /// another process pinned a different key for the same peer first, this call returns
    /// [`Error::PinMismatch`].
    pub async fn check(
        &self,
        policy: Policy,
        protocol: &str,
        peer: &str,
        presented_key: &[u8],
        now_unix: u64,
        prompt: Option<&dyn Prompt>,
    ) -> Result<PinOutcome> {
        validate_protocol(protocol)?;
        validate_peer(peer)?;
        validate_key(presented_key)?;
        let pinned = self.get(protocol, peer).await?;
        if let Some(pin) = &pinned
            && keys_equal(&pin.key, presented_key)
        {
            return Ok(PinOutcome::Known);
        }
        let check = Check {
            store: self,
            protocol,
            peer,
            key: presented_key,
            now_unix,
        };
        match (policy, pinned) {
            (Policy::Strict, None) => Err(Error::NotPinned {
                protocol: protocol.into(),
                peer: peer.into(),
                fingerprint: fingerprint(presented_key),
            }),
            (Policy::Strict | Policy::Tofu, Some(pin)) => Err(check.mismatch(&pin)),
            (Policy::Tofu, None) => check.pin_new(TOFU_NOTE).await,
            (Policy::Prompt, pinned) => {
                let presented = fingerprint(presented_key);
                let prompt = prompt.ok_or_else(|| Error::PromptUnavailable {
                    protocol: protocol.into(),
                    peer: peer.into(),
                    fingerprint: presented.clone(),
                })?;
                let pinned_fp = pinned.as_ref().map(Pin::fingerprint);
                match prompt.decide(protocol, peer, &presented, pinned_fp.as_deref()) {
                    PromptDecision::Reject => Err(Error::PinRefused {
                        protocol: protocol.into(),
                        peer: peer.into(),
                        fingerprint: presented,
                    }),
                    PromptDecision::AcceptOnce => Ok(PinOutcome::Accepted),
                    PromptDecision::Pin => match pinned {
                        None => check.pin_new(PROMPT_NOTE).await,
                        Some(old) => check.replace(&old).await,
                    },
                }
            }
        }
    }

    /// [`check`](Self::check) with the current system time.
    pub async fn check_now(
        &self,
        policy: Policy,
        protocol: &str,
        peer: &str,
        presented_key: &[u8],
        prompt: Option<&dyn Prompt>,
    ) -> Result<PinOutcome> {
        let now = SystemClock.unix_now();
        self.check(policy, protocol, peer, presented_key, now, prompt)
            .await
    }
}

/// The arguments of one `check` call.
struct Check<'a> {
    store: &'a PinStore,
    protocol: &'a str,
    peer: &'a str,
    key: &'a [u8],
    now_unix: u64,
}

impl Check<'_> {
    /// Pins the key unless the peer got a pin meanwhile, then compares with that one.
    async fn pin_new(&self, note: &str) -> Result<PinOutcome> {
        let inserted = self
            .store
            .insert_if_absent(
                self.protocol,
                self.peer,
                self.key,
                self.now_unix,
                Some(note),
            )
            .await?;
        match inserted {
            Inserted::New => {
                tracing::info!(
                    protocol = self.protocol,
                    peer = self.peer,
                    fingerprint = %fingerprint(self.key),
                    "pinned new peer key"
                );
                Ok(PinOutcome::NewlyPinned)
            }
            Inserted::Existing(pin) if keys_equal(&pin.key, self.key) => Ok(PinOutcome::Known),
            Inserted::Existing(pin) => Err(self.mismatch(&pin)),
        }
    }

    /// Replaces `old` with the key, unless the pin changed since the prompt saw it.
    async fn replace(&self, old: &Pin) -> Result<PinOutcome> {
        let result = self
            .store
            .replace_if(
                self.protocol,
                self.peer,
                &old.key,
                self.key,
                self.now_unix,
                Some(PROMPT_NOTE),
            )
            .await?;
        match result {
            Ok(()) => {
                tracing::info!(
                    protocol = self.protocol,
                    peer = self.peer,
                    previous = %old.fingerprint(),
                    fingerprint = %fingerprint(self.key),
                    "replaced pinned peer key"
                );
                Ok(PinOutcome::Replaced {
                    previous_fingerprint: old.fingerprint(),
                })
            }
            Err(Some(current)) if keys_equal(&current.key, self.key) => Ok(PinOutcome::Known),
            Err(Some(current)) => Err(self.mismatch(&current)),
            // Removed while the prompt was open: pin it as new.
            Err(None) => self.pin_new(PROMPT_NOTE).await,
        }
    }

    fn mismatch(&self, pinned: &Pin) -> Error {
        Error::PinMismatch {
            protocol: self.protocol.into(),
            peer: self.peer.into(),
            pinned_fingerprint: pinned.fingerprint(),
            presented_fingerprint: fingerprint(self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::store::tests::{NOW, key};
    use std::sync::Mutex;

    async fn store_with(peer: &str, k: u8) -> PinStore {
        let store = PinStore::open_in_memory().await.unwrap();
        store
            .add_at("shs", peer, &key(k), None, false, NOW)
            .await
            .unwrap();
        store
    }

    #[test]
    fn policy_names() {
        for p in [Policy::Strict, Policy::Tofu, Policy::Prompt] {
            assert_eq!(p.to_string().parse::<Policy>().unwrap(), p);
        }
        assert_eq!("TOFU".parse::<Policy>().unwrap(), Policy::Tofu);
        let err = "trust".parse::<Policy>().unwrap_err();
        assert!(
            err.to_string().contains("use strict, tofu or prompt"),
            "{err}"
        );
        let err = "x".repeat(10_000).parse::<Policy>().unwrap_err();
        assert!(err.to_string().len() < 200);
    }

    #[tokio::test]
    async fn strict() {
        let store = store_with("a", 1).await;
        let check = |peer: &'static str, k: u8| {
            let store = store.clone();
            async move {
                store
                    .check(Policy::Strict, "shs", peer, &key(k), NOW, None)
                    .await
            }
        };
        assert_eq!(check("a", 1).await.unwrap(), PinOutcome::Known);
        match check("a", 2).await.unwrap_err() {
            Error::PinMismatch {
                pinned_fingerprint,
                presented_fingerprint,
                ..
            } => {
                assert_eq!(pinned_fingerprint, fingerprint(&key(1)));
                assert_eq!(presented_fingerprint, fingerprint(&key(2)));
            }
            other => panic!("{other}"),
        }
        let err = check("b", 1).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotPinned { fingerprint: f, .. } if *f == fingerprint(&key(1)))
        );
        assert_eq!(
            store.get("shs", "b").await.unwrap(),
            None,
            "strict never pins"
        );
    }

    #[tokio::test]
    async fn tofu() {
        let store = PinStore::open_in_memory().await.unwrap();
        let out = store
            .check(Policy::Tofu, "shs", "a", &key(1), NOW, None)
            .await;
        assert_eq!(out.unwrap(), PinOutcome::NewlyPinned);
        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert_eq!((pin.key, pin.first_seen), (key(1), NOW));
        assert_eq!(pin.note.as_deref(), Some(TOFU_NOTE));
        let out = store
            .check(Policy::Tofu, "shs", "a", &key(1), NOW + 5, None)
            .await;
        assert_eq!(out.unwrap(), PinOutcome::Known);
        let err = store
            .check(Policy::Tofu, "shs", "a", &key(2), NOW, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinMismatch { .. }), "{err}");
        assert_eq!(store.get("shs", "a").await.unwrap().unwrap().key, key(1));
        // Another protocol is another namespace.
        let out = store
            .check(Policy::Tofu, "kps", "a", &key(2), NOW, None)
            .await;
        assert_eq!(out.unwrap(), PinOutcome::NewlyPinned);
    }

    /// A prompt that answers `decision` and records what it was asked.
    struct Recorder {
        decision: PromptDecision,
        asked: Mutex<Vec<(String, Option<String>)>>,
    }

    impl Prompt for Recorder {
        fn decide(&self, _: &str, _: &str, fp: &str, pinned: Option<&str>) -> PromptDecision {
            self.asked
                .lock()
                .unwrap()
                .push((fp.to_string(), pinned.map(str::to_string)));
            self.decision
        }
    }

    fn recorder(decision: PromptDecision) -> Recorder {
        Recorder {
            decision,
            asked: Mutex::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn prompt_known_key_is_not_asked() {
        let store = store_with("a", 1).await;
        let prompt = recorder(PromptDecision::Reject);
        let out = store
            .check(Policy::Prompt, "shs", "a", &key(1), NOW, Some(&prompt))
            .await;
        assert_eq!(out.unwrap(), PinOutcome::Known);
        assert!(prompt.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn prompt_reject_and_accept_once() {
        let store = store_with("a", 1).await;
        let prompt = recorder(PromptDecision::Reject);
        let err = store
            .check(Policy::Prompt, "shs", "a", &key(2), NOW, Some(&prompt))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinRefused { .. }), "{err}");
        assert_eq!(
            prompt.asked.lock().unwrap()[0],
            (fingerprint(&key(2)), Some(fingerprint(&key(1))))
        );

        let prompt = recorder(PromptDecision::AcceptOnce);
        let out = store
            .check(Policy::Prompt, "shs", "b", &key(2), NOW, Some(&prompt))
            .await;
        assert_eq!(out.unwrap(), PinOutcome::Accepted);
        assert_eq!(prompt.asked.lock().unwrap()[0].1, None);
        assert_eq!(store.get("shs", "b").await.unwrap(), None, "not pinned");
        assert_eq!(store.get("shs", "a").await.unwrap().unwrap().key, key(1));
    }

    #[tokio::test]
    async fn prompt_pin_new_and_replace() {
        let store = store_with("a", 1).await;
        let prompt = |_: &str, _: &str, _: &str, _: Option<&str>| PromptDecision::Pin;
        let out = store
            .check(Policy::Prompt, "shs", "b", &key(3), NOW, Some(&prompt))
            .await;
        assert_eq!(out.unwrap(), PinOutcome::NewlyPinned);
        assert_eq!(store.get("shs", "b").await.unwrap().unwrap().key, key(3));

        let out = store
            .check(Policy::Prompt, "shs", "a", &key(2), NOW + 7, Some(&prompt))
            .await;
        assert_eq!(
            out.unwrap(),
            PinOutcome::Replaced {
                previous_fingerprint: fingerprint(&key(1))
            }
        );
        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert_eq!((pin.key, pin.first_seen), (key(2), NOW + 7));
    }

    #[tokio::test]
    async fn prompt_replace_loses_to_a_concurrent_change() {
        let store = store_with("a", 1).await;
        // While the prompt is open, another process pins key 4.
        let other = store.clone();
        let prompt = move |_: &str, _: &str, _: &str, _: Option<&str>| {
            let other = other.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                rt.block_on(other.add_at("shs", "a", &key(4), None, true, NOW))
                    .unwrap();
            })
            .join()
            .unwrap();
            PromptDecision::Pin
        };
        let err = store
            .check(Policy::Prompt, "shs", "a", &key(2), NOW, Some(&prompt))
            .await
            .unwrap_err();
        match err {
            Error::PinMismatch {
                pinned_fingerprint, ..
            } => assert_eq!(pinned_fingerprint, fingerprint(&key(4))),
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn prompt_without_prompt_is_an_error() {
        let store = PinStore::open_in_memory().await.unwrap();
        let err = store
            .check(Policy::Prompt, "shs", "a", &key(1), NOW, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PromptUnavailable { .. }), "{err}");
    }

    #[tokio::test]
    async fn check_now_stamps_system_time() {
        let store = PinStore::open_in_memory().await.unwrap();
        let before = SystemClock.unix_now();
        let out = store
            .check_now(Policy::Tofu, "shs", "a", &key(1), None)
            .await;
        assert_eq!(out.unwrap(), PinOutcome::NewlyPinned);
        assert!(store.get("shs", "a").await.unwrap().unwrap().first_seen >= before);
    }

    #[tokio::test]
    async fn tofu_respects_the_pin_count_limit() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::pin::PinStoreConfig {
            max_pins_per_protocol: 3,
            ..Default::default()
        };
        let store = PinStore::open_with(&dir.path().join("db"), config)
            .await
            .unwrap();
        for (i, peer) in ["a", "b", "c"].into_iter().enumerate() {
            let out = store
                .check(Policy::Tofu, "shs", peer, &key(i as u8), NOW, None)
                .await;
            assert_eq!(out.unwrap(), PinOutcome::NewlyPinned);
        }
        let err = store
            .check(Policy::Tofu, "shs", "d", &key(9), NOW, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinStoreFull { limit: 3, .. }), "{err}");
        // Known peers still pass.
        let out = store
            .check(Policy::Tofu, "shs", "a", &key(0), NOW, None)
            .await;
        assert_eq!(out.unwrap(), PinOutcome::Known);
    }

    /// Two stores on one file stand in for two processes racing to pin the same peer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tofu_race_between_two_stores_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyline.db");
        let a = PinStore::open(&path).await.unwrap();
        let b = PinStore::open(&path).await.unwrap();
        for round in 0..25 {
            let peer = format!("peer-{round}");
            let (k1, k2) = (key(1), key(2));
            let (ra, rb) = tokio::join!(
                a.check(Policy::Tofu, "shs", &peer, &k1, NOW, None),
                b.check(Policy::Tofu, "shs", &peer, &k2, NOW, None),
            );
            let winner = match (ra, rb) {
                (
                    Ok(PinOutcome::NewlyPinned),
                    Err(Error::PinMismatch {
                        pinned_fingerprint, ..
                    }),
                ) => {
                    assert_eq!(pinned_fingerprint, fingerprint(&key(1)));
                    key(1)
                }
                (
                    Err(Error::PinMismatch {
                        pinned_fingerprint, ..
                    }),
                    Ok(PinOutcome::NewlyPinned),
                ) => {
                    assert_eq!(pinned_fingerprint, fingerprint(&key(2)));
                    key(2)
                }
                other => panic!("round {round}: {other:?}"),
            };
            assert_eq!(a.get("shs", &peer).await.unwrap().unwrap().key, winner);
            assert_eq!(b.get("shs", &peer).await.unwrap().unwrap().key, winner);
        }
    }
}
