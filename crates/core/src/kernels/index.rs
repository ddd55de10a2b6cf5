//! Indexing kernels: gather, scatter-add and concatenation. Index tensors are i64 and every
//! index is bounds-checked, returning an error that names the op, the index and the size.

use std::ops::Range;

use rayon::prelude::*;

use super::elementwise::{cast_into, contiguous};
use super::{Plan, TASK_SIZE};
use crate::{DType, Error, Layout, Result, Storage, StorageElement, shape::contiguous_strides};

fn indices(op: &'static str, s: &Storage, l: &Layout) -> Result<Vec<i64>> {
    match contiguous(s, l) {
        Storage::I64(v) => Ok(v),
        other => Err(Error::UnsupportedDType {
            op,
            dtype: other.dtype(),
        }),
    }
}

/// Position in `src` (contiguous, shape `src_shape`) of the element that output position `flat`
/// (contiguous, shape `idx_shape`) reads, with `dim`'s coordinate replaced by `index`.
#[inline]
fn source_pos(
    flat: usize,
    idx_strides: &[usize],
    src_strides: &[usize],
    dim: usize,
    index: usize,
) -> usize {
    let mut rem = flat;
    let mut pos = 0;
    for (d, (&is, &ss)) in idx_strides.iter().zip(src_strides).enumerate() {
        let coord = rem / is;
        rem %= is;
        pos += if d == dim { index } else { coord } * ss;
    }
    pos
}

fn check_index(op: &'static str, i: i64, size: usize) -> Result<usize> {
    if i < 0 || i as usize >= size {
        return Err(Error::Index { op, index: i, size });
    }
    Ok(i as usize)
}

fn gather_t<T: StorageElement>(
    x: &[T],
    x_shape: &[usize],
    idx: &[i64],
    idx_shape: &[usize],
    dim: usize,
) -> Result<Vec<T>> {
    let xs = contiguous_strides(x_shape);
    let is = contiguous_strides(idx_shape);
    let mut out = Vec::with_capacity(idx.len());
    for (flat, &i) in idx.iter().enumerate() {
        let i = check_index("gather", i, x_shape[dim])?;
        out.push(x[source_pos(flat, &is, &xs, dim, i)]);
    }
    Ok(out)
}

/// `out[..i.., ..] = x[.. idx[..i..] at dim ..]` (PyTorch `torch.gather`).
pub(crate) fn gather(
    x: &Storage,
    lx: &Layout,
    idx: &Storage,
    li: &Layout,
    dim: usize,
) -> Result<Storage> {
    let ix = indices("gather", idx, li)?;
    let xc = contiguous(x, lx);
    Ok(match &xc {
        Storage::F32(v) => Storage::F32(gather_t(v, lx.shape(), &ix, li.shape(), dim)?),
        Storage::F64(v) => Storage::F64(gather_t(v, lx.shape(), &ix, li.shape(), dim)?),
        Storage::I64(v) => Storage::I64(gather_t(v, lx.shape(), &ix, li.shape(), dim)?),
    })
}

fn scatter_add_t<T: StorageElement>(
    out: &mut [T],
    shape: &[usize],
    idx: &[i64],
    idx_shape: &[usize],
    src: &[T],
    dim: usize,
) -> Result<()> {
    let os = contiguous_strides(shape);
    let is = contiguous_strides(idx_shape);
    for (flat, (&i, &v)) in idx.iter().zip(src).enumerate() {
        let i = check_index("scatter_add", i, shape[dim])?;
        let p = source_pos(flat, &is, &os, dim, i);
        out[p] = out[p] + v;
    }
    Ok(())
}

