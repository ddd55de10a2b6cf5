//! # Lesson 03: why zero-centred activations train faster
//!
//! Take one neuron in a hidden layer: it computes `z = sum_j w_j a_j + b` from the previous
//! layer's outputs `a_j`. Backpropagation gives the gradient of the loss with respect to each
//! of its incoming weights as `dL/dw_j = delta * a_j`, where `delta = dL/dz` is one number per
//! example. So on one example, every component of the neuron's weight gradient has the sign
//! of `delta` times the sign of its input.
//!
//! If the previous layer is a sigmoid layer, every `a_j` lies in `(0, 1)`: all positive. Then
//! all the neuron's weight gradients have the *same* sign, and each update moves all its
//! weights up together or down together. To reach weights that need some to grow and some to
//! shrink, gradient descent has to zig-zag: alternate all-up and all-down steps that cancel
//! out partly. With tanh, whose outputs lie in `(-1, 1)` and are centred on zero, the inputs
//! have mixed signs, and so do the gradient components: each step can point wherever the loss
//! falls fastest. (LeCun et al., "Efficient BackProp", 1998; this is also why inputs are
//! normalised to zero mean.)
//!
//! `tanh(x) = 2 sigmoid(2x) - 1` is a sigmoid shifted to be zero-centred and made four times
//! steeper at 0, so the loss curves below show both effects together: the all-same-sign
//! steps, and the sigmoid's smaller slope (at most 1/4), which shrinks gradients layer after
//! layer in a deep network. The sign count isolates the first.
//!
//! The experiment: the same deep MLP (five hidden layers), the same initial weights, the same
//! data (two moons) and the same order of examples, trained by plain SGD one example per step,
//! once with sigmoid and once with tanh hidden units. We watch one neuron of the second hidden
//! layer, whose inputs are the first hidden layer's outputs.
//!
//! **Claim:** with sigmoid inputs, 100% of the steps give that neuron a weight gradient whose
//! components all share one sign; with tanh inputs, only a small fraction do. The tanh network
//! ends with a lower loss.
//!
//! **Figure** (`03-zero-centred.png`): the loss curves; the sign of each of the neuron's
//! incoming-weight gradients over the first steps (red: negative, blue: positive; one column
//! per step), for sigmoid and for tanh; and the direction of each update of two of its weights
//! `(w1, w2)` as a point on the unit circle: with sigmoid, only the two diagonal quarters
//! (both up or both down) are ever used.
//!
//! Run: `cargo run --release --example 03-zero-centred [-- --out DIR] [--quick]`.

use std::error::Error;
use std::path::PathBuf;

use ferrograd::data::toy::{Toy, two_moons};
use ferrograd::lesson::LessonArgs;
use ferrograd::nn::{
    Activation, MlpConfig, Module, Optimizer, Sequential, Sgd, SgdConfig, loss, mlp, named_params,
};
use ferrograd::plot::{Field, Panel, Series, figure};
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figure is written.
    pub out: PathBuf,
    /// Points of the two-moons set.
    pub points: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// SGD steps, one example each.
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Steps between two evaluations of the loss on the whole set.
    pub eval_every: usize,
    /// Steps shown in the sign-pattern panels.
    pub shown_steps: usize,
    /// Seed of the data, the initial weights and the order of examples.
    pub seed: u64,
}

impl Config {
    /// The setting of `cargo run`.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/03-zero-centred"),
            points: 200,
            depth: 5,
            width: 16,
            steps: 6000,
            lr: 0.05,
            eval_every: 100,
            shown_steps: 80,
            seed: 0,
        }
    }

    /// The small setting of `--quick` and the test.
    pub fn quick() -> Self {
        Config {
            steps: 1500,
            eval_every: 100,
            ..Config::full()
        }
    }
}

/// One training run.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The hidden activation.
    pub activation: Activation,
    /// `(step, loss on the whole set)`.
    pub loss: Vec<(f64, f64)>,
    /// Per step, the watched neuron's incoming-weight gradient.
    pub grads: Vec<Vec<f64>>,
    /// Fraction of steps whose gradient components all share one sign.
    pub same_sign_fraction: f64,
}

impl Trace {
    /// The last recorded loss.
    pub fn final_loss(&self) -> f64 {
        self.loss.last().map_or(f64::NAN, |p| p.1)
    }
}

/// The measured numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The sigmoid run.
    pub sigmoid: Trace,
    /// The tanh run.
    pub tanh: Trace,
    /// The figure.
    pub figure: PathBuf,
}

/// Whether all components are `>= 0`, or all `<= 0`.
fn same_sign(g: &[f64]) -> bool {
    g.iter().all(|&v| v >= 0.0) || g.iter().all(|&v| v <= 0.0)
}

fn full_loss(model: &Sequential, x: &Tensor, y: &Tensor) -> ferrograd::Result<f64> {
    let _g = no_grad();
    loss::cross_entropy(&model.forward(x)?, y, 0.0)?.item()
}

