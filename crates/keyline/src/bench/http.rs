//! `keyline bench http`: request verification against the raw signature verification of the
//! same crates (thread CPU, interleaved rounds), and signed requests per second through axum
//! against the same demo API with the layer off (wall clock).

use std::hint::black_box;
use std::time::{Duration, Instant};

use keyline_http::base::parse_signature_input;
use keyline_http::component::MessageRef;
use keyline_http::server::{ServerConfig, demo_app, demo_router};
use keyline_http::{
    PublicKey, PublicOrigin, ReplayCache, ReplayKey, Request, SignOptions, SigningKey,
    VerifyConfig, sign_request, verify_request,
};
use sha2::Digest;

use super::Row;
use super::measure::{Rounds, Step, summary};
use crate::error::{CliError, Result};

const AREA: &str = "http";
const ORIGIN: &str = "https://api.example";
const CREATED: u64 = 1_795_000_000;

/// Accepts every nonce: the benchmark verifies the same request again and again.
struct NoReplay;

impl ReplayCache for NoReplay {
    fn check_and_insert(&mut self, _: ReplayKey, _: u64, _: u64) -> keyline_http::Result<()> {
        Ok(())
    }
}

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    verification(quick, print)?;
    end_to_end(quick, print)
}

/// A signed `POST /v1/items?limit=10` with a small JSON body, and its signature base.
fn signed(key: &SigningKey) -> Result<(Request, String, [u8; 64])> {
    let mut request = Request::new("POST", format!("{ORIGIN}/v1/items?limit=10"));
    request.headers.push("Content-Type", "application/json");
    request.body = br#"{"name":"keyline","count":3}"#.to_vec();
    let options = SignOptions::new(CREATED, "AAECAwQFBgcICQoLDA0ODw", [7; 32]);
    sign_request(&mut request, key, &options)?;
    let input_field = request
        .headers
        .combined("signature-input")
        .unwrap_or_default();
    let (_, input) = parse_signature_input(&input_field)?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Failed("bench: no signature input".into()))?;
    let base = input.signature_base(&MessageRef::Request(&request))?;
    let signature = key.sign(base.as_bytes(), &[7; 32])?;
    Ok((request, base, signature))
}

fn verification(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let config = VerifyConfig::new(PublicOrigin::new(ORIGIN)?);
    let ed = SigningKey::ed25519_from_seed(&[1; 32]);
    let schnorr = SigningKey::bip340_from_secret(&[2; 32])?;
    let (ed_request, ed_base, ed_sig) = signed(&ed)?;
    let (bip_request, bip_base, bip_sig) = signed(&schnorr)?;
    let (PublicKey::Ed25519(ed_pk), PublicKey::Bip340(bip_pk)) =
        (ed.public_key(), schnorr.public_key())
    else {
        return Err(CliError::Failed("bench: unexpected key types".into()));
    };
    let verify = |request: &Request| {
        black_box(verify_request(
            black_box(request),
            &config,
            CREATED + 1,
            &mut NoReplay,
        ))
        .expect("valid");
    };
    let rounds = Rounds::measure(
        quick,
        vec![
            Step::Whole(Box::new(|| verify(&ed_request))),
            Step::Whole(Box::new(|| {
                let key = ed25519_dalek::VerifyingKey::from_bytes(black_box(&ed_pk)).expect("key");
                key.verify_strict(
                    ed_base.as_bytes(),
                    &ed25519_dalek::Signature::from_bytes(&ed_sig),
                )
                .expect("valid");
            })),
            Step::Whole(Box::new(|| verify(&bip_request))),
            Step::Whole(Box::new(|| {
                let key = k256::schnorr::VerifyingKey::from_slice(black_box(&bip_pk)).expect("key");
                let digest = sha2::Sha256::digest(bip_base.as_bytes());
                let signature = k256::schnorr::Signature::from_slice(&bip_sig).expect("signature");
                key.verify_raw(&digest, &signature).expect("valid");
            })),
        ],
    );
    for (metric, ours, raw, what) in [
        (
            "request verifications per second, Ed25519",
            0,
            1,
            "raw ed25519-dalek decode + verify_strict of the base",
        ),
        (
            "request verifications per second, BIP340",
            2,
            3,
            "raw k256 decode + BIP340 verify of SHA-256(base)",
        ),
    ] {
        let (median, fastest, slowest) = summary(rounds.of(ours));
        let ratios = rounds.per_round(|t| t(raw) / t(ours));
        print(&Row {
            area: AREA,
            metric: metric.into(),
            value: 1.0 / median,
            unit: "1/s",
            limit: Some((1.0 / summary(rounds.of(raw)).0, what.into())),
            ratio: Some(summary(&ratios).0),
            spread: (1.0 / slowest, 1.0 / fastest),
        });
    }
    Ok(())
}

