//! # Lesson 08: backpropagation by hand
//!
//! Backpropagation is the chain rule applied layer by layer, from the loss back to the first
//! weights, reusing at each layer the error signal ("delta") computed at the layer above. For
//! a two-layer network with a tanh hidden layer and a softmax output trained with mean
//! cross-entropy over `n` examples,
//!
//! ```text
//! z1 = x W1 + b1,   h = tanh(z1),   z2 = h W2 + b2,   p = softmax(z2),   L = -mean log p[y]
//! ```
//!
//! the textbook gradients are
//!
//! ```text
//! delta2 = (p - Y) / n                   (Y: the one-hot labels; softmax + cross-entropy)
//! dW2 = h^T delta2,    db2 = sum over rows of delta2
//! delta1 = (delta2 W2^T) * (1 - h^2)     (elementwise; tanh'(z) = 1 - tanh(z)^2)
//! dW1 = x^T delta1,    db1 = sum over rows of delta1
//! ```
//!
//! Each delta is "how much the loss changes per unit change of this layer's pre-activation";
//! a weight's gradient is the delta of its output times the activation of its input.
//!
//! This lesson computes these formulas with plain tensor operations (under `no_grad`, so
//! nothing is recorded), then lets ferrograd's autodiff compute the same gradients from the
//! forward pass alone, and finally estimates each gradient entry numerically with a central
//! finite difference `(L(w + h) - L(w - h)) / 2h`. It prints the three side by side for every
//! parameter of a 3-4-2 network.
//!
//! **Claim**: the hand-written chain rule and autodiff agree to rounding error (within 1e-12
//! in f64; here they are identical to the last bit, because autodiff performs the same
//! operations in the same order): autodiff *is* the chain rule, applied mechanically. Both
//! agree with the finite differences to within 1e-6; the finite difference is the inexact
//! one, off by about 1e-10 from truncation and rounding.
//!
//! **Figure** (`08-backprop-by-hand.png`): for each of the 26 parameter entries, the two
//! differences on a log scale: by hand vs autodiff (exact zeros drawn at 1e-18) and autodiff
//! vs finite difference (about 1e-10).
//!
//! Run: `cargo run --release --example 08-backprop-by-hand` (add `-- --quick` for the small
//! setting, `-- --out DIR` to choose the folder).

use std::error::Error;
use std::path::PathBuf;

use ferrograd::lesson::LessonArgs;
use ferrograd::nn::loss;
use ferrograd::plot::{Panel, Series, figure};
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figure is written.
    pub out: PathBuf,
    /// Examples in the batch.
    pub samples: usize,
    /// Layer sizes: inputs, hidden units, classes.
    pub sizes: [usize; 3],
    /// Step of the central finite difference.
    pub fd_step: f64,
    /// Seed of the data and the weights.
    pub seed: u64,
}

impl Config {
    /// The setting of `cargo run`.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/08-backprop-by-hand"),
            samples: 5,
            sizes: [3, 4, 2],
            fd_step: 1e-6,
            seed: 0,
        }
    }

    /// The setting of `--quick` and the test (the lesson is already small).
    pub fn quick() -> Self {
        Config::full()
    }
}

/// The network's parameters, in the order W1, b1, W2, b2.
#[derive(Debug, Clone)]
pub struct Params {
    /// Names, for printing.
    pub names: [&'static str; 4],
    /// `[3, 4]`, `[4]`, `[4, 2]`, `[2]`.
    pub tensors: Vec<Tensor>,
}

/// The gradient of one parameter computed three ways.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// The parameter's name.
    pub name: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// From the chain rule written out.
    pub by_hand: Vec<f64>,
    /// From `backward()`.
    pub autodiff: Vec<f64>,
    /// From central finite differences of the loss.
    pub finite_difference: Vec<f64>,
}

/// The measured numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The loss at the parameters.
    pub loss: f64,
    /// W1, b1, W2, b2.
    pub gradients: Vec<Gradients>,
    /// Largest `|by hand - autodiff|` over every entry.
    pub max_hand_vs_autodiff: f64,
    /// Largest `|autodiff - finite difference|` over every entry.
    pub max_autodiff_vs_fd: f64,
    /// The figure.
    pub figure: PathBuf,
}

