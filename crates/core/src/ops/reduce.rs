//! Reductions over any set of axes, with `keepdim`: sum, mean, max, min, argmax, logsumexp.
//! An empty axis list reduces over every axis.

use super::apply;
use crate::op::{Op, ReduceOp};
use crate::{
    DType, Error, Result, Tensor,
    shape::{normalize_dim, normalize_dims},
};

impl Tensor {
    fn reduce(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let dims = normalize_dims(op.name(), dims, self.rank())?;
        if dims.is_empty() {
            return Ok(self.clone());
        }
        let kept = apply(
            Op::Reduce {
                op,
                dims: dims.clone(),
            },
            &[self],
        )?;
        if keepdim {
            return Ok(kept);
        }
        let shape: Vec<usize> = (0..self.rank())
            .filter(|d| !dims.contains(d))
            .map(|d| self.shape()[d])
            .collect();
        kept.reshape(&shape)
    }

    /// Sum over `dims` (all axes when empty) (PyTorch `torch.sum(x, dims, keepdim)`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.sum(&[0], false)?.to_vec::<f32>()?, vec![4.0, 6.0]);
    /// assert_eq!(x.sum(&[-1], true)?.shape(), &[2, 1]);
    /// assert_eq!(x.sum(&[], false)?.item()?, 10.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range or repeated.
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, dims, keepdim)
    }

    /// Sum of all elements, as a 0-d tensor (PyTorch `tensor.sum()`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// assert_eq!(Tensor::ones(&[2, 3], DType::F64)?.sum_all()?.item()?, 6.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Never for valid tensors; kept fallible like every op.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Mean over `dims` (all axes when empty) (PyTorch `torch.mean`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.mean(&[1], false)?.to_vec::<f64>()?, vec![1.5, 3.5]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::UnsupportedDType`] for integer tensors.
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "mean",
                dtype: self.dtype(),
            });
        }
        let resolved = normalize_dims("mean", dims, self.rank())?;
        let count: usize = resolved.iter().map(|&d| self.shape()[d]).product();
        self.sum(dims, keepdim)?.div_scalar(count as f64)
    }

    /// Maximum over `dims` (PyTorch `torch.amax`). The gradient is shared equally between tied
    /// maxima, as in PyTorch's `amax`.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.max(&[1], false)?.to_vec::<f32>()?, vec![5.0, 4.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::Argument`] when reducing an empty axis.
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, dims, keepdim)
    }

    /// Minimum over `dims` (PyTorch `torch.amin`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.min(&[0], false)?.to_vec::<f32>()?, vec![1.0, 4.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::Argument`] when reducing an empty axis.
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, dims, keepdim)
    }

    /// Index of the largest value along `dim`, as i64 (PyTorch `torch.argmax`). Ties pick the
    /// first index.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0, 2.0, 0.0], &[2, 3])?;
    /// assert_eq!(x.argmax(1, false)?.to_vec::<i64>()?, vec![1, 0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::Argument`] for an empty axis.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(Tensor::scalar(0i64));
        }
        let d = normalize_dim("argmax", dim, self.rank())?;
        let kept = apply(Op::Argmax { dim: d }, &[self])?;
        if keepdim {
            Ok(kept)
        } else {
            let mut shape = self.shape().to_vec();
            shape.remove(d);
            kept.reshape(&shape)
        }
    }

    /// `log(sum(exp(x)))` over `dims`, computed stably (PyTorch `torch.logsumexp`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1000.0f64, 1000.0], &[2])?;
    /// let y = x.logsumexp(&[0], false)?.item()?;
    /// assert!((y - (1000.0 + 2f64.ln())).abs() < 1e-9);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::UnsupportedDType`] for integer tensors.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        if self.dtype() == DType::I64 {
            return Err(Error::UnsupportedDType {
                op: "logsumexp",
                dtype: self.dtype(),
            });
        }
        let (m, _, log_sum) = self.shifted_log_sum_exp(dims)?;
        let lse = log_sum.add(&m)?;
        if keepdim {
            Ok(lse)
        } else {
            lse.sum(dims, false)
        }
    }

    /// The pieces of a stable logsumexp over `dims` (kept as size 1): the detached shift `m`
    /// (the maximum, or 0 where that is infinite), `x - m`, and `ln(sum(exp(x - m)))`.
    /// An infinite maximum is not subtracted: `inf - inf` would make the sum NaN where the
    /// true logsumexp is +inf (or -inf for a row of all -inf).
    pub(crate) fn shifted_log_sum_exp(&self, dims: &[isize]) -> Result<(Tensor, Tensor, Tensor)> {
        let m = self.max(dims, true)?.detach();
        let m = Tensor::where_cond(&m.abs()?.eq_scalar(f64::INFINITY)?, &m.zeros_like(), &m)?;
        let shifted = self.sub(&m)?;
        let log_sum = shifted.exp()?.sum(dims, true)?.log()?;
        Ok((m, shifted, log_sum))
    }
}
