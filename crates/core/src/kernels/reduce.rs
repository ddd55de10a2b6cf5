//! Reductions (sum, max, min, argmax) over any set of axes. Each run of adjacent reduced axes is
//! viewed as `(outer, reduced, inner)` on contiguous data: with `inner == 1` every output is a
//! contiguous slice reduced with several accumulators; otherwise whole rows are accumulated,
//! which vectorises (the bias-gradient case, a sum over the batch axis). Splits across threads
//! are over output elements or fixed-size chunks, so results do not depend on the thread count.

use rayon::prelude::*;

use super::{PARALLEL_THRESHOLD, TASK_SIZE, elementwise::contiguous, par_chunks};
use crate::op::ReduceOp;
use crate::{DType, Element, Error, Layout, Result, Storage, StorageElement};

/// A reduction's combining function and identity.
trait Reducer<T>: Sync {
    const INIT: T;
    fn combine(a: T, b: T) -> T;
}

struct SumR;
struct MaxR;
struct MinR;

impl<T: Element> Reducer<T> for SumR {
    const INIT: T = T::ZERO;
    #[inline(always)]
    fn combine(a: T, b: T) -> T {
        a + b
    }
}
impl<T: Element> Reducer<T> for MaxR {
    const INIT: T = T::MIN;
    #[inline(always)]
    fn combine(a: T, b: T) -> T {
        if b > a || b.is_nan() { b } else { a }
    }
}
impl<T: Element> Reducer<T> for MinR {
    const INIT: T = T::MAX;
    #[inline(always)]
    fn combine(a: T, b: T) -> T {
        if b < a || b.is_nan() { b } else { a }
    }
}

/// Reduces a contiguous slice with eight independent accumulators (vectorisable, and for sums
/// more accurate than one running total).
#[inline]
fn reduce_slice<T: Element, R: Reducer<T>>(x: &[T]) -> T {
    let mut acc = [R::INIT; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] = R::combine(acc[k], c[k]);
        }
    }
    let mut total = R::INIT;
    for v in rest {
        total = R::combine(total, *v);
    }
    let pairs = [
        R::combine(acc[0], acc[4]),
        R::combine(acc[1], acc[5]),
        R::combine(acc[2], acc[6]),
        R::combine(acc[3], acc[7]),
    ];
    R::combine(
        total,
        R::combine(
            R::combine(pairs[0], pairs[2]),
            R::combine(pairs[1], pairs[3]),
        ),
    )
}

/// Reduces `x` viewed as `(outer, r, inner)` over the middle axis.
fn reduce_block<T: Element + Default, R: Reducer<T>>(
    x: &[T],
    outer: usize,
    r: usize,
    inner: usize,
    out: &mut [T],
) {
    out.fill(R::INIT);
    if inner == 1 {
        if outer == 1 && r >= PARALLEL_THRESHOLD {
            // One long reduction: fixed-size partial results, combined in order, so the result
            // is the same whether the pieces ran on one thread or several.
            let partials: Vec<T> = if rayon::current_num_threads() > 1 {
                x.par_chunks(TASK_SIZE).map(reduce_slice::<T, R>).collect()
            } else {
                x.chunks(TASK_SIZE).map(reduce_slice::<T, R>).collect()
            };
            out[0] = reduce_slice::<T, R>(&partials);
        } else {
            let per_task = (TASK_SIZE / r.max(1)).max(1);
            par_chunks(out, per_task, |c, o| {
                for (i, y) in o.iter_mut().enumerate() {
                    let a = c * per_task + i;
                    *y = reduce_slice::<T, R>(&x[a * r..(a + 1) * r]);
                }
            });
        }
        return;
    }
    // inner > 1: accumulate whole rows, parallel over (outer, column pieces).
    let piece = inner.min((TASK_SIZE / r.max(1)).max(64));
    let work = |o: &mut [T], a: usize, j0: usize| {
        for k in 0..r {
            let row = &x[(a * r + k) * inner + j0..(a * r + k) * inner + j0 + o.len()];
            for (y, &v) in o.iter_mut().zip(row) {
                *y = R::combine(*y, v);
            }
        }
    };
    if outer * inner * r < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        for (a, o) in out.chunks_mut(inner).enumerate() {
            work(o, a, 0);
        }
    } else {
        out.par_chunks_mut(inner).enumerate().for_each(|(a, o)| {
            o.par_chunks_mut(piece)
                .enumerate()
                .for_each(|(p, oo)| work(oo, a, p * piece));
        });
    }
}

