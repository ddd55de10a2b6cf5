//! Crash consistency of a run's checkpoint, by fault injection: the binary (built with
//! `ferrograd-io`'s `fault-injection` feature for tests) is stopped right after its N-th
//! filesystem step, for every N until a run completes. After each stop the folder must hold a
//! complete checkpoint (once the first save has completed) that `eval` loads, and `--resume`
//! must end with the same weights, bit for bit, as a run that never stopped, leaving no
//! temporary file or staging folder behind. With early stopping, the best epoch's set is
//! written after each improving epoch's checkpoint, and must survive every stop too.

use std::path::Path;
use std::process::{Command, Output};

const EPOCHS: &str = "2";

fn ferrograd(args: &[&str], fault_after: Option<usize>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrograd"));
    cmd.args(args);
    if let Some(n) = fault_after {
        cmd.env("FERROGRAD_FAULT_AFTER_FS_STEPS", n.to_string());
    }
    cmd.output().expect("the binary runs")
}

fn train(out: &Path, extra: &[&str], fault_after: Option<usize>) -> Output {
    let mut args = vec![
        "train",
        "--epochs",
        EPOCHS,
        "--hidden",
        "8",
        "--threads",
        "1",
        "--val-fraction",
        "0.1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ferrograd(&args, fault_after)
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_stop_during_a_save_leaves_a_checkpoint_that_resumes_to_the_same_weights() {
    // Two epoch saves and the final one, each of a dozen or more steps.
    stop_at_every_step(&[], &["checkpoint"], 36);
}

#[test]
fn every_stop_with_early_stopping_leaves_both_sets_that_resume_to_the_same_weights() {
    // A patience that never stops the run: every improving epoch also writes the best set,
    // a dozen or more steps more each (both epochs improve on this run).
    stop_at_every_step(&["--early-stopping", "5"], &["best", "checkpoint"], 60);
}

/// Stops a run with the flags `extra` after each of its filesystem steps in turn, checks the
/// folder, continues the run, and compares the sets `sets` (the folder's only entries at the
/// end) with those of a run that never stopped; the run must take more than `min_steps`.
fn stop_at_every_step(extra: &[&str], sets: &[&str], min_steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let o = train(&whole, extra, None);
    assert!(o.status.success(), "{}", describe(&o));
    // The sets and the link to the checkpoint's summary, nothing else.
    let entries: Vec<&str> = sets.iter().copied().chain(["summary.json"]).collect();
    assert_eq!(names(&whole), entries);
    let summary = std::fs::read(whole.join("summary.json")).unwrap();
    assert_eq!(
        summary,
        std::fs::read(whole.join("checkpoint/summary.json")).unwrap()
    );
    let model_of = |out: &Path| -> Vec<Vec<u8>> {
        sets.iter()
            .map(|set| std::fs::read(out.join(set).join("model.safetensors")).unwrap())
            .collect()
    };
    let expected = model_of(&whole);

    let mut saved_once = false;
    let mut stops = 0;
    for n in 1.. {
        let out = dir.path().join(format!("stop-{n}"));
        let o = train(&out, extra, Some(n));
        if o.status.success() {
            // Past the last filesystem step of the run.
            break;
        }
        assert_eq!(o.status.code(), Some(86), "step {n}: {}", describe(&o));
        stops += 1;
        let model = out.to_str().unwrap();
        let eval = ferrograd(&["eval", "--model", model], None);
        if eval.status.success() {
            saved_once = true;
        } else {
            // Only before the first save completed may the folder hold no checkpoint.
            assert!(
                !saved_once,
                "step {n}: the checkpoint was lost: {}",
                describe(&eval)
            );
            let stderr = String::from_utf8_lossy(&eval.stderr);
            assert!(stderr.contains("not found"), "step {n}: {stderr}");
        }
        // Continue the run (or start it again when nothing was saved): the next start puts
        // back an interrupted switch and removes the leftovers.
        let again = if eval.status.success() {
            let mut args = vec!["train", "--resume", model, "--threads", "1"];
            args.extend_from_slice(extra);
            ferrograd(&args, None)
        } else {
            train(&out, extra, None)
        };
        assert!(again.status.success(), "step {n}: {}", describe(&again));
        assert_eq!(names(&out), entries, "step {n}: leftovers");
        assert!(
            model_of(&out) == expected,
            "step {n}: other weights than the run that never stopped"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    println!("stopped the run at each of {stops} filesystem steps");
    assert!(stops > min_steps, "only {stops} filesystem steps");
    assert!(saved_once);
}
