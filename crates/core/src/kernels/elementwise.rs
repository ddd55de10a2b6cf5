//! Elementwise kernels: unary maps, binary maps, comparisons, `where` and dtype casts. Each op is
//! matched once, outside the loop; the loop body is a monomorphised closure over contiguous or
//! strided rows, with fast paths for the stride patterns broadcasting produces (1/1, 1/0, 0/1).

use super::{Plan, fill_rows};
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Element, Error, Float, Layout, Result, Storage};

/// `out[i] = f(x[i])` over a strided input, into a contiguous output, following `plan`.
pub(crate) fn map1_into<T, U>(plan: &Plan, x: &[T], out: &mut [U], f: impl Fn(T) -> U + Sync)
where
    T: Copy + Sync,
    U: Copy + Send,
{
    let s = plan.inner_strides[0];
    fill_rows(plan, out, |row, [o]| {
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
    });
}

/// `out[i] = f(x[i])` over a strided input; the output is contiguous.
pub(crate) fn map1<T, U>(x: &[T], l: &Layout, f: impl Fn(T) -> U + Sync) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Send + Default,
{
    let mut out = vec![U::default(); l.numel()];
    map1_into(&Plan::new(l.shape(), [l]), x, &mut out, f);
    out
}

/// `out[i] = f(a[i], b[i])` over two strided inputs, into a contiguous output.
pub(crate) fn map2_into<T, U>(
    plan: &Plan,
    a: &[T],
    b: &[T],
    out: &mut [U],
    f: impl Fn(T, T) -> U + Sync,
) where
    T: Copy + Sync,
    U: Copy + Send,
{
    let [sa, sb] = plan.strides();
    fill_rows(plan, out, |row, [oa, ob]| {
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
    });
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
                let $f = <$T as $crate::Float>::exp;
                $body
            }
            UnaryOp::Expm1 => {
                let $f = <$T as $crate::Float>::exp_m1;
                $body
            }
            UnaryOp::Log => {
                let $f = <$T as $crate::Float>::ln;
                $body
            }
            UnaryOp::Log1p => {
                let $f = <$T as $crate::Float>::ln_1p;
                $body
            }
            UnaryOp::Sqrt => {
                let $f = <$T as $crate::Float>::sqrt;
                $body
            }
            UnaryOp::Abs => {
                let $f = <$T as $crate::Float>::abs;
                $body
            }
            UnaryOp::Tanh => {
                let $f = <$T as $crate::Float>::tanh;
                $body
            }
            UnaryOp::Sigmoid => {
                let $f = |v: $T| {
                    <$T as $crate::Element>::ONE
                        / (<$T as $crate::Element>::ONE + $crate::Float::exp(-v))
                };
                $body
            }
            UnaryOp::Relu => {
                let $f = |v: $T| {
                    if v < <$T as $crate::Element>::ZERO {
                        <$T as $crate::Element>::ZERO
                    } else {
                        v
                    }
                };
                $body
            }
            UnaryOp::Recip => {
                let $f = |v: $T| <$T as $crate::Element>::ONE / v;
                $body
            }
            UnaryOp::Erf => {
                let $f = <$T as $crate::Float>::erf;
                $body
            }
            UnaryOp::Sin => {
                let $f = <$T as $crate::Float>::sin;
                $body
            }
            UnaryOp::Cos => {
                let $f = <$T as $crate::Float>::cos;
                $body
            }
            UnaryOp::Atan => {
                let $f = <$T as $crate::Float>::atan;
                $body
            }
            UnaryOp::Asin => {
                let $f = <$T as $crate::Float>::asin;
                $body
            }
            UnaryOp::Acos => {
                let $f = <$T as $crate::Float>::acos;
                $body
            }
            UnaryOp::Floor => {
                let $f = <$T as $crate::Float>::floor;
                $body
            }
            UnaryOp::Ceil => {
                let $f = <$T as $crate::Float>::ceil;
                $body
            }
            UnaryOp::Round => {
                let $f = <$T as $crate::Float>::round_ties_even;
                $body
            }
        }
    };
}
pub(crate) use with_unary_fn;

