//! # Lesson 10: dynamic versus static graphs
//!
//! Lesson 09 showed the computation graph. A framework can hold it in two ways.
//!
//! - **Dynamic (eager)**, as in PyTorch: the graph is recorded while the code runs, one op at a
//!   time, and thrown away after `backward`. Every training step builds it again. Anything Rust
//!   can do works in the middle of a model: `if`, `while`, printing, reading a value.
//! - **Static (compiled)**, as in `jax.jit` or TensorFlow's graphs: the step is *traced* once
//!   into a graph (forward and backward), the whole graph is optimised (elementwise chains fused
//!   into single loops, views simplified, duplicates merged), every value is given a place in a
//!   workspace planned once (buffers reused as soon as their value is dead), and later steps
//!   replay the graph. Replaying costs no graph building and no memory allocation.
//!
//! The price of static graphs is flexibility: the trace sees one run of the code, so it cannot
//! capture a branch or a loop that depends on tensor *values*. ferrograd refuses such code when
//! tracing (reading a traced value with `item()` fails the trace), with an error that says to
//! use eager mode, instead of silently freezing the branch taken once.
//!
//! The lesson trains the same MLP step (forward, softmax cross-entropy, backward, SGD update)
//! eagerly and compiled, from the same initial weights. Claims checked by the test: both modes
//! reach the same loss (within 1e-6 relative); a compiled step makes fewer heap allocations than
//! an eager one; tracing a model whose loop runs until a tensor's norm is small fails with an
//! error pointing to eager mode (the same model runs fine eagerly). Times are printed, not
//! tested: they depend on the machine. Everything runs on one thread, because the allocation
//! counter (a counting global allocator installed by this file) counts the calling thread only.
//!
//! Allocations cost more than the allocator's bookkeeping. This file forwards to the system
//! allocator; glibc's hands large buffers back to the operating system when they are freed, so
//! every fresh activation of an eager step is new memory to be paged in, and the eager
//! optimizer update suffers from the churn too. That is part of what eager mode pays per step:
//! run with `MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000` to keep freed
//! memory in the process and the gap narrows (`ferrograd bench`, which uses mimalloc, measures
//! about 1.3x at batch 32-128 on one thread).
//!
//! The figure (`dynamic-vs-static.png`) shows, per mode, the median time per step, the heap
//! allocations per step, and memory: bytes allocated per step, and the compiled graph's
//! workspace (allocated once, on the first run) with and without buffer reuse. Each bar is
//! split into forward + backward, the part static mode compiles, and the optimizer update,
//! which runs eagerly in both modes (its allocations are most of what remains in static mode).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferrograd::graph::{CompileOptions, MemoryPlan, StaticFn, trace};
use ferrograd::lesson::LessonArgs;
use ferrograd::nn::{
    Activation, MlpConfig, Optimizer, Sgd, SgdConfig, classifier_step, grad_store, mlp,
    named_params,
};
use ferrograd::plot::plotters::prelude::*;
use ferrograd::plot::plotters::style::text_anchor::{HPos, Pos, VPos};
use ferrograd::plot::{color, err, render};
use ferrograd::{DType, Rng, Tensor, ThreadPool, no_grad};

/// Counts heap allocations and bytes, per thread, forwarding everything to the system
/// allocator.
struct Counting;

