//! Loss functions (PyTorch `torch.nn.functional`): MSE, L1, Huber, binary cross-entropy on
//! probabilities and on logits, cross-entropy on logits with integer labels (with optional label
//! smoothing) and negative log-likelihood. Each returns the mean over all elements (or samples);
//! the `*_per_sample`/`reduction`-free forms are reachable by composing core ops.

use ferrograd_core::{DType, Error, Result, Tensor};

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape {
            op,
            expected: format!("a target of the prediction's shape {:?}", a.shape()),
            got: b.shape().to_vec(),
        });
    }
    Ok(())
}

/// Mean squared error (PyTorch `F.mse_loss`).
///
/// ```
/// use ferrograd_core::Tensor;
/// let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let t = Tensor::from_vec(vec![0.0f64, 4.0], &[2])?;
/// assert_eq!(ferrograd_nn::loss::mse(&p, &t)?.item()?, 2.5);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn mse(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("mse", pred, target)?;
    pred.sub(target)?.square()?.mean(&[], false)
}

/// Mean absolute error (PyTorch `F.l1_loss`).
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn l1(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("l1", pred, target)?;
    pred.sub(target)?.abs()?.mean(&[], false)
}

/// Huber loss (PyTorch `F.huber_loss`): `d^2 / 2` where `|d| < delta`, else
/// `delta * (|d| - delta / 2)`.
///
/// # Errors
/// [`Error::Shape`] when shapes differ, [`Error::Argument`] for `delta <= 0`.
pub fn huber(pred: &Tensor, target: &Tensor, delta: f64) -> Result<Tensor> {
    same_shape("huber", pred, target)?;
    if delta.is_nan() || delta <= 0.0 {
        return Err(Error::Argument {
            op: "huber",
            msg: format!("delta must be positive, got {delta}"),
        });
    }
    let d = pred.sub(target)?;
    let a = d.abs()?;
    let quadratic = d.square()?.mul_scalar(0.5)?;
    let linear = a.sub_scalar(0.5 * delta)?.mul_scalar(delta)?;
    Tensor::where_cond(&a.lt_scalar(delta)?, &quadratic, &linear)?.mean(&[], false)
}

/// Binary cross-entropy of probabilities against targets in `[0, 1]` (PyTorch
/// `F.binary_cross_entropy`; like PyTorch, each log is clamped at -100).
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn binary_cross_entropy(prob: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("binary_cross_entropy", prob, target)?;
    prob.binary_cross_entropy(target)?.mean(&[], false)
}

/// Binary cross-entropy on logits, `softplus(x) - x t` with the stable softplus
/// `max(x, 0) + ln(1 + e^-|x|)` (PyTorch `F.binary_cross_entropy_with_logits`). Its gradient
/// is `sigmoid(x) - t` everywhere, `x = 0` included.
///
/// ```
/// use ferrograd_core::Tensor;
/// let x = Tensor::from_vec(vec![0.0f64, 0.0], &[2])?.with_requires_grad(true);
/// let t = Tensor::from_vec(vec![0.0f64, 1.0], &[2])?;
/// let grads = ferrograd_nn::loss::binary_cross_entropy_with_logits(&x, &t)?.backward()?;
/// assert_eq!(grads.get(&x).unwrap().to_vec::<f64>()?, vec![0.25, -0.25]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape("binary_cross_entropy_with_logits", logits, target)?;
    crate::activation::softplus(logits)?
        .sub(&logits.mul(target)?)?
        .mean(&[], false)
}

/// Mean cross-entropy of logits `[n, c]` against i64 labels `[n]`, with optional label
/// smoothing `eps` (PyTorch `F.cross_entropy(logits, labels, label_smoothing=eps)`): the
/// target puts `1 - eps + eps/c` on the label and `eps/c` elsewhere.
///
/// ```
/// use ferrograd_core::Tensor;
/// let logits = Tensor::from_vec(vec![0.0f64, 0.0], &[1, 2])?;
/// let labels = Tensor::from_vec(vec![1i64], &[1])?;
/// let l = ferrograd_nn::loss::cross_entropy(&logits, &labels, 0.0)?.item()?;
/// assert!((l - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// Shape and label errors of [`Tensor::softmax_cross_entropy`]; [`Error::Argument`] for `eps`
/// outside `[0, 1]`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::Argument {
            op: "cross_entropy",
            msg: format!("label smoothing must be in [0, 1], got {label_smoothing}"),
        });
    }
    let ce = logits.softmax_cross_entropy(labels)?.mean(&[], false)?;
    if label_smoothing == 0.0 {
        return Ok(ce);
    }
    // Uniform part: mean over classes of -log_softmax, averaged over the batch.
    let uniform = logits
        .log_softmax(-1)?
        .mean(&[-1], false)?
        .neg()?
        .mean(&[], false)?;
    ce.mul_scalar(1.0 - label_smoothing)?
        .add(&uniform.mul_scalar(label_smoothing)?)
}

/// Mean negative log-likelihood of log-probabilities `[n, c]` at i64 labels `[n]` (PyTorch
/// `F.nll_loss`).
///
/// # Errors
/// [`Error::Shape`] for mismatched shapes, [`Error::Index`] for labels out of range.
pub fn nll(log_probs: &Tensor, labels: &Tensor) -> Result<Tensor> {
    if log_probs.rank() != 2 || labels.shape() != [log_probs.shape()[0]] {
        return Err(Error::Shape {
            op: "nll",
            expected: "log-probabilities [n, c] and labels [n]".into(),
            got: log_probs.shape().to_vec(),
        });
    }
    if labels.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op: "nll (labels must be i64)",
            dtype: labels.dtype(),
        });
    }
    log_probs
        .gather(1, &labels.unsqueeze(1)?)?
        .neg()?
        .mean(&[], false)
}
