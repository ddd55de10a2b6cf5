//! The step interpreter of the fused kernel: a [`FusedProgram`]'s steps evaluated one after
//! another over a block of elements, each step's loop over the block monomorphised per op and
//! float type (dispatched once per block, not per element), intermediate values kept in
//! block-sized registers.

use super::program::{BLOCK, FusedOp, FusedProgram};
use crate::Float;
use crate::kernels::elementwise::{
    bce, max_nan, min_nan, with_binary_fn, with_cmp_fn, with_powf_fn, with_unary_fn,
};
use crate::op::{BinaryOp, CmpOp, UnaryOp};

/// A step's operand over one block.
#[derive(Clone, Copy)]
pub(super) enum Arg<'a, T> {
    Slice(&'a [T]),
    Scalar(T),
}

impl<T: Copy> Arg<'_, T> {
    #[inline(always)]
    fn at(self, i: usize) -> T {
        match self {
            Arg::Slice(s) => s[i],
            Arg::Scalar(v) => v,
        }
    }
}

#[inline(always)]
fn map1<T: Copy>(x: Arg<'_, T>, y: &mut [T], f: impl Fn(T) -> T) {
    match x {
        Arg::Slice(x) => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = f(v);
            }
        }
        Arg::Scalar(v) => y.fill(f(v)),
    }
}

#[inline(always)]
fn map2<T: Copy>(a: Arg<'_, T>, b: Arg<'_, T>, y: &mut [T], f: impl Fn(T, T) -> T) {
    match (a, b) {
        (Arg::Slice(a), Arg::Slice(b)) => {
            for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                *o = f(u, v);
            }
        }
        (Arg::Slice(a), Arg::Scalar(v)) => {
            for (o, &u) in y.iter_mut().zip(a) {
                *o = f(u, v);
            }
        }
        (Arg::Scalar(u), Arg::Slice(b)) => {
            for (o, &v) in y.iter_mut().zip(b) {
                *o = f(u, v);
            }
        }
        (Arg::Scalar(u), Arg::Scalar(v)) => y.fill(f(u, v)),
    }
}

/// Computes one step over a block into `y`; `arg(r)` is register `r`.
#[inline(always)]
fn eval_step<'a, T: Float>(step: &FusedOp, arg: impl Fn(usize) -> Arg<'a, T>, y: &mut [T]) {
    match *step {
        FusedOp::Unary(op, a) => with_unary_fn!(op, T, f => map1(arg(a), y, f)),
        FusedOp::Powf(e, a) => with_powf_fn!(e, T, f => map1(arg(a), y, f)),
        FusedOp::Binary(op, a, b) => with_binary_fn!(op, T, f => map2(arg(a), arg(b), y, f)),
        FusedOp::Cmp(op, a, b) => with_cmp_fn!(op, T, f => map2(arg(a), arg(b), y, f)),
        FusedOp::Where(c, a, b) => select(arg(c), arg(a), arg(b), y),
    }
}

/// `y = c != 0 ? a : b`, with the operand kinds matched once per block so that each loop is a
/// branch-free blend that vectorises.
#[inline(always)]
fn select<T: Float>(c: Arg<'_, T>, a: Arg<'_, T>, b: Arg<'_, T>, y: &mut [T]) {
    let pick = |c: T, a: T, b: T| if c != T::ZERO { a } else { b };
    let Arg::Slice(c) = c else {
        // One condition for the whole block: the chosen operand, copied.
        let chosen = if c.at(0) != T::ZERO { a } else { b };
        return map1(chosen, y, |v| v);
    };
    match (a, b) {
        (Arg::Slice(a), Arg::Slice(b)) => {
            for (((o, &c), &a), &b) in y.iter_mut().zip(c).zip(a).zip(b) {
                *o = pick(c, a, b);
            }
        }
        (Arg::Slice(a), Arg::Scalar(b)) => {
            for ((o, &c), &a) in y.iter_mut().zip(c).zip(a) {
                *o = pick(c, a, b);
            }
        }
        (Arg::Scalar(a), Arg::Slice(b)) => {
            for ((o, &c), &b) in y.iter_mut().zip(c).zip(b) {
                *o = pick(c, a, b);
            }
        }
        (Arg::Scalar(a), Arg::Scalar(b)) => {
            map2(Arg::Slice(c), Arg::Scalar(a), y, |c, a| pick(c, a, b))
        }
    }
}

/// Runs the steps of `program` over one block whose leaves are `views`: all but the last into
/// `regs` (one block each), the last into `y`.
#[inline(always)]
pub(super) fn run_steps<T: Float>(
    program: &FusedProgram,
    views: &[Arg<'_, T>],
    regs: &mut [T],
    y: &mut [T],
) {
    let (len, l) = (y.len(), program.leaves);
    let Some((last, steps)) = program.steps.split_last() else {
        return;
    };
    for (k, step) in steps.iter().enumerate() {
        let (done, rest) = regs.split_at_mut(k * BLOCK);
        let done: &[T] = done;
        eval_step(step, |a| register(views, done, l, len, a), &mut rest[..len]);
    }
    let done: &[T] = regs;
    eval_step(last, |a| register(views, done, l, len, a), y);
}

/// Register `a` over a block of `len`: a leaf's operand (`a < l`), or the block of a step
/// computed before, in `done`.
#[inline(always)]
fn register<'a, T: Copy>(
    views: &[Arg<'a, T>],
    done: &'a [T],
    l: usize,
    len: usize,
    a: usize,
) -> Arg<'a, T> {
    if a < l {
        views[a]
    } else {
        Arg::Slice(&done[(a - l) * BLOCK..][..len])
    }
}
