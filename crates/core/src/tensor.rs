//! The [`Tensor`] handle: an immutable view (layout + dtype) over shared storage, plus the
//! autograd record of the op that produced it. Cloning is cheap (a reference count).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLockReadGuard};

use crate::ops::Op;
use crate::{DType, Error, Layout, Result, Storage, StorageCell, StorageElement, shape};

/// A unique identity per tensor value, used to key gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// The autograd record of a tensor: the op that made it, its inputs, and the storage versions
/// they had then, checked again by `backward`.
pub(crate) struct Node {
    pub op: Op,
    pub inputs: Vec<Tensor>,
    pub versions: Vec<u64>,
    pub out_version: u64,
}

pub(crate) struct Inner {
    pub id: TensorId,
    pub storage: Arc<StorageCell>,
    pub layout: Layout,
    pub dtype: DType,
    /// A leaf whose gradient `backward` returns (a parameter).
    pub requires_grad: bool,
    pub node: Option<Node>,
}

impl Drop for Inner {
    /// Dismantles the graph behind this tensor iteratively: dropping the last handle to a
    /// 100,000-op chain must not recurse 100,000 frames deep.
    fn drop(&mut self) {
        let Some(node) = self.node.take() else {
            return;
        };
        let mut stack = node.inputs;
        while let Some(t) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(t.0)
                && let Some(node) = inner.node.take()
            {
                stack.extend(node.inputs);
            }
        }
    }
}

/// An n-dimensional array of f32, f64 or i64 with NumPy/PyTorch broadcasting and reverse-mode
/// automatic differentiation.
///
/// A `Tensor` is a cheap handle: clones share the same data. Views (`reshape`, `permute`,
/// `broadcast_to`, `narrow`) share storage too. Operations never modify their inputs; in-place
/// updates (for optimizers) are explicit and checked against the autograd graph.
///
/// ```
/// use ferrograd_core::{Tensor, DType};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let y = x.matmul(&x)?.add(&Tensor::ones(&[2], DType::F32))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![8.0, 11.0, 16.0, 23.0]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

