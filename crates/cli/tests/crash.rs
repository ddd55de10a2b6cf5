//! Crash consistency of a run's checkpoint, by fault injection: the binary (built with
//! `ferrograd-io`'s `fault-injection` feature for tests) is stopped right after its N-th
//! filesystem step, for every N until a run completes. After each stop the folder must hold a
//! complete checkpoint (once the first save has completed) that `eval` loads, and `--resume`
//! must end with the same weights, bit for bit, as a run that never stopped, leaving no
//! temporary file or staging folder behind.

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

fn train(out: &Path, fault_after: Option<usize>) -> Output {
    ferrograd(
        &[
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
        ],
        fault_after,
    )
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
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let o = train(&whole, None);
    assert!(o.status.success(), "{}", describe(&o));
    let expected = std::fs::read(whole.join("checkpoint/model.safetensors")).unwrap();

    let mut saved_once = false;
    let mut stops = 0;
    for n in 1.. {
        let out = dir.path().join(format!("stop-{n}"));
        let o = train(&out, Some(n));
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
            ferrograd(&["train", "--resume", model, "--threads", "1"], None)
        } else {
            train(&out, None)
        };
        assert!(again.status.success(), "step {n}: {}", describe(&again));
        assert_eq!(names(&out), ["checkpoint"], "step {n}: leftovers");
        let got = std::fs::read(out.join("checkpoint/model.safetensors")).unwrap();
        assert!(
            got == expected,
            "step {n}: other weights than the run that never stopped"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    // Two epoch saves and the final one, each of a dozen or more steps.
    println!("stopped the run at each of {stops} filesystem steps");
    assert!(stops > 36, "only {stops} filesystem steps");
    assert!(saved_once);
}