/// Binds `$f` to `x -> x^e` for a constant exponent and evaluates `$body`; the one place the
/// special exponents are chosen (squares as `v * v`, halves as square roots, as PyTorch does,
/// and the identity), so the
/// eager, compiled and fused kernels give bit-identical results.
macro_rules! with_powf_fn {
    ($e:expr, $T:ty, $f:ident => $body:expr) => {{
        let e: f64 = $e;
        if e == 2.0 {
            let $f = |v: $T| v * v;
            $body
        } else if e == 1.0 {
            let $f = |v: $T| v;
            $body
        } else if e == 0.5 {
            // As PyTorch: sqrt, so (-inf)^0.5 is NaN like every negative base.
            let $f = <$T as $crate::Float>::sqrt;
            $body
        } else if e == -0.5 {
            let $f = |v: $T| <$T as $crate::Element>::ONE / <$T as $crate::Float>::sqrt(v);
            $body
        } else {
            let e = <$T as $crate::Element>::from_f64(e);
            let $f = |v: $T| v.powf(e);
            $body
        }
    }};
}
pub(crate) use with_powf_fn;

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
                let $f = <$T as $crate::Float>::powf;
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
            BinaryOp::BinaryCrossEntropy => {
                let $f = bce::<$T>;
                $body
            }
        }
    };
}
pub(crate) use with_binary_fn;

/// `-(t ln p + (1 - t) ln(1 - p))` with each log clamped at -100, as PyTorch computes it; a
/// NaN probability stays NaN.
#[inline(always)]
pub(crate) fn bce<T: Float>(p: T, t: T) -> T {
    let floor = T::from_f64(-100.0);
    let clamp = |l: T| if l < floor { floor } else { l };
    let log_p = clamp(p.ln());
    let log_q = clamp((-p).ln_1p());
    -(t * log_p + (T::ONE - t) * log_q)
}

/// As [`with_unary_fn`], for comparisons giving 1 or 0 in the operands' type.
macro_rules! with_cmp_fn {
    ($op:expr, $T:ty, $f:ident => $body:expr) => {{
        let m = |c: bool| {
            if c {
                <$T as $crate::Element>::ONE
            } else {
                <$T as $crate::Element>::ZERO
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

fn mismatch(op: &'static str, a: &Storage, b: &Storage) -> Error {
    Error::DTypeMismatch {
        op,
        lhs: a.dtype(),
        rhs: b.dtype(),
    }
}

/// Applies a unary op into `out` (same dtype, contiguous). Integer tensors support `neg`,
/// `abs`, `relu` and the roundings (the identity there).
pub(crate) fn unary_into(op: UnaryOp, plan: &Plan, s: &Storage, out: &mut Storage) -> Result<()> {
    match (s, out) {
        (Storage::F32(x), Storage::F32(o)) => {
            with_unary_fn!(op, f32, f => map1_into(plan, x, o, f))
        }
        (Storage::F64(x), Storage::F64(o)) => {
            with_unary_fn!(op, f64, f => map1_into(plan, x, o, f))
        }
        (Storage::I64(x), Storage::I64(o)) => match op {
            UnaryOp::Neg => map1_into(plan, x, o, |v: i64| v.wrapping_neg()),
            UnaryOp::Abs => map1_into(plan, x, o, |v: i64| v.wrapping_abs()),
            UnaryOp::Relu => map1_into(plan, x, o, |v: i64| v.max(0)),
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => map1_into(plan, x, o, |v: i64| v),
            _ => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: DType::I64,
                });
            }
        },
        (s, o) => return Err(mismatch(op.name(), s, o)),
    }
    Ok(())
}

fn powf_float_into<T: Float>(plan: &Plan, x: &[T], out: &mut [T], e: f64) {
    with_powf_fn!(e, T, f => map1_into(plan, x, out, f))
}

/// `x^e` for a constant exponent, into `out`.
pub(crate) fn powf_into(plan: &Plan, s: &Storage, e: f64, out: &mut Storage) -> Result<()> {
    match (s, out) {
        (Storage::F32(x), Storage::F32(o)) => powf_float_into(plan, x, o, e),
        (Storage::F64(x), Storage::F64(o)) => powf_float_into(plan, x, o, e),
        (s, _) => {
            return Err(Error::UnsupportedDType {
                op: "powf",
                dtype: s.dtype(),
            });
        }
    }
    Ok(())
}

#[inline(always)]
pub(crate) fn max_nan<T: Element>(a: T, b: T) -> T {
    if a > b || a.is_nan() { a } else { b }
}

#[inline(always)]
pub(crate) fn min_nan<T: Element>(a: T, b: T) -> T {
    if a < b || a.is_nan() { a } else { b }
}

/// Applies a binary op to two operands of one dtype and one (already broadcast) shape, into
/// `out`.
pub(crate) fn binary_into(
    op: BinaryOp,
    plan: &Plan,
    a: &Storage,
    b: &Storage,
    out: &mut Storage,
) -> Result<()> {
    match (a, b, out) {
        (Storage::F32(a), Storage::F32(b), Storage::F32(o)) => {
            with_binary_fn!(op, f32, f => map2_into(plan, a, b, o, f))
        }
        (Storage::F64(a), Storage::F64(b), Storage::F64(o)) => {
            with_binary_fn!(op, f64, f => map2_into(plan, a, b, o, f))
        }
        (Storage::I64(a), Storage::I64(b), Storage::I64(o)) => match op {
            BinaryOp::Add => map2_into(plan, a, b, o, i64::wrapping_add),
            BinaryOp::Sub => map2_into(plan, a, b, o, i64::wrapping_sub),
            BinaryOp::Mul => map2_into(plan, a, b, o, i64::wrapping_mul),
            BinaryOp::Maximum => map2_into(plan, a, b, o, i64::max),
            BinaryOp::Minimum => map2_into(plan, a, b, o, i64::min),
            BinaryOp::Div | BinaryOp::Pow | BinaryOp::BinaryCrossEntropy => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: DType::I64,
                });
            }
        },
        (a, b, _) => return Err(mismatch(op.name(), a, b)),
    }
    Ok(())
}

