//! End-to-end tests of runs that are interrupted, resumed, overwritten or fed hostile input:
//! the checkpoint set, `--resume` reaching the same weights bit for bit, flags that conflict
//! with a saved run, the output folder checks, closed pipes, oversized and broken images,
//! diverging training, and damaged model folders. (The crash test at every filesystem step
//! of a save is in `crash.rs`.)

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{checkpoint, fails, ferrograd, ok, text, train_digits, write_tiny_mnist};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small digits run (16 hidden units, one thread) into `out`.
fn train(out: &Path, epochs: &str, extra: &[&str]) -> Output {
    train_digits(out, "16", &[&["--epochs", epochs], extra].concat())
}

fn config(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(checkpoint(out).join("config.json")).unwrap())
        .unwrap()
}

fn model_bytes(out: &Path) -> Vec<u8> {
    std::fs::read(checkpoint(out).join("model.safetensors")).unwrap()
}

/// Runs `train` with the fault-injection hook set to stop it after filesystem step `n`.
fn train_stopped_at(out: &Path, epochs: &str, extra: &[&str], n: usize) -> Output {
    let mut args = vec![
        "train",
        "--epochs",
        epochs,
        "--hidden",
        "16",
        "--threads",
        "1",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(&args)
        .env("FERROGRAD_FAULT_AFTER_FS_STEPS", n.to_string())
        .output()
        .expect("the binary runs")
}

#[test]
fn a_run_is_one_checkpoint_set_with_its_summary_charts_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stdout = ok(&train(&out, "2", &[]));
    let wrote = stdout.lines().last().unwrap();
    assert!(
        wrote.starts_with("wrote ") && wrote.contains("checkpoint"),
        "{wrote}"
    );
    let mut files: Vec<String> = std::fs::read_dir(checkpoint(&out))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "MANIFEST",
            "config.json",
            "confusion.png",
            "curves.png",
            "metrics.jsonl",
            "model.safetensors",
            "optimizer.safetensors",
            "sample_logits.safetensors",
            "summary.json",
        ]
    );
    // The closing line names every file of the set, the sample logits included.
    for f in &files[1..] {
        assert!(wrote.contains(f.as_str()), "{f} not in {wrote}");
    }
    // Nothing but the set and the link to its summary in the run folder: no temporaries, no
    // staging folders.
    let mut top: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["checkpoint", "summary.json"]);
    assert!(out.join("summary.json").is_symlink());
    // The manifest holds each file's SHA-256: a changed file is refused.
    let manifest = std::fs::read_to_string(checkpoint(&out).join("MANIFEST")).unwrap();
    assert_eq!(manifest.lines().count(), 8);
    let summary = checkpoint(&out).join("summary.json");
    let good = std::fs::read(&summary).unwrap();
    std::fs::write(&summary, b"{}").unwrap();
    fails(
        &ferrograd(&["eval", "--model", s(&out)]),
        &["summary.json", "checksum"],
    );
    std::fs::write(&summary, good).unwrap();
    // eval takes the run folder or the checkpoint folder itself.
    ok(&ferrograd(&["eval", "--model", s(&out)]));
    ok(&ferrograd(&["eval", "--model", s(&checkpoint(&out))]));
}

#[test]
fn a_folder_holding_a_run_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, "1", &[]));
    let before = model_bytes(&out);
    fails(
        &train(&out, "2", &[]),
        &["--out", "--overwrite", "--resume", "1 epochs done"],
    );
    assert_eq!(
        model_bytes(&out),
        before,
        "the refused run changed the folder"
    );
    // --overwrite replaces the whole run, summary included.
    ok(&train(&out, "2", &["--overwrite"]));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(checkpoint(&out).join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["epochs"], 2);
    assert_eq!(config(&out)["training"]["epochs_done"], 2);
}

