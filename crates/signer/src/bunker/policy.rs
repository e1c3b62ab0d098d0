//! Permissions (spec §12): grants per connection, the hard rules for sensitive kinds, and the
//! evaluation of one request. Pure: no clock, no store; the caller passes `now` and the usage
//! counts it read.
//!
//! Evaluation order (§12.1): hard rules (24133 never signed; NIP-98 and NIP-42 event checks),
//! then the most specific matching grant (method + kind > method > connection default), `deny`
//! winning over `allow` and `ask` at equal specificity, expired grants ignored; a method-wide
//! grant never covers a sensitive kind (§12.4); then the caps of an `allow` (per minute, per
//! day); `ask` goes to the operator.

use serde::{Deserialize, Serialize};

use crate::nip46::Method;
use keyline_core::nostr::UnsignedEvent;

/// Kinds that need a grant naming them (spec §12.4): profile, follow list, deletion, relay
/// list, NIP-98 HTTP auth, NIP-42 relay auth.
pub const SENSITIVE_KINDS: [u16; 6] = [0, 3, 5, 10002, 27235, 22242];
/// NIP-46 events: never signed with the user key.
pub const NIP46_KIND: u16 = 24133;
/// NIP-98 HTTP auth events.
pub const NIP98_KIND: u16 = 27235;
/// NIP-42 relay auth events.
pub const NIP42_KIND: u16 = 22242;
/// How far a NIP-98 event's `created_at` may be from now (spec §12.4).
pub const NIP98_WINDOW_SECS: u64 = 60;
/// How far a NIP-42 event's `created_at` may be from now.
pub const NIP42_WINDOW_SECS: u64 = 600;
/// How far in the future a `sign_event` `created_at` may be (spec §12.5).
pub const MAX_FUTURE_SECS: u64 = 600;
/// Default ceilings of an `allow` for `sign_event` (spec §12.2).
pub const DEFAULT_SIGN_PER_MINUTE: u32 = 60;
/// Default daily ceiling for `sign_event`.
pub const DEFAULT_SIGN_PER_DAY: u32 = 2000;
/// Default ceilings of the encrypt/decrypt methods.
pub const DEFAULT_CRYPT_PER_MINUTE: u32 = 120;
/// Default daily ceiling of the encrypt/decrypt methods.
pub const DEFAULT_CRYPT_PER_DAY: u32 = 10_000;
/// Most grants one connection may hold.
pub const MAX_GRANTS: usize = 256;

/// What a grant says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Do it (within the caps).
    Allow,
    /// Refuse: `permission denied`.
    Deny,
    /// Ask the operator (the `auth_url` flow).
    Ask,
}

impl Decision {
    /// `allow`, `deny`, `ask`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Ask => "ask",
        }
    }

    /// The decision of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            "ask" => Some(Self::Ask),
            _ => None,
        }
    }
}

/// Method-specific limits of a grant (spec §12.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    /// NIP-98: `u` must start with one of these (scheme + host + port + path prefix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_prefixes: Vec<String>,
    /// NIP-98: allowed HTTP methods (upper case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// NIP-42: allowed relay URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<String>,
    /// Encrypt/decrypt: allowed peers (64 hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

impl Constraints {
    /// True when nothing is constrained.
    pub fn is_empty(&self) -> bool {
        self.url_prefixes.is_empty()
            && self.methods.is_empty()
            && self.relays.is_empty()
            && self.peers.is_empty()
    }
}

/// One grant: `(method, kind?) → decision`, with expiry and caps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The method name (`sign_event`, `nip44_encrypt` …).
    pub method: String,
    /// The event kind (`sign_event` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u16>,
    /// What it says.
    pub decision: Decision,
    /// Unix seconds after which it no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// At most this many allowed requests per minute (`None`: the method's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    /// At most this many per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
    /// Method-specific limits.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
}

impl Grant {
    /// A grant without expiry, caps or constraints.
    pub fn new(method: &str, kind: Option<u16>, decision: Decision) -> Self {
        Self {
            method: method.to_owned(),
            kind,
            decision,
            expires_at: None,
            per_minute: None,
            per_day: None,
            constraints: Constraints::default(),
        }
    }

