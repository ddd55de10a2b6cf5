//! Matrix products through the `gemm` crate, which reads any row/column strides, so transposed
//! views are multiplied without being copied. Large products use gemm's own rayon parallelism;
//! many small ones in a batch are spread over threads instead.

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
fn matmul_t<T: 'static + Copy + Default + Send + Sync + crate::Element>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    out: &mut [T],
    acc: Option<T>,
) {
    let r = la.shape().len();
    let batch = &la.shape()[..r - 2];
    let (m, k, n) = (la.shape()[r - 2], la.shape()[r - 1], lb.shape()[r - 1]);
    let nb: usize = batch.iter().product();
    if m == 0 || n == 0 || k == 0 {
        if acc.is_none() {
            out.fill(T::ZERO);
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
    let one = |dst: &mut [T], i: usize, par: Parallelism| {
        let ao = batch_offset(la, batch, i);
        let bo = batch_offset(lb, batch, i);
        // SAFETY: `dst` holds exactly m*n elements laid out row-major (row stride n, column
        // stride 1). The operand pointers start at valid offsets of their storages, and the
        // layouts were produced by views of tensors whose shapes match (m, k) and (k, n), so
        // every element gemm reads at `offset + i*rs + j*cs` lies inside the storage.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                read_dst,
                a.as_ptr().add(ao),
                a_cs,
                a_rs,
                b.as_ptr().add(bo),
                b_cs,
                b_rs,
                alpha,
                beta,
                false,
                false,
                false,
                par,
            );
        }
    };
    if nb > 1 && !big && threads > 1 && nb * m * n * k >= PARALLEL_FLOPS {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, dst)| one(dst, i, Parallelism::None));
    } else {
        let par = if big && threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        for (i, dst) in out.chunks_mut(m * n).enumerate() {
            one(dst, i, par);
        }
    }
}

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
    match (a, b, out) {
        (Storage::F32(a), Storage::F32(b), Storage::F32(o)) => {
            matmul_t(a, la, b, lb, o, acc.map(|s| s as f32));
        }
        (Storage::F64(a), Storage::F64(b), Storage::F64(o)) => matmul_t(a, la, b, lb, o, acc),
        (Storage::I64(_), Storage::I64(_), _) => {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: crate::DType::I64,
            });
        }
        (a, b, _) => {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
    }
    Ok(())
}

/// Batched matrix product into a new contiguous storage.
pub(crate) fn matmul(a: &Storage, la: &Layout, b: &Storage, lb: &Layout) -> Result<Storage> {
    let r = la.shape().len();
    let n = la.shape()[..r - 1].iter().product::<usize>() * lb.shape()[r - 1];
    let mut out = Storage::zeros(a.dtype(), n);
    matmul_into(a, la, b, lb, &mut out)?;
    Ok(out)
}
