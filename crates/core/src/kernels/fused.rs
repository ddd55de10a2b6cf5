//! The fused elementwise kernel of static graphs: a short program of elementwise steps runs
//! over blocks of 64 elements, so intermediate values stay in registers-sized arrays in cache
//! instead of making a round trip through memory per op. Each step is dispatched once per
//! block (not per element), and its loop over the block vectorises.

use rayon::prelude::*;

use super::elementwise::{max_nan, min_nan, with_binary_fn, with_cmp_fn, with_unary_fn};
use super::{PARALLEL_THRESHOLD, TASK_SIZE, coalesce};
use crate::graph::passes::{MAX_FUSED_LEAVES, MAX_FUSED_STEPS};
use crate::graph::{FusedOp, FusedProgram};
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{Element, Float, Layout};

const BLOCK: usize = 64;

/// Rows of the common shape, with each leaf's strides (a run-time count of operands).
pub(crate) struct RowPlan {
    outer_shape: Vec<usize>,
    outer_strides: Vec<Vec<usize>>,
    offsets: Vec<usize>,
    inner: usize,
    inner_strides: Vec<usize>,
}

impl RowPlan {
    pub(crate) fn new(shape: &[usize], layouts: &[&Layout]) -> RowPlan {
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

#[inline(always)]
fn unary<T: Float>(op: UnaryOp, x: &[T], y: &mut [T]) {
    with_unary_fn!(op, T, f => {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = f(v);
        }
    })
}

#[inline(always)]
fn binary<T: Float>(op: BinaryOp, a: &[T], b: &[T], y: &mut [T]) {
    with_binary_fn!(op, T, f => {
        for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
            *o = f(u, v);
        }
    })
}

#[inline(always)]
fn compare<T: Float>(op: CmpOp, a: &[T], b: &[T], y: &mut [T]) {
    with_cmp_fn!(op, T, f => {
        for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
            *o = f(u, v);
        }
    })
}

/// Runs the program over `len` consecutive elements starting at the given leaf offsets. Leaf
/// `alias`, if any, is the output itself (an update in place): its block is read from `out`
/// before anything is written there.
#[inline(always)]
fn run_block<T: Float>(
    program: &FusedProgram,
    leaves: &[&[T]],
    alias: Option<usize>,
    strides: &[usize],
    offsets: &[usize],
    regs: &mut [[T; BLOCK]],
    out: &mut [T],
) {
    let len = out.len();
    let l = program.leaves;
    let (leaf_regs, step_regs) = regs.split_at_mut(l);
    // Contiguous leaves (and the output, for an update in place) are read where they are;
    // broadcast and strided ones are first gathered into their register.
    for (k, (src, (&s, &o))) in leaves.iter().zip(strides.iter().zip(offsets)).enumerate() {
        if alias == Some(k) || s == 1 {
            continue;
        }
        let r = &mut leaf_regs[k][..len];
        if s == 0 {
            // A broadcast value (a scalar such as a learning rate, or a bias along rows).
            r.fill(src[o]);
        } else {
            for (i, v) in r.iter_mut().enumerate() {
                *v = src[o + i * s];
            }
        }
    }
    {
        let current: &[T] = out;
        let mut views: [&[T]; MAX_FUSED_LEAVES] = [&[]; MAX_FUSED_LEAVES];
        for (k, view) in views.iter_mut().enumerate().take(l) {
            *view = if alias == Some(k) {
                current
            } else if strides[k] == 1 {
                &leaves[k][offsets[k]..offsets[k] + len]
            } else {
                &leaf_regs[k][..len]
            };
        }
        for (k, step) in program.steps.iter().enumerate() {
            let (done, rest) = step_regs.split_at_mut(k);
            let y = &mut rest[0][..len];
            let arg = |a: usize| -> &[T] { if a < l { views[a] } else { &done[a - l][..len] } };
            match *step {
                FusedOp::Unary(op, a) => unary(op, arg(a), y),
                FusedOp::Powf(e, a) => {
                    // The same special cases as the eager kernel, for identical results.
                    let x = arg(a);
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
                FusedOp::Binary(op, a, b) => binary(op, arg(a), arg(b), y),
                FusedOp::Cmp(op, a, b) => compare(op, arg(a), arg(b), y),
                FusedOp::Where(c, a, b) => {
                    let (c, a, b) = (arg(c), arg(a), arg(b));
                    for (i, o) in y.iter_mut().enumerate() {
                        *o = if c[i] != T::ZERO { a[i] } else { b[i] };
                    }
                }
            }
        }
    }
    let last = program.steps.len() - 1;
    out.copy_from_slice(&step_regs[last][..len]);
}

/// Most registers of a fused program: its leaves and its steps.
const MAX_REGS: usize = MAX_FUSED_LEAVES + MAX_FUSED_STEPS;

/// Working memory of a fused program: its registers and per-leaf offsets, in fixed-size arrays
/// (14 KB for f32), so parallel tasks keep theirs on the stack instead of allocating.
pub(crate) struct Scratch<T> {
    regs: [[T; BLOCK]; MAX_REGS],
    off: [usize; MAX_FUSED_LEAVES],
    base: [usize; MAX_FUSED_LEAVES],
    leaves: usize,
    steps: usize,
}

impl<T: Float> Scratch<T> {
    pub(crate) fn new(program: &FusedProgram) -> Self {
        Scratch {
            regs: [[T::ZERO; BLOCK]; MAX_REGS],
            off: [0; MAX_FUSED_LEAVES],
            base: [0; MAX_FUSED_LEAVES],
            leaves: program.leaves.min(MAX_FUSED_LEAVES),
            steps: program.steps.len().min(MAX_FUSED_STEPS),
        }
    }
}

/// Runs the program over `piece`, the output elements from flat index `start` on, with the
/// CPU's 256-bit vectors where it has them (the build targets baseline x86-64). The same
/// operations in the same order either way: results are bit for bit the same.
fn run_piece<T: Float>(
    program: &FusedProgram,
    leaves: &[&[T]],
    alias: Option<usize>,
    plan: &RowPlan,
    start: usize,
    piece: &mut [T],
    scratch: &mut Scratch<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { run_piece_avx2(program, leaves, alias, plan, start, piece, scratch) };
        return;
    }
    run_piece_any(program, leaves, alias, plan, start, piece, scratch);
}

