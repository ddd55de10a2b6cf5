//! Gradient clipping by global norm (PyTorch `torch.nn.utils.clip_grad_norm_`) and by value
//! (`torch.nn.utils.clip_grad_value_`).

use ferrograd_core::{DType, Error, GradStore, Result, Tensor, no_grad};

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
    clip_grad_norm_traceable(grads, params, max_norm)?.item()
}

/// [`clip_grad_norm`] without reading any value: the norm comes back as a 0-d tensor and the
/// gradients are always multiplied by `min(1, max_norm / (norm + 1e-6))` (by exactly 1 when
/// they are within the bound), so the clipping can be traced into a compiled training step.
///
/// # Errors
/// As [`clip_grad_norm`].
pub fn clip_grad_norm_traceable(
    grads: &mut GradStore,
    params: &[Tensor],
    max_norm: f64,
) -> Result<Tensor> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::Argument {
            op: "clip_grad_norm",
            msg: format!("max_norm must be non-negative, got {max_norm}"),
        });
    }
    let _guard = no_grad();
    let mut total: Option<Tensor> = None;
    for p in params {
        if let Some(g) = grads.get(p) {
            let sq = g.square()?.sum_all()?.to_dtype(DType::F64)?;
            total = Some(match total {
                Some(t) => t.add(&sq)?,
                None => sq,
            });
        }
    }
    let norm = total.unwrap_or_else(|| Tensor::scalar(0.0f64)).sqrt()?;
    let scale = norm
        .add_scalar(1e-6)?
        .recip()?
        .mul_scalar(max_norm)?
        .clamp(0.0, 1.0)?;
    for p in params {
        if let Some(g) = grads.remove(p) {
            let s = scale.to_dtype(g.dtype())?;
            grads.insert(p, g.mul(&s)?);
        }
    }
    Ok(norm)
}

/// Clamps every gradient of `params` elementwise to `[-clip_value, clip_value]` (PyTorch
/// `torch.nn.utils.clip_grad_value_`). Parameters without a gradient are ignored. Reads no
/// value, so it can be traced into a compiled training step.
///
/// ```
/// use ferrograd_core::Tensor;
/// let w = Tensor::from_vec(vec![3.0f64, -0.2], &[2])?.with_requires_grad(true);
/// let mut grads = w.mul(&w)?.sum_all()?.backward()?; // grad = 2w
/// ferrograd_nn::clip_grad_value(&mut grads, &[w.clone()], 1.0)?;
/// assert_eq!(grads.get(&w).unwrap().to_vec::<f64>()?, vec![1.0, -0.4]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for a negative or NaN `clip_value`.
pub fn clip_grad_value(grads: &mut GradStore, params: &[Tensor], clip_value: f64) -> Result<()> {
    if clip_value.is_nan() || clip_value < 0.0 {
        return Err(Error::Argument {
            op: "clip_grad_value",
            msg: format!("clip_value must be non-negative, got {clip_value}"),
        });
    }
    let _guard = no_grad();
    for p in params {
        if let Some(g) = grads.remove(p) {
            grads.insert(p, g.clamp(-clip_value, clip_value)?);
        }
    }
    Ok(())
}
