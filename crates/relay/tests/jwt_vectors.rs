//! `jwt.cases` (all 29): through the sans-IO validator (with the reason) and through the
//! real relay's pre-upgrade check (HTTP 401 with a JSON body vs. WebSocket upgrade).

mod common;

use std::sync::Arc;

use common::{Connect, Server, connect_bearer, connect_query};
use keyline_core::ManualClock;
use keyline_relay::{KeySet, RelayConfig, TokenPolicy, validate_token};
use keyline_testkit::{array, load_json, str_field};
use serde_json::Value;

fn jwt() -> Value {
    load_json("sbrp/sbrp-v1-vectors.json")["jwt"].clone()
}

fn config(j: &Value) -> RelayConfig {
    let rc = &j["relay_config"];
    let mut config = RelayConfig::default();
    config.issuer = str_field(rc, "issuer").to_owned();
    config.audience = str_field(rc, "audience").to_owned();
    config.region = Some(str_field(rc, "region").to_owned());
    assert_eq!(rc["clock_skew_seconds"], 30);
    assert_eq!(rc["client_max_ttl_seconds"], 300);
    assert_eq!(rc["client_warn_ttl_seconds"], 120);
    config.trusted_jwks = Some(j["jwks"].clone());
    config.clock = Arc::new(ManualClock::new(j["now"].as_u64().unwrap()));
    config
}

#[test]
fn jwt_cases_sans_io() {
    let j = jwt();
    let rc = &j["relay_config"];
    let mut keys = KeySet::new();
    assert_eq!(keys.extend_from_jwks(&j["jwks"]), 1);
    let policy = TokenPolicy::new(str_field(rc, "issuer")).with_region(str_field(rc, "region"));
    let now = j["now"].as_u64().unwrap();
    let cases = array(&j, "cases");
    assert_eq!(cases.len(), 29);
    let (mut accepted, mut rejected, mut warned) = (0, 0, 0);
    for case in cases {
        let name = str_field(case, "name");
        let result = validate_token(str_field(case, "token"), &keys, &policy, now);
        match str_field(case, "expect") {
            "accept" => {
                let valid = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                let warn = case.get("warn").and_then(Value::as_bool).unwrap_or(false);
                assert_eq!(valid.warn_ttl, warn, "{name}");
                warned += usize::from(warn);
                accepted += 1;
            }
            "reject" => {
                let err = result.expect_err(name);
                // Each rejection is caused by the named claim or header alone.
                let expected = match name {
                    "typ_jwt" | "typ_missing" => "bad_typ",
                    "kid_missing" => "missing_kid",
                    "kid_unknown" => "unknown_kid",
                    "alg_hs256" => "bad_alg",
                    "bad_signature" => "bad_signature",
                    "aud_wrong" => "bad_aud",
                    "iss_wrong" => "bad_iss",
                    "iat_missing" | "exp_not_number" => "bad_times",
                    "expired_beyond_skew" => "expired",
                    "ver_2" => "bad_ver",
                    "role_admin" => "bad_role",
                    "did_empty" => "bad_did",
                    "client_sub_missing" => "bad_sub",
                    "client_sid_missing" | "client_sid_zero" | "client_sid_7_bytes" => "bad_sid",
                    "region_mismatch" => "bad_region",
                    "client_ttl_301" => "ttl_too_long",
                    "scp_not_array" => "bad_scp",
                    "lim_zero" => "bad_lim",
                    "two_segments" => "not_compact",
                    other => panic!("unlisted reject case {other}"),
                };
                assert_eq!(err.reason(), expected, "{name}");
                rejected += 1;
            }
            other => panic!("{name}: expect {other}"),
        }
    }
    assert_eq!((accepted, rejected, warned), (6, 23, 1));
}

#[tokio::test]
async fn jwt_cases_pre_upgrade() {
    let j = jwt();
    let cases = array(&j, "cases");
    assert_eq!(cases.len(), 29);
    let mut upgrades = 0;
    let mut refusals = 0;
    for (i, case) in cases.iter().enumerate() {
        let name = str_field(case, "name");
        let token = str_field(case, "token");
        // A fresh relay per case: accepted client cases share one sid (409 otherwise).
        let server = Server::start(config(&j)).await;
        // Alternate the two token transports.
        let outcome = if i % 2 == 0 {
            connect_query(&server.ws_url(), token).await
        } else {
            connect_bearer(&server.ws_url(), token).await
        };
        match (str_field(case, "expect"), outcome) {
            ("accept", Connect::Upgraded(_ws)) => upgrades += 1,
            ("reject", Connect::Refused(status, body)) => {
                assert_eq!(status, 401, "{name}");
                assert_eq!(body["error"], "unauthorized", "{name}");
                assert!(body["message"].is_string(), "{name}");
                // The body never echoes the token.
                assert!(!body.to_string().contains(token), "{name}");
                refusals += 1;
            }
            ("accept", Connect::Refused(status, body)) => {
                panic!("{name}: expected upgrade, got {status} {body}")
            }
            (_, Connect::Upgraded(_)) => panic!("{name}: expected 401, got an upgrade"),
            (other, _) => panic!("{name}: expect {other}"),
        }
        server.stop().await;
    }
    assert_eq!((upgrades, refusals), (6, 23));
}
