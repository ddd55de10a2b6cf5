//! Ordering along an axis: sort, argsort, topk, argmin, and max/min returning values with their
//! indices. One primitive (`Op::Argsort`, the sorting permutation, stable and with NaN as the
//! largest value as in PyTorch) gives the indices; values are `gather`ed at them, so gradients
//! flow to the selected elements through gather's rule.

use super::apply;
use crate::op::Op;
use crate::{Error, Result, Tensor, shape::normalize_dim};

impl Tensor {
    /// The values gathered at `index` along `d` (a dim kept at full rank), squeezed when
    /// `keepdim` is false.
    fn gather_kept(&self, d: usize, index: &Tensor, keepdim: bool) -> Result<(Tensor, Tensor)> {
        let values = self.gather(d as isize, index)?;
        if keepdim {
            return Ok((values, index.clone()));
        }
        Ok((values.squeeze(d as isize)?, index.squeeze(d as isize)?))
    }

    /// The positions that sort the tensor along `dim` (PyTorch
    /// `torch.argsort(x, dim, descending, stable=True)`): equal values keep their order and NaN
    /// sorts as the largest value.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f64, 1.0, 3.0, 2.0], &[4])?;
    /// assert_eq!(x.argsort(0, false)?.to_vec::<i64>()?, vec![1, 3, 0, 2]);
    /// assert_eq!(x.argsort(-1, true)?.to_vec::<i64>()?, vec![0, 2, 3, 1]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range.
    pub fn argsort(&self, dim: isize, descending: bool) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(Tensor::scalar(0i64));
        }
        let d = normalize_dim("argsort", dim, self.rank())?;
        apply(Op::Argsort { dim: d, descending }, &[&self.detach()])
    }

    /// The tensor sorted along `dim`, and the positions the values came from (PyTorch
    /// `torch.sort(x, dim, descending, stable=True)`). Gradients flow to the sorted elements.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f64, 1.0, 2.0, 0.0, 5.0, 4.0], &[2, 3])?;
    /// let (v, i) = x.sort(1, false)?;
    /// assert_eq!(v.to_vec::<f64>()?, vec![1.0, 2.0, 3.0, 0.0, 4.0, 5.0]);
    /// assert_eq!(i.to_vec::<i64>()?, vec![1, 2, 0, 0, 2, 1]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range.
    pub fn sort(&self, dim: isize, descending: bool) -> Result<(Tensor, Tensor)> {
        if self.rank() == 0 {
            return Ok((self.clone(), Tensor::scalar(0i64)));
        }
        let index = self.argsort(dim, descending)?;
        Ok((self.gather(dim, &index)?, index))
    }

    /// The `k` largest (or, with `largest = false`, smallest) values along `dim`, in order, and
    /// their positions (PyTorch `torch.topk(x, k, dim, largest, sorted=True)`). Ties keep the
    /// earlier position first.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f64, 1.0, 3.0, 2.0], &[4])?;
    /// let (v, i) = x.topk(2, 0, true)?;
    /// assert_eq!((v.to_vec::<f64>()?, i.to_vec::<i64>()?), (vec![3.0, 3.0], vec![0, 2]));
    /// assert!(x.topk(5, 0, true).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range, [`Error::Argument`] when `k` exceeds the axis.
    pub fn topk(&self, k: usize, dim: isize, largest: bool) -> Result<(Tensor, Tensor)> {
        let x = if self.rank() == 0 {
            self.reshape(&[1])?
        } else {
            self.clone()
        };
        let d = normalize_dim("topk", dim, x.rank())?;
        if k > x.shape()[d] {
            return Err(Error::Argument {
                op: "topk",
                msg: format!(
                    "k = {k} exceeds the size {} of dimension {d} (shape {:?})",
                    x.shape()[d],
                    x.shape()
                ),
            });
        }
        let index = x
            .argsort(d as isize, largest)?
            .narrow(d as isize, 0, k)?
            .contiguous()?;
        let values = x.gather(d as isize, &index)?;
        if self.rank() == 0 {
            return Ok((values.reshape(&[])?, index.reshape(&[])?));
        }
        Ok((values, index))
    }

    /// Index of the smallest value along `dim`, as i64 (PyTorch `torch.argmin`). Ties pick the
    /// first index; NaN counts as the smallest value.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f32, 1.0, 1.0, 4.0, 2.0, 0.0], &[2, 3])?;
    /// assert_eq!(x.argmin(1, false)?.to_vec::<i64>()?, vec![1, 2]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::Argument`] for an empty axis.
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        // Negation reverses the order and keeps NaN a NaN, which argmax picks.
        self.detach().neg()?.argmax(dim, keepdim)
    }

    /// The largest values along `dim` and their positions (PyTorch `torch.max(x, dim,
    /// keepdim)`). Unlike [`Tensor::max`] (PyTorch `amax`), the gradient goes to the one
    /// returned position, the first of tied maxima, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 3.0, 2.0], &[2, 2])?;
    /// let (v, i) = x.max_dim(1, false)?;
    /// assert_eq!((v.to_vec::<f64>()?, i.to_vec::<i64>()?), (vec![3.0, 3.0], vec![1, 0]));
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::Argument`] for an empty axis.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        if self.rank() == 0 {
            return Ok((self.clone(), Tensor::scalar(0i64)));
        }
        let d = normalize_dim("max_dim", dim, self.rank())?;
        let index = self.argmax(dim, true)?;
        self.gather_kept(d, &index, keepdim)
    }

    /// The smallest values along `dim` and their positions (PyTorch `torch.min(x, dim,
    /// keepdim)`); the gradient goes to the returned position, the first of tied minima.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 0.0, 0.0, 2.0], &[4])?;
    /// let (v, i) = x.min_dim(0, true)?;
    /// assert_eq!((v.to_vec::<f64>()?, i.to_vec::<i64>()?), (vec![0.0], vec![1]));
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::Argument`] for an empty axis.
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        if self.rank() == 0 {
            return Ok((self.clone(), Tensor::scalar(0i64)));
        }
        let d = normalize_dim("min_dim", dim, self.rank())?;
        let index = self.argmin(dim, true)?;
        self.gather_kept(d, &index, keepdim)
    }
}
