//! Target URIs and the server's public origin (`shared/specs/http.md` B.8).
//!
//! The signature covers the target URI as a string, so nothing here normalises it beyond what
//! RFC 9421 asks for each derived component: no percent-decoding, no dot-segment removal, no
//! query reordering. The server's `@target-uri` is its configured [`PublicOrigin`] followed by
//! the raw request-target; it never comes from `Host`, `X-Forwarded-*` or `Forwarded`.

use crate::error::{InvalidInput, Malformed, Result};

/// The parts of an absolute `http`/`https` target URI, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TargetUri<'a> {
    /// Everything except a fragment.
    pub(crate) without_fragment: &'a str,
    /// The scheme as written.
    pub(crate) scheme: &'a str,
    /// The authority as written.
    pub(crate) authority: &'a str,
    /// The path as written (may be empty).
    pub(crate) path: &'a str,
    /// The query without `?`, if there is a `?`.
    pub(crate) query: Option<&'a str>,
}

impl<'a> TargetUri<'a> {
    /// Splits an absolute URI. Fails on anything but `http://` / `https://` with a non-empty
    /// authority, and on characters that cannot appear in a request line.
    pub(crate) fn parse(uri: &'a str) -> Result<Self, Malformed> {
        if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(Malformed::TargetUri("control character or space"));
        }
        let without_fragment = uri.split_once('#').map_or(uri, |(u, _)| u);
        // `split_once("://")` without a substring searcher: the first occurrence.
        let sep = without_fragment
            .as_bytes()
            .windows(3)
            .position(|w| w == b"://")
            .ok_or(Malformed::TargetUri("not absolute"))?;
        let (scheme, rest) = (&without_fragment[..sep], &without_fragment[sep + 3..]);
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(Malformed::TargetUri("scheme is not http or https"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(Malformed::TargetUri("empty authority or userinfo"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        Ok(Self {
            without_fragment,
            scheme,
            authority,
            path,
            query,
        })
    }

    /// `@scheme`: the scheme in lower case.
    pub(crate) fn scheme_lower(&self) -> String {
        self.scheme.to_ascii_lowercase()
    }

    /// `@authority`: host in lower case, default port removed (RFC 9421 §2.2.3).
    pub(crate) fn authority_normalized(&self) -> String {
        let lower = self.authority.to_ascii_lowercase();
        let default = if self.scheme.eq_ignore_ascii_case("https") {
            ":443"
        } else {
            ":80"
        };
        match lower.strip_suffix(default) {
            Some(host) => host.to_string(),
            None => lower,
        }
    }

    /// `@path`: the path, `/` when empty.
    pub(crate) fn path_or_root(&self) -> &'a str {
        if self.path.is_empty() { "/" } else { self.path }
    }

    /// `@query`: `?` followed by the query, or `?` alone when there is none (RFC 9421 §2.2.7).
    pub(crate) fn query_with_mark(&self) -> String {
        format!("?{}", self.query.unwrap_or(""))
    }

    /// `@request-target` in origin-form: path and query as written.
    pub(crate) fn request_target(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{q}", self.path_or_root()),
            None => self.path_or_root().to_string(),
        }
    }
}

/// The server's public origin: `scheme://host[:port]`, lower case, no default port, no
/// trailing slash, no path. Mandatory configuration of a verifying server (B.8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicOrigin(String);

impl PublicOrigin {
    /// Validates an origin string; it must already be canonical (this does not rewrite it, so
    /// what the operator configured is exactly what gets compared).
    pub fn new(origin: &str) -> Result<Self> {
        let bad = |why: &str| InvalidInput::Origin(why.to_string());
        let parsed = TargetUri::parse(origin).map_err(|_| bad("not an http(s) origin"))?;
        if !parsed.path.is_empty() || parsed.query.is_some() || origin.contains('#') {
            return Err(bad("has a path, query or fragment").into());
        }
        if parsed.scheme != parsed.scheme.to_ascii_lowercase()
            || parsed.authority != parsed.authority.to_ascii_lowercase()
        {
            return Err(bad("not lower case").into());
        }
        if parsed.authority_normalized() != parsed.authority {
            return Err(bad("names the default port").into());
        }
        if parsed.authority.ends_with(':') {
            return Err(bad("empty port").into());
        }
        Ok(Self(origin.to_string()))
    }

