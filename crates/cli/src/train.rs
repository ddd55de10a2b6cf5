//! `ferrograd train`: data preparation, model, loss, optimizer, the training loop (shown as
//! plain lines or the live view, stopped early or by Ctrl-C), evaluation, and the saved run
//! (model, optimizer state, config, metrics, charts, summary, the best checkpoint and
//! TensorBoard events).

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ferrograd_core::{Rng, Tensor, ThreadPool};
use ferrograd_data::{DataSource, Dataset, Loader, load};
use ferrograd_nn::{
    Adagrad, AdagradConfig, Adam, AdamConfig, LrSchedule, Module, Optimizer, RmsProp,
    RmsPropConfig, Schedule, Sequential, Sgd, SgdConfig, TrainStep, named_params, named_state,
};

use crate::cli::{Mode, ModelKind, OptimizerKind, TrainArgs};
use crate::early_stopping::{BEST_DIR, Watch, remove_stale_best};
use crate::error::{CliError, Result};
use crate::evaluate::{DEFAULT_TOP_K, Evaluation, confusion_table, default_threads, evaluate};
use crate::metrics::{EpochMetrics, METRICS_FILE, SUMMARY_FILE, Summary};
use crate::output::{read_json_lines, write_json, write_json_lines};
use crate::plot;
use crate::progress::{EpochNote, PlainView, StopFlag, View};
use crate::run_config::{
    MODEL_FILE, OPTIMIZER_FILE, RunConfig, TrainingConfig, read_tensors, write_tensors,
};
use crate::tensorboard::{self, EventWriter};

pub const CURVES_FILE: &str = "curves.png";
pub const CONFUSION_FILE: &str = "confusion.png";
pub const SAMPLE_FILE: &str = "sample_logits.safetensors";

