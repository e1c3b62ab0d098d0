//! Timing: thread CPU time in calibrated, interleaved rounds (performance.md §7).
//!
//! These VMs drift between fast and slow spells (the same loop varies by ±20 % from one
//! second to the next), so a figure and its bound are never measured one after the other:
//! every round runs each step once, and ratios are taken per round, then the median.

use std::time::Duration;

use cpu_time::ThreadTime;

/// Rounds per measurement.
pub(crate) fn rounds(quick: bool) -> usize {
    if quick { 7 } else { 21 }
}

/// CPU time one step gets per round.
fn slice(quick: bool) -> Duration {
    if quick {
        Duration::from_millis(8)
    } else {
        Duration::from_millis(25)
    }
}

/// One unit of work to time.
pub(crate) enum Step<'a> {
    /// Timed from outside; one call is one unit.
    Whole(Box<dyn FnMut() + 'a>),
    /// Reports the CPU time of the part that counts.
    Part(Box<dyn FnMut() -> Duration + 'a>),
}

impl Step<'_> {
    /// Seconds of CPU for `n` units.
    fn run(&mut self, n: u64) -> f64 {
        match self {
            Step::Whole(step) => {
                let start = ThreadTime::now();
                for _ in 0..n {
                    step();
                }
                start.elapsed().as_secs_f64()
            }
            Step::Part(step) => (0..n).map(|_| step()).sum::<Duration>().as_secs_f64(),
        }
    }

    /// Units that fill `target` seconds.
    fn calibrate(&mut self, target: f64) -> u64 {
        let mut n = 1u64;
        loop {
            let spent = self.run(n);
            if spent >= target / 8.0 || n >= 1 << 30 {
                return ((n as f64) * target / spent.max(1e-9)).ceil().max(1.0) as u64;
            }
            n *= 4;
        }
    }
}

/// Seconds per unit of every step, one entry per round.
pub(crate) struct Rounds(Vec<Vec<f64>>);

impl Rounds {
    /// Runs every step once per round, in turn.
    pub(crate) fn measure(quick: bool, mut steps: Vec<Step<'_>>) -> Rounds {
        let target = slice(quick).as_secs_f64();
        let counts: Vec<u64> = steps.iter_mut().map(|s| s.calibrate(target)).collect();
        let mut per_step = vec![Vec::with_capacity(rounds(quick)); steps.len()];
        for _ in 0..rounds(quick) {
            for ((step, &n), out) in steps.iter_mut().zip(&counts).zip(&mut per_step) {
                out.push(step.run(n) / n as f64);
            }
        }
        Rounds(per_step)
    }

    /// Seconds per unit of step `i`, per round.
    pub(crate) fn of(&self, i: usize) -> &[f64] {
        &self.0[i]
    }

    /// Per round, `f` of the per-unit seconds of all steps.
    pub(crate) fn per_round(&self, f: impl Fn(&dyn Fn(usize) -> f64) -> f64) -> Vec<f64> {
        (0..self.0[0].len()).map(|r| f(&|i| self.0[i][r])).collect()
    }
}

/// Median, min and max.
pub(crate) fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}
