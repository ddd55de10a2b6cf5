//! # Lesson 04: why a network needs nonlinear activations
//!
//! A linear layer computes `y = x W^T + b`. Stack two without anything in between:
//! `(x W1^T + b1) W2^T + b2 = x (W2 W1)^T + (b1 W2^T + b2)`, which is again one linear layer,
//! with weight `W2 W1` and bias `b1 W2^T + b2`. By induction, any depth of linear layers
//! collapses into a single one: the product of the weight matrices and one combined bias. Depth
//! buys nothing; such a network can only draw a straight decision boundary, exactly like
//! logistic regression (softmax regression with two classes), and it fails on XOR and two moons
//! just as logistic regression does.
//!
//! Put a nonlinearity such as ReLU, `max(0, z)`, after each hidden layer and the collapse no
//! longer happens: each layer bends the space a little, and the composition can carve curved,
//! even disconnected, regions.
//!
//! **Claim:** a network of five linear layers without activations gives the same outputs as its collapsed
//! single linear map, up to float64 round-off (about 1e-15), before and after training; trained
//! on XOR it gets at most 75%, and on two moons about what logistic regression gets, while the
//! same depth with ReLU gets 100% on XOR and nearly 100% on two moons.
//!
//! **Figure** (`04-nonlinearity.png`): decision regions on XOR (top) and two moons (bottom) of
//! logistic regression, the deep linear network and the deep ReLU network. On XOR the best
//! straight boundary under the cross-entropy is no boundary at all: both linear models end up
//! giving every point probability 1/2, so their two logits are equal up to round-off and their
//! XOR regions are speckled noise. On two moons the deep linear network's boundary is the same
//! straight line as logistic regression's.
//!
//! Run: `cargo run --release --example 04-nonlinearity [-- --out DIR] [--quick]`.

use std::error::Error;
use std::path::PathBuf;

use ferrograd::data::toy::{Gate, Grid, logic_gate, two_moons};
use ferrograd::lesson::{LessonArgs, regions};
use ferrograd::nn::{Activation, MlpConfig, Module, Sequential, mlp, named_params};
use ferrograd::plot::figure;
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figure is written.
    pub out: PathBuf,
    /// Hidden layers of the deep networks.
    pub depth: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Points of the two-moons set.
    pub points: usize,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Cells per side of the decision-region grid.
    pub grid: usize,
    /// Seed of the data and the initial weights.
    pub seed: u64,
}

impl Config {
    /// The setting of `cargo run`.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/04-nonlinearity"),
            depth: 4,
            width: 16,
            points: 200,
            steps: 1000,
            lr: 0.01,
            grid: 100,
            seed: 0,
        }
    }

    /// The small setting of `--quick` and the test.
    pub fn quick() -> Self {
        Config {
            steps: 400,
            lr: 0.02,
            grid: 40,
            ..Config::full()
        }
    }
}

/// Accuracies on one data set.
#[derive(Debug, Clone)]
pub struct SetResult {
    /// The set's name.
    pub name: String,
    /// Logistic regression (no hidden layer).
    pub logistic: f64,
    /// Hidden layers without activations.
    pub deep_linear: f64,
    /// The same hidden layers with ReLU.
    pub deep_relu: f64,
    /// Largest `|deep linear output - collapsed map output|` after training, on the grid.
    pub trained_collapse_diff: f64,
}

/// The measured numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Largest `|deep linear output - collapsed map output|` at initialisation, on random
    /// inputs.
    pub collapse_diff: f64,
    /// XOR, then two moons.
    pub sets: Vec<SetResult>,
    /// The figure.
    pub figure: PathBuf,
}

/// The single linear map `x M + c` equal to a stack of linear layers (with identity
/// activations in between), from the layers' weights `[out, in]` and biases `[out]`.
fn collapse(model: &Sequential) -> ferrograd::Result<(Tensor, Tensor)> {
    let _g = no_grad();
    let params = named_params(model);
    let mut m: Option<Tensor> = None; // [in, out]
    let mut c: Option<Tensor> = None; // [out]
    for (name, p) in &params {
        if name.ends_with(".weight") {
            let wt = p.t()?; // [in, out]
            m = Some(match &m {
                None => wt.clone(),
                Some(m) => m.matmul(&wt)?,
            });
            c = c
                .map(|c| c.unsqueeze(0)?.matmul(&wt)?.squeeze(0))
                .transpose()?;
        } else if name.ends_with(".bias") {
            c = Some(match &c {
                None => p.clone(),
                Some(c) => c.add(p)?,
            });
        }
    }
    let m = m.ok_or_else(|| ferrograd::Error::Argument {
        op: "collapse",
        msg: "the model has no linear layer".into(),
    })?;
    let c = match c {
        Some(c) => c,
        None => Tensor::zeros(&[m.shape()[1]], m.dtype())?,
    };
    Ok((m, c))
}

