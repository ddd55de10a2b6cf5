//! Early stopping in `ferrograd train` and the best checkpoint: which epochs improve the
//! monitored quantity (`ferrograd_nn::EarlyStopping`), where the best epoch's checkpoint lives
//! (`best/` inside the run folder, a complete checkpoint like the last one), and which
//! checkpoint `eval`, `predict` and `summary` load.

use std::path::{Path, PathBuf};

use ferrograd_nn::{EarlyStopping, Goal, Verdict};

use crate::cli::{CheckpointChoice, Monitor};
use crate::error::{CliError, Result};
use crate::metrics::EpochMetrics;
use crate::run_config::{CONFIG_FILE, RunConfig};

/// The folder, inside a run's folder, of the best epoch's checkpoint.
pub const BEST_DIR: &str = "best";

/// The folder to load a checkpoint from for `choice`, and a line saying which one it is.
/// `best` falls back to the last checkpoint when the run kept no best one.
pub fn resolve_checkpoint(dir: &Path, choice: CheckpointChoice) -> Result<(PathBuf, String)> {
    let best = dir.join(BEST_DIR);
    let epochs_done = |d: &Path| RunConfig::load(d).map(|c| c.training.epochs_done);
    if choice == CheckpointChoice::Best && best.join(CONFIG_FILE).exists() {
        let epoch = epochs_done(&best)?;
        let last = epochs_done(dir)
            .map(|e| format!(", the last is epoch {e}"))
            .unwrap_or_default();
        let line = format!(
            "loaded the best checkpoint {} (epoch {epoch}{last})",
            best.display()
        );
        return Ok((best, line));
    }
    let epoch = epochs_done(dir)?;
    let why = if choice == CheckpointChoice::Best {
        " (no best/ checkpoint: the run did not use --early-stopping)"
    } else {
        ""
    };
    Ok((
        dir.to_path_buf(),
        format!(
            "loaded the last checkpoint {} (epoch {epoch}){why}",
            dir.display()
        ),
    ))
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

/// Removes the best checkpoint a previous run left in `out`, so a new run's `eval` never
/// loads another run's weights.
pub fn remove_stale_best(out: &Path) -> Result<()> {
    let best = out.join(BEST_DIR);
    match std::fs::remove_dir_all(&best) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::io(best, e)),
    }
}
