//! NIP-46 message codec (spec §3): what the bunker reads from and writes into kind 24133
//! events, sans-IO.
//!
//! * [`Request`] `{"id", "method", "params": [string…]}` parsed strictly from the raw object
//!   with keyline's own [`Method`] enum, whose [`Method::Unknown`] arm keeps any other method
//!   so the bunker answers `unsupported method: <name>` instead of dropping it (spec §3.1, the
//!   rust-nostr 0.44 trap). A malformed request with a usable `id` is
//!   [`Error::Nip46InvalidRequest`] carrying that id ([`Response::for_invalid_request`]); one
//!   without is the same error with `id: None` (drop it).
//! * [`Response`] `{"id", "result", "error"?}`: [`Response::ok`], [`Response::error`],
//!   [`Response::auth_url`], [`Response::unsupported`]; never an empty `result` (spec §3.9).
//! * Transport content: [`Encryption::detect`] (`?iv=` → NIP-04, else NIP-44, spec §3.7),
//!   [`open_request`] / [`seal_response`] and the generic [`open`] / [`seal`], bounded by
//!   [`MAX_REQUEST_CONTENT`].
//! * Params: [`ConnectParams`] (spec §3.3), [`peer_and_text`] for the `nip44_*`/`nip04_*`
//!   methods, [`sign_event_param`] (spec §12.5, via [`keyline_core::nostr::UnsignedEvent`]) and
//!   the reply [`SignedEvent`] `{id, pubkey, created_at, kind, tags, content, sig}`.
//! * URIs: [`BunkerUri`] `bunker://<pubkey>?relay=…&secret=…` and [`NostrConnectUri`]
//!   `nostrconnect://<client>?relay=…&secret=…&perms=…&name=…&url=…&image=…` (spec §3.4),
//!   both ways, percent-encoded on output, strict on input.
//! * [`reply_text`]: the stable error strings of spec §3.8 for an [`Error`].
//!
//! Event-level checks (kind, `p` tag, id, signature, dedupe, clock window, rate limits) belong
//! to the bunker that owns the clock and the relays; this module sees content strings.
//!
//! ```
//! use keyline_signer::nip46::{Method, Request, Response};
//! let req = Request::parse(r#"{"id":"7","method":"describe","params":[]}"#).unwrap();
//! assert_eq!(req.method, Method::Unknown("describe".into()));
//! let reply = Response::unsupported(&req.id, &req.method);
//! assert_eq!(reply.to_json(), r#"{"id":"7","result":"error","error":"unsupported method: describe"}"#);
//! ```

use std::fmt;

use keyline_core::nostr::{UnsignedEvent, push_json_string};
use serde_json::Value;

use crate::ecdh::SharedX;
use crate::limits::{
    MAX_CLIENT_METADATA, MAX_CLIENT_NAME, MAX_CLIENT_URL, MAX_CONNECT_SECRET_LEN, MAX_NIP46_ID_LEN,
    MAX_NIP46_MESSAGE, MAX_NIP46_METHOD_LEN, MAX_NIP46_PARAMS, MAX_PERMS, MAX_PERMS_LEN,
    MAX_RELAY_URL_LEN, MAX_REQUEST_CONTENT, MAX_URI_LEN, MAX_URI_RELAYS,
};
use crate::nip44::ConversationKey;
use crate::{Error, Result, SignerRng, bip340, nip04, nip44, point};

/// The event kind of NIP-46 requests and responses.
pub const KIND: u16 = 24133;

// ----- methods, requests, responses ----------------------------------------------------------

/// A NIP-46 method. Anything else is kept as [`Method::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `connect`
    Connect,
    /// `get_public_key`
    GetPublicKey,
    /// `sign_event`
    SignEvent,
    /// `ping`
    Ping,
    /// `nip44_encrypt`
    Nip44Encrypt,
    /// `nip44_decrypt`
    Nip44Decrypt,
    /// `nip04_encrypt`
    Nip04Encrypt,
    /// `nip04_decrypt`
    Nip04Decrypt,
    /// `switch_relays`
    SwitchRelays,
    /// `logout`
    Logout,
    /// Any other method name (at most [`MAX_NIP46_METHOD_LEN`] bytes), as received.
    Unknown(String),
}

impl Method {
    /// Every method keyline knows, in the order of spec §3.2.
    pub const KNOWN: [Method; 10] = [
        Method::Connect,
        Method::GetPublicKey,
        Method::SignEvent,
        Method::Ping,
        Method::Nip44Encrypt,
        Method::Nip44Decrypt,
        Method::Nip04Encrypt,
        Method::Nip04Decrypt,
        Method::SwitchRelays,
        Method::Logout,
    ];

