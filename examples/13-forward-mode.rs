//! # Lesson 13: forward against reverse mode
//!
//! Automatic differentiation records each step's derivative and chains them. The chain can be
//! accumulated in two directions:
//!
//! - **Reverse mode** (backpropagation, lessons 08-09) starts from one output and walks back to
//!   every input: one pass gives a *row* of the Jacobian, `u^T J` (a vector-Jacobian product,
//!   `vjp`). The full Jacobian of `f: R^n -> R^m` takes `m` passes.
//! - **Forward mode** starts from one direction in input space and walks forward to every
//!   output: one pass gives a *column*, `J v` (a Jacobian-vector product, `jvp`). The full
//!   Jacobian takes `n` passes.
//!
//! Each pass costs a small multiple of evaluating `f` in either mode, so the prediction is:
//! reverse mode wins when the inputs are many and the outputs few (`n >> m`, a loss of many
//! weights: that is why training uses backpropagation), forward mode wins when `n << m`, and
//! the two cross where `n * (cost of a forward pass) = m * (cost of a reverse pass)`.
//!
//! ferrograd obtains forward mode from reverse mode, with no second set of rules: `u -> J^T u`
//! is linear in `u`, so recording one backward pass with `u` as an input and differentiating
//! it again with respect to `u`, seeded with `v`, gives `J v` (see `ferrograd::jvp`). Each
//! column is then one pass over that recorded backward pass.
//!
//! The lesson builds the full Jacobian of `f(x) = sin(W2 tanh(W1 x))` both ways
//! (`ferrograd::jacobian` with `JacobianMode::Forward` and `JacobianMode::Reverse`) for a fixed
//! number of inputs `n` and a growing number of outputs `m`, then for a fixed `m` and growing
//! `n`. It counts the work of each way (multiply-adds and elements written, from the traced
//! graph: the same on every machine) and times it. From the work of one pass of each kind it
//! predicts where the two cross, and draws that prediction over the measurements.
//!
//! Claims checked by the test: the two Jacobians agree; the number of passes is `n` forward and
//! `m` reverse; reverse mode does less work when `n >> m` and forward mode when `n << m`; and
//! the measured crossover of the work lies within a factor of two of the predicted one. Times
//! are printed and drawn, not tested: they depend on the machine and its load.
//!
//! The figure (`forward-mode.png`) shows the time and the counted work of the full Jacobian
//! against `m` (with `n` fixed) and against `n` (with `m` fixed), with the predicted crossover
//! as a dashed line.

use std::path::PathBuf;
use std::time::Instant;

use ferrograd::graph::trace;
use ferrograd::lesson::LessonArgs;
use ferrograd::plot::{Panel, Series, Style, figure};
use ferrograd::{DType, JacobianMode, Result, Rng, Tensor, jacobian};

/// What the lesson runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The fixed size of the other side in both sweeps (inputs in the first, outputs in the
    /// second).
    pub fixed: usize,
    /// The sizes swept: outputs in the first sweep, inputs in the second.
    pub sizes: Vec<usize>,
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Timed repetitions per point (the median is kept).
    pub reps: usize,
    /// Seed of the weights and inputs.
    pub seed: u64,
    /// Where the figure goes.
    pub out: PathBuf,
}

impl Config {
    /// Sizes 4 to 512 around a fixed 64.
    pub fn full() -> Self {
        Config {
            fixed: 64,
            sizes: vec![4, 8, 16, 32, 64, 128, 256, 512],
            hidden: 64,
            reps: 5,
            seed: 13,
            out: PathBuf::from("runs/lessons/13-forward-mode"),
        }
    }

    /// Sizes 2 to 64 around a fixed 16, for the test.
    pub fn quick() -> Self {
        Config {
            fixed: 16,
            sizes: vec![2, 4, 8, 16, 32, 64],
            hidden: 16,
            reps: 1,
            ..Config::full()
        }
    }
}

/// Both ways of building one Jacobian of `f: R^n -> R^m`.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Inputs.
    pub n: usize,
    /// Outputs.
    pub m: usize,
    /// Passes of forward mode (columns).
    pub forward_passes: usize,
    /// Passes of reverse mode (rows).
    pub reverse_passes: usize,
    /// Counted work of forward mode (multiply-adds and elements written).
    pub forward_work: u64,
    /// Counted work of reverse mode.
    pub reverse_work: u64,
    /// Median seconds of forward mode.
    pub forward_seconds: f64,
    /// Median seconds of reverse mode.
    pub reverse_seconds: f64,
    /// Largest difference between the two Jacobians.
    pub max_difference: f64,
}

/// One sweep: the points, and the crossover predicted from the work of single passes.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The points, by growing swept size.
    pub points: Vec<Point>,
    /// Where forward and reverse mode are predicted to cost the same, in the swept size.
    pub predicted_crossover: f64,
    /// Where the counted work of the two crosses, interpolated between points (in the log of
    /// the size); `None` when it does not cross in the range.
    pub measured_crossover: Option<f64>,
}

