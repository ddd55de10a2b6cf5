//! `ferrograd-bench`: the benchmark workloads, with identical definitions for every system. A
//! binary of its own, so that only it pays for counting allocations: the `ferrograd` command
//! installs no global allocator.
//!
//! - `gemm`: f32 `C = A B`, square `n`; GFLOP/s = 2n^3 / time.
//! - `mlp-sgd` / `mlp-adam`: the MNIST-shaped training step 784 -> 256 -> ReLU -> 128 -> ReLU
//!   -> 10, mean softmax cross-entropy, SGD (lr 0.01) or Adam (lr 1e-3), forward, backward and
//!   update; inputs N(0, 1) and uniform labels from a rotating pool of 16 pre-generated batches
//!   (one fixed batch would be memorised and turn gradients denormal); eager or static mode.
//! - `infer`: the same MLP, forward only, batch 1024 (eager, or compiled: fused bias + ReLU,
//!   no allocation).
//! - `epoch`: one real MNIST training epoch (60,000 images from the IDX files in `--data-dir`,
//!   batch 128, Adam), data pipeline included: loading and decompressing the files, shuffled
//!   batches prepared on the loader's thread, training; wall seconds.
//! - `cnn-lenet`: the MNIST-shaped LeNet-5 training step (`[b, 1, 28, 28]`, conv 5x5 6 with
//!   padding 2, pool, conv 5x5 16, pool, 120, 84, 10), mean softmax cross-entropy, SGD with
//!   momentum 0.9 (lr 0.01); eager or static mode.
//! - `cnn-cifar`: `[b, 3, 32, 32]` inputs through the plain CNN (stages of 32, 64, 128
//!   channels: conv 3x3 without bias, batch norm in training mode, ReLU, max pool 2; global
//!   average pooling; linear head), same loss and optimizer.
//! - `epoch-lenet`: one MNIST epoch of LeNet-5 at batch 128 from the IDX files (images kept
//!   NCHW, per-channel normalisation), same optimizer; wall seconds, with peak memory.
//!
//! Worker threads flush subnormal floats to zero unless `--keep-denormals` is given (every row
//! says which); the PyTorch reference script does the same with `torch.set_flush_denormal`.
//!
//! Each measurement is the median of `--reps` timed repetitions after a warm-up. Heap
//! allocations are counted by this binary's global allocator: mimalloc (which keeps freed
//! pages for reuse, where the system allocator returns large buffers to the OS and
//! page-faults them back in at every training step) wrapped in the core's counting allocator.
//! Memory is the peak resident set (`VmHWM`) during the row: the peak is reset before each row
//! where Linux allows it (`/proc/self/clear_refs`), so rows do not inherit the peaks of earlier
//! ones; for the `epoch` row, whose figure is compared with other systems, run it alone in its
//! process.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ferrograd_cli::cli::{positive, positive_usize};
use ferrograd_cli::error::{CliError, Result};
use ferrograd_core::counting_alloc::{CountingAllocator, Scope};
use ferrograd_core::graph::{CompileOptions, StaticFn};
use ferrograd_core::{DType, Rng, Tensor, ThreadPool, no_grad};
use ferrograd_data::{DataSource, DatasetKind, Loader, LoaderConfig, Normalize, load};
use ferrograd_nn::{
    Activation, Adam, AdamConfig, CnnConfig, LeNetConfig, MlpConfig, Module, Optimizer, Sequential,
    Sgd, SgdConfig, TrainStep, cnn, lenet, mlp, named_params,
};

/// Every thread's allocations, counted for the `allocs_per_step` figures.
#[global_allocator]
static ALLOCATOR: CountingAllocator<mimalloc::MiMalloc> =
    CountingAllocator::new(mimalloc::MiMalloc, Scope::Process);

fn allocations() -> u64 {
    ALLOCATOR.counts().allocations
}

