//! Shared helpers for the vector tests: reading the RFC 9421 message files.
#![allow(dead_code, unreachable_pub)]

use keyline_http::{Headers, Request, Response};
use keyline_testkit::vectors_dir;

/// A parsed `messages/*.http` file.
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Reads `http-sig/<relative>`.
pub fn read_text(relative: &str) -> String {
    let path = vectors_dir().join("http-sig").join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// Parses a message file: header section with LF line endings, an empty line, the content.
/// Requests get the target URI `https://<Host><request-target>`.
pub fn load_message(relative: &str) -> Message {
    let text = read_text(relative);
    let (head, body) = text.split_once("\n\n").expect("header/body separator");
    let mut lines = head.lines();
    let start = lines.next().expect("start line");
    let headers: Headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("field line");
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let body = body.as_bytes().to_vec();
    let parts: Vec<&str> = start.split(' ').collect();
    if parts[0].starts_with("HTTP/") {
        Message::Response(Response {
            status: parts[1].parse().expect("status"),
            headers,
            body,
        })
    } else {
        let host = headers.combined("host").expect("Host");
        Message::Request(Request {
            method: parts[0].to_string(),
            target_uri: format!("https://{host}{}", parts[1]),
            headers,
            body,
        })
    }
}

/// Decodes a PEM file's body to DER.
pub fn pem_der(relative: &str) -> Vec<u8> {
    use base64::Engine;
    let text = read_text(relative);
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM base64")
}