/// Sequential requests through a real axum server on loopback: the demo API behind the
/// layer, signed by `SignedClient`, next to the same API without the layer and a plain reqwest.
fn end_to_end(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("starting the benchmark runtime"))?;
    runtime.block_on(async {
        let signed_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(CliError::io("bind"))?;
        let plain_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(CliError::io("bind"))?;
        let signed_origin = format!(
            "http://{}",
            signed_listener.local_addr().map_err(CliError::io("addr"))?
        );
        let plain_origin = format!(
            "http://{}",
            plain_listener.local_addr().map_err(CliError::io("addr"))?
        );
        let server_key = SigningKey::ed25519_from_seed(&[3; 32]);
        let config = ServerConfig::new(PublicOrigin::new(&signed_origin)?, server_key.clone())?;
        tokio::spawn(async move { axum::serve(signed_listener, demo_app(config)).await });
        tokio::spawn(async move { axum::serve(plain_listener, demo_router()).await });

        let plain = reqwest_client()?;
        let per_round = if quick { 100 } else { 400 };
        let body = br#"{"hello":"keyline"}"#.to_vec();
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        for round in 0..if quick { 5u8 } else { 11 } {
            // A fresh client key per round: the server's replay cache holds at most 4096
            // live nonces per key (a limit, working as designed).
            let client = keyline_http::SignedClient::new(
                SigningKey::ed25519_from_seed(&[round.wrapping_add(10); 32]),
                keyline_http::ServerTrust::Key(server_key.public_key()),
            )?;
            let start = Instant::now();
            for _ in 0..per_round {
                let response = client
                    .send(
                        "POST",
                        &format!("{signed_origin}/echo"),
                        &[("content-type", "application/json")],
                        body.clone(),
                    )
                    .await?;
                if response.status != 200 {
                    return Err(CliError::Failed(format!(
                        "bench: signed echo answered {}",
                        response.status
                    )));
                }
            }
            ours.push(start.elapsed().as_secs_f64() / per_round as f64);
            let start = Instant::now();
            for _ in 0..per_round {
                let response = plain
                    .post(format!("{plain_origin}/echo"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| CliError::Failed(format!("bench: plain request: {e}")))?;
                black_box(
                    response
                        .bytes()
                        .await
                        .map_err(|e| CliError::Failed(format!("bench: plain body: {e}")))?,
                );
            }
            bare.push(start.elapsed().as_secs_f64() / per_round as f64);
        }
        let (median, fastest, slowest) = summary(&ours);
        let ratios: Vec<f64> = bare.iter().zip(&ours).map(|(b, o)| b / o).collect();
        print(&Row {
            area: AREA,
            metric: "signed requests per second through axum (sequential, small body)".into(),
            value: 1.0 / median,
            unit: "1/s",
            limit: Some((
                1.0 / summary(&bare).0,
                "same demo API, layer off, plain reqwest".into(),
            )),
            ratio: Some(summary(&ratios).0),
            spread: (1.0 / slowest, 1.0 / fastest),
        });
        Ok(())
    })
}

fn reqwest_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| CliError::Failed(format!("bench: reqwest: {e}")))
}