    /// Parses the CLI's `method` or `kind:N` (= `sign_event` of kind N) form.
    pub fn parse_spec(spec: &str, decision: Decision) -> Result<Self, String> {
        if let Some(kind) = spec.strip_prefix("kind:") {
            let kind: u16 = kind
                .parse()
                .map_err(|_| format!("{spec:?}: kind must be 0-65535"))?;
            return Ok(Self::new("sign_event", Some(kind), decision));
        }
        let (method, kind) = match spec.split_once(':') {
            Some((m, k)) => (
                m,
                Some(
                    k.parse::<u16>()
                        .map_err(|_| format!("{spec:?}: kind must be 0-65535"))?,
                ),
            ),
            None => (spec, None),
        };
        let known = Method::from_name(method);
        if !known.is_known() || matches!(known, Method::Connect) {
            return Err(format!(
                "{method:?} is not a method that takes a grant (sign_event, nip44_encrypt, \
                 nip44_decrypt, nip04_encrypt, nip04_decrypt, get_public_key, ping, \
                 switch_relays, logout)"
            ));
        }
        if kind.is_some() && known != Method::SignEvent {
            return Err(format!("{spec:?}: only sign_event takes a kind"));
        }
        Ok(Self::new(method, kind, decision))
    }

    /// Checks the shape of an operator-supplied grant.
    pub fn validate(&self) -> Result<(), String> {
        let method = Method::from_name(&self.method);
        if !method.is_known() || method == Method::Connect {
            return Err(format!("unknown method {:?}", self.method));
        }
        if self.kind.is_some() && method != Method::SignEvent {
            return Err("only sign_event grants take a kind".into());
        }
        if self.kind == Some(NIP46_KIND) && self.decision != Decision::Deny {
            return Err("kind 24133 is never signed with the user key".into());
        }
        Ok(())
    }

    fn active(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// The defaults of a new connection (spec §12.1): `get_public_key`, `ping`, `switch_relays`,
/// `logout` allowed; everything else asks.
pub fn default_decision(method: &Method) -> Decision {
    match method {
        Method::GetPublicKey | Method::Ping | Method::SwitchRelays | Method::Logout => {
            Decision::Allow
        }
        _ => Decision::Ask,
    }
}

/// The grants of a secret template (spec §12.1), or `None` for an unknown name.
pub fn template(name: &str) -> Option<Vec<Grant>> {
    let allow_kind = |kind: u16| Grant {
        per_minute: Some(120),
        per_day: Some(5000),
        ..Grant::new("sign_event", Some(kind), Decision::Allow)
    };
    match name {
        "social" => Some([1, 6, 7, 16, 1111, 9734].map(allow_kind).to_vec()),
        "messaging" => {
            let mut grants: Vec<Grant> = [4, 13, 14, 1059].map(allow_kind).to_vec();
            for m in [
                "nip44_encrypt",
                "nip44_decrypt",
                "nip04_encrypt",
                "nip04_decrypt",
            ] {
                grants.push(Grant::new(m, None, Decision::Allow));
            }
            Some(grants)
        }
        "none" => Some(Vec::new()),
        _ => None,
    }
}

/// Names of the templates [`template`] knows.
pub const TEMPLATES: [&str; 3] = ["social", "messaging", "none"];

/// What is being asked, for evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// The method.
    pub method: &'a Method,
    /// The unsigned event (`sign_event`).
    pub event: Option<&'a UnsignedEvent>,
    /// The peer (encrypt/decrypt), 64 hex.
    pub peer: Option<&'a str>,
}

/// Allowed requests already counted for the matching grant's scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// In the last 60 s.
    pub last_minute: u32,
    /// In the last 24 h.
    pub last_day: u32,
}

/// The outcome of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refused; the reply text of spec §3.8 and the reason for the audit log.
    Deny {
        /// `permission denied`, `invalid event: …` …
        reply: String,
        /// Why, for the log.
        reason: String,
    },
    /// Over a cap (`rate limited`); the window for the log.
    RateLimited {
        /// `minute` or `day`.
        window: &'static str,
    },
    /// Ask the operator.
    Ask,
}

/// The scope caps are counted in: the method, and the kind for `sign_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Method name.
    pub method: String,
    /// Kind (`sign_event`).
    pub kind: Option<u16>,
    /// Per-minute ceiling.
    pub per_minute: u32,
    /// Per-day ceiling.
    pub per_day: u32,
}