fn randn(shape: &[usize], scale: f64, rng: &mut Rng) -> ferrograd::Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| scale * rng.normal()).collect(), shape)
}

/// The loss of the network: `z1 = x W1 + b1`, `h = tanh(z1)`, `z2 = h W2 + b2`, mean
/// cross-entropy of `softmax(z2)` at the labels `y`.
pub fn forward(p: &[Tensor], x: &Tensor, y: &Tensor) -> ferrograd::Result<Tensor> {
    let h = x.matmul(&p[0])?.add(&p[1])?.tanh()?;
    let z2 = h.matmul(&p[2])?.add(&p[3])?;
    loss::cross_entropy(&z2, y, 0.0)
}

/// The chain rule written out, with plain tensor ops and nothing recorded.
pub fn backprop_by_hand(p: &[Tensor], x: &Tensor, y: &Tensor) -> ferrograd::Result<Vec<Tensor>> {
    let _g = no_grad();
    let (w1, b1, w2, b2) = (&p[0], &p[1], &p[2], &p[3]);
    let n = x.shape()[0] as f64;
    // Forward, keeping what the backward pass needs.
    let h = x.matmul(w1)?.add(b1)?.tanh()?;
    let z2 = h.matmul(w2)?.add(b2)?;
    let probs = z2.softmax(-1)?;
    let one_hot = y.one_hot(w2.shape()[1], DType::F64)?;
    // Output layer: softmax followed by cross-entropy has the delta p - Y (per example).
    let delta2 = probs.sub(&one_hot)?.div_scalar(n)?;
    let dw2 = h.t()?.matmul(&delta2)?;
    let db2 = delta2.sum(&[0], false)?;
    // Hidden layer: send delta2 back through W2, times tanh'(z1) = 1 - h^2.
    let tanh_grad = h.square()?.neg()?.add_scalar(1.0)?;
    let delta1 = delta2.matmul(&w2.t()?)?.mul(&tanh_grad)?;
    let dw1 = x.t()?.matmul(&delta1)?;
    let db1 = delta1.sum(&[0], false)?;
    Ok(vec![dw1, db1, dw2, db2])
}

/// Central finite differences of the loss with respect to every entry of every parameter.
pub fn finite_differences(
    p: &[Tensor],
    x: &Tensor,
    y: &Tensor,
    h: f64,
) -> ferrograd::Result<Vec<Vec<f64>>> {
    let _g = no_grad();
    let mut out = Vec::new();
    for k in 0..p.len() {
        let base = p[k].to_vec::<f64>()?;
        let mut grads = Vec::with_capacity(base.len());
        for i in 0..base.len() {
            let loss_at = |delta: f64| -> ferrograd::Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let mut shifted = p.to_vec();
                shifted[k] = Tensor::from_vec(v, p[k].shape())?;
                forward(&shifted, x, y)?.item()
            };
            grads.push((loss_at(h)? - loss_at(-h)?) / (2.0 * h));
        }
        out.push(grads);
    }
    Ok(out)
}

