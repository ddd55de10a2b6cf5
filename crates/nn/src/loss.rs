//! Loss functions (PyTorch `torch.nn.functional`): MSE, L1, Huber, binary cross-entropy on
//! probabilities and on logits (with `pos_weight`), cross-entropy and negative log-likelihood
//! (class weights, `ignore_index`, label smoothing, probability targets, inputs of shape
//! `[n, c, d1, ...]`) and KL divergence.
//!
//! Every loss has a form that takes a [`Reduction`] (`mse_with`, `cross_entropy_with`, ...);
//! the short forms (`mse`, `cross_entropy`, ...) are their PyTorch-default mean.

use ferrograd_core::{DType, Error, Result, Tensor};

/// How a loss reduces its per-element values (PyTorch's `reduction` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean (PyTorch's default). Class-weighted losses divide by the total weight.
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one value per element (per sample and position for class losses).
    None,
    /// The sum divided by the batch size (the first dimension); PyTorch's `batchmean`, the
    /// reduction that makes [`kl_div`] the mathematical KL divergence.
    BatchMean,
}

impl Reduction {
    /// Reduces per-element losses.
    fn apply(self, loss: Tensor) -> Result<Tensor> {
        match self {
            Reduction::Mean => loss.mean(&[], false),
            Reduction::Sum => loss.sum_all(),
            Reduction::None => Ok(loss),
            Reduction::BatchMean => {
                let n = loss.shape().first().copied().unwrap_or(1);
                loss.sum_all()?.div_scalar(n as f64)
            }
        }
    }
}

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
    mse_with(pred, target, Reduction::Mean)
}

/// Squared error with a reduction (PyTorch `F.mse_loss(pred, target, reduction=...)`).
///
/// ```
/// use ferrograd_core::Tensor;
/// use ferrograd_nn::loss::{Reduction, mse_with};
/// let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let t = Tensor::from_vec(vec![0.0f64, 4.0], &[2])?;
/// assert_eq!(mse_with(&p, &t, Reduction::Sum)?.item()?, 5.0);
/// assert_eq!(mse_with(&p, &t, Reduction::None)?.to_vec::<f64>()?, vec![1.0, 4.0]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn mse_with(pred: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("mse", pred, target)?;
    reduction.apply(pred.sub(target)?.square()?)
}

/// Mean absolute error (PyTorch `F.l1_loss`).
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn l1(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    l1_with(pred, target, Reduction::Mean)
}

/// Absolute error with a reduction (PyTorch `F.l1_loss(pred, target, reduction=...)`).
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn l1_with(pred: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("l1", pred, target)?;
    reduction.apply(pred.sub(target)?.abs()?)
}

/// Huber loss (PyTorch `F.huber_loss`): `d^2 / 2` where `|d| < delta`, else
/// `delta * (|d| - delta / 2)`.
///
/// # Errors
/// [`Error::Shape`] when shapes differ, [`Error::Argument`] for `delta <= 0`.
pub fn huber(pred: &Tensor, target: &Tensor, delta: f64) -> Result<Tensor> {
    huber_with(pred, target, delta, Reduction::Mean)
}

/// Huber loss with a reduction (PyTorch `F.huber_loss(pred, target, reduction=..., delta=...)`).
///
/// # Errors
/// As [`huber`].
pub fn huber_with(
    pred: &Tensor,
    target: &Tensor,
    delta: f64,
    reduction: Reduction,
) -> Result<Tensor> {
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
    reduction.apply(Tensor::where_cond(
        &a.lt_scalar(delta)?,
        &quadratic,
        &linear,
    )?)
}

/// Binary cross-entropy of probabilities against targets in `[0, 1]` (PyTorch
/// `F.binary_cross_entropy`; like PyTorch, each log is clamped at -100).
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn binary_cross_entropy(prob: &Tensor, target: &Tensor) -> Result<Tensor> {
    binary_cross_entropy_with(prob, target, Reduction::Mean)
}

