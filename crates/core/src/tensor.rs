//! The [`Tensor`] handle: an immutable view (layout + dtype) over shared storage, plus the
//! autograd record of the op that produced it. Cloning is cheap (a reference count).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLockReadGuard};

use crate::op::Op;
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
    /// Where the op was run (anomaly mode only): its module scope or backward context.
    pub site: Option<Arc<str>>,
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
/// let y = x.matmul(&x)?.add(&Tensor::ones(&[2], DType::F32)?)?;
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
    /// [`Error::ElementCount`] when `data.len()` differs from the product of `shape`,
    /// [`Error::TooLarge`] when that product overflows.
    pub fn from_vec<T: StorageElement>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let expected = shape::checked_numel("from_vec", shape)?;
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
    /// let t = Tensor::full(2.5, &[2, 3], DType::F64)?;
    /// assert_eq!(t.to_vec::<f64>()?, vec![2.5; 6]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the shape's element count overflows.
    pub fn full(value: f64, shape: &[usize], dtype: DType) -> Result<Tensor> {
        shape::checked_numel("full", shape)?;
        Ok(Tensor::filled(value, shape, dtype))
    }

    /// A tensor of zeros (`torch.zeros`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let z = Tensor::zeros(&[2, 2], DType::I64)?;
    /// assert_eq!(z.to_vec::<i64>()?, vec![0; 4]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the shape's element count overflows.
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        shape::checked_numel("zeros", shape)?;
        Ok(Tensor::filled(0.0, shape, dtype))
    }

    /// A tensor of ones (`torch.ones`).
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the shape's element count overflows.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        shape::checked_numel("ones", shape)?;
        Ok(Tensor::filled(1.0, shape, dtype))
    }

    /// A tensor of a shape known to be valid (checked, or an existing tensor's) filled with
    /// `value`.
    fn filled(value: f64, shape: &[usize], dtype: DType) -> Tensor {
        let n = shape::numel(shape);
        let storage = match dtype {
            DType::F32 => Storage::F32(vec![value as f32; n]),
            DType::F64 => Storage::F64(vec![value; n]),
            DType::I64 => Storage::I64(vec![value as i64; n]),
        };
        Tensor::from_storage(storage, shape)
    }

    /// Zeros with this tensor's shape and dtype (`torch.zeros_like`).
    pub fn zeros_like(&self) -> Tensor {
        Tensor::filled(0.0, self.shape(), self.dtype())
    }

    /// Ones with this tensor's shape and dtype (`torch.ones_like`).
    pub fn ones_like(&self) -> Tensor {
        Tensor::filled(1.0, self.shape(), self.dtype())
    }

    /// A 0-d tensor of this tensor's dtype holding `value`.
    pub fn scalar_like(&self, value: f64) -> Tensor {
        Tensor::filled(value, &[], self.dtype())
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
        if n > shape::MAX_ELEMENTS as f64 {
            return Err(Error::TooLarge {
                op: "arange",
                shape: vec![usize::MAX],
                max: shape::MAX_ELEMENTS,
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
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
