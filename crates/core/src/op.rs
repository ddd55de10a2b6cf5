//! The closed set of primitive ops: what the autograd record, the backward rules, the graph
//! tracer, the optimisation passes and the kernels all name. Each variant is computed by
//! `ops::apply` and differentiated by one arm of `autograd::rules`; everything that is not a
//! primitive (softmax, mean, clamp, logsumexp...) is a composition of these.

use crate::DType;

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
