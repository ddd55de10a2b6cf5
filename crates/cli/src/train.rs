//! `ferrograd train`: data preparation, model, loss, optimizer, the training loop (shown as
//! plain lines or the live view, stopped early or by Ctrl-C), evaluation, and the saved run:
//! after every epoch the checkpoint set (model, optimizer state, config, metrics), with early
//! stopping the best epoch's set too, at the end the checkpoint set with the summary, charts
//! and sample logits (see `run_folder`), and TensorBoard events. Training that diverges stops
//! with an error and keeps the last good checkpoint.

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use ferrograd_core::{Rng, Tensor, ThreadPool, detect_anomaly};
use ferrograd_data::{Loader, LoaderConfig, Samples};
use ferrograd_nn::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Module, Optimizer, RmsProp, RmsPropConfig,
    Sequential, Sgd, SgdConfig, TrainStep, named_params, named_state,
};

use crate::cli::{Mode, ModelKind, OptimizerKind, TrainArgs, parse_train_data};
use crate::console::{note, say, text};
use crate::early_stopping::Watch;
use crate::error::{CliError, Result};
use crate::evaluate::{DEFAULT_TOP_K, Evaluation, confusion_table, default_threads, evaluate};
use crate::metrics::{EpochMetrics, METRICS_FILE, SUMMARY_FILE, Summary};
use crate::output::{json, json_lines};
use crate::plot;
use crate::progress::{EpochNote, PlainView, StopFlag, View};
use crate::resume;
use crate::run_config::{
    CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, RunConfig, TrainingConfig, check_finite, tensor_bytes,
};
use crate::run_folder::{self, SavedRun};
use crate::tensorboard::{self, EventWriter};
use crate::training_data::{self, DataInfo, Split};

pub const CURVES_FILE: &str = "curves.png";
pub const CONFUSION_FILE: &str = "confusion.png";
pub const SAMPLE_FILE: &str = "sample_logits.safetensors";

pub(crate) fn build_optimizer(
    t: &TrainingConfig,
    params: Vec<(String, Tensor)>,
) -> Result<Box<dyn Optimizer>> {
    let kind = OptimizerKind::from_str_lenient(&t.optimizer).ok_or_else(|| CliError::Flag {
        flag: "--optimizer",
        msg: format!("unknown optimizer {:?}", t.optimizer),
    })?;
    let flag = |e: ferrograd_core::Error| CliError::Flag {
        flag: "--optimizer",
        msg: e.to_string(),
    };
    Ok(match kind {
        OptimizerKind::Sgd => Box::new(
            Sgd::new(
                params,
                SgdConfig {
                    lr: t.lr,
                    momentum: t.momentum,
                    nesterov: t.nesterov,
                    weight_decay: t.weight_decay,
                    ..Default::default()
                },
            )
            .map_err(flag)?,
        ),
        OptimizerKind::Adam | OptimizerKind::Adamw => Box::new(
            Adam::new(
                params,
                AdamConfig {
                    lr: t.lr,
                    weight_decay: t.weight_decay,
                    decoupled: kind == OptimizerKind::Adamw,
                    ..Default::default()
                },
            )
            .map_err(flag)?,
        ),
        OptimizerKind::Rmsprop => Box::new(
            RmsProp::new(
                params,
                RmsPropConfig {
                    lr: t.lr,
                    momentum: t.momentum,
                    weight_decay: t.weight_decay,
                    ..Default::default()
                },
            )
            .map_err(flag)?,
        ),
        OptimizerKind::Adagrad => Box::new(
            Adagrad::new(
                params,
                AdagradConfig {
                    lr: t.lr,
                    weight_decay: t.weight_decay,
                    ..Default::default()
                },
            )
            .map_err(flag)?,
        ),
    })
}

impl OptimizerKind {
    fn from_str_lenient(s: &str) -> Option<OptimizerKind> {
        <OptimizerKind as clap::ValueEnum>::from_str(s, true).ok()
    }
}