/// Splits sorted axes into runs of adjacent axes.
fn runs(dims: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &d in dims {
        match out.last_mut() {
            Some((_, end)) if *end == d => *end = d + 1,
            _ => out.push((d, d + 1)),
        }
    }
    out
}

fn reduce_t<T: StorageElement + Default, R: Reducer<T>>(
    x: &[T],
    shape: &[usize],
    dims: &[usize],
) -> Vec<T> {
    let mut shape = shape.to_vec();
    let mut data: Option<Vec<T>> = None;
    // Reduce the last run first so earlier axes keep their positions (keepdim throughout).
    for &(d0, d1) in runs(dims).iter().rev() {
        let outer: usize = shape[..d0].iter().product();
        let r: usize = shape[d0..d1].iter().product();
        let inner: usize = shape[d1..].iter().product();
        let src = data.as_deref().unwrap_or(x);
        let mut next = vec![R::INIT; outer * inner];
        reduce_block::<T, R>(src, outer, r, inner, &mut next);
        for s in &mut shape[d0..d1] {
            *s = 1;
        }
        data = Some(next);
    }
    data.unwrap_or_else(|| x.to_vec())
}

fn reduce_typed<T: StorageElement + Default>(
    op: ReduceOp,
    x: &[T],
    shape: &[usize],
    dims: &[usize],
) -> Vec<T> {
    match op {
        ReduceOp::Sum => reduce_t::<T, SumR>(x, shape, dims),
        ReduceOp::Max => reduce_t::<T, MaxR>(x, shape, dims),
        ReduceOp::Min => reduce_t::<T, MinR>(x, shape, dims),
    }
}

/// Reduces over `dims` (sorted, unique), keeping them as size-1 axes.
pub(crate) fn reduce(op: ReduceOp, s: &Storage, l: &Layout, dims: &[usize]) -> Result<Storage> {
    if op != ReduceOp::Sum && dims.iter().any(|&d| l.shape()[d] == 0) {
        return Err(Error::Argument {
            op: op.name(),
            msg: format!(
                "cannot reduce over an empty dimension (shape {:?})",
                l.shape()
            ),
        });
    }
    let owned;
    let s = if l
        .contiguous_range()
        .is_some_and(|r| r.start == 0 && r.end == s.len())
    {
        s
    } else {
        owned = contiguous(s, l);
        &owned
    };
    let shape = l.shape();
    Ok(match s {
        Storage::F32(x) => Storage::F32(reduce_typed(op, x, shape, dims)),
        Storage::F64(x) => Storage::F64(reduce_typed(op, x, shape, dims)),
        Storage::I64(x) => Storage::I64(reduce_typed(op, x, shape, dims)),
    })
}

fn argmax_t<T: Element + Sync>(x: &[T], outer: usize, r: usize, inner: usize) -> Vec<i64> {
    let mut out = vec![0i64; outer * inner];
    par_chunks(&mut out, TASK_SIZE / r.max(1) + 1, |c, o| {
        let per = TASK_SIZE / r.max(1) + 1;
        for (i, y) in o.iter_mut().enumerate() {
            let flat = c * per + i;
            let (a, b) = (flat / inner, flat % inner);
            let mut best = x[a * r * inner + b];
            let mut arg = 0;
            for k in 1..r {
                let v = x[(a * r + k) * inner + b];
                if !best.is_nan() && (v > best || v.is_nan()) {
                    best = v;
                    arg = k;
                }
            }
            *y = arg as i64;
        }
    });
    out
}