/// Binary cross-entropy of probabilities with a reduction (PyTorch
/// `F.binary_cross_entropy(prob, target, reduction=...)`).
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn binary_cross_entropy_with(
    prob: &Tensor,
    target: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("binary_cross_entropy", prob, target)?;
    reduction.apply(prob.binary_cross_entropy(target)?)
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
    bce_with_logits(logits, target, &BceOptions::default())
}

/// Options of [`bce_with_logits`] (PyTorch `F.binary_cross_entropy_with_logits`'s keywords).
#[derive(Debug, Clone, Copy, Default)]
pub struct BceOptions<'a> {
    /// Weight of the positive term per class, broadcast along the last axis (PyTorch
    /// `pos_weight`): above 1 favours recall.
    pub pos_weight: Option<&'a Tensor>,
    /// A weight per element, broadcast to the logits' shape (PyTorch `weight`).
    pub weight: Option<&'a Tensor>,
    /// How the per-element losses are reduced.
    pub reduction: Reduction,
}

/// Binary cross-entropy on logits with `pos_weight`, `weight` and a reduction (PyTorch
/// `F.binary_cross_entropy_with_logits(logits, target, weight, pos_weight=..., reduction=...)`):
/// `-w (p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))`, computed stably through
/// `softplus`.
///
/// ```
/// use ferrograd_core::Tensor;
/// use ferrograd_nn::loss::{BceOptions, Reduction, bce_with_logits};
/// let x = Tensor::from_vec(vec![0.0f64, 0.0], &[1, 2])?;
/// let t = Tensor::from_vec(vec![1.0f64, 0.0], &[1, 2])?;
/// let pw = Tensor::from_vec(vec![3.0f64, 3.0], &[2])?;
/// let opts = BceOptions { pos_weight: Some(&pw), reduction: Reduction::None, ..Default::default() };
/// let l = bce_with_logits(&x, &t, &opts)?.to_vec::<f64>()?;
/// assert!((l[0] - 3.0 * 2f64.ln()).abs() < 1e-12 && (l[1] - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] when shapes differ, [`Error::Broadcast`] for weights that do not broadcast.
pub fn bce_with_logits(logits: &Tensor, target: &Tensor, opts: &BceOptions) -> Result<Tensor> {
    same_shape("binary_cross_entropy_with_logits", logits, target)?;
    // softplus(x) = -log(1 - sigmoid(x)) and softplus(-x) = softplus(x) - x, with the stable
    // softplus whose gradient is sigmoid(x) everywhere, x = 0 included.
    let softplus = crate::activation::softplus(logits)?;
    let negative = target.neg()?.add_scalar(1.0)?.mul(&softplus)?;
    let positive = target.mul(&softplus.sub(logits)?)?;
    let positive = match opts.pos_weight {
        Some(p) => positive.mul(p)?,
        None => positive,
    };
    let mut loss = positive.add(&negative)?;
    if let Some(w) = opts.weight {
        loss = loss.mul(w)?;
    }
    if loss.shape() != logits.shape() {
        return Err(Error::Broadcast {
            op: "binary_cross_entropy_with_logits",
            lhs: logits.shape().to_vec(),
            rhs: loss.shape().to_vec(),
        });
    }
    opts.reduction.apply(loss)
}

/// Mean cross-entropy of logits `[n, c]` against i64 labels `[n]`, with optional label
/// smoothing `eps` (PyTorch `F.cross_entropy(logits, labels, label_smoothing=eps)`): the
/// target puts `1 - eps + eps/c` on the label and `eps/c` elsewhere. See
/// [`cross_entropy_with`] for weights, `ignore_index`, probability targets, more dimensions and
/// other reductions.
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
    let opts = ClassLossOptions {
        label_smoothing,
        ..Default::default()
    };
    cross_entropy_with(logits, labels, &opts)
}