impl Tensor {
    pub(crate) fn from_parts(
        storage: Arc<StorageCell>,
        layout: Layout,
        requires_grad: bool,
        node: Option<Node>,
    ) -> Tensor {
        let dtype = storage.read().dtype();
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            storage,
            layout,
            dtype,
            requires_grad,
            node,
        }))
    }

    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        Tensor::from_parts(
            Arc::new(StorageCell::new(storage)),
            Layout::contiguous(shape),
            false,
            None,
        )
    }

    /// Creates a tensor from a vector and a shape (`torch.tensor(data).reshape(shape)`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let t = Tensor::from_vec(vec![1i64, 2, 3], &[3])?;
    /// assert_eq!(t.shape(), &[3]);
    /// assert!(Tensor::from_vec(vec![1.0f32; 5], &[2, 2]).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ElementCount`] when `data.len()` differs from the product of `shape`.
    pub fn from_vec<T: StorageElement>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let expected = shape::numel(shape);
        if data.len() != expected {
            return Err(Error::ElementCount {
                op: "from_vec",
                shape: shape.to_vec(),
                len: data.len(),
                expected,
            });
        }
        Ok(Tensor::from_storage(T::into_storage(data), shape))
    }

    /// Creates a tensor by copying a slice (see [`Tensor::from_vec`]).
    ///
    /// # Errors
    /// [`Error::ElementCount`] when the length does not match the shape.
    pub fn from_slice<T: StorageElement>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A 0-dimensional tensor holding one value (`torch.tensor(v)`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let s = Tensor::scalar(2.5f32);
    /// assert_eq!((s.rank(), s.item()?), (0, 2.5));
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    pub fn scalar<T: StorageElement>(v: T) -> Tensor {
        Tensor::from_storage(T::into_storage(vec![v]), &[])
    }

    /// A tensor filled with `value`, converted to `dtype` (`torch.full`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let t = Tensor::full(2.5, &[2, 3], DType::F64);
    /// assert_eq!(t.to_vec::<f64>()?, vec![2.5; 6]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    pub fn full(value: f64, shape: &[usize], dtype: DType) -> Tensor {
        let n = shape::numel(shape);
        let storage = match dtype {
            DType::F32 => Storage::F32(vec![value as f32; n]),
            DType::F64 => Storage::F64(vec![value; n]),
            DType::I64 => Storage::I64(vec![value as i64; n]),
        };
        Tensor::from_storage(storage, shape)
    }

    /// A tensor of zeros (`torch.zeros`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let z = Tensor::zeros(&[2, 2], DType::I64);
    /// assert_eq!(z.to_vec::<i64>()?, vec![0; 4]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(0.0, shape, dtype)
    }

    /// A tensor of ones (`torch.ones`).
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(1.0, shape, dtype)
    }

    /// Zeros with this tensor's shape and dtype (`torch.zeros_like`).
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros(self.shape(), self.dtype())
    }

    /// Ones with this tensor's shape and dtype (`torch.ones_like`).
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones(self.shape(), self.dtype())
    }

    /// A 0-d tensor of this tensor's dtype holding `value`.
    pub fn scalar_like(&self, value: f64) -> Tensor {
        Tensor::full(value, &[], self.dtype())
    }

    /// Values `start, start + step, ...` below `end` (`torch.arange`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let t = Tensor::arange(0.0, 5.0, 2.0, DType::I64)?;
    /// assert_eq!(t.to_vec::<i64>()?, vec![0, 2, 4]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for a zero or non-finite step, or a step that moves away from `end`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::Argument {
                op: "arange",
                msg: format!("invalid range {start}..{end} with step {step}"),
            });
        }
        let n = ((end - start) / step).ceil();
        if n < 0.0 {
            return Err(Error::Argument {
                op: "arange",
                msg: format!("step {step} moves away from {end} starting at {start}"),
            });
        }
        let n = n as usize;
        let values: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        let t = Tensor::from_vec(values, &[n])?;
        if dtype == DType::F64 {
            Ok(t)
        } else {
            t.to_dtype(dtype)
        }
    }

    /// The unique id of this tensor (gradients are keyed by it).
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// The layout (shape, strides, offset) over the storage.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// Whether the elements are stored row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Size of dimension `dim` (negative counts from the end).
    ///
    /// # Errors
    /// [`Error::Dim`] when `dim` is out of range.
    pub fn dim(&self, dim: isize) -> Result<usize> {
        Ok(self.shape()[shape::normalize_dim("dim", dim, self.rank())?])
    }

    /// Whether this tensor is a leaf whose gradient `backward` reports (a parameter).
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// Whether gradients flow through this tensor: a leaf that requires grad, or the result of
    /// a recorded op.
    pub fn tracks_grad(&self) -> bool {
        self.0.requires_grad || self.0.node.is_some()
    }

    /// Whether this tensor was produced by a recorded op (it has a `grad_fn` in PyTorch terms).
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    /// The name of the op that produced this tensor, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(|n| n.op.name())
    }

    /// The inputs of the op that produced this tensor, if it was recorded.
    pub fn op_inputs(&self) -> &[Tensor] {
        self.0.node.as_ref().map_or(&[], |n| &n.inputs)
    }

    /// A leaf sharing this tensor's data that requires (or not) a gradient
    /// (`tensor.detach().requires_grad_(flag)`).
    pub fn with_requires_grad(&self, flag: bool) -> Tensor {
        let t = Tensor::from_parts(self.0.storage.clone(), self.0.layout.clone(), flag, None);
        // While tracing, the new handle stands for the same graph value.
        crate::graph::trace::alias(self, &t);
        t
    }

    /// A leaf sharing this tensor's data, cut from the graph (`tensor.detach()`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let w = Tensor::ones(&[2], DType::F32).with_requires_grad(true);
    /// let y = w.exp()?.detach();
    /// assert!(!y.tracks_grad());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    pub fn detach(&self) -> Tensor {
        self.with_requires_grad(false)
    }

    /// A new leaf holding a contiguous copy of this tensor's elements, starting at offset 0
    /// (PyTorch `tensor.detach().clone()`); not recorded by autograd or a trace.
    pub fn contiguous_copy(&self) -> Tensor {
        let s = crate::kernels::elementwise::contiguous(&self.storage(), self.layout());
        Tensor::from_storage(s, self.shape())
    }

    pub(crate) fn storage_cell(&self) -> &Arc<StorageCell> {
        &self.0.storage
    }

    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }

    /// Read access to the underlying storage (all views of it).
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read()
    }

    /// Whether two tensors share one storage.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// The elements in row-major order (`tensor.flatten().tolist()`).
    ///
    /// # Errors
    /// [`Error::DTypeMismatch`] when `T` is not the tensor's dtype (use `to_dtype` first).
    pub fn to_vec<T: StorageElement>(&self) -> Result<Vec<T>> {
        crate::graph::trace::check_read(self, "to_vec")?;
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        let s = self.storage();
        let data = T::slice(&s).unwrap_or(&[]);
        if let Some(r) = self.0.layout.contiguous_range() {
            return Ok(data[r].to_vec());
        }
        Ok(crate::kernels::elementwise::map1(
            data,
            &self.0.layout,
            |v: T| v,
        ))
    }

    /// The elements converted to f64, in row-major order.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        // A read during tracing is recorded and fails the trace; the value is still returned.
        let _ = crate::graph::trace::check_read(self, "to_vec_f64");
        let s = self.storage();
        let l = &self.0.layout;
        match &*s {
            Storage::F32(x) => crate::kernels::elementwise::map1(x, l, |v: f32| v as f64),
            Storage::F64(x) => crate::kernels::elementwise::map1(x, l, |v: f64| v),
            Storage::I64(x) => crate::kernels::elementwise::map1(x, l, |v: i64| v as f64),
        }
    }

    /// The value of a one-element tensor, as f64 (`tensor.item()`).
    ///
    /// # Errors
    /// [`Error::Shape`] when the tensor has more or fewer than one element.
    pub fn item(&self) -> Result<f64> {
        crate::graph::trace::check_read(self, "item")?;
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
    /// let w = Tensor::zeros(&[2], DType::F32).with_requires_grad(true);
    /// assert!(w.assign(&Tensor::ones(&[2], DType::F32)).is_err()); // grad mode is on
    /// {
    ///     let _g = no_grad();
    ///     w.assign(&Tensor::ones(&[2], DType::F32))?;
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
        if crate::is_grad_enabled() && self.tracks_grad() {
            return Err(Error::InPlaceOnTracked { op: "assign" });
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "assign",
                lhs: self.dtype(),
                rhs: src.dtype(),
            });
        }
        if crate::graph::trace::is_tracing() {
            // Recorded for the compiled graph to perform, not performed now.
            let b = src.broadcast_to(self.shape())?;
            if let Some(recorded) = crate::graph::trace::record_assign(self, &b) {
                return recorded;
            }
        }
        let Some(range) = self.0.layout.contiguous_range() else {
            return Err(Error::Argument {
                op: "assign",
                msg: format!(
                    "the destination must be contiguous (shape {:?}, strides {:?})",
                    self.shape(),
                    self.0.layout.strides()
                ),
            });
        };
        let values = {
            let _g = crate::no_grad();
            let b = src.broadcast_to(self.shape())?;
            crate::kernels::elementwise::contiguous(&b.storage(), b.layout())
        };
        let mut dst = self.0.storage.write();
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
    /// let lr = Tensor::zeros(&[], DType::F32);
    /// lr.fill(0.5)?;
    /// assert_eq!(lr.item()?, 0.5);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::assign`].
    pub fn fill(&self, value: f64) -> Result<()> {
        // Traced, refused or strided writes take `assign`'s path (and its errors).
        let refused =
            crate::graph::trace::is_tracing() || (crate::is_grad_enabled() && self.tracks_grad());
        let range = match self.0.layout.contiguous_range() {
            Some(range) if !refused => range,
            _ => return self.assign(&self.scalar_like(value)),
        };
        match &mut *self.0.storage.write() {
            Storage::F32(d) => d[range].fill(value as f32),
            Storage::F64(d) => d[range].fill(value),
            Storage::I64(d) => d[range].fill(value as i64),
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
