//! The closed set of primitive ops and the one place they are executed.
//!
//! Every tensor operation, public or internal, ends in [`apply`]: it validates nothing (the
//! public methods in the submodules do that and compute output shapes), evaluates the op with
//! the CPU kernels, and records it for autograd when an input tracks gradients and grad mode is
//! on. Backward rules for each [`Op`] live in `autograd::rules`, written with these same tensor
//! operations. Everything that is not a primitive (softmax, mean, clamp, logsumexp...) is a
//! composition and gets its gradient for free.

mod elementwise;
mod indexing;
mod linalg;
mod movement;
mod nn;
mod reduce;

use std::sync::Arc;

use crate::autograd::is_grad_enabled;
use crate::kernels;
use crate::tensor::Node;
use crate::{DType, Layout, Result, Storage, StorageCell, Tensor};

/// Elementwise functions of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // variants are named after the PyTorch functions they compute
pub enum UnaryOp {
    Neg,
    Exp,
    Expm1,
    Log,
    Log1p,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Relu,
    Recip,
    Erf,
    Sin,
    Cos,
}

/// Elementwise functions of two tensors of one (broadcast) shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // variants are named after the PyTorch functions they compute
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

/// Elementwise comparisons, producing 0/1 masks of the operands' dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // variants are named after the PyTorch functions they compute
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions over a set of axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // variants are named after the PyTorch functions they compute
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

/// A primitive op as recorded in the autograd graph. Axes are normalised (non-negative);
/// reductions keep reduced axes as size 1 (the public methods reshape afterwards).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // variants are named after the PyTorch functions they compute
pub enum Op {
    Unary(UnaryOp),
    /// `x^c` for a constant exponent.
    Powf(f64),
    Binary(BinaryOp),
    Cmp(CmpOp),
    /// Inputs: condition, value where true, value where false.
    Where,
    Reduce {
        op: ReduceOp,
        dims: Vec<usize>,
    },
    Argmax {
        dim: usize,
    },
    /// Batched matrix product with equal batch dims.
    MatMul,
    Reshape(Vec<usize>),
    Permute(Vec<usize>),
    /// Broadcast to a shape (a stride-0 view).
    Expand(Vec<usize>),
    Narrow {
        dim: usize,
        start: usize,
        len: usize,
    },
    Cat {
        dim: usize,
    },
    /// Inputs: source, i64 index.
    Gather {
        dim: usize,
    },
    /// Inputs: base, i64 index, source.
    ScatterAdd {
        dim: usize,
    },
    Cast(DType),
    Contiguous,
    /// Inputs: logits `[n, c]`, i64 labels `[n]`; output: per-sample loss `[n]`.
    SoftmaxCrossEntropy,
}

impl UnaryOp {
    /// The op's name in error messages and graph dumps.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Recip => "recip",
            UnaryOp::Erf => "erf",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
        }
    }
}

impl BinaryOp {
    /// The op's name in error messages and graph dumps.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

impl CmpOp {
    /// The op's name in error messages and graph dumps.
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

impl ReduceOp {
    /// The op's name in error messages and graph dumps.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

impl Op {
    /// The op's name in error messages and graph dumps.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Powf(_) => "powf",
            Op::Binary(b) => b.name(),
            Op::Cmp(c) => c.name(),
            Op::Where => "where",
            Op::Reduce { op, .. } => op.name(),
            Op::Argmax { .. } => "argmax",
            Op::MatMul => "matmul",
            Op::Reshape(_) => "reshape",
            Op::Permute(_) => "permute",
            Op::Expand(_) => "broadcast_to",
            Op::Narrow { .. } => "narrow",
            Op::Cat { .. } => "cat",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Cast(_) => "to_dtype",
            Op::Contiguous => "contiguous",
            Op::SoftmaxCrossEntropy => "softmax_cross_entropy",
        }
    }