fn build_optimizer(
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
struct Run {
    cfg: RunConfig,
    model: Sequential,
    optimizer: RefCell<Box<dyn Optimizer>>,
    history: Vec<EpochMetrics>,
}

fn new_run(args: &TrainArgs, train: &Dataset) -> Result<Run> {
    let cfg = RunConfig::describe(args, train);
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

fn resume_run(args: &TrainArgs, dir: &Path) -> Result<Run> {
    let mut cfg = RunConfig::load(dir)?;
    if cfg.dataset != args.dataset.to_string() {
        return Err(CliError::Flag {
            flag: "--resume",
            msg: format!(
                "the checkpoint in {} was trained on {}, not {} (pass --dataset {})",
                dir.display(),
                cfg.dataset,
                args.dataset,
                cfg.dataset
            ),
        });
    }
    cfg.training.epochs = args.epochs;
    let model = cfg.load_model(dir)?;
    model.set_training(true);
    let mut optimizer = build_optimizer(&cfg.training, named_params(&model))?;
    let opt_path = dir.join(OPTIMIZER_FILE);
    optimizer
        .load_state(&read_tensors(&opt_path)?)
        .map_err(|e| CliError::file(&opt_path, e.to_string()))?;
    let metrics_path = dir.join(METRICS_FILE);
    let history = if metrics_path.exists() {
        read_json_lines(&metrics_path)?
    } else {
        Vec::new()
    };
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
}

/// One pass over the training loader with the run's step (built once for the whole run, so a
/// static step is traced once per batch shape), reporting to `view` and checking `stop`
/// between batches. `lr_of_batch` gives the learning rate of each batch for schedules that
/// change within an epoch.
fn train_epoch(
    step: &mut TrainStep<'_>,
    run: &Run,
    loader: &Loader,
    epoch: usize,
    view: &mut dyn View,
    stop: &StopFlag,
    lr_of_batch: &dyn Fn(usize) -> Option<f64>,
) -> Result<EpochRun> {
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0.0, 0usize);
    for (i, batch) in loader.epoch(epoch as u64).enumerate() {
        if stop.raised() {
            return Ok(EpochRun {
                loss: loss_sum / seen.max(1) as f64,
                accuracy: correct / seen.max(1) as f64,
                samples: seen,
                interrupted: Some(i),
            });
        }
        if let Some(lr) = lr_of_batch(i) {
            run.optimizer.borrow_mut().set_learning_rate(lr);
        }
        let batch = batch?;
        let out = step.run(&batch.x, &batch.y)?;
        let b = batch.indices.len();
        let l = out[0].item()?;
        if !l.is_finite() {
            return Err(CliError::Flag {
                flag: "--lr",
                msg: format!(
                    "the loss became {l} in epoch {}: training diverged; try a smaller learning rate",
                    epoch + 1
                ),
            });
        }
        loss_sum += l * b as f64;
        correct += ferrograd_nn::accuracy(&out[1], &batch.y)? * b as f64;
        seen += b;
        let lr = run.optimizer.borrow().learning_rate();
        view.batch(i + 1, seen, loss_sum / seen as f64, lr);
    }
    Ok(EpochRun {
        loss: loss_sum / seen.max(1) as f64,
        accuracy: correct / seen.max(1) as f64,
        samples: seen,
        interrupted: None,
    })
}

fn loader(data: Dataset, cfg: &RunConfig, batch_size: usize, train: bool) -> Result<Loader> {
    let config = cfg.loader_config(batch_size, cfg.training.seed, train);
    Ok(Loader::new(Arc::new(data), config)?)
}

/// Saves the checkpoint (parameters and buffers) and metrics of the run so far; the best
/// epoch's checkpoint goes through here too, into `best/`.
fn save_progress(run: &Run, out: &Path) -> Result<()> {
    write_tensors(&out.join(MODEL_FILE), &named_state(&run.model))?;
    write_tensors(&out.join(OPTIMIZER_FILE), &run.optimizer.borrow().state())?;
    run.cfg.save(out)?;
    write_json_lines(&out.join(METRICS_FILE), &run.history)
}

/// A batch of test inputs with the model's logits, for checking the checkpoint in PyTorch.
fn save_sample(model: &Sequential, test: &Loader, out: &Path) -> Result<()> {
    let _guard = ferrograd_core::no_grad();
    if let Some(batch) = test.sequential().next() {
        let batch = batch?;
        let n = batch.indices.len().min(16);
        let x = batch.x.narrow(0, 0, n)?.contiguous()?;
        let logits = model.forward(&x)?;
        write_tensors(
            &out.join(SAMPLE_FILE),
            &[("inputs".to_string(), x), ("logits".to_string(), logits)],
        )?;
    }
    Ok(())
}

/// `ferrograd train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let threads = args.threads.unwrap_or_else(default_threads);
    let pool = ThreadPool::flushing_denormals(threads)?;
    pool.install(|| train(args, threads))
}

