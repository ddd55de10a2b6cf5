//! Activation functions and their derivatives on a grid, as plain numbers for figures and
//! tables. The derivative comes from autodiff, not from a formula: the grid is one tensor `x`,
//! the activation is applied elementwise, and one `backward` of `sum(f(x))` gives
//! `d sum / d x_i = f'(x_i)` at every grid point at once.

use ferrograd_core::{Error, Result, Tensor};

use crate::Activation;

/// The activations drawn when none are named (lesson 02, `ferrograd plot-activations`). Leaky
/// ReLU uses slope 0.1 (rather than PyTorch's 0.01) so that its negative side is visible;
/// PReLU is drawn at its initial learnable slope 0.25.
pub const DEFAULT: [Activation; 11] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::HardSigmoid,
    Activation::HardTanh,
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::PRelu,
    Activation::Elu(1.0),
    Activation::Softplus,
    Activation::Silu,
    Activation::Gelu,
];

/// Whether `a` acts on each element alone (softmax, log-softmax and maxout mix elements, so a
/// curve `f(x)` does not describe them).
pub fn is_elementwise(a: Activation) -> bool {
    !matches!(
        a,
        Activation::Softmax | Activation::LogSoftmax | Activation::Maxout(_)
    )
}

/// `n` evenly spaced points from `lo` to `hi`, both included (`numpy.linspace`). With an odd
/// `n` and `lo = -hi`, the middle point is exactly 0.
pub fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| lo + (hi - lo) * (i as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// The name shown for an activation (PReLU with its slope).
pub fn label(a: Activation) -> String {
    match a {
        Activation::PRelu => format!("prelu:{}", crate::PRelu::INITIAL_SLOPE),
        a => a.to_string(),
    }
}

/// An activation's values and derivatives on a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The activation.
    pub activation: Activation,
    /// Its name as shown in figures and tables ([`label`]).
    pub name: String,
    /// The grid.
    pub xs: Vec<f64>,
    /// `f(x)` at each grid point.
    pub values: Vec<f64>,
    /// `f'(x)` at each grid point, from autodiff (at a kink, the one-sided value the backward
    /// rule picks).
    pub derivatives: Vec<f64>,
}

/// A few numbers that characterise a curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Smallest `f(x)` on the grid.
    pub min: f64,
    /// Largest `f(x)` on the grid.
    pub max: f64,
    /// Largest `f'(x)` on the grid.
    pub max_derivative: f64,
    /// `f'` at the grid point nearest 0.
    pub derivative_at_zero: f64,
}

impl Curve {
    /// The curve's summary numbers (NaN for an empty grid).
    pub fn summary(&self) -> Summary {
        let fold_max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
        let fold_min = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::min);
        let zero = self
            .xs
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map_or(f64::NAN, |(i, _)| self.derivatives[i]);
        Summary {
            min: fold_min(&self.values),
            max: fold_max(&self.values),
            max_derivative: fold_max(&self.derivatives),
            derivative_at_zero: zero,
        }
    }
}

/// Evaluates `a` and its derivative at every point of `xs` (in f64), the derivative by one
/// backward pass.
///
/// ```
/// use ferrograd_nn::Activation;
/// use ferrograd_nn::activation_curve::{curve, grid};
/// let c = curve(Activation::Sigmoid, &grid(-4.0, 4.0, 9))?;
/// assert_eq!(c.derivatives[4], 0.25); // sigmoid'(0) = 1/4
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for an activation that is not elementwise (softmax, log-softmax,
/// maxout); errors of the tensor ops.
pub fn curve(a: Activation, xs: &[f64]) -> Result<Curve> {
    if !is_elementwise(a) {
        return Err(Error::Argument {
            op: "activation curve",
            msg: format!("{a} mixes the elements of its input, so it has no curve f(x)"),
        });
    }
    let x = Tensor::from_vec(xs.to_vec(), &[xs.len()])?.with_requires_grad(true);
    let y = a.apply(&x)?;
    let grads = y.sum_all()?.backward()?;
    let derivatives = match grads.get(&x) {
        Some(g) => g.to_vec::<f64>()?,
        // Not reached by the activations above; a constant function would have f' = 0.
        None => vec![0.0; xs.len()],
    };
    Ok(Curve {
        activation: a,
        name: label(a),
        xs: xs.to_vec(),
        values: y.to_vec::<f64>()?,
        derivatives,
    })
}