/// Index of the (first) largest value along `dim`, as i64, keeping `dim` as a size-1 axis.
/// NaN counts as the largest value, as in PyTorch.
pub(crate) fn argmax(s: &Storage, l: &Layout, dim: usize) -> Result<Storage> {
    let shape = l.shape();
    if shape[dim] == 0 {
        return Err(Error::Argument {
            op: "argmax",
            msg: format!("cannot take argmax over an empty dimension (shape {shape:?})"),
        });
    }
    let c = contiguous(s, l);
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let r = shape[dim];
    Ok(Storage::I64(match &c {
        Storage::F32(x) => argmax_t(x, outer, r, inner),
        Storage::F64(x) => argmax_t(x, outer, r, inner),
        Storage::I64(x) => argmax_t(x, outer, r, inner),
    }))
}

fn argsort_t<T: Element + Sync>(
    x: &[T],
    outer: usize,
    r: usize,
    inner: usize,
    descending: bool,
) -> Vec<i64> {
    use std::cmp::Ordering;
    // NaN is the largest value; equal values keep their order (a stable sort).
    let ascending = |a: T, b: T| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    };
    let mut out = vec![0i64; outer * r * inner];
    let mut order: Vec<usize> = Vec::with_capacity(r);
    for a in 0..outer {
        for b in 0..inner {
            let at = |k: usize| x[(a * r + k) * inner + b];
            order.clear();
            order.extend(0..r);
            if descending {
                order.sort_by(|&i, &j| ascending(at(j), at(i)));
            } else {
                order.sort_by(|&i, &j| ascending(at(i), at(j)));
            }
            for (k, &i) in order.iter().enumerate() {
                out[(a * r + k) * inner + b] = i as i64;
            }
        }
    }
    out
}

/// The positions that sort each line along `dim` (stably, NaN largest), as i64 of the input's
/// shape (PyTorch `torch.sort(x, dim, descending, stable=True).indices`).
pub(crate) fn argsort(s: &Storage, l: &Layout, dim: usize, descending: bool) -> Storage {
    let shape = l.shape();
    let c = contiguous(s, l);
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let r = shape[dim];
    Storage::I64(match &c {
        Storage::F32(x) => argsort_t(x, outer, r, inner, descending),
        Storage::F64(x) => argsort_t(x, outer, r, inner, descending),
        Storage::I64(x) => argsort_t(x, outer, r, inner, descending),
    })
}

/// The elements of a contiguous view, borrowed, or copied when the view is strided.
fn contiguous_slice<'a, T: StorageElement>(
    s: &'a Storage,
    l: &Layout,
    copy: &'a mut Option<Storage>,
) -> Option<&'a [T]> {
    match l.contiguous_range() {
        Some(r) => T::slice(s).map(|x| &x[r]),
        None => {
            *copy = Some(contiguous(s, l));
            copy.as_ref().and_then(T::slice)
        }
    }
}

/// `logsumexp(xs) - target` for one row, as `ln(1 + s) - (target - m)` with `m` the maximum
/// and `s` the sum of `exp(x - m)` over every entry but the first maximum. Both terms are
/// exact where it matters: a confident prediction's loss (`s` tiny) keeps all its digits,
/// where `m + ln(sum) - target` would round it to the spacing of floats near `m`. An infinite
/// maximum is not subtracted (`inf - inf`).
fn ce_row<T: crate::Float>(xs: &[T], target: T) -> T {
    let m = reduce_slice::<T, MaxR>(xs);
    if m.abs() < T::from_f64(f64::INFINITY) {
        let top = xs.iter().position(|&v| v == m);
        let mut s = T::ZERO;
        for (i, &v) in xs.iter().enumerate() {
            if Some(i) != top {
                s = s + (v - m).exp();
            }
        }
        s.ln_1p() - (target - m)
    } else {
        let mut sum = T::ZERO;
        for &v in xs {
            sum = sum + v.exp();
        }
        sum.ln() - target
    }
}

