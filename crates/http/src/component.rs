//! Covered component identifiers and their values (RFC 9421 §2).
//!
//! Implemented: the derived components `@method`, `@target-uri`, `@authority`, `@scheme`,
//! `@request-target`, `@path`, `@query`, `@query-param` (with `name`) and `@status`; HTTP fields,
//! with the `key` (dictionary member) and `bs` (byte sequence wrapping) parameters; `req` on
//! response signatures. Not implemented (refused as [`Error::Unsupported`]): `sf`
//! re-serialization and `tr` (trailers).

use base64::Engine;
use sfv::{BareItem, Item};

use crate::error::{Error, Malformed, Result};
use crate::message::{Headers, Request, Response};
use crate::uri::TargetUri;

const DERIVED: &[&str] = &[
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
    "@query-param",
    "@status",
];

/// One covered component identifier: a component name with its parameters, as it appears in
/// the Inner List of `Signature-Input`.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    item: Item,
    name: String,
    serialized: String,
}

impl Component {
    /// A component without parameters, e.g. `Component::new("@method")` or
    /// `Component::new("content-type")`.
    pub fn new(name: &str) -> Result<Self> {
        let string = sfv::String::from_string(name.to_string())
            .map_err(|_| Malformed::Component(name.to_string()))?;
        Self::from_item(Item::new(string))
    }

    /// The same component with `;req` (take the value from the request, in a response).
    pub fn req(name: &str) -> Result<Self> {
        let mut component = Self::new(name)?;
        component
            .item
            .params
            .insert(sfv::key_ref("req").to_owned(), BareItem::Boolean(true));
        Self::from_item(component.item)
    }

    /// Validates a parsed Inner List member as a component identifier.
    pub(crate) fn from_item(item: Item) -> Result<Self> {
        // `Item::serialize`, into a buffer sized for a typical identifier.
        let mut serialized = String::with_capacity(32);
        let _ = sfv::ItemSerializer::with_buffer(&mut serialized)
            .bare_item(&item.bare_item)
            .parameters(&item.params);
        let bad = || Error::from(Malformed::Component(serialized.clone()));
        let name = item
            .bare_item
            .as_string()
            .ok_or_else(bad)?
            .as_str()
            .to_string();
        if name.is_empty() {
            return Err(bad());
        }
        if name.starts_with('@') {
            if !DERIVED.contains(&name.as_str()) {
                return Err(Error::Unsupported("unknown derived component"));
            }
        } else if !name.bytes().all(is_field_name_char) {
            return Err(bad());
        }
        for (key, value) in &item.params {
            match key.as_str() {
                "req" | "sf" | "bs" | "tr" => {
                    if value.as_boolean() != Some(true) {
                        return Err(bad());
                    }
                }
                "key" | "name" => {
                    if value.as_string().is_none() {
                        return Err(bad());
                    }
                }
                _ => return Err(Error::Unsupported("unknown component parameter")),
            }
        }
        let has = |k: &str| item.params.contains_key(k);
        let derived = name.starts_with('@');
        if derived && (has("sf") || has("bs") || has("key") || has("tr")) {
            return Err(bad());
        }
        if (name == "@query-param") != has("name") {
            return Err(bad());
        }
        if has("bs") && (has("sf") || has("key")) {
            return Err(bad());
        }
        if has("sf") || has("tr") {
            return Err(Error::Unsupported("sf and tr component parameters"));
        }
        Ok(Self {
            item,
            name,
            serialized,
        })
    }

    /// The component name (`@method`, `content-type`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the component carries `;req`.
    pub fn is_req(&self) -> bool {
        self.item.params.contains_key("req")
    }

    /// The identifier as serialized in the Inner List and at the start of its base line
    /// (`"@method";req`).
    pub fn serialized(&self) -> &str {
        &self.serialized
    }

    pub(crate) fn item(&self) -> &Item {
        &self.item
    }

    fn string_param(&self, key: &str) -> Option<&str> {
        self.item
            .params
            .get(key)
            .and_then(|v| v.as_string())
            .map(|s| s.as_str())
    }

