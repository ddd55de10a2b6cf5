//! Numerical verification of gradients (PyTorch `torch.autograd.gradcheck`): analytic gradients
//! from `backward` against float64 central finite differences, with a report that names the
//! worst element; and Hessian-vector products through double backward.

use std::fmt;

use crate::{BackwardOptions, DType, Error, Result, Rng, Tensor, no_grad};

/// Tolerances and step of [`gradcheck`].
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of the numerical value).
    pub rtol: f64,
    /// Seed of the random projection applied to non-scalar outputs.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    /// PyTorch's defaults: `eps = 1e-6`, `atol = 1e-5`, `rtol = 1e-3`.
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

/// The element whose analytic and numerical gradients disagree the most.
#[derive(Debug, Clone, PartialEq)]
pub struct WorstElement {
    /// Which input.
    pub input: usize,
    /// Multi-index of the element within that input.
    pub index: Vec<usize>,
    /// Gradient from `backward`.
    pub analytic: f64,
    /// Central finite difference.
    pub numeric: f64,
}

/// The outcome of [`gradcheck`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Number of input elements checked.
    pub checked: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_error: f64,
    /// Largest error relative to the tolerance `atol + rtol * |numeric|` (passes when <= 1).
    pub max_tolerance_ratio: f64,
    /// The element with the largest tolerance ratio.
    pub worst: Option<WorstElement>,
}

impl GradcheckReport {
    /// Whether every element was within tolerance.
    pub fn passed(&self) -> bool {
        self.max_tolerance_ratio <= 1.0
    }
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck {}: {} elements, max abs error {:.3e} ({:.3} of tolerance)",
            if self.passed() { "passed" } else { "FAILED" },
            self.checked,
            self.max_abs_error,
            self.max_tolerance_ratio
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst: input {} at {:?}, analytic {:.9e} vs numeric {:.9e}",
                w.input, w.index, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    index
}

/// Checks the gradients of `f` at `inputs` against central finite differences.
///
/// Every f64 input is checked; i64 inputs (labels, indices) are passed through unchanged. A
/// non-scalar output is reduced with a fixed random projection `sum(f(x) * v)`, which checks
/// the vector-Jacobian product that backward computes.
///
/// ```
/// use ferrograd_core::{gradcheck, GradcheckOptions, Tensor};
/// let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0], &[3])?;
/// let report = gradcheck(|v| v[0].tanh()?.mul(&v[0]), &[x], &GradcheckOptions::default())?;
/// assert!(report.passed(), "{report}");
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::UnsupportedDType`] for f32 inputs (finite differences need f64), and any error of
/// `f` or of `backward`.
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport> {
    let mut values: Vec<Vec<f64>> = Vec::new();
    let mut leaves = Vec::new();
    for t in inputs {
        match t.dtype() {
            DType::F64 => {
                let v = t.to_vec::<f64>()?;
                leaves.push(Tensor::from_vec(v.clone(), t.shape())?.with_requires_grad(true));
                values.push(v);
            }
            DType::I64 => {
                leaves.push(t.detach());
                values.push(Vec::new());
            }
            DType::F32 => {
                return Err(Error::UnsupportedDType {
                    op: "gradcheck (inputs must be f64)",
                    dtype: DType::F32,
                });
            }
        }
    }
    let out = f(&leaves)?;
    let projection = if out.numel() == 1 {
        out.ones_like()
    } else {
        Tensor::rand_uniform(out.shape(), 0.5, 1.5, DType::F64, &mut Rng::new(opts.seed))?
    };
    let objective = |xs: &[Tensor]| -> Result<f64> { f(xs)?.mul(&projection)?.sum_all()?.item() };
    let grads = out.mul(&projection)?.sum_all()?.backward()?;

    let mut report = GradcheckReport {
        checked: 0,
        max_abs_error: 0.0,
        max_tolerance_ratio: 0.0,
        worst: None,
    };
    let _guard = no_grad();
    for (i, t) in leaves.iter().enumerate() {
        if t.dtype() != DType::F64 {
            continue;
        }
        let analytic = match grads.get(t) {
            Some(g) => g.to_vec::<f64>()?,
            None => vec![0.0; t.numel()],
        };
        for j in 0..t.numel() {
            let probe = |delta: f64| -> Result<f64> {
                let mut v = values[i].clone();
                v[j] += delta;
                let mut xs = leaves.clone();
                xs[i] = Tensor::from_vec(v, t.shape())?;
                objective(&xs)
            };
            let numeric = (probe(opts.eps)? - probe(-opts.eps)?) / (2.0 * opts.eps);
            let err = (analytic[j] - numeric).abs();
            let ratio = if err.is_nan() {
                f64::INFINITY
            } else {
                err / (opts.atol + opts.rtol * numeric.abs())
            };
            report.checked += 1;
            report.max_abs_error = report.max_abs_error.max(err);
            if ratio > report.max_tolerance_ratio || report.worst.is_none() {
                report.max_tolerance_ratio = report.max_tolerance_ratio.max(ratio);
                report.worst = Some(WorstElement {
                    input: i,
                    index: unravel(j, t.shape()),
                    analytic: analytic[j],
                    numeric,
                });
            }
        }
    }
    Ok(report)
}

/// The Hessian-vector product `H v` of a scalar function at `inputs`, by differentiating
/// `grad(f) . v` a second time (double backward). Inputs and `v` pair up one to one.
///
/// ```
/// use ferrograd_core::{hessian_vector_product, Tensor};
/// // f(x) = sum(x^3): H = diag(6x).
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let v = Tensor::from_vec(vec![1.0f64, 1.0], &[2])?;
/// let hv = hessian_vector_product(|x| x[0].powf(3.0)?.sum_all(), &[x], &[v])?;
/// assert_eq!(hv[0].to_vec::<f64>()?, vec![6.0, 12.0]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] when `v` does not pair with the inputs, and any error of `f`/backward.
pub fn hessian_vector_product(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    v: &[Tensor],
) -> Result<Vec<Tensor>> {
    if v.len() != inputs.len() || v.iter().zip(inputs).any(|(a, b)| a.shape() != b.shape()) {
        return Err(Error::Argument {
            op: "hessian_vector_product",
            msg: "v must hold one tensor of each input's shape".into(),
        });
    }
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.with_requires_grad(true)).collect();
    let y = f(&leaves)?;
    let opts = BackwardOptions {
        create_graph: true,
        ..Default::default()
    };
    let mut grads = y.backward_with(&y.ones_like(), opts)?;
    let mut dot = Tensor::zeros(&[], y.dtype())?;
    for (x, vi) in leaves.iter().zip(v) {
        if let Some(g) = grads.remove(x) {
            dot = dot.add(&g.mul(vi)?.sum_all()?)?;
        }
    }
    let mut second = if dot.tracks_grad() {
        dot.backward()?
    } else {
        Default::default()
    };
    Ok(leaves
        .iter()
        .map(|x| second.remove(x).unwrap_or_else(|| x.zeros_like()))
        .collect())
}
