//! Hand-written loops for the in-place updates that dominate an Adam training step at small
//! batches. The step interpreter stores every step's result to a block register; these loops
//! keep every intermediate value in CPU registers and store only the result, with the same
//! operations in the same order as the steps they replace (results are bit for bit the same).
//!
//! A loop is chosen when a fused program's steps are exactly one of the shapes below: moving
//! averages `a * s + b * t` and `a * s + b^2 * t`, and Adam's step
//! `p - m / (sqrt(v) / c + e) * s`. They are general in their operands (any tensors, any
//! scalars), but the step order is the one `ferrograd-nn`'s Adam rule emits; the test
//! `the_update_is_stored_and_fused_and_allocates_nothing` in `ferrograd-nn`'s
//! `compiled_update` tests fails when that rule stops matching (a program that does not match
//! still runs, step by step, so nothing else would show it).

use super::program::{FusedOp, FusedProgram};
use super::steps::Arg;
use crate::Float;
use crate::kernels::Plan;
use crate::op::{BinaryOp, UnaryOp};

/// Programs with a hand-written loop. A step run over a block writes its result to cache, so
/// a long program costs a store per step and element; these loops keep every intermediate
/// value in registers and store only the result, with the same operations in the same order
/// as the steps (results are bit for bit the same). They are the in-place updates of Adam,
/// which dominate its training step at small batches; any other program runs step by step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateLoop {
    /// `a * s + b * t` with scalars `s`, `t` (leaves a, s, b, t): a moving average.
    Ema,
    /// `a * s + b^2 * t` (leaves a, s, b, t): a moving average of squares.
    EmaOfSquares,
    /// `p - m / (sqrt(v) / c + e) * s` with scalars `c`, `e`, `s` (leaves v, c, e, m, s, p):
    /// Adam's step.
    AdamStep,
}

impl UpdateLoop {
    const ALL: [UpdateLoop; 3] = [
        UpdateLoop::Ema,
        UpdateLoop::EmaOfSquares,
        UpdateLoop::AdamStep,
    ];

    /// The steps the loop computes.
    pub(super) fn steps(self) -> &'static [FusedOp] {
        use BinaryOp::{Add, Div, Mul, Sub};
        use FusedOp::{Binary, Powf, Unary};
        match self {
            UpdateLoop::Ema => &[Binary(Mul, 0, 1), Binary(Mul, 2, 3), Binary(Add, 4, 5)],
            UpdateLoop::EmaOfSquares => &[
                Binary(Mul, 0, 1),
                Powf(2.0, 2),
                Binary(Mul, 5, 3),
                Binary(Add, 4, 6),
            ],
            UpdateLoop::AdamStep => &[
                Unary(UnaryOp::Sqrt, 0),
                Binary(Div, 6, 1),
                Binary(Add, 7, 2),
                Binary(Div, 3, 8),
                Binary(Mul, 9, 4),
                Binary(Sub, 5, 10),
            ],
        }
    }

    /// Its leaves, and which of them are scalars.
    pub(super) fn leaves(self) -> (usize, &'static [usize]) {
        match self {
            UpdateLoop::Ema | UpdateLoop::EmaOfSquares => (4, &[1, 3]),
            UpdateLoop::AdamStep => (6, &[1, 2, 4]),
        }
    }

    /// The hand-written loop computing `program`, when its leaves at the scalar positions are
    /// single values for the whole (flat) plan and the others are contiguous.
    pub(crate) fn of(program: &FusedProgram, plan: &Plan) -> Option<UpdateLoop> {
        let native = UpdateLoop::ALL
            .into_iter()
            .find(|n| n.steps() == program.steps.as_slice())?;
        let (leaves, scalars) = native.leaves();
        let stride = |k: usize| if scalars.contains(&k) { 0 } else { 1 };
        (program.leaves == leaves
            && plan.is_flat()
            && (0..leaves).all(|k| plan.inner_strides.get(k) == Some(&stride(k))))
        .then_some(native)
    }

    /// Runs the loop over one block into `y`; leaf `alias`, if any, is `y` itself (an update
    /// in place, read before it is written). `false` if the operands are not of the kinds the
    /// loop expects.
    #[inline(always)]
    pub(super) fn run<T: Float>(self, v: &[Arg<'_, T>], alias: Option<usize>, y: &mut [T]) -> bool {
        use Arg::{Scalar as S, Slice as V};
        match (self, alias, v) {
            (UpdateLoop::Ema, None, &[V(a), S(s), V(b), S(t), ..]) => {
                for ((o, &x), &g) in y.iter_mut().zip(a).zip(b) {
                    *o = x * s + g * t;
                }
            }
            (UpdateLoop::Ema, Some(0), &[_, S(s), V(b), S(t), ..]) => {
                for (o, &g) in y.iter_mut().zip(b) {
                    *o = *o * s + g * t;
                }
            }
            (UpdateLoop::EmaOfSquares, None, &[V(a), S(s), V(b), S(t), ..]) => {
                for ((o, &x), &g) in y.iter_mut().zip(a).zip(b) {
                    *o = x * s + g * g * t;
                }
            }
            (UpdateLoop::EmaOfSquares, Some(0), &[_, S(s), V(b), S(t), ..]) => {
                for (o, &g) in y.iter_mut().zip(b) {
                    *o = *o * s + g * g * t;
                }
            }
            (UpdateLoop::AdamStep, None, &[V(v), S(c), S(e), V(m), S(s), V(p), ..]) => {
                for (((o, &v), &m), &p) in y.iter_mut().zip(v).zip(m).zip(p) {
                    *o = p - m / (v.sqrt() / c + e) * s;
                }
            }
            (UpdateLoop::AdamStep, Some(5), &[V(v), S(c), S(e), V(m), S(s), ..]) => {
                for ((o, &v), &m) in y.iter_mut().zip(v).zip(m) {
                    *o = *o - m / (v.sqrt() / c + e) * s;
                }
            }
            _ => return false,
        }
        true
    }
}
