//! The fused elementwise kernel of static graphs: a short program of elementwise steps runs
//! over blocks of elements, so intermediate values stay in block-sized registers in cache
//! instead of making a round trip through memory per op. Each step is dispatched once per
//! block (not per element), and its loop over the block vectorises. Scalar operands (a
//! learning rate, a constant) are read once per block, not spread over a register.
//!
//! Several programs over the same index space (the in-place updates of one optimizer step: a
//! weight's moments, then the weight) run as one *group*: block by block, each member in turn,
//! so a value one member writes is still in cache when the next one reads it.
//!
//! `program` defines the programs and their register limits; `steps` interprets a program step
//! by step; `update_loops` has the hand-written loops of Adam's updates; this module runs a
//! group of programs (blocks, operands, threads).

mod program;
mod steps;
mod update_loops;

use std::cell::RefCell;

use rayon::prelude::*;

use self::program::{BLOCK, MAX_REGS};
pub use self::program::{FusedOp, FusedProgram};
pub(crate) use self::program::{MAX_FUSED_LEAVES, MAX_FUSED_STEPS};
use self::steps::{Arg, run_steps};
pub(crate) use self::update_loops::UpdateLoop;
use super::{PARALLEL_THRESHOLD, Plan, TASK_SIZE};
use crate::storage::StorageElement;
use crate::{Element, Error, Float, Result};

/// Elements per block of a group whose every member has a hand-written loop (which uses no
/// registers): longer, so the per-block work of picking operands is spread over more elements.
const UPDATE_LOOP_BLOCK: usize = 2048;

/// Most programs in one group.
pub(crate) const MAX_GROUP: usize = 8;

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
    pub(crate) plan: &'a Plan,
    pub(crate) leaves: [Leaf<'a, T>; MAX_FUSED_LEAVES],
    /// The program's hand-written loop, if it has one.
    pub(crate) update_loop: Option<UpdateLoop>,
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
    if let Some(update_loop) = m.update_loop {
        let views = leaf_views(m, off, at, len, earlier, &[], later, gathered);
        if update_loop.run(&views, alias, &mut mine[at..at + len]) {
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
    let block = if members.iter().all(|m| m.update_loop.is_some()) {
        UPDATE_LOOP_BLOCK
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
            m.plan.row_offsets_into(row, &mut off[..l]);
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

/// Evaluates a group of programs over one index space: member `j` writes `outs[j]` (distinct
/// storages none of the data leaves reads). Runs on the calling thread's registers below the
/// parallel threshold, and then allocates nothing.
///
/// # Errors
/// [`Error::Internal`] when the group breaks the runner's contract: as many members as
/// outputs, at most [`MAX_GROUP`], outputs all of one length, programs within the register
/// limits, and flat plans for every member of a group of more than one.
pub(crate) fn run_group<T: FusedFloat>(
    members: &[Member<'_, T>],
    outs: &mut [&mut [T]],
) -> Result<()> {
    let n = outs.first().map_or(0, |o| o.len());
    let broken = if members.len() != outs.len() || outs.len() > MAX_GROUP {
        Some(format!(
            "{} programs for {} outputs (at most {MAX_GROUP})",
            members.len(),
            outs.len()
        ))
    } else if let Some(o) = outs.iter().find(|o| o.len() != n) {
        Some(format!("outputs of {} and {n} elements", o.len()))
    } else if let Some(m) = members
        .iter()
        .find(|m| m.program.leaves > MAX_FUSED_LEAVES || m.program.steps.len() > MAX_FUSED_STEPS)
    {
        Some(format!(
            "a program of {} leaves and {} steps",
            m.program.leaves,
            m.program.steps.len()
        ))
    } else if members.len() > 1 && !members.iter().all(|m| m.plan.is_flat()) {
        Some("a group member with a strided plan".to_string())
    } else {
        None
    };
    if let Some(what) = broken {
        return Err(Error::Internal(format!("fused group: {what}")));
    }
    if n < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        T::with_regs(|regs| run_piece(members, 0, outs, regs));
        return Ok(());
    }
    let mut shared = Outputs {
        ptrs: [std::ptr::null_mut(); MAX_GROUP],
        count: outs.len(),
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
                // SAFETY: `shared.ptrs[i]` points to output `i`, which holds `n` elements
                // (checked above) and stays mutably borrowed for this call; the tasks take
                // disjoint ranges `start..start + len` of it, with `start + len <= n`.
                unsafe { std::slice::from_raw_parts_mut(shared.ptrs[i].add(start), len) }
            } else {
                &mut []
            }
        });
        T::with_regs(|regs| run_piece(members, start, &mut pieces[..shared.count], regs));
    });
    Ok(())
}

impl<T: Element> Leaf<'_, T> {
    /// An unused leaf slot.
    pub(crate) const NONE: Self = Leaf::Data(&[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;

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
        let plan = Plan::of(&[n], &layouts.iter().collect::<Vec<_>>()).unwrap();
        let mut leaves = [Leaf::NONE; MAX_FUSED_LEAVES];
        for (k, d) in data.iter().enumerate() {
            leaves[k] = if alias == Some(k) {
                Leaf::Out(0)
            } else {
                Leaf::Data(d)
            };
        }
        let found = UpdateLoop::of(program, &plan);
        assert!(found.is_some(), "{program:?} has a hand-written loop");
        let member = Member {
            program,
            plan: &plan,
            leaves,
            update_loop: if native { found } else { None },
        };
        let mut out = alias.map_or(vec![0.0; n], |k| data[k].clone());
        run_group(std::slice::from_ref(&member), &mut [out.as_mut_slice()]).unwrap();
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
        let program = |native: UpdateLoop| FusedProgram {
            leaves: native.leaves().0,
            steps: native.steps().to_vec(),
        };
        let (ema, ema_sq, adam) = (
            program(UpdateLoop::Ema),
            program(UpdateLoop::EmaOfSquares),
            program(UpdateLoop::AdamStep),
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
