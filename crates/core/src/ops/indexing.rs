//! Indexing with i64 index tensors: gather, scatter-add, index_select and one-hot encoding.

use super::apply;
use crate::op::Op;
use crate::{DType, Error, Result, Tensor, shape::normalize_dim};

impl Tensor {
    fn check_index_tensor(&self, op: &'static str, index: &Tensor, dim: usize) -> Result<()> {
        if index.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op,
                dtype: index.dtype(),
            });
        }
        let fits = index.rank() == self.rank()
            && (0..self.rank()).all(|d| d == dim || index.shape()[d] <= self.shape()[d]);
        if !fits {
            return Err(Error::Shape {
                op,
                expected: format!(
                    "an index of rank {} no larger than {:?} outside dimension {dim}",
                    self.rank(),
                    self.shape()
                ),
                got: index.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// Picks values along `dim` by index: `out[i][j] = x[i][index[i][j]]` for `dim = 1`
    /// (PyTorch `torch.gather`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let i = Tensor::from_vec(vec![1i64, 0], &[2, 1])?;
    /// assert_eq!(x.gather(1, &i)?.to_vec::<f32>()?, vec![2.0, 3.0]);
    /// assert!(x.gather(1, &Tensor::from_vec(vec![2i64, 0], &[2, 1])?).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`], [`Error::Shape`] for an index of the wrong rank or size,
    /// [`Error::UnsupportedDType`] for a non-i64 index, [`Error::Index`] for an index out of range.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("gather", dim, self.rank())?;
        self.check_index_tensor("gather", index, d)?;
        apply(Op::Gather { dim: d }, &[self, &index.detach()])
    }

    /// Adds `src` into a copy of this tensor at the positions `index` names along `dim`
    /// (PyTorch `tensor.scatter_add(dim, index, src)`); repeated indices accumulate.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let base = Tensor::zeros(&[3], DType::F64)?;
    /// let i = Tensor::from_vec(vec![0i64, 2, 0], &[3])?;
    /// let src = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
    /// assert_eq!(base.scatter_add(0, &i, &src)?.to_vec::<f64>()?, vec![4.0, 0.0, 2.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::gather`]; `src` must have the index's shape and this tensor's dtype.
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("scatter_add", dim, self.rank())?;
        self.check_index_tensor("scatter_add", index, d)?;
        if src.shape() != index.shape() {
            return Err(Error::Shape {
                op: "scatter_add",
                expected: format!("src of the index's shape {:?}", index.shape()),
                got: src.shape().to_vec(),
            });
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "scatter_add",
                lhs: self.dtype(),
                rhs: src.dtype(),
            });
        }
        apply(Op::ScatterAdd { dim: d }, &[self, &index.detach(), src])
    }

    /// Selects entries along `dim` by a 1-D i64 index (PyTorch `torch.index_select`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[3, 2])?;
    /// let rows = x.index_select(0, &Tensor::from_vec(vec![2i64, 0], &[2])?)?;
    /// assert_eq!(rows.to_vec::<f32>()?, vec![4.0, 5.0, 0.0, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for an index that is not 1-D, and as [`Tensor::gather`].
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("index_select", dim, self.rank())?;
        if index.rank() != 1 {
            return Err(Error::Shape {
                op: "index_select",
                expected: "a 1-D index".into(),
                got: index.shape().to_vec(),
            });
        }
        let mut view = vec![1; self.rank()];
        view[d] = index.numel();
        let mut out_shape = self.shape().to_vec();
        out_shape[d] = index.numel();
        let full = index
            .detach()
            .reshape(&view)?
            .broadcast_to(&out_shape)?
            .contiguous()?;
        self.gather(dim, &full)
    }

    /// One-hot encoding of i64 class labels: shape `[.., classes]` of `dtype` (PyTorch
    /// `F.one_hot(labels, classes).to(dtype)`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let l = Tensor::from_vec(vec![2i64, 0], &[2])?;
    /// let h = l.one_hot(3, DType::F32)?;
    /// assert_eq!(h.to_vec::<f32>()?, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for non-i64 labels, [`Error::Index`] for a label outside
    /// `0..classes`.
    pub fn one_hot(&self, classes: usize, dtype: DType) -> Result<Tensor> {
        if self.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op: "one_hot",
                dtype: self.dtype(),
            });
        }
        if let Some(&bad) = self
            .to_vec::<i64>()?
            .iter()
            .find(|&&v| v < 0 || v as usize >= classes)
        {
            return Err(Error::Index {
                op: "one_hot",
                index: bad,
                size: classes,
            });
        }
        self.one_hot_unchecked(classes, dtype)
    }

    /// [`Tensor::one_hot`] without reading the labels to check their range (for labels
    /// already validated, e.g. by the forward pass of a loss), so it can be traced.
    pub(crate) fn one_hot_unchecked(&self, classes: usize, dtype: DType) -> Result<Tensor> {
        let classes_t = Tensor::arange(0.0, classes as f64, 1.0, DType::I64)?;
        self.unsqueeze(-1)?.eq(&classes_t)?.to_dtype(dtype)
    }
}
