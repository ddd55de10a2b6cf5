//! Gradient clipping by global norm (PyTorch `torch.nn.utils.clip_grad_norm_`).

use ferrograd_core::{Error, GradStore, Result, Tensor, no_grad};

/// Scales the gradients of `params` so that their joint L2 norm is at most `max_norm`, and
/// returns the norm before clipping. Parameters without a gradient are ignored.
///
/// ```
/// use ferrograd_core::Tensor;
/// let w = Tensor::from_vec(vec![3.0f64, 4.0], &[2])?.with_requires_grad(true);
/// let mut grads = w.mul(&w)?.sum_all()?.mul_scalar(0.5)?.backward()?; // grad = w
/// let norm = ferrograd_nn::clip_grad_norm(&mut grads, &[w.clone()], 1.0)?;
/// assert_eq!(norm, 5.0);
/// let g = grads.get(&w).unwrap().to_vec::<f64>()?;
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for a negative or NaN `max_norm`.
pub fn clip_grad_norm(grads: &mut GradStore, params: &[Tensor], max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::Argument {
            op: "clip_grad_norm",
            msg: format!("max_norm must be non-negative, got {max_norm}"),
        });
    }
    let _guard = no_grad();
    let mut total = 0.0;
    for p in params {
        if let Some(g) = grads.get(p) {
            total += g.square()?.sum_all()?.item()?;
        }
    }
    let norm = total.sqrt();
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        for p in params {
            if let Some(g) = grads.remove(p) {
                grads.insert(p, g.mul_scalar(scale)?);
            }
        }
    }
    Ok(norm)
}
