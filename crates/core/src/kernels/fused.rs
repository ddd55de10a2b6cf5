//! The fused elementwise kernel of static graphs: a short program of elementwise steps runs
//! over blocks of elements, so intermediate values stay in block-sized registers in cache
//! instead of making a round trip through memory per op. Each step is dispatched once per
//! block (not per element), and its loop over the block vectorises. Scalar operands (a
//! learning rate, a constant) are read once per block, not spread over a register.
//!
//! Several programs over the same index space (the in-place updates of one optimizer step: a
//! weight's moments, then the weight) run as one *group*: block by block, each member in turn,
//! so a value one member writes is still in cache when the next one reads it.

use std::cell::RefCell;

use rayon::prelude::*;

use super::elementwise::{max_nan, min_nan, with_binary_fn, with_cmp_fn, with_unary_fn};
use super::{PARALLEL_THRESHOLD, TASK_SIZE, coalesce};
use crate::graph::passes::{MAX_FUSED_LEAVES, MAX_FUSED_STEPS};
use crate::graph::{FusedOp, FusedProgram};
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::storage::StorageElement;
use crate::{Element, Float, Layout};

/// Elements per block: large enough that dispatching a step costs little against its loop,
/// small enough that a program's registers stay in the L1 cache.
const BLOCK: usize = 256;

/// Elements per block of a group whose every member has a hand-written loop (which uses no
/// registers): longer, so the per-block work of picking operands is spread over more elements.
const NATIVE_BLOCK: usize = 2048;

/// Most programs in one group.
pub(crate) const MAX_GROUP: usize = 8;