    /// The method of a name (exact, case-sensitive).
    pub fn from_name(name: &str) -> Self {
        match name {
            "connect" => Self::Connect,
            "get_public_key" => Self::GetPublicKey,
            "sign_event" => Self::SignEvent,
            "ping" => Self::Ping,
            "nip44_encrypt" => Self::Nip44Encrypt,
            "nip44_decrypt" => Self::Nip44Decrypt,
            "nip04_encrypt" => Self::Nip04Encrypt,
            "nip04_decrypt" => Self::Nip04Decrypt,
            "switch_relays" => Self::SwitchRelays,
            "logout" => Self::Logout,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn name(&self) -> &str {
        match self {
            Self::Connect => "connect",
            Self::GetPublicKey => "get_public_key",
            Self::SignEvent => "sign_event",
            Self::Ping => "ping",
            Self::Nip44Encrypt => "nip44_encrypt",
            Self::Nip44Decrypt => "nip44_decrypt",
            Self::Nip04Encrypt => "nip04_encrypt",
            Self::Nip04Decrypt => "nip04_decrypt",
            Self::SwitchRelays => "switch_relays",
            Self::Logout => "logout",
            Self::Unknown(name) => name,
        }
    }

    /// False for [`Method::Unknown`].
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A NIP-46 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request id, as received (at most [`MAX_NIP46_ID_LEN`] characters).
    pub id: String,
    /// The method.
    pub method: Method,
    /// Positional string parameters (at most [`MAX_NIP46_PARAMS`]).
    pub params: Vec<String>,
}

fn invalid_request(id: Option<&str>, reason: &'static str) -> Error {
    Error::Nip46InvalidRequest {
        id: id.map(str::to_owned),
        reason,
    }
}

impl Request {
    /// A request (client side and tests).
    pub fn new(id: impl Into<String>, method: Method, params: Vec<String>) -> Self {
        Self {
            id: id.into(),
            method,
            params,
        }
    }

    /// Parses decrypted request JSON strictly (spec §3.1 rule 6): a JSON object with a string
    /// `id` of at most [`MAX_NIP46_ID_LEN`] characters, a string `method` of at most
    /// [`MAX_NIP46_METHOD_LEN`] bytes and `params`, an array of at most [`MAX_NIP46_PARAMS`]
    /// strings. Other members are ignored. Text over [`MAX_NIP46_MESSAGE`] bytes is
    /// [`Error::TooLarge`]; everything else is [`Error::Nip46InvalidRequest`] with the id when
    /// one was usable.
    pub fn parse(json: &str) -> Result<Self> {
        if json.len() > MAX_NIP46_MESSAGE {
            return Err(Error::TooLarge {
                what: "NIP-46 request",
                len: json.len(),
                max: MAX_NIP46_MESSAGE,
            });
        }
        let value: Value =
            serde_json::from_str(json).map_err(|_| invalid_request(None, "not JSON"))?;
        let Value::Object(mut object) = value else {
            return Err(invalid_request(None, "not a JSON object"));
        };
        let id = match object.remove("id") {
            Some(Value::String(id)) if id.chars().count() <= MAX_NIP46_ID_LEN => id,
            Some(Value::String(_)) => return Err(invalid_request(None, "id too long")),
            Some(_) => return Err(invalid_request(None, "id is not a string")),
            None => return Err(invalid_request(None, "no id")),
        };
        let method = match object.remove("method") {
            Some(Value::String(m)) if m.len() <= MAX_NIP46_METHOD_LEN => Method::from_name(&m),
            Some(Value::String(_)) => return Err(invalid_request(Some(&id), "method too long")),
            _ => return Err(invalid_request(Some(&id), "method is not a string")),
        };
        let params = match object.remove("params") {
            Some(Value::Array(items)) => {
                if items.len() > MAX_NIP46_PARAMS {
                    return Err(invalid_request(Some(&id), "too many params"));
                }
                let mut params = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => params.push(s),
                        _ => return Err(invalid_request(Some(&id), "a param is not a string")),
                    }
                }
                params
            }
            _ => return Err(invalid_request(Some(&id), "params is not an array")),
        };
        Ok(Self { id, method, params })
    }

    /// The JSON text `{"id":…,"method":…,"params":[…]}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"id\":");
        push_json_string(&mut out, &self.id);
        out.push_str(",\"method\":");
        push_json_string(&mut out, self.method.name());
        out.push_str(",\"params\":[");
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, p);
        }
        out.push_str("]}");
        out
    }
}

/// A NIP-46 response. keyline always sets `result` (spec §3.1, §3.9); `error` present means
/// failure (or, with `result` = `"auth_url"`, an approval URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request id it answers.
    pub id: String,
    /// The result (`None` only when a parsed response had none).
    pub result: Option<String>,
    /// The error message or auth URL.
    pub error: Option<String>,
}

