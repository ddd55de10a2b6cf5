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
/// - `la` and `lb` pass [`check_contract`] for `a.len()` and `b.len()`: equal rank of at least
///   2, equal batch dims, `la`'s last size equal to `lb`'s second to last, every element of each
///   layout inside its storage;
/// - `out` points to the product's `[.., m, n]` elements, contiguous, valid for writes and,
///   with `acc`, initialised. Without `acc` every element is written and none is read, so the
///   memory may be uninitialised.
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
                // SAFETY: `out` holds nb*m*n elements (the caller's contract), so element `i`
                // is inside it and valid for writes.
                unsafe { out.at(i).0.write(T::ZERO) };
            }
        }
        return;
    }
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
        // run at once are disjoint. The layouts passed `check_contract` (the caller's
        // contract): every element gemm reads at `offset + i*rs + j*cs`, for the block's rows
        // and columns and all of k, lies inside its operand's storage.
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
        (0..nb).into_par_iter().for_each(|i| {
            // SAFETY: batch matrix `i < nb` starts at element i*m*n of the nb*m*n of `out`.
            let dst = unsafe { out.at(i * m * n) };
            block(dst, i, (0, m), (0, n));
        });
    } else if big && threads > 1 {
        // Each thread computes a band of the output on one core: split along the longer of the
        // output's two sides, in multiples of the micro-kernel's tile. This keeps both cores
        // busy on the thin products of small batches, where gemm's own split leaves one idle.
        let (long, by_rows) = if m >= n { (m, true) } else { (n, false) };
        let band = long.div_ceil(threads).next_multiple_of(TILE);
        let bands = long.div_ceil(band);
        for i in 0..nb {
            // SAFETY: batch matrix `i < nb` starts at element i*m*n of the nb*m*n of `out`.
            let base = unsafe { out.at(i * m * n) };
            (0..bands).into_par_iter().for_each(|j| {
                let (start, len) = (j * band, band.min(long - j * band));
                if by_rows {
                    // SAFETY: row `start < m` of the m*n matrix at `base` starts at start*n.
                    let dst = unsafe { base.at(start * n) };
                    block(dst, i, (start, len), (0, n));
                } else {
                    // SAFETY: column `start < n` of the matrix's first row is element `start`.
                    let dst = unsafe { base.at(start) };
                    block(dst, i, (0, m), (start, len));
                }
            });
        }
    } else {
        for i in 0..nb {
            // SAFETY: batch matrix `i < nb` starts at element i*m*n of the nb*m*n of `out`.
            let dst = unsafe { out.at(i * m * n) };
            block(dst, i, (0, m), (0, n));
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

/// Checks the contract of [`matmul_t`] on the operands' layouts, for storages of `a_len` and
/// `b_len` elements, and returns the product's element count.
///
/// # Errors
/// [`Error::Internal`] when the layouts do not form a product or reach outside a storage:
/// callers validate shapes, so this is a bug, reported instead of reading out of bounds.
fn check_contract(la: &Layout, a_len: usize, lb: &Layout, b_len: usize) -> Result<usize> {
    let (sa, sb) = (la.shape(), lb.shape());
    let r = sa.len();
    let product = r >= 2 && sb.len() == r && sa[..r - 2] == sb[..r - 2] && sa[r - 1] == sb[r - 2];
    let inside = |l: &Layout, len: usize| l.span().is_some_and(|end| end <= len);
    let count = product
        .then(|| {
            sa[..r - 1]
                .iter()
                .chain(&sb[r - 1..])
                .try_fold(1usize, |n, &d| n.checked_mul(d))
        })
        .flatten();
    match count {
        Some(count) if inside(la, a_len) && inside(lb, b_len) => Ok(count),
        _ => Err(Error::Internal(format!(
            "matmul: operands {sa:?} (strides {:?}, offset {}, storage of {a_len}) and {sb:?} \
             (strides {:?}, offset {}, storage of {b_len}) do not form a product inside their \
             storages",
            la.strides(),
            la.offset(),
            lb.strides(),
            lb.offset(),
        ))),
    }
}

/// `out = a b`, or with `acc = Some(s)`, `out += s * a b`, for float storages of one dtype.
///
/// # Errors
/// [`Error::DTypeMismatch`] / [`Error::UnsupportedDType`] for operands that are not two float
/// storages of `out`'s dtype; [`Error::Internal`] when the layouts break [`check_contract`] or
/// `out` is not of the product's size.
fn product_into(
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
    out: &mut Storage,
    acc: Option<f64>,
) -> Result<()> {
    let count = check_contract(la, a.len(), lb, b.len())?;
    if out.len() != count {
        return Err(Error::Internal(format!(
            "matmul: an output of {} elements for a product of {count}",
            out.len()
        )));
    }
    match (a, b, out) {
        (Storage::F32(a), Storage::F32(b), Storage::F32(o)) => {
            // SAFETY: the layouts passed `check_contract` for these storages, and `o` is a
            // contiguous, initialised buffer of exactly the product's `count` elements.
            unsafe { matmul_t(a, la, b, lb, Dst(o.as_mut_ptr()), acc.map(|s| s as f32)) };
        }
        (Storage::F64(a), Storage::F64(b), Storage::F64(o)) => {
            // SAFETY: as above.
            unsafe { matmul_t(a, la, b, lb, Dst(o.as_mut_ptr()), acc) };
        }
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

/// The product of `[.., m, k]` and `[.., k, n]` in a new vector, written by gemm into fresh
/// memory (no zeroing first).
///
/// # Errors
/// [`Error::Internal`] when the layouts break [`check_contract`].
fn fresh_product<T: 'static + Copy + Default + Send + Sync + crate::Element>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Result<Vec<T>> {
    let len = check_contract(la, a.len(), lb, b.len())?;
    let mut out = Vec::with_capacity(len);
    // SAFETY: the layouts passed `check_contract` for these slices, and the vector has room
    // for the product's `len` elements; without `acc`, `matmul_t` writes every one of them and
    // reads none.
    unsafe { matmul_t(a, la, b, lb, Dst(out.as_mut_ptr()), None) };
    // SAFETY: the `len <= capacity` elements were all initialised by `matmul_t` just above.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Batched matrix product into a new contiguous storage.
///
/// # Errors
/// As [`product_into`].
pub(crate) fn matmul(a: &Storage, la: &Layout, b: &Storage, lb: &Layout) -> Result<Storage> {
    match (a, b) {
        (Storage::F32(x), Storage::F32(y)) => Ok(Storage::F32(fresh_product(x, la, y, lb)?)),
        (Storage::F64(x), Storage::F64(y)) => Ok(Storage::F64(fresh_product(x, la, y, lb)?)),
        _ => Err(dtype_error(a, b)),
    }
}

/// One operand of [`gemm_into`]: the `rows x cols` matrix whose element `(r, c)` is
/// `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> Mat<'a, T> {
    /// The contiguous row-major `rows x cols` matrix `data`.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, a view of the same elements.
    pub fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .zip((self.cols - 1).checked_mul(self.col_stride))
            .and_then(|(r, c)| r.checked_add(c));
        last.is_some_and(|i| i < self.data.len())
    }
}

/// `dst = a b`, or with `accumulate`, `dst += a b`, on the calling thread; `dst` holds the
/// `a.rows x b.cols` result row-major with row stride `dst_stride`. For kernels that split the
/// work over threads themselves (a convolution's samples).
///
/// # Errors
/// [`Error::Internal`] when the operands do not form a product or reach outside their slices.
pub(crate) fn gemm_into<T: 'static + Copy + Default + Send + Sync + crate::Element>(
    dst: &mut [T],
    dst_stride: usize,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    accumulate: bool,
) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let dst_fits = m == 0
        || n == 0
        || (n <= dst_stride
            && (m - 1)
                .checked_mul(dst_stride)
                .and_then(|e| e.checked_add(n))
                .is_some_and(|end| end <= dst.len()));
    if b.rows != k || !a.fits() || !b.fits() || !dst_fits {
        return Err(Error::Internal(format!(
            "gemm_into: a {m}x{k} by {}x{n} product into {} elements (row stride {dst_stride}) \
             does not fit its operands",
            b.rows,
            dst.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_stride..r * dst_stride + n].fill(T::ZERO);
            }
        }
        return Ok(());
    }
    let (alpha, beta) = if accumulate {
        (T::ONE, T::ONE)
    } else {
        (T::ZERO, T::ONE)
    };
    // SAFETY: checked above: the destination's m rows of n elements at row stride
    // `dst_stride >= n` lie inside `dst`, which is borrowed exclusively; every element gemm
    // reads at `r * row_stride + c * col_stride` of `a` (m x k) and `b` (k x n) lies inside its
    // slice. With `accumulate` false the destination is written and not read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            alpha,
            beta,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
    Ok(())
}
