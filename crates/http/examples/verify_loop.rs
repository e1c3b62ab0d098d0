//! Profiling loop for request verification (callgrind / perf): signs one request like
//! `keyline bench http` does and verifies it `N` times.
//!
//! `cargo run --release -p keyline-http --example verify_loop -- [verify|raw] [N]`
//! - `verify`: `verify_request` with a replay cache that accepts everything;
//! - `raw`: only the Ed25519 key decode + `verify_strict` of the same signature base;
//! - `time`: both, interleaved in `N` rounds of 200 each, printing the fastest round of each
//!   (wall clock; the fastest round is the least disturbed by other work on the machine).

use std::hint::black_box;

use keyline_http::base::parse_signature_input;
use keyline_http::component::MessageRef;
use keyline_http::{
    PublicKey, PublicOrigin, ReplayCache, ReplayKey, Request, SignOptions, SigningKey,
    VerifyConfig, sign_request, verify_request,
};

const ORIGIN: &str = "https://api.example";
const CREATED: u64 = 1_795_000_000;

struct NoReplay;

impl ReplayCache for NoReplay {
    fn check_and_insert(&mut self, _: ReplayKey, _: u64, _: u64) -> keyline_http::Result<()> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "verify".into());
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse())?;

    let key = SigningKey::ed25519_from_seed(&[1; 32]);
    let mut request = Request::new("POST", format!("{ORIGIN}/v1/items?limit=10"));
    request.headers.push("Content-Type", "application/json");
    request.body = br#"{"name":"keyline","count":3}"#.to_vec();
    let options = SignOptions::new(CREATED, "AAECAwQFBgcICQoLDA0ODw", [7; 32]);
    sign_request(&mut request, &key, &options)?;
    let input_field = request
        .headers
        .combined("signature-input")
        .unwrap_or_default();
    let (_, input) = parse_signature_input(&input_field)?
        .into_iter()
        .next()
        .ok_or("no signature input")?;
    let base = input.signature_base(&MessageRef::Request(&request))?;
    let signature = key.sign(base.as_bytes(), &[7; 32])?;
    let PublicKey::Ed25519(pk) = key.public_key() else {
        return Err("not ed25519".into());
    };
    let config = VerifyConfig::new(PublicOrigin::new(ORIGIN)?);

    let verify_once = || {
        black_box(verify_request(
            black_box(&request),
            &config,
            CREATED + 1,
            &mut NoReplay,
        ))
        .map(|_| ())
    };
    let raw_once = || -> Result<(), ed25519_dalek::SignatureError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(black_box(&pk))?;
        key.verify_strict(
            base.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
    };
    match mode.as_str() {
        "time" => {
            const PER_ROUND: u32 = 200;
            let (mut ours, mut raw) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..n {
                let start = std::time::Instant::now();
                for _ in 0..PER_ROUND {
                    verify_once()?;
                }
                ours = ours.min(start.elapsed().as_secs_f64() / f64::from(PER_ROUND));
                let start = std::time::Instant::now();
                for _ in 0..PER_ROUND {
                    raw_once()?;
                }
                raw = raw.min(start.elapsed().as_secs_f64() / f64::from(PER_ROUND));
            }
            println!(
                "verify_request {:.2} µs, raw {:.2} µs, ratio {:.3}",
                ours * 1e6,
                raw * 1e6,
                raw / ours
            );
        }
        "verify" => {
            for _ in 0..n {
                verify_once()?;
            }
        }
        "raw" => {
            for _ in 0..n {
                raw_once()?;
            }
        }
        "none" => {}
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}
