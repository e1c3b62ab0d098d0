//! `Signature-Input`, `Signature` and the signature base (RFC 9421 §2.5, §4).
//!
//! Both fields are parsed with `sfv` (strictly: a repeated key or parameter is refused); the
//! `@signature-params` line is the `sfv` serialization of the parsed Inner List, in the order
//! received, never a splice of the input text.

use sfv::{BareItem, FieldType, InnerList, Item, KeyRef, ListEntry, Parameters};

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

    fn from_inner_list(list: InnerList) -> Result<Self> {
        if list.items.len() > MAX_COVERED_COMPONENTS {
            return Err(Malformed::Component("too many covered components".into()).into());
        }
        let components = list
            .items
            .into_iter()
            .map(Component::from_item)
            .collect::<Result<Vec<_>>>()?;
        Self::new(components, list.params)
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
        let mut out = String::new();
        self.write_params(&mut out);
        out
    }

    /// Appends the `@signature-params` value to `out`: `sfv`'s serializer over the components'
    /// items and the parameters, by reference — the same calls, in the same order, as
    /// serializing a one-member List holding this Inner List.
    fn write_params(&self, out: &mut String) {
        let mut list = sfv::ListSerializer::with_buffer(out);
        {
            let mut inner = list.inner_list();
            for component in &self.components {
                let item = component.item();
                inner.bare_item(&item.bare_item).parameters(&item.params);
            }
            let _ = inner.finish().parameters(&self.params);
        }
        let _ = list.finish();
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
        // Room for the profile's bases without growing: identifiers twice (their line and
        // the params line), the request line values, the parameters.
        let identifiers: usize = self.components.iter().map(|c| c.serialized().len()).sum();
        let request_hint = match message {
            MessageRef::Request(r) => r.method.len() + r.target_uri.len(),
            MessageRef::Response {
                request: Some(r), ..
            } => r.method.len() + r.target_uri.len(),
            MessageRef::Response { request: None, .. } => 0,
        };
        let mut base = String::with_capacity(2 * identifiers + request_hint + 384);
        for component in &self.components {
            base.push_str(component.serialized());
            base.push_str(": ");
            component.write_value(message, &mut base)?;
            base.push('\n');
        }
        base.push_str("\"@signature-params\": ");
        self.write_params(&mut base);
        Ok(base)
    }
}

/// The members of a `Signature-Input` value, in order, each validated as a signature input.
fn signature_inputs(
    value: &str,
) -> Result<impl Iterator<Item = Result<(&KeyRef, SignatureInput)>>> {
    let entries = crate::sf::parse_entries("signature-input", value)?;
    Ok(entries.into_iter().map(|(label, entry)| match entry {
        ListEntry::InnerList(list) => Ok((label, SignatureInput::from_inner_list(list)?)),
        ListEntry::Item(_) => Err(Malformed::WrongType("a signature-input member").into()),
    }))
}

/// The members of a `Signature` value, in order, each checked to be a Byte Sequence.
fn signatures(value: &str) -> Result<impl Iterator<Item = Result<(&KeyRef, Vec<u8>)>>> {
    let entries = crate::sf::parse_entries("signature", value)?;
    Ok(entries.into_iter().map(|(label, entry)| match entry {
        ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(bytes),
            ..
        }) => Ok((label, bytes)),
        _ => Err(Malformed::WrongType("a signature member").into()),
    }))
}

/// Parses a `Signature-Input` value: every member, in order, as `(label, input)`.
pub fn parse_signature_input(value: &str) -> Result<Vec<(String, SignatureInput)>> {
    signature_inputs(value)?
        .map(|member| member.map(|(label, input)| (label.as_str().to_string(), input)))
        .collect()
}

/// Parses a `Signature` value: every member, in order, as `(label, signature bytes)`.
pub fn parse_signature(value: &str) -> Result<Vec<(String, Vec<u8>)>> {
    signatures(value)?
        .map(|member| member.map(|(label, bytes)| (label.as_str().to_string(), bytes)))
        .collect()
}

/// As [`parse_signature_input`] (every member is parsed and validated, with the same errors in
/// the same order), keeping only the first member labelled `label`.
pub(crate) fn parse_signature_input_label(
    value: &str,
    label: &str,
) -> Result<Option<SignatureInput>> {
    let mut found = None;
    for member in signature_inputs(value)? {
        let (key, input) = member?;
        if found.is_none() && key.as_str() == label {
            found = Some(input);
        }
    }
    Ok(found)
}

/// As [`parse_signature`] (every member is checked, with the same errors in the same order),
/// keeping only the first member labelled `label`.
pub(crate) fn parse_signature_label(value: &str, label: &str) -> Result<Option<Vec<u8>>> {
    let mut found = None;
    for member in signatures(value)? {
        let (key, bytes) = member?;
        if found.is_none() && key.as_str() == label {
            found = Some(bytes);
        }
    }
    Ok(found)
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
    fn params_line_is_the_list_serialization() {
        for value in [
            r#"sig1=("@method" "@path");created=1;keyid="k""#,
            r#"s=("@query-param";name="a\"b" "example-dict";key="x" "h";bs "@status";req);p=?0;q;r=1.5;t=tok/en;b=:AAEC:;s="a\\b\"c";d=@5;e=%"%c3%a9";i=-7"#,
            "s=()",
            "s=();a;b=?1",
        ] {
            let (_, input) = parse_signature_input(value).unwrap().remove(0);
            let expected = vec![ListEntry::InnerList(input.inner_list())]
                .serialize()
                .unwrap();
            assert_eq!(input.serialize_params(), expected, "{value}");
            let base = input
                .signature_base(&MessageRef::Response {
                    response: &crate::message::Response::new(200),
                    request: None,
                })
                .map(|b| {
                    b.rsplit_once("\"@signature-params\": ")
                        .map(|(_, p)| p.to_string())
                });
            if let Ok(Some(line)) = base {
                assert_eq!(line, expected, "{value}");
            }
        }
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
