//! Helpers shared by the command-line tests: running the binaries, reading what they print
//! and write, and a small generated MNIST.

// Each test file uses some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn ferrograd(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ferrograd"), args)
}

/// `train` on the embedded digits with `hidden` units on one thread into `out`, then the
/// flags `extra`.
pub fn train_digits(out: &Path, hidden: &str, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let args = [
        &["train", "--hidden", hidden, "--threads", "1", "--out", out],
        extra,
    ];
    ferrograd(&args.concat())
}

/// Standard output and standard error.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Standard output, then standard error.
pub fn joined(o: &Output) -> String {
    let (stdout, stderr) = text(o);
    format!("{stdout}\n{stderr}")
}

/// Succeeds without a panic; returns stdout.
pub fn ok(o: &Output) -> String {
    let (stdout, stderr) = text(o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stdout
}

/// Fails with exit code 1 and an error that contains every needle; returns stderr.
pub fn fails(o: &Output, needles: &[&str]) -> String {
    let (stdout, stderr) = text(o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} not in: {stderr}");
    }
    stderr
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The run's checkpoint set, where its last model, config, metrics and summary are.
pub fn checkpoint(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Writes IDX files (uncompressed) of `n` 28x28 images and labels under MNIST's names into
/// `dir` (created if needed).
pub fn write_tiny_mnist(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
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