impl Response {
    /// Success with `result` (must not be empty for nostr-tools; spec §3.9).
    pub fn ok(id: impl Into<String>, result: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            result: Some(result.into()),
            error: None,
        }
    }

    /// Failure: `result` = `"error"`, `error` = the message (spec §3.8 strings).
    pub fn error(id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            result: Some("error".to_owned()),
            error: Some(message.into()),
        }
    }

    /// The `auth_url` challenge (spec §3.5).
    pub fn auth_url(id: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            result: Some("auth_url".to_owned()),
            error: Some(url.into()),
        }
    }

    /// `unsupported method: <name>` (spec §3.1 rule 7).
    pub fn unsupported(id: impl Into<String>, method: &Method) -> Self {
        Self::error(id, format!("unsupported method: {}", method.name()))
    }

    /// The `invalid request` reply to a request that failed to parse but had a usable id;
    /// `None` when the request must be dropped.
    pub fn for_invalid_request(err: &Error) -> Option<Self> {
        match err {
            Error::Nip46InvalidRequest { id: Some(id), .. } => {
                Some(Self::error(id.clone(), "invalid request"))
            }
            _ => None,
        }
    }

    /// True when `error` is present and `result` is not `"auth_url"`.
    pub fn is_error(&self) -> bool {
        self.error.is_some() && self.result.as_deref() != Some("auth_url")
    }

    /// Parses response JSON: an object with a string `id` (at most [`MAX_NIP46_ID_LEN`]
    /// characters), `result` and `error` each a string, `null` or absent.
    pub fn parse(json: &str) -> Result<Self> {
        let bad = |reason| Error::Nip46InvalidResponse { reason };
        if json.len() > MAX_NIP46_MESSAGE {
            return Err(Error::TooLarge {
                what: "NIP-46 response",
                len: json.len(),
                max: MAX_NIP46_MESSAGE,
            });
        }
        let value: Value = serde_json::from_str(json).map_err(|_| bad("not JSON"))?;
        let Value::Object(mut object) = value else {
            return Err(bad("not a JSON object"));
        };
        let id = match object.remove("id") {
            Some(Value::String(id)) if id.chars().count() <= MAX_NIP46_ID_LEN => id,
            _ => return Err(bad("no usable id")),
        };
        let mut field = |name: &str| match object.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad("result or error is not a string")),
        };
        let result = field("result")?;
        let error = field("error")?;
        Ok(Self { id, result, error })
    }

    /// The JSON text `{"id":…,"result":…[,"error":…]}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"id\":");
        push_json_string(&mut out, &self.id);
        if let Some(result) = &self.result {
            out.push_str(",\"result\":");
            push_json_string(&mut out, result);
        }
        if let Some(error) = &self.error {
            out.push_str(",\"error\":");
            push_json_string(&mut out, error);
        }
        out.push('}');
        out
    }
}

/// The stable reply text of spec §3.8 for an error of this crate: `invalid request`,
/// `invalid params`, `invalid pubkey`, `invalid event: <reason>`, `decryption failed`,
/// `signing unavailable: <k> of <t> nodes answered`, else `internal error`. Never contains
/// secrets.
pub fn reply_text(err: &Error) -> String {
    match err {
        Error::Nip46InvalidRequest { .. } => "invalid request".to_owned(),
        Error::Nip46InvalidParams { .. } | Error::TooLarge { .. } => "invalid params".to_owned(),
        Error::InvalidPeerKey => "invalid pubkey".to_owned(),
        Error::Nip46InvalidEvent { reason } => format!("invalid event: {reason}"),
        Error::Nip44UnsupportedVersion { .. }
        | Error::Nip44InvalidPayload { .. }
        | Error::Nip44InvalidMac
        | Error::Nip04DecryptionFailed => "decryption failed".to_owned(),
        Error::Nip44PlaintextLength { .. } => "invalid params".to_owned(),
        Error::Unavailable {
            operation,
            answered,
            need,
            ..
        } => format!(
            "{} unavailable: {answered} of {need} nodes answered",
            if *operation == "ecdh" {
                "ecdh"
            } else {
                "signing"
            }
        ),
        _ => "internal error".to_owned(),
    }
}

// ----- transport content ---------------------------------------------------------------------

/// The encryption of a kind 24133 event's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// NIP-44 v2 (the NIP-46 transport).
    Nip44,
    /// Legacy NIP-04 (content contains `?iv=`).
    Nip04,
}

impl Encryption {
    /// `?iv=` in the content means NIP-04 (NIP-44 payloads are base64 without `?`), else
    /// NIP-44 (spec §3.7).
    pub fn detect(content: &str) -> Self {
        if content.contains(nip04::IV_SEPARATOR) {
            Self::Nip04
        } else {
            Self::Nip44
        }
    }
}