/// Measure throughput: GEMM, the MNIST-shaped MLP and CNN training steps (eager and static),
/// inference and real MNIST epochs; one line per measurement, JSON lines with --json.
#[derive(Parser, Debug, Clone)]
#[command(name = "ferrograd-bench", version, long_about = None)]
struct BenchArgs {
    /// Workloads: gemm, mlp-sgd, mlp-adam, infer, epoch, cnn-lenet, cnn-cifar, epoch-lenet
    /// (comma separated; the epoch workloads need --data-dir with MNIST's IDX files).
    #[arg(long, default_value = "mlp-sgd", value_delimiter = ',')]
    workload: Vec<String>,
    /// Batch sizes of the training-step workloads.
    #[arg(long, default_value = "1,32,128,1024", value_delimiter = ',', value_parser = positive_usize)]
    batch: Vec<usize>,
    /// Thread counts.
    #[arg(long, default_value = "1,2", value_delimiter = ',', value_parser = positive_usize)]
    threads: Vec<usize>,
    /// Modes of the training workloads: eager, static.
    #[arg(long, default_value = "eager,static", value_delimiter = ',')]
    mode: Vec<String>,
    /// Matrix sizes of the gemm workload.
    #[arg(long, default_value = "256,512,1024,2048", value_delimiter = ',', value_parser = positive_usize)]
    n: Vec<usize>,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = positive_usize)]
    reps: usize,
    /// Approximate seconds per repetition.
    #[arg(long, default_value_t = 0.3, value_parser = positive)]
    seconds: f64,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Keep subnormal floats (IEEE default) instead of flushing them to zero.
    #[arg(long)]
    keep_denormals: bool,
    /// Folder with MNIST's IDX files (or a `mnist/` subfolder), for the epoch workload.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

/// Starts a new peak-memory window: Linux resets `VmHWM` to the current resident set when "5"
/// is written to `/proc/self/clear_refs`. Elsewhere, peaks cover the whole process.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process in MiB, where the OS reports it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    workload: String,
    mode: Option<String>,
    batch: Option<usize>,
    n: Option<usize>,
    threads: usize,
    flush: bool,
    metric: (&'static str, f64),
    extra: Vec<(&'static str, f64)>,
}

impl Row {
    fn print(&self, json: bool) {
        if json {
            let mut fields = vec![
                ("system".to_string(), "\"ferrograd\"".to_string()),
                ("workload".to_string(), format!("{:?}", self.workload)),
            ];
            if let Some(m) = &self.mode {
                fields.push(("mode".into(), format!("{m:?}")));
            }
            if let Some(b) = self.batch {
                fields.push(("batch".into(), b.to_string()));
            }
            if let Some(n) = self.n {
                fields.push(("n".into(), n.to_string()));
            }
            fields.push(("threads".into(), self.threads.to_string()));
            fields.push(("flush_denormals".into(), self.flush.to_string()));
            for (k, v) in std::iter::once(&self.metric).chain(&self.extra) {
                fields.push((k.to_string(), format!("{v:.3}")));
            }
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            println!("{{{}}}", body.join(","));
        } else {
            let mut s = format!("{:<9}", self.workload);
            if let Some(m) = &self.mode {
                s.push_str(&format!(" {m:<6}"));
            }
            if let Some(b) = self.batch {
                s.push_str(&format!(" batch {b:>5}"));
            }
            if let Some(n) = self.n {
                s.push_str(&format!(" n {n:>5}"));
            }
            s.push_str(&format!(
                " threads {}  {} {:>12.1}",
                self.threads, self.metric.0, self.metric.1
            ));
            for (k, v) in &self.extra {
                s.push_str(&format!("  {k} {v:.2}"));
            }
            println!("{s}");
        }
    }
}

/// Runs `body(iterations)` `reps` times after a warm-up, sizing iterations to about `seconds`
/// per repetition; returns (median seconds per iteration, allocations per iteration).
fn measure(
    reps: usize,
    seconds: f64,
    mut body: impl FnMut(usize) -> Result<()>,
) -> Result<(f64, f64)> {
    let start = Instant::now();
    body(2)?;
    let once = (start.elapsed().as_secs_f64() / 2.0).max(1e-7);
    let iters = ((seconds / once) as usize).clamp(1, 100_000);
    let mut times = Vec::with_capacity(reps);
    let mut allocs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let a0 = allocations();
        let t0 = Instant::now();
        body(iters)?;
        times.push(t0.elapsed().as_secs_f64() / iters as f64);
        allocs.push((allocations() - a0) as f64 / iters as f64);
    }
    Ok((median(times), median(allocs)))
}

fn mnist_mlp(rng: &mut Rng) -> Result<Sequential> {
    let cfg = MlpConfig {
        input: 784,
        hidden: vec![256, 128],
        output: 10,
        activation: Activation::Relu,
        dropout: 0.0,
    };
    Ok(mlp(&cfg, DType::F32, rng)?)
}

/// The model of a training workload and the shape of one input sample.
fn workload_model(workload: &str, rng: &mut Rng) -> Result<(Sequential, Vec<usize>)> {
    Ok(match workload {
        "cnn-lenet" | "epoch-lenet" => (
            lenet(&LeNetConfig::for_image(1, 28, 28, 10), DType::F32, rng)?,
            vec![1, 28, 28],
        ),
        "cnn-cifar" => {
            let cfg = CnnConfig {
                in_channels: 3,
                channels: vec![32, 64, 128],
                convs_per_stage: 1,
                classes: 10,
            };
            (cnn(&cfg, DType::F32, rng)?, vec![3, 32, 32])
        }
        _ => (mnist_mlp(rng)?, vec![784]),
    })
}