fn train(args: &TrainArgs, threads: usize) -> Result<()> {
    let resumed = args
        .resume
        .as_deref()
        .map(|dir| resume_run(args, dir))
        .transpose()?;
    // A resumed run keeps its own split, so validation samples never leak into training.
    let (val_fraction, seed) = resumed
        .as_ref()
        .map_or((args.val_fraction, args.seed), |r| {
            (r.cfg.training.val_fraction, r.cfg.training.seed)
        });
    let source = DataSource::new(args.data.data_dir.clone(), args.data.download);
    let (train_full, test) = load(args.dataset, &source)?;
    let (train, val) = if val_fraction > 0.0 {
        train_full.stratified_split(val_fraction, seed)?
    } else {
        let empty = train_full.subset(&[])?;
        (train_full, empty)
    };
    let mut run = match resumed {
        Some(run) => run,
        None => new_run(args, &train)?,
    };
    if args.mode == Mode::Static && run.cfg.dropout > 0.0 {
        return Err(CliError::Flag {
            flag: "--mode",
            msg: "dropout draws new random masks at every step, which a traced graph would freeze; train with --mode eager, or without --dropout".into(),
        });
    }
    check_data_fits(&run.cfg, &train, args.dataset)?;
    if args.early_stopping.is_some() && val.is_empty() {
        return Err(CliError::Flag {
            flag: "--early-stopping",
            msg: "needs a validation split to monitor; pass --val-fraction above 0".into(),
        });
    }
    let t = run.cfg.training.clone();
    let schedule = LrSchedule {
        base_lr: t.lr,
        schedule: t.schedule.parse::<Schedule>()?.with_epochs(t.epochs),
        warmup: t.warmup,
    };
    let classes = run.cfg.output;
    let summary = crate::summary::model_summary(&run.cfg, &run.model)?;
    let n_params = summary.params();
    println!(
        "ferrograd: {} on {} ({} train / {} val / {} test samples, {} features, {} classes), {} parameters, {} threads, {:?} mode",
        describe_model(&run.cfg),
        args.dataset,
        train.len(),
        val.len(),
        test.len(),
        train.features(),
        classes,
        n_params,
        threads,
        args.mode
    );
    print!("{}", crate::summary::table(&summary));
    let train_loader = loader(train, &run.cfg, t.batch_size, true)?;
    let val_loader = loader(val, &run.cfg, 512, false)?;
    let test_loader = loader(test, &run.cfg, 512, false)?;

    let out = args.out.as_path();
    if args.resume.is_none() {
        // Files of an earlier run in this folder would be taken for this run's.
        remove_stale_best(out)?;
        tensorboard::remove_stale(out)?;
    }
    let mut events = if args.tensorboard {
        Some(EventWriter::create(out)?)
    } else {
        None
    };
    let mut watch = args
        .early_stopping
        .map(|patience| Watch::new(patience, args.min_delta, args.monitor, &run.history));
    let stop = StopFlag::on_ctrl_c();
    let mut view = make_view(args, &run, stop.clone())?;
    let mut train_seconds: f64 = run.history.iter().map(|m| m.seconds).sum();
    let mut train_samples = 0usize;
    let mut epoch_seconds = 0.0;
    let mut stopped = None;
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
        view.start_epoch(epoch + 1, t.epochs, batches);
        let start = Instant::now();
        let pass = train_epoch(
            &mut step,
            &run,
            &train_loader,
            epoch,
            view.as_mut(),
            &stop,
            &lr_of_batch,
        )?;
        let seconds = start.elapsed().as_secs_f64();
        if let Some(done) = pass.interrupted {
            // The interrupted epoch is not recorded: `--resume` runs it again, from these
            // weights.
            save_progress(&run, out)?;
            view.message(&format!(
                "interrupted in epoch {} after {done} of {batches} batches: saved the checkpoint in {} ({} epochs recorded); continue with --resume {} --epochs {}",
                epoch + 1,
                out.display(),
                run.cfg.training.epochs_done,
                out.display(),
                t.epochs
            ));
            view.finish();
            return Ok(());
        }
        run.model.set_training(false);
        let val = if val_loader.dataset().is_empty() {
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
        train_samples += pass.samples;
        save_progress(&run, out)?;
        let best = verdict.is_some_and(|v| v.improved);
        if best {
            save_progress(&run, &out.join(BEST_DIR))?;
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
                "interrupted after epoch {}: saved the checkpoint in {}; continue with --resume {} --epochs {}",
                epoch + 1,
                out.display(),
                out.display(),
                t.epochs
            ));
            view.finish();
            return Ok(());
        }
    }
    view.finish();
    save_progress(&run, out)?;

    // The test split scores the checkpoint that eval and predict load: the best one if kept.
    let best_dir = out.join(BEST_DIR);
    let best_epoch = watch
        .as_ref()
        .and_then(|w| w.best())
        .map(|(e, _)| e)
        .filter(|_| best_dir.join(crate::run_config::CONFIG_FILE).exists());
    let best_model;
    let scored = match best_epoch {
        Some(_) => {
            best_model = run.cfg.load_model(&best_dir)?;
            &best_model
        }
        None => {
            run.model.set_training(false);
            &run.model
        }
    };
    let test_eval = evaluate(scored, &test_loader, classes)?;
    report(
        &run,
        &test_eval,
        out,
        Totals {
            train_seconds,
            samples_per_s: train_samples as f64 / epoch_seconds.max(1e-9),
            parameters: n_params,
            threads,
            best_epoch,
            stopped,
        },
    )?;
    save_sample(scored, &test_loader, out)?;
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
    let title = format!("{} on {}", describe_model(&run.cfg), run.cfg.dataset);
    Ok(Box::new(crate::tui::TuiView::start(
        title,
        run.cfg.training.epochs_done,
        stop,
    )?))
}

