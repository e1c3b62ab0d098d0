//! `Signature-Input`, `Signature` and the signature base (RFC 9421 §2.5, §4).
//!
//! Both fields are parsed with `sfv` (strictly: a repeated key or parameter is refused); the
//! `@signature-params` line is the `sfv` serialization of the parsed Inner List, in the order
//! received, never a splice of the input text.

use sfv::{BareItem, FieldType, InnerList, Item, ListEntry, Parameters};

use crate::component::{Component, MessageRef};
use crate::error::{Error, Malformed, Result};
use crate::limits::MAX_COVERED_COMPONENTS;

/// One signature's covered components and parameters: a member of `Signature-Input`.
#[derive(Clone, Debug, PartialEq)]
pub struct SignatureInput {
    components: Vec<Component>,
    params: Parameters,
}

impl SignatureInput {
    /// A signature input from components and parameters (in the order they will be
    /// serialized). Fails on repeated components.
    pub fn new(components: Vec<Component>, params: Parameters) -> Result<Self> {
        let input = Self { components, params };
        input.check_components()?;
        Ok(input)
    }

    fn from_inner_list(list: &InnerList) -> Result<Self> {
        if list.items.len() > MAX_COVERED_COMPONENTS {
            return Err(Malformed::Component("too many covered components".into()).into());
        }
        let components = list
            .items
            .iter()
            .cloned()
            .map(Component::from_item)
            .collect::<Result<Vec<_>>>()?;
        Self::new(components, list.params.clone())
    }

    fn check_components(&self) -> Result<()> {
        for (i, c) in self.components.iter().enumerate() {
            if self.components[..i]
                .iter()
                .any(|d| d.serialized() == c.serialized())
            {
                return Err(Malformed::Component(format!("{} repeated", c.serialized())).into());
            }
        }
        Ok(())
    }

    /// The covered components, in order.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The signature parameters, in the order received.
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// A parameter by name.
    pub fn param(&self, name: &str) -> Option<&BareItem> {
        self.params
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v)
    }

    /// An Integer parameter (`created`, `expires`); `None` if absent or of another type.
    pub fn integer_param(&self, name: &str) -> Option<i64> {
        self.param(name)
            .and_then(BareItem::as_integer)
            .map(i64::from)
    }

    /// A String parameter (`nonce`, `keyid`, `alg`, `tag`); `None` if absent or of another type.
    pub fn string_param(&self, name: &str) -> Option<&str> {
        self.param(name)
            .and_then(|v| v.as_string())
            .map(|s| s.as_str())
    }

    fn inner_list(&self) -> InnerList {
        InnerList::with_params(
            self.components.iter().map(|c| c.item().clone()).collect(),
            self.params.clone(),
        )
    }

    /// The `@signature-params` value: the canonical serialization of the Inner List with its
    /// parameters.
    pub fn serialize_params(&self) -> String {
        vec![ListEntry::InnerList(self.inner_list())]
            .serialize()
            .unwrap_or_default()
    }

    /// `Signature-Input` field value with this input under `label`.
    pub fn to_field(&self, label: &str) -> Result<String> {
        let key = sfv::Key::from_string(label.to_string())
            .map_err(|_| Error::Unsupported("invalid label"))?;
        let mut dict = sfv::Dictionary::new();
        dict.insert(key, ListEntry::InnerList(self.inner_list()));
        dict.serialize()
            .ok_or(Error::Unsupported("empty dictionary"))
    }

    /// The signature base of `message` for this input: one line per covered component, then
    /// the `@signature-params` line, joined by LF, no trailing LF.
    pub fn signature_base(&self, message: &MessageRef<'_>) -> Result<String> {
        let mut base = String::new();
        for component in &self.components {
            let value = component.value(message)?;
            base.push_str(component.serialized());
            base.push_str(": ");
            base.push_str(&value);
            base.push('\n');
        }
        base.push_str("\"@signature-params\": ");
        base.push_str(&self.serialize_params());
        Ok(base)
    }
}

/// Parses a `Signature-Input` value: every member, in order, as `(label, input)`.
pub fn parse_signature_input(value: &str) -> Result<Vec<(String, SignatureInput)>> {
    let dict = crate::sf::parse_dictionary("signature-input", value)?;
    dict.iter()
        .map(|(label, entry)| match entry {
            ListEntry::InnerList(list) => Ok((
                label.as_str().to_string(),
                SignatureInput::from_inner_list(list)?,
            )),
            ListEntry::Item(_) => Err(Malformed::WrongType("a signature-input member").into()),
        })
        .collect()
}

/// Parses a `Signature` value: every member, in order, as `(label, signature bytes)`.
pub fn parse_signature(value: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let dict = crate::sf::parse_dictionary("signature", value)?;
    dict.iter()
        .map(|(label, entry)| match entry {
            ListEntry::Item(Item {
                bare_item: BareItem::ByteSequence(bytes),
                ..
            }) => Ok((label.as_str().to_string(), bytes.clone())),
            _ => Err(Malformed::WrongType("a signature member").into()),
        })
        .collect()
}

/// `Signature` field value with `signature` under `label`.
pub fn signature_field(label: &str, signature: &[u8]) -> Result<String> {
    let key = sfv::Key::from_string(label.to_string())
        .map_err(|_| Error::Unsupported("invalid label"))?;
    let mut dict = sfv::Dictionary::new();
    dict.insert(key, ListEntry::Item(Item::new(signature.to_vec())));
    dict.serialize()
        .ok_or(Error::Unsupported("empty dictionary"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Request;

    #[test]
    fn round_trip_and_base() {
        let (label, input) =
            parse_signature_input("sig1=(\"@method\"   \"@path\");created=1;keyid=\"k\", other=()")
                .unwrap()
                .remove(0);
        assert_eq!(label, "sig1");
        assert_eq!(input.integer_param("created"), Some(1));
        assert_eq!(input.string_param("keyid"), Some("k"));
        assert_eq!(input.string_param("created"), None);
        assert_eq!(
            input.to_field("sig1").unwrap(),
            "sig1=(\"@method\" \"@path\");created=1;keyid=\"k\""
        );
        let req = Request::new("GET", "https://e.example/a?b");
        assert_eq!(
            input.signature_base(&MessageRef::Request(&req)).unwrap(),
            "\"@method\": GET\n\"@path\": /a\n\"@signature-params\": (\"@method\" \"@path\");created=1;keyid=\"k\""
        );
    }

    #[test]
    fn malformed_inputs() {
        for bad in [
            "sig1=\"x\"",
            "sig1=(\"@method\" \"@method\")",
            "sig1=(\"@method\");created=1;created=2",
            "sig1=(1)",
            "sig1=(\"Content-Type\")",
        ] {
            assert!(parse_signature_input(bad).is_err(), "{bad}");
        }
        assert!(parse_signature("sig1=(\"a\")").is_err());
        assert!(parse_signature("sig1=\"abc\"").is_err());
        let sigs = parse_signature("sig1=:AAEC:").unwrap();
        assert_eq!(sigs[0].1, vec![0, 1, 2]);
        assert_eq!(signature_field("sig1", &[0, 1, 2]).unwrap(), "sig1=:AAEC:");
    }

    #[test]
    fn component_bound() {
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("\"h{i}\""))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(parse_signature_input(&format!("s=({})", names(MAX_COVERED_COMPONENTS))).is_ok());
        assert!(
            parse_signature_input(&format!("s=({})", names(MAX_COVERED_COMPONENTS + 1))).is_err()
        );
    }
}