/// The optimizer of a training workload: Adam for `mlp-adam`, SGD (lr 0.01) for `mlp-sgd`,
/// SGD with momentum 0.9 (lr 0.01) for the convolutional ones.
fn workload_optimizer(workload: &str, model: &Sequential) -> Result<Box<dyn Optimizer>> {
    let params = named_params(model);
    Ok(match workload {
        "mlp-adam" => Box::new(Adam::new(params, AdamConfig::default())?),
        "mlp-sgd" => Box::new(Sgd::new(
            params,
            SgdConfig {
                lr: 0.01,
                ..Default::default()
            },
        )?),
        _ => Box::new(Sgd::new(
            params,
            SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                ..Default::default()
            },
        )?),
    })
}

fn batches(batch: usize, sample: &[usize], rng: &mut Rng) -> Result<Vec<[Tensor; 2]>> {
    let shape: Vec<usize> = std::iter::once(batch)
        .chain(sample.iter().copied())
        .collect();
    (0..16)
        .map(|_| {
            let x = Tensor::randn(&shape, 0.0, 1.0, DType::F32, rng)?;
            let y: Vec<i64> = (0..batch).map(|_| rng.below(10) as i64).collect();
            Ok([x, Tensor::from_vec(y, &[batch])?])
        })
        .collect()
}

fn train_row(
    workload: &str,
    mode: &str,
    batch: usize,
    threads: usize,
    args: &BenchArgs,
) -> Result<Row> {
    let mut rng = Rng::new(0);
    let (model, sample) = workload_model(workload, &mut rng)?;
    let opt = RefCell::new(workload_optimizer(workload, &model)?);
    let pool = batches(batch, &sample, &mut rng)?;
    let static_mode = mode == "static";
    let mut step = TrainStep::new(&model, &opt, 0.0, None, static_mode);
    let mut k = 0usize;
    let mut run = |step: &mut TrainStep<'_>| -> Result<()> {
        let [x, y] = &pool[k % pool.len()];
        k += 1;
        step.run(x, y)?;
        Ok(())
    };
    // The first step creates the optimizer's state; the second traces and compiles.
    run(&mut step)?;
    run(&mut step)?;
    let compile_ms = step
        .compiled(&pool[0][0], &pool[0][1])
        .map(|c| c.compile_seconds() * 1e3);
    let (secs, allocs) = measure(args.reps, args.seconds, |iters| {
        for _ in 0..iters {
            run(&mut step)?;
        }
        Ok(())
    })?;
    let mut extra = vec![("allocs_per_step", allocs)];
    if let Some(ms) = compile_ms {
        extra.push(("compile_ms", ms));
    }
    let extra = with_peak(extra);
    Ok(Row {
        workload: workload.to_string(),
        mode: Some(mode.to_string()),
        batch: Some(batch),
        n: None,
        threads,
        flush: !args.keep_denormals,
        metric: ("samples_per_s", batch as f64 / secs),
        extra,
    })
}

fn gemm_row(n: usize, threads: usize, args: &BenchArgs) -> Result<Row> {
    let mut rng = Rng::new(0);
    let a = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, &mut rng)?;
    let b = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, &mut rng)?;
    let (secs, _) = measure(args.reps, args.seconds, |iters| {
        for _ in 0..iters {
            a.matmul(&b)?;
        }
        Ok(())
    })?;
    Ok(Row {
        workload: "gemm".into(),
        mode: None,
        batch: None,
        n: Some(n),
        threads,
        flush: !args.keep_denormals,
        metric: ("gflops", 2.0 * (n as f64).powi(3) / secs / 1e9),
        extra: Vec::new(),
    })
}

fn infer_row(mode: &str, threads: usize, args: &BenchArgs) -> Result<Row> {
    let mut rng = Rng::new(0);
    let model = mnist_mlp(&mut rng)?;
    let pool = batches(1024, &[784], &mut rng)?;
    let _guard = no_grad();
    let forward = |i: &[Tensor]| Ok(vec![model.forward(&i[0])?]);
    let mut compiled = StaticFn::new(forward, CompileOptions::default());
    let mut k = 0;
    let (secs, allocs) = measure(args.reps, args.seconds, |iters| {
        for _ in 0..iters {
            let x = std::slice::from_ref(&pool[k % pool.len()][0]);
            if mode == "static" {
                compiled.call(x)?;
            } else {
                forward(x)?;
            }
            k += 1;
        }
        Ok(())
    })?;
    Ok(Row {
        workload: "infer".into(),
        mode: Some(mode.into()),
        batch: Some(1024),
        n: None,
        threads,
        flush: !args.keep_denormals,
        metric: ("samples_per_s", 1024.0 / secs),
        extra: with_peak(vec![("allocs_per_step", allocs)]),
    })
}

