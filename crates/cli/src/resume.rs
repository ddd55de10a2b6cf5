//! `train --resume DIR`: continuing a saved run exactly where it stopped. The run keeps its
//! own settings (model, optimizer, schedule resolved for its planned length, split, seed,
//! data set and data folder), so a resumed run reaches the same weights, bit for bit, as one
//! that never stopped; flags given with values other than the run's are refused, each by name
//! with both values. `--epochs` beyond the planned total extends the run, and says what the
//! schedule does then.

use std::path::Path;

use ferrograd_nn::{LrSchedule, Schedule};

use crate::cli::TrainArgs;
use crate::console::say;
use crate::error::{CliError, Result};
use crate::run_config::RunConfig;
use crate::run_folder::{self, SavedRun};

/// Flags that may accompany `--resume`: they say how and where to run, how to watch it and
/// when to stop it early, not what each epoch trains. `--dataset` and `--out` are accepted
/// when they name the run's own data set and folder. Early stopping replays the run's metrics,
/// so its best epoch carries over. `--skip-bad-files` only decides whether a bad file stops
/// the run, `--workers` and `--max-memory` how images are decoded and whether they are
/// streamed: the samples are the same either way.
const COMPATIBLE_FLAGS: [&str; 18] = [
    "--resume",
    "--epochs",
    "--threads",
    "--mode",
    "--data-dir",
    "--download",
    "--dataset",
    "--out",
    "--detect-anomaly",
    "--early-stopping",
    "--monitor",
    "--min-delta",
    "--tensorboard",
    "--tui",
    "--no-tui",
    "--skip-bad-files",
    "--workers",
    "--max-memory",
];

