//! Elementwise kernels: unary maps, binary maps, comparisons, `where` and dtype casts. Each op is
//! matched once, outside the loop; the loop body is a monomorphised closure over contiguous or
//! strided rows, with fast paths for the stride patterns broadcasting produces (1/1, 1/0, 0/1).

use super::{Plan, collect_rows};
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Element, Error, Float, Layout, Result, Storage};

/// `out[i] = f(x[i])` over a strided input; the output is contiguous.
pub(crate) fn map1<T, U>(x: &[T], l: &Layout, f: impl Fn(T) -> U + Sync) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Send + Default,
{
    let plan = Plan::new(l.shape(), [l]);
    let s = plan.inner_strides[0];
    collect_rows(&plan, l.numel(), |row, [o]| {
        let n = row.len();
        if s == 1 {
            for (y, &v) in row.iter_mut().zip(&x[o..o + n]) {
                *y = f(v);
            }
        } else {
            for (i, y) in row.iter_mut().enumerate() {
                *y = f(x[o + i * s]);
            }
        }
    })
}

/// `out[i] = f(a[i], b[i])` over two strided inputs of the same logical shape.
pub(crate) fn map2<T, U>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    f: impl Fn(T, T) -> U + Sync,
) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Send + Default,
{
    let plan = Plan::new(la.shape(), [la, lb]);
    let [sa, sb] = plan.inner_strides;
    collect_rows(&plan, la.numel(), |row, [oa, ob]| {
        let n = row.len();
        match (sa, sb) {
            (1, 1) => {
                for ((y, &u), &v) in row.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]) {
                    *y = f(u, v);
                }
            }
            (1, 0) => {
                let v = b[ob];
                for (y, &u) in row.iter_mut().zip(&a[oa..oa + n]) {
                    *y = f(u, v);
                }
            }
            (0, 1) => {
                let u = a[oa];
                for (y, &v) in row.iter_mut().zip(&b[ob..ob + n]) {
                    *y = f(u, v);
                }
            }
            _ => {
                for (i, y) in row.iter_mut().enumerate() {
                    *y = f(a[oa + i * sa], b[ob + i * sb]);
                }
            }
        }
    })
}

/// Binds `$f` to the scalar function of a unary op on float type `$T` and evaluates `$body`
/// with it: the one definition of each op's arithmetic, shared by the eager and fused kernels
/// (the match runs once per call, the body's loop is monomorphised per op).
macro_rules! with_unary_fn {
    ($op:expr, $T:ty, $f:ident => $body:expr) => {
        match $op {
            UnaryOp::Neg => {
                let $f = |v: $T| -v;
                $body
            }
            UnaryOp::Exp => {
                let $f = <$T as Float>::exp;
                $body
            }
            UnaryOp::Expm1 => {
                let $f = <$T as Float>::exp_m1;
                $body
            }
            UnaryOp::Log => {
                let $f = <$T as Float>::ln;
                $body
            }
            UnaryOp::Log1p => {
                let $f = <$T as Float>::ln_1p;
                $body
            }
            UnaryOp::Sqrt => {
                let $f = <$T as Float>::sqrt;
                $body
            }
            UnaryOp::Abs => {
                let $f = <$T as Float>::abs;
                $body
            }
            UnaryOp::Tanh => {
                let $f = <$T as Float>::tanh;
                $body
            }
            UnaryOp::Sigmoid => {
                let $f = |v: $T| <$T as Element>::ONE / (<$T as Element>::ONE + Float::exp(-v));
                $body
            }
            UnaryOp::Relu => {
                let $f = |v: $T| {
                    if v < <$T as Element>::ZERO {
                        <$T as Element>::ZERO
                    } else {
                        v
                    }
                };
                $body
            }
            UnaryOp::Recip => {
                let $f = |v: $T| <$T as Element>::ONE / v;
                $body
            }
            UnaryOp::Erf => {
                let $f = <$T as Float>::erf;
                $body
            }
            UnaryOp::Sin => {
                let $f = <$T as Float>::sin;
                $body
            }
            UnaryOp::Cos => {
                let $f = <$T as Float>::cos;
                $body
            }
        }
    };
}
pub(crate) use with_unary_fn;