/// Options of [`cross_entropy_with`] and [`nll_with`] (PyTorch's keywords of
/// `F.cross_entropy` and `F.nll_loss`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassLossOptions<'a> {
    /// A weight per class, `[c]` (PyTorch `weight`). With [`Reduction::Mean`] and class
    /// labels, the loss is divided by the total weight of the counted samples, as in PyTorch.
    pub weight: Option<&'a Tensor>,
    /// A label value whose samples count for nothing, neither in the loss nor in the mean
    /// (PyTorch `ignore_index`; unlike PyTorch, whose default is -100, none by default).
    /// Class labels only.
    pub ignore_index: Option<i64>,
    /// Label smoothing in `[0, 1]` (cross-entropy only).
    pub label_smoothing: f64,
    /// How the per-sample (and per-position) losses are reduced.
    pub reduction: Reduction,
}

/// Cross-entropy of logits with every option of PyTorch's `F.cross_entropy`: inputs `[n, c]`
/// or `[n, c, d1, ...]` (classes on axis 1); targets either i64 class labels `[n, d1, ...]`
/// or class probabilities (soft targets) of the input's shape; class weights,
/// `ignore_index`, label smoothing and a reduction ([`Reduction::None`] gives `[n, d1, ...]`).
///
/// ```
/// use ferrograd_core::Tensor;
/// use ferrograd_nn::loss::{ClassLossOptions, Reduction, cross_entropy_with};
/// // Two samples, three classes; the second sample is ignored.
/// let logits = Tensor::from_vec(vec![0.0f64, 0.0, 0.0, 5.0, 1.0, 2.0], &[2, 3])?;
/// let labels = Tensor::from_vec(vec![2i64, -1], &[2])?;
/// let opts = ClassLossOptions { ignore_index: Some(-1), ..Default::default() };
/// let l = cross_entropy_with(&logits, &labels, &opts)?.item()?;
/// assert!((l - 3f64.ln()).abs() < 1e-12);
/// // Soft targets: the same loss as the one-hot label.
/// let soft = Tensor::from_vec(vec![0.0f64, 0.0, 1.0], &[1, 3])?;
/// let first = logits.narrow(0, 0, 1)?;
/// let none = ClassLossOptions { reduction: Reduction::None, ..Default::default() };
/// assert!((cross_entropy_with(&first, &soft, &none)?.item()? - 3f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] for an input of rank below 2 or a target of the wrong shape,
/// [`Error::Index`] for a label outside `0..c` that is not `ignore_index`,
/// [`Error::Argument`] for label smoothing outside `[0, 1]` or `ignore_index` with
/// probability targets.
pub fn cross_entropy_with(
    logits: &Tensor,
    target: &Tensor,
    opts: &ClassLossOptions,
) -> Result<Tensor> {
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::Argument {
            op: "cross_entropy",
            msg: format!("label smoothing must be in [0, 1], got {eps}"),
        });
    }
    let (x, out_shape) = classes_last("cross_entropy", logits)?;
    let plain = opts.weight.is_none() && opts.ignore_index.is_none();
    if plain && target.dtype() == DType::I64 && logits.rank() == 2 {
        // The fused primitive: one pass over the logits, forward and backward.
        check_labels_shape("cross_entropy", target, &out_shape)?;
        let mut loss = x.softmax_cross_entropy(target)?;
        if eps > 0.0 {
            // The uniform part: the mean over classes of -log_softmax.
            let uniform = x.log_softmax(-1)?.mean(&[-1], false)?.neg()?;
            loss = loss.mul_scalar(1.0 - eps)?.add(&uniform.mul_scalar(eps)?)?;
        }
        return opts.reduction.apply(loss);
    }
    class_loss(
        "cross_entropy",
        &x.log_softmax(-1)?,
        logits,
        target,
        out_shape,
        opts,
    )
}

/// Mean negative log-likelihood of log-probabilities `[n, c]` at i64 labels `[n]` (PyTorch
/// `F.nll_loss`). See [`nll_with`] for the options.
///
/// # Errors
/// [`Error::Shape`] for mismatched shapes, [`Error::Index`] for labels out of range.
pub fn nll(log_probs: &Tensor, labels: &Tensor) -> Result<Tensor> {
    nll_with(log_probs, labels, &ClassLossOptions::default())
}

