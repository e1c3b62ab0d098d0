//! `keyline bench <area>`: our figure next to the limit it is bounded by, measured in the same
//! run, as a ratio (1.0 = as fast as the limit). Thread CPU time, median of rounds.

mod bunker;
mod http;
mod kps;
mod kps_webrtc;
mod measure;
mod relay;
mod shs;
mod signer;

use serde_json::json;

pub(crate) use relay::Hop;

use crate::cli::{BenchArea, BenchArgs};
use crate::error::Result;

/// One line of a benchmark report.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    area: &'static str,
    metric: String,
    value: f64,
    unit: &'static str,
    /// The bound and what it is; `None` for plain figures.
    limit: Option<(f64, String)>,
    /// Median over rounds of (our speed / the bound's speed) in the same round; 1.0 means
    /// as fast as the limit.
    ratio: Option<f64>,
    /// Spread of the value over the rounds (min, max).
    spread: (f64, f64),
}

impl Row {
    fn to_json(&self) -> serde_json::Value {
        let mut v = json!({
            "area": self.area,
            "metric": self.metric,
            "value": round(self.value),
            "unit": self.unit,
            "spread": [round(self.spread.0), round(self.spread.1)],
        });
        if let (Some((limit, what)), Some(ratio)) = (&self.limit, self.ratio) {
            v["limit"] = json!(round(*limit));
            v["limit_what"] = json!(what);
            v["ratio"] = json!((ratio * 1000.0).round() / 1000.0);
        }
        v
    }
}

fn round(x: f64) -> f64 {
    if x >= 100.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

pub(crate) fn run(args: BenchArgs, json: bool) -> Result<()> {
    if let Some(hop) = args.hop {
        return relay::serve_hop(hop);
    }
    let timing = match args.area {
        BenchArea::Shs => format!(
            "thread CPU time, {} interleaved rounds, medians",
            measure::rounds(args.quick)
        ),
        BenchArea::Kps => {
            "wall clock on a 2-worker runtime, interleaved rounds, medians".to_string()
        }
        BenchArea::Http => format!(
            "verification: thread CPU time, {} interleaved rounds; end to end: wall clock; medians",
            measure::rounds(args.quick)
        ),
        BenchArea::Relay => format!(
            "transport: wall clock, relay and raw hop in child processes, interleaved rounds, medians; AEAD: thread CPU time, {} rounds",
            measure::rounds(args.quick)
        ),
        BenchArea::Bunker => "wall clock: NIP-46 clients → embedded relay → bunker → 3 node processes, interleaved with raw threshold signing over the same links; medians".to_string(),
        BenchArea::Signer => format!(
            "raw: thread CPU time, {} interleaved rounds; node links: wall clock, 3 node processes, interleaved with raw FROST; medians",
            measure::rounds(args.quick)
        ),
    };
    let header = format!(
        "keyline bench {} — build: {}, secretbox: {}, timing: {timing}",
        format!("{:?}", args.area).to_lowercase(),
        if cfg!(debug_assertions) {
            "DEBUG (numbers meaningless; use --release)"
        } else {
            "release"
        },
        keyline_shs::bench_support::BACKEND,
    );
    if !json {
        println!("{header}\n");
        println!(
            "{:<52} {:>10} {:<8} {:>10} {:>7}  limit is",
            "metric", "value", "unit", "limit", "ratio"
        );
    }
    let print = |row: &Row| {
        if json {
            println!("{}", row.to_json());
        } else {
            let (limit, what) = match &row.limit {
                Some((l, w)) => (format!("{:.3}", l), w.as_str()),
                None => ("—".into(), ""),
            };
            let ratio = row
                .ratio
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "—".into());
            println!(
                "{:<52} {:>10.3} {:<8} {:>10} {:>7}  {}",
                row.metric, row.value, row.unit, limit, ratio, what
            );
        }
    };
    match args.area {
        BenchArea::Shs => shs::run(args.quick, &print),
        BenchArea::Kps if args.webrtc => kps_webrtc::run(args.quick, &print),
        BenchArea::Kps => kps::run(args.quick, &print),
        BenchArea::Http => http::run(args.quick, &print),
        BenchArea::Signer => signer::run(args.quick, &print),
        BenchArea::Relay => relay::run(args.quick, &print),
        BenchArea::Bunker => bunker::run(args.quick, &print),
    }
}