/// Elementwise comparison into `out`; the mask has the operands' dtype (1 true, 0 false).
pub(crate) fn cmp_into(
    op: CmpOp,
    plan: &Plan,
    a: &Storage,
    b: &Storage,
    out: &mut Storage,
) -> Result<()> {
    match (a, b, out) {
        (Storage::F32(a), Storage::F32(b), Storage::F32(o)) => {
            with_cmp_fn!(op, f32, f => map2_into(plan, a, b, o, f))
        }
        (Storage::F64(a), Storage::F64(b), Storage::F64(o)) => {
            with_cmp_fn!(op, f64, f => map2_into(plan, a, b, o, f))
        }
        (Storage::I64(a), Storage::I64(b), Storage::I64(o)) => {
            with_cmp_fn!(op, i64, f => map2_into(plan, a, b, o, f))
        }
        (a, b, _) => return Err(mismatch(op.name(), a, b)),
    }
    Ok(())
}

fn where_t<T: Element + Sync + Send>(plan: &Plan, c: &[T], a: &[T], b: &[T], out: &mut [T]) {
    let [sc, sa, sb] = plan.strides();
    fill_rows(plan, out, |row, [oc, oa, ob]| {
        for (i, y) in row.iter_mut().enumerate() {
            *y = if c[oc + i * sc] != T::ZERO {
                a[oa + i * sa]
            } else {
                b[ob + i * sb]
            };
        }
    });
}

/// `cond ? a : b` elementwise into `out`; all of one dtype and shape. Nonzero means true.
pub(crate) fn where_into(
    plan: &Plan,
    c: &Storage,
    a: &Storage,
    b: &Storage,
    out: &mut Storage,
) -> Result<()> {
    match (c, a, b, out) {
        (Storage::F32(c), Storage::F32(a), Storage::F32(b), Storage::F32(o)) => {
            where_t(plan, c, a, b, o)
        }
        (Storage::F64(c), Storage::F64(a), Storage::F64(b), Storage::F64(o)) => {
            where_t(plan, c, a, b, o)
        }
        (Storage::I64(c), Storage::I64(a), Storage::I64(b), Storage::I64(o)) => {
            where_t(plan, c, a, b, o)
        }
        (_, a, b, _) => return Err(mismatch("where", a, b)),
    }
    Ok(())
}