/// Decrypts a kind 24133 content under the ECDH shared x of (transport key, client key):
/// [`Error::TooLarge`] over [`MAX_REQUEST_CONTENT`] (checked first), NIP-04 refused with
/// [`Error::Nip46InvalidRequest`] (no id: drop) unless `allow_nip04`, then the scheme's own
/// errors.
/// Returns the scheme used (reply with the same) and the plaintext.
pub fn open(shared: &SharedX, content: &str, allow_nip04: bool) -> Result<(Encryption, String)> {
    if content.len() > MAX_REQUEST_CONTENT {
        return Err(Error::TooLarge {
            what: "NIP-46 event content",
            len: content.len(),
            max: MAX_REQUEST_CONTENT,
        });
    }
    let encryption = Encryption::detect(content);
    let plaintext = match encryption {
        Encryption::Nip04 if !allow_nip04 => {
            return Err(invalid_request(None, "legacy NIP-04 transport is disabled"));
        }
        Encryption::Nip04 => nip04::decrypt(shared, content)?,
        Encryption::Nip44 => nip44::decrypt_with_limit(
            &ConversationKey::from_shared_x(shared),
            content,
            MAX_REQUEST_CONTENT,
        )?,
    };
    Ok((encryption, plaintext))
}

/// Encrypts `plaintext` for a kind 24133 content with `encryption` and a fresh nonce or IV.
pub fn seal(
    shared: &SharedX,
    encryption: Encryption,
    plaintext: &str,
    rng: &mut impl SignerRng,
) -> Result<String> {
    match encryption {
        Encryption::Nip44 => {
            nip44::encrypt_with_rng(&ConversationKey::from_shared_x(shared), plaintext, rng)
        }
        Encryption::Nip04 => nip04::encrypt_with_rng(shared, plaintext, rng),
    }
}

/// [`open`] then [`Request::parse`].
pub fn open_request(
    shared: &SharedX,
    content: &str,
    allow_nip04: bool,
) -> Result<(Encryption, Request)> {
    let (encryption, json) = open(shared, content, allow_nip04)?;
    Ok((encryption, Request::parse(&json)?))
}

/// [`Response::to_json`] then [`seal`].
pub fn seal_response(
    shared: &SharedX,
    encryption: Encryption,
    response: &Response,
    rng: &mut impl SignerRng,
) -> Result<String> {
    seal(shared, encryption, &response.to_json(), rng)
}

// ----- params ----------------------------------------------------------------------------------

fn invalid_params(reason: &'static str) -> Error {
    Error::Nip46InvalidParams { reason }
}

/// Parses an x-only public key given as exactly 64 lowercase hex characters that lift to a
/// curve point; anything else is [`Error::InvalidPeerKey`] (`invalid pubkey`).
pub fn parse_pubkey(text: &str) -> Result<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::InvalidPeerKey);
    }
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key).map_err(|_| Error::InvalidPeerKey)?;
    if point::lift_x(&key).is_none() {
        return Err(Error::InvalidPeerKey);
    }
    Ok(key)
}

/// The params of `nip44_encrypt`, `nip44_decrypt`, `nip04_encrypt`, `nip04_decrypt`:
/// exactly `[<third-party pubkey>, <text>]`. [`Error::Nip46InvalidParams`] for another count,
/// [`Error::InvalidPeerKey`] for a bad key.
pub fn peer_and_text(params: &[String]) -> Result<([u8; 32], &str)> {
    match params {
        [peer, text] => Ok((parse_pubkey(peer)?, text.as_str())),
        _ => Err(invalid_params("expected [pubkey, text]")),
    }
}

/// The event of a `sign_event` request (spec §12.5): exactly one param, the JSON text of
/// `{kind, content, tags, created_at[, pubkey]}` parsed by [`UnsignedEvent::parse`] (size and
/// tag limits) and an included `pubkey` checked against the user key `user`.
/// [`Error::Nip46InvalidParams`] for another count, [`Error::Nip46InvalidEvent`] otherwise.
/// The `created_at` window is the caller's (it owns the clock).
pub fn sign_event_param(params: &[String], user: &[u8; 32]) -> Result<UnsignedEvent> {
    let [json] = params else {
        return Err(invalid_params("expected [event JSON]"));
    };
    let event = UnsignedEvent::parse(json).map_err(event_error)?;
    event.check_pubkey(user).map_err(event_error)?;
    Ok(event)
}

fn event_error(err: keyline_core::Error) -> Error {
    let reason = match err {
        keyline_core::Error::InvalidParameter { reason, .. } => reason,
        other => other.to_string(),
    };
    Error::Nip46InvalidEvent { reason }
}

/// A signed event, the result of `sign_event`: `{id, pubkey, created_at, kind, tags, content,
/// sig}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEvent {
    /// NIP-01 id.
    pub id: [u8; 32],
    /// Author (the user key).
    pub pubkey: [u8; 32],
    /// Unix seconds.
    pub created_at: u64,
    /// Kind.
    pub kind: u16,
    /// Tags.
    pub tags: Vec<Vec<String>>,
    /// Content.
    pub content: String,
    /// BIP340 signature of `id`.
    pub sig: [u8; 64],
}

