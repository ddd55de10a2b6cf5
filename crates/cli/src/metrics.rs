//! The records of a training run: one [`EpochMetrics`] per epoch (the lines of
//! `metrics.jsonl`) and the final [`Summary`] (`summary.json`), and the per-class scores
//! (precision, recall, F1) computed from a confusion matrix. Training writes them, the charts
//! read them.

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
    /// Trainable parameters of the model.
    pub parameters: usize,
    pub threads: usize,
    /// Image files or CSV rows left out with `--skip-bad-files`.
    pub skipped_files: usize,
    /// Per-class scores on the test split, and their unweighted means.
    #[serde(flatten)]
    pub scores: Scores,
    /// The checkpoint scored on the test split: `best` (epoch `best_epoch`) or `last`.
    pub checkpoint: String,
    /// The epoch of the best checkpoint (with --early-stopping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Why training ended before --epochs: `early stopping` or `interrupted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples of this class.
    pub support: usize,
}

/// Per-class scores with their macro averages, and top-k accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub per_class: Vec<ClassScores>,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub top_k: usize,
    pub top_k_accuracy: f64,
}

impl Scores {
    /// Scores from `confusion[true][predicted]`, like scikit-learn's
    /// `precision_recall_fscore_support` (a class never predicted, or never present, scores 0
    /// rather than undefined) with `average="macro"` over all classes; `top_k_accuracy` is
    /// passed in, since the matrix cannot tell it.
    pub fn from_confusion(
        confusion: &[Vec<usize>],
        names: &[String],
        top_k: usize,
        top_k_accuracy: f64,
    ) -> Scores {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassScores> = (0..confusion.len())
            .map(|c| {
                let tp = confusion[c][c];
                let support: usize = confusion[c].iter().sum();
                let predicted: usize = confusion.iter().map(|row| row[c]).sum();
                let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    class: names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let mean = |f: fn(&ClassScores) -> f64| {
            per_class.iter().map(f).sum::<f64>() / per_class.len().max(1) as f64
        };
        Scores {
            macro_precision: mean(|c| c.precision),
            macro_recall: mean(|c| c.recall),
            macro_f1: mean(|c| c.f1),
            per_class,
            top_k,
            top_k_accuracy,
        }
    }

    /// The scores as an aligned table, one row per class and the macro averages.
    pub fn table(&self) -> String {
        let width = self
            .per_class
            .iter()
            .map(|c| c.class.chars().count())
            .max()
            .unwrap_or(5)
            .clamp(5, 16);
        let mut out = format!("{:>width$}  precision  recall     f1  support\n", "class");
        for c in &self.per_class {
            let name: String = c.class.chars().take(width).collect();
            out.push_str(&format!(
                "{name:>width$}  {:9.4}  {:6.4}  {:.4}  {:7}\n",
                c.precision, c.recall, c.f1, c.support
            ));
        }
        let support: usize = self.per_class.iter().map(|c| c.support).sum();
        out.push_str(&format!(
            "{:>width$}  {:9.4}  {:6.4}  {:.4}  {support:7}\n",
            "macro", self.macro_precision, self.macro_recall, self.macro_f1
        ));
        out.push_str(&format!(
            "top-{} accuracy {:.2}%\n",
            self.top_k,
            self.top_k_accuracy * 100.0
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from scikit-learn: `precision_recall_fscore_support(y, p)` with
    /// y = [0,0,0,1,1,2,2,2,2], p = [0,0,1,1,2,2,2,2,0].
    #[test]
    fn scores_match_scikit_learn() {
        let confusion = vec![vec![2, 1, 0], vec![0, 1, 1], vec![1, 0, 3]];
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let s = Scores::from_confusion(&confusion, &names, 2, 0.5);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let p = [2.0 / 3.0, 0.5, 0.75];
        let r = [2.0 / 3.0, 0.5, 0.75];
        for (c, (p, r)) in s.per_class.iter().zip(p.iter().zip(&r)) {
            assert!(close(c.precision, *p) && close(c.recall, *r), "{c:?}");
            assert!(close(c.f1, 2.0 * p * r / (p + r)));
        }
        assert_eq!(
            s.per_class.iter().map(|c| c.support).collect::<Vec<_>>(),
            [3, 2, 4]
        );
        assert!(close(s.macro_precision, (2.0 / 3.0 + 0.5 + 0.75) / 3.0));
        assert!(close(s.macro_f1, (2.0 / 3.0 + 0.5 + 0.75) / 3.0));
        // A class that is never predicted has precision 0, not NaN.
        let s = Scores::from_confusion(&[vec![1, 0], vec![1, 0]], &names[..2], 1, 0.5);
        assert_eq!((s.per_class[1].precision, s.per_class[1].f1), (0.0, 0.0));
        assert!(close(s.per_class[0].precision, 0.5));
        assert!(s.table().contains("macro"));
    }
}
