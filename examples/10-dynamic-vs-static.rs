//! # Lesson 10: dynamic versus static graphs
//!
//! Lesson 09 showed the computation graph. A framework can hold it in two ways.
//!
//! - **Dynamic (eager)**, as in PyTorch: the graph is recorded while the code runs, one op at a
//!   time, and thrown away after `backward`. Every training step builds it again. Anything Rust
//!   can do works in the middle of a model: `if`, `while`, printing, reading a value.
//! - **Static (compiled)**, as in `jax.jit` or TensorFlow's graphs: the step is *traced* once
//!   into a graph, the whole graph is optimised (elementwise chains fused into single loops,
//!   views simplified, duplicates merged), every value is given a place in a workspace planned
//!   once (buffers reused as soon as their value is dead), and later steps replay the graph.
//!   Replaying costs no graph building and almost no memory allocation.
//!
//! Here the trace covers the *whole* training step: forward, loss, backward and the optimizer's
//! update. The update writes the weights and the optimizer's state (SGD's momentum); while
//! tracing, those writes are recorded as *stores* into the outside tensors (`param k <- %n` in
//! the printed graph), replayed at every run. Each store is one fused loop that reads the old
//! weight block by block and writes the new one *in place*, with no extra buffer or copy. The
//! first step runs eagerly, because it creates the optimizer's state; the second one traces.
//!
//! ferrograd's eager optimizers do the same for their own part: from the second step on, the
//! update replays a compiled graph of fused in-place loops (with results identical to running
//! the rule op by op). So what separates the two modes below is the forward and backward pass
//! and the recording of the autograd graph, which eager mode pays again at every step.
//!
//! The price of static graphs is flexibility: the trace sees one run of the code, so it cannot
//! capture a branch or a loop that depends on tensor *values*. ferrograd refuses such code when
//! tracing (reading a traced value with `item()` fails the trace), with an error that says to
//! use eager mode, instead of silently freezing the branch taken once.
//!
//! The lesson trains the same MLP (softmax cross-entropy, SGD with momentum) with
//! `ferrograd::nn::TrainStep`, eagerly and compiled, from the same initial weights on the same
//! batches. Claims checked by the test: both modes reach the same losses (within 1e-6
//! relative; they are in fact identical); a compiled step makes fewer heap allocations than an
//! eager one (it allocates only what the `gemm` crate allocates inside matrix products, small
//! bookkeeping vectors and buffers it packs operands into, and the handles of the two tensors
//! it returns); the compiled graph stores into the weights and state, in place; tracing a model whose loop runs until a
//! tensor's norm is small fails with an error pointing to eager mode (the same model runs fine
//! eagerly). Times are printed, not tested: they depend on the machine. Everything runs on one
//! thread, because the allocation counter (a counting global allocator installed by this file)
//! counts the calling thread only.
//!
//! Allocations cost more than the allocator's bookkeeping. This file forwards to the system
//! allocator; glibc's hands large buffers back to the operating system when they are freed, so
//! every fresh activation and gradient of an eager step is new memory to be paged in. That is
//! part of what eager mode pays per step: run with `MALLOC_MMAP_THRESHOLD_=1000000000
//! MALLOC_TRIM_THRESHOLD_=1000000000` to keep freed memory in the process and the gap narrows
//! (`ferrograd-bench`, which uses mimalloc, measures it that way).
//!
//! The figure (`dynamic-vs-static.png`) shows, per mode, the median time per training step,
//! the heap allocations per step, and memory: bytes allocated per step, and the compiled
//! graph's workspace (allocated once, on the first run) with and without buffer reuse.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferrograd::counting_alloc::{CountingAllocator, Counts, Scope};
use ferrograd::graph::{MemoryPlan, trace};
use ferrograd::lesson::LessonArgs;
use ferrograd::nn::{Activation, MlpConfig, Sgd, SgdConfig, TrainStep, mlp, named_params};
use ferrograd::plot::plotters::prelude::*;
use ferrograd::plot::plotters::style::text_anchor::{HPos, Pos, VPos};
use ferrograd::plot::{color, err, render};
use ferrograd::{DType, Rng, Tensor, ThreadPool, no_grad};

/// Counts heap allocations and bytes, per thread (so that work on other threads, such as tests
/// running side by side, is not counted), forwarding everything to the system allocator.
#[global_allocator]
static GLOBAL: CountingAllocator<std::alloc::System> =
    CountingAllocator::new(std::alloc::System, Scope::Thread);

/// Allocations and bytes made by this thread so far.
fn counts() -> Counts {
    GLOBAL.counts()
}