impl SignedEvent {
    /// The NIP-01 id of `event` under `pubkey`, to sign. keyline signs only ids it computed.
    pub fn id_of(event: &UnsignedEvent, pubkey: &[u8; 32]) -> [u8; 32] {
        event.id(pubkey)
    }

    /// Assembles the signed event (id recomputed) from the unsigned one and a signature.
    pub fn new(event: UnsignedEvent, pubkey: [u8; 32], sig: [u8; 64]) -> Self {
        Self {
            id: event.id(&pubkey),
            pubkey,
            created_at: event.created_at,
            kind: event.kind,
            tags: event.tags,
            content: event.content,
            sig,
        }
    }

    /// Checks that `id` recomputes and `sig` is a valid BIP340 signature of it under `pubkey`.
    pub fn verify(&self) -> Result<()> {
        let id = keyline_core::nostr::event_id(
            &hex::encode(self.pubkey),
            self.created_at,
            u64::from(self.kind),
            &self.tags,
            &self.content,
        );
        if id != self.id {
            return Err(Error::Nip46InvalidEvent {
                reason: "id does not match".to_owned(),
            });
        }
        bip340::verify(&self.pubkey, &self.id, &self.sig)
    }

    /// The JSON text of the `sign_event` result.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + self.content.len());
        out.push_str("{\"id\":\"");
        out.push_str(&hex::encode(self.id));
        out.push_str("\",\"pubkey\":\"");
        out.push_str(&hex::encode(self.pubkey));
        out.push_str(&format!(
            "\",\"created_at\":{},\"kind\":{},\"tags\":[",
            self.created_at, self.kind
        ));
        for (i, tag) in self.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            for (j, item) in tag.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, item);
            }
            out.push(']');
        }
        out.push_str("],\"content\":");
        push_json_string(&mut out, &self.content);
        out.push_str(",\"sig\":\"");
        out.push_str(&hex::encode(self.sig));
        out.push_str("\"}");
        out
    }

    /// Parses the JSON of a signed event (client side and tests) with the limits of
    /// [`UnsignedEvent::parse`]; `id`, `pubkey`, `sig` must be lowercase hex of the right
    /// length. Does not verify: call [`SignedEvent::verify`].
    pub fn parse(json: &str) -> Result<Self> {
        let event = UnsignedEvent::parse(json).map_err(event_error)?;
        let value: Value = serde_json::from_str(json).map_err(|_| Error::Nip46InvalidEvent {
            reason: "not JSON".to_owned(),
        })?;
        let hex_field = |name: &str, out: &mut [u8]| -> Result<()> {
            let text = value[name]
                .as_str()
                .ok_or_else(|| Error::Nip46InvalidEvent {
                    reason: format!("no {name}"),
                })?;
            if text.len() != 2 * out.len()
                || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                || hex::decode_to_slice(text, out).is_err()
            {
                return Err(Error::Nip46InvalidEvent {
                    reason: format!("bad {name}"),
                });
            }
            Ok(())
        };
        let mut id = [0u8; 32];
        let mut pubkey = [0u8; 32];
        let mut sig = [0u8; 64];
        hex_field("id", &mut id)?;
        hex_field("pubkey", &mut pubkey)?;
        hex_field("sig", &mut sig)?;
        Ok(Self {
            id,
            pubkey,
            created_at: event.created_at,
            kind: event.kind,
            tags: event.tags,
            content: event.content,
            sig,
        })
    }
}

/// One requested permission, `method[:param]` (spec §3.3): e.g. `sign_event:4`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    /// The method.
    pub method: Method,
    /// The parameter; for `sign_event` a kind 0–65535.
    pub param: Option<String>,
}

impl Permission {
    /// The event kind of a `sign_event:<kind>` permission.
    pub fn kind(&self) -> Option<u16> {
        match (&self.method, &self.param) {
            (Method::SignEvent, Some(p)) => p.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.param {
            Some(p) => write!(f, "{}:{p}", self.method),
            None => write!(f, "{}", self.method),
        }
    }
}

/// Parses a comma-separated permission list (at most [`MAX_PERMS_LEN`] bytes and
/// [`MAX_PERMS`] entries; empty entries and surrounding spaces are skipped). Method names and
/// params are `[a-z0-9_]` / `[A-Za-z0-9_.-]`; a `sign_event` param must be a kind 0–65535.
pub fn parse_perms(text: &str) -> std::result::Result<Vec<Permission>, &'static str> {
    if text.len() > MAX_PERMS_LEN {
        return Err("permission list too long");
    }
    let mut perms = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if perms.len() == MAX_PERMS {
            return Err("too many permissions");
        }
        let (name, param) = match entry.split_once(':') {
            Some((name, param)) => (name, Some(param)),
            None => (entry, None),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err("bad permission method");
        }
        if let Some(p) = param
            && (p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
        {
            return Err("bad permission parameter");
        }
        let perm = Permission {
            method: Method::from_name(name),
            param: param.map(str::to_owned),
        };
        if perm.method == Method::SignEvent && perm.param.is_some() && perm.kind().is_none() {
            return Err("sign_event permission with a kind outside 0-65535");
        }
        perms.push(perm);
    }
    Ok(perms)
}

