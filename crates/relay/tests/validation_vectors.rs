//! `relay_validation.cases` (all 28) through the real relay over WebSockets: the Control
//! frame (code and sid) the relay sends, whether it closes the connection, whether the pairing
//! ends — and that the refused frame is never forwarded.

mod common;

use common::{
    Server, Ws, connect_bearer, connect_query, control_of, expect_alive, expect_closed,
    expect_control, recv_frame, send, unix_now,
};
use keyline_relay::RelayConfig;
use keyline_sbrp::proto::control::ControlCode;
use keyline_testkit::{array, hex, load_json, str_field};

const DAEMON: &str = "d_validation";

/// A relay with a daemon connected and one paired client with `sid`.
async fn setup(client_sid: u64) -> (Server, Ws, Ws) {
    let server = Server::start(RelayConfig::default()).await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token(DAEMON, false, now))
        .await
        .ws();
    let mut client = connect_query(
        &server.ws_url(),
        &server.client_token(DAEMON, client_sid, now),
    )
    .await
    .ws();
    // Both connections are registered once each answers a Ping.
    expect_alive(&mut daemon).await;
    expect_alive(&mut client).await;
    (server, daemon, client)
}

#[tokio::test]
async fn relay_validation_cases_over_websockets() {
    let v = load_json("sbrp/sbrp-v1-vectors.json");
    let rv = &v["relay_validation"];
    let token_sid: u64 = str_field(rv, "client_token_sid").parse().unwrap();
    let paired: Vec<u64> = array(rv, "daemon_paired_sids")
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(paired, vec![7]);
    let cases = array(rv, "cases");
    assert_eq!(cases.len(), 28);
    let (mut client_cases, mut daemon_cases) = (0, 0);
    for case in cases {
        let name = str_field(case, "name");
        let frame = hex(&case["frame"]);
        let code: u16 = case["expect_code"].as_u64().unwrap().try_into().unwrap();
        let expect_sid: u64 = str_field(case, "expect_sid").parse().unwrap();
        let closes = case["closes_connection"].as_bool().unwrap();
        match str_field(case, "sender") {
            "client" => {
                client_cases += 1;
                assert_eq!(
                    str_field(case, "token_sid").parse::<u64>().unwrap(),
                    token_sid
                );
                let (server, mut daemon, mut client) = setup(token_sid).await;
                send(&mut client, frame.clone()).await;
                let control = recv_frame(&mut client).await;
                assert_eq!(control_of(&control), (code, expect_sid), "{name}");
                assert!(closes, "{name}: every client failure closes");
                expect_closed(&mut client).await;
                // The daemon never saw the frame: the next thing it gets is session_ended.
                expect_control(&mut daemon, ControlCode::SessionEnded, token_sid).await;
                expect_alive(&mut daemon).await;
                server.stop().await;
            }
            "daemon" => {
                daemon_cases += 1;
                let (server, mut daemon, mut client) = setup(paired[0]).await;
                send(&mut daemon, frame.clone()).await;
                let control = recv_frame(&mut daemon).await;
                assert_eq!(control_of(&control), (code, expect_sid), "{name}");
                if closes {
                    expect_closed(&mut daemon).await;
                    // The daemon is gone: its pairing pauses (P23), nothing was forwarded.
                    expect_control(&mut client, ControlCode::SessionPaused, paired[0]).await;
                } else {
                    expect_alive(&mut daemon).await;
                    let ends = case["ends_pairing"].as_bool().unwrap();
                    if ends {
                        expect_control(&mut client, ControlCode::SessionExpired, paired[0]).await;
                        expect_closed(&mut client).await;
                    } else {
                        // The pairing is untouched and nothing was forwarded.
                        expect_alive(&mut client).await;
                    }
                }
                server.stop().await;
            }
            other => panic!("{name}: sender {other}"),
        }
    }
    assert_eq!((client_cases, daemon_cases), (17, 11));
}
