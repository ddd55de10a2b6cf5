//! The fused elementwise kernel of static graphs: a short program of elementwise steps runs
//! over blocks of 64 elements, so intermediate values stay in registers-sized arrays in cache
//! instead of making a round trip through memory per op. Each step is dispatched once per
//! block (not per element), and its loop over the block vectorises.

use rayon::prelude::*;

use super::elementwise::{max_nan, min_nan, with_binary_fn, with_cmp_fn, with_unary_fn};
use super::{PARALLEL_THRESHOLD, TASK_SIZE, coalesce};
use crate::graph::{FusedOp, FusedProgram};
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Element, Error, Float, Layout, Result, Storage, StorageElement, Tensor};

const BLOCK: usize = 64;

/// Rows of the common shape, with each leaf's strides (a run-time count of operands).
struct RowPlan {
    outer_shape: Vec<usize>,
    outer_strides: Vec<Vec<usize>>,
    offsets: Vec<usize>,
    inner: usize,
    inner_strides: Vec<usize>,
}

impl RowPlan {
    fn new(shape: &[usize], layouts: &[&Layout]) -> RowPlan {
        let (mut dims, mut strides) = coalesce(shape, layouts);
        let inner = dims.pop().unwrap_or(1);
        let inner_strides = strides.iter_mut().map(|s| s.pop().unwrap_or(0)).collect();
        RowPlan {
            outer_shape: dims,
            outer_strides: strides,
            offsets: layouts.iter().map(|l| l.offset()).collect(),
            inner,
            inner_strides,
        }
    }

    fn row_offsets(&self, mut row: usize, off: &mut [usize]) {
        off.copy_from_slice(&self.offsets);
        for d in (0..self.outer_shape.len()).rev() {
            let i = row % self.outer_shape[d];
            row /= self.outer_shape[d];
            for (o, s) in off.iter_mut().zip(&self.outer_strides) {
                *o += i * s[d];
            }
        }
    }
}

#[inline]
fn unary<T: Float>(op: UnaryOp, x: &[T], y: &mut [T]) {
    with_unary_fn!(op, T, f => {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = f(v);
        }
    })
}

#[inline]
fn binary<T: Float>(op: BinaryOp, a: &[T], b: &[T], y: &mut [T]) {
    with_binary_fn!(op, T, f => {
        for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
            *o = f(u, v);
        }
    })
}

#[inline]
fn compare<T: Float>(op: CmpOp, a: &[T], b: &[T], y: &mut [T]) {
    with_cmp_fn!(op, T, f => {
        for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
            *o = f(u, v);
        }
    })
}

/// Runs the program over `len` consecutive elements starting at the given leaf offsets.
fn run_block<T: Float>(
    program: &FusedProgram,
    leaves: &[&[T]],
    strides: &[usize],
    offsets: &[usize],
    regs: &mut [[T; BLOCK]],
    out: &mut [T],
) {
    let len = out.len();
    for (k, (src, (&s, &o))) in leaves.iter().zip(strides.iter().zip(offsets)).enumerate() {
        let r = &mut regs[k][..len];
        if s == 1 {
            r.copy_from_slice(&src[o..o + len]);
        } else {
            for (i, v) in r.iter_mut().enumerate() {
                *v = src[o + i * s];
            }
        }
    }
    let l = program.leaves;
    for (k, step) in program.steps.iter().enumerate() {
        let (done, rest) = regs.split_at_mut(l + k);
        let y = &mut rest[0][..len];
        match *step {
            FusedOp::Unary(op, a) => unary(op, &done[a][..len], y),
            FusedOp::Powf(e, a) => {
                // The same special cases as the eager kernel, for identical results.
                let x = &done[a][..len];
                if e == 2.0 {
                    for (o, &v) in y.iter_mut().zip(x) {
                        *o = v * v;
                    }
                } else if e == 1.0 {
                    y.copy_from_slice(x);
                } else {
                    let e = T::from_f64(e);
                    for (o, &v) in y.iter_mut().zip(x) {
                        *o = v.powf(e);
                    }
                }
            }
            FusedOp::Binary(op, a, b) => binary(op, &done[a][..len], &done[b][..len], y),
            FusedOp::Cmp(op, a, b) => compare(op, &done[a][..len], &done[b][..len], y),
            FusedOp::Where(c, a, b) => {
                for (i, o) in y.iter_mut().enumerate() {
                    *o = if done[c][i] != T::ZERO {
                        done[a][i]
                    } else {
                        done[b][i]
                    };
                }
            }
        }
    }
    let last = l + program.steps.len() - 1;
    out.copy_from_slice(&regs[last][..len]);
}

fn run_typed<T: Float + StorageElement>(
    program: &FusedProgram,
    leaves: &[&[T]],
    plan: &RowPlan,
    n: usize,
) -> Vec<T> {
    let mut out = vec![T::ZERO; n];
    let registers = program.leaves + program.steps.len();
    let inner = plan.inner.max(1);
    // A task handles whole rows (or pieces of one long row) in blocks of BLOCK elements.
    let task = |start: usize, piece: &mut [T]| {
        let mut regs = vec![[T::ZERO; BLOCK]; registers];
        let mut off = vec![0usize; leaves.len()];
        let mut base = vec![0usize; leaves.len()];
        let mut done = 0;
        while done < piece.len() {
            let flat = start + done;
            let (row, col) = (flat / inner, flat % inner);
            plan.row_offsets(row, &mut base);
            let len = (inner - col).min(piece.len() - done).min(BLOCK);
            for ((o, b), s) in off.iter_mut().zip(&base).zip(&plan.inner_strides) {
                *o = b + col * s;
            }
            run_block(
                program,
                leaves,
                &plan.inner_strides,
                &off,
                &mut regs,
                &mut piece[done..done + len],
            );
            done += len;
        }
    };
    if n < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        task(0, &mut out);
    } else {
        out.par_chunks_mut(TASK_SIZE)
            .enumerate()
            .for_each(|(c, piece)| task(c * TASK_SIZE, piece));
    }
    out
}

/// Evaluates a fused program on its leaf tensors (all of the output's shape and dtype).
pub(crate) fn run(
    program: &FusedProgram,
    leaves: &[&Tensor],
    shape: &[usize],
    dtype: DType,
) -> Result<Storage> {
    let guards: Vec<_> = leaves.iter().map(|t| t.storage()).collect();
    let layouts: Vec<&Layout> = leaves.iter().map(|t| t.layout()).collect();
    let plan = RowPlan::new(shape, &layouts);
    let n = crate::shape::numel(shape);
    fn slices<'a, T: StorageElement>(
        g: &'a [std::sync::RwLockReadGuard<'_, Storage>],
    ) -> Option<Vec<&'a [T]>> {
        g.iter().map(|s| T::slice(s)).collect()
    }
    let mismatch = || Error::UnsupportedDType { op: "fused", dtype };
    Ok(match dtype {
        DType::F32 => Storage::F32(run_typed(
            program,
            &slices::<f32>(&guards).ok_or_else(mismatch)?,
            &plan,
            n,
        )),
        DType::F64 => Storage::F64(run_typed(
            program,
            &slices::<f64>(&guards).ok_or_else(mismatch)?,
            &plan,
            n,
        )),
        DType::I64 => return Err(mismatch()),
    })
}
