//! The run folder (`--out`) and the saved run in it. A run's checkpoint is the file set
//! `DIR/checkpoint/` (see `ferrograd_io::fileset`): model, optimizer state, config and metrics,
//! replaced as a whole after every epoch; the last save of a run adds the summary, the charts
//! and the sample logits, so every file in the set belongs to the same model. With early
//! stopping, the best epoch's checkpoint is a second set, `DIR/best/`, written the same way;
//! TensorBoard's event files lie directly in `DIR`, and so does `summary.json`, a link to the
//! checkpoint set's summary (so it always belongs to the current checkpoint). This module
//! checks the folder before any training, refuses to mix a new run into an old one, cleans up
//! what a crash left, and reads a saved run for `eval`, `predict` and `--resume` (a run folder,
//! a set's own folder such as `DIR/checkpoint`, or a folder of the flat layout written before
//! checkpoints were sets).

use std::path::{Path, PathBuf};

use ferrograd_core::Tensor;
use ferrograd_io::fileset;
use ferrograd_nn::Sequential;

use crate::error::{CliError, Result};
use crate::metrics::{EpochMetrics, METRICS_FILE, SUMMARY_FILE};
use crate::output::parse_json_lines;
use crate::run_config::{CONFIG_FILE, RunConfig, parse_tensors};

/// The name of the checkpoint set inside a run folder.
pub const CHECKPOINT: &str = "checkpoint";

/// The name of the best epoch's checkpoint set inside a run folder (kept with early stopping).
pub const BEST: &str = "best";

/// The files of the flat layout (everything directly in the run folder), read for
/// compatibility and removed by `--overwrite`.
const FLAT_FILES: [&str; 8] = [
    "model.safetensors",
    "optimizer.safetensors",
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    "curves.png",
    "confusion.png",
    "sample_logits.safetensors",
];

fn folder_error(flag: &'static str, dir: &Path, msg: impl Into<String>) -> CliError {
    CliError::Flag {
        flag,
        msg: format!("{}: {}", dir.display(), msg.into()),
    }
}

/// Checks that `dir` (given with `flag`) is, or can become, a writable folder (creating it),
/// before any training.
pub fn check_writable(flag: &'static str, dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(folder_error(flag, dir, "is a file, not a folder"));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| folder_error(flag, dir, format!("the folder cannot be created: {e}")))?;
    ferrograd_io::TempFile::create_beside(&dir.join("write-test")).map_err(|e| {
        folder_error(
            flag,
            dir,
            format!("the folder is not writable: {}", e.source),
        )
    })?;
    Ok(())
}

/// Puts back a checkpoint switch that a crash interrupted and removes temporary files left in
/// `dir`.
pub fn clean_leftovers(dir: &Path) -> Result<()> {
    fileset::recover(dir, CHECKPOINT)?;
    fileset::recover(dir, BEST)?;
    fileset::remove_temporaries(dir)?;
    Ok(())
}

/// Whether `dir` holds a saved run (a checkpoint set, a best set, or the flat layout).
pub fn holds_run(dir: &Path) -> bool {
    fileset::has_set(dir, CHECKPOINT)
        || fileset::has_set(dir, BEST)
        || dir.join(CONFIG_FILE).is_file()
}

/// Prepares `out` for a new run: a writable folder without leftovers, holding no other run
/// unless `overwrite` (which removes that run's files first, so nothing of it stays beside
/// the new one). TensorBoard event files without a saved run (from a run stopped before
/// its first checkpoint) are removed too. Returns whether a previous run was removed.
pub fn prepare_new_run(out: &Path, overwrite: bool) -> Result<bool> {
    check_writable("--out", out)?;
    clean_leftovers(out)?;
    if !holds_run(out) {
        crate::tensorboard::remove_stale(out)?;
        return Ok(false);
    }
    if !overwrite {
        let what = SavedRun::read(out)
            .and_then(|r| r.config())
            .map(|c| {
                format!(
                    "a run of {} on {} ({} epochs done)",
                    c.model, c.dataset, c.training.epochs_done
                )
            })
            .unwrap_or_else(|_| "a run".to_string());
        return Err(folder_error(
            "--out",
            out,
            format!(
                "already holds {what}; pass --overwrite to replace it, --resume {} to continue it, or choose another --out",
                out.display()
            ),
        ));
    }
    fileset::remove_set(out, CHECKPOINT)?;
    fileset::remove_set(out, BEST)?;
    remove_flat_files(out)?;
    crate::tensorboard::remove_stale(out)?;
    Ok(true)
}