#[test]
fn the_default_folder_is_replaced_by_each_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = |epochs: &str| {
        Command::new(env!("CARGO_BIN_EXE_ferrograd"))
            .args([
                "train",
                "--epochs",
                epochs,
                "--hidden",
                "8",
                "--threads",
                "1",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    ok(&run("1"));
    let stdout = ok(&run("2"));
    assert!(
        stdout.contains("replacing the previous run in runs/latest"),
        "{stdout}"
    );
    assert_eq!(
        config(&dir.path().join("runs/latest"))["training"]["epochs_done"],
        2
    );
}

#[test]
fn out_is_checked_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    for out in [file.clone(), file.join("run")] {
        let o = train(&out, "1", &[]);
        let stderr = fails(&o, &["--out", s(&out)]);
        assert!(!stderr.contains(".part"), "{stderr}");
        assert!(
            !text(&o).0.contains("epoch"),
            "trained before checking --out"
        );
    }
}

/// Trains `epochs` epochs in one go and, in another folder, the same run stopped in its
/// second save and resumed; the weights must be the same bits.
fn resume_is_bit_identical(epochs: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    ok(&train(&whole, epochs, extra));
    let parts = dir.path().join("parts");
    // Step 20 falls in the second save, before its switch: the checkpoint is epoch 1's.
    let o = train_stopped_at(&parts, epochs, extra, 20);
    assert_eq!(o.status.code(), Some(86), "{:?}", text(&o));
    let done = config(&parts)["training"]["epochs_done"].as_u64().unwrap();
    assert!(done >= 1 && done < epochs.parse().unwrap(), "{done}");
    // Resuming needs no other flag: the folder remembers the run.
    let stdout = ok(&ferrograd(&[
        "train",
        "--resume",
        s(&parts),
        "--threads",
        "1",
    ]));
    assert!(
        stdout.contains(&format!("epoch   {epochs}/{epochs}")),
        "{stdout}"
    );
    assert_eq!(
        config(&parts)["training"]["epochs_done"],
        epochs.parse::<u64>().unwrap()
    );
    assert!(
        model_bytes(&whole) == model_bytes(&parts),
        "{extra:?}: the resumed run ended with other weights"
    );
    let metrics = std::fs::read_to_string(checkpoint(&parts).join("metrics.jsonl")).unwrap();
    let epochs_seen: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        epochs_seen,
        (1..=epochs.parse().unwrap()).collect::<Vec<u64>>()
    );
}

#[test]
fn resumed_runs_are_bit_identical_for_every_schedule() {
    resume_is_bit_identical("4", &[]);
    resume_is_bit_identical("4", &["--warmup", "2"]);
    resume_is_bit_identical("4", &["--schedule", "step:2:0.5", "--warmup", "1"]);
    resume_is_bit_identical(
        "3",
        &[
            "--schedule",
            "exponential:0.5",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
        ],
    );
    resume_is_bit_identical("3", &["--dropout", "0.2"]);
}

#[test]
fn resume_refuses_flags_that_would_change_the_run_and_writes_into_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, "2", &["--schedule", "constant"]));
    fails(
        &ferrograd(&[
            "train",
            "--resume",
            s(&out),
            "--hidden",
            "32",
            "--optimizer",
            "sgd",
            "--lr",
            "5",
            "--batch-size",
            "7",
        ]),
        &[
            "--hidden 32 (the run has 16)",
            "--optimizer sgd (the run has adam)",
            "--lr 5",
            "--batch-size 7 (the run has 32)",
        ],
    );
    // The run's own values may be repeated.
    ok(&ferrograd(&[
        "train",
        "--resume",
        s(&out),
        "--hidden",
        "16",
        "--schedule",
        "constant",
        "--epochs",
        "2",
    ]));
    fails(
        &ferrograd(&["train", "--resume", s(&out), "--dataset", "mnist"]),
        &["--dataset", "digits"],
    );
    fails(
        &ferrograd(&[
            "train",
            "--resume",
            s(&out),
            "--out",
            s(&dir.path().join("x")),
        ]),
        &["--out", "own folder"],
    );
    // --epochs below the epochs done is refused; equal trains nothing.
    fails(
        &ferrograd(&["train", "--resume", s(&out), "--epochs", "1"]),
        &["--epochs", "already trained 2 epochs"],
    );
    let stdout = ok(&ferrograd(&["train", "--resume", s(&out), "--epochs", "2"]));
    assert!(stdout.contains("nothing to train"), "{stdout}");
    // Extending says what happens to the schedule, and writes into the run's folder (not
    // runs/latest of the working folder).
    let o = Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args([
            "train",
            "--resume",
            s(&out),
            "--epochs",
            "3",
            "--threads",
            "1",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = ok(&o);
    assert!(
        stdout.contains("extending the run from 2 to 3 epochs"),
        "{stdout}"
    );
    assert!(!dir.path().join("runs").exists());
    assert_eq!(config(&out)["training"]["epochs_done"], 3);
    // A cosine schedule has annealed to 0: extending it could not change the weights.
    let cosine = dir.path().join("cosine");
    ok(&train(&cosine, "1", &[]));
    fails(
        &ferrograd(&["train", "--resume", s(&cosine), "--epochs", "2"]),
        &["--epochs", "learning rate of 0"],
    );
}

#[test]
fn resume_and_eval_remember_the_data_set_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist-files");
    write_tiny_mnist(&data, 100);
    let out = dir.path().join("run");
    ok(&train(
        &out,
        "2",
        &["--dataset", "mnist", "--data-dir", s(&data)],
    ));
    let stdout = ok(&ferrograd(&["eval", "--model", s(&out)]));
    assert!(stdout.contains("mnist test: accuracy"), "{stdout}");
    let o = train_stopped_at(
        &dir.path().join("stopped"),
        "2",
        &["--dataset", "mnist", "--data-dir", s(&data)],
        20,
    );
    assert_eq!(o.status.code(), Some(86));
    ok(&ferrograd(&[
        "train",
        "--resume",
        s(&dir.path().join("stopped")),
    ]));
    // Scoring on another data set of the same shape works, with a warning.
    let o = ferrograd(&[
        "eval",
        "--model",
        s(&out),
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        s(&data),
    ]);
    ok(&o);
    let (_, stderr) = text(&o);
    assert!(
        stderr.contains("warning") && stderr.contains("trained on mnist"),
        "{stderr}"
    );
}

