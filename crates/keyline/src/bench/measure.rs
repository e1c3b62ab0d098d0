//! Timing: thread CPU time, calibrated rounds, median and spread (performance.md §7).

use std::time::Duration;

use cpu_time::ThreadTime;

/// Rounds per measurement.
pub(crate) fn rounds(quick: bool) -> usize {
    if quick { 5 } else { 15 }
}

fn round_length(quick: bool) -> Duration {
    if quick {
        Duration::from_millis(12)
    } else {
        Duration::from_millis(40)
    }
}

/// A measurement: seconds of CPU per unit of work (median, min, max over rounds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Sample {
    /// As a rate per second of `scale` units per unit (e.g. bytes per packet): median, min, max.
    pub(crate) fn rate(&self, scale: f64) -> (f64, f64, f64) {
        (scale / self.median, scale / self.max, scale / self.min)
    }

    /// As microseconds per unit.
    pub(crate) fn micros(&self) -> (f64, f64, f64) {
        (self.median * 1e6, self.min * 1e6, self.max * 1e6)
    }
}

/// Runs `step` (one unit of work per call) in calibrated rounds.
pub(crate) fn measure(quick: bool, mut step: impl FnMut()) -> Sample {
    // Warm up and calibrate: how many steps fill a round.
    let target = round_length(quick).as_secs_f64();
    let mut iterations = 1u64;
    loop {
        let start = ThreadTime::now();
        for _ in 0..iterations {
            step();
        }
        let spent = start.elapsed().as_secs_f64();
        if spent >= target / 4.0 || iterations > 1 << 30 {
            iterations = ((iterations as f64) * target / spent.max(1e-9))
                .ceil()
                .max(1.0) as u64;
            break;
        }
        iterations *= 4;
    }
    let per_unit: Vec<f64> = (0..rounds(quick))
        .map(|_| {
            let start = ThreadTime::now();
            for _ in 0..iterations {
                step();
            }
            start.elapsed().as_secs_f64() / iterations as f64
        })
        .collect();
    summarize(per_unit)
}

/// Like [`measure`], but `step` reports the CPU time of only the part that counts.
pub(crate) fn measure_part(quick: bool, mut step: impl FnMut() -> Duration) -> Sample {
    let target = round_length(quick).as_secs_f64();
    let one = (0..3)
        .map(|_| step())
        .min()
        .unwrap_or_default()
        .as_secs_f64()
        .max(1e-7);
    let iterations = ((target / one).ceil() as u64).max(1);
    let per_unit: Vec<f64> = (0..rounds(quick))
        .map(|_| {
            let spent: Duration = (0..iterations).map(|_| step()).sum();
            spent.as_secs_f64() / iterations as f64
        })
        .collect();
    summarize(per_unit)
}

fn summarize(mut per_unit: Vec<f64>) -> Sample {
    per_unit.sort_by(f64::total_cmp);
    Sample {
        median: per_unit[per_unit.len() / 2],
        min: per_unit[0],
        max: per_unit[per_unit.len() - 1],
    }
}