fn cast_from_into<T: Element + Sync>(plan: &Plan, x: &[T], out: &mut Storage) {
    match out {
        Storage::F32(o) => map1_into(plan, x, o, |v: T| v.to_f64() as f32),
        Storage::F64(o) => map1_into(plan, x, o, |v: T| v.to_f64()),
        Storage::I64(o) => map1_into(plan, x, o, |v: T| v.to_f64() as i64),
    }
}

/// Converts into `out`'s dtype (floats to integers truncate toward zero, like PyTorch); a copy
/// when the dtypes agree.
pub(crate) fn cast_into(plan: &Plan, s: &Storage, out: &mut Storage) {
    match (s, out) {
        (Storage::F32(x), Storage::F32(o)) => map1_into(plan, x, o, |v: f32| v),
        (Storage::F64(x), Storage::F64(o)) => map1_into(plan, x, o, |v: f64| v),
        (Storage::I64(x), Storage::I64(o)) => map1_into(plan, x, o, |v: i64| v),
        (Storage::F32(x), o) => cast_from_into(plan, x, o),
        (Storage::F64(x), o) => cast_from_into(plan, x, o),
        (Storage::I64(x), o) => cast_from_into(plan, x, o),
    }
}

/// Allocates the contiguous output of an elementwise kernel and fills it.
fn fresh<const N: usize>(
    dtype: DType,
    shape: &[usize],
    layouts: [&Layout; N],
    fill: impl FnOnce(&Plan, &mut Storage) -> Result<()>,
) -> Result<Storage> {
    let plan = Plan::new(shape, layouts);
    let mut out = Storage::zeros(dtype, crate::shape::numel(shape));
    fill(&plan, &mut out)?;
    Ok(out)
}

/// Applies a unary op (see [`unary_into`]).
pub(crate) fn unary(op: UnaryOp, s: &Storage, l: &Layout) -> Result<Storage> {
    fresh(s.dtype(), l.shape(), [l], |p, o| unary_into(op, p, s, o))
}

/// `x^e` for a constant exponent.
pub(crate) fn powf(s: &Storage, l: &Layout, e: f64) -> Result<Storage> {
    fresh(s.dtype(), l.shape(), [l], |p, o| powf_into(p, s, e, o))
}

/// Applies a binary op (see [`binary_into`]).
pub(crate) fn binary(
    op: BinaryOp,
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
) -> Result<Storage> {
    fresh(a.dtype(), la.shape(), [la, lb], |p, o| {
        binary_into(op, p, a, b, o)
    })
}

/// Elementwise comparison (see [`cmp_into`]).
pub(crate) fn cmp(
    op: CmpOp,
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
) -> Result<Storage> {
    fresh(a.dtype(), la.shape(), [la, lb], |p, o| {
        cmp_into(op, p, a, b, o)
    })
}

/// `cond ? a : b` (see [`where_into`]).
pub(crate) fn where_(
    c: &Storage,
    lc: &Layout,
    a: &Storage,
    la: &Layout,
    b: &Storage,
    lb: &Layout,
) -> Result<Storage> {
    fresh(a.dtype(), lc.shape(), [lc, la, lb], |p, o| {
        where_into(p, c, a, b, o)
    })
}

/// Converts to another dtype (see [`cast_into`]).
pub(crate) fn cast(s: &Storage, l: &Layout, dtype: DType) -> Storage {
    let plan = Plan::new(l.shape(), [l]);
    let mut out = Storage::zeros(dtype, l.numel());
    cast_into(&plan, s, &mut out);
    out
}

/// A contiguous copy of a strided view.
pub(crate) fn contiguous(s: &Storage, l: &Layout) -> Storage {
    cast(s, l, s.dtype())
}