/// `out = base; out[.. idx[..i..] at dim ..] += src[..i..]` (PyTorch `Tensor.scatter_add`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add(
    base: &Storage,
    lb: &Layout,
    idx: &Storage,
    li: &Layout,
    src: &Storage,
    ls: &Layout,
    dim: usize,
) -> Result<Storage> {
    let ix = indices("scatter_add", idx, li)?;
    let mut out = contiguous(base, lb);
    let src = contiguous(src, ls);
    match (&mut out, &src) {
        (Storage::F32(o), Storage::F32(s)) => {
            scatter_add_t(o, lb.shape(), &ix, li.shape(), s, dim)?
        }
        (Storage::F64(o), Storage::F64(s)) => {
            scatter_add_t(o, lb.shape(), &ix, li.shape(), s, dim)?
        }
        (Storage::I64(o), Storage::I64(s)) => {
            scatter_add_t(o, lb.shape(), &ix, li.shape(), s, dim)?
        }
        (o, s) => {
            return Err(Error::DTypeMismatch {
                op: "scatter_add",
                lhs: o.dtype(),
                rhs: s.dtype(),
            });
        }
    }
    Ok(out)
}

fn cat_t<T: StorageElement>(parts: &[Storage], outer: usize, row_lens: &[usize]) -> Vec<T> {
    let total: usize = row_lens.iter().sum::<usize>() * outer;
    let mut out = Vec::with_capacity(total);
    let slices: Vec<&[T]> = parts.iter().filter_map(T::slice).collect();
    for o in 0..outer {
        for (s, &len) in slices.iter().zip(row_lens) {
            out.extend_from_slice(&s[o * len..(o + 1) * len]);
        }
    }
    out
}

/// Concatenates along `dim`; shapes agree except along `dim`, dtypes all equal.
pub(crate) fn cat(inputs: &[(&Storage, &Layout)], dim: usize, dtype: DType) -> Storage {
    let shape0 = inputs[0].1.shape();
    let outer: usize = shape0[..dim].iter().product();
    let parts: Vec<Storage> = inputs.iter().map(|(s, l)| contiguous(s, l)).collect();
    let row_lens: Vec<usize> = inputs
        .iter()
        .map(|(_, l)| l.shape()[dim..].iter().product())
        .collect();
    match dtype {
        DType::F32 => Storage::F32(cat_t(&parts, outer, &row_lens)),
        DType::F64 => Storage::F64(cat_t(&parts, outer, &row_lens)),
        DType::I64 => Storage::I64(cat_t(&parts, outer, &row_lens)),
    }
}

/// The sizes of a gather or scatter along `dim` from a source of shape `src` that can run row
/// by row: the index contiguous from its first element, the shapes equal outside `dim`. Returns
/// `(outer, inner, source size along dim, index size along dim)`.
fn rows(src: &[usize], l_idx: &Layout, dim: usize) -> Option<(usize, usize, usize, usize)> {
    let i = l_idx.shape();
    let same = src.len() == i.len() && (0..src.len()).all(|d| d == dim || src[d] == i[d]);
    (plain(l_idx) && same).then(|| {
        (
            src[..dim].iter().product(),
            src[dim + 1..].iter().product(),
            src[dim],
            i[dim],
        )
    })
}

/// Whether a layout is contiguous from its storage's first element.
fn plain(l: &Layout) -> bool {
    l.is_contiguous() && l.offset() == 0
}

/// Calls `f(big, small)` for every index of `idx` in the outer rows `outer`, viewed as rows
/// `(outer, k, inner)` that pick among `size` along the middle axis: `small` is the index's
/// own flat position, `big` the flat position it picks in `(outer, size, inner)`. An index
/// out of range is an error of `op`.
fn each_index(
    op: &'static str,
    idx: &[i64],
    (_, inner, size, k): (usize, usize, usize, usize),
    outer: Range<usize>,
    mut f: impl FnMut(usize, usize),
) -> Result<()> {
    for o in outer {
        for j in 0..k {
            let small = (o * k + j) * inner;
            for (q, &i) in idx[small..][..inner].iter().enumerate() {
                let i = check_index(op, i, size)?;
                f((o * size + i) * inner + q, small + q);
            }
        }
    }
    Ok(())
}

