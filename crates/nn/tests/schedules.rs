//! Reduce-on-plateau and one-cycle against PyTorch's `ReduceLROnPlateau` and `OneCycleLR`,
//! with the PyTorch rates frozen in `tests/reference/schedules_reference.json` (written by
//! `tests/reference/generate_schedules.py`), so this test needs no PyTorch. Each case is
//! rebuilt from the string `--schedule` takes, so the parser is checked too. Tolerance:
//! `|got - want| <= 1e-12 * (1 + |want|)`.

use ferrograd_nn::{LrSchedule, Schedule};
use ferrograd_testkit::reference::{Value, close};

const REFERENCE: &str = include_str!("reference/schedules_reference.json");

fn cases(section: &str) -> Vec<Value> {
    let root: Value = serde_json::from_str(REFERENCE).expect("the reference file is JSON");
    let cases = root[section].as_array().expect("a list of cases").clone();
    assert!(!cases.is_empty(), "no {section} cases");
    cases
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a list of numbers")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn check(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: number of rates");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w, 1e-12), "{name}: rate {i} is {g}, PyTorch {w}");
    }
}

#[test]
fn plateau_matches_pytorch() {
    for case in cases("plateau") {
        let name = case["name"].as_str().unwrap();
        let spec = format!(
            "plateau:{}:{}:{}:{}:{}",
            case["factor"], case["patience"], case["threshold"], case["cooldown"], case["min_lr"]
        );
        let s = LrSchedule {
            base_lr: case["lr"].as_f64().unwrap(),
            schedule: spec.parse::<Schedule>().unwrap(),
            warmup: 0,
        };
        let losses = numbers(&case["losses"]);
        // The rate of epoch e sees the losses of epochs 0..e; later values are ignored.
        let got: Vec<f64> = (0..=losses.len())
            .map(|e| s.lr_at_batch(e, 0, 1, &losses))
            .collect();
        check(name, &got, &numbers(&case["lrs"]));
    }
}

#[test]
fn one_cycle_matches_pytorch() {
    for case in cases("one_cycle") {
        let name = case["name"].as_str().unwrap();
        let epochs = case["epochs"].as_u64().unwrap() as usize;
        let batches = case["steps_per_epoch"].as_u64().unwrap() as usize;
        let spec = format!(
            "one-cycle:{}:{}:{}",
            case["pct_start"], case["div_factor"], case["final_div_factor"]
        );
        let s = LrSchedule {
            base_lr: case["lr"].as_f64().unwrap(),
            schedule: spec.parse::<Schedule>().unwrap().with_epochs(epochs),
            warmup: 0,
        };
        let got: Vec<f64> = (0..epochs)
            .flat_map(|e| (0..batches).map(move |b| (e, b)))
            .map(|(e, b)| s.lr_at_batch(e, b, batches, &[]))
            .collect();
        check(name, &got, &numbers(&case["lrs"]));
    }
}

#[test]
fn schedule_strings_round_trip_and_bad_ones_are_refused() {
    for spec in [
        "plateau",
        "plateau:0.5:3",
        "one-cycle",
        "one-cycle:0.25:10:100:7",
    ] {
        let s: Schedule = spec.parse().unwrap();
        assert_eq!(s.to_string().parse::<Schedule>().unwrap(), s, "{spec}");
    }
    assert!(Schedule::plateau(0.1, 10).monitors() && !Schedule::plateau(0.1, 10).per_batch());
    assert!(Schedule::one_cycle(0, 0.3).per_batch());
    for bad in [
        "plateau:1.5",
        "plateau:0",
        "one-cycle:1.0",
        "one-cycle:0.3:0",
        "plateau:x",
    ] {
        let err = bad.parse::<Schedule>().unwrap_err().to_string();
        assert!(err.contains(bad), "{bad}: {err}");
    }
}
