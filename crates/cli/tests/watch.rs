//! End-to-end tests of what watches a training run: early stopping and the best checkpoint
//! (which eval, predict and summary load), TensorBoard event files read back with an
//! independent reader (framing and CRCs checked with `crc32c`, records decoded by `prost` from
//! message definitions written here, apart from the writer's), the model summary against the
//! saved parameters, per-class scores in summary.json, and Ctrl-C keeping a checkpoint that
//! `--resume` continues. All on the embedded digits data set.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{checkpoint, ferrograd, joined, read_json, train_digits};

fn train(out: &Path, extra: &[&str]) -> Output {
    let o = train_digits(out, "32", extra);
    assert!(o.status.success(), "{}", joined(&o));
    o
}

fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(checkpoint(out).join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Keras' rule, written out again: (the epoch training stops after, the best epoch).
fn expected_stop(values: &[f64], patience: usize, min_delta: f64, lower: bool) -> (usize, usize) {
    let (mut best, mut best_epoch, mut bad) = (None::<f64>, 0, 0);
    for (i, &v) in values.iter().enumerate() {
        let better = match best {
            None => true,
            Some(b) if lower => v < b - min_delta,
            Some(b) => v > b + min_delta,
        };
        if better {
            best = Some(v);
            best_epoch = i + 1;
            bad = 0;
        } else {
            bad += 1;
        }
        if bad >= patience {
            return (i + 1, best_epoch);
        }
    }
    (values.len(), best_epoch)
}

#[test]
fn early_stopping_stops_at_the_right_epoch_and_keeps_the_best_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // A minimum change no loss can make: only the first epoch improves, so training stops
    // after 1 + patience epochs, and the best checkpoint is epoch 1's.
    let out = dir.path().join("scripted");
    let o = train(
        &out,
        &[
            "--epochs",
            "20",
            "--early-stopping",
            "3",
            "--min-delta",
            "100",
        ],
    );
    let stdout = joined(&o);
    assert!(stdout.contains("early stopping"), "{stdout}");
    assert_eq!(metrics(&out).len(), 4);
    assert_eq!(
        read_json(&out.join("best/config.json"))["training"]["epochs_done"],
        1
    );
    assert_eq!(
        read_json(&checkpoint(&out).join("config.json"))["training"]["epochs_done"],
        4
    );
    let summary = read_json(&checkpoint(&out).join("summary.json"));
    assert_eq!(summary["best_epoch"], 1);
    assert_eq!(summary["checkpoint"], "best");
    assert_eq!(summary["stopped"], "early stopping");
    // The best checkpoint holds epoch 1's weights: its metrics end there, and its model
    // differs from the last.
    assert_eq!(
        std::fs::read_to_string(out.join("best/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert_ne!(
        std::fs::read(out.join("best/model.safetensors")).unwrap(),
        std::fs::read(checkpoint(&out).join("model.safetensors")).unwrap()
    );

    // eval and predict load the best checkpoint by default and say so; --checkpoint last
    // loads the last.
    let o = ferrograd(&["eval", "--model", out.to_str().unwrap(), "--threads", "1"]);
    let s = joined(&o);
    assert!(o.status.success(), "{s}");
    assert!(
        s.contains("loaded the best checkpoint") && s.contains("epoch 1"),
        "{s}"
    );
    assert!(s.contains("macro") && s.contains("top-5 accuracy"), "{s}");
    let o = ferrograd(&[
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--checkpoint",
        "last",
    ]);
    assert!(
        joined(&o).contains("loaded the last checkpoint"),
        "{}",
        joined(&o)
    );
    let img = dir.path().join("digit.pgm");
    std::fs::write(
        &img,
        b"P2\n8 8\n16\n"
            .iter()
            .copied()
            .chain("0 ".repeat(64).bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", joined(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("loaded the best checkpoint"));

    // A real curve, monitored by accuracy: the run stops where the rule says, and the best
    // checkpoint is the best epoch's.
    let out = dir.path().join("accuracy");
    train(
        &out,
        &[
            "--epochs",
            "25",
            "--lr",
            "0.02",
            "--schedule",
            "constant",
            "--early-stopping",
            "2",
            "--monitor",
            "val_accuracy",
        ],
    );
    let m = metrics(&out);
    let acc: Vec<f64> = m
        .iter()
        .map(|r| r["val_accuracy"].as_f64().unwrap())
        .collect();
    let (stop, best) = expected_stop(&acc, 2, 0.0, false);
    assert_eq!(m.len(), stop, "{acc:?}");
    assert_eq!(
        read_json(&out.join("best/config.json"))["training"]["epochs_done"],
        best
    );

    // The best checkpoint is a set checked against its manifest like the last one.
    assert!(out.join("best/MANIFEST").is_file());

    // A new run in the same folder is refused, and leaves the old run as it was; with
    // --overwrite it replaces the run and leaves no stale best checkpoint.
    let o = ferrograd(&["train", "--epochs", "1", "--out", out.to_str().unwrap()]);
    assert!(
        !o.status.success() && joined(&o).contains("--overwrite"),
        "{}",
        joined(&o)
    );
    assert!(out.join("best/config.json").is_file());
    train(&out, &["--epochs", "1", "--overwrite"]);
    assert!(!out.join("best").exists());
    let o = ferrograd(&["eval", "--model", out.to_str().unwrap()]);
    assert!(
        joined(&o).contains("loaded the last checkpoint") && joined(&o).contains("no best"),
        "{}",
        joined(&o)
    );
    let o = ferrograd(&[
        "train",
        "--early-stopping",
        "2",
        "--val-fraction",
        "0",
        "--out",
        dir.path().join("no-val").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && joined(&o).contains("--early-stopping"),
        "{}",
        joined(&o)
    );
}

/// TensorBoard's messages, written from TensorFlow's .proto files independently of the
/// writer's definitions.
mod tf {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        #[prost(int64, tag = "2")]
        pub step: i64,
        #[prost(string, optional, tag = "3")]
        pub file_version: Option<String>,
        #[prost(message, optional, tag = "5")]
        pub summary: Option<Summary>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(float, optional, tag = "2")]
        pub simple_value: Option<f32>,
        #[prost(message, optional, tag = "4")]
        pub image: Option<Image>,
        #[prost(message, optional, tag = "5")]
        pub histo: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        #[prost(int32, tag = "1")]
        pub height: i32,
        #[prost(int32, tag = "2")]
        pub width: i32,
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(double, tag = "1")]
        pub min: f64,
        #[prost(double, tag = "2")]
        pub max: f64,
        #[prost(double, tag = "3")]
        pub num: f64,
        #[prost(double, tag = "4")]
        pub sum: f64,
        #[prost(double, tag = "5")]
        pub sum_squares: f64,
        #[prost(double, repeated, tag = "6")]
        pub bucket_limit: Vec<f64>,
        #[prost(double, repeated, tag = "7")]
        pub bucket: Vec<f64>,
    }
}

/// TFRecord's masked CRC, written as its definition states it (not as the writer does).
#[allow(clippy::manual_rotate)]
fn masked(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
}

/// Every record of an event file, with the framing and both CRCs checked.
fn records(path: &Path) -> Vec<tf::Event> {
    let bytes = std::fs::read(path).unwrap();
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(
            len_crc,
            masked(len_bytes),
            "length CRC of the record at {at}"
        );
        let data = &bytes[at + 12..at + 12 + len];
        let data_crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(data_crc, masked(data), "data CRC of the record at {at}");
        events.push(<tf::Event as prost::Message>::decode(data).unwrap());
        at += 16 + len;
    }
    assert_eq!(at, bytes.len(), "the file ends with a whole record");
    events
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn tensorboard_event_files_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tb");
    // A constant rate, so the run can be extended by --resume below.
    train(
        &out,
        &["--epochs", "2", "--schedule", "constant", "--tensorboard"],
    );
    let files = event_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    let events = records(&files[0]);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let values: Vec<(i64, tf::Value)> = events
        .iter()
        .filter_map(|e| e.summary.as_ref().map(|s| (e.step, s.value.clone())))
        .flat_map(|(step, v)| v.into_iter().map(move |v| (step, v)))
        .collect();
    let m = metrics(&out);
    for (epoch, row) in m.iter().enumerate() {
        let step = epoch as i64 + 1;
        for (tag, key) in [
            ("loss/train", "train_loss"),
            ("loss/val", "val_loss"),
            ("accuracy/train", "train_accuracy"),
            ("accuracy/val", "val_accuracy"),
            ("learning_rate", "lr"),
            ("samples_per_s", "samples_per_s"),
        ] {
            let v = values
                .iter()
                .find(|(s, v)| *s == step && v.tag == tag)
                .unwrap_or_else(|| panic!("no {tag} at step {step}"));
            let want = row[key].as_f64().unwrap() as f32;
            assert_eq!(v.1.simple_value, Some(want), "{tag} at step {step}");
        }
    }
    // A weight and a gradient histogram per parameter per epoch; the weights' count is the
    // parameter's size.
    let config = read_json(&checkpoint(&out).join("config.json"));
    assert_eq!(config["hidden"], serde_json::json!([32]));
    for (name, numel) in [
        ("layers.0.weight", 64 * 32),
        ("layers.0.bias", 32),
        ("layers.2.weight", 32 * 10),
        ("layers.2.bias", 10),
    ] {
        for kind in ["weights", "gradients"] {
            let tag = format!("{kind}/{name}");
            let h: Vec<&tf::Histogram> = values
                .iter()
                .filter(|(_, v)| v.tag == tag)
                .filter_map(|(_, v)| v.histo.as_ref())
                .collect();
            assert_eq!(h.len(), 2, "{tag}");
            for h in h {
                assert_eq!(h.num, numel as f64, "{tag}");
                assert_eq!(h.bucket.iter().sum::<f64>(), h.num, "{tag}");
                assert_eq!(h.bucket.len(), h.bucket_limit.len(), "{tag}");
                assert!(h.min <= h.max && h.min.is_finite(), "{tag}");
            }
        }
    }
    // The validation confusion matrix as a PNG each epoch.
    let images: Vec<&tf::Image> = values
        .iter()
        .filter(|(_, v)| v.tag == "confusion/val")
        .filter_map(|(_, v)| v.image.as_ref())
        .collect();
    assert_eq!(images.len(), 2);
    let decoder = png::Decoder::new(std::io::Cursor::new(&images[0].encoded_image_string[..]));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!(
        (info.width as i32, info.height as i32),
        (images[0].width, images[0].height)
    );

    // Resuming adds a second file; a new run in the folder (--overwrite) replaces them.
    train(
        &out,
        &[
            "--epochs",
            "3",
            "--tensorboard",
            "--resume",
            out.to_str().unwrap(),
        ],
    );
    let files = event_files(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    let steps: Vec<i64> = records(&files[1])
        .iter()
        .filter(|e| e.summary.is_some())
        .map(|e| e.step)
        .collect();
    assert!(steps.iter().all(|&s| s == 3), "{steps:?}");
    train(&out, &["--epochs", "1", "--overwrite"]);
    assert!(event_files(&out).is_empty());
}

#[test]
fn summary_counts_match_the_saved_parameters_and_scores_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = train(&out, &["--epochs", "1"]);
    let stdout = joined(&o);
    // The summary is printed before training, and the scores after it.
    assert!(
        stdout.contains("layers.0 (Linear)") && stdout.contains("Total params: 2,410"),
        "{stdout}"
    );
    let summary = read_json(&checkpoint(&out).join("summary.json"));
    let total = summary["parameters"].as_u64().unwrap();
    assert_eq!(total, 64 * 32 + 32 + 32 * 10 + 10);
    let o = ferrograd(&["summary", "--model", out.to_str().unwrap()]);
    let s = joined(&o);
    assert!(o.status.success(), "{s}");
    assert!(
        s.replace(',', "")
            .contains(&format!("Total params: {total}")),
        "{s}"
    );
    assert!(s.contains("layers.1 (ReLU)") && s.contains("[32]"), "{s}");
    // MACs per sample: the two matrix products.
    assert!(
        s.contains(&format!("Multiply-accumulates per sample: {}", "2,368")),
        "{s}"
    );

    let per_class = summary["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    let support: u64 = per_class
        .iter()
        .map(|c| c["support"].as_u64().unwrap())
        .sum();
    let macro_f1 = per_class
        .iter()
        .map(|c| c["f1"].as_f64().unwrap())
        .sum::<f64>()
        / 10.0;
    assert!((summary["macro_f1"].as_f64().unwrap() - macro_f1).abs() < 1e-12);
    assert!(support > 0);
    assert_eq!(summary["top_k"], 5);
    assert!(
        summary["top_k_accuracy"].as_f64().unwrap() >= summary["test_accuracy"].as_f64().unwrap()
    );

    let o = ferrograd(&[
        "summary",
        "--model",
        dir.path().join("nothing").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && joined(&o).contains("config.json"),
        "{}",
        joined(&o)
    );
}

#[test]
fn ctrl_c_keeps_a_checkpoint_that_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args([
            "train",
            "--hidden",
            "32",
            "--threads",
            "1",
            "--epochs",
            "500",
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !checkpoint(&out).join("metrics.jsonl").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    let s = joined(&o);
    assert!(o.status.success(), "{s}");
    assert!(s.contains("interrupted") && s.contains("--resume"), "{s}");
    let done = read_json(&checkpoint(&out).join("config.json"))["training"]["epochs_done"]
        .as_u64()
        .unwrap();
    assert!((1..500).contains(&done), "{done}");
    assert_eq!(metrics(&out).len() as u64, done);
    let total = (done + 2).to_string();
    train(
        &out,
        &["--epochs", &total, "--resume", out.to_str().unwrap()],
    );
    assert_eq!(metrics(&out).len() as u64, done + 2);
    assert!(checkpoint(&out).join("summary.json").is_file());
}

#[test]
fn plateau_and_one_cycle_schedules_drive_the_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    // One-cycle starts at --lr / 25 and peaks at --lr; metrics record each epoch's first rate.
    let out = dir.path().join("one-cycle");
    train(
        &out,
        &["--epochs", "4", "--lr", "0.01", "--schedule", "one-cycle"],
    );
    let lrs: Vec<f64> = metrics(&out)
        .iter()
        .map(|m| m["lr"].as_f64().unwrap())
        .collect();
    assert!((lrs[0] - 0.01 / 25.0).abs() < 1e-12, "{lrs:?}");
    assert!(lrs[1] > lrs[0] && lrs[3] < lrs[1], "{lrs:?}");
    assert!(lrs.iter().all(|&lr| lr <= 0.01 + 1e-12), "{lrs:?}");

    // Plateau with patience 0 and a threshold no loss can beat: every epoch after the first
    // halves the rate.
    let out = dir.path().join("plateau");
    train(
        &out,
        &[
            "--epochs",
            "4",
            "--lr",
            "0.01",
            "--schedule",
            "plateau:0.5:0:0.99",
        ],
    );
    let lrs: Vec<f64> = metrics(&out)
        .iter()
        .map(|m| m["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs, [0.01, 0.01, 0.005, 0.0025]);
    let o = ferrograd(&["train", "--schedule", "plateau:2", "--epochs", "1"]);
    assert!(
        !o.status.success() && joined(&o).contains("--schedule"),
        "{}",
        joined(&o)
    );
    let o = ferrograd(&[
        "train",
        "--tui",
        "--epochs",
        "1",
        "--out",
        dir.path().join("t").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && joined(&o).contains("--tui"),
        "{}",
        joined(&o)
    );
}