/// What the lesson runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Input features.
    pub input: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Classes.
    pub classes: usize,
    /// Samples per batch.
    pub batch: usize,
    /// Training steps in each mode.
    pub steps: usize,
    /// SGD learning rate.
    pub lr: f64,
    /// SGD momentum (its buffers are the optimizer state the compiled step writes).
    pub momentum: f64,
    /// Seed of the weights and data.
    pub seed: u64,
    /// Where the figure goes.
    pub out: PathBuf,
}

impl Config {
    /// The MNIST-shaped MLP 784-256-128-10 of `ferrograd-bench`, batch 64.
    pub fn full() -> Self {
        Config {
            input: 784,
            hidden: vec![256, 128],
            classes: 10,
            batch: 64,
            steps: 200,
            lr: 0.01,
            momentum: 0.9,
            seed: 10,
            out: PathBuf::from("runs/lessons/10-dynamic-vs-static"),
        }
    }

    /// A small MLP 64-32-16-10 for the test.
    pub fn quick() -> Self {
        Config {
            input: 64,
            hidden: vec![32, 16],
            batch: 16,
            steps: 100,
            ..Config::full()
        }
    }
}

/// Steps left out of the medians: the first (eager in both modes, it creates the momentum
/// buffers) and the second (it compiles: the whole step in static mode, the optimizer's
/// update in eager mode).
const WARMUP: usize = 2;

/// Median cost of one training step (the first two, compiling steps left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Seconds.
    pub seconds: f64,
    /// Heap allocations.
    pub allocations: f64,
    /// Bytes allocated.
    pub bytes: f64,
}

/// Measurements of one mode.
#[derive(Debug, Clone, Default)]
pub struct ModeStats {
    /// The loss at every step.
    pub losses: Vec<f64>,
    /// The whole step: forward, loss, backward and the optimizer's update.
    pub step: Cost,
}

/// What the lesson measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Eager mode.
    pub eager: ModeStats,
    /// Static mode.
    pub compiled: ModeStats,
    /// Seconds to trace, optimise and plan the step.
    pub compile_seconds: f64,
    /// Nodes of the compiled graph.
    pub graph_nodes: usize,
    /// Fused elementwise groups in it.
    pub fused_groups: usize,
    /// Stores of the compiled graph: weights and momentum buffers it writes at every run.
    pub stores: usize,
    /// One store of the printed graph and the line of the value it stores.
    pub store_example: String,
    /// The compiled graph's memory plan.
    pub memory: MemoryPlan,
    /// Iterations the data-dependent loop ran eagerly.
    pub eager_loop_iterations: usize,
    /// The norm the eager loop ended with.
    pub eager_loop_norm: f64,
    /// The error of tracing that loop (empty if it was, wrongly, accepted).
    pub trace_error: String,
    /// The PNG figure.
    pub figure: PathBuf,
}

/// The mean of up to `n` values at the start (`from_end` false) or end of `v`.
pub fn mean_of(v: &[f64], n: usize, from_end: bool) -> f64 {
    let n = n.min(v.len()).max(1);
    let part = if from_end {
        &v[v.len().saturating_sub(n)..]
    } else {
        &v[..n.min(v.len())]
    };
    part.iter().sum::<f64>() / n as f64
}

