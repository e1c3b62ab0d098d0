//! Signed responses bound to their request (B.9, B.10).
//!
//! Every response through a keyline server is signed: handler responses and the server's own
//! 400/401/413/429 alike. The signature covers `@status`, `Date`, the content type and digest
//! when there is content, and the request's `@method` and `@target-uri` (`;req`); its `nonce`
//! echoes the request's nonce, which is what binds a response to one request.

use crate::base::signature_field;
use crate::component::MessageRef;
use crate::date::imf_fixdate;
use crate::digest::{ContentDigest, content_digest};
use crate::error::{AuthFailure, InvalidInput, Malformed, Result};
use crate::keys::{PublicKey, SigningKey};
use crate::limits::DEFAULT_SIGNATURE_LIFETIME;
use crate::message::{Request, Response};
use crate::profile::{LABEL, ProfileParams, Shape, TAG};
use crate::request::{RequestBinding, SentRequest, accept_signature, parse_sig1};

/// Signs `response` in place (B.10): sets `Date` from `now`, `Content-Digest` when it has
/// content (`Content-Type` must be present then), `Signature-Input` and `Signature`, with
/// `created = now`, `expires = now + 60` and the given `nonce`.
pub fn sign_response(
    response: &mut Response,
    binding: &RequestBinding,
    key: &SigningKey,
    now: u64,
    nonce: &str,
    aux_rand: &[u8; 32],
) -> Result<()> {
    for name in ["date", "content-digest", "signature-input", "signature"] {
        response.headers.remove(name);
    }
    response.headers.push("Date", imf_fixdate(now));
    let shape = if response.has_content() {
        if !response.headers.contains("content-type") {
            return Err(
                InvalidInput::Message("a response with content needs Content-Type".into()).into(),
            );
        }
        response
            .headers
            .push("Content-Digest", content_digest(&response.body));
        Shape::ResponseWithBody
    } else {
        Shape::Response
    };
    let params = ProfileParams {
        created: now,
        expires: now.saturating_add(DEFAULT_SIGNATURE_LIFETIME),
        nonce: nonce.to_string(),
        key: key.public_key(),
        alg: key.algorithm(),
    };
    if !crate::nonce::is_event_id(nonce) {
        crate::nonce::decode_nonce(nonce).map_err(|_| InvalidInput::SignParameter("nonce"))?;
    }
    let input = params.signature_input(shape)?;
    let request = Request::new(binding.method.clone(), binding.target_uri.clone());
    let base = input.signature_base(&MessageRef::Response {
        response,
        request: Some(&request),
    })?;
    let signature = key.sign(base.as_bytes(), aux_rand)?;
    response
        .headers
        .push("Signature-Input", input.to_field(LABEL)?);
    response
        .headers
        .push("Signature", signature_field(LABEL, &signature)?);
    Ok(())
}

/// What the server needs to answer a request that failed with 401 (B.9).
#[derive(Clone, Debug)]
pub struct Challenge<'a> {
    /// The failed request (its shape picks the `Accept-Signature` list; its syntactically
    /// valid `sig1` nonce, if any, is echoed).
    pub request: &'a Request,
    /// The fresh server nonce offered in `Accept-Signature`.
    pub server_nonce: &'a str,
    /// Whether NIP-98 is enabled (adds `WWW-Authenticate: Nostr`).
    pub nip98: bool,
}

/// The uniform, signed 401 of B.9: `WWW-Authenticate`, `Accept-Signature` with the server
/// nonce, `Date`, `Cache-Control: no-store`, no content. The response `nonce` is the request's
/// `sig1` nonce when it carried a syntactically valid one, else the server nonce.
pub fn unauthorized_response(
    challenge: &Challenge<'_>,
    key: &SigningKey,
    now: u64,
    aux_rand: &[u8; 32],
) -> Result<Response> {
    let mut response =
        Response::new(401).with_header("WWW-Authenticate", format!("Signature realm=\"{TAG}\""));
    if challenge.nip98 {
        response.headers.push("WWW-Authenticate", "Nostr");
    }
    response.headers.push(
        "Accept-Signature",
        accept_signature(challenge.request.has_content(), challenge.server_nonce)?,
    );
    response.headers.push("Cache-Control", "no-store");
    let nonce =
        response_nonce(challenge.request).unwrap_or_else(|| challenge.server_nonce.to_string());
    sign_response(
        &mut response,
        &RequestBinding::of(challenge.request),
        key,
        now,
        &nonce,
        aux_rand,
    )?;
    Ok(response)
}

/// The nonce a response to `request` echoes when verification did not get that far: the
/// `sig1` nonce if syntactically valid, else the NIP-98 event id if the header decodes.
pub fn response_nonce(request: &Request) -> Option<String> {
    if let Some(value) = request.headers.combined("signature-input") {
        return crate::profile::sig1_nonce(&value);
    }
    crate::nip98::authorization_value(request).and_then(|v| crate::nip98::event_id(&v))
}

/// A response that passed [`verify_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedResponse {
    /// The signature's `created` (server time).
    pub created: u64,
    /// The signed `Date` value; the client updates its clock offset from it (B.6).
    pub date: String,
}

/// Client-side check of a response (B.10): signature present and in profile, `keyid` equal to
/// the pinned `server_key`, `nonce` equal to ours, `;req` components equal to what we sent,
/// `Content-Digest` matching the exact body, signature valid. The `Date` tolerance check uses
/// the client's clock offset and is left to the caller.
pub fn verify_response(
    response: &Response,
    sent: &SentRequest,
    server_key: &PublicKey,
) -> Result<VerifiedResponse> {
    let sig1 = parse_sig1(&response.headers, true)?;
    let has_content = response.has_content();
    match (sig1.shape, has_content) {
        (Shape::Response, false) | (Shape::ResponseWithBody, true) => {}
        (Shape::Response | Shape::ResponseWithBody, _) => return Err(Malformed::BodyShape.into()),
        _ => return Err(Malformed::CoveredComponents.into()),
    }
    if sig1.params.key != *server_key || sig1.params.nonce != sent.nonce {
        return Err(AuthFailure::ResponseBinding.into());
    }
    if has_content {
        let value = response
            .headers
            .combined("content-digest")
            .ok_or(Malformed::MissingContentDigest)?;
        ContentDigest::parse(&value)?.verify(&response.body)?;
    }
    let request = Request::new(sent.binding.method.clone(), sent.binding.target_uri.clone());
    let base = sig1.input.signature_base(&MessageRef::Response {
        response,
        request: Some(&request),
    })?;
    if !server_key.verify(base.as_bytes(), &sig1.signature) {
        return Err(AuthFailure::BadSignature.into());
    }
    Ok(VerifiedResponse {
        created: sig1.params.created,
        date: response.headers.combined("date").unwrap_or_default(),
    })
}

/// The client's `Date` check (B.10 step 4): `Some(server time)` when the signed `Date` parses
/// and is within [`crate::limits::RESPONSE_DATE_TOLERANCE`] of `corrected_now` (local time plus
/// the known offset); `None` means a clock problem, and the offset may then be updated from this
/// verified response.
pub fn date_within_tolerance(date: &str, corrected_now: u64) -> Option<u64> {
    let server = crate::date::parse_imf_fixdate(date)?;
    (server.abs_diff(corrected_now) <= crate::limits::RESPONSE_DATE_TOLERANCE).then_some(server)
}