/// What the lesson measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `n` fixed, `m` swept.
    pub by_outputs: Sweep,
    /// `m` fixed, `n` swept.
    pub by_inputs: Sweep,
    /// The PNG figure.
    pub figure: PathBuf,
}

/// The network `x -> sin(W2 tanh(W1 x))` from `R^n` to `R^m`.
struct Net {
    w1: Tensor,
    w2: Tensor,
}

impl Net {
    fn new(n: usize, hidden: usize, m: usize, rng: &mut Rng) -> Result<Net> {
        let w1 = Tensor::randn(&[hidden, n], 0.0, 1.0 / (n as f64).sqrt(), DType::F64, rng)?;
        let w2 = Tensor::randn(
            &[m, hidden],
            0.0,
            1.0 / (hidden as f64).sqrt(),
            DType::F64,
            rng,
        )?;
        Ok(Net { w1, w2 })
    }

    fn f(&self, x: &[Tensor]) -> Result<Tensor> {
        self.w2.matmul(&self.w1.matmul(&x[0])?.tanh()?)?.sin()
    }
}

/// The counted work of the full Jacobian in one mode, from the traced computation.
fn jacobian_work(net: &Net, x: &Tensor, mode: JacobianMode) -> Result<u64> {
    let graph = trace(|a| jacobian(|v| net.f(v), a, mode), std::slice::from_ref(x))?;
    Ok(graph.work())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of the full Jacobian in one mode, and the Jacobian.
fn timed(net: &Net, x: &Tensor, mode: JacobianMode, reps: usize) -> Result<(f64, Vec<f64>)> {
    let mut times = Vec::with_capacity(reps);
    let mut j = Vec::new();
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let blocks = jacobian(|v| net.f(v), std::slice::from_ref(x), mode)?;
        times.push(start.elapsed().as_secs_f64());
        j = blocks[0].to_vec::<f64>()?;
    }
    Ok((median(times), j))
}

fn measure(n: usize, m: usize, cfg: &Config, rng: &mut Rng) -> Result<Point> {
    let net = Net::new(n, cfg.hidden, m, rng)?;
    let x = Tensor::randn(&[n], 0.0, 1.0, DType::F64, rng)?;
    let (forward_seconds, jf) = timed(&net, &x, JacobianMode::Forward, cfg.reps)?;
    let (reverse_seconds, jr) = timed(&net, &x, JacobianMode::Reverse, cfg.reps)?;
    let max_difference = jf
        .iter()
        .zip(&jr)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    Ok(Point {
        n,
        m,
        forward_passes: n,
        reverse_passes: m,
        forward_work: jacobian_work(&net, &x, JacobianMode::Forward)?,
        reverse_work: jacobian_work(&net, &x, JacobianMode::Reverse)?,
        forward_seconds,
        reverse_seconds,
        max_difference,
    })
}

/// The work of one more pass of each mode at `(n, m)`: the difference between the Jacobians
/// of `f` and of the same network with one more input (forward) or output (reverse), which
/// leaves out the one-off cost of evaluating `f` and recording the backward pass.
fn work_per_pass(n: usize, m: usize, cfg: &Config) -> Result<(f64, f64)> {
    let work = |n: usize, m: usize, mode: JacobianMode| -> Result<f64> {
        let mut rng = Rng::new(cfg.seed);
        let net = Net::new(n, cfg.hidden, m, &mut rng)?;
        let x = Tensor::randn(&[n], 0.0, 1.0, DType::F64, &mut rng)?;
        Ok(jacobian_work(&net, &x, mode)? as f64)
    };
    let forward = work(2 * n, m, JacobianMode::Forward)? - work(n, m, JacobianMode::Forward)?;
    let reverse = work(n, 2 * m, JacobianMode::Reverse)? - work(n, m, JacobianMode::Reverse)?;
    Ok((forward / n as f64, reverse / m as f64))
}

/// Where `a - b` changes sign along the sweep, interpolated in the log of the size.
fn crossing(sizes: &[usize], a: &[f64], b: &[f64]) -> Option<f64> {
    for k in 1..sizes.len() {
        let (d0, d1) = (a[k - 1] - b[k - 1], a[k] - b[k]);
        if d0 == 0.0 {
            return Some(sizes[k - 1] as f64);
        }
        if d0.signum() != d1.signum() {
            let (l0, l1) = ((sizes[k - 1] as f64).ln(), (sizes[k] as f64).ln());
            let t = d0 / (d0 - d1);
            return Some((l0 + t * (l1 - l0)).exp());
        }
    }
    None
}