/// Appends the row's peak resident memory, where the OS reports it.
fn with_peak(mut extra: Vec<(&'static str, f64)>) -> Vec<(&'static str, f64)> {
    if let Some(mb) = peak_rss_mb() {
        extra.push(("peak_rss_mb", mb));
    }
    extra
}

/// One MNIST epoch from the files, loading included: the `epoch` (MLP, Adam) and
/// `epoch-lenet` (LeNet-5, SGD with momentum, NCHW images) workloads.
fn epoch_row(workload: &str, mode: &str, threads: usize, args: &BenchArgs) -> Result<Row> {
    let Some(dir) = &args.data_dir else {
        return Err(CliError::Flag {
            flag: "--data-dir",
            msg: "the epoch workload reads MNIST's IDX files: give the folder that holds them"
                .into(),
        });
    };
    let start = Instant::now();
    let src = DataSource::new(Some(dir.clone()), false);
    let (train, _) = load(DatasetKind::Mnist, &src)?;
    let images = workload == "epoch-lenet";
    let normalize = Normalize::from_dataset(&train);
    let channel_normalize = if images {
        Normalize::per_channel(&train)
    } else {
        Vec::new()
    };
    let loader = Loader::new(
        std::sync::Arc::new(train),
        LoaderConfig {
            batch_size: 128,
            seed: 0,
            normalize,
            channel_normalize,
            images,
            ..Default::default()
        },
    )?;
    let mut rng = Rng::new(0);
    let (model, _) = workload_model(workload, &mut rng)?;
    let optimizer = if images { workload } else { "mlp-adam" };
    let opt = RefCell::new(workload_optimizer(optimizer, &model)?);
    let mut step = TrainStep::new(&model, &opt, 0.0, None, mode == "static");
    let (mut loss, mut seen) = (0.0, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let out = step.run(&batch.x, &batch.y)?;
        let b = batch.y.numel();
        loss += out[0].item()? * b as f64;
        seen += b;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Row {
        workload: workload.into(),
        mode: Some(mode.to_string()),
        batch: Some(128),
        n: None,
        threads,
        flush: !args.keep_denormals,
        metric: ("seconds", seconds),
        extra: with_peak(vec![
            ("samples", seen as f64),
            ("mean_loss", loss / seen.max(1) as f64),
        ]),
    })
}

/// Every workload's name.
const WORKLOADS: [&str; 8] = [
    "gemm",
    "mlp-sgd",
    "mlp-adam",
    "infer",
    "epoch",
    "cnn-lenet",
    "cnn-cifar",
    "epoch-lenet",
];

fn run(args: &BenchArgs) -> Result<()> {
    for w in &args.workload {
        if !WORKLOADS.contains(&w.as_str()) {
            return Err(CliError::Flag {
                flag: "--workload",
                msg: format!(
                    "unknown workload {w:?}; expected one of {}",
                    WORKLOADS.join(", ")
                ),
            });
        }
    }
    for m in &args.mode {
        if m != "eager" && m != "static" {
            return Err(CliError::Flag {
                flag: "--mode",
                msg: format!("unknown mode {m:?}; expected eager or static"),
            });
        }
    }
    for &threads in &args.threads {
        let pool = if args.keep_denormals {
            ThreadPool::new(threads)?
        } else {
            ThreadPool::flushing_denormals(threads)?
        };
        pool.install(|| -> Result<()> {
            for w in &args.workload {
                match w.as_str() {
                    "gemm" => {
                        for &n in &args.n {
                            gemm_row(n, threads, args)?.print(args.json);
                        }
                    }
                    "infer" => {
                        for mode in &args.mode {
                            reset_peak_rss();
                            infer_row(mode, threads, args)?.print(args.json);
                        }
                    }
                    "epoch" | "epoch-lenet" => {
                        for mode in &args.mode {
                            reset_peak_rss();
                            epoch_row(w, mode, threads, args)?.print(args.json);
                        }
                    }
                    _ => {
                        for &batch in &args.batch {
                            for mode in &args.mode {
                                reset_peak_rss();
                                train_row(w, mode, batch, threads, args)?.print(args.json);
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn main() -> ExitCode {
    ferrograd_cli::exit_code(run(&BenchArgs::parse()))
}
