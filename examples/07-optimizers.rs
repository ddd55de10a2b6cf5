//! # Lesson 07: gradient descent and its variants
//!
//! Every optimizer here moves the parameters against the gradient; they differ in how much
//! data each step looks at and in how they use past steps.
//!
//! - **Batch gradient descent** computes the exact gradient on the whole training set: one
//!   careful step per epoch.
//! - **Stochastic gradient descent (SGD)** uses a single example per step: a noisy estimate of
//!   the gradient, but as many steps per epoch as there are examples.
//! - **Mini-batch SGD** sits between the two (here 16 examples per step), and is what everyone
//!   uses in practice.
//! - **Momentum** keeps a running sum of past gradients, `v = mu v + g`, and steps along `v`:
//!   in a long, narrow valley the zig-zag across the valley cancels while the steady pull
//!   along it adds up, so the steps grow up to `1 / (1 - mu)` times (10 times for mu = 0.9).
//! - **Nesterov** momentum evaluates the correction as if the momentum step had already been
//!   taken, which damps overshooting.
//! - **Adam** keeps running averages of the gradient and of its square and divides one by the
//!   square root of the other, so every parameter gets a step of about the learning rate,
//!   whatever the scale of its gradient.
//!
//! Two problems show them. A linear regression with input features of very different scales
//! (3, 1 and 0.3) has a loss surface that is steep in one direction and flat in another; the
//! learning rate must suit the steep one, so plain descent crawls along the flat one. And the
//! Rosenbrock function `f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`, a curved banana-shaped valley
//! with its minimum at (1, 1), is the classic torture test: the gradient points mostly across
//! the valley, not along it.
//!
//! **Claim**: every variant lowers the regression loss, and on Rosenbrock, with the same number
//! of steps, momentum, Nesterov and Adam end much closer to the minimum (1, 1) than plain
//! gradient descent.
//!
//! **Figure** (`07-optimizers.png`): left, the regression loss after each epoch (log10);
//! right, the paths of the optimizers on the Rosenbrock surface (background: log10 of the
//! loss, dark is low), starting from (-1.2, 1), each path ending in a dot.
//!
//! Run: `cargo run --release --example 07-optimizers` (add `-- --quick` for the small setting,
//! `-- --out DIR` to choose the folder).

use std::error::Error;
use std::path::PathBuf;

use ferrograd::lesson::LessonArgs;
use ferrograd::nn::{
    Adam, AdamConfig, Linear, LinearConfig, Module, Optimizer, Sgd, SgdConfig, loss, named_params,
};
use ferrograd::plot::{Field, Panel, Series, Style, figure};
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figure is written.
    pub out: PathBuf,
    /// Regression examples.
    pub samples: usize,
    /// Regression epochs.
    pub epochs: usize,
    /// Mini-batch size of mini-batch SGD, momentum, Nesterov and Adam.
    pub batch: usize,
    /// Steps on the Rosenbrock function.
    pub rosenbrock_steps: usize,
    /// Where the Rosenbrock runs start.
    pub start: (f64, f64),
    /// Seed of the data, the initial weights and the shuffling.
    pub seed: u64,
}

impl Config {
    /// The setting of `cargo run`.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/07-optimizers"),
            samples: 256,
            epochs: 40,
            batch: 16,
            rosenbrock_steps: 2000,
            start: (-1.2, 1.0),
            seed: 0,
        }
    }

    /// The small setting of `--quick` and the test.
    pub fn quick() -> Self {
        Config {
            samples: 64,
            epochs: 12,
            rosenbrock_steps: 500,
            ..Config::full()
        }
    }
}

/// An optimizer variant: its update rule and how many examples each step sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// SGD with these hyperparameters (momentum 0: plain gradient descent).
    Sgd(SgdConfig),
    /// Adam with these hyperparameters.
    Adam(AdamConfig),
}

impl Rule {
    fn build(self, params: Vec<(String, Tensor)>) -> ferrograd::Result<Box<dyn Optimizer>> {
        Ok(match self {
            Rule::Sgd(c) => Box::new(Sgd::new(params, c)?),
            Rule::Adam(c) => Box::new(Adam::new(params, c)?),
        })
    }
}

fn sgd(lr: f64, momentum: f64, nesterov: bool) -> Rule {
    Rule::Sgd(SgdConfig {
        lr,
        momentum,
        nesterov,
        ..SgdConfig::default()
    })
}

fn adam(lr: f64) -> Rule {
    Rule::Adam(AdamConfig {
        lr,
        ..AdamConfig::default()
    })
}

/// Examples per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// The whole training set.
    Full,
    /// One example.
    One,
    /// The config's mini-batch size.
    Mini,
}

/// The regression variants: name, examples per step, rule. Learning rates are each about the
/// largest that stays stable on this problem.
pub fn regression_variants() -> Vec<(&'static str, Batch, Rule)> {
    vec![
        ("batch GD", Batch::Full, sgd(0.05, 0.0, false)),
        ("SGD (batch 1)", Batch::One, sgd(0.01, 0.0, false)),
        ("mini-batch SGD", Batch::Mini, sgd(0.05, 0.0, false)),
        ("momentum 0.9", Batch::Mini, sgd(0.01, 0.9, false)),
        ("Nesterov 0.9", Batch::Mini, sgd(0.01, 0.9, true)),
        ("Adam", Batch::Mini, adam(0.05)),
    ]
}

