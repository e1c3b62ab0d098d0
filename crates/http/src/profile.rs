//! The fixed names of keyline-http-v1 (B.3): label, tag, covered-component lists and the six
//! signature parameters.
//!
//! Signers emit exactly these lists and the parameter order `created`, `expires`, `nonce`,
//! `keyid`, `alg`, `tag`. Verifiers require one of the lists exactly (same members, same
//! order), each of the six parameters exactly once with the right type and no other parameter,
//! and accept the parameters in any order (the base uses the received order).

use sfv::{BareItem, Parameters};

use crate::base::SignatureInput;
use crate::component::Component;
use crate::error::{Error, Malformed, Result};
use crate::keys::{Algorithm, PublicKey};
use crate::limits::MAX_SIGNATURE_LIFETIME;

/// The signature label keyline uses (other labels are ignored).
pub const LABEL: &str = "sig1";

/// The `tag` parameter value.
pub const TAG: &str = "keyline-http-v1";

/// The shape of a message, which fixes its covered components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A request without content: `("@method" "@target-uri")`.
    Request,
    /// A request with content: `("@method" "@target-uri" "content-type" "content-digest")`.
    RequestWithBody,
    /// A body-less request asking for a sealed response:
    /// `("@method" "@target-uri" "keyline-seal")` (B.11).
    RequestSealed,
    /// A response without content: `("@status" "date" "@method";req "@target-uri";req)`.
    Response,
    /// A response with content: `("@status" "date" "content-type" "content-digest"
    /// "@method";req "@target-uri";req)`.
    ResponseWithBody,
}

impl Shape {
    /// The serialized component identifiers of this shape, in order.
    pub fn identifiers(self) -> &'static [&'static str] {
        match self {
            Shape::Request => &["\"@method\"", "\"@target-uri\""],
            Shape::RequestWithBody => &[
                "\"@method\"",
                "\"@target-uri\"",
                "\"content-type\"",
                "\"content-digest\"",
            ],
            Shape::RequestSealed => &["\"@method\"", "\"@target-uri\"", "\"keyline-seal\""],
            Shape::Response => &[
                "\"@status\"",
                "\"date\"",
                "\"@method\";req",
                "\"@target-uri\";req",
            ],
            Shape::ResponseWithBody => &[
                "\"@status\"",
                "\"date\"",
                "\"content-type\"",
                "\"content-digest\"",
                "\"@method\";req",
                "\"@target-uri\";req",
            ],
        }
    }

    /// The components of this shape.
    pub fn components(self) -> Result<Vec<Component>> {
        self.identifiers()
            .iter()
            .map(|id| {
                let name = id.trim_end_matches(";req").trim_matches('"');
                if id.ends_with(";req") {
                    Component::req(name)
                } else {
                    Component::new(name)
                }
            })
            .collect()
    }

    /// Which shape `input` has, if any.
    pub fn of(input: &SignatureInput) -> Option<Self> {
        let components = input.components();
        [
            Shape::Request,
            Shape::RequestWithBody,
            Shape::RequestSealed,
            Shape::Response,
            Shape::ResponseWithBody,
        ]
        .into_iter()
        .find(|s| {
            let ids = s.identifiers();
            ids.len() == components.len()
                && ids
                    .iter()
                    .zip(components)
                    .all(|(id, c)| *id == c.serialized())
        })
    }
}

/// The six profile parameters of a signature, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileParams {
    /// `created` (Unix seconds).
    pub created: u64,
    /// `expires` (Unix seconds), `created < expires ≤ created + 300`.
    pub expires: u64,
    /// `nonce`, base64url-nopad of 16 to 32 bytes.
    pub nonce: String,
    /// The key named by `keyid`.
    pub key: PublicKey,
    /// `alg`, agreeing with the key.
    pub alg: Algorithm,
}

const NAMES: [&str; 6] = ["created", "expires", "nonce", "keyid", "alg", "tag"];

impl ProfileParams {
    /// Validates the parameters of `input` against the profile (B.3; 400 on failure).
    /// Checks, in order: only the six names, each present with its type, `tag`, `alg`,
    /// `keyid` and their agreement, `nonce`, the window.
    pub fn from_input(input: &SignatureInput) -> Result<Self> {
        Self::validate(input, false)
    }

    /// As [`from_input`](Self::from_input) for a *response* signature, whose `nonce` may also
    /// be a NIP-98 event id (64 lowercase hex characters, B.10).
    pub fn from_response_input(input: &SignatureInput) -> Result<Self> {
        Self::validate(input, true)
    }