fn perms_to_string(perms: &[Permission]) -> String {
    perms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Client metadata: a display hint, unauthenticated (spec §3.3). Bounded: name ≤
/// [`MAX_CLIENT_NAME`] characters, url and image ≤ [`MAX_CLIENT_URL`] bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientMetadata {
    /// Client name.
    pub name: Option<String>,
    /// Client URL.
    pub url: Option<String>,
    /// Client image URL.
    pub image: Option<String>,
}

impl ClientMetadata {
    fn check(&self) -> std::result::Result<(), &'static str> {
        if self
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_CLIENT_NAME || has_control(n))
        {
            return Err("client name too long or with control characters");
        }
        for url in [&self.url, &self.image].into_iter().flatten() {
            if url.len() > MAX_CLIENT_URL || has_control(url) {
                return Err("client url or image too long or with control characters");
            }
        }
        Ok(())
    }

    /// Parses `{"name", "url", "image"}` JSON text (all optional strings; other members
    /// ignored), at most [`MAX_CLIENT_METADATA`] bytes, within the bounds above.
    pub fn parse(json: &str) -> std::result::Result<Self, &'static str> {
        if json.len() > MAX_CLIENT_METADATA {
            return Err("client metadata too long");
        }
        let value: Value = serde_json::from_str(json).map_err(|_| "client metadata not JSON")?;
        let Value::Object(object) = value else {
            return Err("client metadata not a JSON object");
        };
        let field = |name: &str| match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err("client metadata field not a string"),
        };
        let meta = Self {
            name: field("name")?,
            url: field("url")?,
            image: field("image")?,
        };
        meta.check()?;
        Ok(meta)
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The params of `connect` (spec §3.3):
/// `[<remote-signer pubkey>, <secret or "">, <perms or "">, <metadata JSON>]`, params 1–3
/// optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectParams {
    /// The key the client believes it talks to (compare with the transport and user keys).
    pub remote_signer: [u8; 32],
    /// The connect secret (`None` when absent or empty).
    pub secret: Option<String>,
    /// Requested permissions (to show and record, never to grant blindly).
    pub perms: Vec<Permission>,
    /// Client metadata, when sent.
    pub metadata: Option<ClientMetadata>,
}

impl ConnectParams {
    /// Parses `connect` params: 1 to 4 of them; the key as in [`parse_pubkey`]; the secret at
    /// most [`MAX_CONNECT_SECRET_LEN`] bytes; perms as in [`parse_perms`]; metadata as in
    /// [`ClientMetadata::parse`] (an empty string counts as absent).
    pub fn parse(params: &[String]) -> Result<Self> {
        if params.is_empty() || params.len() > 4 {
            return Err(invalid_params("connect takes 1 to 4 params"));
        }
        let remote_signer = parse_pubkey(&params[0])?;
        let secret = match params.get(1).map(String::as_str) {
            None | Some("") => None,
            Some(s) if s.len() > MAX_CONNECT_SECRET_LEN || has_control(s) => {
                return Err(invalid_params("connect secret too long or malformed"));
            }
            Some(s) => Some(s.to_owned()),
        };
        let perms = match params.get(2) {
            None => Vec::new(),
            Some(p) => parse_perms(p).map_err(invalid_params)?,
        };
        let metadata = match params.get(3).map(String::as_str) {
            None | Some("") => None,
            Some(json) => Some(ClientMetadata::parse(json).map_err(invalid_params)?),
        };
        Ok(Self {
            remote_signer,
            secret,
            perms,
            metadata,
        })
    }
}

// ----- URIs ------------------------------------------------------------------------------------

/// `bunker://<transport pubkey>?relay=<url>&…&secret=<secret>` (spec §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BunkerUri {
    /// The transport (remote-signer) key.
    pub remote_signer: [u8; 32],
    /// Relay URLs (1 to [`MAX_URI_RELAYS`], `wss://` or `ws://` to loopback).
    pub relays: Vec<String>,
    /// Connect secret, single use.
    pub secret: Option<String>,
}

/// `nostrconnect://<client pubkey>?relay=<url>&…&secret=…&perms=…&name=…&url=…&image=…`
/// (spec §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NostrConnectUri {
    /// The client's key.
    pub client: [u8; 32],
    /// Relay URLs (1 to [`MAX_URI_RELAYS`]).
    pub relays: Vec<String>,
    /// The secret the bunker returns as its first response's `result`.
    pub secret: String,
    /// Requested permissions.
    pub perms: Vec<Permission>,
    /// Client name, url and image (display hints).
    pub metadata: ClientMetadata,
}

