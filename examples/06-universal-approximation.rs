//! # Lesson 06: universal approximation, one hidden layer at a time
//!
//! The universal approximation theorem (Cybenko 1989, Hornik 1991) says that a network with a
//! single hidden layer of sigmoid-like units, `y = sum_j a_j tanh(w_j x + b_j) + c`, can
//! approximate any continuous function on a closed interval as closely as we like, provided
//! the layer is wide enough. Each hidden unit contributes one smooth "step" `tanh(w x + b)`,
//! placed at `x = -b/w` with steepness `w` and height `a`; adding steps of the right heights
//! at the right places traces any curve, the way a staircase traces a ramp. More units mean
//! more, finer steps.
//!
//! The theorem promises that good weights *exist*; it says nothing about finding them or about
//! how many units are needed. Here we find them by gradient descent (Adam, full batch, mean
//! squared error) and measure the largest error over a fine grid, for widths 1 to 128, on two
//! targets: `sin(x)` on `[-pi, pi]`, smooth, and a unit step, which jumps at 0. No continuous
//! function can come within 1/2 of a jump everywhere, so for the step the lesson measures the
//! largest error away from the jump (for `|x| > 0.25`) and the root-mean-square error.
//!
//! **Claim**: the maximum error falls as the hidden layer widens: one unit cannot follow a
//! sine (one tanh is monotone, so it misses by about 0.7), eight come within about 0.01, and
//! a wide layer fits it to within a few thousandths. Two units could already bend twice, but
//! from this start gradient descent only finds a fit that bends once: existence of good
//! weights (the theorem) and finding them (training) are different questions. The step is
//! the opposite case: a single tanh already *is* a smooth step, and more units mostly sharpen
//! the corners.
//!
//! **Figure** (`06-universal-approximation.png`): the fitted curves of each width drawn over
//! the targets (dashed grey), sine on the left, step on the right.
//!
//! Run: `cargo run --release --example 06-universal-approximation` (add `-- --quick` for the
//! small setting, `-- --out DIR` to choose the folder).

use std::error::Error;
use std::f64::consts::PI;
use std::path::PathBuf;

use ferrograd::lesson::LessonArgs;
use ferrograd::nn::{
    Activation, Adam, AdamConfig, LrSchedule, MlpConfig, Module, Optimizer, Schedule, Sequential,
    loss, mlp, named_params,
};
use ferrograd::plot::{Panel, Series, Style, figure};
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figure is written.
    pub out: PathBuf,
    /// Hidden-layer widths to compare.
    pub widths: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Training points, evenly spaced on `[-pi, pi]`.
    pub train_points: usize,
    /// Points of the grid the error is measured on.
    pub eval_points: usize,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Config {
    /// The setting of `cargo run`.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/06-universal-approximation"),
            widths: vec![1, 2, 4, 8, 32, 128],
            activation: Activation::Tanh,
            train_points: 256,
            eval_points: 1001,
            steps: 4000,
            lr: 0.03,
            seed: 0,
        }
    }

    /// The small setting of `--quick` and the test.
    pub fn quick() -> Self {
        Config {
            widths: vec![1, 8, 64],
            train_points: 96,
            eval_points: 401,
            steps: 400,
            lr: 0.03,
            ..Config::full()
        }
    }
}

/// A function to approximate on `[-pi, pi]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `sin(x)`.
    Sin,
    /// 0 for `x < 0`, 1 for `x >= 0`.
    Step,
}

impl Target {
    /// The target's value at `x`.
    pub fn at(self, x: f64) -> f64 {
        match self {
            Target::Sin => x.sin(),
            Target::Step => {
                if x >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Sin => "sin(x)",
            Target::Step => "step",
        }
    }
}

/// Errors at the jump of the step are at least 1/2 for any continuous fit; measure away from it.
pub const JUMP_MARGIN: f64 = 0.25;

/// One trained network, measured.
#[derive(Debug, Clone)]
pub struct Fit {
    /// What was fitted.
    pub target: Target,
    /// Hidden units.
    pub width: usize,
    /// Largest `|fit - target|` on the evaluation grid.
    pub max_error: f64,
    /// Largest `|fit - target|` on the grid points with `|x| > JUMP_MARGIN`.
    pub max_error_off_jump: f64,
    /// Root-mean-square error on the evaluation grid.
    pub rms_error: f64,
    /// The fitted curve on the evaluation grid.
    pub curve: Vec<(f64, f64)>,
}

/// The measured numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every target and width, sine first, widths in the config's order.
    pub fits: Vec<Fit>,
    /// The figure.
    pub figure: PathBuf,
}

impl Outcome {
    /// The fit of `target` with `width` hidden units.
    pub fn fit(&self, target: Target, width: usize) -> Option<&Fit> {
        self.fits
            .iter()
            .find(|f| f.target == target && f.width == width)
    }
}