impl Outcome {
    /// The largest |eager − static| / |eager| over the losses of all steps.
    pub fn max_loss_relative_difference(&self) -> f64 {
        if self.eager.losses.len() != self.compiled.losses.len() {
            return f64::INFINITY;
        }
        self.eager
            .losses
            .iter()
            .zip(&self.compiled.losses)
            .map(|(e, s)| (e - s).abs() / e.abs())
            .fold(0.0, f64::max)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Halves `x` until its norm is at most `threshold`: the number of halvings depends on the
/// values in `x`, which a static graph cannot capture.
pub fn shrink_until_small(x: &Tensor, threshold: f64) -> ferrograd::Result<(Tensor, usize)> {
    let mut x = x.clone();
    let mut halvings = 0;
    while x.square()?.sum_all()?.sqrt()?.item()? > threshold {
        x = x.mul_scalar(0.5)?;
        halvings += 1;
    }
    Ok((x, halvings))
}

/// Batches of random inputs labelled by a fixed random linear "teacher", so the loss can fall.
fn batches(cfg: &Config, rng: &mut Rng) -> ferrograd::Result<Vec<[Tensor; 2]>> {
    let teacher = Tensor::randn(&[cfg.input, cfg.classes], 0.0, 1.0, DType::F32, rng)?;
    let _guard = no_grad();
    (0..8)
        .map(|_| {
            let x = Tensor::randn(&[cfg.batch, cfg.input], 0.0, 1.0, DType::F32, rng)?;
            let y = x.matmul(&teacher)?.argmax(1, false)?;
            Ok([x, y])
        })
        .collect()
}

/// What compiling the step produced.
#[derive(Debug, Clone, Default)]
struct CompiledFacts {
    compile_seconds: f64,
    graph_nodes: usize,
    fused_groups: usize,
    stores: usize,
    store_example: String,
    memory: MemoryPlan,
}

/// Trains `cfg.steps` steps from the same initial weights, eagerly or compiled.
fn train(cfg: &Config, compile: bool) -> ferrograd::Result<(ModeStats, Option<CompiledFacts>)> {
    let mut rng = Rng::new(cfg.seed);
    let model = mlp(
        &MlpConfig {
            input: cfg.input,
            hidden: cfg.hidden.clone(),
            output: cfg.classes,
            activation: Activation::Relu,
            dropout: 0.0,
        },
        DType::F32,
        &mut rng,
    )?;
    let data = batches(cfg, &mut rng)?;
    let opt = RefCell::new(Sgd::new(
        named_params(&model),
        SgdConfig {
            lr: cfg.lr,
            momentum: cfg.momentum,
            ..Default::default()
        },
    )?);
    // The whole step, [inputs, labels] -> [loss, logits], the weights updated in place.
    let mut step = TrainStep::new(&model, &opt, 0.0, None, compile);
    let mut stats = ModeStats::default();
    // Per step: seconds, allocations, bytes.
    let mut samples: [Vec<f64>; 3] = Default::default();
    for k in 0..cfg.steps {
        let [x, y] = &data[k % data.len()];
        let (c0, t0) = (counts(), Instant::now());
        let out = step.run(x, y)?;
        let seconds = t0.elapsed().as_secs_f64();
        let counted = counts().since(c0);
        if k >= WARMUP {
            samples[0].push(seconds);
            samples[1].push(counted.allocations as f64);
            samples[2].push(counted.bytes as f64);
        }
        stats.losses.push(out[0].item()?);
    }
    let [seconds, allocations, bytes] = samples;
    stats.step = Cost {
        seconds: median(seconds),
        allocations: median(allocations),
        bytes: median(bytes),
    };
    let [x, y] = &data[0];
    let facts = step.compiled(x, y).map(|c| {
        let g = c.graph();
        let printed = g.to_string();
        let store_example = g
            .stores
            .first()
            .map(|&(k, v)| {
                let value = printed
                    .lines()
                    .find(|l| l.starts_with(&format!("%{v} =")))
                    .unwrap_or_default();
                format!("{value}\nparam {k} <- %{v}")
            })
            .unwrap_or_default();
        CompiledFacts {
            compile_seconds: c.compile_seconds(),
            graph_nodes: g.nodes.len(),
            fused_groups: c.report().fused_groups,
            stores: g.stores.len(),
            store_example,
            memory: c.memory(),
        }
    });
    Ok((stats, facts))
}

/// The measurements, on one thread (see the module docs).
fn measure(cfg: &Config) -> ferrograd::Result<Outcome> {
    let (eager, _) = train(cfg, false)?;
    let (compiled, facts) = train(cfg, true)?;
    let CompiledFacts {
        compile_seconds,
        graph_nodes,
        fused_groups,
        stores,
        store_example,
        memory,
    } = facts.unwrap_or_default();

    // Data-dependent control flow: fine eagerly, refused by the tracer.
    let mut rng = Rng::new(cfg.seed);
    let x = Tensor::randn(&[16], 0.0, 3.0, DType::F32, &mut rng)?;
    let (small, iterations) = shrink_until_small(&x, 1.0)?;
    let norm = small.square()?.sum_all()?.sqrt()?.item()?;
    let traced = trace(
        |i: &[Tensor]| Ok(vec![shrink_until_small(&i[0], 1.0)?.0]),
        std::slice::from_ref(&x),
    );
    let trace_error = match traced {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    Ok(Outcome {
        eager,
        compiled,
        compile_seconds,
        graph_nodes,
        fused_groups,
        stores,
        store_example,
        memory,
        eager_loop_iterations: iterations,
        eager_loop_norm: norm,
        trace_error,
        figure: PathBuf::new(),
    })
}

/// Runs the lesson: trains in both modes, tries to trace the data-dependent loop, draws the
/// figure.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let pool = ThreadPool::new(1)?;
    let mut outcome = pool.install(|| measure(cfg))?;
    outcome.figure = cfg.out.join("dynamic-vs-static.png");
    draw(&outcome.figure, &outcome)?;
    Ok(outcome)
}

/// One bar chart: `(label, value)`, each bar in its palette colour, the value written on top.
fn bars(
    area: &ferrograd::plot::Area<'_>,
    title: &str,
    unit: &str,
    bars: &[(&str, f64)],
) -> Result<(), String> {
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-12) * 1.25;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..bars.len() as f64, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc(unit)
        .y_label_formatter(&|v: &f64| {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let centered = |size: u32| {
        TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom))
    };
    for (i, &(label, v)) in bars.iter().enumerate() {
        let x = i as f64;
        chart
            .draw_series([Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, v)],
                color(i).filled(),
            )])
            .map_err(err)?;
        let value = if v >= 100.0 || v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        };
        chart
            .draw_series([
                Text::new(value, (x + 0.5, v + top * 0.01), centered(14)),
                Text::new(label.to_string(), (x + 0.5, v + top * 0.09), centered(14)),
            ])
            .map_err(err)?;
    }
    Ok(())
}