const BUNKER: &str = "bunker";
const NOSTRCONNECT: &str = "nostrconnect";

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` decoding, strict: `%` must start two hex digits, `+`
/// is a space, the result must be UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = char::from(*bytes.get(i + 1)?).to_digit(16)?;
                let lo = char::from(*bytes.get(i + 2)?).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Splits `<scheme>://<64 hex>[?query]` and decodes the query pairs.
/// Decoded query pairs of a URI, in order.
type QueryPairs = Vec<(String, String)>;

fn split_uri(uri: &str, scheme: &'static str) -> Result<([u8; 32], QueryPairs)> {
    let bad = |reason| Error::Nip46InvalidUri { scheme, reason };
    if uri.len() > MAX_URI_LEN {
        return Err(bad("longer than 8 KiB"));
    }
    let rest = uri
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
        .ok_or_else(|| bad("wrong scheme"))?;
    if rest.contains('#') {
        return Err(bad("fragment not allowed"));
    }
    let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
    let key = parse_pubkey(host).map_err(|_| bad("host is not a 64-hex x-only public key"))?;
    let mut pairs = Vec::new();
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
        let k = form_decode(k).ok_or_else(|| bad("bad percent-encoding"))?;
        let v = form_decode(v).ok_or_else(|| bad("bad percent-encoding"))?;
        pairs.push((k, v));
    }
    Ok((key, pairs))
}