/// [`run_piece_any`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_piece_avx2<T: Float>(
    program: &FusedProgram,
    leaves: &[&[T]],
    alias: Option<usize>,
    plan: &RowPlan,
    start: usize,
    piece: &mut [T],
    scratch: &mut Scratch<T>,
) {
    run_piece_any(program, leaves, alias, plan, start, piece, scratch);
}

#[inline(always)]
fn run_piece_any<T: Float>(
    program: &FusedProgram,
    leaves: &[&[T]],
    alias: Option<usize>,
    plan: &RowPlan,
    start: usize,
    piece: &mut [T],
    scratch: &mut Scratch<T>,
) {
    let inner = plan.inner.max(1);
    let mut done = 0;
    while done < piece.len() {
        let flat = start + done;
        let (row, col) = (flat / inner, flat % inner);
        let l = scratch.leaves;
        plan.row_offsets(row, &mut scratch.base[..l]);
        let len = (inner - col).min(piece.len() - done).min(BLOCK);
        for ((o, b), s) in scratch.off[..l]
            .iter_mut()
            .zip(&scratch.base[..l])
            .zip(&plan.inner_strides)
        {
            *o = b + col * s;
        }
        run_block(
            program,
            leaves,
            alias,
            &plan.inner_strides,
            &scratch.off[..l],
            &mut scratch.regs[..l + scratch.steps],
            &mut piece[done..done + len],
        );
        done += len;
    }
}

/// Evaluates the program into `out`; single-threaded runs use `scratch` and allocate nothing.
/// Leaf `alias` (its slice in `leaves` unused) is `out` itself, laid out like the output: the
/// program then updates `out` in place.
pub(crate) fn run_into<T: Float>(
    program: &FusedProgram,
    leaves: &[&[T]],
    alias: Option<usize>,
    plan: &RowPlan,
    out: &mut [T],
    scratch: &mut Scratch<T>,
) {
    if out.len() < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        run_piece(program, leaves, alias, plan, 0, out, scratch);
    } else {
        out.par_chunks_mut(TASK_SIZE)
            .enumerate()
            .for_each(|(c, piece)| {
                let mut own = Scratch::new(program);
                run_piece(program, leaves, alias, plan, c * TASK_SIZE, piece, &mut own);
            });
    }
}