/// Checks that a data set's samples fit the model: the image shape for convolutional
/// models, the number of features for the others.
pub fn check_data_fits(
    cfg: &RunConfig,
    data: &Dataset,
    kind: ferrograd_data::DatasetKind,
) -> Result<()> {
    let image = [data.channels, data.height, data.width];
    let msg = if cfg.takes_images() && image != cfg.image {
        format!(
            "{kind} has {}x{}x{} images; the model expects {}x{}x{}",
            image[0], image[1], image[2], cfg.image[0], cfg.image[1], cfg.image[2]
        )
    } else if data.features() != cfg.input {
        format!(
            "{kind} has {} features; the model expects {}",
            data.features(),
            cfg.input
        )
    } else if data.num_classes() != cfg.output {
        format!(
            "{kind} has {} classes; the model expects {}",
            data.num_classes(),
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

/// Figures of the whole run for `summary.json`.
struct Totals {
    train_seconds: f64,
    samples_per_s: f64,
    parameters: usize,
    threads: usize,
    best_epoch: Option<usize>,
    stopped: Option<String>,
}

fn report(run: &Run, test: &Evaluation, out: &Path, totals: Totals) -> Result<()> {
    let scored = match totals.best_epoch {
        Some(e) => format!("the best checkpoint, epoch {e}"),
        None => format!(
            "the last checkpoint, epoch {}",
            run.cfg.training.epochs_done
        ),
    };
    println!(
        "test: accuracy {:.2}%  loss {:.4}  ({} samples; {scored})",
        test.accuracy * 100.0,
        test.loss,
        test.predictions.len()
    );
    print!("{}", confusion_table(&test.confusion, &run.cfg.class_names));
    let scores = test.scores(&run.cfg.class_names, DEFAULT_TOP_K);
    print!("{}", scores.table());
    let summary = Summary {
        dataset: run.cfg.dataset.clone(),
        model: describe_model(&run.cfg),
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        epochs: run.cfg.training.epochs_done,
        train_seconds: totals.train_seconds,
        samples_per_s: totals.samples_per_s,
        parameters: totals.parameters,
        threads: totals.threads,
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
    write_json(&out.join(SUMMARY_FILE), &summary)?;
    plot::curves(&out.join(CURVES_FILE), &run.history)?;
    plot::confusion(
        &out.join(CONFUSION_FILE),
        &test.confusion,
        &run.cfg.class_names,
    )?;
    println!(
        "wrote {}: {MODEL_FILE}, {OPTIMIZER_FILE}, config.json, {METRICS_FILE}, {SUMMARY_FILE}, {CURVES_FILE}, {CONFUSION_FILE}{}{}",
        out.display(),
        if totals.best_epoch.is_some() {
            ", best/"
        } else {
            ""
        },
        if run_has_events(out) {
            ", events.out.tfevents.*"
        } else {
            ""
        }
    );
    Ok(())
}

fn run_has_events(out: &Path) -> bool {
    std::fs::read_dir(out).is_ok_and(|d| {
        d.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
    })
}
