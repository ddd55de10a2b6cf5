//! The records of a training run: one [`EpochMetrics`] per epoch (the lines of
//! `metrics.jsonl`) and the final [`Summary`] (`summary.json`). Training writes them, the
//! charts read them.

use serde::{Deserialize, Serialize};

pub const METRICS_FILE: &str = "metrics.jsonl";
pub const SUMMARY_FILE: &str = "summary.json";

/// One epoch's figures (a line of `metrics.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub samples_per_s: f64,
    pub seconds: f64,
    /// Seconds the training loop waited for the loader's batches.
    #[serde(default)]
    pub data_wait_seconds: f64,
}

/// The final figures (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub dataset: String,
    pub model: String,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub epochs: usize,
    pub train_seconds: f64,
    pub samples_per_s: f64,
    /// Seconds the training loop waited for the loader's batches (this invocation).
    pub data_wait_seconds: f64,
    pub parameters: usize,
    pub threads: usize,
    /// Image files or CSV rows left out with `--skip-bad-files`.
    pub skipped_files: usize,
}