/// The largest `|model(x) - (x M + c)|`.
fn collapse_diff(model: &Sequential, x: &Tensor) -> ferrograd::Result<f64> {
    let _g = no_grad();
    let (m, c) = collapse(model)?;
    let deep = model.forward(x)?;
    let single = x.matmul(&m)?.add(&c)?;
    deep.sub(&single)?.abs()?.max(&[], false)?.item()
}

fn network(depth: usize, cfg: &Config, act: Activation) -> ferrograd::Result<Sequential> {
    let arch = MlpConfig {
        input: 2,
        hidden: vec![cfg.width; depth],
        output: 2,
        activation: act,
        dropout: 0.0,
    };
    mlp(&arch, DType::F64, &mut Rng::new(cfg.seed))
}

/// Checks the collapse, trains the three models on both sets and writes the figure.
///
/// # Errors
/// Tensor errors, or the figure cannot be written.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let mut rng = Rng::new(cfg.seed);
    let probe = Tensor::randn(&[1000, 2], 0.0, 3.0, DType::F64, &mut rng)?;
    let collapse_diff_init =
        collapse_diff(&network(cfg.depth, cfg, Activation::Identity)?, &probe)?;

    let sets = [
        ("XOR".to_string(), logic_gate(Gate::Xor)),
        (
            "two moons".to_string(),
            two_moons(cfg.points, 0.1, &mut rng),
        ),
    ];
    let mut results = Vec::new();
    let mut panels = Vec::new();
    for (name, data) in &sets {
        let (xr, yr) = data.bounds(0.5);
        let grid = Grid::new(xr, yr, cfg.grid, cfg.grid);
        let grid_x = grid.inputs(DType::F64)?;
        let x = data.inputs(DType::F64)?;
        let mut acc = Vec::new();
        let mut trained_diff = f64::NAN;
        for (label, depth, act) in [
            ("logistic regression", 0, Activation::Identity),
            ("deep linear", cfg.depth, Activation::Identity),
            ("deep ReLU", cfg.depth, Activation::Relu),
        ] {
            let model = network(depth, cfg, act)?;
            regions::fit(&model, data, cfg.lr, cfg.steps)?;
            let a = data.accuracy(&regions::classes(&model, &x)?);
            if label == "deep linear" {
                trained_diff = collapse_diff(&model, &grid_x)?;
            }
            acc.push(a);
            panels.push(regions::panel(
                format!("{label}, {name}: {:.0}%", 100.0 * a),
                data,
                &grid,
                regions::classes(&model, &grid_x)?,
            ));
        }
        results.push(SetResult {
            name: name.clone(),
            logistic: acc[0],
            deep_linear: acc[1],
            deep_relu: acc[2],
            trained_collapse_diff: trained_diff,
        });
    }
    let path = cfg.out.join("04-nonlinearity.png");
    figure(&path, 3, (330, 330), &panels)?;
    Ok(Outcome {
        collapse_diff: collapse_diff_init,
        sets: results,
        figure: path,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = LessonArgs::from_env_or_exit("04-nonlinearity");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    let o = run(&cfg)?;
    println!(
        "{} hidden layers of {} without activations vs their collapsed single linear map:",
        cfg.depth, cfg.width
    );
    println!(
        "  max |difference| = {:.1e} at initialisation (1000 random inputs)",
        o.collapse_diff
    );
    for s in &o.sets {
        println!(
            "  max |difference| = {:.1e} after training on {} (grid inputs)",
            s.trained_collapse_diff, s.name
        );
    }
    println!("accuracy     logistic   deep linear   deep ReLU");
    for s in &o.sets {
        println!(
            "{:<11}  {:>6.1}%   {:>9.1}%   {:>8.1}%",
            s.name,
            100.0 * s.logistic,
            100.0 * s.deep_linear,
            100.0 * s.deep_relu
        );
    }
    println!("figure: {}", o.figure.display());
    Ok(())
}
