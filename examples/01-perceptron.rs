//! # Lesson 01: from the perceptron to the multilayer perceptron
//!
//! A perceptron (Rosenblatt, 1958) is one linear unit followed by a step: it computes
//! `z = w1 x1 + w2 x2 + b` and answers 1 when `z > 0`. The points where `z = 0` form a straight
//! line, so a perceptron can only separate classes that a single straight line separates. It
//! learns with the perceptron rule: for each example, `w += lr (y - prediction) x` and
//! `b += lr (y - prediction)`; nothing changes when the prediction is right. When a separating
//! line exists, the rule finds one in a finite number of updates (the perceptron convergence
//! theorem).
//!
//! AND and OR are linearly separable: one corner, or three corners, on one side of a line. XOR
//! is not: its two 1s sit on opposite corners of the square, and any line that puts `(0, 1)`
//! and `(1, 0)` on one side puts at least one of `(0, 0)` and `(1, 1)` there too. So no line
//! classifies more than 3 of the 4 points, and the perceptron rule never settles on XOR: it
//! keeps cycling. (Minsky and Papert made this point in 1969.)
//!
//! Adding one hidden layer fixes it. A two-layer network (a multilayer perceptron, MLP) with a
//! few tanh hidden units first maps the inputs to new features, in which XOR *is* linearly
//! separable (for instance "x1 OR x2" and "x1 AND x2"), and its output layer draws a line
//! there. Trained by gradient descent on the cross-entropy, it gets all four points right.
//!
//! **Claim:** the perceptron learns AND and OR perfectly but never exceeds 75% on XOR (nor does
//! the best of thousands of random lines); the MLP gets 100% on all three.
//!
//! **Figure** (`01-perceptron.png`): decision regions (background colour = predicted class) of
//! the perceptron (top row) and the MLP (bottom row) on AND, OR and XOR, with the four points
//! coloured by their true class. The perceptron's regions are always split by a straight line
//! (often one that passes close to a point: the rule stops at the first line without mistakes);
//! the MLP's XOR regions bend around the corners, which no single line can do.
//!
//! Run: `cargo run --release --example 01-perceptron [-- --out DIR] [--quick]`.

use std::error::Error;
use std::path::PathBuf;

use ferrograd::data::toy::{Gate, Grid, Toy, logic_gate};
use ferrograd::lesson::{LessonArgs, regions};
use ferrograd::nn::{Activation, Linear, LinearConfig, MlpConfig, Module, Sequential, mlp};
use ferrograd::plot::figure;
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figure is written.
    pub out: PathBuf,
    /// Passes of the perceptron rule over the four points.
    pub perceptron_epochs: usize,
    /// Perceptron learning rate.
    pub perceptron_lr: f64,
    /// Hidden tanh units of the MLP.
    pub hidden: usize,
    /// Full-batch Adam steps for the MLP.
    pub mlp_steps: usize,
    /// Random lines tried on XOR.
    pub random_lines: usize,
    /// Cells per side of the decision-region grid.
    pub grid: usize,
    /// Seed of every initialisation.
    pub seed: u64,
}

impl Config {
    /// The setting of `cargo run`.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/01-perceptron"),
            perceptron_epochs: 100,
            perceptron_lr: 0.1,
            hidden: 4,
            mlp_steps: 500,
            random_lines: 100_000,
            grid: 120,
            seed: 1,
        }
    }

    /// The small setting of `--quick` and the test.
    pub fn quick() -> Self {
        Config {
            perceptron_epochs: 30,
            mlp_steps: 300,
            random_lines: 2_000,
            grid: 40,
            ..Config::full()
        }
    }
}

/// What one gate gave.
#[derive(Debug, Clone)]
pub struct GateResult {
    /// Which gate.
    pub gate: Gate,
    /// Perceptron accuracy after the last epoch.
    pub perceptron_accuracy: f64,
    /// Best perceptron accuracy after any epoch.
    pub perceptron_best: f64,
    /// The first epoch (from 1) without a single mistake, if any.
    pub perceptron_converged_at: Option<usize>,
    /// MLP accuracy after training.
    pub mlp_accuracy: f64,
    /// MLP cross-entropy after training.
    pub mlp_loss: f64,
}

/// The measured numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// AND, OR, XOR in that order.
    pub gates: Vec<GateResult>,
    /// Best XOR accuracy among `Config::random_lines` random lines.
    pub best_random_line_xor: f64,
    /// The figure.
    pub figure: PathBuf,
}

impl Outcome {
    /// The result for `gate`.
    pub fn gate(&self, gate: Gate) -> Option<&GateResult> {
        self.gates.iter().find(|g| g.gate == gate)
    }
}

/// A perceptron: one linear unit and a step.
struct Perceptron {
    unit: Linear,
}

impl Perceptron {
    fn new(rng: &mut Rng) -> ferrograd::Result<Self> {
        let unit = Linear::new(2, 1, LinearConfig::default(), DType::F64, rng)?;
        Ok(Perceptron { unit })
    }

    /// 1 where `w . x + b > 0`, else 0, as a `[n, 1]` float tensor.
    fn predict(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        let _g = no_grad();
        self.unit.forward(x)?.gt_scalar(0.0)
    }

    fn classes(&self, x: &Tensor) -> ferrograd::Result<Vec<usize>> {
        Ok(self
            .predict(x)?
            .to_vec_f64()
            .iter()
            .map(|&p| p as usize)
            .collect())
    }

