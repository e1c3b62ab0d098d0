//! CORS for browser clients (B.17), off unless configured with [`CorsConfig`].
//!
//! - A **preflight** — `OPTIONS` with `Origin` and `Access-Control-Request-Method`, and no
//!   credentials (no `Signature-Input`, `Signature` or `Authorization`) — is answered by the
//!   layer before any verification: `204`, signed like every layer response. For an allowed
//!   origin it carries `Access-Control-Allow-Origin`, `Access-Control-Allow-Methods`,
//!   `Access-Control-Allow-Headers` (`Content-Type`, `Content-Digest`, `Signature`,
//!   `Signature-Input`, `Keyline-Seal`, `Authorization` when NIP-98 is on, and any extra
//!   configured headers) and `Access-Control-Max-Age`; for any other origin none of them.
//! - **Real responses** to an allowed origin (handler answers and the layer's own
//!   400/401/413/429 alike) get `Access-Control-Allow-Origin` and
//!   `Access-Control-Expose-Headers: Content-Digest, Signature, Signature-Input, Date,
//!   Keyline-Seal, Accept-Signature, WWW-Authenticate, Retry-After`, so a browser client can
//!   verify the response and retry after a 401.
//! - Every response of a CORS-enabled layer to a request with `Origin` carries
//!   `Vary: Origin`. Without a configuration the layer adds no CORS header at all, and an
//!   `OPTIONS` request is an ordinary (protected) request. Bypassed paths are left alone.
//!
//! keyline does not use cookies, so `Access-Control-Allow-Credentials` is never sent. CORS
//! only governs what a browser lets a page read: a disallowed origin's requests are still
//! verified (and refused or served) like any other.

use axum::http::{HeaderMap, HeaderValue, Method};

use crate::limits::DEFAULT_CORS_MAX_AGE;

/// Request headers a keyline client sends.
const ALLOW_HEADERS: [&str; 5] = [
    "content-type",
    "content-digest",
    "signature",
    "signature-input",
    "keyline-seal",
];

/// Response headers a keyline client must read.
const EXPOSE_HEADERS: &str = "content-digest, signature, signature-input, date, keyline-seal, \
                              accept-signature, www-authenticate, retry-after";

/// Which browser origins may call the API, and how (B.17).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsConfig {
    /// Allowed origins, compared exactly with the `Origin` header
    /// (`scheme://host[:port]`, as browsers serialize it); `"*"` allows any origin.
    pub allowed_origins: Vec<String>,
    /// Methods announced in `Access-Control-Allow-Methods` (default `GET, HEAD, POST, PUT,
    /// PATCH, DELETE`).
    pub allowed_methods: Vec<String>,
    /// Request headers allowed besides keyline's own.
    pub extra_allowed_headers: Vec<String>,
    /// `Access-Control-Max-Age` in seconds ([`DEFAULT_CORS_MAX_AGE`]).
    pub max_age: u64,
}

impl CorsConfig {
    /// Allows `origins` with the default methods and max age.
    pub fn new<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            allowed_origins: origins.into_iter().map(Into::into).collect(),
            allowed_methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            extra_allowed_headers: Vec::new(),
            max_age: DEFAULT_CORS_MAX_AGE,
        }
    }

    /// Also allows the request header `name`.
    pub fn allow_header(mut self, name: impl Into<String>) -> Self {
        self.extra_allowed_headers.push(name.into());
        self
    }

    /// Announces `methods` instead of the defaults.
    pub fn with_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed.
    fn allow_origin<'a>(&'a self, origin: &'a str) -> Option<&'a str> {
        if self.allowed_origins.iter().any(|o| o == origin) {
            Some(origin)
        } else if self.allowed_origins.iter().any(|o| o == "*") {
            Some("*")
        } else {
            None
        }
    }
}

/// Whether a request is a CORS preflight without credentials.
pub(super) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(axum::http::header::ORIGIN)
        && headers.contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD)
        && !headers.contains_key("signature-input")
        && !headers.contains_key("signature")
        && !headers.contains_key(axum::http::header::AUTHORIZATION)
}

/// Adds the CORS headers for a request from `origin` to a response.
pub(super) fn decorate(
    cors: &CorsConfig,
    origin: &str,
    preflight: bool,
    nip98: bool,
    headers: &mut HeaderMap,
) {
    use axum::http::header;
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    let Some(allowed) = cors
        .allow_origin(origin)
        .and_then(|o| HeaderValue::try_from(o).ok())
    else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    if !preflight {
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        return;
    }
    let mut allow: Vec<&str> = ALLOW_HEADERS.to_vec();
    if nip98 {
        allow.push("authorization");
    }
    allow.extend(cors.extra_allowed_headers.iter().map(String::as_str));
    let values = [
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            cors.allowed_methods.join(", "),
        ),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, allow.join(", ")),
        (header::ACCESS_CONTROL_MAX_AGE, cors.max_age.to_string()),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
}
