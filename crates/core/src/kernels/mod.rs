//! CPU kernels. This is the narrow boundary between the tensor front end and the numeric loops:
//! every function takes flat storages with their [`Layout`]s and returns a new contiguous
//! storage. Elementwise loops are monomorphised per op and dtype (no per-element dispatch), walk
//! strided inputs row by row with coalesced dimensions, and split rows across the current rayon
//! pool above a size threshold. Work is split in fixed-size pieces so results do not depend on
//! the thread count.

pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod index;
pub(crate) mod matmul;
pub(crate) mod reduce;

use rayon::prelude::*;

use crate::{Error, Layout, Result};

/// Below this many elements a kernel runs on the calling thread.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Elements handed to one parallel task.
pub(crate) const TASK_SIZE: usize = 1 << 14;

/// Most operands one [`Plan`] walks (the most inputs of a fused node, and of any primitive).
pub(crate) const MAX_OPERANDS: usize = 8;

/// The one iteration plan of the kernels, for up to [`MAX_OPERANDS`] operands that share one
/// logical shape: dimensions of size one are dropped, adjacent dimensions that are contiguous
/// in every operand are merged, and the result is a set of "rows" (the innermost merged
/// dimension) reached through the outer dimensions. Elementwise kernels walk it row by row;
/// the fused kernel walks it in blocks that never cross a row.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    outer_shape: Vec<usize>,
    /// Operand `k`'s stride along outer dimension `d` at `d * operands + k`.
    outer_strides: Vec<usize>,
    operands: usize,
    offsets: [usize; MAX_OPERANDS],
    /// Length of one row.
    pub inner: usize,
    /// Stride of each operand along a row (0 past the operands).
    pub inner_strides: [usize; MAX_OPERANDS],
}

impl Plan {
    /// The plan for a fixed number of operands with the given layouts, all of logical shape
    /// `shape`.
    pub fn new<const N: usize>(shape: &[usize], layouts: [&Layout; N]) -> Plan {
        const { assert!(N <= MAX_OPERANDS) };
        Plan::build(shape, &layouts)
    }

    /// The plan for a run-time number of operands.
    ///
    /// # Errors
    /// [`Error::Internal`] for more than [`MAX_OPERANDS`] operands.
    pub fn of(shape: &[usize], layouts: &[&Layout]) -> Result<Plan> {
        if layouts.len() > MAX_OPERANDS {
            return Err(Error::Internal(format!(
                "an iteration plan of {} operands (at most {MAX_OPERANDS})",
                layouts.len()
            )));
        }
        Ok(Plan::build(shape, layouts))
    }

