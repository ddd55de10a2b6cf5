//! Function transforms built on the backward walk (JAX's `jvp`, `vjp`, `jacfwd`/`jacrev`,
//! `hessian`; PyTorch's `torch.func`): derivatives of a function `f(inputs) -> output` rather
//! than of a recorded tensor.
//!
//! Forward mode is the transpose of reverse mode, so it needs no second rule set. For a
//! cotangent `u` of the output, `u -> vjp(f, x, u) = J^T u` is linear in `u`; it is recorded
//! (with `create_graph`) as a graph whose inputs are `u` and `x`, and walking that graph
//! backward from `J^T u` seeded with a tangent `v` gives `(J^T)^T v = J v` as the gradient with
//! respect to `u`. The walk goes only through the part of the graph that depends on `u` (see
//! `Tensor::backward_to`), which is the backward pass's own size: one `jvp` costs a forward
//! pass, one recorded backward pass and one pass over that backward pass, whatever the number
//! of outputs. Every op's backward rule is written in tensor ops, so every op has forward mode
//! too, in both graph modes, and forward mode composes with reverse mode (a Hessian-vector
//! product is the `jvp` of a gradient).

use super::enable_grad;
use crate::{DType, Error, Result, Tensor};

/// How [`jacobian`] builds the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JacobianMode {
    /// Reverse mode when the inputs have at least as many elements as the output (wide
    /// inputs), forward mode otherwise (wide outputs).
    #[default]
    Auto,
    /// One row per backward pass: `m` passes for `m` output elements (JAX `jacrev`).
    Reverse,
    /// One column per forward (`jvp`) pass: `n` passes for `n` input elements (JAX `jacfwd`).
    Forward,
}

impl JacobianMode {
    /// The mode [`JacobianMode::Auto`] picks for `inputs` input elements and `outputs` output
    /// elements; the explicit modes are returned unchanged.
    pub fn resolve(self, inputs: usize, outputs: usize) -> JacobianMode {
        match self {
            JacobianMode::Auto if inputs < outputs => JacobianMode::Forward,
            JacobianMode::Auto => JacobianMode::Reverse,
            m => m,
        }
    }
}

/// Fresh leaves over the inputs' data, or the inputs themselves when they are already part of
/// a recorded graph (so an outer reverse pass can differentiate through the transform).
fn leaves_of(op: &'static str, inputs: &[Tensor]) -> Result<(Vec<Tensor>, bool)> {
    if let Some(bad) = inputs.iter().find(|t| !t.dtype().is_float()) {
        return Err(Error::UnsupportedDType {
            op,
            dtype: bad.dtype(),
        });
    }
    let outer = inputs.iter().any(Tensor::tracks_grad);
    let leaves = inputs
        .iter()
        .map(|t| {
            if t.tracks_grad() {
                t.clone()
            } else {
                t.with_requires_grad(true)
            }
        })
        .collect();
    Ok((leaves, outer))
}

fn check_pairs(op: &'static str, what: &str, inputs: &[Tensor], with: &[Tensor]) -> Result<()> {
    let fits = with.len() == inputs.len()
        && inputs
            .iter()
            .zip(with)
            .all(|(x, v)| x.shape() == v.shape() && x.dtype() == v.dtype());
    if fits {
        Ok(())
    } else {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        Err(Error::Argument {
            op,
            msg: format!(
                "expected one {what} of each input's shape and dtype (shapes {shapes:?}), got {} \
                 tensors",
                with.len()
            ),
        })
    }
}

fn check_output(op: &'static str, y: &Tensor) -> Result<()> {
    if y.dtype().is_float() {
        Ok(())
    } else {
        Err(Error::UnsupportedDType {
            op,
            dtype: y.dtype(),
        })
    }
}

/// The gradients of `y` with respect to `leaves` for the cotangent `u`, zeros where `y` does
/// not depend on a leaf.
fn pullback(y: &Tensor, u: &Tensor, leaves: &[Tensor], create_graph: bool) -> Result<Vec<Tensor>> {
    let mut grads = y.backward_to(u, leaves, create_graph)?;
    Ok(leaves
        .iter()
        .map(|x| grads.remove(x).unwrap_or_else(|| x.zeros_like()))
        .collect())
}

/// The recorded pullback of `y`: a cotangent leaf `u` and `J^T u` for each leaf (`None` where
/// `y` does not depend on it), differentiable with respect to `u`.
fn linear_pullback(y: &Tensor, leaves: &[Tensor]) -> Result<(Tensor, Vec<Option<Tensor>>)> {
    let u = y.zeros_like().with_requires_grad(true);
    let mut grads = y.backward_to(&u, leaves, true)?;
    Ok((u, leaves.iter().map(|x| grads.remove(x)).collect()))
}