/// The run being trained: its config, model, optimizer and history. The optimizer sits in a
/// `RefCell` so that the training step can update it while the run is also read (schedules,
/// checkpoints).
pub(crate) struct Run {
    cfg: RunConfig,
    model: Sequential,
    optimizer: RefCell<Box<dyn Optimizer>>,
    history: Vec<EpochMetrics>,
}

fn new_run(args: &TrainArgs, data: &DataInfo) -> Result<Run> {
    let cfg = RunConfig::describe(args, data);
    let model = cfg
        .build(&mut Rng::new(args.seed))
        .map_err(|e| CliError::Flag {
            flag: "--model",
            msg: format!("{} on {}: {e}", cfg.model, args.dataset),
        })?;
    let optimizer = build_optimizer(&cfg.training, named_params(&model))?;
    Ok(Run {
        cfg,
        model,
        optimizer: RefCell::new(optimizer),
        history: Vec::new(),
    })
}

/// The data flags of a resumed run: the run's own data set, model, augmentation and table
/// target, read from the folder given with --data-dir or else the one it was trained from;
/// how the data is read (--skip-bad-files, --workers, --max-memory) comes from `args`.
fn resumed_data_args(args: &TrainArgs, cfg: &RunConfig) -> Result<TrainArgs> {
    let mut data_args = args.clone();
    data_args.dataset =
        parse_train_data(&cfg.dataset).map_err(|e| CliError::file(CONFIG_FILE, e))?;
    data_args.data.data_dir = args.data.data_dir.clone().or(cfg.data_dir.clone());
    if let Some(model) = cfg.model_kind() {
        data_args.model = model;
    }
    data_args.augment = cfg.training.augment;
    if let Some(table) = &cfg.table {
        data_args.own.target = Some(table.target.clone());
    }
    Ok(data_args)
}

/// The run saved in `saved`, continued with `cfg` (its config with the total epochs to reach).
pub(crate) fn resume_run(cfg: RunConfig, saved: &SavedRun) -> Result<Run> {
    let model = saved.model(&cfg)?;
    model.set_training(true);
    let mut optimizer = build_optimizer(&cfg.training, named_params(&model))?;
    let state = saved.tensors(OPTIMIZER_FILE)?;
    let opt_path = saved.folder().join(OPTIMIZER_FILE);
    check_finite(&opt_path, &state)?;
    optimizer
        .load_state(&state)
        .map_err(|e| CliError::file(&opt_path, e.to_string()))?;
    // The metrics belong to the checkpoint's epochs; rows of later epochs (from a flat folder
    // written before checkpoints were sets) are dropped.
    let done = cfg.training.epochs_done;
    let mut history = saved.metrics()?;
    history.retain(|m| m.epoch <= done);
    Ok(Run {
        cfg,
        model,
        optimizer: RefCell::new(optimizer),
        history,
    })
}

/// How one pass over the training data ended.
struct EpochRun {
    loss: f64,
    accuracy: f64,
    samples: usize,
    /// Stopped by a stop request after this many batches.
    interrupted: Option<usize>,
    /// Seconds spent waiting for the loader's batches.
    wait: f64,
}

/// How an epoch of training ended.
enum EpochOutcome {
    /// The pass ran (to its end, or until a stop request).
    Trained(EpochRun),
    /// Training diverged: what was seen.
    Diverged(String),
}

/// A mean training loss this many times that of guessing uniformly (ln of the number of
/// classes) means the weights have blown up, not that the model is learning slowly.
const EXPLODED_LOSS_FACTOR: f64 = 10.0;

