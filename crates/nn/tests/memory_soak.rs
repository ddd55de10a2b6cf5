//! Memory soak: 10,000 training steps of an MNIST-shaped MLP with Adam, eagerly and as a
//! static graph, must end with the resident memory of step 100 (within 1%): nothing grows per
//! step (tapes, traces, optimizer state, buffer pools). Ignored by default (a minute or two);
//! run it with
//! `cargo test --release -p ferrograd-nn --test memory_soak -- --ignored --nocapture`
//! (Linux: it reads the resident set size from /proc/self/statm).

use std::cell::RefCell;

use ferrograd_core::Rng;
use ferrograd_nn::{Adam, AdamConfig, TrainStep, named_params};
use ferrograd_testkit::fixture::MlpTask;

const STEPS: usize = 10_000;
const BASELINE_STEP: usize = 100;

/// Resident memory in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm's second field");
    pages * 4096
}

/// Trains `STEPS` steps; returns the resident memory after step `BASELINE_STEP` and at the end.
fn soak(compile: bool) -> (u64, u64) {
    let task = MlpTask::mnist();
    let mut rng = Rng::new(0);
    let model = task.model(&mut rng).unwrap();
    let optimizer = RefCell::new(
        Adam::new(
            named_params(&model),
            AdamConfig {
                lr: 1e-3,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    // A fixed set of batches, cycled: the data itself must not grow either.
    let batches = task.batches(16, 64, &mut rng).unwrap();
    let mut step = TrainStep::new(&model, &optimizer, 0.0, None, compile);
    let mut baseline = 0;
    for i in 1..=STEPS {
        let [x, y] = &batches[i % batches.len()];
        let out = step.run(x, y).unwrap();
        assert!(out[0].item().unwrap().is_finite());
        if i == BASELINE_STEP {
            baseline = rss_bytes();
        }
    }
    (baseline, rss_bytes())
}

#[test]
#[ignore = "a soak of 20,000 training steps; run with --ignored"]
fn resident_memory_stays_flat_over_10000_steps() {
    for (mode, compile) in [("eager", false), ("static", true)] {
        let (at_100, at_end) = soak(compile);
        let growth = (at_end as f64 - at_100 as f64) / at_100 as f64;
        println!(
            "{mode}: resident memory {:.1} MiB at step {BASELINE_STEP}, {:.1} MiB at step {STEPS} ({:+.2}%)",
            at_100 as f64 / (1 << 20) as f64,
            at_end as f64 / (1 << 20) as f64,
            growth * 100.0
        );
        assert!(
            growth.abs() <= 0.01,
            "{mode}: resident memory changed by {:.2}% between step {BASELINE_STEP} and {STEPS}",
            growth * 100.0
        );
    }
}
