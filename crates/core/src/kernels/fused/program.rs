//! What a fused program is: elementwise steps over registers, and the limits of the registers
//! that run one (leaves, steps, and the block of elements each register holds).

use crate::kernels::MAX_OPERANDS;
use crate::op::{BinaryOp, CmpOp, UnaryOp};

/// One elementwise step of a fused program, reading and writing registers. Registers
/// `0..leaves` hold the fused node's inputs; step `k` writes register `leaves + k`.
#[derive(Debug, Clone, PartialEq)]
pub enum FusedOp {
    /// A unary function of one register.
    Unary(UnaryOp, usize),
    /// `x^c`.
    Powf(f64, usize),
    /// A binary function of two registers.
    Binary(BinaryOp, usize, usize),
    /// A comparison giving 0/1.
    Cmp(CmpOp, usize, usize),
    /// `cond != 0 ? a : b`.
    Where(usize, usize, usize),
}

impl FusedOp {
    /// The name of the step's op.
    pub fn name(&self) -> &'static str {
        match self {
            FusedOp::Unary(u, _) => u.name(),
            FusedOp::Powf(..) => "powf",
            FusedOp::Binary(b, ..) => b.name(),
            FusedOp::Cmp(c, ..) => c.name(),
            FusedOp::Where(..) => "where",
        }
    }
}

/// A chain (tree) of elementwise ops evaluated in one pass over the data.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedProgram {
    /// Number of inputs (registers `0..leaves`), at most [`MAX_FUSED_LEAVES`].
    pub leaves: usize,
    /// The steps, in order, at most [`MAX_FUSED_STEPS`]; the last one's register is the output.
    pub steps: Vec<FusedOp>,
}

/// Most steps in one fused program.
pub(crate) const MAX_FUSED_STEPS: usize = 48;
/// Most inputs of one fused node (the runner reads them without allocating).
pub(crate) const MAX_FUSED_LEAVES: usize = MAX_OPERANDS;

/// Elements per block: large enough that dispatching a step costs little against its loop,
/// small enough that a program's registers stay in the L1 cache.
pub(super) const BLOCK: usize = 256;

/// Most registers of a fused program: its leaves and its steps.
pub(super) const MAX_REGS: usize = MAX_FUSED_LEAVES + MAX_FUSED_STEPS;