    /// The component's value in `message` (RFC 9421 §2.1–2.4). `;req` takes it from the
    /// request related to a response.
    #[cfg(test)]
    pub(crate) fn value(&self, message: &MessageRef<'_>) -> Result<String> {
        let mut value = String::new();
        self.write_value(message, &mut value)?;
        Ok(value)
    }

    /// Appends the component's value in `message` to `out` (RFC 9421 §2.1–2.4; `;req` takes
    /// it from the request related to a response). On an error, `out` holds a partial value.
    pub(crate) fn write_value(&self, message: &MessageRef<'_>, out: &mut String) -> Result<()> {
        let missing = || Error::from(Malformed::MissingComponent(self.serialized.clone()));
        let target = match (message, self.is_req()) {
            (MessageRef::Request(r), false) => Target::Request(r),
            (MessageRef::Request(_), true) => {
                return Err(Malformed::Component(self.serialized.clone()).into());
            }
            (MessageRef::Response { response, .. }, false) => Target::Response(response),
            (MessageRef::Response { request, .. }, true) => {
                Target::Request(request.ok_or_else(missing)?)
            }
        };
        let start = out.len();
        if self.name.starts_with('@') {
            self.derived_value(target, out)?;
        } else {
            let headers = match target {
                Target::Request(r) => &r.headers,
                Target::Response(r) => &r.headers,
            };
            self.field_value(headers, out)?;
        }
        if out.as_bytes()[start..]
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || b == 0)
        {
            return Err(Malformed::FieldValue("a covered component").into());
        }
        Ok(())
    }

    fn derived_value(&self, target: Target<'_>, out: &mut String) -> Result<()> {
        let request = match target {
            Target::Response(response) if self.name == "@status" => {
                use std::fmt::Write as _;
                let _ = write!(out, "{:03}", response.status);
                return Ok(());
            }
            Target::Response(_) => {
                return Err(Malformed::Component(self.serialized.clone()).into());
            }
            Target::Request(_) if self.name == "@status" => {
                return Err(Malformed::Component(self.serialized.clone()).into());
            }
            Target::Request(request) => request,
        };
        if self.name == "@method" {
            out.push_str(&request.method);
            return Ok(());
        }
        let uri = TargetUri::parse(&request.target_uri)?;
        match self.name.as_str() {
            "@target-uri" => out.push_str(uri.without_fragment),
            "@authority" => out.push_str(&uri.authority_normalized()),
            "@scheme" => out.push_str(&uri.scheme_lower()),
            "@request-target" => out.push_str(&uri.request_target()),
            "@path" => out.push_str(uri.path_or_root()),
            "@query" => out.push_str(&uri.query_with_mark()),
            "@query-param" => {
                let wanted = self.string_param("name").unwrap_or_default();
                let mut found = None;
                for (name, value) in url::form_urlencoded::parse(uri.query.unwrap_or("").as_bytes())
                {
                    if percent_encode(&name) == wanted {
                        if found.is_some() {
                            return Err(Malformed::Component(self.serialized.clone()).into());
                        }
                        found = Some(percent_encode(&value));
                    }
                }
                let value =
                    found.ok_or_else(|| Malformed::MissingComponent(self.serialized.clone()))?;
                out.push_str(&value);
            }
            _ => return Err(Error::Unsupported("unknown derived component")),
        }
        Ok(())
    }

    fn field_value(&self, headers: &Headers, out: &mut String) -> Result<()> {
        let missing = || Error::from(Malformed::MissingComponent(self.serialized.clone()));
        if self.item.params.contains_key("bs") {
            let mut lines = headers.get_all(&self.name).peekable();
            lines.peek().ok_or_else(missing)?;
            let engine = base64::engine::general_purpose::STANDARD;
            out.push_str(
                &lines
                    .map(|v| format!(":{}:", engine.encode(v.trim_matches([' ', '\t']))))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            return Ok(());
        }
        match self.string_param("key") {
            None => {
                // `Headers::combined`, written in place.
                let mut lines = headers.get_all(&self.name);
                let first = lines.next().ok_or_else(missing)?;
                out.push_str(first.trim_matches([' ', '\t']));
                for line in lines {
                    out.push_str(", ");
                    out.push_str(line.trim_matches([' ', '\t']));
                }
                Ok(())
            }
            Some(key) => {
                let value = headers.combined(&self.name).ok_or_else(missing)?;
                let dict = crate::sf::parse_dictionary("a dictionary field", &value)?;
                let member = dict.get(key).ok_or_else(missing)?;
                out.push_str(&crate::sf::serialize_entry(member).ok_or_else(missing)?);
                Ok(())
            }
        }
    }
}

