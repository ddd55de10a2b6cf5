//! Numerically stable softmax and log-softmax (compositions of primitives), and the fused
//! softmax cross-entropy on logits with integer labels and the binary cross-entropy on
//! probabilities (primitives, for speed and accuracy at the edges).

use super::apply;
use crate::op::{BinaryOp, Op};
use crate::{DType, Error, Result, Tensor, shape::normalize_dim};

impl Tensor {
    /// Softmax along `dim`, shifted by the maximum for stability (PyTorch `torch.softmax`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1000.0f64, 1000.0, 0.0, 0.0], &[2, 2])?;
    /// assert_eq!(x.softmax(-1)?.to_vec::<f64>()?, vec![0.5, 0.5, 0.5, 0.5]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::UnsupportedDType`] for integer tensors.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.float_only("softmax")?;
        normalize_dim("softmax", dim, self.rank())?;
        let m = self.max(&[dim], true)?.detach();
        let e = self.sub(&m)?.exp()?;
        e.div(&e.sum(&[dim], true)?)
    }

    /// Log of the softmax along `dim` (PyTorch `torch.log_softmax`), computed as
    /// `(x - m) - ln(sum(exp(x - m)))` with `m` the maximum: subtracting the shift first keeps
    /// the low bits that `x - logsumexp(x)` loses for large logits.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![0.0f64, 0.0], &[2])?;
    /// let y = x.log_softmax(0)?.to_vec::<f64>()?;
    /// assert!((y[0] + 2f64.ln()).abs() < 1e-12);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::UnsupportedDType`] for integer tensors.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.float_only("log_softmax")?;
        normalize_dim("log_softmax", dim, self.rank())?;
        let (_, shifted, log_sum) = self.shifted_log_sum_exp(&[dim])?;
        shifted.sub(&log_sum)
    }

    /// Per-sample cross-entropy of logits `[n, c]` against i64 class labels `[n]`:
    /// `logsumexp(logits[i]) - logits[i, labels[i]]`, fused in one pass (PyTorch
    /// `F.cross_entropy(logits, labels, reduction="none")`). Take `.mean(&[], false)` for the
    /// usual mean loss.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let logits = Tensor::from_vec(vec![0.0f64, 0.0, 10.0, 0.0], &[2, 2])?;
    /// let labels = Tensor::from_vec(vec![1i64, 0], &[2])?;
    /// let loss = logits.softmax_cross_entropy(&labels)?.to_vec::<f64>()?;
    /// assert!((loss[0] - 2f64.ln()).abs() < 1e-12);
    /// assert!(logits.softmax_cross_entropy(&Tensor::from_vec(vec![2i64, 0], &[2])?).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] unless logits are `[n, c]` and labels `[n]`,
    /// [`Error::UnsupportedDType`] for integer logits or non-i64 labels, [`Error::Index`] for a
    /// label outside `0..c`.
    pub fn softmax_cross_entropy(&self, labels: &Tensor) -> Result<Tensor> {
        const OP: &str = "softmax_cross_entropy";
        self.float_only(OP)?;
        if self.rank() != 2 {
            return Err(Error::Shape {
                op: OP,
                expected: "logits of shape [batch, classes]".into(),
                got: self.shape().to_vec(),
            });
        }
        if labels.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op: "softmax_cross_entropy (labels must be i64)",
                dtype: labels.dtype(),
            });
        }
        if labels.shape() != [self.shape()[0]] {
            return Err(Error::Shape {
                op: OP,
                expected: format!("labels of shape [{}]", self.shape()[0]),
                got: labels.shape().to_vec(),
            });
        }
        apply(Op::SoftmaxCrossEntropy, &[self, labels])
    }

    /// Elementwise binary cross-entropy of probabilities against targets of the same shape,
    /// `-(t ln p + (1 - t) ln(1 - p))` with each log clamped at -100 (PyTorch
    /// `F.binary_cross_entropy(p, t, reduction="none")`). The gradient is PyTorch's
    /// `(p - t) / max(p (1 - p), 1e-12)`: finite where `p` is exactly 0 or 1, as a saturated
    /// float32 sigmoid gives.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let p = Tensor::from_vec(vec![0.0f64, 1.0, 0.5], &[3])?;
    /// let t = Tensor::from_vec(vec![0.0f64, 1.0, 1.0], &[3])?;
    /// let l = p.binary_cross_entropy(&t)?.to_vec::<f64>()?;
    /// assert_eq!(&l[..2], &[0.0, 0.0]);
    /// assert!((l[2] - 2f64.ln()).abs() < 1e-12);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] when the shapes differ, [`Error::DTypeMismatch`] for different dtypes,
    /// [`Error::UnsupportedDType`] for integer tensors.
    pub fn binary_cross_entropy(&self, target: &Tensor) -> Result<Tensor> {
        const OP: &str = "binary_cross_entropy";
        self.float_only(OP)?;
        if self.shape() != target.shape() {
            return Err(Error::Shape {
                op: OP,
                expected: format!("a target of the prediction's shape {:?}", self.shape()),
                got: target.shape().to_vec(),
            });
        }
        if self.dtype() != target.dtype() {
            return Err(Error::DTypeMismatch {
                op: OP,
                lhs: self.dtype(),
                rhs: target.dtype(),
            });
        }
        apply(Op::Binary(BinaryOp::BinaryCrossEntropy), &[self, target])
    }

    pub(crate) fn float_only(&self, op: &'static str) -> Result<()> {
        if self.dtype().is_float() {
            Ok(())
        } else {
            Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype(),
            })
        }
    }
}