fn column(xs: &[f64]) -> ferrograd::Result<Tensor> {
    Tensor::from_vec(xs.to_vec(), &[xs.len(), 1])
}

fn grid(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| -PI + 2.0 * PI * i as f64 / (n - 1).max(1) as f64)
        .collect()
}

fn train(target: Target, width: usize, cfg: &Config) -> ferrograd::Result<Sequential> {
    let arch = MlpConfig {
        input: 1,
        hidden: vec![width],
        output: 1,
        activation: cfg.activation,
        dropout: 0.0,
    };
    let model = mlp(&arch, DType::F64, &mut Rng::new(cfg.seed))?;
    let adam = AdamConfig {
        lr: cfg.lr,
        ..AdamConfig::default()
    };
    let mut opt = Adam::new(named_params(&model), adam)?;
    let xs = grid(cfg.train_points);
    let ys: Vec<f64> = xs.iter().map(|&x| target.at(x)).collect();
    let (x, y) = (column(&xs)?, column(&ys)?);
    // Cosine annealing to 0 lets Adam settle into the minimum instead of hovering around it.
    let schedule = LrSchedule {
        base_lr: cfg.lr,
        schedule: Schedule::Cosine {
            t_max: cfg.steps,
            eta_min: 0.0,
        },
        warmup: 0,
    };
    for step in 0..cfg.steps {
        opt.set_learning_rate(schedule.lr_at(step));
        let l = loss::mse(&model.forward(&x)?, &y)?;
        opt.step(&l.backward()?)?;
    }
    Ok(model)
}

fn measure(
    model: &Sequential,
    target: Target,
    width: usize,
    cfg: &Config,
) -> ferrograd::Result<Fit> {
    let xs = grid(cfg.eval_points);
    let pred = {
        let _g = no_grad();
        model.forward(&column(&xs)?)?.to_vec::<f64>()?
    };
    let errors: Vec<(f64, f64)> = xs
        .iter()
        .zip(&pred)
        .map(|(&x, &p)| (x, (p - target.at(x)).abs()))
        .collect();
    let max = |it: &mut dyn Iterator<Item = f64>| it.fold(0.0, f64::max);
    Ok(Fit {
        target,
        width,
        max_error: max(&mut errors.iter().map(|e| e.1)),
        max_error_off_jump: max(&mut errors
            .iter()
            .filter(|e| e.0.abs() > JUMP_MARGIN)
            .map(|e| e.1)),
        rms_error: (errors.iter().map(|e| e.1 * e.1).sum::<f64>() / errors.len() as f64).sqrt(),
        curve: xs.into_iter().zip(pred).collect(),
    })
}

/// Trains one network per target and width, measures them and writes the figure.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    let mut fits = Vec::new();
    for target in [Target::Sin, Target::Step] {
        for &width in &cfg.widths {
            let model = train(target, width, cfg)?;
            fits.push(measure(&model, target, width, cfg)?);
        }
    }
    let figure_path = cfg.out.join("06-universal-approximation.png");
    let panels: Vec<Panel> = [Target::Sin, Target::Step]
        .into_iter()
        .map(|target| {
            let xs = grid(cfg.eval_points);
            let truth = xs.iter().map(|&x| (x, target.at(x))).collect();
            let mut panel = Panel::new(
                format!("{} fitted by one hidden layer", target.name()),
                "x",
                "y",
            );
            for (i, f) in fits.iter().filter(|f| f.target == target).enumerate() {
                panel = panel.with(Series::line(
                    format!("width {}", f.width),
                    i,
                    f.curve.clone(),
                ));
            }
            // One legend serves both panels; on the sine's it would hide the curves.
            panel.legend = target == Target::Step;
            panel.with(Series::line("target", 7, truth).with_style(Style::Dashed))
        })
        .collect();
    figure(&figure_path, 2, (600, 420), &panels)?;
    Ok(Outcome {
        fits,
        figure: figure_path,
    })
}

fn main() {
    let args = LessonArgs::from_env_or_exit("06-universal-approximation");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    match run(&cfg) {
        Ok(outcome) => {
            println!(
                "one hidden {} layer, Adam lr {}, {} full-batch steps on {} points; errors on {} points",
                cfg.activation, cfg.lr, cfg.steps, cfg.train_points, cfg.eval_points
            );
            println!(
                "{:>6} {:>15} {:>16} {:>15} {:>26}",
                "width",
                "sin: max |err|",
                "step: max |err|",
                "step: rms err",
                "step: max |err|, |x|>0.25"
            );
            for &w in &cfg.widths {
                let (Some(s), Some(t)) =
                    (outcome.fit(Target::Sin, w), outcome.fit(Target::Step, w))
                else {
                    continue;
                };
                println!(
                    "{:>6} {:>15.4} {:>16.4} {:>15.4} {:>26.4}",
                    w, s.max_error, t.max_error, t.rms_error, t.max_error_off_jump
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
