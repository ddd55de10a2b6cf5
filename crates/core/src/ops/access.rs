//! Crossing between tensors and plain values, where the graph tracer must look: reading
//! elements out (`to_vec`, `item`: a read of a traced value is data-dependent control flow and
//! fails the trace), writing them in place (`assign`, `fill`: recorded, not performed, while
//! tracing), and new leaves over the same data (`detach`, `with_requires_grad`: the same graph
//! value under a new handle).

use crate::graph::trace;
use crate::kernels::elementwise::{contiguous, map1};
use crate::{Error, Result, Storage, StorageElement, Tensor, is_grad_enabled, no_grad};

impl Tensor {
    /// A leaf sharing this tensor's data that requires (or not) a gradient
    /// (`tensor.detach().requires_grad_(flag)`).
    pub fn with_requires_grad(&self, flag: bool) -> Tensor {
        let t = Tensor::from_parts(
            self.storage_cell().clone(),
            self.layout().clone(),
            flag,
            None,
        );
        // While tracing, the new handle stands for the same graph value.
        trace::alias(self, &t);
        t
    }

    /// A leaf sharing this tensor's data, cut from the graph (`tensor.detach()`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let w = Tensor::ones(&[2], DType::F32)?.with_requires_grad(true);
    /// let y = w.exp()?.detach();
    /// assert!(!y.tracks_grad());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    pub fn detach(&self) -> Tensor {
        self.with_requires_grad(false)
    }

    /// The elements in row-major order (`tensor.flatten().tolist()`).
    ///
    /// # Errors
    /// [`Error::DTypeMismatch`] when `T` is not the tensor's dtype (use `to_dtype` first).
    pub fn to_vec<T: StorageElement>(&self) -> Result<Vec<T>> {
        trace::check_read(self, "to_vec")?;
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        let s = self.storage();
        let data = T::slice(&s).unwrap_or(&[]);
        if let Some(r) = self.layout().contiguous_range() {
            return Ok(data[r].to_vec());
        }
        Ok(map1(data, self.layout(), |v: T| v))
    }

    /// The elements converted to f64, in row-major order.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        // A read during tracing is recorded and fails the trace; the value is still returned.
        let _ = trace::check_read(self, "to_vec_f64");
        let s = self.storage();
        let l = &self.layout();
        match &*s {
            Storage::F32(x) => map1(x, l, |v: f32| v as f64),
            Storage::F64(x) => map1(x, l, |v: f64| v),
            Storage::I64(x) => map1(x, l, |v: i64| v as f64),
        }
    }

    /// The value of a one-element tensor, as f64 (`tensor.item()`).
    ///
    /// # Errors
    /// [`Error::Shape`] when the tensor has more or fewer than one element.
    pub fn item(&self) -> Result<f64> {
        trace::check_read(self, "item")?;
        if self.numel() != 1 {
            return Err(Error::Shape {
                op: "item",
                expected: "a tensor with exactly one element".into(),
                got: self.shape().to_vec(),
            });
        }
        Ok(self.to_vec_f64()[0])
    }
}

impl Tensor {
    /// Overwrites this tensor's elements with `src` (broadcast to this shape), in place
    /// (PyTorch `tensor.copy_(src)`). Every tensor sharing the storage sees the new values, and
    /// the storage's version is bumped: a recorded op that saved this data refuses to run
    /// backward afterwards instead of computing wrong gradients.
    ///
    /// While a static graph is being traced, the write is recorded instead of performed: the
    /// compiled graph performs it at the end of every run (this is how an optimizer's update
    /// becomes part of a compiled training step).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor, no_grad};
    /// let w = Tensor::zeros(&[2], DType::F32)?.with_requires_grad(true);
    /// assert!(w.assign(&Tensor::ones(&[2], DType::F32)?).is_err()); // grad mode is on
    /// {
    ///     let _g = no_grad();
    ///     w.assign(&Tensor::ones(&[2], DType::F32)?)?;
    /// }
    /// assert_eq!(w.to_vec::<f32>()?, vec![1.0, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InPlaceOnTracked`] when grad mode is on and this tensor tracks gradients,
    /// [`Error::DTypeMismatch`], [`Error::Broadcast`], and [`Error::Argument`] when this tensor
    /// is not contiguous (a broadcast view has no distinct elements to write).
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if is_grad_enabled() && self.tracks_grad() {
            return Err(Error::InPlaceOnTracked { op: "assign" });
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "assign",
                lhs: self.dtype(),
                rhs: src.dtype(),
            });
        }
        if trace::is_tracing() {
            // Recorded for the compiled graph to perform, not performed now.
            let b = src.broadcast_to(self.shape())?;
            if let Some(recorded) = trace::record_assign(self, &b) {
                return recorded;
            }
        }
        let Some(range) = self.layout().contiguous_range() else {
            return Err(Error::Argument {
                op: "assign",
                msg: format!(
                    "the destination must be contiguous (shape {:?}, strides {:?})",
                    self.shape(),
                    self.layout().strides()
                ),
            });
        };
        let values = {
            let _g = no_grad();
            let b = src.broadcast_to(self.shape())?;
            contiguous(&b.storage(), b.layout())
        };
        let mut dst = self.storage_cell().write();
        match (&mut *dst, &values) {
            (Storage::F32(d), Storage::F32(v)) => d[range].copy_from_slice(v),
            (Storage::F64(d), Storage::F64(v)) => d[range].copy_from_slice(v),
            (Storage::I64(d), Storage::I64(v)) => d[range].copy_from_slice(v),
            (d, v) => {
                return Err(Error::DTypeMismatch {
                    op: "assign",
                    lhs: d.dtype(),
                    rhs: v.dtype(),
                });
            }
        }
        Ok(())
    }
}

impl Tensor {
    /// Sets every element to `value`, in place and without allocating (PyTorch
    /// `tensor.fill_(value)`); the rules of [`Tensor::assign`] apply. Handy for 0-d inputs of a
    /// compiled graph that change at every run, such as a learning rate.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let lr = Tensor::zeros(&[], DType::F32)?;
    /// lr.fill(0.5)?;
    /// assert_eq!(lr.item()?, 0.5);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::assign`].
    pub fn fill(&self, value: f64) -> Result<()> {
        // Traced, refused or strided writes take `assign`'s path (and its errors).
        let refused = trace::is_tracing() || (is_grad_enabled() && self.tracks_grad());
        let range = match self.layout().contiguous_range() {
            Some(range) if !refused => range,
            _ => return self.assign(&self.scalar_like(value)),
        };
        match &mut *self.storage_cell().write() {
            Storage::F32(d) => d[range].fill(value as f32),
            Storage::F64(d) => d[range].fill(value),
            Storage::I64(d) => d[range].fill(value as i64),
        }
        Ok(())
    }
}