fn ce_rows<T: crate::Float + Default>(x: &[T], lab: &[i64], c: usize, out: &mut [T]) {
    let per = (TASK_SIZE / c.max(1)).max(1);
    par_chunks(out, per, |k, o| {
        for (i, y) in o.iter_mut().enumerate() {
            let row = k * per + i;
            let xs = &x[row * c..(row + 1) * c];
            *y = ce_row(xs, xs[lab[row] as usize]);
        }
    });
}

/// Per-row `logsumexp(x) - x[label]` for logits `[n, c]` and i64 labels `[n]`, into `out`
/// (`[n]`, the logits' dtype). Contiguous inputs are read in place.
pub(crate) fn softmax_cross_entropy_into(
    logits: &Storage,
    ll: &Layout,
    labels: &Storage,
    lab_l: &Layout,
    out: &mut Storage,
) -> Result<()> {
    let c = ll.shape()[1];
    let mut label_copy = None;
    let Some(lab) = contiguous_slice::<i64>(labels, lab_l, &mut label_copy) else {
        return Err(Error::UnsupportedDType {
            op: "softmax_cross_entropy (labels)",
            dtype: labels.dtype(),
        });
    };
    if let Some(&bad) = lab.iter().find(|&&v| v < 0 || v as usize >= c) {
        return Err(Error::Index {
            op: "softmax_cross_entropy",
            index: bad,
            size: c,
        });
    }
    let mut logit_copy = None;
    match out {
        Storage::F32(o) => match contiguous_slice::<f32>(logits, ll, &mut logit_copy) {
            Some(x) => ce_rows(x, lab, c, o),
            None => {
                return Err(Error::DTypeMismatch {
                    op: "softmax_cross_entropy",
                    lhs: DType::F32,
                    rhs: logits.dtype(),
                });
            }
        },
        Storage::F64(o) => match contiguous_slice::<f64>(logits, ll, &mut logit_copy) {
            Some(x) => ce_rows(x, lab, c, o),
            None => {
                return Err(Error::DTypeMismatch {
                    op: "softmax_cross_entropy",
                    lhs: DType::F64,
                    rhs: logits.dtype(),
                });
            }
        },
        Storage::I64(_) => {
            return Err(Error::UnsupportedDType {
                op: "softmax_cross_entropy",
                dtype: DType::I64,
            });
        }
    }
    Ok(())
}

/// Per-row softmax cross-entropy into a new storage (see [`softmax_cross_entropy_into`]).
pub(crate) fn softmax_cross_entropy(
    logits: &Storage,
    ll: &Layout,
    labels: &Storage,
    lab_l: &Layout,
) -> Result<Storage> {
    let mut out = Storage::zeros(logits.dtype(), ll.shape()[0]);
    softmax_cross_entropy_into(logits, ll, labels, lab_l, &mut out)?;
    Ok(out)
}

/// Reduces into `out` (contiguous, the reduced shape) when the input is contiguous and `dims`
/// are adjacent axes, the common case in training graphs, and returns true; returns false
/// without touching `out` otherwise (the caller then uses [`reduce`]).
pub(crate) fn reduce_into(
    op: ReduceOp,
    s: &Storage,
    l: &Layout,
    dims: &[usize],
    out: &mut Storage,
) -> bool {
    let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
    if !adjacent {
        return reduce_ends_into(op, s, l, dims, out);
    }
    let (Some(range), Some(&d0), Some(&last)) = (l.contiguous_range(), dims.first(), dims.last())
    else {
        return false;
    };
    let d1 = last + 1;
    let shape = l.shape();
    let (outer, r, inner) = (
        shape[..d0].iter().product::<usize>(),
        shape[d0..d1].iter().product::<usize>(),
        shape[d1..].iter().product::<usize>(),
    );
    if r == 0 {
        return false;
    }
    dispatch(op, s, range, out, Block { outer, r, inner })
}

