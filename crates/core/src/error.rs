//! The one error type of the core: every fallible tensor operation returns [`Result`], and each
//! variant names the operation and the shapes or values that made it fail.

use crate::DType;

/// Errors returned by tensor operations. Nothing a caller passes makes the library panic: a bad
/// shape, dtype, axis or index comes back as one of these, naming the op and what it expected.
// Fields are named for what they hold; each variant's doc and message explain them.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that cannot be broadcast together (NumPy/PyTorch rules).
    #[error("{op}: shapes {lhs:?} and {rhs:?} cannot be broadcast together")]
    Broadcast {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
    },
    /// A shape that does not fit what the op expects.
    #[error("{op}: expected {expected}, got shape {got:?}")]
    Shape {
        op: &'static str,
        expected: String,
        got: Vec<usize>,
    },
    /// Matrix product of incompatible operands.
    #[error(
        "matmul: shapes {lhs:?} and {rhs:?} are not compatible (inner dimensions {k_lhs} and {k_rhs})"
    )]
    MatMul {
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        k_lhs: usize,
        k_rhs: usize,
    },
    /// A number of elements that does not match a shape.
    #[error("{op}: {len} elements cannot have shape {shape:?} ({expected} elements)")]
    ElementCount {
        op: &'static str,
        shape: Vec<usize>,
        len: usize,
        expected: usize,
    },
    /// An axis outside `-rank..rank`.
    #[error("{op}: dimension {dim} is out of range for a tensor of rank {rank}")]
    Dim {
        op: &'static str,
        dim: isize,
        rank: usize,
    },
    /// Operands of different dtypes (ferrograd does not promote types implicitly).
    #[error("{op}: dtype mismatch, {lhs} and {rhs} (convert one with `to_dtype`)")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    /// An op that is not defined for a dtype.
    #[error("{op}: not supported for dtype {dtype}")]
    UnsupportedDType { op: &'static str, dtype: DType },
    /// An index outside its axis.
    #[error("{op}: index {index} is out of range for dimension of size {size}")]
    Index {
        op: &'static str,
        index: i64,
        size: usize,
    },
    /// A slice that runs past the end of its axis.
    #[error("{op}: range {start}..{end} is out of bounds for dimension {dim} of size {size}")]
    Range {
        op: &'static str,
        dim: usize,
        start: usize,
        end: usize,
        size: usize,
    },
    /// An invalid argument value (a permutation, a clamp range, a thread count...).
    #[error("{op}: {msg}")]
    Argument { op: &'static str, msg: String },
    #[error(
        "{op}: shape {shape:?} has more elements than a tensor can hold (at most {max} elements)"
    )]
    TooLarge {
        op: &'static str,
        shape: Vec<usize>,
        max: usize,
    },
    /// A broken invariant inside ferrograd (a bug, never the caller's input): what broke.
    #[error("internal error: {0} (a bug in ferrograd; please report it)")]
    Internal(String),
    /// `backward` reached an op that has no gradient.
    #[error("{op} has no gradient")]
    NotDifferentiable { op: &'static str },
    /// A tensor saved for backward was modified in place after it was used.
    #[error(
        "backward through {op}: one of its inputs was modified in place after it was recorded (version {recorded} then, {now} now)"
    )]
    ModifiedInPlace {
        op: &'static str,
        recorded: u64,
        now: u64,
    },
    /// Code being traced into a static graph read a value out of a traced tensor (to branch on
    /// it, print it...), or changed a tensor in place: a static graph cannot capture that.
    #[error(
        "{op}: the traced computation depends on tensor values (or writes in place), which a static graph cannot capture; run this code in eager mode"
    )]
    DataDependent { op: &'static str },
    /// Anomaly mode found a NaN or an infinity in the value an op computed.
    #[error(
        "anomaly: {op} produced {value} {site} (input shapes {input_shapes:?}){}",
        if *from_input { "; an input already held a non-finite value" } else { "" }
    )]
    Anomaly {
        op: &'static str,
        /// `NaN`, `inf` or `-inf`.
        value: &'static str,
        input_shapes: Vec<Vec<usize>>,
        /// Where the op sits: `in layers.2`, `in the gradient of pow (in layers.2)`, or
        /// `outside any named layer`.
        site: String,
        /// Whether an input of the op was already non-finite (the op passed the value on).
        from_input: bool,
    },
    /// In-place modification of a tensor the autograd graph tracks, outside `no_grad`.
    #[error(
        "{op}: in-place update of a tensor that requires grad; do it inside `no_grad` (as optimizers do) or on a detached copy"
    )]
    InPlaceOnTracked { op: &'static str },
}

/// Result type of every fallible operation in the core.
pub type Result<T> = std::result::Result<T, Error>;
