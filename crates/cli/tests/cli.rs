//! End-to-end tests of the `ferrograd` and `ferrograd-bench` binaries: training writes every
//! promised file, resume and eval and predict work on what training wrote (MLPs and the
//! convolutional models, on small generated data sets), the benchmark prints its rows, and bad
//! input ends in a clear error.

mod support;

use std::path::Path;
use std::process::Output;

use support::{ferrograd, ok, read_json, run, text, train_digits, write_tiny_mnist};

fn ferrograd_bench(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ferrograd-bench"), args)
}

/// One JSON object per line, as `ferrograd-bench --json` prints them.
fn json_rows(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn train_small(out: &Path, epochs: &str, extra: &[&str]) -> Output {
    train_digits(out, "32", &[&["--epochs", epochs], extra].concat())
}

#[test]
fn train_writes_model_metrics_charts_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = train_small(&out, "3", &["--lr", "0.01"]);
    let stdout = ok(&o);
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
        assert!(out.join("checkpoint").join(f).is_file(), "missing {f}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("checkpoint/summary.json")).unwrap(),
    )
    .unwrap();
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
    let metrics = std::fs::read_to_string(out.join("checkpoint/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
    let png = std::fs::read(out.join("checkpoint/curves.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

#[test]
fn resume_continues_with_the_optimizer_state_and_eval_and_predict_use_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A constant schedule goes on after the planned epochs, so the run can be extended.
    let o = train_small(
        &out,
        "2",
        &[
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--schedule",
            "constant",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = train_small(&out, "3", &["--resume", out.to_str().unwrap()]);
    let stdout = ok(&o);
    assert!(
        stdout.contains("epoch   3/3") && !stdout.contains("epoch   1/3"),
        "{stdout}"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["training"]["epochs_done"], 3);
    assert_eq!(cfg["training"]["optimizer"], "sgd");
    assert_eq!(
        std::fs::read_to_string(out.join("checkpoint/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    let o = ferrograd(&["eval", "--model", out.to_str().unwrap()]);
    let stdout = ok(&o);
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
    let stdout = ok(&o);
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
        (vec!["train", "--model", "resnet"], "--model"),
        (
            vec!["train", "--model", "cnn", "--filters", "8,0"],
            "--filters",
        ),
        (
            vec!["graph", "--model", "cnn", "--image", "1x28"],
            "--image",
        ),
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
    let good = std::fs::read(out.join("checkpoint/model.safetensors")).unwrap();
    std::fs::write(
        out.join("checkpoint/model.safetensors"),
        b"not a checkpoint",
    )
    .unwrap();
    let o = ferrograd(&["eval", "--model", out.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("model.safetensors"), "{stderr}");
    std::fs::write(out.join("checkpoint/model.safetensors"), good).unwrap();

    let o = ferrograd(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        d,
        "--epochs",
        "1",
        "--out",
        dir.path().join("mnist-run").to_str().unwrap(),
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
    let read = |d: &Path| std::fs::read_to_string(d.join("checkpoint/metrics.jsonl")).unwrap();
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
    let stdout = ok(&o);
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
    let stdout = ok(&o);
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
    // `ferrograd bench` runs the benchmark binary with the same arguments.
    let o = ferrograd(&["bench", "--workload", "resnet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("unknown workload \"resnet\""),
        "{}",
        text(&o).1
    );
    let o = ferrograd(&[
        "bench",
        "--workload",
        "gemm",
        "--n",
        "8",
        "--threads",
        "1",
        "--reps",
        "1",
        "--seconds",
        "0.01",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(json_rows(&text(&o).0)[0]["workload"], "gemm");
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
    let stdout = ok(&o);
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
    let stdout = ok(&o);
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

/// Writes the six CIFAR-10 batch files with `n` records each (labels cycling through 0..9,
/// channel c's pixels in 50 c .. 50 c + 99).
fn write_tiny_cifar(dir: &Path, n: usize) {
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (b, name) in names.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.push(((b + i) % 10) as u8);
            bytes.extend((0..3072).map(|p| ((p * 3 + i * 11 + b) % 100 + 50 * (p / 1024)) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The checkpoint's tensors by name: (dtype, shape, values as f64).
fn tensors(path: &Path) -> Vec<(String, String, Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).unwrap();
    ferrograd_nn::checkpoint::from_safetensors(&bytes)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.dtype().to_string(), t.shape().to_vec(), t.to_vec_f64()))
        .collect()
}

#[test]
fn lenet_trains_on_28_pixel_images_and_eval_and_predict_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    write_tiny_mnist(&data, 120);
    let out = dir.path().join("lenet");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--dataset", "mnist", "--data-dir", d, "--model", "lenet"];
    let mut args = vec![
        "train",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--threads",
        "1",
    ];
    args.extend(common);
    args.extend(["--out", o]);
    let run = ferrograd(&args);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("LeNet-5 (1x28x28 -> 10)"), "{stdout}");
    let cfg = read_json(&out.join("checkpoint/config.json"));
    assert_eq!(cfg["model"], "lenet");
    assert_eq!(cfg["training"]["optimizer"], "adam");
    assert_eq!(cfg["training"]["weight_decay"], 0.0);
    assert_eq!(cfg["normalize_mean"].as_array().unwrap().len(), 1);
    let names: Vec<String> = tensors(&out.join("checkpoint/model.safetensors"))
        .into_iter()
        .map(|(n, ..)| n)
        .collect();
    assert!(names.contains(&"layers.3.weight".to_string()), "{names:?}");
    assert!(names.contains(&"layers.11.bias".to_string()), "{names:?}");
    let sample = tensors(&out.join("checkpoint/sample_logits.safetensors"));
    let inputs = sample.iter().find(|(n, ..)| n == "inputs").unwrap();
    assert_eq!(inputs.2[1..], [1, 28, 28]);

    let mut args = vec!["eval", "--model", o];
    args.extend(["--data-dir", d]);
    let run = ferrograd(&args);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("mnist test: accuracy"), "{stdout}");

    let pgm = dir.path().join("digit.pgm");
    let mut bytes = b"P5 14 14 255\n".to_vec();
    bytes.extend((0..196).map(|i| if i % 14 == 7 { 255u8 } else { 0 }));
    std::fs::write(&pgm, bytes).unwrap();
    let run = ferrograd(&["predict", "--model", o, pgm.to_str().unwrap()]);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches('%').count(), 3, "{stdout}");

    // LeNet needs 28x28 or larger images: the 8x8 digits are refused by name.
    let digits = dir.path().join("lenet-digits");
    let run = ferrograd(&[
        "train",
        "--model",
        "lenet",
        "--epochs",
        "1",
        "--out",
        digits.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr.contains("--model") && stderr.contains("too small"),
        "{stderr}"
    );
}

/// The plain CNN with batch norm, augmented, in static mode: the checkpoint holds the running
/// statistics and step count, a resumed run continues them, and eval, predict and the
/// compiled step agree with eager mode.
#[test]
fn cnn_trains_with_batch_norm_buffers_resumes_and_matches_eager_in_static_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn");
    let o = out.to_str().unwrap();
    let train = |out: &str, epochs: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--model",
            "cnn",
            "--filters",
            "4,8",
            "--epochs",
            epochs,
            "--threads",
            "1",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        ferrograd(&args)
    };
    // A step schedule goes on after the planned epochs, so the run can be extended.
    let run = train(
        o,
        "2",
        &["--augment", "--mode", "static", "--schedule", "step:1:0.5"],
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let cfg = read_json(&out.join("checkpoint/config.json"));
    assert_eq!(cfg["model"], "cnn");
    assert_eq!(cfg["channels"], serde_json::json!([4, 8]));
    assert_eq!(cfg["training"]["optimizer"], "sgd");
    assert_eq!(cfg["training"]["momentum"], 0.9);
    assert_eq!(cfg["training"]["weight_decay"], 0.0005);
    assert_eq!(cfg["training"]["augment"], true);
    let steps_per_epoch = 1293f64 / 32.0;
    let state = tensors(&out.join("checkpoint/model.safetensors"));
    let find = |state: &[(String, String, Vec<usize>, Vec<f64>)], name: &str| {
        state
            .iter()
            .find(|(n, ..)| n == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let nbt = find(&state, "layers.1.num_batches_tracked");
    assert_eq!((nbt.1.as_str(), nbt.2.len()), ("i64", 0));
    assert_eq!(nbt.3, vec![2.0 * steps_per_epoch.ceil()]);
    let rv = find(&state, "layers.5.running_var");
    assert_eq!(rv.2, vec![8]);
    assert!(
        rv.3.iter().any(|v| *v != 1.0),
        "running statistics were updated"
    );
    let opt = tensors(&out.join("checkpoint/optimizer.safetensors"));
    assert!(
        opt.iter().all(|(n, ..)| !n.contains("running")),
        "buffers are not trained"
    );

    let run = train(o, "3", &["--resume", o]);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let nbt = find(
        &tensors(&out.join("checkpoint/model.safetensors")),
        "layers.1.num_batches_tracked",
    );
    assert_eq!(nbt.3, vec![3.0 * steps_per_epoch.ceil()]);
    let run = ferrograd(&["eval", "--model", o]);
    assert!(run.status.success(), "{:?}", text(&run));
    let pgm = dir.path().join("digit.pgm");
    let mut bytes = b"P5 8 8 16\n".to_vec();
    bytes.extend((0..64).map(|i| if i % 8 == 3 { 16u8 } else { 0 }));
    std::fs::write(&pgm, bytes).unwrap();
    let run = ferrograd(&["predict", "--model", o, pgm.to_str().unwrap()]);
    assert!(run.status.success(), "{:?}", text(&run));

    // Eager and static steps train the same network.
    let losses = |d: &Path| -> Vec<f64> {
        std::fs::read_to_string(d.join("checkpoint/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let (eager, stat) = (dir.path().join("eager"), dir.path().join("static"));
    assert!(train(eager.to_str().unwrap(), "2", &[]).status.success());
    assert!(
        train(stat.to_str().unwrap(), "2", &["--mode", "static"])
            .status
            .success()
    );
    for (a, b) in losses(&eager).iter().zip(losses(&stat)) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

/// CIFAR-10 (synthetic batch files): per-channel normalisation in config.json, augmented
/// training of LeNet (32x32, no padding) and the CNN.
#[test]
fn conv_models_train_on_synthetic_cifar10_with_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_cifar(dir.path(), 24);
    let d = dir.path().to_str().unwrap();
    for (model, extra) in [("lenet", vec![]), ("cnn", vec!["--filters", "4,4"])] {
        let out = dir.path().join(model);
        let mut args = vec![
            "train",
            "--dataset",
            "cifar10",
            "--data-dir",
            d,
            "--model",
            model,
            "--augment",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--threads",
            "1",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        let run = ferrograd(&args);
        let (stdout, stderr) = text(&run);
        assert!(run.status.success(), "{stdout}\n{stderr}");
        let cfg = read_json(&out.join("checkpoint/config.json"));
        assert_eq!(cfg["image"], serde_json::json!([3, 32, 32]));
        let means = cfg["normalize_mean"].as_array().unwrap();
        assert_eq!(means.len(), 3, "{cfg}");
        assert_ne!(means[0], means[1]);
        let run = ferrograd(&["eval", "--model", out.to_str().unwrap(), "--data-dir", d]);
        assert!(run.status.success(), "{:?}", text(&run));
    }
}

#[test]
fn graph_writes_the_steps_of_the_convolutional_models() {
    let dir = tempfile::tempdir().unwrap();
    for (model, extra) in [("lenet", vec![]), ("cnn", vec!["--image", "3x16x16"])] {
        let g = dir.path().join(model);
        let mut args = vec!["graph", "--model", model, "--batch", "2", "--out"];
        args.push(g.to_str().unwrap());
        args.extend(extra);
        let run = ferrograd(&args);
        let (stdout, stderr) = text(&run);
        assert!(run.status.success(), "{stdout}\n{stderr}");
        let dot = std::fs::read_to_string(g.join("step.dot")).unwrap();
        assert!(dot.contains("conv2d"), "{model}");
        let whole = std::fs::read_to_string(g.join("train-step.dot")).unwrap();
        assert!(whole.contains("stored into param"), "{model}");
    }
}

#[test]
fn detect_anomaly_stops_training_at_the_first_non_finite_value_in_both_modes() {
    for mode in ["eager", "static"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        // A learning rate this large overflows float32 within the first steps.
        let flags = ["--optimizer", "sgd", "--lr", "1e38", "--mode", mode];
        let mut with = flags.to_vec();
        with.push("--detect-anomaly");
        let o = train_small(&out, "1", &with);
        let (_, stderr) = text(&o);
        assert!(!o.status.success(), "{mode}: {stderr}");
        assert!(
            stderr.contains("error: anomaly: ") && stderr.contains(" produced "),
            "{mode}: {stderr}"
        );
        assert!(stderr.contains("input shapes"), "{mode}: {stderr}");
    }
}