/// As [`with_unary_fn`], for binary ops on floats (NaN-propagating maximum and minimum).
macro_rules! with_binary_fn {
    ($op:expr, $T:ty, $f:ident => $body:expr) => {
        match $op {
            BinaryOp::Add => {
                let $f = |u: $T, v: $T| u + v;
                $body
            }
            BinaryOp::Sub => {
                let $f = |u: $T, v: $T| u - v;
                $body
            }
            BinaryOp::Mul => {
                let $f = |u: $T, v: $T| u * v;
                $body
            }
            BinaryOp::Div => {
                let $f = |u: $T, v: $T| u / v;
                $body
            }
            BinaryOp::Pow => {
                let $f = <$T as Float>::powf;
                $body
            }
            BinaryOp::Maximum => {
                let $f = max_nan::<$T>;
                $body
            }
            BinaryOp::Minimum => {
                let $f = min_nan::<$T>;
                $body
            }
        }
    };
}
pub(crate) use with_binary_fn;

/// As [`with_unary_fn`], for comparisons giving 1 or 0 in the operands' type.
macro_rules! with_cmp_fn {
    ($op:expr, $T:ty, $f:ident => $body:expr) => {{
        let m = |c: bool| {
            if c {
                <$T as Element>::ONE
            } else {
                <$T as Element>::ZERO
            }
        };
        match $op {
            CmpOp::Eq => {
                let $f = |u: $T, v: $T| m(u == v);
                $body
            }
            CmpOp::Ne => {
                let $f = |u: $T, v: $T| m(u != v);
                $body
            }
            CmpOp::Lt => {
                let $f = |u: $T, v: $T| m(u < v);
                $body
            }
            CmpOp::Le => {
                let $f = |u: $T, v: $T| m(u <= v);
                $body
            }
            CmpOp::Gt => {
                let $f = |u: $T, v: $T| m(u > v);
                $body
            }
            CmpOp::Ge => {
                let $f = |u: $T, v: $T| m(u >= v);
                $body
            }
        }
    }};
}
pub(crate) use with_cmp_fn;

fn unary_float<T: Float + Default>(op: UnaryOp, x: &[T], l: &Layout) -> Vec<T> {
    with_unary_fn!(op, T, f => map1(x, l, f))
}

/// Applies a unary op. Integer tensors support `neg`, `abs` and `relu`.
pub(crate) fn unary(op: UnaryOp, s: &Storage, l: &Layout) -> Result<Storage> {
    Ok(match s {
        Storage::F32(x) => Storage::F32(unary_float(op, x, l)),
        Storage::F64(x) => Storage::F64(unary_float(op, x, l)),
        Storage::I64(x) => Storage::I64(match op {
            UnaryOp::Neg => map1(x, l, |v: i64| v.wrapping_neg()),
            UnaryOp::Abs => map1(x, l, |v: i64| v.wrapping_abs()),
            UnaryOp::Relu => map1(x, l, |v: i64| v.max(0)),
            _ => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: DType::I64,
                });
            }
        }),
    })
}

fn powf_float<T: Float + Default>(x: &[T], l: &Layout, e: f64) -> Vec<T> {
    if e == 2.0 {
        map1(x, l, |v: T| v * v)
    } else if e == 1.0 {
        map1(x, l, |v: T| v)
    } else {
        let e = T::from_f64(e);
        map1(x, l, |v: T| v.powf(e))
    }
}

/// `x^e` for a constant exponent.
pub(crate) fn powf(s: &Storage, l: &Layout, e: f64) -> Result<Storage> {
    Ok(match s {
        Storage::F32(x) => Storage::F32(powf_float(x, l, e)),
        Storage::F64(x) => Storage::F64(powf_float(x, l, e)),
        Storage::I64(_) => {
            return Err(Error::UnsupportedDType {
                op: "powf",
                dtype: DType::I64,
            });
        }
    })
}

#[inline(always)]
pub(crate) fn max_nan<T: Element>(a: T, b: T) -> T {
    if a > b || a.is_nan() { a } else { b }
}

#[inline(always)]
pub(crate) fn min_nan<T: Element>(a: T, b: T) -> T {
    if a < b || a.is_nan() { a } else { b }
}