/// The output `f(inputs)` and the Jacobian-vector product `J v` for tangents `v` (one per
/// input, of its shape): the directional derivative of `f` along `v`, computed in one forward
/// pass whatever the number of outputs (JAX `jax.jvp`, PyTorch `torch.func.jvp`).
///
/// Works eagerly and inside a traced or compiled function, and composes with reverse mode:
/// the `jvp` of a gradient is a Hessian-vector product, and when an input is itself part of a
/// recorded graph the result can be differentiated again.
///
/// ```
/// use ferrograd_core::{jvp, Tensor};
/// // f(x) = sin(x) * x, so J = diag(cos(x) x + sin(x)).
/// let x = Tensor::from_vec(vec![0.5f64, 1.0], &[2])?;
/// let v = Tensor::from_vec(vec![1.0f64, -2.0], &[2])?;
/// let (y, jv) = jvp(|x| x[0].sin()?.mul(&x[0]), &[x], &[v])?;
/// let want = [0.5f64.cos() * 0.5 + 0.5f64.sin(), -2.0 * (1.0f64.cos() + 1.0f64.sin())];
/// for (g, w) in jv.to_vec::<f64>()?.iter().zip(want) {
///     assert!((g - w).abs() < 1e-12);
/// }
/// assert_eq!(y.shape(), &[2]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] when the tangents do not pair with the inputs,
/// [`Error::UnsupportedDType`] for integer inputs or outputs, and any error of `f` or of the
/// backward rules.
pub fn jvp(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    tangents: &[Tensor],
) -> Result<(Tensor, Tensor)> {
    check_pairs("jvp", "tangent", inputs, tangents)?;
    let (leaves, outer) = leaves_of("jvp", inputs)?;
    let _grad = enable_grad();
    let y = f(&leaves)?;
    check_output("jvp", &y)?;
    let (u, grads) = linear_pullback(&y, &leaves)?;
    let mut dot: Option<Tensor> = None;
    for (g, v) in grads.iter().zip(tangents) {
        if let Some(g) = g {
            let term = g.mul(v)?.sum_all()?;
            dot = Some(match dot {
                Some(d) => d.add(&term)?,
                None => term,
            });
        }
    }
    let jv = match dot {
        Some(d) => pullback(&d, &d.ones_like(), std::slice::from_ref(&u), outer)?.remove(0),
        None => y.zeros_like(),
    };
    Ok((y, jv))
}

/// The output `f(inputs)` and the vector-Jacobian product `J^T u` for a cotangent `u` of the
/// output's shape: one gradient per input (JAX `jax.vjp`, PyTorch `torch.func.vjp`). The
/// gradients stay differentiable when an input is part of a recorded graph.
///
/// ```
/// use ferrograd_core::{vjp, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let u = Tensor::from_vec(vec![1.0f64, 10.0], &[2])?;
/// let (_, g) = vjp(|x| x[0].square(), &[x], &u)?;
/// assert_eq!(g[0].to_vec::<f64>()?, vec![2.0, 40.0]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] / [`Error::DTypeMismatch`] when `u` does not match the output,
/// [`Error::UnsupportedDType`] for integer inputs or outputs, and any error of `f` or of the
/// backward rules.
pub fn vjp(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    cotangent: &Tensor,
) -> Result<(Tensor, Vec<Tensor>)> {
    let (leaves, outer) = leaves_of("vjp", inputs)?;
    let _grad = enable_grad();
    let y = f(&leaves)?;
    check_output("vjp", &y)?;
    let grads = pullback(&y, cotangent, &leaves, outer)?;
    Ok((y, grads))
}

/// A one-hot tensor of `shape` with a 1 at flat position `k`.
fn basis(shape: &[usize], k: usize, dtype: DType) -> Result<Tensor> {
    let mut v = vec![0.0f64; shape.iter().product()];
    v[k] = 1.0;
    Tensor::from_vec(v, shape)?.to_dtype(dtype)
}

