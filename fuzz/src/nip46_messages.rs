//! keyline-signer's NIP-46 surface: everything a client (or a relay) can put in front of the
//! bunker before authentication or policy — request and response JSON, `connect` params,
//! permission lists, client metadata, `bunker://` and `nostrconnect://` URIs, the unsigned
//! event of `sign_event` and the permission evaluation of it, and the encrypted transport
//! content.
//!
//! Input layout: one selector byte (mod 8), then UTF-8 text (lossily decoded).

use keyline_signer::bunker::policy::{self, Ask, Decision, Grant, Usage};
use keyline_signer::ecdh::SharedX;
use keyline_signer::nip46::{
    self, BunkerUri, ClientMetadata, ConnectParams, Method, NostrConnectUri, Request, Response,
};

const NOW: u64 = 1_800_000_000;

/// Runs one NIP-46 parser on `data`; panics only on a broken invariant.
pub fn nip46_messages(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 8 {
        0 => {
            if let Ok(request) = Request::parse(&text) {
                let again = Request::parse(&request.to_json()).expect("own JSON parses");
                assert_eq!(again, request, "request JSON round trip");
            } else if let Err(e) = Request::parse(&text) {
                // An error reply, when there is one, answers the request id.
                let _ = Response::for_invalid_request(&e);
                let _ = nip46::reply_text(&e);
            }
        }
        1 => {
            if let Ok(response) = Response::parse(&text) {
                let again = Response::parse(&response.to_json()).expect("own JSON parses");
                assert_eq!(again, response, "response JSON round trip");
            }
        }
        2 => {
            if let Ok(params) = serde_json::from_str::<Vec<String>>(&text) {
                let _ = ConnectParams::parse(&params);
                let _ = nip46::peer_and_text(&params);
                if let Ok(event) = nip46::sign_event_param(&params, &[0x11; 32]) {
                    let ask = Ask {
                        method: &Method::SignEvent,
                        event: Some(&event),
                        peer: None,
                    };
                    let grants = [
                        Grant::new("sign_event", None, Decision::Allow),
                        Grant::new("sign_event", Some(event.kind), Decision::Ask),
                    ];
                    let _ = policy::evaluate(&ask, &grants, Usage::default(), NOW);
                    let _ = policy::hard_rules(&ask, NOW);
                }
            }
        }
        3 => {
            if let Ok(perms) = nip46::parse_perms(&text) {
                for p in perms {
                    let _ = p.kind();
                    let _ = p.to_string();
                }
            }
            let _ = ClientMetadata::parse(&text);
        }
        4 => {
            if let Ok(uri) = BunkerUri::parse(&text) {
                let again = BunkerUri::parse(&uri.to_uri()).expect("own URI parses");
                assert_eq!(again, uri, "bunker URI round trip");
            }
        }
        5 => {
            if let Ok(uri) = NostrConnectUri::parse(&text) {
                let again = NostrConnectUri::parse(&uri.to_uri()).expect("own URI parses");
                assert_eq!(again.client, uri.client);
                assert_eq!(again.relays, uri.relays);
                assert_eq!(again.secret, uri.secret);
            }
        }
        6 => {
            // Transport content under a fixed shared secret (NIP-44, or NIP-04 with `?iv=`).
            const G_X: [u8; 32] = [
                0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87,
                0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b,
                0x16, 0xf8, 0x17, 0x98,
            ];
            let shared = SharedX::from_secret(&[0x42; 32], &G_X).expect("valid keys");
            let _ = nip46::open_request(&shared, &text, true);
        }
        _ => {
            let _ = Grant::parse_spec(&text, Decision::Allow);
            let _ = serde_json::from_str::<Vec<Grant>>(&text).map(|grants| {
                for g in &grants {
                    let _ = g.validate();
                }
            });
        }
    }
}