    fn build(shape: &[usize], layouts: &[&Layout]) -> Plan {
        let (mut dims, mut strides) = coalesce(shape, layouts);
        let inner = dims.pop().unwrap_or(1);
        let mut inner_strides = [0; MAX_OPERANDS];
        for (i, s) in inner_strides.iter_mut().zip(strides.iter_mut()) {
            *i = s.pop().unwrap_or(0);
        }
        let mut offsets = [0; MAX_OPERANDS];
        for (o, l) in offsets.iter_mut().zip(layouts) {
            *o = l.offset();
        }
        let operands = layouts.len();
        let mut outer_strides = vec![0; dims.len() * operands];
        for (k, s) in strides.iter().enumerate() {
            for (d, &v) in s.iter().enumerate() {
                outer_strides[d * operands + k] = v;
            }
        }
        Plan {
            outer_shape: dims,
            outer_strides,
            operands,
            offsets,
            inner,
            inner_strides,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.outer_shape.iter().product()
    }

    /// Whether the whole shape is one row: every operand is read with a single stride.
    pub fn is_flat(&self) -> bool {
        self.outer_shape.is_empty()
    }

    /// The first operands' strides along a row, as an array.
    #[inline]
    pub fn strides<const N: usize>(&self) -> [usize; N] {
        std::array::from_fn(|k| self.inner_strides.get(k).copied().unwrap_or(0))
    }

    /// Writes the storage offsets of the first element of row `row` of each operand into
    /// `off` (as many as both have).
    #[inline]
    pub fn row_offsets_into(&self, mut row: usize, off: &mut [usize]) {
        let n = self.operands.min(off.len());
        off[..n].copy_from_slice(&self.offsets[..n]);
        for d in (0..self.outer_shape.len()).rev() {
            let size = self.outer_shape[d];
            let i = row % size;
            row /= size;
            let strides = &self.outer_strides[d * self.operands..][..n];
            for (o, s) in off[..n].iter_mut().zip(strides) {
                *o += i * s;
            }
        }
    }

    /// The storage offsets of the first element of row `row` in each of the first `N` operands.
    #[inline]
    pub fn row_offsets<const N: usize>(&self, row: usize) -> [usize; N] {
        let mut off = [0; N];
        self.row_offsets_into(row, &mut off);
        off
    }
}

/// Drops dimensions of size one and merges adjacent dimensions that are contiguous in every
/// operand. Returns the remaining sizes and each operand's strides along them.
pub(crate) fn coalesce(shape: &[usize], layouts: &[&Layout]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut dims: Vec<usize> = Vec::with_capacity(shape.len());
    let mut strides: Vec<Vec<usize>> = vec![Vec::with_capacity(shape.len()); layouts.len()];
    for (d, &size) in shape.iter().enumerate() {
        if size != 1 {
            dims.push(size);
            for (s, l) in strides.iter_mut().zip(layouts) {
                s.push(l.strides()[d]);
            }
        }
    }
    // Merge dim i into i+1 when contiguous for every operand (walk from the back).
    let mut i = dims.len();
    while i >= 2 {
        let (a, b) = (i - 2, i - 1);
        if strides.iter().all(|s| s[a] == s[b] * dims[b]) {
            dims[a] *= dims[b];
            dims.remove(b);
            for s in strides.iter_mut() {
                s[a] = s[b];
                s.remove(b);
            }
        }
        i -= 1;
    }
    (dims, strides)
}

/// Fills a contiguous output row by row: `f(out_row, offsets)` gets one row of the output (of
/// `plan.inner` elements) and the storage offsets of that row in each input. Rows are split
/// across threads when the output is large.
pub(crate) fn fill_rows<const N: usize, T: Send>(
    plan: &Plan,
    out: &mut [T],
    f: impl Fn(&mut [T], [usize; N]) + Sync,
) {
    let inner = plan.inner.max(1);
    if out.is_empty() {
        return;
    }
    if out.len() < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        for (r, row) in out.chunks_mut(inner).enumerate() {
            f(row, plan.row_offsets(r));
        }
        return;
    }
    if plan.rows() == 1 {
        // One long row: split it into fixed-size pieces.
        out.par_chunks_mut(TASK_SIZE)
            .enumerate()
            .for_each(|(c, piece)| {
                let base: [usize; N] = plan.row_offsets(0);
                let start = c * TASK_SIZE;
                let off = std::array::from_fn(|k| base[k] + start * plan.inner_strides[k]);
                f(piece, off);
            });
        return;
    }
    let rows_per_task = (TASK_SIZE / inner).max(1);
    out.par_chunks_mut(rows_per_task * inner)
        .enumerate()
        .for_each(|(c, block)| {
            for (r, row) in block.chunks_mut(inner).enumerate() {
                f(row, plan.row_offsets(c * rows_per_task + r));
            }
        });
}

/// Runs `f(chunk_index, chunk)` over fixed-size chunks of `out`, in parallel when large.
pub(crate) fn par_chunks<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let chunk = chunk.max(1);
    if out.len() < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_merges_contiguous_dims() {
        let l = Layout::contiguous(&[2, 3, 4]);
        let p = Plan::new(&[2, 3, 4], [&l, &l]);
        assert_eq!(p.inner, 24);
        assert_eq!(p.rows(), 1);
    }

    #[test]
    fn plan_keeps_broadcast_dims() {
        let a = Layout::contiguous(&[5, 3]);
        let b = Layout::contiguous(&[3]).broadcast_to(&[5, 3]);
        let p = Plan::new(&[5, 3], [&a, &b]);
        assert_eq!(p.inner, 3);
        assert_eq!(p.rows(), 5);
        assert_eq!(p.row_offsets(2), [6, 0]);
        assert_eq!(p.strides(), [1, 1]);
    }

    #[test]
    fn plan_of_transpose() {
        let a = Layout::contiguous(&[2, 3]).permuted(&[1, 0]);
        let p = Plan::new(&[3, 2], [&a]);
        assert_eq!((p.rows(), p.inner, p.strides()), (3, 2, [3]));
        assert_eq!(p.row_offsets(1), [1]);
    }
}