fn binary_float<T: Float + Default>(
    op: BinaryOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Vec<T> {
    with_binary_fn!(op, T, f => map2(a, la, b, lb, f))
}

/// Applies a binary op to two operands of one dtype and one (already broadcast) shape.
pub(crate) fn binary(
    op: BinaryOp,
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
) -> Result<Storage> {
    Ok(match (a, b) {
        (Storage::F32(a), Storage::F32(b)) => Storage::F32(binary_float(op, a, la, b, lb)),
        (Storage::F64(a), Storage::F64(b)) => Storage::F64(binary_float(op, a, la, b, lb)),
        (Storage::I64(a), Storage::I64(b)) => Storage::I64(match op {
            BinaryOp::Add => map2(a, la, b, lb, i64::wrapping_add),
            BinaryOp::Sub => map2(a, la, b, lb, i64::wrapping_sub),
            BinaryOp::Mul => map2(a, la, b, lb, i64::wrapping_mul),
            BinaryOp::Maximum => map2(a, la, b, lb, i64::max),
            BinaryOp::Minimum => map2(a, la, b, lb, i64::min),
            BinaryOp::Div | BinaryOp::Pow => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: DType::I64,
                });
            }
        }),
        _ => {
            return Err(Error::DTypeMismatch {
                op: op.name(),
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
    })
}

fn cmp_t<T: Element + Default + Sync>(
    op: CmpOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Vec<T> {
    with_cmp_fn!(op, T, f => map2(a, la, b, lb, f))
}

/// Elementwise comparison; the mask has the operands' dtype, with 1 for true and 0 for false.
pub(crate) fn cmp(
    op: CmpOp,
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
) -> Result<Storage> {
    Ok(match (a, b) {
        (Storage::F32(a), Storage::F32(b)) => Storage::F32(cmp_t(op, a, la, b, lb)),
        (Storage::F64(a), Storage::F64(b)) => Storage::F64(cmp_t(op, a, la, b, lb)),
        (Storage::I64(a), Storage::I64(b)) => Storage::I64(cmp_t(op, a, la, b, lb)),
        _ => {
            return Err(Error::DTypeMismatch {
                op: op.name(),
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
    })
}

fn where_t<T: Element + Default + Sync>(
    c: &[T],
    lc: &Layout,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Vec<T> {
    let plan = Plan::new(lc.shape(), [lc, la, lb]);
    let [sc, sa, sb] = plan.inner_strides;
    collect_rows(&plan, lc.numel(), |row, [oc, oa, ob]| {
        for (i, y) in row.iter_mut().enumerate() {
            *y = if c[oc + i * sc] != T::ZERO {
                a[oa + i * sa]
            } else {
                b[ob + i * sb]
            };
        }
    })
}

/// `cond ? a : b` elementwise; all three of one dtype and one shape. Nonzero means true.
pub(crate) fn where_(
    c: &Storage,
    lc: &Layout,
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
) -> Result<Storage> {
    Ok(match (c, a, b) {
        (Storage::F32(c), Storage::F32(a), Storage::F32(b)) => {
            Storage::F32(where_t(c, lc, a, la, b, lb))
        }
        (Storage::F64(c), Storage::F64(a), Storage::F64(b)) => {
            Storage::F64(where_t(c, lc, a, la, b, lb))
        }
        (Storage::I64(c), Storage::I64(a), Storage::I64(b)) => {
            Storage::I64(where_t(c, lc, a, la, b, lb))
        }
        _ => {
            return Err(Error::DTypeMismatch {
                op: "where",
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
    })
}

fn cast_from<T: Element + Sync>(x: &[T], l: &Layout, dtype: DType) -> Storage {
    match dtype {
        DType::F32 => Storage::F32(map1(x, l, |v: T| v.to_f64() as f32)),
        DType::F64 => Storage::F64(map1(x, l, |v: T| v.to_f64())),
        DType::I64 => Storage::I64(map1(x, l, |v: T| v.to_f64() as i64)),
    }
}

/// Converts to another dtype (floats to integers truncate toward zero, like PyTorch).
pub(crate) fn cast(s: &Storage, l: &Layout, dtype: DType) -> Storage {
    match (s, dtype) {
        (Storage::F32(x), DType::F32) => Storage::F32(map1(x, l, |v: f32| v)),
        (Storage::F64(x), DType::F64) => Storage::F64(map1(x, l, |v: f64| v)),
        (Storage::I64(x), DType::I64) => Storage::I64(map1(x, l, |v: i64| v)),
        (Storage::F32(x), _) => cast_from(x, l, dtype),
        (Storage::F64(x), _) => cast_from(x, l, dtype),
        (Storage::I64(x), _) => cast_from(x, l, dtype),
    }
}

/// A contiguous copy of a strided view.
pub(crate) fn contiguous(s: &Storage, l: &Layout) -> Storage {
    cast(s, l, s.dtype())
}
