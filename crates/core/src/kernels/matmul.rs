//! Matrix products through the `gemm` crate, which reads any row/column strides, so transposed
//! views are multiplied without being copied. A large product is cut into one band of output
//! rows (or columns) per thread, each computed by gemm on one core; many small ones in a batch
//! are spread over threads instead.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::{Error, Layout, Result, Storage};

/// Products with at least this many multiply-adds use several threads.
const PARALLEL_FLOPS: usize = 48 * 48 * 48;

/// The strides of one operand matrix: (row stride, column stride), in elements.
fn mat_strides(l: &Layout) -> (isize, isize) {
    let r = l.shape().len();
    (l.strides()[r - 2] as isize, l.strides()[r - 1] as isize)
}

/// Storage offset of batch matrix `b` of a layout with batch dims `batch`.
fn batch_offset(l: &Layout, batch: &[usize], mut b: usize) -> usize {
    let mut off = l.offset();
    for d in (0..batch.len()).rev() {
        off += (b % batch[d]) * l.strides()[d];
        b /= batch[d];
    }
    off
}

/// `out = a b`, or with `acc = Some(s)`, `out += s * a b` (gemm reads the destination).
///
/// # Safety
/// `out` must point to the product's `[.., m, n]` elements, contiguous, valid for writes and,
/// with `acc`, initialised. Without `acc` every element is written and none is read, so the
/// memory may be uninitialised.
unsafe fn matmul_t<T: 'static + Copy + Default + Send + Sync + crate::Element>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    out: Dst<T>,
    acc: Option<T>,
) {
    let r = la.shape().len();
    let batch = &la.shape()[..r - 2];
    let (m, k, n) = (la.shape()[r - 2], la.shape()[r - 1], lb.shape()[r - 1]);
    let nb: usize = batch.iter().product();
    if m == 0 || n == 0 || k == 0 {
        if acc.is_none() {
            for i in 0..nb * m * n {
                // SAFETY: `out` holds nb*m*n elements (the caller's contract).
                unsafe { out.at(i).0.write(T::ZERO) };
            }
        }
        return;
    }
    // SAFETY (of every `out.at` below): batch matrix `i` starts at element i*m*n of `out`,
    // and a band at row `start` (column `start`) of it, inside its m*n elements.
    let (read_dst, alpha, beta) = match acc {
        Some(s) => (true, T::ONE, s),
        None => (false, T::ZERO, T::ONE),
    };
    let (a_rs, a_cs) = mat_strides(la);
    let (b_rs, b_cs) = mat_strides(lb);
    let big = m * n * k >= PARALLEL_FLOPS;
    let threads = rayon::current_num_threads();
    // One block of the product of batch matrix `i`: output rows `r0..r0 + rows`, columns
    // `c0..c0 + cols`, written at `dst` (the block's first element, row stride n).
    let block = |dst: Dst<T>, i: usize, (r0, rows): (usize, usize), (c0, cols): (usize, usize)| {
        let ao = batch_offset(la, batch, i) as isize + r0 as isize * a_rs;
        let bo = batch_offset(lb, batch, i) as isize + c0 as isize * b_cs;
        // SAFETY: `dst` points at element (r0, c0) of an output of m*n elements laid out
        // row-major (row stride n, column stride 1), and the block lies inside it; blocks that
        // run at once are disjoint. The operand pointers start at valid offsets of their
        // storages, and the layouts were produced by views of tensors whose shapes match (m, k)
        // and (k, n), so every element gemm reads at `offset + i*rs + j*cs` lies inside them.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                dst.0,
                1,
                n as isize,
                read_dst,
                a.as_ptr().offset(ao),
                a_cs,
                a_rs,
                b.as_ptr().offset(bo),
                b_cs,
                b_rs,
                alpha,
                beta,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    };
    if nb > 1 && !big && threads > 1 && nb * m * n * k >= PARALLEL_FLOPS {
        (0..nb)
            .into_par_iter()
            .for_each(|i| block(unsafe { out.at(i * m * n) }, i, (0, m), (0, n)));
    } else if big && threads > 1 {
        // Each thread computes a band of the output on one core: split along the longer of the
        // output's two sides, in multiples of the micro-kernel's tile. This keeps both cores
        // busy on the thin products of small batches, where gemm's own split leaves one idle.
        let (long, by_rows) = if m >= n { (m, true) } else { (n, false) };
        let band = long.div_ceil(threads).next_multiple_of(TILE);
        let bands = long.div_ceil(band);
        for i in 0..nb {
            let base = unsafe { out.at(i * m * n) };
            (0..bands).into_par_iter().for_each(|j| {
                let (start, len) = (j * band, band.min(long - j * band));
                if by_rows {
                    block(unsafe { base.at(start * n) }, i, (start, len), (0, n));
                } else {
                    block(unsafe { base.at(start) }, i, (0, m), (start, len));
                }
            });
        }
    } else {
        for i in 0..nb {
            block(unsafe { out.at(i * m * n) }, i, (0, m), (0, n));
        }
    }
}

