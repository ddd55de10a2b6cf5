//! `ferrograd train`: data preparation, model, loss, optimizer, the training loop with a
//! progress bar and one line per epoch, evaluation, and the saved run (model, optimizer state,
//! config, metrics, charts, summary).

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use ferrograd_core::{Rng, Tensor, ThreadPool};
use ferrograd_data::{Loader, LoaderConfig, Samples};
use ferrograd_nn::{
    Adagrad, AdagradConfig, Adam, AdamConfig, LrSchedule, Module, Optimizer, RmsProp,
    RmsPropConfig, Schedule, Sequential, Sgd, SgdConfig, TrainStep, named_params, named_state,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Mode, ModelKind, OptimizerKind, TrainArgs};
use crate::error::{CliError, Result};
use crate::evaluate::{Evaluation, confusion_table, default_threads, evaluate};
use crate::metrics::{EpochMetrics, METRICS_FILE, SUMMARY_FILE, Summary};
use crate::output::{read_json_lines, write_json, write_json_lines};
use crate::plot;
use crate::run_config::{
    MODEL_FILE, OPTIMIZER_FILE, RunConfig, TrainingConfig, read_tensors, write_tensors,
};
use crate::training_data::{self, DataInfo, Split};

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

fn progress_bar(len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch:>3}/{epochs}"));
    bar
}