/// Picks the grant that applies (most specific, `deny` first), if any; returns the decision and
/// the cap scope for an `allow`.
pub fn select(ask: &Ask<'_>, grants: &[Grant], now: u64) -> (Decision, Option<Scope>) {
    let kind = ask.event.map(|e| e.kind);
    let sensitive = kind.is_some_and(|k| SENSITIVE_KINDS.contains(&k));
    let name = ask.method.name();
    let rank = |g: &Grant| -> Option<u8> {
        if g.method != name || !g.active(now) {
            return None;
        }
        match (g.kind, kind) {
            (Some(a), Some(b)) if a == b => Some(2),
            (Some(_), _) => None,
            // A method-wide allow or ask never covers a sensitive kind; a method-wide deny does.
            (None, _) if sensitive && g.decision != Decision::Deny => None,
            (None, _) => Some(1),
        }
    };
    let best = grants
        .iter()
        .filter_map(|g| rank(g).map(|r| (r, g)))
        .max_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                // Deny > ask > allow at equal specificity.
                let order = |d: Decision| match d {
                    Decision::Deny => 2,
                    Decision::Ask => 1,
                    Decision::Allow => 0,
                };
                order(a.1.decision).cmp(&order(b.1.decision))
            })
        });
    match best {
        Some((_, g)) => {
            let scope = (g.decision == Decision::Allow).then(|| {
                let (m, d) = default_caps(ask.method, kind);
                Scope {
                    method: name.to_owned(),
                    kind: g.kind,
                    per_minute: g.per_minute.unwrap_or(m),
                    per_day: g.per_day.unwrap_or(d),
                }
            });
            (g.decision, scope)
        }
        None if sensitive => (Decision::Ask, None),
        None => (default_decision(ask.method), None),
    }
}

fn default_caps(method: &Method, kind: Option<u16>) -> (u32, u32) {
    match method {
        Method::SignEvent if kind == Some(NIP98_KIND) => (60, DEFAULT_SIGN_PER_DAY),
        Method::SignEvent => (DEFAULT_SIGN_PER_MINUTE, DEFAULT_SIGN_PER_DAY),
        _ => (DEFAULT_CRYPT_PER_MINUTE, DEFAULT_CRYPT_PER_DAY),
    }
}

/// The hard rules that no grant overrides (spec §12.4, §12.5): returns the reply and reason of
/// a refusal. `now` in Unix seconds.
pub fn hard_rules(ask: &Ask<'_>, now: u64) -> Option<(String, String)> {
    let event = ask.event?;
    let invalid = |reason: &str| Some((format!("invalid event: {reason}"), reason.to_owned()));
    if event.kind == NIP46_KIND {
        return Some((
            "permission denied".into(),
            "kind 24133 is never signed with the user key".into(),
        ));
    }
    if event.created_at > now + MAX_FUTURE_SECS {
        return invalid("created_at too far in the future");
    }
    let tag = |name: &str| -> Option<&str> {
        event
            .tags
            .iter()
            .find(|t| t.first().map(String::as_str) == Some(name))
            .and_then(|t| t.get(1))
            .map(String::as_str)
    };
    match event.kind {
        NIP98_KIND => {
            if event.created_at.abs_diff(now) > NIP98_WINDOW_SECS {
                return invalid("nip-98 created_at more than 60 s from now");
            }
            let Some(u) = tag("u") else {
                return invalid("nip-98 event without u tag");
            };
            if !nip98_url_ok(u) {
                return invalid("nip-98 u must be https:// (or http:// to loopback)");
            }
            let Some(method) = tag("method") else {
                return invalid("nip-98 event without method tag");
            };
            if method.is_empty()
                || method.len() > 16
                || !method.bytes().all(|b| b.is_ascii_alphabetic())
            {
                return invalid("nip-98 method is not an http method");
            }
            if let Some(p) = tag("payload")
                && (p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return invalid("nip-98 payload is not 64 hex");
            }
        }
        NIP42_KIND => {
            if event.created_at.abs_diff(now) > NIP42_WINDOW_SECS {
                return invalid("nip-42 created_at more than 10 minutes from now");
            }
            if tag("relay").is_none() || tag("challenge").is_none() {
                return invalid("nip-42 event needs relay and challenge tags");
            }
        }
        _ => {}
    }
    None
}