/// The Rosenbrock variants (every step uses the exact gradient).
pub fn rosenbrock_variants() -> Vec<(&'static str, Rule)> {
    vec![
        ("gradient descent", sgd(1e-3, 0.0, false)),
        ("momentum 0.9", sgd(1e-3, 0.9, false)),
        ("Nesterov 0.9", sgd(1e-3, 0.9, true)),
        ("Adam", adam(0.1)),
    ]
}

/// One optimizer on the regression.
#[derive(Debug, Clone)]
pub struct RegressionRun {
    /// The variant's name.
    pub name: &'static str,
    /// Mean squared error on the whole training set before training and after each epoch.
    pub losses: Vec<f64>,
}

/// One optimizer on Rosenbrock.
#[derive(Debug, Clone)]
pub struct RosenbrockRun {
    /// The variant's name.
    pub name: &'static str,
    /// The start and the point after each step.
    pub path: Vec<(f64, f64)>,
    /// `f` at the end.
    pub final_loss: f64,
    /// Euclidean distance from the end to the minimum (1, 1).
    pub distance: f64,
}

/// The measured numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The regression runs, in the order of [`regression_variants`].
    pub regression: Vec<RegressionRun>,
    /// The Rosenbrock runs, in the order of [`rosenbrock_variants`].
    pub rosenbrock: Vec<RosenbrockRun>,
    /// The figure.
    pub figure: PathBuf,
}

/// Inputs `[n, 3]` with columns of scale 3, 1 and 0.3, and targets `x w + b + noise`.
fn regression_data(cfg: &Config) -> ferrograd::Result<(Tensor, Tensor)> {
    let mut rng = Rng::new(cfg.seed);
    let (scales, w, b) = ([3.0, 1.0, 0.3], [0.5, -1.0, 2.0], 0.3);
    let mut xs = Vec::with_capacity(cfg.samples * 3);
    let mut ys = Vec::with_capacity(cfg.samples);
    for _ in 0..cfg.samples {
        let row: Vec<f64> = scales.iter().map(|s| s * rng.normal()).collect();
        let y = row.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b + 0.1 * rng.normal();
        xs.extend(row);
        ys.push(y);
    }
    Ok((
        Tensor::from_vec(xs, &[cfg.samples, 3])?,
        Tensor::from_vec(ys, &[cfg.samples, 1])?,
    ))
}

fn train_regression(
    batch: Batch,
    rule: Rule,
    x: &Tensor,
    y: &Tensor,
    cfg: &Config,
) -> ferrograd::Result<Vec<f64>> {
    // The same initial weights and the same shuffles for every variant.
    let mut rng = Rng::new(cfg.seed + 1);
    let model = Linear::new(3, 1, LinearConfig::default(), DType::F64, &mut rng)?;
    let mut opt = rule.build(named_params(&model))?;
    let full_loss = |m: &Linear| -> ferrograd::Result<f64> {
        let _g = no_grad();
        loss::mse(&m.forward(x)?, y)?.item()
    };
    let size = match batch {
        Batch::Full => cfg.samples,
        Batch::One => 1,
        Batch::Mini => cfg.batch,
    };
    let mut losses = vec![full_loss(&model)?];
    let mut order: Vec<i64> = (0..cfg.samples as i64).collect();
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(size.max(1)) {
            let idx = Tensor::from_vec(chunk.to_vec(), &[chunk.len()])?;
            let (xb, yb) = (x.index_select(0, &idx)?, y.index_select(0, &idx)?);
            let l = loss::mse(&model.forward(&xb)?, &yb)?;
            opt.step(&l.backward()?)?;
        }
        losses.push(full_loss(&model)?);
    }
    Ok(losses)
}

/// `f(x, y) = (1 - x)^2 + 100 (y - x^2)^2` of a tensor `p = [x, y]`, from tensor ops.
pub fn rosenbrock(p: &Tensor) -> ferrograd::Result<Tensor> {
    let x = p.narrow(0, 0, 1)?;
    let y = p.narrow(0, 1, 1)?;
    let a = x.neg()?.add_scalar(1.0)?.square()?;
    let b = y.sub(&x.square()?)?.square()?.mul_scalar(100.0)?;
    a.add(&b)?.sum_all()
}