fn draw(path: &Path, o: &Outcome) -> Result<(), Box<dyn std::error::Error>> {
    let (e, s) = (&o.eager.step, &o.compiled.step);
    let kib = |b: f64| b / 1024.0;
    render(path, (1500, 460), |root| {
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(
            "one whole training step (forward, loss, backward, SGD update), median; static: one compiled graph that updates the weights in place",
            (14, 12),
            ("sans-serif", 15),
        ))
        .map_err(err)?;
        let areas = body.split_evenly((1, 3));
        bars(
            &areas[0],
            "time per training step",
            "milliseconds",
            &[("eager", e.seconds * 1e3), ("static", s.seconds * 1e3)],
        )?;
        bars(
            &areas[1],
            "heap allocations per step",
            "allocations",
            &[("eager", e.allocations), ("static", s.allocations)],
        )?;
        bars(
            &areas[2],
            "memory: allocated per step, workspace",
            "KiB",
            &[
                ("eager", kib(e.bytes)),
                ("static", kib(s.bytes)),
                ("workspace", kib(o.memory.bytes as f64)),
                ("no reuse", kib(o.memory.bytes_without_reuse as f64)),
            ],
        )
    })?;
    Ok(())
}

fn main() {
    let args = match LessonArgs::from_env("10-dynamic-vs-static") {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let cfg = Config {
        out: args.out.clone(),
        ..if args.quick {
            Config::quick()
        } else {
            Config::full()
        }
    };
    let o = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let mut layers = vec![cfg.input];
    layers.extend(&cfg.hidden);
    layers.push(cfg.classes);
    let layers: Vec<String> = layers.iter().map(usize::to_string).collect();
    println!(
        "MLP {}, batch {}, SGD lr {} momentum {}, {} steps per mode, 1 thread",
        layers.join("-"),
        cfg.batch,
        cfg.lr,
        cfg.momentum,
        cfg.steps
    );
    for (name, s) in [("eager ", &o.eager), ("static", &o.compiled)] {
        println!(
            "{name}: mean loss of the first/last 8 steps {:.6} -> {:.6}; per step {:.3} ms, {:.0} allocations, {:.1} KiB allocated",
            mean_of(&s.losses, 8, false),
            mean_of(&s.losses, 8, true),
            s.step.seconds * 1e3,
            s.step.allocations,
            s.step.bytes / 1024.0,
        );
    }
    println!(
        "losses of all {} steps differ by at most {:.2e} (relative); static/eager speed {:.2}x per step",
        cfg.steps,
        o.max_loss_relative_difference(),
        o.eager.step.seconds / o.compiled.step.seconds,
    );
    println!(
        "compiled graph: {} nodes, {} fused groups, {} stores (weights and momentum buffers), compiled in {:.1} ms; memory plan: {} computed values in {} buffers ({} views, {} stores in place), {:.1} KiB instead of {:.1} KiB",
        o.graph_nodes,
        o.fused_groups,
        o.stores,
        o.compile_seconds * 1e3,
        o.memory.computed,
        o.memory.buffers,
        o.memory.views,
        o.memory.in_place,
        o.memory.bytes as f64 / 1024.0,
        o.memory.bytes_without_reuse as f64 / 1024.0
    );
    println!("a store in the printed graph:");
    for line in o.store_example.lines() {
        println!("  {line}");
    }
    println!(
        "data-dependent loop: eagerly {} halvings, norm {:.3}; tracing it fails with:\n  {}",
        o.eager_loop_iterations, o.eager_loop_norm, o.trace_error
    );
    println!("wrote {}", o.figure.display());
}