/// Computes the gradients three ways and writes the figure.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    let mut rng = Rng::new(cfg.seed);
    let [d, hidden, classes] = cfg.sizes;
    let x = randn(&[cfg.samples, d], 1.0, &mut rng)?;
    let labels: Vec<i64> = (0..cfg.samples)
        .map(|_| rng.below(classes) as i64)
        .collect();
    let y = Tensor::from_vec(labels, &[cfg.samples])?;
    let params = Params {
        names: ["W1", "b1", "W2", "b2"],
        tensors: vec![
            randn(&[d, hidden], 0.8, &mut rng)?.with_requires_grad(true),
            randn(&[hidden], 0.5, &mut rng)?.with_requires_grad(true),
            randn(&[hidden, classes], 0.8, &mut rng)?.with_requires_grad(true),
            randn(&[classes], 0.5, &mut rng)?.with_requires_grad(true),
        ],
    };
    let p = &params.tensors;

    let by_hand = backprop_by_hand(p, &x, &y)?;
    let loss = forward(p, &x, &y)?;
    let grads = loss.backward()?;
    let fd = finite_differences(p, &x, &y, cfg.fd_step)?;

    let mut gradients = Vec::new();
    for (k, t) in p.iter().enumerate() {
        let autodiff = grads
            .get(t)
            .ok_or_else(|| format!("{} has no gradient", params.names[k]))?;
        gradients.push(Gradients {
            name: params.names[k],
            shape: t.shape().to_vec(),
            by_hand: by_hand[k].to_vec::<f64>()?,
            autodiff: autodiff.to_vec::<f64>()?,
            finite_difference: fd[k].clone(),
        });
    }
    let max_diff = |a: fn(&Gradients) -> &Vec<f64>, b: fn(&Gradients) -> &Vec<f64>| {
        gradients
            .iter()
            .flat_map(|g| a(g).iter().zip(b(g)).map(|(u, v)| (u - v).abs()))
            .fold(0.0, f64::max)
    };
    let max_hand_vs_autodiff = max_diff(|g| &g.by_hand, |g| &g.autodiff);
    let max_autodiff_vs_fd = max_diff(|g| &g.autodiff, |g| &g.finite_difference);

    // One point per parameter entry, numbered through W1, b1, W2, b2.
    let floor = |v: f64| v.max(1e-18).log10();
    let (mut exact, mut numeric) = (Vec::new(), Vec::new());
    let entries = gradients
        .iter()
        .flat_map(|g| g.by_hand.iter().zip(&g.autodiff).zip(&g.finite_difference));
    for (i, ((h, a), f)) in entries.enumerate() {
        exact.push((i as f64, floor((h - a).abs())));
        numeric.push((i as f64, floor((a - f).abs())));
    }
    let panel = Panel::new(
        "gradients of a 3-4-2 network: how far apart?",
        "parameter entry (W1: 0-11, b1: 12-15, W2: 16-23, b2: 24-25)",
        "log10 |difference|",
    )
    // The legend sits at the right, midway up: keep the points above and below it.
    .ranges(-1.0..26.0, -20.0..-8.5)
    .with(Series::points(
        "by hand vs autodiff (0 drawn at 1e-18)",
        0,
        exact,
    ))
    .with(Series::points("autodiff vs finite difference", 3, numeric));
    let figure_path = cfg.out.join("08-backprop-by-hand.png");
    figure(&figure_path, 1, (760, 420), &[panel])?;

    Ok(Outcome {
        loss: loss.item()?,
        gradients,
        max_hand_vs_autodiff,
        max_autodiff_vs_fd,
        figure: figure_path,
    })
}

/// `W1[1,2]` for entry 6 of a `[3, 4]` parameter.
fn entry_name(name: &str, shape: &[usize], i: usize) -> String {
    match shape {
        [_, cols] => format!("{name}[{},{}]", i / cols, i % cols),
        _ => format!("{name}[{i}]"),
    }
}

fn main() {
    let args = LessonArgs::from_env_or_exit("08-backprop-by-hand");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    match run(&cfg) {
        Ok(o) => {
            let [d, h, c] = cfg.sizes;
            println!(
                "{d}-{h}-{c} network (tanh hidden, softmax cross-entropy), {} examples, loss {:.6}",
                cfg.samples, o.loss
            );
            println!(
                "{:<9} {:>19} {:>19} {:>19} {:>11} {:>11}",
                "param", "by hand", "autodiff", "finite diff", "|hand-auto|", "|auto-fd|"
            );
            for g in &o.gradients {
                for i in 0..g.by_hand.len() {
                    let (h, a, f) = (g.by_hand[i], g.autodiff[i], g.finite_difference[i]);
                    println!(
                        "{:<9} {:>19.15} {:>19.15} {:>19.15} {:>11.1e} {:>11.1e}",
                        entry_name(g.name, &g.shape, i),
                        h,
                        a,
                        f,
                        (h - a).abs(),
                        (a - f).abs()
                    );
                }
            }
            println!(
                "max |by hand - autodiff| = {:.1e}, max |autodiff - finite difference| = {:.1e} (h = {:e})",
                o.max_hand_vs_autodiff, o.max_autodiff_vs_fd, cfg.fd_step
            );
            println!("wrote {}", o.figure.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