/// One pass over the training loader with the run's step (built once for the whole run, so a
/// static step is traced once per batch shape), reporting to `view` and checking `stop`
/// between batches. `lr_of_batch` gives the learning rate of each batch for schedules that
/// change within an epoch. Stops at the first non-finite batch loss.
fn train_epoch(
    step: &mut TrainStep<'_>,
    run: &Run,
    loader: &Loader,
    epoch: usize,
    view: &mut dyn View,
    stop: &StopFlag,
    lr_of_batch: &dyn Fn(usize) -> Option<f64>,
) -> Result<EpochOutcome> {
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0.0, 0usize);
    let mut batches = loader.epoch(epoch as u64);
    let (mut wait, mut i) = (0.0, 0usize);
    loop {
        if stop.raised() {
            return Ok(EpochOutcome::Trained(EpochRun {
                loss: loss_sum / seen.max(1) as f64,
                accuracy: correct / seen.max(1) as f64,
                samples: seen,
                interrupted: Some(i),
                wait,
            }));
        }
        let asked = Instant::now();
        let Some(batch) = batches.next() else { break };
        wait += asked.elapsed().as_secs_f64();
        if let Some(lr) = lr_of_batch(i) {
            run.optimizer.borrow_mut().set_learning_rate(lr);
        }
        let batch = batch?;
        let out = step.run(&batch.x, &batch.y)?;
        let b = batch.indices.len();
        let l = out[0].item()?;
        if !l.is_finite() {
            return Ok(EpochOutcome::Diverged(format!(
                "the loss became {l} in epoch {}",
                epoch + 1
            )));
        }
        loss_sum += l * b as f64;
        correct += ferrograd_nn::accuracy(&out[1], &batch.y)? * b as f64;
        seen += b;
        let lr = run.optimizer.borrow().learning_rate();
        view.batch(i + 1, seen, loss_sum / seen as f64, lr);
        i += 1;
    }
    Ok(EpochOutcome::Trained(EpochRun {
        loss: loss_sum / seen.max(1) as f64,
        accuracy: correct / seen.max(1) as f64,
        samples: seen,
        interrupted: None,
        wait,
    }))
}

/// Why an epoch's result is not a good checkpoint, if it is not: an exploding loss, or
/// weights that are no longer finite (non-finite gradients).
fn divergence(run: &Run, epoch: usize, train_loss: f64) -> Result<Option<String>> {
    let chance = (run.cfg.output.max(2) as f64).ln();
    if train_loss > EXPLODED_LOSS_FACTOR * chance {
        return Ok(Some(format!(
            "the mean training loss exploded to {train_loss:.4} in epoch {} (guessing uniformly among {} classes scores {chance:.4})",
            epoch + 1,
            run.cfg.output
        )));
    }
    if let Err(e) = check_finite(Path::new(MODEL_FILE), &named_state(&run.model)) {
        return Ok(Some(format!(
            "the weights became non-finite in epoch {} (non-finite gradients): {e}",
            epoch + 1
        )));
    }
    Ok(None)
}

/// The error that ends a diverged run, saying which checkpoint is kept.
fn diverged(reason: String, run: &Run, out: &Path) -> CliError {
    let kept = match run.cfg.training.epochs_done {
        0 => "no checkpoint was saved".to_string(),
        n => format!(
            "the last good checkpoint (epoch {n}) is kept in {}",
            out.join(run_folder::CHECKPOINT).display()
        ),
    };
    CliError::Flag {
        flag: "--lr",
        msg: format!("training diverged: {reason}; {kept}; try a smaller learning rate"),
    }
}

fn loader(
    data: Samples,
    cfg: &RunConfig,
    batch_size: usize,
    train: bool,
    workers: usize,
) -> Result<Loader> {
    let config = LoaderConfig {
        workers,
        ..cfg.loader_config(batch_size, cfg.training.seed, train)
    };
    Ok(Loader::from_samples(data, config)?)
}

/// The checkpoint's files: parameters and buffers, optimizer state, config, metrics.
fn checkpoint_files(run: &Run) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        (
            MODEL_FILE,
            tensor_bytes(MODEL_FILE, &named_state(&run.model))?,
        ),
        (
            OPTIMIZER_FILE,
            tensor_bytes(OPTIMIZER_FILE, &run.optimizer.borrow().state())?,
        ),
        (CONFIG_FILE, run.cfg.to_json()?.into_bytes()),
        (
            METRICS_FILE,
            json_lines(METRICS_FILE, &run.history)?.into_bytes(),
        ),
    ])
}

fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
    files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

/// Replaces the checkpoint set in `out` with `files`.
fn save(out: &Path, files: &[(&'static str, Vec<u8>)]) -> Result<()> {
    run_folder::save(out, &as_refs(files))
}

/// Replaces the best checkpoint set in `out` with `files` (the checkpoint of an epoch that
/// improved the monitored quantity).
fn save_best(out: &Path, files: &[(&'static str, Vec<u8>)]) -> Result<()> {
    run_folder::save_best(out, &as_refs(files))
}

/// A batch of test inputs with the model's logits, for checking the checkpoint in PyTorch.
fn sample_logits(run: &Run, test: &Loader) -> Result<Option<Vec<u8>>> {
    let _guard = ferrograd_core::no_grad();
    let Some(batch) = test.sequential().next() else {
        return Ok(None);
    };
    let batch = batch?;
    let n = batch.indices.len().min(16);
    let x = batch.x.narrow(0, 0, n)?.contiguous()?;
    let logits = run.model.forward(&x)?;
    tensor_bytes(
        SAMPLE_FILE,
        &[("inputs".to_string(), x), ("logits".to_string(), logits)],
    )
    .map(Some)
}

/// `ferrograd train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let threads = args.threads.unwrap_or_else(default_threads);
    let pool = ThreadPool::flushing_denormals(threads)?;
    pool.install(|| {
        let _anomaly = args.detect_anomaly.then(detect_anomaly);
        train(args, threads)
    })
}

/// Checks the flags of a new run that clap cannot check one by one.
fn check_new_run(args: &TrainArgs) -> Result<()> {
    if args.warmup >= args.epochs {
        return Err(CliError::Flag {
            flag: "--warmup",
            msg: format!(
                "{} warm-up epochs do not fit in a run of {} epochs (--epochs); use fewer than {}",
                args.warmup, args.epochs, args.epochs
            ),
        });
    }
    Ok(())
}

/// A random seed per (run seed, epoch), for the layers that draw in training (dropout).
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03)
}

fn train(args: &TrainArgs, threads: usize) -> Result<()> {
    // The output folder is checked (and a continued run read) before any data is loaded.
    let (resumed, out) = match &args.resume {
        Some(dir) => (Some(resume::open(args, dir)?), dir.clone()),
        None => {
            check_new_run(args)?;
            // The default folder, runs/latest, is replaced by each new run; a folder given
            // with --out only with --overwrite.
            let replace = args.overwrite || !args.given.iter().any(|g| g == "--out");
            if run_folder::prepare_new_run(&args.out, replace)? {
                say!("replacing the previous run in {}", args.out.display());
            }
            (None, args.out.clone())
        }
    };
    // A resumed run reads its own data (data set, table columns, image format) and keeps
    // its own split, so validation and test samples never leak into training; it finds its
    // data where it was trained unless --data-dir says otherwise.
    let (data_args, split) = match &resumed {
        Some((cfg, _)) => (
            resumed_data_args(args, cfg)?,
            Split {
                val_fraction: cfg.training.val_fraction,
                test_fraction: cfg.training.test_fraction,
                seed: cfg.training.seed,
                image: Some(cfg.image),
            },
        ),
        None => (
            args.clone(),
            Split {
                val_fraction: args.val_fraction,
                test_fraction: args.own.test_fraction,
                seed: args.seed,
                image: None,
            },
        ),
    };
    training_data::check_flags(&data_args)?;
    let dataset = data_args.dataset;
    let data = training_data::prepare(&data_args, split, threads)?;
    let mut run = match resumed {
        Some((cfg, saved)) => resume_run(cfg, &saved)?,
        None => new_run(args, &data.info)?,
    };
    if args.mode == Mode::Static && run.cfg.dropout > 0.0 {
        return Err(CliError::Flag {
            flag: "--mode",
            msg: "dropout draws new random masks at every step, which a traced graph would freeze; train with --mode eager, or without --dropout".into(),
        });
    }
    check_data_fits(
        &run.cfg,
        data.train.shape(),
        data.train.class_names().len(),
        &dataset.to_string(),
    )?;
    if run.cfg.table.is_some() && run.cfg.table != data.info.table {
        return Err(CliError::Flag {
            flag: "--resume",
            msg: "the checkpoint was trained on a table with other columns".into(),
        });
    }
    if args.early_stopping.is_some() && data.val.is_empty() {
        return Err(CliError::Flag {
            flag: "--early-stopping",
            msg: "needs a validation split to monitor; pass --val-fraction above 0".into(),
        });
    }
    let t = run.cfg.training.clone();
    let schedule = resume::schedule(&run.cfg)?;
    let classes = run.cfg.output;
    let summary = crate::summary::model_summary(&run.cfg, &run.model)?;
    let n_params = summary.params();
    say!(
        "ferrograd: {} on {} ({} train / {} val / {} test samples, {} features, {} classes), {} parameters, {} threads, {:?} mode",
        describe_model(&run.cfg),
        dataset,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.train.features(),
        classes,
        n_params,
        threads,
        args.mode
    );
    text(&crate::summary::table(&summary));
    if !data.skipped.is_empty() {
        note!(
            "skipped {} bad files or rows (--skip-bad-files):",
            data.skipped.len()
        );
        for s in data.skipped.iter().take(10) {
            note!("  {s}");
        }
        if data.skipped.len() > 10 {
            note!("  ... and {} more", data.skipped.len() - 10);
        }
    }
    let workers = if data.streamed {
        let workers = args.own.workers.unwrap_or(threads);
        say!(
            "the images do not fit in --max-memory {} MiB: streaming them from disk with {workers} worker threads",
            args.own.max_memory
        );
        workers
    } else {
        1
    };
    let train_loader = loader(data.train, &run.cfg, t.batch_size, true, workers)?;
    let val_loader = loader(data.val, &run.cfg, 512, false, workers)?;
    let test_loader = loader(data.test, &run.cfg, 512, false, workers)?;

    let out = out.as_path();
    let mut events = if args.tensorboard {
        Some(EventWriter::create(out)?)
    } else {
        None
    };
    let mut watch = args
        .early_stopping
        .map(|patience| Watch::new(patience, args.min_delta, args.monitor, &run.history));
    // A run stopped between saving its best epoch's checkpoint and its best set gets the
    // best set from the checkpoint, which is that epoch's.
    if let Some((best, _)) = watch.as_ref().and_then(|w| w.best())
        && best == t.epochs_done
        && SavedRun::read_best(out)?
            .map(|b| b.config())
            .transpose()?
            .is_none_or(|c| c.training.epochs_done != best)
    {
        save_best(out, &checkpoint_files(&run)?)?;
    }
    let stop = StopFlag::on_ctrl_c();
    let mut view = make_view(args, &run, stop.clone())?;
    let mut train_seconds: f64 = run.history.iter().map(|m| m.seconds).sum();
    let mut train_samples = 0usize;
    let mut epoch_seconds = 0.0;
    let mut stopped = None;
    let mut data_wait_seconds = 0.0;
    let mut step = TrainStep::new(
        &run.model,
        &run.optimizer,
        t.label_smoothing,
        t.clip_grad,
        args.mode == Mode::Static,
    );
    for epoch in t.epochs_done..t.epochs {
        // Plateau schedules read the validation losses (training losses without a
        // validation split) of the finished epochs.
        let monitored: Vec<f64> = run
            .history
            .iter()
            .map(|m| {
                if m.val_loss.is_finite() {
                    m.val_loss
                } else {
                    m.train_loss
                }
            })
            .collect();
        let batches = train_loader.num_batches();
        let lr = schedule.lr_at_batch(epoch, 0, batches, &monitored);
        run.optimizer.borrow_mut().set_learning_rate(lr);
        let per_batch = schedule.schedule.per_batch();
        let lr_of_batch =
            |b: usize| per_batch.then(|| schedule.lr_at_batch(epoch, b, batches, &monitored));
        run.model.set_training(true);
        run.model.reseed(epoch_seed(t.seed, epoch));
        view.start_epoch(epoch + 1, t.epochs, batches);
        let start = Instant::now();
        let outcome = train_epoch(
            &mut step,
            &run,
            &train_loader,
            epoch,
            view.as_mut(),
            &stop,
            &lr_of_batch,
        )?;
        let pass = match outcome {
            EpochOutcome::Trained(pass) => pass,
            EpochOutcome::Diverged(reason) => {
                view.finish();
                return Err(diverged(reason, &run, out));
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        if let Some(done) = pass.interrupted {
            // The interrupted epoch is not recorded: the checkpoint of the last finished epoch
            // stays as it is, and `--resume` runs this epoch again from it, exactly as a run
            // that never stopped would.
            let kept = match run.cfg.training.epochs_done {
                0 => "no epoch finished, so no checkpoint was saved".to_string(),
                n => format!(
                    "the checkpoint of epoch {n} is kept in {}; continue with --resume {} --epochs {}",
                    out.join(run_folder::CHECKPOINT).display(),
                    out.display(),
                    t.epochs
                ),
            };
            view.message(&format!(
                "interrupted in epoch {} after {done} of {batches} batches: {kept}",
                epoch + 1
            ));
            view.finish();
            return Ok(());
        }
        if let Some(reason) = divergence(&run, epoch, pass.loss)? {
            view.finish();
            return Err(diverged(reason, &run, out));
        }
        run.model.set_training(false);
        let val = if val_loader.is_empty() {
            None
        } else {
            Some(evaluate(&run.model, &val_loader, classes)?)
        };
        let m = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: pass.loss,
            train_accuracy: pass.accuracy,
            val_loss: val.as_ref().map_or(f64::NAN, |v| v.loss),
            val_accuracy: val.as_ref().map_or(f64::NAN, |v| v.accuracy),
            samples_per_s: pass.samples as f64 / seconds.max(1e-9),
            seconds,
            data_wait_seconds: pass.wait,
        };
        if let Some(w) = events.as_mut() {
            let batch = train_loader.sequential().next().transpose()?;
            let confusion = val
                .as_ref()
                .map(|v| (&v.confusion[..], &run.cfg.class_names[..]));
            tensorboard::log_epoch(w, &m, &run.model, batch.as_ref(), confusion)?;
        }
        let verdict = watch.as_mut().map(|w| w.update(&m));
        run.history.push(m.clone());
        run.cfg.training.epochs_done = epoch + 1;
        train_seconds += seconds;
        epoch_seconds += seconds;
        data_wait_seconds += pass.wait;
        train_samples += pass.samples;
        let files = checkpoint_files(&run)?;
        save(out, &files)?;
        let best = verdict.is_some_and(|v| v.improved);
        if best {
            save_best(out, &files)?;
        }
        view.end_epoch(&m, t.epochs, &EpochNote { best });
        if let (Some(v), Some(w)) = (verdict, watch.as_ref())
            && v.stop
            && epoch + 1 < t.epochs
        {
            let (best_epoch, value) = w.best().unwrap_or((0, f64::NAN));
            view.message(&format!(
                "early stopping: {} has not improved for {} epochs; the best is epoch {best_epoch} ({} {value:.4})",
                w.monitor().name(),
                w.patience(),
                w.monitor().name()
            ));
            stopped = Some("early stopping".to_string());
            break;
        }
        if stop.raised() {
            view.message(&format!(
                "interrupted after epoch {}: its checkpoint is saved in {}; continue with --resume {} --epochs {}",
                epoch + 1,
                out.join(run_folder::CHECKPOINT).display(),
                out.display(),
                t.epochs
            ));
            view.finish();
            return Ok(());
        }
    }
    view.finish();

    // The test split scores the checkpoint that eval and predict load: the best one if kept
    // (a best set of the best epoch that early stopping found).
    let best_epoch = watch.as_ref().and_then(|w| w.best()).map(|(e, _)| e);
    let best = match best_epoch {
        Some(e) => SavedRun::read_best(out)?
            .filter(|b| b.config().is_ok_and(|c| c.training.epochs_done == e)),
        None => None,
    };
    let best_model = match &best {
        Some(b) => Some(b.model(&b.config()?)?),
        None => None,
    };
    let best_epoch = best_epoch.filter(|_| best.is_some());
    run.model.set_training(false);
    let scored = best_model.as_ref().unwrap_or(&run.model);
    let test_eval = evaluate(scored, &test_loader, classes)?;
    let mut files = checkpoint_files(&run)?;
    files.extend(report(
        &run,
        &test_eval,
        Totals {
            train_seconds,
            samples_per_s: train_samples as f64 / epoch_seconds.max(1e-9),
            data_wait_seconds,
            parameters: n_params,
            threads,
            skipped_files: data.skipped.len(),
            best_epoch,
            stopped,
        },
    )?);
    // The sample logits are the last model's, like every other file of the set.
    if let Some(sample) = sample_logits(&run, &test_loader)? {
        files.push((SAMPLE_FILE, sample));
    }
    save(out, &files)?;
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    say!(
        "wrote {}: {}",
        out.join(run_folder::CHECKPOINT).display(),
        names.join(", ")
    );
    if let Some(e) = best_epoch {
        say!(
            "wrote {}: the best checkpoint (epoch {e})",
            out.join(run_folder::BEST).display()
        );
    }
    if let Some(w) = &events {
        say!("wrote {}", w.path().display());
    }
    Ok(())
}

/// The live view when asked for (`--tui`) or when standard output is a terminal (unless
/// `--no-tui`); plain lines otherwise.
fn make_view(args: &TrainArgs, run: &Run, stop: StopFlag) -> Result<Box<dyn View>> {
    let live = args.tui || (!args.no_tui && crate::tui::available());
    if !live {
        return Ok(Box::new(PlainView::default()));
    }
    if !crate::tui::available() {
        return Err(CliError::Flag {
            flag: "--tui",
            msg: "the live view needs a terminal on standard input and output".into(),
        });
    }
    Ok(Box::new(crate::tui::TuiView::start(
        title(&run.cfg),
        run.cfg.training.epochs_done,
        stop,
    )?))
}

/// Checks that a data set's samples (of shape `image`, `[channels, height, width]`, in
/// `classes` classes) fit the model: the image shape for convolutional models, the number
/// of features for the others.
pub fn check_data_fits(
    cfg: &RunConfig,
    image: [usize; 3],
    classes: usize,
    kind: &str,
) -> Result<()> {
    let features: usize = image.iter().product();
    let msg = if cfg.takes_images() && image != cfg.image {
        format!(
            "{kind} has {}x{}x{} images; the model expects {}x{}x{}",
            image[0], image[1], image[2], cfg.image[0], cfg.image[1], cfg.image[2]
        )
    } else if features != cfg.input {
        format!(
            "{kind} has {features} features; the model expects {}",
            cfg.input
        )
    } else if classes != cfg.output {
        format!(
            "{kind} has {classes} classes; the model expects {}",
            cfg.output
        )
    } else {
        return Ok(());
    };
    Err(CliError::Flag {
        flag: "--dataset",
        msg,
    })
}

fn describe_model(cfg: &RunConfig) -> String {
    let [c, h, w] = cfg.image;
    match cfg.model_kind() {
        Some(ModelKind::Lenet) => {
            return format!("LeNet-5 ({c}x{h}x{w} -> {})", cfg.output);
        }
        Some(ModelKind::Cnn) => {
            return format!(
                "CNN {c}x{h}x{w} -> stages {:?} -> {} (batch norm, ReLU, max pool, global average pool)",
                cfg.channels, cfg.output
            );
        }
        _ => {}
    }
    if cfg.hidden.is_empty() {
        format!("softmax regression {} -> {}", cfg.input, cfg.output)
    } else {
        let sizes: Vec<String> = std::iter::once(cfg.input)
            .chain(cfg.hidden.iter().copied())
            .chain(std::iter::once(cfg.output))
            .map(|s| s.to_string())
            .collect();
        format!("MLP {} ({})", sizes.join("-"), cfg.activation)
    }
}

/// What the run reached, for people and for the chart titles: the model on the data set.
fn title(cfg: &RunConfig) -> String {
    format!("{} on {}", describe_model(cfg), cfg.dataset)
}

/// Figures of the whole run for `summary.json`.
struct Totals {
    train_seconds: f64,
    samples_per_s: f64,
    /// Seconds the training loop waited for batches in this invocation.
    data_wait_seconds: f64,
    parameters: usize,
    threads: usize,
    /// Files or rows left out with `--skip-bad-files`.
    skipped_files: usize,
    best_epoch: Option<usize>,
    stopped: Option<String>,
}

/// Prints the test results (of the best checkpoint when kept, else the last) and returns the
/// run's summary and charts as files.
fn report(run: &Run, test: &Evaluation, totals: Totals) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let scored = match totals.best_epoch {
        Some(e) => format!("the best checkpoint, epoch {e}"),
        None => format!(
            "the last checkpoint, epoch {}",
            run.cfg.training.epochs_done
        ),
    };
    say!(
        "test: accuracy {:.2}%  loss {:.4}  ({} samples; {scored})",
        test.accuracy * 100.0,
        test.loss,
        test.predictions.len()
    );
    text(&confusion_table(&test.confusion, &run.cfg.class_names));
    let scores = test.scores(&run.cfg.class_names, DEFAULT_TOP_K);
    text(&scores.table());
    let summary = Summary {
        dataset: run.cfg.dataset.clone(),
        model: describe_model(&run.cfg),
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        epochs: run.cfg.training.epochs_done,
        train_seconds: totals.train_seconds,
        samples_per_s: totals.samples_per_s,
        data_wait_seconds: totals.data_wait_seconds,
        parameters: totals.parameters,
        threads: totals.threads,
        skipped_files: totals.skipped_files,
        scores,
        checkpoint: if totals.best_epoch.is_some() {
            "best"
        } else {
            "last"
        }
        .to_string(),
        best_epoch: totals.best_epoch,
        stopped: totals.stopped,
    };
    let title = title(&run.cfg);
    Ok(vec![
        (SUMMARY_FILE, json(SUMMARY_FILE, &summary)?.into_bytes()),
        (
            CURVES_FILE,
            plot::curves(Path::new(CURVES_FILE), &run.history, &title)?,
        ),
        (
            CONFUSION_FILE,
            plot::confusion(
                Path::new(CONFUSION_FILE),
                &test.confusion,
                &run.cfg.class_names,
                &title,
            )?,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_titles_name_the_model_and_the_data_set() {
        let json = r#"{
            "format": 2, "dataset": "fashion-mnist", "model": "mlp", "input": 784,
            "hidden": [32], "output": 10, "activation": "relu", "dropout": 0.0,
            "image": [1, 28, 28], "max_value": 255.0, "normalize_mean": [0.3],
            "normalize_std": [0.4],
            "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            "training": {"optimizer": "adam", "lr": 0.001, "momentum": 0.0, "nesterov": false,
                "weight_decay": 0.0, "schedule": "cosine:3:0", "warmup": 0, "clip_grad": null,
                "label_smoothing": 0.0, "batch_size": 32, "epochs": 3, "val_fraction": 0.1,
                "seed": 0, "epochs_done": 3}
        }"#;
        let cfg = RunConfig::from_json(Path::new(CONFIG_FILE), json).unwrap();
        assert_eq!(title(&cfg), "MLP 784-32-10 (relu) on fashion-mnist");
    }
}