/// Removes the files of the flat layout from `dir` (not the link to the set's summary).
fn remove_flat_files(dir: &Path) -> Result<()> {
    for file in FLAT_FILES {
        let path = dir.join(file);
        if path.is_file() && !path.is_symlink() {
            std::fs::remove_file(&path).map_err(|e| CliError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Saves `files` as the run's checkpoint set in `out`, replacing the previous one as a whole.
/// A run resumed from the flat layout loses its flat files once the set supersedes them, so
/// no stale copy stays beside it.
pub fn save(out: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    fileset::write_set(out, CHECKPOINT, files)?;
    remove_flat_files(out)?;
    link_summary(out)
}

/// Makes `DIR/summary.json` a relative link to `checkpoint/summary.json`, where users and
/// scripts look for a run's figures first. The link follows the set through every switch, so
/// it never shows another checkpoint's summary; it dangles while the set has none (a run in
/// progress).
fn link_summary(out: &Path) -> Result<()> {
    let link = out.join(SUMMARY_FILE);
    if link.is_symlink() || link.exists() {
        return Ok(());
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(Path::new(CHECKPOINT).join(SUMMARY_FILE), &link)
        .map_err(|e| CliError::io(&link, e))?;
    Ok(())
}

/// Saves `files` as the run's best checkpoint set in `out`, replacing the previous best one
/// as a whole.
pub fn save_best(out: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    fileset::write_set(out, BEST, files)?;
    Ok(())
}

/// A saved run as read from disk: the checkpoint set (checked against its manifest) or the
/// files of the flat layout.
#[derive(Debug)]
pub struct SavedRun {
    folder: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

impl SavedRun {
    /// Reads the saved run in `dir`: `dir/checkpoint/`, `dir` itself when it is a set's folder,
    /// or the flat layout.
    pub fn read(dir: &Path) -> Result<SavedRun> {
        let set = match fileset::read_set(dir, CHECKPOINT)? {
            Some(set) => Some(set),
            None if dir.join(fileset::MANIFEST).is_file() => Some(fileset::read_folder(dir)?),
            None => None,
        };
        if let Some(set) = set {
            return Ok(SavedRun {
                folder: set.dir,
                files: set.files,
            });
        }
        if !dir.join(CONFIG_FILE).is_file() {
            return Err(CliError::file(
                dir.join(CHECKPOINT),
                format!(
                    "not found (nor {CONFIG_FILE}): is this the --out folder of `ferrograd train`?"
                ),
            ));
        }
        let mut files = Vec::new();
        for name in FLAT_FILES {
            let path = dir.join(name);
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(|e| CliError::io(&path, e))?;
                files.push((name.to_string(), bytes));
            }
        }
        Ok(SavedRun {
            folder: dir.to_path_buf(),
            files,
        })
    }

    /// Reads the best checkpoint set in the run folder `dir`, `None` when the run kept none.
    pub fn read_best(dir: &Path) -> Result<Option<SavedRun>> {
        Ok(fileset::read_set(dir, BEST)?.map(|set| SavedRun {
            folder: set.dir,
            files: set.files,
        }))
    }

    /// The folder the files were read from.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The content of `name`, `None` when the run has no such file.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    fn require(&self, name: &str) -> Result<&[u8]> {
        self.get(name).ok_or_else(|| {
            CliError::file(
                self.folder.join(name),
                "not found: the checkpoint is incomplete",
            )
        })
    }

    /// The run's `config.json`, checked.
    pub fn config(&self) -> Result<RunConfig> {
        let path = self.folder.join(CONFIG_FILE);
        let text = std::str::from_utf8(self.require(CONFIG_FILE)?)
            .map_err(|_| CliError::file(&path, "not UTF-8 text"))?;
        RunConfig::from_json(&path, text)
    }

    /// The named tensors of a safetensors file of the run.
    pub fn tensors(&self, name: &str) -> Result<Vec<(String, Tensor)>> {
        parse_tensors(&self.folder.join(name), self.require(name)?)
    }

    /// The network described by `cfg` with the saved weights (all finite).
    pub fn model(&self, cfg: &RunConfig) -> Result<Sequential> {
        let file = crate::run_config::MODEL_FILE;
        cfg.load_model(&self.folder.join(file), &self.tensors(file)?)
    }

    /// The rows of `metrics.jsonl` (none when the run has no such file).
    pub fn metrics(&self) -> Result<Vec<EpochMetrics>> {
        let path = self.folder.join(METRICS_FILE);
        match self.get(METRICS_FILE) {
            None => Ok(Vec::new()),
            Some(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| CliError::file(&path, "not UTF-8 text"))?;
                parse_json_lines(&path, text)
            }
        }
    }
}