/// Checks a relay URL: `wss://host[:port][/path]`, or `ws://` to a loopback host; at most
/// [`MAX_RELAY_URL_LEN`] bytes, no user info, no spaces or control characters.
pub fn check_relay_url(url: &str) -> std::result::Result<(), &'static str> {
    if url.is_empty() || url.len() > MAX_RELAY_URL_LEN {
        return Err("relay URL empty or too long");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("relay URL with spaces or control characters");
    }
    let (secure, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else {
        return Err("relay URL must be wss:// (or ws:// to loopback)");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("relay URL with user info");
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("relay URL with a bad IPv6 host")?;
        let inner = &authority[1..end];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("relay URL with a bad IPv6 host");
        }
        let after = &authority[end + 1..];
        let port = if after.is_empty() {
            None
        } else {
            Some(
                after
                    .strip_prefix(':')
                    .ok_or("relay URL with a bad IPv6 host")?,
            )
        };
        (&authority[..=end], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || !matches!(p.parse::<u16>(), Ok(n) if n != 0))
    {
        return Err("relay URL with a bad port");
    }
    if host.is_empty()
        || !(host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err("relay URL with a bad host");
    }
    if !secure && !is_loopback(host) {
        return Err("ws:// relay URLs are only allowed to loopback");
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host == "[::1]" {
        return true;
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

fn push_relay(relays: &mut Vec<String>, url: String, scheme: &'static str) -> Result<()> {
    check_relay_url(&url).map_err(|reason| Error::Nip46InvalidUri { scheme, reason })?;
    if !relays.contains(&url) {
        if relays.len() == MAX_URI_RELAYS {
            return Err(Error::Nip46InvalidUri {
                scheme,
                reason: "more than 8 relays",
            });
        }
        relays.push(url);
    }
    Ok(())
}

fn check_secret(secret: &str, scheme: &'static str) -> Result<()> {
    if secret.len() > MAX_CONNECT_SECRET_LEN || has_control(secret) {
        return Err(Error::Nip46InvalidUri {
            scheme,
            reason: "secret too long or with control characters",
        });
    }
    Ok(())
}

fn set_once(slot: &mut Option<String>, value: String, scheme: &'static str) -> Result<()> {
    if slot.is_some() {
        return Err(Error::Nip46InvalidUri {
            scheme,
            reason: "a parameter appears twice",
        });
    }
    *slot = Some(value);
    Ok(())
}

impl BunkerUri {
    /// Parses a `bunker://` URI: scheme exactly `bunker`, host 64 lowercase hex of a curve
    /// point, 1 to [`MAX_URI_RELAYS`] valid `relay` values (duplicates merged), at most one
    /// `secret` (empty = none), unknown parameters ignored, no fragment; values
    /// percent-encoded or raw.
    pub fn parse(uri: &str) -> Result<Self> {
        let (remote_signer, pairs) = split_uri(uri, BUNKER)?;
        let mut relays = Vec::new();
        let mut secret = None;
        for (k, v) in pairs {
            match k.as_str() {
                "relay" => push_relay(&mut relays, v, BUNKER)?,
                "secret" => {
                    check_secret(&v, BUNKER)?;
                    set_once(&mut secret, v, BUNKER)?;
                }
                _ => {}
            }
        }
        if relays.is_empty() {
            return Err(Error::Nip46InvalidUri {
                scheme: BUNKER,
                reason: "no relay",
            });
        }
        Ok(Self {
            remote_signer,
            relays,
            secret: secret.filter(|s| !s.is_empty()),
        })
    }

    /// The URI text, values percent-encoded (`relay=wss%3A%2F%2Fhost`).
    pub fn to_uri(&self) -> String {
        let mut out = format!("bunker://{}", hex::encode(self.remote_signer));
        let mut sep = '?';
        for relay in &self.relays {
            out.push(sep);
            out.push_str("relay=");
            out.push_str(&percent_encode(relay));
            sep = '&';
        }
        if let Some(secret) = &self.secret {
            out.push(sep);
            out.push_str("secret=");
            out.push_str(&percent_encode(secret));
        }
        out
    }
}

impl fmt::Display for BunkerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

impl NostrConnectUri {
    /// Parses a `nostrconnect://` URI: scheme exactly `nostrconnect`, host 64 lowercase hex of
    /// a curve point, 1 to [`MAX_URI_RELAYS`] valid `relay` values, a non-empty `secret`
    /// (required), optional `perms` ([`parse_perms`]), `name`, `url`, `image` (bounded as
    /// [`ClientMetadata`]); the legacy `metadata=<JSON {name,url,…}>` is read as a fallback
    /// for name and url; unknown parameters ignored; single-valued parameters at most once.
    pub fn parse(uri: &str) -> Result<Self> {
        let scheme = NOSTRCONNECT;
        let bad = |reason| Error::Nip46InvalidUri { scheme, reason };
        let (client, pairs) = split_uri(uri, scheme)?;
        let mut relays = Vec::new();
        let (mut secret, mut perms, mut name, mut url, mut image, mut legacy) =
            (None, None, None, None, None, None);
        for (k, v) in pairs {
            match k.as_str() {
                "relay" => push_relay(&mut relays, v, scheme)?,
                "secret" => set_once(&mut secret, v, scheme)?,
                "perms" => set_once(&mut perms, v, scheme)?,
                "name" => set_once(&mut name, v, scheme)?,
                "url" => set_once(&mut url, v, scheme)?,
                "image" => set_once(&mut image, v, scheme)?,
                "metadata" => set_once(&mut legacy, v, scheme)?,
                _ => {}
            }
        }
        if relays.is_empty() {
            return Err(bad("no relay"));
        }
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("no secret"))?;
        check_secret(&secret, scheme)?;
        let perms = match perms {
            Some(p) => parse_perms(&p).map_err(bad)?,
            None => Vec::new(),
        };
        let mut metadata = ClientMetadata {
            name: name.filter(|s| !s.is_empty()),
            url: url.filter(|s| !s.is_empty()),
            image: image.filter(|s| !s.is_empty()),
        };
        if let Some(json) = legacy {
            let old = ClientMetadata::parse(&json).map_err(bad)?;
            metadata.name = metadata.name.or(old.name);
            metadata.url = metadata.url.or(old.url);
        }
        metadata.check().map_err(bad)?;
        Ok(Self {
            client,
            relays,
            secret,
            perms,
            metadata,
        })
    }

    /// The URI text, values percent-encoded.
    pub fn to_uri(&self) -> String {
        let mut out = format!("nostrconnect://{}", hex::encode(self.client));
        let mut sep = '?';
        let mut push = |out: &mut String, key: &str, value: &str| {
            out.push(sep);
            out.push_str(key);
            out.push('=');
            out.push_str(&percent_encode(value));
            sep = '&';
        };
        for relay in &self.relays {
            push(&mut out, "relay", relay);
        }
        push(&mut out, "secret", &self.secret);
        if !self.perms.is_empty() {
            push(&mut out, "perms", &perms_to_string(&self.perms));
        }
        if let Some(name) = &self.metadata.name {
            push(&mut out, "name", name);
        }
        if let Some(url) = &self.metadata.url {
            push(&mut out, "url", url);
        }
        if let Some(image) = &self.metadata.image {
            push(&mut out, "image", image);
        }
        out
    }
}

impl fmt::Display for NostrConnectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_is_strict() {
        assert_eq!(form_decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(form_decode("wss%3A%2F%2Fx").as_deref(), Some("wss://x"));
        assert_eq!(form_decode("%"), None);
        assert_eq!(form_decode("%2"), None);
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%ff"), None);
        assert_eq!(percent_encode("wss://a b"), "wss%3A%2F%2Fa%20b");
    }

    #[test]
    fn relay_urls() {
        for ok in [
            "wss://relay.example.com",
            "wss://relay.example.com:443/path?x=1",
            "ws://127.0.0.1:7777",
            "ws://localhost",
            "ws://[::1]:8080/",
            "wss://[2001:db8::1]",
        ] {
            assert_eq!(check_relay_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "https://relay.example.com",
            "ws://relay.example.com",
            "wss://",
            "wss://user@host",
            "wss://host:0",
            "wss://host:99999",
            "wss://host:",
            "wss://ho st",
            "ws://10.0.0.1",
            "wss://[::1",
            "wss://[::1]x",
        ] {
            assert!(check_relay_url(bad).is_err(), "{bad}");
        }
    }
}