/// One pass over the training loader with the run's step (built once for the whole run, so a
/// static step is traced once per batch shape). Returns (mean loss, accuracy, samples,
/// seconds spent waiting for the loader's batches).
fn train_epoch(
    step: &mut TrainStep<'_>,
    loader: &Loader,
    epoch: usize,
    epochs: usize,
) -> Result<(f64, f64, usize, f64)> {
    let bar = progress_bar(loader.num_batches(), epoch + 1, epochs);
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0.0, 0usize);
    let mut batches = loader.epoch(epoch as u64);
    let mut wait = 0.0;
    loop {
        let asked = Instant::now();
        let Some(batch) = batches.next() else { break };
        wait += asked.elapsed().as_secs_f64();
        let batch = batch?;
        let out = step.run(&batch.x, &batch.y)?;
        let b = batch.indices.len();
        let l = out[0].item()?;
        if !l.is_finite() {
            bar.finish_and_clear();
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
        bar.inc(1);
        bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
    }
    bar.finish_and_clear();
    Ok((
        loss_sum / seen.max(1) as f64,
        correct / seen.max(1) as f64,
        seen,
        wait,
    ))
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

/// Saves the checkpoint (parameters and buffers) and metrics of the run so far.
fn save_progress(run: &Run, out: &Path) -> Result<()> {
    write_tensors(&out.join(MODEL_FILE), &named_state(&run.model))?;
    write_tensors(&out.join(OPTIMIZER_FILE), &run.optimizer.borrow().state())?;
    run.cfg.save(out)?;
    write_json_lines(&out.join(METRICS_FILE), &run.history)
}

/// A batch of test inputs with the model's logits, for checking the checkpoint in PyTorch.
fn save_sample(run: &Run, test: &Loader, out: &Path) -> Result<()> {
    let _guard = ferrograd_core::no_grad();
    if let Some(batch) = test.sequential().next() {
        let batch = batch?;
        let n = batch.indices.len().min(16);
        let x = batch.x.narrow(0, 0, n)?.contiguous()?;
        let logits = run.model.forward(&x)?;
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
    training_data::check_flags(args)?;
    // A resumed run keeps its own split, so validation and test samples never leak into
    // training.
    let split = resumed.as_ref().map_or(
        Split {
            val_fraction: args.val_fraction,
            test_fraction: args.own.test_fraction,
            seed: args.seed,
            image: None,
        },
        |r| Split {
            val_fraction: r.cfg.training.val_fraction,
            test_fraction: r.cfg.training.test_fraction,
            seed: r.cfg.training.seed,
            image: Some(r.cfg.image),
        },
    );
    let data = training_data::prepare(args, split, threads)?;
    let mut run = match resumed {
        Some(run) => run,
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
        &args.dataset.to_string(),
    )?;
    if run.cfg.table.is_some() && run.cfg.table != data.info.table {
        return Err(CliError::Flag {
            flag: "--resume",
            msg: "the checkpoint was trained on a table with other columns".into(),
        });
    }
    let t = run.cfg.training.clone();
    let schedule = LrSchedule {
        base_lr: t.lr,
        schedule: t.schedule.parse::<Schedule>()?.with_epochs(t.epochs),
        warmup: t.warmup,
    };
    let classes = run.cfg.output;
    let n_params: usize = named_params(&run.model)
        .iter()
        .map(|(_, p)| p.numel())
        .sum();
    println!(
        "ferrograd: {} on {} ({} train / {} val / {} test samples, {} features, {} classes), {} parameters, {} threads, {:?} mode",
        describe_model(&run.cfg),
        args.dataset,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.train.features(),
        classes,
        n_params,
        threads,
        args.mode
    );
    if !data.skipped.is_empty() {
        eprintln!(
            "skipped {} bad files or rows (--skip-bad-files):",
            data.skipped.len()
        );
        for s in data.skipped.iter().take(10) {
            eprintln!("  {s}");
        }
        if data.skipped.len() > 10 {
            eprintln!("  ... and {} more", data.skipped.len() - 10);
        }
    }
    let workers = if data.streamed {
        let workers = args.own.workers.unwrap_or(threads);
        println!(
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

    let out = args.out.as_path();
    let mut train_seconds: f64 = run.history.iter().map(|m| m.seconds).sum();
    let mut train_samples = 0usize;
    let mut epoch_seconds = 0.0;
    let mut data_wait_seconds = 0.0;
    let mut step = TrainStep::new(
        &run.model,
        &run.optimizer,
        t.label_smoothing,
        t.clip_grad,
        args.mode == Mode::Static,
    );
    for epoch in t.epochs_done..t.epochs {
        let lr = schedule.lr_at(epoch);
        run.optimizer.borrow_mut().set_learning_rate(lr);
        run.model.set_training(true);
        let start = Instant::now();
        let (train_loss, train_accuracy, seen, wait) =
            train_epoch(&mut step, &train_loader, epoch, t.epochs)?;
        let seconds = start.elapsed().as_secs_f64();
        run.model.set_training(false);
        let val = if val_loader.is_empty() {
            None
        } else {
            Some(evaluate(&run.model, &val_loader, classes)?)
        };
        let m = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss,
            train_accuracy,
            val_loss: val.as_ref().map_or(f64::NAN, |v| v.loss),
            val_accuracy: val.as_ref().map_or(f64::NAN, |v| v.accuracy),
            samples_per_s: seen as f64 / seconds.max(1e-9),
            seconds,
            data_wait_seconds: wait,
        };
        println!(
            "epoch {:>3}/{}  train loss {:.4} acc {:6.2}%  val loss {:.4} acc {:6.2}%  {:>9.0} samples/s  {:.2} s",
            m.epoch,
            t.epochs,
            m.train_loss,
            m.train_accuracy * 100.0,
            m.val_loss,
            m.val_accuracy * 100.0,
            m.samples_per_s,
            m.seconds
        );
        run.history.push(m);
        run.cfg.training.epochs_done = epoch + 1;
        train_seconds += seconds;
        epoch_seconds += seconds;
        data_wait_seconds += wait;
        train_samples += seen;
        save_progress(&run, out)?;
    }
    save_progress(&run, out)?;

    run.model.set_training(false);
    let test_eval = evaluate(&run.model, &test_loader, classes)?;
    report(
        &run,
        &test_eval,
        out,
        Timing {
            train_seconds,
            train_samples,
            epoch_seconds,
            data_wait_seconds,
        },
        n_params,
        threads,
        data.skipped.len(),
    )?;
    save_sample(&run, &test_loader, out)?;
    Ok(())
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

/// The run's time figures for the summary.
struct Timing {
    /// Training time of all epochs, resumed ones included.
    train_seconds: f64,
    /// Samples and seconds of the epochs of this invocation.
    train_samples: usize,
    epoch_seconds: f64,
    /// Seconds the training loop waited for batches in this invocation.
    data_wait_seconds: f64,
}

fn report(
    run: &Run,
    test: &Evaluation,
    out: &Path,
    timing: Timing,
    parameters: usize,
    threads: usize,
    skipped: usize,
) -> Result<()> {
    println!(
        "test: accuracy {:.2}%  loss {:.4}  ({} samples)",
        test.accuracy * 100.0,
        test.loss,
        test.predictions.len()
    );
    print!("{}", confusion_table(&test.confusion, &run.cfg.class_names));
    let summary = Summary {
        dataset: run.cfg.dataset.clone(),
        model: describe_model(&run.cfg),
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        epochs: run.cfg.training.epochs_done,
        train_seconds: timing.train_seconds,
        samples_per_s: timing.train_samples as f64 / timing.epoch_seconds.max(1e-9),
        data_wait_seconds: timing.data_wait_seconds,
        parameters,
        threads,
        skipped_files: skipped,
    };
    write_json(&out.join(SUMMARY_FILE), &summary)?;
    plot::curves(&out.join(CURVES_FILE), &run.history)?;
    plot::confusion(
        &out.join(CONFUSION_FILE),
        &test.confusion,
        &run.cfg.class_names,
    )?;
    println!(
        "wrote {}: {MODEL_FILE}, {OPTIMIZER_FILE}, config.json, {METRICS_FILE}, {SUMMARY_FILE}, {CURVES_FILE}, {CONFUSION_FILE}",
        out.display()
    );
    Ok(())
}
