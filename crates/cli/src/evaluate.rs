//! Scoring a model on a data set: mean loss, accuracy, top-k accuracy, per-sample predictions,
//! the confusion matrix and the per-class scores drawn from it; and the `ferrograd eval`
//! command, which scores the best checkpoint of a run unless told otherwise.

use std::sync::Arc;

use ferrograd_core::{ThreadPool, no_grad};
use ferrograd_data::{DataSource, DatasetKind, Loader, load};
use ferrograd_nn::Module;

use crate::cli::EvalArgs;
use crate::console::{note, say, text};
use crate::early_stopping::resolve_checkpoint;
use crate::error::{CliError, Result};
use crate::metrics::Scores;
use crate::run_config::CONFIG_FILE;
use crate::train::check_data_fits;

/// The outcome of scoring a model on a data set.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Predicted class of each sample, in data set order.
    pub predictions: Vec<usize>,
    /// For each sample, how many classes scored strictly higher than its true class (0: the
    /// true class is the top prediction).
    pub true_ranks: Vec<usize>,
}

/// The k of the top-k accuracy reported unless told otherwise.
pub const DEFAULT_TOP_K: usize = 5;

impl Evaluation {
    /// The fraction of samples whose true class is among the `k` highest scores.
    pub fn top_k_accuracy(&self, k: usize) -> f64 {
        let hits = self.true_ranks.iter().filter(|&&r| r < k).count();
        hits as f64 / self.true_ranks.len().max(1) as f64
    }

    /// Per-class precision, recall and F1 with macro averages, and the top-`k` accuracy (`k`
    /// at most the number of classes).
    pub fn scores(&self, names: &[String], k: usize) -> Scores {
        let k = k.min(self.confusion.len()).max(1);
        Scores::from_confusion(&self.confusion, names, k, self.top_k_accuracy(k))
    }
}

/// Runs the model over the loader's samples in order, without recording gradients.
pub fn evaluate(model: &dyn Module, loader: &Loader, classes: usize) -> Result<Evaluation> {
    let _guard = no_grad();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut loss_sum, mut n) = (0.0, 0usize);
    let mut predictions = Vec::with_capacity(loader.len());
    let mut true_ranks = Vec::with_capacity(loader.len());
    for batch in loader.sequential() {
        let batch = batch?;
        let logits = model.forward(&batch.x)?;
        let losses = logits.softmax_cross_entropy(&batch.y)?;
        loss_sum += losses.sum_all()?.item()?;
        let pred = logits.argmax(-1, false)?.to_vec::<i64>()?;
        let scores = logits.to_vec::<f32>()?;
        let labels = batch.y.to_vec::<i64>()?;
        for ((&p, &label), row) in pred.iter().zip(&labels).zip(scores.chunks(classes.max(1))) {
            confusion[label as usize][p as usize] += 1;
            predictions.push(p as usize);
            let own = row[label as usize];
            true_ranks.push(row.iter().filter(|&&v| v > own).count());
        }
        n += batch.indices.len();
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    Ok(Evaluation {
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
        predictions,
        true_ranks,
    })
}

/// The confusion matrix as aligned text, rows = true class, columns = predicted class.
pub fn confusion_table(confusion: &[Vec<usize>], names: &[String]) -> String {
    let width = confusion
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    let label_width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1)
        .min(12);
    let short = |s: &str| s.chars().take(label_width).collect::<String>();
    let mut out = format!("{:>label_width$}  predicted ->\n", "true");
    out.push_str(&format!("{:>label_width$}", ""));
    for c in 0..confusion.len() {
        out.push_str(&format!(" {c:>width$}"));
    }
    out.push('\n');
    for (i, row) in confusion.iter().enumerate() {
        let name = names.get(i).map_or_else(|| i.to_string(), |n| short(n));
        out.push_str(&format!("{name:>label_width$}"));
        for v in row {
            out.push_str(&format!(" {v:>width$}"));
        }
        out.push('\n');
    }
    out
}

/// `ferrograd eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    let pool = ThreadPool::flushing_denormals(args.threads.unwrap_or_else(default_threads))?;
    pool.install(|| {
        let (saved, loaded) = resolve_checkpoint(&args.model, args.checkpoint)?;
        say!("{loaded}");
        let cfg = saved.config()?;
        let model = saved.model(&cfg)?;
        if args.dataset.is_none() && (cfg.dataset == "folder" || cfg.dataset == "csv") {
            return Err(CliError::Flag {
                flag: "--model",
                msg: format!(
                    "{} was trained on its own {} data: eval scores the known data sets; its test score is in summary.json, and `ferrograd predict` classifies new files",
                    args.model.display(),
                    cfg.dataset
                ),
            });
        }
        let config_path = saved.folder().join(CONFIG_FILE);
        let kind = match args.dataset {
            Some(k) => k,
            None => cfg
                .dataset
                .parse()
                .map_err(|e: ferrograd_data::DataError| CliError::file(&config_path, e.to_string()))?,
        };
        let trained_on = cfg.dataset.parse::<DatasetKind>().ok();
        // The folder the model was trained from, unless the data set or folder is given.
        let data_dir = match (&args.data.data_dir, trained_on == Some(kind)) {
            (Some(dir), _) => Some(dir.clone()),
            (None, true) => cfg.data_dir.clone(),
            (None, false) => None,
        };
        let (_, test) = load(kind, &DataSource::new(data_dir, args.data.download))?;
        check_data_fits(
            &cfg,
            [test.channels, test.height, test.width],
            test.num_classes(),
            kind.name(),
        )?;
        if trained_on != Some(kind) {
            note!(
                "warning: the model in {} was trained on {}; scoring it on {kind}, whose classes mean something else",
                args.model.display(),
                cfg.dataset
            );
        }
        let loader = Loader::new(Arc::new(test), cfg.loader_config(args.batch_size, 0, false))?;
        let eval = evaluate(&model, &loader, cfg.output)?;
        say!(
            "{kind} test: accuracy {:.2}%  loss {:.4}  ({} samples)",
            eval.accuracy * 100.0,
            eval.loss,
            eval.predictions.len()
        );
        text(&confusion_table(&eval.confusion, &cfg.class_names));
        text(&eval.scores(&cfg.class_names, args.top_k).table());
        Ok(())
    })
}

/// All available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
