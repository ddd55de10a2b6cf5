//! Matrix products with PyTorch's `matmul` semantics: vectors, matrices and batches with
//! broadcast batch dimensions.

use super::apply;
use crate::op::Op;
use crate::shape::{broadcast_shapes, checked_numel};
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Matrix product (PyTorch `torch.matmul`): 1-D operands act as row/column vectors and are
    /// squeezed from the result; leading batch dimensions broadcast. Transposed views are
    /// multiplied without copying.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3])?;
    /// assert_eq!(a.matmul(&b)?.to_vec::<f32>()?, vec![4.0, 10.0]);
    /// let batch = a.unsqueeze(0)?.broadcast_to(&[4, 2, 3])?;
    /// assert_eq!(batch.matmul(&a.t()?)?.shape(), &[4, 2, 2]);
    /// assert!(a.matmul(&a).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MatMul`] when inner dimensions differ, [`Error::Shape`] for 0-d operands,
    /// [`Error::Broadcast`] when batch dimensions do not broadcast, [`Error::DTypeMismatch`].
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        if self.rank() == 0 || rhs.rank() == 0 {
            let got = if self.rank() == 0 { self } else { rhs };
            return Err(Error::Shape {
                op: "matmul",
                expected: "operands with at least one dimension".into(),
                got: got.shape().to_vec(),
            });
        }
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            });
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(-1)?
        } else {
            rhs.clone()
        };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::MatMul {
                lhs: self.shape().to_vec(),
                rhs: rhs.shape().to_vec(),
                k_lhs: k,
                k_rhs: k2,
            });
        }
        let batch = broadcast_shapes("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2])?;
        let with = |x, y| {
            let mut s = batch.clone();
            s.extend_from_slice(&[x, y]);
            s
        };
        checked_numel("matmul", &with(m, n))?;
        let a = a.broadcast_to(&with(m, k))?;
        let b = b.broadcast_to(&with(k, n))?;
        let mut out = apply(Op::MatMul, &[&a, &b])?;
        if rhs.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        if self.rank() == 1 {
            out = out.squeeze(if rhs.rank() == 1 { -1 } else { -2 })?;
        }
        Ok(out)
    }
}