/// A contiguous reduction kernel, instantiated by [`dispatch`] for the element type and the
/// reducer.
trait Kernel: Copy {
    fn run<T: Element + Default, R: Reducer<T>>(self, x: &[T], out: &mut [T]);
}

/// [`reduce_block`]: `x` viewed as `(outer, r, inner)` reduced over its middle axis.
#[derive(Clone, Copy)]
struct Block {
    outer: usize,
    r: usize,
    inner: usize,
}

impl Kernel for Block {
    fn run<T: Element + Default, R: Reducer<T>>(self, x: &[T], out: &mut [T]) {
        reduce_block::<T, R>(x, self.outer, self.r, self.inner, out);
    }
}

/// [`reduce_ends`]: `x` viewed as `(a, k, b)` reduced over its first and last axes.
#[derive(Clone, Copy)]
struct Ends {
    a: usize,
    k: usize,
    b: usize,
}

impl Kernel for Ends {
    fn run<T: Element + Default, R: Reducer<T>>(self, x: &[T], out: &mut [T]) {
        reduce_ends::<T, R>(x, self.a, self.k, self.b, out);
    }
}

/// Runs `kernel` on `s[range]` into `out` for `op`; false (nothing written) when the two
/// storages' element types differ or have no reduction kernel.
fn dispatch(
    op: ReduceOp,
    s: &Storage,
    range: std::ops::Range<usize>,
    out: &mut Storage,
    kernel: impl Kernel,
) -> bool {
    fn go<T: Element + Default>(op: ReduceOp, x: &[T], o: &mut [T], kernel: impl Kernel) {
        match op {
            ReduceOp::Sum => kernel.run::<T, SumR>(x, o),
            ReduceOp::Max => kernel.run::<T, MaxR>(x, o),
            ReduceOp::Min => kernel.run::<T, MinR>(x, o),
        }
    }
    match (s, out) {
        (Storage::F32(x), Storage::F32(o)) => go(op, &x[range], o, kernel),
        (Storage::F64(x), Storage::F64(o)) => go(op, &x[range], o, kernel),
        (Storage::I64(x), Storage::I64(o)) => go(op, &x[range], o, kernel),
        _ => return false,
    }
    true
}

/// Reduces `x` viewed as `(a, k, b)` over its first and last axes into `out [k]`: each output
/// combines, in order of `a`, the reductions of its rows of `b` (the order the two-pass
/// [`reduce`] uses, so both give the same result).
fn reduce_ends<T: Element, R: Reducer<T>>(x: &[T], a: usize, k: usize, b: usize, out: &mut [T]) {
    let one = |kk: usize| {
        (0..a).fold(R::INIT, |acc, i| {
            R::combine(acc, reduce_slice::<T, R>(&x[(i * k + kk) * b..][..b]))
        })
    };
    if a * k * b < PARALLEL_THRESHOLD || rayon::current_num_threads() == 1 {
        for (kk, o) in out.iter_mut().enumerate() {
            *o = one(kk);
        }
    } else {
        out.par_iter_mut()
            .enumerate()
            .for_each(|(kk, o)| *o = one(kk));
    }
}

/// [`reduce_into`] for dims that are a leading and a trailing run of axes around kept ones
/// (a batch norm's statistics over `[0, 2, 3]` of NCHW); false for other dims.
fn reduce_ends_into(
    op: ReduceOp,
    s: &Storage,
    l: &Layout,
    dims: &[usize],
    out: &mut Storage,
) -> bool {
    let rank = l.shape().len();
    let parts = runs(dims);
    let [(0, d0), (d1, end)] = parts.as_slice() else {
        return false;
    };
    let (Some(range), true) = (l.contiguous_range(), *end == rank) else {
        return false;
    };
    let shape = l.shape();
    let (a, k, b) = (
        shape[..*d0].iter().product::<usize>(),
        shape[*d0..*d1].iter().product::<usize>(),
        shape[*d1..].iter().product::<usize>(),
    );
    if a == 0 || b == 0 || out.len() != k {
        return false;
    }
    dispatch(op, s, range, out, Ends { a, k, b })
}