/// Runs `f(outer_rows, chunk)` over chunks of whole outer rows of `out` (`per_row` elements
/// each), in parallel.
fn par_rows<T: Send>(
    out: &mut [T],
    per_row: usize,
    f: impl Fn(Range<usize>, &mut [T]) -> Result<()> + Sync + Send,
) -> Result<()> {
    let per_row = per_row.max(1);
    let rows = (TASK_SIZE / per_row).max(1);
    out.par_chunks_mut(rows * per_row)
        .enumerate()
        .try_for_each(|(t, chunk)| f(t * rows..t * rows + chunk.len() / per_row, chunk))
}

fn gather_rows<T: StorageElement>(
    x: &[T],
    idx: &[i64],
    rows: (usize, usize, usize, usize),
    out: &mut [T],
) -> Result<()> {
    let per_row = rows.3 * rows.1;
    par_rows(out, per_row, |outer, o| {
        let first = outer.start * per_row;
        each_index("gather", idx, rows, outer, |big, small| {
            o[small - first] = x[big]
        })
    })
}

/// The scatter-add of `src` at `idx` into `out`, which holds the base.
fn scatter_rows<T: StorageElement>(
    idx: &[i64],
    src: &[T],
    rows: (usize, usize, usize, usize),
    out: &mut [T],
) -> Result<()> {
    let per_row = rows.2 * rows.1;
    par_rows(out, per_row, |outer, o| {
        let first = outer.start * per_row;
        each_index("scatter_add", idx, rows, outer, |big, small| {
            o[big - first] = o[big - first] + src[small]
        })
    })
}

/// [`gather`] into `out` (contiguous, of the index's shape): row by row when the operands
/// allow, else through a new buffer.
pub(crate) fn gather_into(
    x: &Storage,
    lx: &Layout,
    idx: &Storage,
    li: &Layout,
    dim: usize,
    out: &mut Storage,
) -> Result<()> {
    let fast = rows(lx.shape(), li, dim).filter(|r| plain(lx) && out.len() == r.0 * r.1 * r.3);
    match (fast, x, idx, &mut *out) {
        (Some(r), Storage::F32(x), Storage::I64(i), Storage::F32(o)) => gather_rows(x, i, r, o),
        (Some(r), Storage::F64(x), Storage::I64(i), Storage::F64(o)) => gather_rows(x, i, r, o),
        (Some(r), Storage::I64(x), Storage::I64(i), Storage::I64(o)) => gather_rows(x, i, r, o),
        _ => {
            *out = gather(x, lx, idx, li, dim)?;
            Ok(())
        }
    }
}

/// [`scatter_add`] into `out` (contiguous, of the base's shape): row by row when the
/// operands allow, else through a new buffer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add_into(
    base: &Storage,
    lb: &Layout,
    idx: &Storage,
    li: &Layout,
    src: &Storage,
    ls: &Layout,
    dim: usize,
    out: &mut Storage,
) -> Result<()> {
    // The base (often a broadcast zero) is written into `out` through its layout.
    let fast = rows(lb.shape(), li, dim)
        .filter(|r| out.len() == r.0 * r.1 * r.2 && plain(ls))
        .filter(|_| base.dtype() == src.dtype() && out.dtype() == src.dtype());
    let Some(r) = fast else {
        *out = scatter_add(base, lb, idx, li, src, ls, dim)?;
        return Ok(());
    };
    cast_into(&Plan::new(lb.shape(), [lb]), base, out);
    match (idx, src, &mut *out) {
        (Storage::I64(i), Storage::F32(s), Storage::F32(o)) => scatter_rows(i, s, r, o),
        (Storage::I64(i), Storage::F64(s), Storage::F64(o)) => scatter_rows(i, s, r, o),
        _ => {
            *out = scatter_add(base, lb, idx, li, src, ls, dim)?;
            Ok(())
        }
    }
}