    fn validate(input: &SignatureInput, response: bool) -> Result<Self> {
        if input.params().len() != NAMES.len()
            || input.params().keys().any(|k| !NAMES.contains(&k.as_str()))
        {
            return Err(Malformed::Parameter("set of parameters").into());
        }
        let int = |name: &'static str| -> Result<u64> {
            let v = input
                .integer_param(name)
                .ok_or(Malformed::Parameter(name))?;
            u64::try_from(v).map_err(|_| Malformed::Parameter(name).into())
        };
        let string = |name: &'static str| -> Result<&str> {
            input
                .string_param(name)
                .ok_or_else(|| Malformed::Parameter(name).into())
        };
        let created = int("created")?;
        let expires = int("expires")?;
        let nonce = string("nonce")?;
        let keyid = string("keyid")?;
        let alg = string("alg")?;
        if string("tag")? != TAG {
            return Err(Malformed::Tag.into());
        }
        let alg = Algorithm::from_name(alg).ok_or(Malformed::Algorithm)?;
        let key = PublicKey::from_keyid(keyid)?;
        if key.algorithm() != alg {
            return Err(Malformed::AlgorithmKeyMismatch.into());
        }
        if !(response && crate::nonce::is_event_id(nonce)) {
            crate::nonce::check_nonce(nonce)?;
        }
        if expires <= created || expires - created > MAX_SIGNATURE_LIFETIME {
            return Err(Malformed::Window.into());
        }
        Ok(Self {
            created,
            expires,
            nonce: nonce.to_string(),
            key,
            alg,
        })
    }

    /// The parameters in signing order (`created`, `expires`, `nonce`, `keyid`, `alg`, `tag`).
    pub fn to_parameters(&self) -> Result<Parameters> {
        let int = |v: u64| -> Result<BareItem> {
            let v = i64::try_from(v).map_err(|_| Error::Unsupported("time out of range"))?;
            sfv::Integer::try_from(v)
                .map(BareItem::Integer)
                .map_err(|_| Error::Unsupported("time out of range"))
        };
        let string = |s: &str| -> Result<BareItem> {
            sfv::String::from_string(s.to_string())
                .map(BareItem::String)
                .map_err(|_| Malformed::Parameter("string").into())
        };
        let mut params = Parameters::new();
        let mut put = |k: &'static str, v: BareItem| {
            params.insert(sfv::key_ref(k).to_owned(), v);
        };
        put("created", int(self.created)?);
        put("expires", int(self.expires)?);
        put("nonce", string(&self.nonce)?);
        put("keyid", string(&self.key.keyid())?);
        put("alg", string(self.alg.name())?);
        put("tag", string(TAG)?);
        Ok(params)
    }

    /// The signature input for `shape` with these parameters.
    pub fn signature_input(&self, shape: Shape) -> Result<SignatureInput> {
        SignatureInput::new(shape.components()?, self.to_parameters()?)
    }
}

/// The `sig1` nonce of a message if its `Signature-Input` parses and the nonce is
/// syntactically valid (B.10: responses echo it even when verification failed).
pub fn sig1_nonce(signature_input: &str) -> Option<String> {
    let inputs = crate::base::parse_signature_input(signature_input).ok()?;
    let (_, input) = inputs.into_iter().find(|(l, _)| l == LABEL)?;
    let nonce = input.string_param("nonce")?;
    crate::nonce::decode_nonce(nonce).ok()?;
    Some(nonce.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::parse_signature_input;

    const GOOD: &str = "sig1=(\"@method\" \"@target-uri\");created=1767225600;expires=1767225660;nonce=\"EBESExQVFhcYGRobHB0eHw\";keyid=\"ed25519:JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs\";alg=\"ed25519\";tag=\"keyline-http-v1\"";

    fn params(value: &str) -> Result<ProfileParams> {
        let (_, input) = parse_signature_input(value)?.remove(0);
        ProfileParams::from_input(&input)
    }

    #[test]
    fn good_and_round_trip() {
        let p = params(GOOD).unwrap();
        assert_eq!(p.expires - p.created, 60);
        let input = p.signature_input(Shape::Request).unwrap();
        assert_eq!(input.to_field(LABEL).unwrap(), GOOD);
        assert_eq!(Shape::of(&input), Some(Shape::Request));
        assert_eq!(sig1_nonce(GOOD).as_deref(), Some("EBESExQVFhcYGRobHB0eHw"));
        assert_eq!(sig1_nonce("sig1=();nonce=\"short\""), None);
        for shape in [
            Shape::RequestWithBody,
            Shape::RequestSealed,
            Shape::Response,
            Shape::ResponseWithBody,
        ] {
            let input = p.signature_input(shape).unwrap();
            assert_eq!(Shape::of(&input), Some(shape));
        }
    }

    #[test]
    fn each_profile_violation() {
        let cases = [
            (
                GOOD.replace("keyline-http-v1\"", "other\""),
                "malformed.tag",
            ),
            (
                GOOD.replace("alg=\"ed25519\"", "alg=\"rsa\""),
                "malformed.alg",
            ),
            (
                GOOD.replace("alg=\"ed25519\"", "alg=\"bip340-secp256k1\""),
                "malformed.alg_keyid_mismatch",
            ),
            (GOOD.replace("D0bs", "D0bt"), "malformed.keyid"),
            (
                GOOD.replace("EBESExQVFhcYGRobHB0eHw", "EBESExQVFhcYGRobHB0e"),
                "malformed.nonce",
            ),
            (GOOD.replace("1767225660", "1767225901"), "malformed.window"),
            (GOOD.replace("1767225660", "1767225600"), "malformed.window"),
            (
                GOOD.replace("expires=1767225660", "expires=\"1767225660\""),
                "malformed.parameter",
            ),
            (
                GOOD.replace(";tag=\"keyline-http-v1\"", ""),
                "malformed.parameter",
            ),
            (format!("{GOOD};extra=1"), "malformed.parameter"),
            (
                GOOD.replace("created=1767225600", "created=-1"),
                "malformed.parameter",
            ),
            (
                format!("{GOOD};tag=\"keyline-http-v1\""),
                "malformed.duplicate_key",
            ),
        ];
        for (value, code) in cases {
            assert_eq!(params(&value).unwrap_err().code(), code, "{value}");
        }
        // Exactly 300 s is allowed.
        params(&GOOD.replace("1767225660", "1767225900")).unwrap();
        // Any parameter order is accepted.
        params(&GOOD.replace(
            "created=1767225600;expires=1767225660",
            "expires=1767225660;created=1767225600",
        ))
        .unwrap();
    }
}
