//! The RPC and event envelope (section 10): JSON in the data of an SBP Message.
//!
//! Requests and responses use subject `rpc`, events `event`; receivers also accept
//! subjects starting with `rpc/` and `event/`. `cid` is the request's frame id as 32 hex
//! characters (sent lowercase, accepted in either case).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result, SbpCode};
use crate::limits::MAX_PLAINTEXT;

/// Subject of requests and responses.
pub const SUBJECT_RPC: &str = "rpc";
/// Subject of events.
pub const SUBJECT_EVENT: &str = "event";

/// A correlation id: the request's 16-byte frame id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cid(pub [u8; 16]);

impl TryFrom<String> for Cid {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, String> {
        let mut out = [0u8; 16];
        if text.len() != 32 {
            return Err("cid must be 32 hex characters".into());
        }
        hex::decode_to_slice(&text, &mut out).map_err(|_| "cid must be hex".to_string())?;
        Ok(Cid(out))
    }
}

impl From<Cid> for String {
    fn from(cid: Cid) -> String {
        hex::encode(cid.0)
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({})", hex::encode(self.0))
    }
}

/// One envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Envelope {
    /// `t: "r"`.
    #[serde(rename = "r")]
    Request {
        /// `m`: the method.
        #[serde(rename = "m")]
        method: String,
        /// `p`: params.
        #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
        params: Option<Value>,
        /// The request's frame id.
        cid: Cid,
    },
    /// `t: "R"`.
    #[serde(rename = "R")]
    Response {
        /// The request's cid.
        cid: Cid,
        /// The result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
    },
    /// `t: "E"`.
    #[serde(rename = "E")]
    Error {
        /// The request's cid.
        cid: Cid,
        /// Error code (1100–1104, 2000, …).
        code: i64,
        /// Message (never a filesystem path).
        message: String,
        /// Extra data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
    /// `t: "N"`.
    #[serde(rename = "N")]
    Event {
        /// `e`: event name.
        #[serde(rename = "e")]
        name: String,
        /// `d`: data.
        #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
}

/// Which envelope family a subject carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// `rpc` or `rpc/…`.
    Rpc,
    /// `event` or `event/…`.
    Event,
}

/// The family of `subject`, or `None` for other subjects (`app/…`, `stream/…`).
pub fn subject_kind(subject: &str) -> Option<SubjectKind> {
    if subject == SUBJECT_RPC || subject.starts_with("rpc/") {
        Some(SubjectKind::Rpc)
    } else if subject == SUBJECT_EVENT || subject.starts_with("event/") {
        Some(SubjectKind::Event)
    } else {
        None
    }
}

impl Envelope {
    /// Parses the data of a Message with `subject`. Bad JSON → 1100 InvalidEnvelope; an
    /// event under `rpc` or a request/response under `event` → 1104 EnvelopeMismatch.
    pub fn decode(subject: &str, data: &[u8]) -> Result<Envelope> {
        let kind = subject_kind(subject)
            .ok_or_else(|| Error::sbp(SbpCode::EnvelopeMismatch, "subject is not rpc or event"))?;
        let env: Envelope = serde_json::from_slice(data)
            .map_err(|e| Error::sbp(SbpCode::InvalidEnvelope, format!("invalid envelope: {e}")))?;
        let fits = matches!(
            (&env, kind),
            (Envelope::Event { .. }, SubjectKind::Event)
                | (
                    Envelope::Request { .. } | Envelope::Response { .. } | Envelope::Error { .. },
                    SubjectKind::Rpc
                )
        );
        if !fits {
            return Err(Error::sbp(
                SbpCode::EnvelopeMismatch,
                "envelope does not fit its subject",
            ));
        }
        Ok(env)
    }

    /// The subject to send this envelope with.
    pub fn subject(&self) -> &'static str {
        match self {
            Self::Event { .. } => SUBJECT_EVENT,
            _ => SUBJECT_RPC,
        }
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising these types to a Vec cannot fail (string keys, no custom errors).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The cid of a request, response or error.
    pub fn cid(&self) -> Option<Cid> {
        match self {
            Self::Request { cid, .. } | Self::Response { cid, .. } | Self::Error { cid, .. } => {
                Some(*cid)
            }
            Self::Event { .. } => None,
        }
    }

    /// An error response.
    pub fn error(cid: Cid, code: SbpCode, message: impl Into<String>, data: Option<Value>) -> Self {
        Self::Error {
            cid,
            code: code.to_u16().into(),
            message: message.into(),
            data,
        }
    }

    /// The answer to a peer without `keyline.chunk/1` when a result does not fit one frame:
    /// code 2000, `data: {"reason":"result_too_large","limit":65508}`.
    pub fn result_too_large(cid: Cid) -> Self {
        Self::error(
            cid,
            SbpCode::ApplicationError,
            "result too large for one frame",
            Some(serde_json::json!({"reason": "result_too_large", "limit": MAX_PLAINTEXT})),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_either_case() {
        let env = Envelope::decode(
            "rpc/x",
            br#"{"t":"R","cid":"ABCDEF00000000000000000000000000"}"#,
        )
        .unwrap();
        assert_eq!(env.cid().unwrap().0[0], 0xAB);
        assert!(Envelope::decode("rpc", br#"{"t":"R","cid":"abc"}"#).is_err());
    }
}
