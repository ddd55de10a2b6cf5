//! CPU kernels. This is the narrow boundary between the tensor front end and the numeric loops:
//! every function takes flat storages with their [`Layout`]s and returns a new contiguous
//! storage. Elementwise loops are monomorphised per op and dtype (no per-element dispatch), walk
//! strided inputs row by row with coalesced dimensions, and split rows across the current rayon
//! pool above a size threshold. Work is split in fixed-size pieces so results do not depend on
//! the thread count.

pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod index;
pub(crate) mod matmul;
pub(crate) mod reduce;

use rayon::prelude::*;

use crate::Layout;

/// Below this many elements a kernel runs on the calling thread.
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Elements handed to one parallel task.
pub(crate) const TASK_SIZE: usize = 1 << 14;

/// Iteration plan for `N` operands that share one logical shape: dimensions of size one are
/// dropped, adjacent dimensions that are contiguous in every operand are merged, and the result
/// is a set of "rows" (the innermost merged dimension) reached through the outer dimensions.
#[derive(Debug, Clone)]
pub(crate) struct Plan<const N: usize> {
    outer_shape: Vec<usize>,
    outer_strides: [Vec<usize>; N],
    offsets: [usize; N],
    /// Length of one row.
    pub inner: usize,
    /// Stride of each operand along a row.
    pub inner_strides: [usize; N],
}

impl<const N: usize> Plan<N> {
    /// Builds the plan for operands with the given layouts, all of logical shape `shape`.
    pub fn new(shape: &[usize], layouts: [&Layout; N]) -> Self {
        let (mut dims, mut strides) = coalesce(shape, &layouts);
        let inner = dims.pop().unwrap_or(1);
        let mut inner_strides = [0; N];
        for (k, s) in strides.iter_mut().enumerate() {
            inner_strides[k] = s.pop().unwrap_or(0);
        }
        let mut outer_strides: [Vec<usize>; N] = std::array::from_fn(|_| Vec::new());
        for (o, s) in outer_strides.iter_mut().zip(strides) {
            *o = s;
        }
        Plan {
            outer_shape: dims,
            outer_strides,
            offsets: std::array::from_fn(|k| layouts[k].offset()),
            inner,
            inner_strides,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.outer_shape.iter().product()
    }

    /// Storage offsets of the first element of row `row` in each operand.
    #[inline]
    pub fn row_offsets(&self, mut row: usize) -> [usize; N] {
        let mut off = self.offsets;
        for d in (0..self.outer_shape.len()).rev() {
            let size = self.outer_shape[d];
            let i = row % size;
            row /= size;
            for (o, strides) in off.iter_mut().zip(&self.outer_strides) {
                *o += i * strides[d];
            }
        }
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
    plan: &Plan<N>,
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
                let base = plan.row_offsets(0);
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
        assert_eq!(p.inner_strides, [1, 1]);
    }

    #[test]
    fn plan_of_transpose() {
        let a = Layout::contiguous(&[2, 3]).permuted(&[1, 0]);
        let p = Plan::new(&[3, 2], [&a]);
        assert_eq!((p.rows(), p.inner, p.inner_strides), (3, 2, [3]));
        assert_eq!(p.row_offsets(1), [1]);
    }
}