/// Negative log-likelihood with the options of PyTorch's `F.nll_loss`: log-probabilities
/// `[n, c]` or `[n, c, d1, ...]`, i64 labels `[n, d1, ...]` (or class probabilities of the
/// input's shape), class weights, `ignore_index` and a reduction.
///
/// ```
/// use ferrograd_core::Tensor;
/// use ferrograd_nn::loss::{ClassLossOptions, nll_with};
/// let logp = Tensor::from_vec(vec![-1.0f64, -2.0, -3.0, -4.0], &[2, 2])?;
/// let labels = Tensor::from_vec(vec![0i64, 1], &[2])?;
/// let w = Tensor::from_vec(vec![1.0f64, 3.0], &[2])?;
/// let opts = ClassLossOptions { weight: Some(&w), ..Default::default() };
/// // (1 * 1 + 3 * 4) / (1 + 3)
/// assert_eq!(nll_with(&logp, &labels, &opts)?.item()?, 3.25);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// As [`cross_entropy_with`]; [`Error::Argument`] for label smoothing (only cross-entropy has
/// it).
pub fn nll_with(log_probs: &Tensor, target: &Tensor, opts: &ClassLossOptions) -> Result<Tensor> {
    if opts.label_smoothing != 0.0 {
        return Err(Error::Argument {
            op: "nll",
            msg: "label smoothing applies to cross_entropy only".into(),
        });
    }
    let (x, out_shape) = classes_last("nll", log_probs)?;
    class_loss("nll", &x, log_probs, target, out_shape, opts)
}

/// An input `[n, c, d1, ...]` as rows `[n * d1 * ..., c]`, and the shape `[n, d1, ...]` of one
/// loss per row.
fn classes_last(op: &'static str, input: &Tensor) -> Result<(Tensor, Vec<usize>)> {
    if input.rank() < 2 {
        return Err(Error::Shape {
            op,
            expected: "an input [n, c] or [n, c, d1, ...]".into(),
            got: input.shape().to_vec(),
        });
    }
    let mut out_shape = input.shape().to_vec();
    let c = out_shape.remove(1);
    if input.rank() == 2 {
        return Ok((input.clone(), out_shape));
    }
    let mut perm: Vec<usize> = vec![0];
    perm.extend(2..input.rank());
    perm.push(1);
    let rows = out_shape.iter().product();
    Ok((input.permute(&perm)?.reshape(&[rows, c])?, out_shape))
}

fn check_labels_shape(op: &'static str, labels: &Tensor, shape: &[usize]) -> Result<()> {
    if labels.shape() != shape {
        return Err(Error::Shape {
            op,
            expected: format!("i64 labels of shape {shape:?} (the input without its class axis)"),
            got: labels.shape().to_vec(),
        });
    }
    Ok(())
}