    /// One pass of the perceptron rule over the examples, one at a time; returns the number
    /// of mistakes made during the pass.
    fn epoch(&self, x: &Tensor, y: &Tensor, lr: f64) -> ferrograd::Result<usize> {
        let _g = no_grad();
        let mut mistakes = 0;
        for k in 0..x.shape()[0] {
            let xk = x.narrow(0, k, 1)?; // [1, 2]
            let err = y.narrow(0, k, 1)?.sub(&self.predict(&xk)?)?; // [1, 1]: -1, 0 or 1
            if err.item()? != 0.0 {
                mistakes += 1;
            }
            let w = &self.unit.weight;
            w.assign(&w.add(&err.matmul(&xk)?.mul_scalar(lr)?)?)?;
            if let Some(b) = &self.unit.bias {
                b.assign(&b.add(&err.reshape(&[1])?.mul_scalar(lr)?)?)?;
            }
        }
        Ok(mistakes)
    }
}

/// The labels of a set as a `[n, 1]` float column (the perceptron's targets).
fn float_labels(data: &Toy) -> ferrograd::Result<Tensor> {
    let y: Vec<f64> = data.labels.iter().map(|&c| c as f64).collect();
    Tensor::from_vec(y, &[data.labels.len(), 1])
}

/// Trains a 2-`hidden`-2 tanh MLP on the set with full-batch Adam; returns it and its loss.
fn train_mlp(data: &Toy, cfg: &Config, rng: &mut Rng) -> ferrograd::Result<(Sequential, f64)> {
    let arch = MlpConfig {
        input: 2,
        hidden: vec![cfg.hidden],
        output: 2,
        activation: Activation::Tanh,
        dropout: 0.0,
    };
    let model = mlp(&arch, DType::F64, rng)?;
    let last = regions::fit(&model, data, 0.05, cfg.mlp_steps)?;
    Ok((model, last))
}

/// The best XOR accuracy of `n` random lines `w1 x1 + w2 x2 + b = 0`.
fn best_random_line(n: usize, rng: &mut Rng) -> f64 {
    let xor = logic_gate(Gate::Xor);
    (0..n)
        .map(|_| {
            let (w1, w2, b) = (rng.normal(), rng.normal(), rng.normal());
            let pred: Vec<usize> = xor
                .points
                .iter()
                .map(|p| (w1 * p[0] + w2 * p[1] + b > 0.0) as usize)
                .collect();
            xor.accuracy(&pred)
        })
        .fold(0.0, f64::max)
}

/// Trains both models on AND, OR and XOR, measures them and writes the figure.
///
/// # Errors
/// Tensor errors, or the figure cannot be written.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let grid = Grid::new(-0.5..1.5, -0.5..1.5, cfg.grid, cfg.grid);
    let grid_x = grid.inputs(DType::F64)?;
    let mut gates = Vec::new();
    let (mut top, mut bottom) = (Vec::new(), Vec::new());
    for gate in [Gate::And, Gate::Or, Gate::Xor] {
        let data = logic_gate(gate);
        let (x, y) = (data.inputs(DType::F64)?, float_labels(&data)?);
        let mut rng = Rng::new(cfg.seed);

        let perceptron = Perceptron::new(&mut rng)?;
        let (mut best, mut converged_at) = (0.0f64, None);
        for epoch in 1..=cfg.perceptron_epochs {
            let mistakes = perceptron.epoch(&x, &y, cfg.perceptron_lr)?;
            best = best.max(data.accuracy(&perceptron.classes(&x)?));
            if mistakes == 0 && converged_at.is_none() {
                converged_at = Some(epoch);
            }
        }
        let perceptron_accuracy = data.accuracy(&perceptron.classes(&x)?);

        let (model, mlp_loss) = train_mlp(&data, cfg, &mut rng)?;
        let mlp_accuracy = data.accuracy(&regions::classes(&model, &x)?);

        top.push(regions::panel(
            format!(
                "perceptron, {}: {:.0}%",
                gate.name(),
                100.0 * perceptron_accuracy
            ),
            &data,
            &grid,
            perceptron.classes(&grid_x)?,
        ));
        bottom.push(regions::panel(
            format!("MLP, {}: {:.0}%", gate.name(), 100.0 * mlp_accuracy),
            &data,
            &grid,
            regions::classes(&model, &grid_x)?,
        ));
        gates.push(GateResult {
            gate,
            perceptron_accuracy,
            perceptron_best: best,
            perceptron_converged_at: converged_at,
            mlp_accuracy,
            mlp_loss,
        });
    }
    let best_random_line_xor = best_random_line(cfg.random_lines, &mut Rng::new(cfg.seed));
    let path = cfg.out.join("01-perceptron.png");
    top.append(&mut bottom);
    figure(&path, 3, (330, 330), &top)?;
    Ok(Outcome {
        gates,
        best_random_line_xor,
        figure: path,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = LessonArgs::from_env_or_exit("01-perceptron");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    let o = run(&cfg)?;
    println!("gate  perceptron (best, first error-free epoch)   MLP (loss)");
    for g in &o.gates {
        let converged = g
            .perceptron_converged_at
            .map_or("never".to_string(), |e| format!("epoch {e}"));
        println!(
            "{:<4}  {:>4.0}% (best {:>3.0}%, {:<11})          {:>4.0}% ({:.4})",
            g.gate.name(),
            100.0 * g.perceptron_accuracy,
            100.0 * g.perceptron_best,
            converged,
            100.0 * g.mlp_accuracy,
            g.mlp_loss
        );
    }
    println!(
        "best of {} random lines on XOR: {:.0}%",
        cfg.random_lines,
        100.0 * o.best_random_line_xor
    );
    println!("figure: {}", o.figure.display());
    Ok(())
}
