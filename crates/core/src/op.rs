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
    Atan,
    Asin,
    Acos,
    Floor,
    Ceil,
    /// Rounds half to even (PyTorch `torch.round`).
    Round,
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
    /// Binary cross-entropy of a probability against a target, each log clamped at -100
    /// (PyTorch `F.binary_cross_entropy(p, t, reduction="none")`). A primitive so that its
    /// gradient can be PyTorch's `(p - t) / max(p (1 - p), 1e-12)`, finite at `p` = 0 and 1.
    BinaryCrossEntropy,
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

/// The geometry of a 2-D convolution over NCHW tensors (PyTorch `F.conv2d`'s `stride`,
/// `padding`, `dilation` and `groups`), as `[height, width]` pairs.
///
/// ```
/// use ferrograd_core::op::Conv2dParams;
/// let p = Conv2dParams::default().stride(2).padding(1);
/// assert_eq!(p.output_size([28, 28], [3, 3]), Some([14, 14]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zeros added on both sides.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Input and output channels are split into this many independent groups.
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, no dilation, one group (PyTorch's defaults).
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Builder methods that set a `[height, width]` field to the same value on both axes, shared by
/// the window geometries (convolution and pooling).
macro_rules! same_on_both_axes {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, v: usize) -> Self {
                self.$field = [v, v];
                self
            }
        )*
    };
}

impl Conv2dParams {
    same_on_both_axes! {
        /// The same stride along both axes.
        stride,
        /// The same padding along both axes.
        padding,
        /// The same dilation along both axes.
        dilation,
    }

    /// The number of groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// The output size `[ho, wo]` for an input of `[h, w]` and a kernel of `[kh, kw]`:
    /// `(h + 2p - d (k - 1) - 1) / s + 1` per axis, or `None` when the dilated kernel does not
    /// fit in the padded input or a stride or dilation is zero.
    pub fn output_size(&self, input: [usize; 2], kernel: [usize; 2]) -> Option<[usize; 2]> {
        let axis = |a: usize| {
            let (s, d) = (self.stride[a], self.dilation[a]);
            if s == 0 || d == 0 || kernel[a] == 0 {
                return None;
            }
            let padded = input[a].checked_add(self.padding[a].checked_mul(2)?)?;
            let span = d.checked_mul(kernel[a] - 1)?.checked_add(1)?;
            padded.checked_sub(span).map(|r| r / s + 1)
        };
        Some([axis(0)?, axis(1)?])
    }
}

/// The geometry of a 2-D pooling window (PyTorch `F.max_pool2d`'s `kernel_size`, `stride`,
/// `padding` and `dilation`), as `[height, width]` pairs. Output sizes round down
/// (`ceil_mode=False`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows (PyTorch defaults it to the kernel size).
    pub stride: [usize; 2],
    /// Implicit padding on both sides; at most half the kernel.
    pub padding: [usize; 2],
    /// Spacing between window taps.
    pub dilation: [usize; 2],
}

impl Pool2dParams {
    /// A square `k x k` window with stride `k`, no padding (PyTorch `nn.MaxPool2d(k)`).
    pub fn new(k: usize) -> Self {
        Pool2dParams {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
            dilation: [1, 1],
        }
    }

    same_on_both_axes! {
        /// The same stride along both axes.
        stride,
        /// The same padding along both axes.
        padding,
        /// The same dilation along both axes.
        dilation,
    }

    /// The window as a convolution geometry (one group).
    pub fn as_conv(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: 1,
        }
    }
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
    /// The positions (i64) that sort `x` along `dim`, stably; NaN sorts as the largest value.
    Argsort {
        dim: usize,
        descending: bool,
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
    /// Inputs: `x [n, c, h, w]`, weight `[o, c / groups, kh, kw]`; output `[n, o, ho, wo]`.
    Conv2d(Conv2dParams),
    /// The gradient of [`Op::Conv2d`] with respect to its input (a transposed convolution).
    /// Inputs: the output's gradient `[n, o, ho, wo]` and the weight; output
    /// `[n, c, input[0], input[1]]`.
    Conv2dInputGrad {
        conv: Conv2dParams,
        input: [usize; 2],
    },
    /// The gradient of [`Op::Conv2d`] with respect to its weight. Inputs: `x` and the
    /// output's gradient; output `[o, c / groups, kernel[0], kernel[1]]`.
    Conv2dWeightGrad {
        conv: Conv2dParams,
        kernel: [usize; 2],
    },
    /// For each window of a max pooling over `x [n, c, h, w]`, the position (`ih * w + iw`)
    /// of its maximum: i64 `[n, c, ho * wo]`. The first maximum in row-major window order
    /// wins, and a NaN beats every number (PyTorch's CPU rule).
    MaxPool2dIndex(Pool2dParams),
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
            UnaryOp::Atan => "atan",
            UnaryOp::Asin => "asin",
            UnaryOp::Acos => "acos",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
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
            BinaryOp::BinaryCrossEntropy => "binary_cross_entropy",
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
            Op::Argsort { .. } => "argsort",
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
            Op::Conv2d(_) => "conv2d",
            Op::Conv2dInputGrad { .. } => "conv2d_input_grad",
            Op::Conv2dWeightGrad { .. } => "conv2d_weight_grad",
            Op::MaxPool2dIndex(_) => "max_pool2d_index",
        }
    }

    /// Whether gradients flow through the op (comparisons, argmax and argsort give constants).
    pub fn is_differentiable(&self) -> bool {
        !matches!(
            self,
            Op::Cmp(_) | Op::Argmax { .. } | Op::Argsort { .. } | Op::MaxPool2dIndex(_)
        )
    }
}