fn is_field_name_char(b: u8) -> bool {
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9421 §2.2.8: "percent-encode after encoding" with the
/// application/x-www-form-urlencoded percent-encode set (space becomes `%20`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The message a signature base is built from.
#[derive(Clone, Copy, Debug)]
pub enum MessageRef<'a> {
    /// A request.
    Request(&'a Request),
    /// A response, with the request it answers (needed for `;req` components).
    Response {
        /// The response.
        response: &'a Response,
        /// The request it answers, if known.
        request: Option<&'a Request>,
    },
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Request(&'a Request),
    Response(&'a Response),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request {
        Request::new(
            "GET",
            "https://www.example.com/path?param=value&foo=bar&baz=batman&qux=",
        )
    }

    fn value(name: &str, r: &Request) -> Result<String> {
        let dict = crate::sf::parse_dictionary("t", &format!("x=({name})")).unwrap();
        let sfv::ListEntry::InnerList(il) = &dict["x"] else {
            unreachable!()
        };
        Component::from_item(il.items[0].clone())?.value(&MessageRef::Request(r))
    }

    #[test]
    fn rfc9421_section_2_2_examples() {
        let r = req();
        assert_eq!(
            value("\"@query\"", &r).unwrap(),
            "?param=value&foo=bar&baz=batman&qux="
        );
        assert_eq!(
            value("\"@query-param\";name=\"baz\"", &r).unwrap(),
            "batman"
        );
        assert_eq!(value("\"@query-param\";name=\"qux\"", &r).unwrap(), "");
        let r2 = Request::new(
            "GET",
            "https://example.com/parameters?var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
        );
        assert_eq!(
            value("\"@query-param\";name=\"var\"", &r2).unwrap(),
            "this%20is%20a%20big%0Avalue"
        );
        assert_eq!(
            value("\"@query-param\";name=\"bar\"", &r2).unwrap(),
            "with%20plus%20whitespace"
        );
        assert_eq!(
            value("\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\"", &r2).unwrap(),
            "something"
        );
        assert_eq!(
            value("\"@request-target\"", &r).unwrap(),
            "/path?param=value&foo=bar&baz=batman&qux="
        );
        let dup = Request::new("GET", "https://e.example/?a=1&a=2");
        assert!(value("\"@query-param\";name=\"a\"", &dup).is_err());
    }

    #[test]
    fn field_parameters() {
        let r = Request::new("GET", "https://e.example/")
            .with_header("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)")
            .with_header("Example-Header", "value, with, lots")
            .with_header("Example-Header", "of, commas");
        assert_eq!(value("\"example-dict\";key=\"a\"", &r).unwrap(), "1");
        assert_eq!(
            value("\"example-dict\";key=\"b\"", &r).unwrap(),
            "2;x=1;y=2"
        );
        assert_eq!(value("\"example-dict\";key=\"c\"", &r).unwrap(), "(a b c)");
        assert_eq!(
            value("\"example-header\";bs", &r).unwrap(),
            ":dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"
        );
        assert_eq!(
            value("\"example-header\"", &r).unwrap(),
            "value, with, lots, of, commas"
        );
        assert!(matches!(
            value("\"example-dict\";sf", &r),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(value("\"@foo\"", &r), Err(Error::Unsupported(_))));
        assert!(value("\"Upper\"", &r).is_err());
        assert!(value("\"@method\";req", &r).is_err());
        assert!(value("\"@status\"", &r).is_err());
        assert!(value("\"absent\"", &r).is_err());
        assert!(value("\"@path\";bs", &r).is_err());
    }
}