/// The class loss of log-probability rows `logp [m, c]` (from `input`, of shape
/// `[n, c, d1, ...]`) against class labels or probabilities, one loss per row of
/// `out_shape`, reduced.
fn class_loss(
    op: &'static str,
    logp: &Tensor,
    input: &Tensor,
    target: &Tensor,
    out_shape: Vec<usize>,
    opts: &ClassLossOptions,
) -> Result<Tensor> {
    let (m, c) = (logp.shape()[0], logp.shape()[1]);
    let eps = opts.label_smoothing;
    if let Some(w) = opts.weight
        && (w.shape() != [c] || w.dtype() != logp.dtype())
    {
        return Err(Error::Shape {
            op,
            expected: format!("class weights [{c}] of the input's dtype"),
            got: w.shape().to_vec(),
        });
    }
    // -sum_c w_c t_c log p_c for per-row class distributions t.
    let weighted_sum = |t: &Tensor| -> Result<Tensor> {
        let mut terms = logp.mul(t)?;
        if let Some(w) = opts.weight {
            terms = terms.mul(w)?;
        }
        terms.sum(&[-1], false)?.neg()
    };
    if target.dtype().is_float() {
        if opts.ignore_index.is_some() {
            return Err(Error::Argument {
                op,
                msg: "ignore_index applies to class labels, not to probability targets".into(),
            });
        }
        if target.shape() != input.shape() {
            return Err(Error::Shape {
                op,
                expected: format!(
                    "probability targets of the input's shape {:?}",
                    input.shape()
                ),
                got: target.shape().to_vec(),
            });
        }
        let (mut t, _) = classes_last(op, target)?;
        if eps > 0.0 {
            t = t.mul_scalar(1.0 - eps)?.add_scalar(eps / c as f64)?;
        }
        // The mean of probability-target losses is over rows, whatever the weights.
        return opts.reduction.apply(weighted_sum(&t)?.reshape(&out_shape)?);
    }
    if target.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op,
            dtype: target.dtype(),
        });
    }
    check_labels_shape(op, target, &out_shape)?;
    let labels = target.reshape(&[m])?;
    let valid = match opts.ignore_index {
        Some(i) => labels.ne_scalar(i as f64)?,
        None => labels.ones_like(),
    };
    // Ignored rows read class 0 and are then weighted by 0.
    let safe = Tensor::where_cond(&valid, &labels, &labels.zeros_like())?;
    let valid = valid.to_dtype(logp.dtype())?;
    let row_weight = match opts.weight {
        Some(w) => w.index_select(0, &safe)?.mul(&valid)?,
        None => valid.clone(),
    };
    let picked = logp.gather(1, &safe.unsqueeze(1)?)?.squeeze(1)?;
    let mut loss = picked.neg()?.mul(&row_weight)?;
    if eps > 0.0 {
        let uniform = logp.ones_like().div_scalar(c as f64)?;
        let smooth = weighted_sum(&uniform)?.mul(&valid)?;
        loss = loss.mul_scalar(1.0 - eps)?.add(&smooth.mul_scalar(eps)?)?;
    }
    match opts.reduction {
        Reduction::Mean => loss.sum_all()?.div(&row_weight.sum_all()?),
        r => r.apply(loss.reshape(&out_shape)?),
    }
}

/// KL divergence `sum t (log t - x)` of a target distribution `t` from log-probabilities `x`
/// (PyTorch `F.kl_div(x, t, reduction=..., log_target=...)`): pointwise
/// `t (log t - x)`, 0 where `t = 0`; with `log_target` the target is given as `log t`.
/// [`Reduction::BatchMean`] gives the KL divergence per sample; PyTorch's default
/// [`Reduction::Mean`] averages over every element.
///
/// ```
/// use ferrograd_core::Tensor;
/// use ferrograd_nn::loss::{Reduction, kl_div};
/// let x = Tensor::from_vec(vec![0.5f64.ln(), 0.5f64.ln()], &[1, 2])?;
/// let t = Tensor::from_vec(vec![1.0f64, 0.0], &[1, 2])?;
/// assert!((kl_div(&x, &t, false, Reduction::BatchMean)?.item()? - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] when shapes differ.
pub fn kl_div(
    input: &Tensor,
    target: &Tensor,
    log_target: bool,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("kl_div", input, target)?;
    let pointwise = if log_target {
        target.exp()?.mul(&target.sub(input)?)?
    } else {
        // t log t is taken as 0 at t = 0 (PyTorch's xlogy); the log reads 1 there so that
        // neither value nor gradient is NaN.
        let positive = target.gt_scalar(0.0)?;
        let safe = Tensor::where_cond(&positive, target, &target.ones_like())?;
        let t_log_t =
            Tensor::where_cond(&positive, &target.mul(&safe.log()?)?, &target.zeros_like())?;
        t_log_t.sub(&target.mul(input)?)?
    };
    reduction.apply(pointwise)
}