fn sweep(cfg: &Config, outputs: bool) -> Result<Sweep> {
    let mut rng = Rng::new(cfg.seed);
    let mut points = Vec::new();
    for &s in &cfg.sizes {
        let (n, m) = if outputs {
            (cfg.fixed, s)
        } else {
            (s, cfg.fixed)
        };
        points.push(measure(n, m, cfg, &mut rng)?);
    }
    // At the fixed size on both sides, one pass of each kind: the swept size at which
    // `n * forward = m * reverse` holds.
    let (forward, reverse) = work_per_pass(cfg.fixed, cfg.fixed, cfg)?;
    let predicted_crossover = if outputs {
        cfg.fixed as f64 * forward / reverse
    } else {
        cfg.fixed as f64 * reverse / forward
    };
    let fw: Vec<f64> = points.iter().map(|p| p.forward_work as f64).collect();
    let rw: Vec<f64> = points.iter().map(|p| p.reverse_work as f64).collect();
    Ok(Sweep {
        points,
        predicted_crossover,
        measured_crossover: crossing(&cfg.sizes, &fw, &rw),
    })
}

/// The lesson: both sweeps and the figure.
///
/// # Errors
/// Errors of the ops, or when the figure cannot be written.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let by_outputs = sweep(cfg, true)?;
    let by_inputs = sweep(cfg, false)?;
    std::fs::create_dir_all(&cfg.out).map_err(|e| ferrograd::Error::Argument {
        op: "lesson 13",
        msg: format!("cannot create {}: {e}", cfg.out.display()),
    })?;
    let figure = cfg.out.join("forward-mode.png");
    draw(&figure, cfg, &by_outputs, &by_inputs).map_err(|msg| ferrograd::Error::Argument {
        op: "lesson 13 figure",
        msg,
    })?;
    Ok(Outcome {
        by_outputs,
        by_inputs,
        figure,
    })
}

fn draw(
    path: &std::path::Path,
    cfg: &Config,
    by_outputs: &Sweep,
    by_inputs: &Sweep,
) -> std::result::Result<(), String> {
    let mut panels = Vec::new();
    for (sweep, swept, fixed) in [
        (by_outputs, "outputs m", format!("n = {} inputs", cfg.fixed)),
        (by_inputs, "inputs n", format!("m = {} outputs", cfg.fixed)),
    ] {
        let size = |p: &Point| if swept == "outputs m" { p.m } else { p.n } as f64;
        for (what, unit, forward, reverse) in [
            (
                "time",
                "milliseconds (median)",
                sweep
                    .points
                    .iter()
                    .map(|p| (size(p), p.forward_seconds * 1e3))
                    .collect::<Vec<_>>(),
                sweep
                    .points
                    .iter()
                    .map(|p| (size(p), p.reverse_seconds * 1e3))
                    .collect::<Vec<_>>(),
            ),
            (
                "counted work",
                "multiply-adds + elements written",
                sweep
                    .points
                    .iter()
                    .map(|p| (size(p), p.forward_work as f64))
                    .collect(),
                sweep
                    .points
                    .iter()
                    .map(|p| (size(p), p.reverse_work as f64))
                    .collect(),
            ),
        ] {
            let lo = forward
                .iter()
                .chain(&reverse)
                .map(|p| p.1)
                .fold(f64::INFINITY, f64::min);
            let hi = forward
                .iter()
                .chain(&reverse)
                .map(|p| p.1)
                .fold(0.0, f64::max);
            // The x axis is log2 of the swept size.
            let log = |pts: Vec<(f64, f64)>| pts.into_iter().map(|(x, y)| (x.log2(), y)).collect();
            let c = sweep.predicted_crossover.log2();
            let mut panel = Panel::new(
                format!("full Jacobian, {what}, {fixed}"),
                format!("log2 of the number of {swept}"),
                unit,
            )
            .with(
                Series::line("forward mode (n passes)", 0, log(forward))
                    .with_style(Style::LinePoints),
            )
            .with(
                Series::line("reverse mode (m passes)", 1, log(reverse))
                    .with_style(Style::LinePoints),
            )
            .with(
                Series::line("predicted crossover", 3, vec![(c, lo.max(1e-12)), (c, hi)])
                    .with_style(Style::Dashed),
            );
            panel.log_y = true;
            panels.push(panel);
        }
    }
    figure(path, 2, (620, 420), &panels).map_err(|e| e.to_string())
}

fn print_sweep(title: &str, s: &Sweep) {
    println!("{title}");
    println!("      n      m   fwd ms   rev ms      fwd work      rev work");
    for p in &s.points {
        println!(
            "  {:5}  {:5}  {:7.2}  {:7.2}  {:12}  {:12}",
            p.n,
            p.m,
            p.forward_seconds * 1e3,
            p.reverse_seconds * 1e3,
            p.forward_work,
            p.reverse_work
        );
    }
    let measured = s
        .measured_crossover
        .map_or("none in range".to_string(), |c| format!("{c:.1}"));
    println!(
        "  crossover: predicted {:.1}, counted work {measured}",
        s.predicted_crossover
    );
}

fn main() {
    let args = LessonArgs::from_env_or_exit("13-forward-mode");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    match run(&cfg) {
        Ok(o) => {
            print_sweep(
                &format!("n = {} inputs, m outputs swept", cfg.fixed),
                &o.by_outputs,
            );
            print_sweep(
                &format!("m = {} outputs, n inputs swept", cfg.fixed),
                &o.by_inputs,
            );
            println!("figure: {}", o.figure.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