/// A run-defining flag's value as given and as the run has it (both as `config.json` writes
/// them); `None` for a flag this does not know, which is then refused.
fn compare(flag: &str, args: &TrainArgs, cfg: &RunConfig) -> Option<(String, String)> {
    let t = &cfg.training;
    let pair = |given: String, saved: String| Some((given, saved));
    let list = |v: &[usize]| {
        v.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let opt = |v: Option<f64>| v.map_or("none".to_string(), |v| v.to_string());
    match flag {
        "--model" => pair(args.model.name().into(), cfg.model.clone()),
        "--hidden" => pair(list(&args.hidden.0), list(&cfg.hidden)),
        "--filters" => pair(
            list(args.filters.as_ref().map_or(&[][..], |c| &c.0)),
            list(&cfg.channels),
        ),
        "--channels" => pair(args.own.channels.to_string(), cfg.image[0].to_string()),
        "--image-size" => {
            let [h, w] = args.own.image_size.0;
            pair(
                format!("{h}x{w}"),
                format!("{}x{}", cfg.image[1], cfg.image[2]),
            )
        }
        "--target" => pair(
            args.own.target.clone().unwrap_or_else(|| "none".into()),
            cfg.table
                .as_ref()
                .map_or_else(|| "none".into(), |t| t.target.clone()),
        ),
        "--test-fraction" => pair(
            args.own.test_fraction.to_string(),
            t.test_fraction.to_string(),
        ),
        "--augment" => pair(args.augment.to_string(), t.augment.to_string()),
        "--activation" => pair(args.activation.to_string(), cfg.activation.clone()),
        "--dropout" => pair(args.dropout.to_string(), cfg.dropout.to_string()),
        "--optimizer" => pair(
            args.optimizer.map_or("default".into(), |o| o.name().into()),
            t.optimizer.clone(),
        ),
        "--lr" => pair(opt(args.lr), t.lr.to_string()),
        "--momentum" => pair(opt(args.momentum), t.momentum.to_string()),
        "--nesterov" => pair(args.nesterov.to_string(), t.nesterov.to_string()),
        "--weight-decay" => pair(opt(args.weight_decay), t.weight_decay.to_string()),
        "--schedule" => pair(
            args.schedule.with_epochs(t.epochs).to_string(),
            t.schedule.clone(),
        ),
        "--warmup" => pair(args.warmup.to_string(), t.warmup.to_string()),
        "--clip-grad" => pair(opt(args.clip_grad), opt(t.clip_grad)),
        "--label-smoothing" => pair(
            args.label_smoothing.to_string(),
            t.label_smoothing.to_string(),
        ),
        "--batch-size" => pair(args.batch_size.to_string(), t.batch_size.to_string()),
        "--val-fraction" => pair(args.val_fraction.to_string(), t.val_fraction.to_string()),
        "--seed" => pair(args.seed.to_string(), t.seed.to_string()),
        _ => None,
    }
}

/// The learning-rate schedule of a run, from its config.
pub fn schedule(cfg: &RunConfig) -> Result<LrSchedule> {
    let t = &cfg.training;
    Ok(LrSchedule {
        base_lr: t.lr,
        schedule: t.schedule.parse::<Schedule>()?.with_epochs(t.epochs),
        warmup: t.warmup,
    })
}

/// Opens the run in `dir` for continuing: checks the flags against it, puts back a
/// checkpoint switch that a crash interrupted, reads the checkpoint, and sets the total
/// epochs to reach. Returns the config (with that total) and the saved files.
pub fn open(args: &TrainArgs, dir: &Path) -> Result<(RunConfig, SavedRun)> {
    if !dir.is_dir() {
        return Err(CliError::Flag {
            flag: "--resume",
            msg: format!("{}: no such folder", dir.display()),
        });
    }
    let given = |flag: &str| args.given.iter().any(|g| g == flag);
    if given("--out") && std::path::absolute(&args.out).ok() != std::path::absolute(dir).ok() {
        return Err(CliError::Flag {
            flag: "--out",
            msg: format!(
                "--resume {} continues the run in its own folder; leave out --out {} (copy the folder first to continue a copy)",
                dir.display(),
                args.out.display()
            ),
        });
    }
    run_folder::check_writable("--resume", dir)?;
    run_folder::clean_leftovers(dir)?;
    let saved = SavedRun::read(dir)?;
    let mut cfg = saved.config()?;
    let conflicting: Vec<String> = args
        .given
        .iter()
        .filter(|f| !COMPATIBLE_FLAGS.contains(&f.as_str()))
        .filter_map(|f| match compare(f, args, &cfg) {
            Some((given, saved)) if given == saved => None,
            Some((given, saved)) => Some(format!("{f} {given} (the run has {saved})")),
            None => Some(f.clone()),
        })
        .collect();
    if !conflicting.is_empty() {
        return Err(CliError::Flag {
            flag: "--resume",
            msg: format!(
                "{} would change the run being continued, which keeps the settings it was started with; leave {} out, or start a new run with another --out",
                conflicting.join(", "),
                if conflicting.len() == 1 { "it" } else { "them" }
            ),
        });
    }
    if given("--dataset") && cfg.dataset != args.dataset.to_string() {
        return Err(CliError::Flag {
            flag: "--dataset",
            msg: format!(
                "the run in {} was trained on {}, not {} (leave --dataset out to continue it on {})",
                dir.display(),
                cfg.dataset,
                args.dataset,
                cfg.dataset
            ),
        });
    }
    // Configs written before schedules were stored resolved: resolve for the planned length.
    let planned = cfg.training.epochs;
    cfg.training.schedule = schedule(&cfg)?.schedule.to_string();
    let done = cfg.training.epochs_done;
    let target = if given("--epochs") {
        args.epochs
    } else {
        planned.max(done)
    };
    if target < done {
        return Err(CliError::Flag {
            flag: "--epochs",
            msg: format!(
                "the run in {} has already trained {done} epochs; give a total above {done} to train more",
                dir.display()
            ),
        });
    }
    if target > planned && target > done {
        let sched = schedule(&cfg)?;
        let next = planned.max(done);
        let lr = sched.lr_at(next);
        if lr <= 0.0 {
            return Err(CliError::Flag {
                flag: "--epochs",
                msg: format!(
                    "the run was planned for {planned} epochs and its schedule ({}) has reached a learning rate of 0, so more epochs would not change the weights; start a new run with --epochs {target} instead",
                    cfg.training.schedule
                ),
            });
        }
        say!(
            "extending the run from {planned} to {target} epochs: the schedule ({}) stays as planned for {planned} epochs and continues from there (learning rate {lr:.3e} in epoch {})",
            cfg.training.schedule,
            next + 1
        );
    } else if target == done {
        say!(
            "the run in {} has already trained {done} epochs: nothing to train",
            dir.display()
        );
    }
    cfg.training.epochs = target;
    Ok((cfg, saved))
}
