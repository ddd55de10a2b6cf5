//! Shape and layout operations: reshape, permute/transpose, broadcast, narrow, squeeze and
//! unsqueeze are views over the same storage where the layout allows; cat and stack copy.

use super::apply;
use crate::op::Op;
use crate::{
    Error, Result, Tensor,
    shape::{broadcast_shapes, checked_numel, normalize_dim},
};

impl Tensor {
    /// A tensor with the same elements in a new shape (PyTorch `tensor.reshape`). A view when the
    /// tensor is contiguous, a copy otherwise.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3])?;
    /// let y = x.reshape(&[3, 2])?;
    /// assert!(y.same_storage(&x));
    /// assert!(x.reshape(&[4]).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ElementCount`] when the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let expected = checked_numel("reshape", shape)?;
        if expected != self.numel() {
            return Err(Error::ElementCount {
                op: "reshape",
                shape: shape.to_vec(),
                len: self.numel(),
                expected,
            });
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        apply(Op::Reshape(shape.to_vec()), &[self])
    }

    /// Flattens dimensions `start..=end` into one (PyTorch `torch.flatten`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::zeros(&[2, 3, 4], DType::F32)?;
    /// assert_eq!(x.flatten(1, -1)?.shape(), &[2, 12]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range, [`Error::Argument`] when `start > end`.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape(&[1]);
        }
        let s = normalize_dim("flatten", start, self.rank())?;
        let e = normalize_dim("flatten", end, self.rank())?;
        if s > e {
            return Err(Error::Argument {
                op: "flatten",
                msg: format!("start dimension {start} comes after end dimension {end}"),
            });
        }
        let mut shape = self.shape()[..s].to_vec();
        shape.push(self.shape()[s..=e].iter().product());
        shape.extend_from_slice(&self.shape()[e + 1..]);
        self.reshape(&shape)
    }

    /// Inserts a dimension of size 1 at `dim` (PyTorch `torch.unsqueeze`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::zeros(&[3], DType::F32)?;
    /// assert_eq!(x.unsqueeze(0)?.shape(), &[1, 3]);
    /// assert_eq!(x.unsqueeze(-1)?.shape(), &[3, 1]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] when `dim` is outside `-(rank+1)..=rank`.
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = normalize_dim("unsqueeze", dim, self.rank() + 1)?;
        let mut shape = self.shape().to_vec();
        shape.insert(d, 1);
        self.reshape(&shape)
    }

    /// Removes dimension `dim`, which must have size 1 (PyTorch `torch.squeeze(x, dim)`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::zeros(&[3, 1], DType::F32)?;
    /// assert_eq!(x.squeeze(-1)?.shape(), &[3]);
    /// assert!(x.squeeze(0).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range, [`Error::Shape`] when its size is not 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = normalize_dim("squeeze", dim, self.rank())?;
        if self.shape()[d] != 1 {
            return Err(Error::Shape {
                op: "squeeze",
                expected: format!("size 1 at dimension {d}"),
                got: self.shape().to_vec(),
            });
        }
        let mut shape = self.shape().to_vec();
        shape.remove(d);
        self.reshape(&shape)
    }

    /// Reorders dimensions: axis `i` of the result is axis `perm[i]` (PyTorch
    /// `tensor.permute`). A view.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::zeros(&[2, 3, 4], DType::F32)?;
    /// assert_eq!(x.permute(&[2, 0, 1])?.shape(), &[4, 2, 3]);
    /// assert!(x.permute(&[0, 0, 1]).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] when `perm` is not a permutation of `0..rank`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        let valid = perm.len() == self.rank()
            && perm
                .iter()
                .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::Argument {
                op: "permute",
                msg: format!(
                    "{perm:?} is not a permutation of the {} dimensions of shape {:?}",
                    self.rank(),
                    self.shape()
                ),
            });
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        apply(Op::Permute(perm.to_vec()), &[self])
    }

    /// Swaps two dimensions (PyTorch `torch.transpose`). A view.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let t = x.transpose(0, 1)?;
    /// assert_eq!(t.to_vec::<f32>()?, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = normalize_dim("transpose", d0, self.rank())?;
        let b = normalize_dim("transpose", d1, self.rank())?;
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a matrix, or of the last two dimensions (PyTorch `tensor.mT`). A view.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::zeros(&[5, 2, 3], DType::F32)?;
    /// assert_eq!(x.t()?.shape(), &[5, 3, 2]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for tensors of rank below 2.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::Shape {
                op: "t",
                expected: "at least 2 dimensions".into(),
                got: self.shape().to_vec(),
            });
        }
        self.transpose(-2, -1)
    }

    /// Broadcasts to `shape` without copying (PyTorch `tensor.expand` / `broadcast_to`).
    /// Gradients are summed back to this tensor's shape.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
    /// let e = b.broadcast_to(&[3, 2])?;
    /// assert_eq!(e.to_vec::<f32>()?, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// assert!(b.broadcast_to(&[3]).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Broadcast`] when the shape is not a broadcast of this tensor's shape.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let target = broadcast_shapes("broadcast_to", self.shape(), shape)?;
        if target != shape {
            return Err(Error::Broadcast {
                op: "broadcast_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        apply(Op::Expand(shape.to_vec()), &[self])
    }

    /// `len` elements from `start` along `dim` (PyTorch `torch.narrow`). A view.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec((0..6).map(|v| v as f64).collect(), &[2, 3])?;
    /// assert_eq!(x.narrow(1, 1, 2)?.to_vec::<f64>()?, vec![1.0, 2.0, 4.0, 5.0]);
    /// assert!(x.narrow(1, 2, 2).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range, [`Error::Range`] when the slice runs past the end.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = normalize_dim("narrow", dim, self.rank())?;
        let size = self.shape()[d];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::Range {
                op: "narrow",
                dim: d,
                start,
                end: start.saturating_add(len),
                size,
            });
        }
        if start == 0 && len == size {
            return Ok(self.clone());
        }
        apply(Op::Narrow { dim: d, start, len }, &[self])
    }

    /// A contiguous tensor with the same values (PyTorch `tensor.contiguous`): this tensor
    /// itself when already contiguous.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?.t()?;
    /// assert!(!x.is_contiguous());
    /// let c = x.contiguous()?;
    /// assert!(c.is_contiguous());
    /// assert_eq!(c.to_vec::<f32>()?, vec![1.0, 3.0, 2.0, 4.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Never for valid tensors; kept fallible like every op.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        apply(Op::Contiguous, &[self])
    }

    /// Concatenates tensors along `dim` (PyTorch `torch.cat`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let a = Tensor::ones(&[2, 1], DType::F32)?;
    /// let b = Tensor::zeros(&[2, 2], DType::F32)?;
    /// let c = Tensor::cat(&[&a, &b], 1)?;
    /// assert_eq!(c.to_vec::<f32>()?, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for an empty list, [`Error::Shape`] when shapes differ outside `dim`,
    /// [`Error::DTypeMismatch`] when dtypes differ, [`Error::Dim`] for an axis out of range.
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::Argument {
                op: "cat",
                msg: "expected at least one tensor".into(),
            });
        };
        let d = normalize_dim("cat", dim, first.rank())?;
        for t in tensors {
            if t.dtype() != first.dtype() {
                return Err(Error::DTypeMismatch {
                    op: "cat",
                    lhs: first.dtype(),
                    rhs: t.dtype(),
                });
            }
            let same_rank = t.rank() == first.rank();
            if !same_rank || (0..t.rank()).any(|i| i != d && t.shape()[i] != first.shape()[i]) {
                let mut expected = first.shape().to_vec();
                if same_rank {
                    expected[d] = t.shape()[d];
                }
                return Err(Error::Shape {
                    op: "cat",
                    expected: format!("shape {expected:?} (all dimensions but {d} equal)"),
                    got: t.shape().to_vec(),
                });
            }
        }
        if tensors.len() == 1 {
            return Ok((*first).clone());
        }
        let mut shape = first.shape().to_vec();
        shape[d] = tensors
            .iter()
            .try_fold(0usize, |n, t| n.checked_add(t.shape()[d]))
            .unwrap_or(usize::MAX);
        checked_numel("cat", &shape)?;
        apply(Op::Cat { dim: d }, tensors)
    }

    /// Stacks tensors of one shape along a new dimension `dim` (PyTorch `torch.stack`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let a = Tensor::ones(&[3], DType::F64)?;
    /// assert_eq!(Tensor::stack(&[&a, &a], 0)?.shape(), &[2, 3]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::cat`]; shapes must be equal.
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let parts = tensors
            .iter()
            .map(|t| t.unsqueeze(dim))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::cat(&refs, dim)
    }
}