/// Trains the deep MLP with `activation`, one example per SGD step.
fn train(data: &Toy, activation: Activation, cfg: &Config) -> ferrograd::Result<Trace> {
    let mut rng = Rng::new(cfg.seed);
    let arch = MlpConfig {
        input: 2,
        hidden: vec![cfg.width; cfg.depth],
        output: 2,
        activation,
        dropout: 0.0,
    };
    let model = mlp(&arch, DType::F64, &mut rng)?;
    let params = named_params(&model);
    // The second Linear layer: its inputs are the first hidden layer's activations.
    let watched = params
        .iter()
        .find(|(name, _)| name == "layers.2.weight")
        .map(|(_, w)| w.clone())
        .ok_or_else(|| ferrograd::Error::Argument {
            op: "03-zero-centred",
            msg: "the model has no second hidden layer".into(),
        })?;
    let sgd = SgdConfig {
        lr: cfg.lr,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(params, sgd)?;
    let (x, y) = (data.inputs(DType::F64)?, data.targets()?);
    let mut order: Vec<usize> = Vec::new();
    let mut loss_curve = vec![(0.0, full_loss(&model, &x, &y)?)];
    let mut grads = Vec::with_capacity(cfg.steps);
    for step in 1..=cfg.steps {
        if order.is_empty() {
            order = (0..data.len()).collect();
            rng.shuffle(&mut order);
        }
        let k = order.pop().unwrap_or(0);
        let l = loss::cross_entropy(
            &model.forward(&x.narrow(0, k, 1)?)?,
            &y.narrow(0, k, 1)?,
            0.0,
        )?;
        let g = l.backward()?;
        if let Some(gw) = g.get(&watched) {
            grads.push(gw.narrow(0, 0, 1)?.to_vec_f64()); // row 0: neuron 0's inputs
        }
        opt.step(&g)?;
        if step % cfg.eval_every == 0 || step == cfg.steps {
            loss_curve.push((step as f64, full_loss(&model, &x, &y)?));
        }
    }
    let same = grads.iter().filter(|g| same_sign(g)).count();
    Ok(Trace {
        activation,
        loss: loss_curve,
        same_sign_fraction: same as f64 / grads.len().max(1) as f64,
        grads,
    })
}

/// Signs of the gradient components over the first steps, as a field: one column per step,
/// one row per component; red (palette 3) negative, blue (palette 0) positive, grey zero.
fn sign_panel(t: &Trace, steps: usize) -> Panel {
    let steps = steps.min(t.grads.len()).max(1);
    let rows = t.grads.first().map_or(1, Vec::len);
    let mut classes = Vec::with_capacity(steps * rows);
    for j in 0..rows {
        for i in 0..steps {
            let v = t
                .grads
                .get(i)
                .and_then(|g| g.get(j))
                .copied()
                .unwrap_or(0.0);
            classes.push(if v > 0.0 {
                0
            } else if v < 0.0 {
                3
            } else {
                7
            });
        }
    }
    Panel {
        field: Some(Field::Classes {
            nx: steps,
            ny: rows,
            classes,
        }),
        legend: false,
        ..Panel::new(
            format!(
                "{} inputs: gradient signs ({:.0}% same-sign)",
                t.activation,
                100.0 * t.same_sign_fraction
            ),
            "step",
            "incoming weight",
        )
        .ranges(0.0..steps as f64, 0.0..rows as f64)
    }
}

/// The direction of each update of the first two weights, on the unit circle.
fn directions(t: &Trace) -> Vec<(f64, f64)> {
    t.grads
        .iter()
        .filter_map(|g| {
            let (a, b) = (-g[0], -g[1]);
            let n = a.hypot(b);
            (n > 0.0).then(|| (a / n, b / n))
        })
        .collect()
}

/// Trains both networks, measures them and writes the figure.
///
/// # Errors
/// Tensor errors, or the figure cannot be written.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let data = two_moons(cfg.points, 0.1, &mut Rng::new(cfg.seed));
    let sigmoid = train(&data, Activation::Sigmoid, cfg)?;
    let tanh = train(&data, Activation::Tanh, cfg)?;

    let losses = Panel::new("loss on the whole set", "step", "cross-entropy")
        .with(Series::line("sigmoid", 3, sigmoid.loss.clone()))
        .with(Series::line("tanh", 0, tanh.loss.clone()));
    let dirs = Panel::new(
        "update directions of (w1, w2)",
        "change of w1",
        "change of w2",
    )
    .ranges(-1.2..1.2, -1.2..1.2)
    .with(Series::points("tanh", 0, directions(&tanh)))
    .with(Series::points("sigmoid", 3, directions(&sigmoid)));
    let path = cfg.out.join("03-zero-centred.png");
    figure(
        &path,
        2,
        (480, 360),
        &[
            losses,
            dirs,
            sign_panel(&sigmoid, cfg.shown_steps),
            sign_panel(&tanh, cfg.shown_steps),
        ],
    )?;
    Ok(Outcome {
        sigmoid,
        tanh,
        figure: path,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = LessonArgs::from_env_or_exit("03-zero-centred");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    let o = run(&cfg)?;
    println!(
        "{} hidden layers of {}, {} SGD steps of one example, lr {}",
        cfg.depth, cfg.width, cfg.steps, cfg.lr
    );
    println!("hidden    final loss   steps with all-same-sign gradients (one neuron, layer 2)");
    for t in [&o.sigmoid, &o.tanh] {
        println!(
            "{:<8}  {:.4}       {:.1}%",
            t.activation.to_string(),
            t.final_loss(),
            100.0 * t.same_sign_fraction
        );
    }
    println!("figure: {}", o.figure.display());
    Ok(())
}