/// Runs the command with stdout closed by the reader after at most one line.
fn closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrograd"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn pgm(path: &Path) {
    let mut bytes = b"P5 8 8 16\n".to_vec();
    bytes.extend((0..64).map(|i| if i % 8 == 3 { 16u8 } else { 0 }));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_closed_stdout_neither_panics_nor_stops_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (status, stderr) = closed_stdout(&[
        "train",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--threads",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    assert_eq!(config(&out)["training"]["epochs_done"], 2);
    assert!(checkpoint(&out).join("summary.json").is_file());
    let (status, stderr) = closed_stdout(&["eval", "--model", s(&out)]);
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
    let img = dir.path().join("a.pgm");
    pgm(&img);
    let (status, stderr) = closed_stdout(&["predict", "--model", s(&out), s(&img), s(&img)]);
    assert!(status.success() && !stderr.contains("panicked"), "{stderr}");
}

/// CRC-32 (IEEE) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims `w`x`h` grey pixels, followed by a few bytes of image data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00]);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn predict_checks_sizes_first_and_reports_every_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, "1", &[]));
    let good = dir.path().join("good.pgm");
    pgm(&good);
    let huge_png = dir.path().join("huge.png");
    std::fs::write(&huge_png, png_header_only(30000, 30000)).unwrap();
    let huge_pgm = dir.path().join("huge.pgm");
    std::fs::write(&huge_pgm, b"P5 30000 30000 255\n").unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG broken").unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        s(&out),
        s(&huge_png),
        s(&good),
        s(&broken),
        s(&huge_pgm),
        s(&good),
    ]);
    let stderr = fails(&o, &["huge.png", "broken.png", "huge.pgm", "3 of 5 images"]);
    assert_eq!(stderr.matches("--max-megapixels").count(), 2, "{stderr}");
    let stdout = text(&o).0;
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    // Raising the limit lets the decoder look further: the missing data is the problem now.
    let o = ferrograd(&[
        "predict",
        "--model",
        s(&out),
        "--max-megapixels",
        "1000",
        s(&huge_pgm),
    ]);
    fails(&o, &["huge.pgm", "truncated"]);
}

#[test]
fn a_white_digit_on_a_transparent_background_keeps_its_stroke() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, "3", &["--lr", "0.01"]));
    // The same vertical bar as an opaque grey image (bright on dark) and as white on
    // transparent RGBA: the two must read alike.
    let mut grey = Vec::new();
    let mut rgba = Vec::new();
    for i in 0..64 {
        let on = i % 8 == 3 || i % 8 == 4;
        grey.push(if on { 255u8 } else { 0 });
        rgba.extend(if on {
            [255u8, 255, 255, 255]
        } else {
            [0, 0, 0, 0]
        });
    }
    let encode = |color: png::ColorType, data: &[u8], path: &Path| {
        let mut bytes = Vec::new();
        let mut enc = png::Encoder::new(&mut bytes, 8, 8);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(data).unwrap();
        w.finish().unwrap();
        std::fs::File::create(path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
    };
    let grey_path = dir.path().join("grey.png");
    let rgba_path = dir.path().join("rgba.png");
    encode(png::ColorType::Grayscale, &grey, &grey_path);
    encode(png::ColorType::Rgba, &rgba, &rgba_path);
    let stdout = ok(&ferrograd(&[
        "predict",
        "--model",
        s(&out),
        s(&grey_path),
        s(&rgba_path),
    ]));
    let answers: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_once(": ").unwrap().1)
        .collect();
    assert_eq!(answers[0], answers[1], "{stdout}");
}