fn run_rosenbrock(
    name: &'static str,
    rule: Rule,
    cfg: &Config,
) -> ferrograd::Result<RosenbrockRun> {
    let p = Tensor::from_vec(vec![cfg.start.0, cfg.start.1], &[2])?.with_requires_grad(true);
    let mut opt = rule.build(vec![("p".to_string(), p.clone())])?;
    let point = |p: &Tensor| -> ferrograd::Result<(f64, f64)> {
        let v = p.to_vec::<f64>()?;
        Ok((v[0], v[1]))
    };
    let mut path = vec![point(&p)?];
    for _ in 0..cfg.rosenbrock_steps {
        opt.step(&rosenbrock(&p)?.backward()?)?;
        path.push(point(&p)?);
    }
    let final_loss = {
        let _g = no_grad();
        rosenbrock(&p)?.item()?
    };
    let (x, y) = point(&p)?;
    Ok(RosenbrockRun {
        name,
        path,
        final_loss,
        distance: ((x - 1.0).powi(2) + (y - 1.0).powi(2)).sqrt(),
    })
}

/// Runs every optimizer on both problems and writes the figure.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    let (x, y) = regression_data(cfg)?;
    let mut regression = Vec::new();
    for (name, batch, rule) in regression_variants() {
        let losses = train_regression(batch, rule, &x, &y, cfg)?;
        regression.push(RegressionRun { name, losses });
    }
    let rosenbrock_runs = rosenbrock_variants()
        .into_iter()
        .map(|(name, rule)| run_rosenbrock(name, rule, cfg))
        .collect::<ferrograd::Result<Vec<_>>>()?;

    let mut curves = Panel::new("linear regression", "epoch", "log10 of the training MSE");
    for (i, r) in regression.iter().enumerate() {
        let pts = r
            .losses
            .iter()
            .enumerate()
            .map(|(e, &l)| (e as f64, l.log10()))
            .collect();
        curves = curves.with(Series::line(r.name, i, pts));
    }
    // The legend sits at the right, over the empty corner beside the valley.
    let (xr, yr) = (-1.6..2.4, -0.4..1.6);
    let (nx, ny) = (160, 160);
    let mut values = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            let px = xr.start + (xr.end - xr.start) * (i as f64 + 0.5) / nx as f64;
            let py = yr.start + (yr.end - yr.start) * (j as f64 + 0.5) / ny as f64;
            let f = (1.0 - px).powi(2) + 100.0 * (py - px * px).powi(2);
            values.push((f + 1e-3).log10());
        }
    }
    let mut surface = Panel {
        field: Some(Field::Values { nx, ny, values }),
        ..Panel::new(
            format!("Rosenbrock, {} steps", cfg.rosenbrock_steps),
            "x",
            "y",
        )
        .ranges(xr, yr)
    };
    for (i, r) in rosenbrock_runs.iter().enumerate() {
        // Every point of the first 50 steps, where the paths differ most, then about 100 more.
        let every = (r.path.len() / 100).max(1);
        let pts = r
            .path
            .iter()
            .enumerate()
            .filter(|(k, _)| *k < 50 || k % every == 0 || *k == r.path.len() - 1)
            .map(|(_, &p)| p)
            .collect();
        // Colours that stand out on the dark valley and the light slopes.
        let color = [3, 1, 6, 9][i % 4];
        surface = surface.with(Series::line(r.name, color, pts).with_style(Style::LinePoints));
    }
    // The end points, drawn last so that no path hides them (unnamed: not in the legend).
    for (i, r) in rosenbrock_runs.iter().enumerate() {
        let end = r.path.last().copied().into_iter().collect();
        surface = surface.with(Series::points("", [3, 1, 6, 9][i % 4], end));
    }
    surface = surface.with(Series::points("minimum (1, 1)", 2, vec![(1.0, 1.0)]));
    let figure_path = cfg.out.join("07-optimizers.png");
    figure(&figure_path, 2, (620, 480), &[curves, surface])?;
    Ok(Outcome {
        regression,
        rosenbrock: rosenbrock_runs,
        figure: figure_path,
    })
}

fn main() {
    let args = LessonArgs::from_env_or_exit("07-optimizers");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    match run(&cfg) {
        Ok(outcome) => {
            println!(
                "linear regression, {} examples, {} epochs (mini-batches of {}): training MSE",
                cfg.samples, cfg.epochs, cfg.batch
            );
            println!(
                "{:<16} {:>10} {:>10} {:>10}",
                "optimizer", "start", "epoch 1", "end"
            );
            for r in &outcome.regression {
                let at = |i: usize| r.losses.get(i).copied().unwrap_or(f64::NAN);
                println!(
                    "{:<16} {:>10.4} {:>10.4} {:>10.4}",
                    r.name,
                    at(0),
                    at(1),
                    at(r.losses.len() - 1)
                );
            }
            println!(
                "Rosenbrock from ({}, {}), {} steps",
                cfg.start.0, cfg.start.1, cfg.rosenbrock_steps
            );
            println!(
                "{:<16} {:>20} {:>12} {:>16}",
                "optimizer", "end point", "f", "distance to (1,1)"
            );
            for r in &outcome.rosenbrock {
                let (x, y) = r.path.last().copied().unwrap_or((f64::NAN, f64::NAN));
                println!(
                    "{:<16} {:>20} {:>12.2e} {:>16.4}",
                    r.name,
                    format!("({x:.4}, {y:.4})"),
                    r.final_loss,
                    r.distance
                );
            }
            println!("wrote {}", outcome.figure.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
