//! Early stopping in `ferrograd train` and the best checkpoint: which epochs improve the
//! monitored quantity (`ferrograd_nn::EarlyStopping`), and which checkpoint `eval`, `predict`
//! and `summary` load (the best epoch's set `best/` in the run folder, written like the last
//! one by `run_folder`, or the last).

use std::path::Path;

use ferrograd_nn::{EarlyStopping, Goal, Verdict};

use crate::cli::{CheckpointChoice, Monitor};
use crate::error::Result;
use crate::metrics::EpochMetrics;
use crate::run_folder::SavedRun;

/// The saved run to load for `choice` from the run folder (or set folder) `dir`, and a line
/// saying which checkpoint it is. `best` falls back to the last checkpoint when the run kept
/// no best one.
pub fn resolve_checkpoint(dir: &Path, choice: CheckpointChoice) -> Result<(SavedRun, String)> {
    let best = match choice {
        CheckpointChoice::Best => SavedRun::read_best(dir)?,
        CheckpointChoice::Last => None,
    };
    if let Some(best) = best {
        let epoch = best.config()?.training.epochs_done;
        let last = SavedRun::read(dir)
            .and_then(|r| r.config())
            .map(|c| format!(", the last is epoch {}", c.training.epochs_done))
            .unwrap_or_default();
        let line = format!(
            "loaded the best checkpoint {} (epoch {epoch}{last})",
            best.folder().display()
        );
        return Ok((best, line));
    }
    let last = SavedRun::read(dir)?;
    let epoch = last.config()?.training.epochs_done;
    let why = if choice == CheckpointChoice::Best {
        " (no best checkpoint: the run did not use --early-stopping)"
    } else {
        ""
    };
    let line = format!(
        "loaded the last checkpoint {} (epoch {epoch}){why}",
        last.folder().display()
    );
    Ok((last, line))
}

/// Early stopping during training, on one monitored quantity.
pub struct Watch {
    stopping: EarlyStopping,
    monitor: Monitor,
}

impl Watch {
    /// Early stopping with `patience`, replaying the epochs of a resumed run's `history` so
    /// the best epoch and the count of epochs without improvement carry over.
    pub fn new(
        patience: usize,
        min_delta: f64,
        monitor: Monitor,
        history: &[EpochMetrics],
    ) -> Watch {
        let goal = match monitor {
            Monitor::ValLoss => Goal::Minimize,
            Monitor::ValAccuracy => Goal::Maximize,
        };
        let mut watch = Watch {
            stopping: EarlyStopping::new(patience, min_delta, goal),
            monitor,
        };
        for m in history {
            watch.update(m);
        }
        watch
    }

    /// Records a finished epoch.
    pub fn update(&mut self, m: &EpochMetrics) -> Verdict {
        let value = match self.monitor {
            Monitor::ValLoss => m.val_loss,
            Monitor::ValAccuracy => m.val_accuracy,
        };
        self.stopping.update(m.epoch, value)
    }

    /// The best epoch and its value so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.stopping.best()
    }

    /// The monitored quantity.
    pub fn monitor(&self) -> Monitor {
        self.monitor
    }

    /// The patience.
    pub fn patience(&self) -> usize {
        self.stopping.patience()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, val_loss: f64, val_accuracy: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            lr: 0.1,
            train_loss: 1.0,
            train_accuracy: 0.5,
            val_loss,
            val_accuracy,
            samples_per_s: 1.0,
            seconds: 1.0,
            data_wait_seconds: 0.0,
        }
    }

    /// A scripted validation curve: the loss improves until epoch 4, then rises; with
    /// patience 3 training stops after epoch 7 and epoch 4 is the best. Resuming after
    /// epoch 5 carries the best epoch and the count over.
    #[test]
    fn a_scripted_curve_stops_at_the_right_epoch_even_across_a_resume() {
        let losses = [0.9, 0.7, 0.6, 0.5, 0.55, 0.52, 0.51, 0.4];
        let curve: Vec<EpochMetrics> = losses
            .iter()
            .enumerate()
            .map(|(i, &l)| epoch(i + 1, l, 1.0 - l))
            .collect();
        let mut watch = Watch::new(3, 0.0, Monitor::ValLoss, &[]);
        let verdicts: Vec<Verdict> = curve[..7].iter().map(|m| watch.update(m)).collect();
        let stop = verdicts.iter().position(|v| v.stop).map(|i| i + 1);
        assert_eq!(stop, Some(7));
        assert_eq!(watch.best(), Some((4, 0.5)));
        let improved: Vec<usize> = (0..7)
            .filter(|&i| verdicts[i].improved)
            .map(|i| i + 1)
            .collect();
        assert_eq!(improved, [1, 2, 3, 4]);

        let mut resumed = Watch::new(3, 0.0, Monitor::ValLoss, &curve[..5]);
        assert_eq!(resumed.best(), Some((4, 0.5)));
        assert!(!resumed.update(&curve[5]).stop);
        assert!(resumed.update(&curve[6]).stop);

        // Monitored by accuracy (1 - loss here) the same curve gives the same epochs; with a
        // minimum change of 0.25 only epochs 1 and 3 count, so it stops after epoch 6.
        let mut by_accuracy = Watch::new(3, 0.0, Monitor::ValAccuracy, &[]);
        let stop = curve
            .iter()
            .position(|m| by_accuracy.update(m).stop)
            .map(|i| i + 1);
        assert_eq!((stop, by_accuracy.best().map(|b| b.0)), (Some(7), Some(4)));
        let mut coarse = Watch::new(3, 0.25, Monitor::ValLoss, &[]);
        let stop = curve
            .iter()
            .position(|m| coarse.update(m).stop)
            .map(|i| i + 1);
        assert_eq!((stop, coarse.best().map(|b| b.0)), (Some(6), Some(3)));
    }

    #[test]
    fn resolving_a_run_without_a_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_checkpoint(dir.path(), CheckpointChoice::Best)
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkpoint"), "{err}");
    }
}
