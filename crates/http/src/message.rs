//! Framework-free HTTP messages: what the sans-IO core signs and verifies.
//!
//! A [`Request`] is a method, an absolute target URI, ordered header field lines and the exact
//! body bytes (after removing any transfer coding). A [`Response`] is a status, field lines and
//! body. Adapters for HTTP frameworks convert to and from these.

use std::borrow::Cow;

/// Ordered header field lines, as `(name, value)` pairs. Names compare case-insensitively;
/// repeated names are kept as separate lines, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    lines: Vec<(String, String)>,
}

impl Headers {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a field line.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.lines.push((name.into(), value.into()));
    }

    /// Removes every line of `name`, then appends one with `value`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.push(name, value);
    }

    /// Removes every line of `name`.
    pub fn remove(&mut self, name: &str) {
        self.lines.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The values of every line of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any line of `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_all(name).next().is_some()
    }

    /// The field value as RFC 9421 §2.1 defines it: each line's value with leading and
    /// trailing whitespace removed, joined by `", "`. `None` when the field is absent.
    pub fn combined(&self, name: &str) -> Option<String> {
        self.combined_ref(name).map(Cow::into_owned)
    }

    /// As [`combined`](Self::combined), borrowing the value when the field has one line.
    pub fn combined_ref(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut values = self
            .lines
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = trim_ows(values.next()?);
        let Some(second) = values.next() else {
            return Some(Cow::Borrowed(first));
        };
        let mut joined = String::with_capacity(self.combined_len(name));
        joined.push_str(first);
        joined.push_str(", ");
        joined.push_str(trim_ows(second));
        for v in values {
            joined.push_str(", ");
            joined.push_str(trim_ows(v));
        }
        Some(Cow::Owned(joined))
    }

    /// Total bytes of every value of `name` (what [`combined`](Self::combined) would return,
    /// without allocating it).
    pub fn combined_len(&self, name: &str) -> usize {
        let mut count = 0usize;
        let mut len = 0usize;
        for v in self.get_all(name) {
            len = len.saturating_add(v.trim_matches([' ', '\t']).len());
            count += 1;
        }
        len.saturating_add(count.saturating_sub(1).saturating_mul(2))
    }

    /// Every line, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A field line value without leading and trailing spaces and tabs (RFC 9421 §2.1).
fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self {
            lines: iter
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }
}

/// An HTTP request as the signature sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method exactly as sent (case-sensitive).
    pub method: String,
    /// The absolute target URI (`scheme://authority/path?query`, no fragment). On a server this
    /// is the public origin ‖ the raw request-target ([`crate::PublicOrigin::target_uri`]).
    pub target_uri: String,
    /// The header field lines.
    pub headers: Headers,
    /// The exact content bytes (after removing any transfer coding, before anything else).
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: impl Into<String>, target_uri: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            target_uri: target_uri.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header line (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether the request has content (B.3): a non-empty body, a `Content-Length` above 0,
    /// or a `Transfer-Encoding`.
    pub fn has_content(&self) -> bool {
        has_content(&self.headers, &self.body)
    }
}

/// An HTTP response as the signature sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header field lines.
    pub headers: Headers,
    /// The exact content bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A response without headers or body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header line (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether the response has content: a non-empty body (or a `Content-Length` above 0 or
    /// a `Transfer-Encoding`).
    pub fn has_content(&self) -> bool {
        has_content(&self.headers, &self.body)
    }
}

fn has_content(headers: &Headers, body: &[u8]) -> bool {
    !body.is_empty()
        || headers.contains("transfer-encoding")
        || headers
            .get_all("content-length")
            .any(|v| v.trim().parse::<u64>().map_or(true, |n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_trims_and_joins() {
        let h: Headers = [("Accept", " application/json "), ("accept", "*/*\t")]
            .into_iter()
            .collect();
        assert_eq!(
            h.combined("ACCEPT").as_deref(),
            Some("application/json, */*")
        );
        assert_eq!(h.combined_len("accept"), "application/json, */*".len());
        assert_eq!(h.combined("x"), None);
        assert_eq!(h.combined_len("x"), 0);
    }

    #[test]
    fn content_detection() {
        let r = Request::new("GET", "https://a.example/");
        assert!(!r.has_content());
        assert!(r.clone().with_body("x").has_content());
        assert!(r.clone().with_header("Content-Length", "3").has_content());
        assert!(!r.clone().with_header("Content-Length", "0").has_content());
        assert!(r.with_header("Transfer-Encoding", "chunked").has_content());
        let mut h = Headers::new();
        h.set("a", "1");
        h.set("A", "2");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![("A", "2")]);
        assert!(!Response::new(204).has_content());
    }
}