#[test]
fn diverging_training_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    fails(
        &train(&out, "3", &["--lr", "1e6"]),
        &["--lr", "diverged", "epoch 1", "no checkpoint"],
    );
    assert!(!checkpoint(&out).exists());
    // Two good epochs, then the step schedule multiplies the rate by 1e9.
    let out = dir.path().join("step");
    fails(
        &train(&out, "4", &["--schedule", "step:2:1e9", "--lr", "0.001"]),
        &["diverged", "epoch 3", "last good checkpoint (epoch 2)"],
    );
    assert_eq!(config(&out)["training"]["epochs_done"], 2);
    let stdout = ok(&ferrograd(&["eval", "--model", s(&out)]));
    assert!(stdout.contains("accuracy"), "{stdout}");
}

#[test]
fn values_a_flag_cannot_take_are_named() {
    for (args, needles) in [
        (
            vec!["train", "--lr", "-1"],
            vec!["--lr", "not a positive number"],
        ),
        (
            vec!["train", "--weight-decay", "-5"],
            vec!["--weight-decay", "not a non-negative number"],
        ),
        (
            vec!["train", "--epochs", "-2"],
            vec!["--epochs", "positive integer"],
        ),
        (
            vec!["train", "--hidden", ""],
            vec!["--hidden", "empty list"],
        ),
        (
            vec!["train", "--schedule", "step:0"],
            vec!["--schedule", "at least 1"],
        ),
        (
            vec!["train", "--threads", "100000"],
            vec!["--threads", "cores"],
        ),
        (
            vec!["eval", "--threads", "100000"],
            vec!["--threads", "cores"],
        ),
        (
            vec!["predict", "--max-megapixels", "-3", "x.png"],
            vec!["--max-megapixels", "positive"],
        ),
    ] {
        let o = ferrograd(&args);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: {n:?} not in {stderr}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    fails(
        &train(&dir.path().join("w"), "2", &["--warmup", "100"]),
        &["--warmup", "100 warm-up epochs", "2 epochs"],
    );
}

/// Copies a run's checkpoint into a folder of the flat layout (files directly in it), where
/// a test can change a file without its manifest.
fn flat_copy(out: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(checkpoint(out)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "MANIFEST" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn damaged_model_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, "1", &[]));
    let img = dir.path().join("a.pgm");
    pgm(&img);
    // The flat layout is still read, and a run resumed from it moves to a checkpoint set.
    let flat = dir.path().join("flat");
    flat_copy(&out, &flat);
    ok(&ferrograd(&["eval", "--model", s(&flat)]));
    let resumed = dir.path().join("resumed");
    flat_copy(&out, &resumed);
    ok(&ferrograd(&[
        "train",
        "--resume",
        s(&resumed),
        "--epochs",
        "1",
    ]));
    let mut left: Vec<String> = std::fs::read_dir(&resumed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["checkpoint", "summary.json"]);
    // A zero scale in the preprocessing.
    let cfg = std::fs::read_to_string(flat.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["normalize_std"] = serde_json::json!([0.0]);
    std::fs::write(flat.join("config.json"), v.to_string()).unwrap();
    fails(
        &ferrograd(&["predict", "--model", s(&flat), s(&img)]),
        &["config.json", "normalize_std"],
    );
    std::fs::write(flat.join("config.json"), cfg).unwrap();
    // A NaN weight: the first value after the safetensors header.
    let model = flat.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&model, bytes).unwrap();
    fails(
        &ferrograd(&["eval", "--model", s(&flat)]),
        &["model.safetensors", "NaN"],
    );
}

#[test]
fn help_says_what_static_mode_compiles_and_where_resume_writes() {
    let stdout = ok(&ferrograd(&["train", "--help"]));
    assert!(stdout.contains("optimizer's update"), "{stdout}");
    assert!(stdout.contains("write into the same folder"), "{stdout}");
    assert!(stdout.contains("--overwrite"), "{stdout}");
}
