//! # Lesson 02: activation functions and their derivatives
//!
//! A neural network is a chain of linear maps with a non-linear *activation* applied to every
//! element in between; without it, the chain would collapse into one linear map. Training
//! needs the activation's derivative `f'(x)`, because backpropagation multiplies the incoming
//! gradient by `f'(z)` at every unit. The shape of `f'` therefore decides how well gradients
//! flow: sigmoid's derivative is at most 1/4, so a deep stack of sigmoids shrinks gradients
//! geometrically (vanishing gradients); tanh reaches 1 at zero but still saturates; ReLU passes
//! gradients unchanged for positive inputs and blocks them for negative ones ("dead" units),
//! which leaky ReLU, PReLU and ELU soften with a non-zero slope on the left. Softplus, Swish
//! (SiLU) and GELU are smooth versions of ReLU; Swish and GELU even dip below zero.
//!
//! Here no derivative is written by hand. Each activation is applied to one tensor holding a
//! grid of x values, and a single `backward()` of `sum(f(x))` gives every `f'(x_i)` at once,
//! because each output depends only on its own input. To show that autodiff is right, the
//! lesson compares it with the central finite difference `(f(x + h) - f(x - h)) / 2h`, which
//! only evaluates `f`. At a kink (ReLU at 0, hard tanh at +-1, hard sigmoid at +-3) the
//! derivative jumps and the finite difference averages both sides, so those points are skipped.
//!
//! **Claim**: for every activation the autodiff derivative matches the finite difference to
//! better than 1e-6 (in f64) away from kinks, and the maxima of the derivatives are as the
//! textbook says: sigmoid' peaks at 0.25 and tanh' at 1, both at x = 0.
//!
//! **Figure** (`02-activations.png`): one panel per activation, the function as a solid line
//! and its autodiff derivative dashed, on x in [-5, 5].
//!
//! Run: `cargo run --release --example 02-activations` (add `-- --quick` for the small
//! setting, `-- --out DIR` to choose the folder).

use std::path::PathBuf;

use ferrograd::Tensor;
use ferrograd::lesson::LessonArgs;
use ferrograd::nn::Activation;
use ferrograd::nn::activation_curve::{self, Curve, Summary};
use ferrograd::plot::{FunctionCurve, function_figure};

/// What to compute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The grid runs from `-x_max` to `x_max`.
    pub x_max: f64,
    /// Grid points (odd, so that 0 is one of them).
    pub points: usize,
    /// Step `h` of the central finite difference.
    pub fd_step: f64,
    /// The activations to show.
    pub activations: Vec<Activation>,
    /// Folder the figure is written into.
    pub out: PathBuf,
}

impl Config {
    /// The setting of the figure in the docs.
    pub fn full() -> Self {
        Config {
            x_max: 5.0,
            points: 1001,
            fd_step: 1e-5,
            activations: activation_curve::DEFAULT.to_vec(),
            out: PathBuf::from("runs/lessons/02-activations"),
        }
    }

    /// A coarser grid for the test.
    pub fn quick() -> Self {
        Config {
            points: 201,
            ..Config::full()
        }
    }
}

/// One activation's measurements.
#[derive(Debug, Clone)]
pub struct Row {
    /// The curve (values and autodiff derivatives on the grid).
    pub curve: Curve,
    /// Range of `f`, largest derivative, derivative at 0.
    pub summary: Summary,
    /// Largest `|autodiff - finite difference|` over the grid points away from kinks.
    pub fd_max_error: f64,
    /// How many grid points were compared.
    pub fd_points: usize,
}

/// What the lesson measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// One row per activation, in the order of the config.
    pub rows: Vec<Row>,
    /// The figure written.
    pub figure: PathBuf,
}

/// Where `a` is not smooth. The derivative jumps there, except for ELU with alpha = 1, whose
/// derivative is continuous at 0 but bends sharply (its second derivative jumps from 1 to 0),
/// which already spoils the central difference's accuracy.
pub fn kinks(a: Activation) -> &'static [f64] {
    match a {
        Activation::Relu | Activation::LeakyRelu(_) | Activation::PRelu | Activation::Elu(_) => {
            &[0.0]
        }
        Activation::HardTanh => &[-1.0, 1.0],
        Activation::HardSigmoid => &[-3.0, 3.0],
        _ => &[],
    }
}

/// The central finite difference of `a` at each of `xs`, from two forward evaluations.
pub fn finite_difference(a: Activation, xs: &[f64], h: f64) -> ferrograd::Result<Vec<f64>> {
    let eval = |shift: f64| -> ferrograd::Result<Vec<f64>> {
        let shifted: Vec<f64> = xs.iter().map(|x| x + shift).collect();
        a.apply(&Tensor::from_vec(shifted, &[xs.len()])?)?
            .to_vec::<f64>()
    };
    let (plus, minus) = (eval(h)?, eval(-h)?);
    Ok(plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * h))
        .collect())
}

/// Computes every curve, checks it against finite differences and writes the figure.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn std::error::Error>> {
    let xs = activation_curve::grid(-cfg.x_max, cfg.x_max, cfg.points);
    let mut rows = Vec::new();
    for &a in &cfg.activations {
        let curve = activation_curve::curve(a, &xs)?;
        let fd = finite_difference(a, &xs, cfg.fd_step)?;
        // Skip points whose finite-difference stencil straddles a kink.
        let smooth = |x: f64| kinks(a).iter().all(|k| (x - k).abs() > 2.0 * cfg.fd_step);
        let errors: Vec<f64> = xs
            .iter()
            .zip(curve.derivatives.iter().zip(&fd))
            .filter(|(x, _)| smooth(**x))
            .map(|(_, (d, f))| (d - f).abs())
            .collect();
        rows.push(Row {
            summary: curve.summary(),
            fd_max_error: errors.iter().copied().fold(0.0, f64::max),
            fd_points: errors.len(),
            curve,
        });
    }
    let figure = cfg.out.join("02-activations.png");
    let curves: Vec<FunctionCurve<'_>> = rows
        .iter()
        .map(|r| FunctionCurve {
            name: &r.curve.name,
            xs: &r.curve.xs,
            values: &r.curve.values,
            derivatives: &r.curve.derivatives,
        })
        .collect();
    function_figure(&figure, &curves)?;
    Ok(Outcome { rows, figure })
}

fn main() {
    let args = LessonArgs::from_env_or_exit("02-activations");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    match run(&cfg) {
        Ok(outcome) => {
            println!(
                "{} points on [-{x}, {x}]; derivatives by one backward pass, checked against central differences (h = {:e})",
                cfg.points,
                cfg.fd_step,
                x = cfg.x_max
            );
            println!(
                "{:<16} {:>22} {:>9} {:>9} {:>16}",
                "activation", "range of f", "max f'", "f'(0)", "|autodiff - fd|"
            );
            for r in &outcome.rows {
                let s = r.summary;
                println!(
                    "{:<16} {:>22} {:>9.4} {:>9.4} {:>16.1e}",
                    r.curve.name,
                    format!("[{:.4}, {:.4}]", s.min, s.max),
                    s.max_derivative,
                    s.derivative_at_zero,
                    r.fd_max_error
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