fn nip98_url_ok(u: &str) -> bool {
    if u.starts_with("https://") {
        return u.len() > "https://".len();
    }
    let Some(rest) = u.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks an `allow` grant's constraints against the request (NIP-98 URL and method, NIP-42
/// relay, encrypt/decrypt peer).
pub fn constraints_hold(ask: &Ask<'_>, grants: &[Grant], now: u64) -> Result<(), String> {
    let kind = ask.event.map(|e| e.kind);
    let Some(grant) = grants
        .iter()
        .filter(|g| {
            g.method == ask.method.name()
                && g.active(now)
                && g.decision == Decision::Allow
                && (g.kind.is_none() || g.kind == kind)
        })
        .max_by_key(|g| g.kind.is_some())
    else {
        return Ok(());
    };
    let c = &grant.constraints;
    let tag = |name: &str| -> Option<String> {
        ask.event?
            .tags
            .iter()
            .find(|t| t.first().map(String::as_str) == Some(name))
            .and_then(|t| t.get(1).cloned())
    };
    if !c.url_prefixes.is_empty() {
        let u = tag("u").unwrap_or_default();
        if !c.url_prefixes.iter().any(|p| url_has_prefix(&u, p)) {
            return Err("url outside the grant".into());
        }
    }
    if !c.methods.is_empty() {
        let m = tag("method").unwrap_or_default();
        if !c.methods.iter().any(|x| x.eq_ignore_ascii_case(&m)) {
            return Err("http method outside the grant".into());
        }
    }
    if !c.relays.is_empty() {
        let r = tag("relay").unwrap_or_default();
        if !c
            .relays
            .iter()
            .any(|x| x.trim_end_matches('/') == r.trim_end_matches('/'))
        {
            return Err("relay outside the grant".into());
        }
    }
    if !c.peers.is_empty() && !ask.peer.is_some_and(|p| c.peers.iter().any(|x| x == p)) {
        return Err("peer outside the grant".into());
    }
    Ok(())
}

/// `prefix` matches `url` on a path-segment boundary (so `https://a.example/api` does not
/// cover `https://a.example/apix` nor `https://a.example.evil/`).
fn url_has_prefix(url: &str, prefix: &str) -> bool {
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#'])
}

/// Evaluates a request from a connected client (spec §12.1 steps 2–5). `usage` gives the
/// counts in the scope [`select`] returned; call [`select`] first to learn it, or pass the
/// counts directly when they are cheap.
pub fn evaluate(ask: &Ask<'_>, grants: &[Grant], usage: Usage, now: u64) -> Verdict {
    if let Some((reply, reason)) = hard_rules(ask, now) {
        return Verdict::Deny { reply, reason };
    }
    let (decision, scope) = select(ask, grants, now);
    match decision {
        Decision::Deny => Verdict::Deny {
            reply: "permission denied".into(),
            reason: "denied by grant".into(),
        },
        Decision::Ask => Verdict::Ask,
        Decision::Allow => {
            if let Err(reason) = constraints_hold(ask, grants, now) {
                return Verdict::Deny {
                    reply: "permission denied".into(),
                    reason,
                };
            }
            if let Some(scope) = scope {
                if usage.last_minute >= scope.per_minute {
                    return Verdict::RateLimited { window: "minute" };
                }
                if usage.last_day >= scope.per_day {
                    return Verdict::RateLimited { window: "day" };
                }
            }
            Verdict::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, created_at: u64, tags: Vec<Vec<&str>>) -> UnsignedEvent {
        let tags: Vec<Vec<String>> = tags
            .into_iter()
            .map(|t| t.into_iter().map(str::to_owned).collect())
            .collect();
        let json = serde_json::json!({"kind": kind, "content": "", "tags": tags, "created_at": created_at});
        UnsignedEvent::parse(&json.to_string()).unwrap()
    }

    const NOW: u64 = 1_800_000_000;

    fn sign(e: &UnsignedEvent) -> Ask<'_> {
        Ask {
            method: &Method::SignEvent,
            event: Some(e),
            peer: None,
        }
    }

    #[test]
    fn defaults_allow_harmless_methods_and_ask_for_the_rest() {
        for m in [
            Method::GetPublicKey,
            Method::Ping,
            Method::SwitchRelays,
            Method::Logout,
        ] {
            let ask = Ask {
                method: &m,
                event: None,
                peer: None,
            };
            assert_eq!(evaluate(&ask, &[], Usage::default(), NOW), Verdict::Allow);
        }
        let e = event(1, NOW, vec![]);
        assert_eq!(
            evaluate(&sign(&e), &[], Usage::default(), NOW),
            Verdict::Ask
        );
        let m = Method::Nip44Encrypt;
        let ask = Ask {
            method: &m,
            event: None,
            peer: Some("ab"),
        };
        assert_eq!(evaluate(&ask, &[], Usage::default(), NOW), Verdict::Ask);
    }

    #[test]
    fn kind_grant_beats_method_grant_and_deny_wins_ties() {
        let e = event(1, NOW, vec![]);
        let grants = vec![
            Grant::new("sign_event", None, Decision::Allow),
            Grant::new("sign_event", Some(1), Decision::Deny),
        ];
        assert!(matches!(
            evaluate(&sign(&e), &grants, Usage::default(), NOW),
            Verdict::Deny { .. }
        ));
        let e7 = event(7, NOW, vec![]);
        assert_eq!(
            evaluate(&sign(&e7), &grants, Usage::default(), NOW),
            Verdict::Allow
        );
        let tie = vec![
            Grant::new("sign_event", Some(1), Decision::Allow),
            Grant::new("sign_event", Some(1), Decision::Deny),
        ];
        assert!(matches!(
            evaluate(&sign(&e), &tie, Usage::default(), NOW),
            Verdict::Deny { .. }
        ));
    }

    #[test]
    fn sensitive_kinds_need_a_grant_naming_them() {
        let grants = vec![Grant::new("sign_event", None, Decision::Allow)];
        for kind in SENSITIVE_KINDS {
            let e = event(
                kind,
                NOW,
                vec![
                    vec!["u", "https://a.example/"],
                    vec!["method", "GET"],
                    vec!["relay", "wss://r"],
                    vec!["challenge", "c"],
                ],
            );
            assert_eq!(
                evaluate(&sign(&e), &grants, Usage::default(), NOW),
                Verdict::Ask,
                "kind {kind}"
            );
            let mut named = grants.clone();
            named.push(Grant::new("sign_event", Some(kind), Decision::Allow));
            assert_eq!(
                evaluate(&sign(&e), &named, Usage::default(), NOW),
                Verdict::Allow,
                "kind {kind}"
            );
        }
    }

    #[test]
    fn nip46_kind_is_never_signed() {
        let e = event(NIP46_KIND, NOW, vec![]);
        let grants = vec![Grant::new("sign_event", Some(NIP46_KIND), Decision::Allow)];
        let Verdict::Deny { reply, .. } = evaluate(&sign(&e), &grants, Usage::default(), NOW)
        else {
            panic!("24133 allowed");
        };
        assert_eq!(reply, "permission denied");
        assert!(grants[0].validate().is_err());
    }

    #[test]
    fn expired_grants_are_ignored() {
        let e = event(1, NOW, vec![]);
        let mut g = Grant::new("sign_event", Some(1), Decision::Allow);
        g.expires_at = Some(NOW);
        assert_eq!(
            evaluate(&sign(&e), &[g.clone()], Usage::default(), NOW),
            Verdict::Ask
        );
        g.expires_at = Some(NOW + 1);
        assert_eq!(
            evaluate(&sign(&e), &[g], Usage::default(), NOW),
            Verdict::Allow
        );
    }

    #[test]
    fn caps_limit_allows() {
        let e = event(1, NOW, vec![]);
        let mut g = Grant::new("sign_event", Some(1), Decision::Allow);
        g.per_minute = Some(2);
        g.per_day = Some(3);
        let grants = [g];
        let at = |m, d| {
            evaluate(
                &sign(&e),
                &grants,
                Usage {
                    last_minute: m,
                    last_day: d,
                },
                NOW,
            )
        };
        assert_eq!(at(1, 1), Verdict::Allow);
        assert_eq!(at(2, 2), Verdict::RateLimited { window: "minute" });
        assert_eq!(at(0, 3), Verdict::RateLimited { window: "day" });
        let (_, scope) = select(&sign(&e), &grants, NOW);
        assert_eq!(scope.unwrap().per_minute, 2);
        let default = [Grant::new("sign_event", Some(1), Decision::Allow)];
        assert_eq!(
            select(&sign(&e), &default, NOW).1.unwrap().per_minute,
            DEFAULT_SIGN_PER_MINUTE
        );
    }

    #[test]
    fn nip98_rules() {
        let grant = |prefix: &str| {
            let mut g = Grant::new("sign_event", Some(NIP98_KIND), Decision::Allow);
            g.constraints.url_prefixes = vec![prefix.to_owned()];
            vec![g]
        };
        let ok = event(
            NIP98_KIND,
            NOW,
            vec![
                vec!["u", "https://api.example/v1/x"],
                vec!["method", "POST"],
            ],
        );
        assert_eq!(
            evaluate(
                &sign(&ok),
                &grant("https://api.example/v1"),
                Usage::default(),
                NOW
            ),
            Verdict::Allow
        );
        assert!(matches!(
            evaluate(
                &sign(&ok),
                &grant("https://api.example/v2"),
                Usage::default(),
                NOW
            ),
            Verdict::Deny { .. }
        ));
        assert!(matches!(
            evaluate(
                &sign(&ok),
                &grant("https://api.example/v"),
                Usage::default(),
                NOW
            ),
            Verdict::Deny { .. }
        ));
        let stale = event(
            NIP98_KIND,
            NOW - 61,
            vec![vec!["u", "https://api.example/"], vec!["method", "GET"]],
        );
        let Verdict::Deny { reply, .. } = evaluate(
            &sign(&stale),
            &grant("https://api.example/"),
            Usage::default(),
            NOW,
        ) else {
            panic!()
        };
        assert!(reply.starts_with("invalid event: nip-98 created_at"));
        for tags in [
            vec![vec!["method", "GET"]],
            vec![vec!["u", "http://api.example/"], vec!["method", "GET"]],
            vec![vec!["u", "https://api.example/"]],
            vec![vec!["u", "https://api.example/"], vec!["method", "G ET"]],
            vec![
                vec!["u", "https://api.example/"],
                vec!["method", "GET"],
                vec!["payload", "xyz"],
            ],
        ] {
            let e = event(NIP98_KIND, NOW, tags);
            assert!(matches!(
                evaluate(&sign(&e), &grant("https://"), Usage::default(), NOW),
                Verdict::Deny { .. }
            ));
        }
        let local = event(
            NIP98_KIND,
            NOW,
            vec![vec!["u", "http://127.0.0.1:8080/x"], vec!["method", "GET"]],
        );
        assert_eq!(
            evaluate(
                &sign(&local),
                &grant("http://127.0.0.1:8080/"),
                Usage::default(),
                NOW
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn far_future_events_are_refused() {
        let e = event(1, NOW + MAX_FUTURE_SECS + 1, vec![]);
        let grants = [Grant::new("sign_event", Some(1), Decision::Allow)];
        assert!(matches!(
            evaluate(&sign(&e), &grants, Usage::default(), NOW),
            Verdict::Deny { .. }
        ));
    }

    #[test]
    fn grant_specs_parse() {
        assert_eq!(
            Grant::parse_spec("kind:1", Decision::Allow).unwrap().kind,
            Some(1)
        );
        assert_eq!(
            Grant::parse_spec("nip44_encrypt", Decision::Allow)
                .unwrap()
                .method,
            "nip44_encrypt"
        );
        assert_eq!(
            Grant::parse_spec("sign_event:7", Decision::Allow)
                .unwrap()
                .kind,
            Some(7)
        );
        for bad in [
            "kind:x",
            "connect",
            "frobnicate",
            "nip44_encrypt:1",
            "kind:70000",
        ] {
            assert!(Grant::parse_spec(bad, Decision::Allow).is_err(), "{bad}");
        }
        assert_eq!(template("social").unwrap().len(), 6);
        assert!(template("nope").is_none());
    }
}