/// The Jacobian of `f` at `inputs`: one tensor per input, of shape `output ++ input` (entry
/// `[i.., j..]` is `d out[i..] / d in[j..]`) (JAX `jacrev`/`jacfwd`, PyTorch
/// `torch.func.jacrev`/`jacfwd`).
///
/// Reverse mode computes one row per backward pass over the recorded graph, `m` passes for an
/// output of `m` elements; forward mode records one backward pass and then computes one
/// column per pass over it, `n` passes for inputs of `n` elements in all. `mode` picks one or
/// lets the shapes decide ([`JacobianMode::Auto`]).
///
/// ```
/// use ferrograd_core::{jacobian, JacobianMode, Tensor};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2])?;
/// let x = Tensor::from_vec(vec![1.0f64, -1.0], &[2])?;
/// for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
///     let j = jacobian(|x| a.matmul(&x[0]), &[x.clone()], mode)?;
///     assert_eq!(j[0].shape(), &[3, 2]);
///     assert_eq!(j[0].to_vec::<f64>()?, a.to_vec::<f64>()?);
/// }
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::UnsupportedDType`] for integer inputs or outputs, and any error of `f` or of the
/// backward rules.
pub fn jacobian(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    mode: JacobianMode,
) -> Result<Vec<Tensor>> {
    let (leaves, outer) = leaves_of("jacobian", inputs)?;
    let _grad = enable_grad();
    let y = f(&leaves)?;
    check_output("jacobian", &y)?;
    let (m, n) = (y.numel(), inputs.iter().map(Tensor::numel).sum());
    let block_shape = |x: &Tensor| [y.shape(), x.shape()].concat();
    match mode.resolve(n, m) {
        JacobianMode::Reverse => {
            let mut rows: Vec<Vec<Tensor>> = vec![Vec::with_capacity(m); leaves.len()];
            for k in 0..m {
                let seed = basis(y.shape(), k, y.dtype())?;
                for (i, g) in pullback(&y, &seed, &leaves, outer)?.into_iter().enumerate() {
                    rows[i].push(g);
                }
            }
            rows.iter()
                .zip(&leaves)
                .map(|(r, x)| stack_or_empty(r, x.dtype())?.reshape(&block_shape(x)))
                .collect()
        }
        _ => {
            let (u, grads) = linear_pullback(&y, &leaves)?;
            let u_only = std::slice::from_ref(&u);
            let mut blocks = Vec::with_capacity(leaves.len());
            for (x, g) in leaves.iter().zip(&grads) {
                let Some(g) = g else {
                    blocks.push(Tensor::zeros(&block_shape(x), x.dtype())?);
                    continue;
                };
                // Column k is J e_k: the recorded pullback's gradient seeded with e_k.
                let mut cols = Vec::with_capacity(x.numel());
                for k in 0..x.numel() {
                    let seed = basis(x.shape(), k, x.dtype())?;
                    let col = pullback(g, &seed, u_only, outer)?.remove(0);
                    cols.push(col.reshape(&[m])?);
                }
                let j = stack_or_empty(&cols, x.dtype())?.t()?;
                blocks.push(j.reshape(&block_shape(x))?);
            }
            Ok(blocks)
        }
    }
}

/// `tensors` stacked along a new first axis; an empty `[0]` tensor when there are none.
fn stack_or_empty(tensors: &[Tensor], dtype: DType) -> Result<Tensor> {
    if tensors.is_empty() {
        return Tensor::zeros(&[0], dtype);
    }
    let refs: Vec<&Tensor> = tensors.iter().collect();
    Tensor::stack(&refs, 0)
}

/// The Hessian of a scalar function: block `[i][j]` has shape `input_i ++ input_j` and holds
/// `d^2 f / d in_i d in_j` (JAX `jax.hessian`, PyTorch `torch.func.hessian`). Computed forward
/// over reverse, as the forward-mode Jacobian of the gradient: one recorded backward pass for
/// the gradient, then one pass per input element.
///
/// ```
/// use ferrograd_core::{hessian, Tensor};
/// // f(x, y) = x0^2 y + x1 y^3.
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let y = Tensor::scalar(3.0f64);
/// let h = hessian(|v| {
///     let (x, y) = (&v[0], &v[1]);
///     let x0 = x.narrow(0, 0, 1)?.sum_all()?;
///     let x1 = x.narrow(0, 1, 1)?.sum_all()?;
///     x0.square()?.mul(y)?.add(&x1.mul(&y.powf(3.0)?)?)
/// }, &[x, y])?;
/// assert_eq!(h[0][0].to_vec::<f64>()?, vec![6.0, 0.0, 0.0, 0.0]);
/// assert_eq!(h[0][1].to_vec::<f64>()?, vec![2.0, 27.0]);
/// assert_eq!(h[1][1].item()?, 36.0);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] unless `f` returns one element, and as [`jacobian`].
pub fn hessian(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) -> Result<Vec<Vec<Tensor>>> {
    let gradient = |xs: &[Tensor]| -> Result<Tensor> {
        let y = f(xs)?;
        if y.numel() != 1 {
            return Err(Error::Shape {
                op: "hessian",
                expected: "a function with one output element".into(),
                got: y.shape().to_vec(),
            });
        }
        let grads = pullback(&y, &y.ones_like(), xs, true)?;
        let flat: Vec<Tensor> = grads
            .iter()
            .map(|g| g.reshape(&[g.numel()]))
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = flat.iter().collect();
        Tensor::cat(&refs, 0)
    };
    let columns = jacobian(gradient, inputs, JacobianMode::Forward)?;
    let mut rows = vec![Vec::with_capacity(inputs.len()); inputs.len()];
    let mut start = 0;
    for (i, xi) in inputs.iter().enumerate() {
        for (xj, col) in inputs.iter().zip(&columns) {
            let block = col.narrow(0, start, xi.numel())?;
            rows[i].push(block.reshape(&[xi.shape(), xj.shape()].concat())?);
        }
        start += xi.numel();
    }
    Ok(rows)
}