    /// Whether gradients flow through the op (comparisons and argmax give constants).
    pub fn is_differentiable(&self) -> bool {
        !matches!(self, Op::Cmp(_) | Op::Argmax { .. })
    }
}

/// Evaluates `op` on `inputs` (already validated) and returns the output's storage and layout.
/// View ops return the input's storage with a new layout.
fn eval(op: &Op, inputs: &[&Tensor]) -> Result<(Arc<StorageCell>, Layout)> {
    let fresh =
        |s: Storage, shape: &[usize]| (Arc::new(StorageCell::new(s)), Layout::contiguous(shape));
    let x = inputs[0];
    let xl = x.layout();
    let view = |l: Layout| (x.storage_cell().clone(), l);
    Ok(match op {
        Op::Unary(u) => fresh(
            kernels::elementwise::unary(*u, &x.storage(), xl)?,
            x.shape(),
        ),
        Op::Powf(e) => fresh(kernels::elementwise::powf(&x.storage(), xl, *e)?, x.shape()),
        Op::Binary(b) => {
            let y = inputs[1];
            let s = kernels::elementwise::binary(*b, &x.storage(), xl, &y.storage(), y.layout())?;
            fresh(s, x.shape())
        }
        Op::Cmp(c) => {
            let y = inputs[1];
            let s = kernels::elementwise::cmp(*c, &x.storage(), xl, &y.storage(), y.layout())?;
            fresh(s, x.shape())
        }
        Op::Where => {
            let (a, b) = (inputs[1], inputs[2]);
            let s = kernels::elementwise::where_(
                &x.storage(),
                xl,
                &a.storage(),
                a.layout(),
                &b.storage(),
                b.layout(),
            )?;
            fresh(s, x.shape())
        }
        Op::Reduce { op, dims } => {
            let s = kernels::reduce::reduce(*op, &x.storage(), xl, dims)?;
            let mut shape = x.shape().to_vec();
            for &d in dims {
                shape[d] = 1;
            }
            fresh(s, &shape)
        }
        Op::Argmax { dim } => {
            let s = kernels::reduce::argmax(&x.storage(), xl, *dim)?;
            let mut shape = x.shape().to_vec();
            shape[*dim] = 1;
            fresh(s, &shape)
        }
        Op::MatMul => {
            let y = inputs[1];
            let s = kernels::matmul::matmul(&x.storage(), xl, &y.storage(), y.layout())?;
            let mut shape = x.shape().to_vec();
            let r = shape.len();
            shape[r - 1] = y.shape()[r - 1];
            fresh(s, &shape)
        }
        Op::Reshape(shape) => match xl.reshaped(shape) {
            Some(l) => view(l),
            None => fresh(kernels::elementwise::contiguous(&x.storage(), xl), shape),
        },
        Op::Permute(p) => view(xl.permuted(p)),
        Op::Expand(shape) => view(xl.broadcast_to(shape)),
        Op::Narrow { dim, start, len } => view(xl.narrowed(*dim, *start, *len)),
        Op::Cat { dim } => {
            let guards: Vec<_> = inputs.iter().map(|t| t.storage()).collect();
            let parts: Vec<(&Storage, &Layout)> = guards
                .iter()
                .zip(inputs)
                .map(|(g, t)| (&**g, t.layout()))
                .collect();
            let mut shape = x.shape().to_vec();
            shape[*dim] = inputs.iter().map(|t| t.shape()[*dim]).sum();
            fresh(kernels::index::cat(&parts, *dim, x.dtype()), &shape)
        }
        Op::Gather { dim } => {
            let idx = inputs[1];
            let s = kernels::index::gather(&x.storage(), xl, &idx.storage(), idx.layout(), *dim)?;
            fresh(s, idx.shape())
        }
        Op::ScatterAdd { dim } => {
            let (idx, src) = (inputs[1], inputs[2]);
            let s = kernels::index::scatter_add(
                &x.storage(),
                xl,
                &idx.storage(),
                idx.layout(),
                &src.storage(),
                src.layout(),
                *dim,
            )?;
            fresh(s, x.shape())
        }
        Op::Cast(dt) => fresh(kernels::elementwise::cast(&x.storage(), xl, *dt), x.shape()),
        Op::Contiguous => fresh(
            kernels::elementwise::contiguous(&x.storage(), xl),
            x.shape(),
        ),
        Op::SoftmaxCrossEntropy => {
            let y = inputs[1];
            let s =
                kernels::reduce::softmax_cross_entropy(&x.storage(), xl, &y.storage(), y.layout())?;
            fresh(s, &x.shape()[..1])
        }
    })
}

/// Runs a primitive op: evaluates it and, when grad mode is on and an input tracks gradients,
/// records it (with its inputs' storage versions) for `backward`.
pub(crate) fn apply(op: Op, inputs: &[&Tensor]) -> Result<Tensor> {
    let (storage, layout) = eval(&op, inputs)?;
    let record =
        op.is_differentiable() && is_grad_enabled() && inputs.iter().any(|t| t.tracks_grad());
    // The op moves into the autograd record when there is one; the tracer reads it there.
    let (node, unrecorded) = if record {
        let node = Node {
            versions: inputs.iter().map(|t| t.storage_cell().version()).collect(),
            out_version: storage.version(),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            op,
        };
        (Some(node), None)
    } else {
        (None, Some(op))
    };
    let out = Tensor::from_parts(storage, layout, false, node);
    if let Some(op) = out.node().map(|n| &n.op).or(unrecorded.as_ref()) {
        crate::graph::trace::record(op, inputs, &out);
    }
    Ok(out)
}