thread_local! {
    // Per thread, so that work on other threads (tests running side by side) is not counted.
    static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(bytes: usize) {
    COUNTS.with(|c| {
        let (n, b) = c.get();
        c.set((n + 1, b + bytes as u64));
    });
}

/// (allocations, bytes) made by this thread so far.
fn counts() -> (u64, u64) {
    COUNTS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting only touches a
// thread-local cell with a const initialiser (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        count(size);
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    /// Seed of the weights and data.
    pub seed: u64,
    /// Where the figure goes.
    pub out: PathBuf,
}

impl Config {
    /// The MNIST-shaped MLP 784-256-128-10 of `ferrograd bench`, batch 64.
    pub fn full() -> Self {
        Config {
            input: 784,
            hidden: vec![256, 128],
            classes: 10,
            batch: 64,
            steps: 200,
            lr: 0.05,
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

/// Median cost of one part of a training step (the first, compiling step left out).
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
    /// Forward, loss and backward: the part that static mode compiles.
    pub graph: Cost,
    /// The SGD update, eager in both modes.
    pub update: Cost,
}

impl ModeStats {
    /// Seconds per whole step.
    pub fn seconds_per_step(&self) -> f64 {
        self.graph.seconds + self.update.seconds
    }

    /// Heap allocations per whole step.
    pub fn allocations_per_step(&self) -> f64 {
        self.graph.allocations + self.update.allocations
    }
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
    /// |eager − static| / |eager| for the last step's loss.
    pub fn final_loss_relative_difference(&self) -> f64 {
        let e = self.eager.losses.last().copied().unwrap_or(f64::NAN);
        let s = self.compiled.losses.last().copied().unwrap_or(f64::NAN);
        (e - s).abs() / e.abs()
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
#[derive(Debug, Clone, Copy, Default)]
struct CompiledFacts {
    compile_seconds: f64,
    graph_nodes: usize,
    fused_groups: usize,
    memory: MemoryPlan,
}

/// Trains `cfg.steps` steps from the same initial weights, eagerly or compiled.
fn train(cfg: &Config, compiled: bool) -> ferrograd::Result<(ModeStats, Option<CompiledFacts>)> {
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
    let params = named_params(&model);
    let tensors: Vec<Tensor> = params.iter().map(|(_, p)| p.clone()).collect();
    let mut opt = Sgd::new(
        params,
        SgdConfig {
            lr: cfg.lr,
            ..Default::default()
        },
    )?;
    // forward, loss and backward: outputs [loss, logits, gradients...]
    let step = classifier_step(&model, &tensors, 0.0);
    let mut static_step = StaticFn::new(&step, CompileOptions::default());
    let mut stats = ModeStats::default();
    // Per step: [graph, update] x (seconds, allocations, bytes).
    let mut samples: [[Vec<f64>; 3]; 2] = Default::default();
    let mut record = |part: usize, t0: Instant, c0: (u64, u64)| {
        let seconds = t0.elapsed().as_secs_f64();
        let c1 = counts();
        samples[part][0].push(seconds);
        samples[part][1].push((c1.0 - c0.0) as f64);
        samples[part][2].push((c1.1 - c0.1) as f64);
    };
    for k in 0..cfg.steps {
        let inputs = &data[k % data.len()];
        let (c0, t0) = (counts(), Instant::now());
        let out = if compiled {
            static_step.call(inputs)?
        } else {
            step(inputs)?
        };
        if k > 0 {
            record(0, t0, c0);
        }
        let (c1, t1) = (counts(), Instant::now());
        opt.step(&grad_store(&tensors, &out[2..]))?;
        if k > 0 {
            record(1, t1, c1);
        }
        stats.losses.push(out[0].item()?);
    }
    let cost = |part: &[Vec<f64>; 3]| Cost {
        seconds: median(part[0].clone()),
        allocations: median(part[1].clone()),
        bytes: median(part[2].clone()),
    };
    stats.graph = cost(&samples[0]);
    stats.update = cost(&samples[1]);
    let plan = match static_step.compiled(&data[0]) {
        Some(c) if compiled => Some(CompiledFacts {
            compile_seconds: c.compile_seconds(),
            graph_nodes: c.graph().nodes.len(),
            fused_groups: c.report().fused_groups,
            memory: c.memory(),
        }),
        _ => None,
    };
    Ok((stats, plan))
}

/// The measurements, on one thread (see the module docs).
fn measure(cfg: &Config) -> ferrograd::Result<Outcome> {
    let (eager, _) = train(cfg, false)?;
    let (compiled, plan) = train(cfg, true)?;
    let CompiledFacts {
        compile_seconds,
        graph_nodes,
        fused_groups,
        memory,
    } = plan.unwrap_or_default();

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

/// One bar chart of stacked bars: `(label, [lower, upper])`, the lower part in the bar's
/// palette colour, the upper part (when not zero) hatched grey, the total written on top.
fn bars(
    area: &ferrograd::plot::Area<'_>,
    title: &str,
    unit: &str,
    bars: &[(&str, [f64; 2])],
) -> Result<(), String> {
    let total = |b: &[f64; 2]| b[0] + b[1];
    let top = bars
        .iter()
        .map(|b| total(&b.1))
        .fold(0.0, f64::max)
        .max(1e-12)
        * 1.25;
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
    for (i, (label, parts)) in bars.iter().enumerate() {
        let x = i as f64;
        let v = total(parts);
        chart
            .draw_series([
                Rectangle::new([(x + 0.15, 0.0), (x + 0.85, parts[0])], color(i).filled()),
                Rectangle::new(
                    [(x + 0.15, parts[0]), (x + 0.85, v)],
                    color(7).mix(0.45).filled(),
                ),
            ])
            .map_err(err)?;
        let value = if v >= 100.0 {
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
    let (e, s) = (&o.eager, &o.compiled);
    let kib = |b: f64| b / 1024.0;
    render(path, (1500, 460), |root| {
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(
            "colour: forward + backward (compiled in static mode); grey on top: the SGD update (eager in both modes)",
            (14, 12),
            ("sans-serif", 15),
        ))
        .map_err(err)?;
        let areas = body.split_evenly((1, 3));
        bars(
            &areas[0],
            "time per training step",
            "milliseconds",
            &[
                ("eager", [e.graph.seconds * 1e3, e.update.seconds * 1e3]),
                ("static", [s.graph.seconds * 1e3, s.update.seconds * 1e3]),
            ],
        )?;
        bars(
            &areas[1],
            "heap allocations per step",
            "allocations",
            &[
                ("eager", [e.graph.allocations, e.update.allocations]),
                ("static", [s.graph.allocations, s.update.allocations]),
            ],
        )?;
        bars(
            &areas[2],
            "memory: allocated per step, workspace",
            "KiB",
            &[
                ("eager", [kib(e.graph.bytes), kib(e.update.bytes)]),
                ("static", [kib(s.graph.bytes), kib(s.update.bytes)]),
                ("workspace", [kib(o.memory.bytes as f64), 0.0]),
                ("no reuse", [kib(o.memory.bytes_without_reuse as f64), 0.0]),
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
        "MLP {}, batch {}, SGD lr {}, {} steps per mode, 1 thread",
        layers.join("-"),
        cfg.batch,
        cfg.lr,
        cfg.steps
    );
    for (name, s) in [("eager ", &o.eager), ("static", &o.compiled)] {
        println!(
            "{name}: mean loss of the first/last 8 steps {:.6} -> {:.6}; per step {:.3} ms, {:.0} allocations, {:.0} KiB allocated (forward+backward {:.3} ms, {:.0} allocations, {:.0} KiB; update {:.3} ms, {:.0}, {:.0} KiB)",
            mean_of(&s.losses, 8, false),
            mean_of(&s.losses, 8, true),
            s.seconds_per_step() * 1e3,
            s.allocations_per_step(),
            (s.graph.bytes + s.update.bytes) / 1024.0,
            s.graph.seconds * 1e3,
            s.graph.allocations,
            s.graph.bytes / 1024.0,
            s.update.seconds * 1e3,
            s.update.allocations,
            s.update.bytes / 1024.0,
        );
    }
    println!(
        "last losses {:.6} and {:.6}: they differ by {:.2e} (relative); static/eager speed {:.2}x per step, {:.2}x for forward+backward",
        o.eager.losses.last().copied().unwrap_or(f64::NAN),
        o.compiled.losses.last().copied().unwrap_or(f64::NAN),
        o.final_loss_relative_difference(),
        o.eager.seconds_per_step() / o.compiled.seconds_per_step(),
        o.eager.graph.seconds / o.compiled.graph.seconds
    );
    println!(
        "compiled graph: {} nodes, {} fused groups, compiled in {:.1} ms; memory plan: {} computed values in {} buffers ({} views), {:.1} KiB instead of {:.1} KiB",
        o.graph_nodes,
        o.fused_groups,
        o.compile_seconds * 1e3,
        o.memory.computed,
        o.memory.buffers,
        o.memory.views,
        o.memory.bytes as f64 / 1024.0,
        o.memory.bytes_without_reuse as f64 / 1024.0
    );
    println!(
        "data-dependent loop: eagerly {} halvings, norm {:.3}; tracing it fails with:\n  {}",
        o.eager_loop_iterations, o.eager_loop_norm, o.trace_error
    );
    println!("wrote {}", o.figure.display());
}
