//! End-to-end tests of the `ferrograd` and `ferrograd-bench` binaries: training writes every
//! promised file, resume and eval and predict work on what training wrote, the benchmark prints
//! its rows, and bad input ends in a clear error.

use std::path::Path;
use std::process::{Command, Output};

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ferrograd(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ferrograd"), args)
}

fn ferrograd_bench(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ferrograd-bench"), args)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// One JSON object per line, as `ferrograd-bench --json` prints them.
fn json_rows(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn train_small(out: &Path, epochs: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--epochs",
        epochs,
        "--hidden",
        "32",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ferrograd(&args)
}

#[test]
fn train_writes_model_metrics_charts_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = train_small(&out, "3", &["--lr", "0.01"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("epoch   3/3"), "{stdout}");
    assert!(stdout.contains("test: accuracy"), "{stdout}");
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "curves.png",
        "confusion.png",
        "sample_logits.safetensors",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "test_accuracy",
        "test_loss",
        "epochs",
        "train_seconds",
        "samples_per_s",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    assert_eq!(summary["epochs"], 3);
    // A 32-unit MLP learns the digits well beyond chance in three epochs.
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.8,
        "{summary}"
    );
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
    let png = std::fs::read(out.join("curves.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

#[test]
fn resume_continues_with_the_optimizer_state_and_eval_and_predict_use_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = train_small(&out, "2", &["--optimizer", "sgd", "--momentum", "0.9"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = train_small(&out, "3", &["--resume", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("epoch   3/3") && !stdout.contains("epoch   1/3"),
        "{stdout}"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["training"]["epochs_done"], 3);
    assert_eq!(cfg["training"]["optimizer"], "sgd");
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    let o = ferrograd(&["eval", "--model", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("digits test: accuracy"), "{stdout}");

    // An 8x8 grey PGM, bright strokes on dark, and a larger PNG of dark ink on white.
    let pgm = dir.path().join("digit.pgm");
    let mut bytes = b"P5 8 8 16\n".to_vec();
    bytes.extend((0..64).map(|i| {
        if (i % 8) == 3 || (i % 8) == 4 {
            16u8
        } else {
            0
        }
    }));
    std::fs::write(&pgm, bytes).unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        "--top",
        "2",
        pgm.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(pgm.to_str().unwrap()) && stdout.contains('%'),
        "{stdout}"
    );
    assert_eq!(stdout.matches('%').count(), 2, "{stdout}");
}

#[test]
fn bad_flags_name_the_flag() {
    for (args, needle) in [
        (vec!["train", "--hidden", "64,0"], "--hidden"),
        (vec!["train", "--dataset", "imagenet"], "--dataset"),
        (vec!["train", "--optimizer", "lbfgs"], "--optimizer"),
        (vec!["train", "--lr=-1"], "--lr"),
        (vec!["train", "--activation", "swoosh"], "--activation"),
        (vec!["train", "--schedule", "step"], "--schedule"),
        (vec!["train", "--batch-size", "0"], "--batch-size"),
        (vec!["train", "--dropout", "1.5"], "--dropout"),
    ] {
        let o = ferrograd(&args);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn missing_or_corrupt_files_are_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = ferrograd(&["eval", "--model", d]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("config.json") && stderr.contains("not found"),
        "{stderr}"
    );

    let out = dir.path().join("run");
    assert!(train_small(&out, "1", &[]).status.success());
    let good = std::fs::read(out.join("model.safetensors")).unwrap();
    std::fs::write(out.join("model.safetensors"), b"not a checkpoint").unwrap();
    let o = ferrograd(&["eval", "--model", out.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("model.safetensors"), "{stderr}");
    std::fs::write(out.join("model.safetensors"), good).unwrap();

    let o = ferrograd(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        d,
        "--epochs",
        "1",
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("train-images-idx3-ubyte"), "{stderr}");

    let img = dir.path().join("x.png");
    std::fs::write(&img, b"\x89PNG broken").unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("x.png"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn static_mode_trains_the_same_model_and_graph_writes_dot() {
    let dir = tempfile::tempdir().unwrap();
    let (eager, stat) = (dir.path().join("eager"), dir.path().join("static"));
    assert!(train_small(&eager, "2", &[]).status.success());
    let o = train_small(&stat, "2", &["--mode", "static"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let read = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    let losses = |s: String| -> Vec<f64> {
        s.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(losses(read(&eager)), losses(read(&stat)));
    // The whole step is compiled, with clipping, momentum and a changing learning rate.
    let extra = [
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--clip-grad",
        "0.5",
        "--schedule",
        "step:1:0.5",
    ];
    let (eager, stat) = (dir.path().join("eager2"), dir.path().join("static2"));
    assert!(train_small(&eager, "3", &extra).status.success());
    let mut with_static = extra.to_vec();
    with_static.extend(["--mode", "static"]);
    let o = train_small(&stat, "3", &with_static);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(losses(read(&eager)), losses(read(&stat)));

    let o = train_small(
        &dir.path().join("x"),
        "1",
        &["--mode", "static", "--dropout", "0.2"],
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("--mode") && stderr.contains("dropout"),
        "{stderr}"
    );

    let g = dir.path().join("graph");
    let o = ferrograd(&["graph", "--batch", "8", "--out", g.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for f in ["forward.dot", "step.dot", "step-optimized.dot"] {
        let dot = std::fs::read_to_string(g.join(f)).unwrap();
        assert!(dot.starts_with("digraph") && dot.contains("matmul"), "{f}");
    }
    assert!(
        std::fs::read_to_string(g.join("step-optimized.dot"))
            .unwrap()
            .contains("fused(")
    );
    let whole = std::fs::read_to_string(g.join("train-step.dot")).unwrap();
    assert!(whole.contains("stored into param"), "{whole}");
    assert!(stdout.contains("stores into weights"), "{stdout}");
}

#[test]
fn bench_prints_json_rows() {
    let o = ferrograd_bench(&[
        "--workload",
        "gemm,mlp-sgd",
        "--n",
        "32",
        "--batch",
        "4",
        "--threads",
        "1",
        "--reps",
        "1",
        "--seconds",
        "0.01",
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let rows = json_rows(&stdout);
    assert_eq!(rows.len(), 3, "{stdout}");
    assert_eq!(rows[0]["workload"], "gemm");
    assert!(rows[0]["gflops"].as_f64().unwrap() > 0.0);
    for (row, mode) in rows[1..].iter().zip(["eager", "static"]) {
        assert_eq!(row["system"], "ferrograd");
        assert_eq!(row["mode"], mode);
        assert_eq!(row["batch"], 4);
        assert!(row["samples_per_s"].as_f64().unwrap() > 0.0);
    }
    let o = ferrograd_bench(&["--workload", "resnet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--workload"));
    // The benchmark is not a command of the user's binary.
    let o = ferrograd(&["bench"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn plot_activations_writes_a_png_and_refuses_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figs").join("act.png");
    let o = ferrograd(&[
        "plot-activations",
        "--activations",
        "relu,gelu,leaky-relu:0.2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("gelu"), "{stdout}");
    assert!(stdout.contains("leaky-relu:0.2"), "{stdout}");
    let png = std::fs::read(&out).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");

    let o = ferrograd(&["plot-activations", "--activations", "relu,wiggle"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = text(&o).1;
    assert!(stderr.contains("--activations"), "{stderr}");
    assert!(stderr.contains("unknown activation \"wiggle\""), "{stderr}");
    let o = ferrograd(&["plot-activations", "--activations", "softmax"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no curve f(x)"));
}

/// Writes IDX files (uncompressed) of `n` 28x28 images and labels under MNIST's names.
fn write_tiny_mnist(dir: &Path, n: usize) {
    let images = |name: &str| {
        let mut b = vec![0, 0, 8, 3];
        for d in [n as u32, 28, 28] {
            b.extend(d.to_be_bytes());
        }
        b.extend((0..n * 784).map(|i| (i * 7 % 256) as u8));
        std::fs::write(dir.join(name), b).unwrap();
    };
    let labels = |name: &str| {
        let mut b = vec![0, 0, 8, 1];
        b.extend((n as u32).to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        std::fs::write(dir.join(name), b).unwrap();
    };
    images("train-images-idx3-ubyte");
    labels("train-labels-idx1-ubyte");
    images("t10k-images-idx3-ubyte");
    labels("t10k-labels-idx1-ubyte");
}

#[test]
fn bench_epoch_reads_the_files_and_reports_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mnist(dir.path(), 300);
    let d = dir.path().to_str().unwrap();
    let o = ferrograd_bench(&[
        "--workload",
        "epoch",
        "--threads",
        "1",
        "--data-dir",
        d,
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let rows = json_rows(&stdout);
    assert_eq!(rows.len(), 2, "eager and static: {stdout}");
    for row in &rows {
        assert_eq!(row["workload"], "epoch");
        assert_eq!(row["samples"].as_f64(), Some(300.0));
        assert!(row["seconds"].as_f64().unwrap() > 0.0);
        assert!(row["mean_loss"].as_f64().unwrap().is_finite());
        assert_eq!(row["flush_denormals"], true);
    }
    // Both modes train the same model: the same mean loss.
    assert_eq!(rows[0]["mean_loss"], rows[1]["mean_loss"]);
    let o = ferrograd_bench(&["--workload", "epoch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--data-dir"), "{:?}", text(&o));
}