    /// The origin string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `@target-uri` for a request whose request-target (from the request line, exactly as
    /// received) is `request_target`: the origin followed by the path and query. An
    /// absolute-form target must name this origin's scheme and authority (else
    /// [`Malformed::ForeignAuthority`]); the asterisk-form and authority-form are refused.
    pub fn target_uri(&self, request_target: &str) -> Result<String, Malformed> {
        if request_target.starts_with('/') {
            if request_target
                .bytes()
                .any(|b| b <= b' ' || b == 0x7f || b == b'#')
            {
                return Err(Malformed::TargetUri("invalid character in request-target"));
            }
            return Ok(format!("{}{request_target}", self.0));
        }
        let parsed = TargetUri::parse(request_target)?;
        if request_target.contains('#') {
            return Err(Malformed::TargetUri("fragment in request-target"));
        }
        let own = TargetUri::parse(&self.0)?;
        if parsed.scheme_lower() != own.scheme || parsed.authority_normalized() != own.authority {
            return Err(Malformed::ForeignAuthority);
        }
        Ok(format!("{}{}", self.0, parsed.request_target()))
    }
}

impl std::fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_components() {
        let u = TargetUri::parse("HTTPS://Example.COM:443/foo?param=Value&Pet=dog#frag").unwrap();
        assert_eq!(u.scheme_lower(), "https");
        assert_eq!(u.authority_normalized(), "example.com");
        assert_eq!(u.path_or_root(), "/foo");
        assert_eq!(u.query_with_mark(), "?param=Value&Pet=dog");
        assert_eq!(u.request_target(), "/foo?param=Value&Pet=dog");
        assert_eq!(
            u.without_fragment,
            "HTTPS://Example.COM:443/foo?param=Value&Pet=dog"
        );
        let u = TargetUri::parse("http://h:8080").unwrap();
        assert_eq!(u.path_or_root(), "/");
        assert_eq!(u.query_with_mark(), "?");
        assert_eq!(u.authority_normalized(), "h:8080");
        assert_eq!(TargetUri::parse("http://h:80?").unwrap().query, Some(""));
        for bad in [
            "/relative",
            "ftp://h/",
            "http:///x",
            "http://u@h/",
            "http://h/ x",
        ] {
            assert!(TargetUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_rules() {
        let o = PublicOrigin::new("https://api.example.com").unwrap();
        assert_eq!(o.to_string(), "https://api.example.com");
        assert_eq!(
            o.target_uri("/v1/echo?x=1").unwrap(),
            "https://api.example.com/v1/echo?x=1"
        );
        assert_eq!(
            o.target_uri("https://API.example.com:443/a?b").unwrap(),
            "https://api.example.com/a?b"
        );
        assert_eq!(
            o.target_uri("https://evil.example/a"),
            Err(Malformed::ForeignAuthority)
        );
        assert_eq!(
            o.target_uri("http://api.example.com/a"),
            Err(Malformed::ForeignAuthority)
        );
        assert!(o.target_uri("*").is_err());
        assert!(o.target_uri("/a#b").is_err());
        assert!(PublicOrigin::new("http://localhost:8080").is_ok());
        for bad in [
            "https://api.example.com/",
            "https://API.example.com",
            "https://api.example.com:443",
            "http://a:80",
            "https://a:",
            "https://a?x",
            "api.example.com",
        ] {
            assert!(PublicOrigin::new(bad).is_err(), "{bad}");
        }
    }
}