/// Most registers of a fused program: its leaves and its steps.
const MAX_REGS: usize = MAX_FUSED_LEAVES + MAX_FUSED_STEPS;

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

    /// Whether the whole shape is one row: every leaf is read with a single stride.
    pub(crate) fn is_flat(&self) -> bool {
        self.outer_shape.is_empty()
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

/// Floats the fused kernel runs on, each with per-thread registers.
pub(crate) trait FusedFloat: Float + StorageElement {
    /// Runs `f` on this thread's registers (allocated at the thread's first use, then reused).
    fn with_regs<R>(f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! impl_fused_float {
    ($t:ty) => {
        impl FusedFloat for $t {
            fn with_regs<R>(f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local! {
                    static REGS: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                }
                REGS.with(|r| {
                    let mut r = r.borrow_mut();
                    if r.is_empty() {
                        r.resize(MAX_REGS * BLOCK, 0.0);
                    }
                    f(&mut r)
                })
            }
        }
    };
}
impl_fused_float!(f32);
impl_fused_float!(f64);

/// Where a program's leaf is read from.
#[derive(Clone, Copy)]
pub(crate) enum Leaf<'a, T> {
    /// A storage, read through the member's plan.
    Data(&'a [T]),
    /// The output of member `i` of the group, at the same index: its old value if member `i`
    /// runs later, its new one if it ran earlier (member `i` is the program itself for an
    /// update in place, which reads its old value).
    Out(usize),
}

/// One program of a group, with its plan and where its leaves live.
pub(crate) struct Member<'a, T> {
    pub(crate) program: &'a FusedProgram,
    pub(crate) plan: &'a RowPlan,
    pub(crate) leaves: [Leaf<'a, T>; MAX_FUSED_LEAVES],
    /// The program's hand-written loop, if it has one.
    pub(crate) native: Option<Native>,
}

/// Programs with a hand-written loop. A step run over a block writes its result to cache, so
/// a long program costs a store per step and element; these loops keep every intermediate
/// value in registers and store only the result, with the same operations in the same order
/// as the steps (results are bit for bit the same). They are the in-place updates of Adam,
/// which dominate its training step at small batches; any other program runs step by step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Native {
    /// `a * s + b * t` with scalars `s`, `t` (leaves a, s, b, t): a moving average.
    Ema,
    /// `a * s + b^2 * t` (leaves a, s, b, t): a moving average of squares.
    EmaOfSquares,
    /// `p - m / (sqrt(v) / c + e) * s` with scalars `c`, `e`, `s` (leaves v, c, e, m, s, p):
    /// Adam's step.
    AdamStep,
}

impl Native {
    const ALL: [Native; 3] = [Native::Ema, Native::EmaOfSquares, Native::AdamStep];

    /// The steps the loop computes.
    fn steps(self) -> &'static [FusedOp] {
        use BinaryOp::{Add, Div, Mul, Sub};
        use FusedOp::{Binary, Powf, Unary};
        match self {
            Native::Ema => &[Binary(Mul, 0, 1), Binary(Mul, 2, 3), Binary(Add, 4, 5)],
            Native::EmaOfSquares => &[
                Binary(Mul, 0, 1),
                Powf(2.0, 2),
                Binary(Mul, 5, 3),
                Binary(Add, 4, 6),
            ],
            Native::AdamStep => &[
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
    fn leaves(self) -> (usize, &'static [usize]) {
        match self {
            Native::Ema | Native::EmaOfSquares => (4, &[1, 3]),
            Native::AdamStep => (6, &[1, 2, 4]),
        }
    }

    /// The hand-written loop computing `program`, when its leaves at the scalar positions are
    /// single values for the whole (flat) plan and the others are contiguous.
    pub(crate) fn of(program: &FusedProgram, plan: &RowPlan) -> Option<Native> {
        let native = Native::ALL
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
    fn run<T: Float>(self, v: &[Arg<'_, T>], alias: Option<usize>, y: &mut [T]) -> bool {
        use Arg::{Scalar as S, Slice as V};
        match (self, alias, v) {
            (Native::Ema, None, &[V(a), S(s), V(b), S(t), ..]) => {
                for ((o, &x), &g) in y.iter_mut().zip(a).zip(b) {
                    *o = x * s + g * t;
                }
            }
            (Native::Ema, Some(0), &[_, S(s), V(b), S(t), ..]) => {
                for (o, &g) in y.iter_mut().zip(b) {
                    *o = *o * s + g * t;
                }
            }
            (Native::EmaOfSquares, None, &[V(a), S(s), V(b), S(t), ..]) => {
                for ((o, &x), &g) in y.iter_mut().zip(a).zip(b) {
                    *o = x * s + g * g * t;
                }
            }
            (Native::EmaOfSquares, Some(0), &[_, S(s), V(b), S(t), ..]) => {
                for (o, &g) in y.iter_mut().zip(b) {
                    *o = *o * s + g * g * t;
                }
            }
            (Native::AdamStep, None, &[V(v), S(c), S(e), V(m), S(s), V(p), ..]) => {
                for (((o, &v), &m), &p) in y.iter_mut().zip(v).zip(m).zip(p) {
                    *o = p - m / (v.sqrt() / c + e) * s;
                }
            }
            (Native::AdamStep, Some(5), &[V(v), S(c), S(e), V(m), S(s), ..]) => {
                for ((o, &v), &m) in y.iter_mut().zip(v).zip(m) {
                    *o = *o - m / (v.sqrt() / c + e) * s;
                }
            }
            _ => return false,
        }
        true
    }
}

/// A step's operand over one block.
#[derive(Clone, Copy)]
enum Arg<'a, T> {
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
        FusedOp::Powf(e, a) => {
            // The same special cases as the eager kernel, for identical results.
            if e == 2.0 {
                map1(arg(a), y, |v| v * v);
            } else if e == 1.0 {
                map1(arg(a), y, |v| v);
            } else {
                let e = T::from_f64(e);
                map1(arg(a), y, |v| v.powf(e));
            }
        }
        FusedOp::Binary(op, a, b) => with_binary_fn!(op, T, f => map2(arg(a), arg(b), y, f)),
        FusedOp::Cmp(op, a, b) => with_cmp_fn!(op, T, f => map2(arg(a), arg(b), y, f)),
        FusedOp::Where(c, a, b) => {
            let (c, a, b) = (arg(c), arg(a), arg(b));
            for (i, o) in y.iter_mut().enumerate() {
                *o = if c.at(i) != T::ZERO { a.at(i) } else { b.at(i) };
            }
        }
    }
}

/// Runs the steps of `program` over one block whose leaves are `views`: all but the last into
/// `regs` (one block each), the last into `y`.
#[inline(always)]
fn run_steps<T: Float>(program: &FusedProgram, views: &[Arg<'_, T>], regs: &mut [T], y: &mut [T]) {
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

/// The operand of each leaf of member `m` over the block of `len` elements at `at` in the
/// piece (data leaves at element offsets `off`): contiguous leaves and outputs are read where
/// they are, a broadcast value as a scalar, other strided leaves gathered into `gathered`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn leaf_views<'v, T: Float>(
    m: &Member<'v, T>,
    off: &[usize],
    at: usize,
    len: usize,
    earlier: &'v [&mut [T]],
    own: &'v [T],
    later: &'v [&mut [T]],
    gathered: &'v mut [T],
) -> [Arg<'v, T>; MAX_FUSED_LEAVES] {
    let j = earlier.len();
    let mut views = [Arg::Scalar(T::ZERO); MAX_FUSED_LEAVES];
    let mut gathered = gathered.chunks_exact_mut(BLOCK);
    for (k, view) in views.iter_mut().enumerate().take(m.program.leaves) {
        let g = gathered.next();
        *view = match m.leaves[k] {
            Leaf::Out(i) if i < j => Arg::Slice(&earlier[i][at..at + len]),
            Leaf::Out(i) if i == j => Arg::Slice(own),
            Leaf::Out(i) => Arg::Slice(&later[i - j - 1][at..at + len]),
            Leaf::Data(src) => {
                let (o, s) = (off[k], m.plan.inner_strides[k]);
                match s {
                    0 => Arg::Scalar(src[o]),
                    1 => Arg::Slice(&src[o..o + len]),
                    _ => {
                        let r = &mut g.expect("a register per leaf")[..len];
                        for (i, v) in r.iter_mut().enumerate() {
                            *v = src[o + i * s];
                        }
                        Arg::Slice(r)
                    }
                }
            }
        };
    }
    views
}

/// Runs member `j` over the block of `len` elements at `at` in the piece: by its hand-written
/// loop if it has one that takes these operands, else step by step in blocks of [`BLOCK`] (a
/// group of hand-written loops runs longer blocks).
#[inline(always)]
fn run_member<T: Float>(
    m: &Member<'_, T>,
    j: usize,
    off: &[usize],
    at: usize,
    len: usize,
    outs: &mut [&mut [T]],
    regs: &mut [T],
) {
    let l = m.program.leaves;
    // The leaf that is the output itself, for an update in place.
    let alias = m.leaves[..l]
        .iter()
        .position(|leaf| matches!(leaf, Leaf::Out(i) if *i == j));
    let (gathered, step_regs) = regs.split_at_mut(MAX_FUSED_LEAVES * BLOCK);
    let (earlier, rest) = outs.split_at_mut(j);
    let Some((mine, later)) = rest.split_first_mut() else {
        return;
    };
    if let Some(native) = m.native {
        let views = leaf_views(m, off, at, len, earlier, &[], later, gathered);
        if native.run(&views, alias, &mut mine[at..at + len]) {
            return;
        }
    }
    let mut shifted = [0usize; MAX_FUSED_LEAVES];
    for first in (0..len).step_by(BLOCK) {
        let (at, len) = (at + first, BLOCK.min(len - first));
        for (o, (&b, &s)) in shifted
            .iter_mut()
            .zip(off.iter().zip(&m.plan.inner_strides))
        {
            *o = b + first * s;
        }
        let off = &shifted[..l];
        let block = &mut mine[at..at + len];
        if alias.is_some() {
            // The program reads its own output's old block: compute into a register, then
            // copy.
            let last = m.program.steps.len().saturating_sub(1);
            let (done, result) = step_regs.split_at_mut(last * BLOCK);
            let result = &mut result[..len];
            {
                let views = leaf_views(m, off, at, len, earlier, block, later, gathered);
                run_steps(m.program, &views, done, result);
            }
            block.copy_from_slice(result);
        } else {
            let views = leaf_views(m, off, at, len, earlier, &[], later, gathered);
            run_steps(m.program, &views, step_regs, block);
        }
    }
}

/// Runs the group over `outs`, the output elements from flat index `start` on, with the CPU's
/// 256-bit vectors where it has them (the build targets baseline x86-64). The same operations
/// in the same order either way: results are bit for bit the same.
fn run_piece<T: Float>(
    members: &[Member<'_, T>],
    start: usize,
    outs: &mut [&mut [T]],
    regs: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { run_piece_avx2(members, start, outs, regs) };
        return;
    }
    run_piece_any(members, start, outs, regs);
}

/// [`run_piece_any`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_piece_avx2<T: Float>(
    members: &[Member<'_, T>],
    start: usize,
    outs: &mut [&mut [T]],
    regs: &mut [T],
) {
    run_piece_any(members, start, outs, regs);
}

#[inline(always)]
fn run_piece_any<T: Float>(
    members: &[Member<'_, T>],
    start: usize,
    outs: &mut [&mut [T]],
    regs: &mut [T],
) {
    let Some(first) = members.first() else {
        return;
    };
    let inner = first.plan.inner.max(1);
    let block = if members.iter().all(|m| m.native.is_some()) {
        NATIVE_BLOCK
    } else {
        BLOCK
    };
    let n = outs.first().map_or(0, |o| o.len());
    let mut off = [0usize; MAX_FUSED_LEAVES];
    let mut done = 0;
    while done < n {
        let flat = start + done;
        let (row, col) = (flat / inner, flat % inner);
        let len = (inner - col).min(n - done).min(block);
        for (j, m) in members.iter().enumerate() {
            let l = m.program.leaves;
            m.plan.row_offsets(row, &mut off[..l]);
            for (o, s) in off[..l].iter_mut().zip(&m.plan.inner_strides) {
                *o += col * s;
            }
            run_member(m, j, &off[..l], done, len, outs, regs);
        }
        done += len;
    }
}

/// The outputs of a group, shared by its parallel tasks, each of which takes a disjoint range.
struct Outputs<T> {
    ptrs: [*mut T; MAX_GROUP],
    count: usize,
}

// SAFETY: the tasks that share `Outputs` make slices of disjoint ranges only.
unsafe impl<T: Send> Send for Outputs<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Outputs<T> {}

/// Evaluates a group of programs over one index space: member `j` writes `outs[j]` (all of one
/// length, distinct storages none of the data leaves reads). Every member of a group of more
/// than one has a flat plan. Runs on the calling thread's registers below the parallel
/// threshold, and then allocates nothing.
pub(crate) fn run_group<T: FusedFloat>(members: &[Member<'_, T>], outs: &mut [&mut [T]]) {
    let n = outs.first().map_or(0, |o| o.len());
    debug_assert!(members.len() == outs.len() && outs.len() <= MAX_GROUP);
    debug_assert!(members.len() == 1 || members.iter().all(|m| m.plan.is_flat()));
    if n < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        T::with_regs(|regs| run_piece(members, 0, outs, regs));
        return;
    }
    let mut shared = Outputs {
        ptrs: [std::ptr::null_mut(); MAX_GROUP],
        count: outs.len().min(MAX_GROUP),
    };
    for (p, o) in shared.ptrs.iter_mut().zip(outs.iter_mut()) {
        *p = o.as_mut_ptr();
    }
    let shared = &shared;
    (0..n.div_ceil(TASK_SIZE)).into_par_iter().for_each(|c| {
        let start = c * TASK_SIZE;
        let len = TASK_SIZE.min(n - start);
        let mut pieces: [&mut [T]; MAX_GROUP] = std::array::from_fn(|i| {
            if i < shared.count {
                // SAFETY: each output holds `n` elements and this task alone takes
                // `start..start + len` of it.
                unsafe { std::slice::from_raw_parts_mut(shared.ptrs[i].add(start), len) }
            } else {
                &mut []
            }
        });
        T::with_regs(|regs| run_piece(members, start, &mut pieces[..shared.count], regs));
    });
}

impl<T: Element> Leaf<'_, T> {
    /// An unused leaf slot.
    pub(crate) const NONE: Self = Leaf::Data(&[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` over `n` elements with leaves `data` (scalars at the positions of
    /// one-element vectors), in place into leaf `alias` if given, with or without its
    /// hand-written loop.
    fn run(
        program: &FusedProgram,
        data: &[Vec<f32>],
        alias: Option<usize>,
        native: bool,
    ) -> Vec<f32> {
        let n = data.iter().map(Vec::len).max().unwrap();
        let layouts: Vec<Layout> = data
            .iter()
            .map(|d| Layout::contiguous(&[d.len()]).broadcast_to(&[n]))
            .collect();
        let plan = RowPlan::new(&[n], &layouts.iter().collect::<Vec<_>>());
        let mut leaves = [Leaf::NONE; MAX_FUSED_LEAVES];
        for (k, d) in data.iter().enumerate() {
            leaves[k] = if alias == Some(k) {
                Leaf::Out(0)
            } else {
                Leaf::Data(d)
            };
        }
        let found = Native::of(program, &plan);
        assert!(found.is_some(), "{program:?} has a hand-written loop");
        let member = Member {
            program,
            plan: &plan,
            leaves,
            native: if native { found } else { None },
        };
        let mut out = alias.map_or(vec![0.0; n], |k| data[k].clone());
        run_group(std::slice::from_ref(&member), &mut [out.as_mut_slice()]);
        out
    }

    #[test]
    fn hand_written_loops_match_the_steps_bit_for_bit() {
        let mut rng = crate::Rng::new(3);
        let n = 5000; // two long blocks and a partial one
        let mut vector = |scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.uniform() as f32 - 0.3) * scale)
                .collect()
        };
        let (a, b, p) = (vector(1.0), vector(2.0), vector(1.0));
        let v: Vec<f32> = vector(1.0).iter().map(|x| x * x).collect();
        let program = |native: Native| FusedProgram {
            leaves: native.leaves().0,
            steps: native.steps().to_vec(),
        };
        let (ema, ema_sq, adam) = (
            program(Native::Ema),
            program(Native::EmaOfSquares),
            program(Native::AdamStep),
        );
        let moments = vec![a.clone(), vec![0.9], b.clone(), vec![0.1]];
        let step = vec![v, vec![0.7], vec![1e-8], a, vec![1e-3], p];
        for (program, data, alias) in [
            (&ema, &moments, None),
            (&ema, &moments, Some(0)),
            // In place into a leaf the loop does not take in place: run step by step.
            (&ema, &moments, Some(2)),
            (&ema_sq, &moments, None),
            (&ema_sq, &moments, Some(0)),
            (&adam, &step, None),
            (&adam, &step, Some(5)),
        ] {
            let native = run(program, data, alias, true);
            let steps = run(program, data, alias, false);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&native),
                bits(&steps),
                "{program:?}, in place {alias:?}"
            );
        }
    }
}