/// Rows or columns per thread's band are a multiple of this (gemm's micro-kernel tiles are
/// at most this long on either side).
const TILE: usize = 16;

/// The output pointer handed to the threads that write disjoint blocks of one product.
#[derive(Clone, Copy)]
struct Dst<T>(*mut T);

impl<T> Dst<T> {
    /// The pointer `count` elements on.
    ///
    /// # Safety
    /// The result must stay inside the allocation `self` points into.
    unsafe fn at(self, count: usize) -> Self {
        // SAFETY: guaranteed by the caller.
        Dst(unsafe { self.0.add(count) })
    }
}

// SAFETY: the threads that share a `Dst` write disjoint blocks of the output only.
unsafe impl<T: Send> Send for Dst<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Dst<T> {}

/// Batched matrix product `[.., m, k] x [.., k, n] -> [.., m, n]` into `out` (contiguous, of
/// that shape); batch dims already equal.
pub(crate) fn matmul_into(
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
    out: &mut Storage,
) -> Result<()> {
    product_into(a, la, b, lb, out, None)
}

/// `out += scale * a b` for contiguous `out` of the product's shape: a matrix product with
/// an update fused in (`w -= lr * g` where `g` is a product), reading and writing `out` once.
pub(crate) fn matmul_acc_into(
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
    scale: f64,
    out: &mut Storage,
) -> Result<()> {
    product_into(a, la, b, lb, out, Some(scale))
}

/// `out = a b`, or with `acc = Some(s)`, `out += s * a b`, for float storages of one dtype.
fn product_into(
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
    out: &mut Storage,
    acc: Option<f64>,
) -> Result<()> {
    // SAFETY: `out` is contiguous and of the product's shape (the callers' contract), and
    // initialised, as `acc` requires.
    match (a, b, out) {
        (Storage::F32(a), Storage::F32(b), Storage::F32(o)) => unsafe {
            matmul_t(a, la, b, lb, Dst(o.as_mut_ptr()), acc.map(|s| s as f32));
        },
        (Storage::F64(a), Storage::F64(b), Storage::F64(o)) => unsafe {
            matmul_t(a, la, b, lb, Dst(o.as_mut_ptr()), acc);
        },
        (a, b, _) => return Err(dtype_error(a, b)),
    }
    Ok(())
}

/// The error for operands that are not two float storages of one dtype.
fn dtype_error(a: &Storage, b: &Storage) -> Error {
    match (a, b) {
        (Storage::I64(_), Storage::I64(_)) => Error::UnsupportedDType {
            op: "matmul",
            dtype: crate::DType::I64,
        },
        _ => Error::DTypeMismatch {
            op: "matmul",
            lhs: a.dtype(),
            rhs: b.dtype(),
        },
    }
}

/// The product of `[.., m, k]` and `[.., k, n]` in a new vector of `len` elements, written by
/// gemm into fresh memory (no zeroing first).
fn fresh_product<T: 'static + Copy + Default + Send + Sync + crate::Element>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    len: usize,
) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    // SAFETY: the vector has room for the product's `len` elements; without `acc`,
    // `matmul_t` writes every one of them and reads none, so they are initialised when the
    // length is set.
    unsafe {
        matmul_t(a, la, b, lb, Dst(out.as_mut_ptr()), None);
        out.set_len(len);
    }
    out
}

/// Batched matrix product into a new contiguous storage.
pub(crate) fn matmul(a: &Storage, la: &Layout, b: &Storage, lb: &Layout) -> Result<Storage> {
    let r = la.shape().len();
    let len = la.shape()[..r - 1].iter().product::<usize>() * lb.shape()[r - 1];
    match (a, b) {
        (Storage::F32(x), Storage::F32(y)) => Ok(Storage::F32(fresh_product(x, la, y, lb, len))),
        (Storage::F64(x), Storage::F64(y)) => Ok(Storage::F64(fresh_product(x, la, y, lb, len))),
        _ => Err(dtype_error(a, b)),
    }
}
