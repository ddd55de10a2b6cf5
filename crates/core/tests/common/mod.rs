//! The table of op cases shared by the eager op tests and the static-graph tests: each case
//! is a function of random inputs with the shapes and value range given.

#![allow(dead_code)]

use ferrograd_core::{DType, Result, Rng, Tensor};

pub type OpFn = fn(&[Tensor]) -> Result<Tensor>;
pub type RefFn = fn(&[f64]) -> f64;

pub struct Case {
    pub name: &'static str,
    pub shapes: &'static [&'static [usize]],
    /// Inputs are drawn uniformly from this range.
    pub domain: (f64, f64),
    pub f: OpFn,
    /// Elementwise reference applied to the broadcast inputs, for elementwise ops.
    pub reference: Option<RefFn>,
}

pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

/// Random f64 inputs for a case, seeded by its name.
pub fn inputs(case: &Case) -> Vec<Tensor> {
    let mut rng = Rng::new(seed_of(case.name));
    let (lo, hi) = case.domain;
    case.shapes
        .iter()
        .map(|s| Tensor::rand_uniform(s, lo, hi, DType::F64, &mut rng).unwrap())
        .collect()
}

/// Every case.
pub fn all_cases() -> Vec<&'static Case> {
    unary_cases()
        .iter()
        .chain(binary_cases())
        .chain(structural_cases())
        .collect()
}

macro_rules! cases {
    ($($name:literal, $shapes:expr, $domain:expr, $f:expr, $r:expr;)*) => {
        &[$(Case { name: $name, shapes: $shapes, domain: $domain, f: $f, reference: $r }),*]
    };
}

pub const WIDE: (f64, f64) = (-2.0, 2.0);
pub const POS: (f64, f64) = (0.2, 2.0);

pub fn unary_cases() -> &'static [Case] {
    cases! {
        "neg", &[&[3, 4]], WIDE, |x| x[0].neg(), Some(|a| -a[0]);
        "exp", &[&[3, 4]], WIDE, |x| x[0].exp(), Some(|a| a[0].exp());
        "expm1", &[&[5]], WIDE, |x| x[0].expm1(), Some(|a| a[0].exp_m1());
        "log", &[&[3, 4]], POS, |x| x[0].log(), Some(|a| a[0].ln());
        "log1p", &[&[5]], POS, |x| x[0].log1p(), Some(|a| a[0].ln_1p());
        "sqrt", &[&[2, 3]], POS, |x| x[0].sqrt(), Some(|a| a[0].sqrt());
        "abs", &[&[2, 3]], WIDE, |x| x[0].abs(), Some(|a| a[0].abs());
        "tanh", &[&[2, 3, 2]], WIDE, |x| x[0].tanh(), Some(|a| a[0].tanh());
        "sigmoid", &[&[7]], WIDE, |x| x[0].sigmoid(), Some(|a| 1.0 / (1.0 + (-a[0]).exp()));
        "relu", &[&[3, 3]], WIDE, |x| x[0].relu(), Some(|a| a[0].max(0.0));
        "recip", &[&[4]], POS, |x| x[0].recip(), Some(|a| 1.0 / a[0]);
        "erf", &[&[4]], WIDE, |x| x[0].erf(), None;
        "sin", &[&[4]], WIDE, |x| x[0].sin(), Some(|a| a[0].sin());
        "cos", &[&[4]], WIDE, |x| x[0].cos(), Some(|a| a[0].cos());
        "powf", &[&[2, 2]], POS, |x| x[0].powf(2.5), Some(|a| a[0].powf(2.5));
        "square", &[&[2, 2]], WIDE, |x| x[0].square(), Some(|a| a[0] * a[0]);
        "clamp", &[&[4, 3]], WIDE, |x| x[0].clamp(-1.0, 0.5), Some(|a| a[0].clamp(-1.0, 0.5));
        "add_scalar", &[&[3]], WIDE, |x| x[0].add_scalar(1.5), Some(|a| a[0] + 1.5);
        "mul_scalar", &[&[3]], WIDE, |x| x[0].mul_scalar(-3.0), Some(|a| a[0] * -3.0);
    }
}

pub fn binary_cases() -> &'static [Case] {
    cases! {
        "add", &[&[3, 4], &[3, 4]], WIDE, |x| x[0].add(&x[1]), Some(|a| a[0] + a[1]);
        "add_bcast_row", &[&[3, 4], &[4]], WIDE, |x| x[0].add(&x[1]), Some(|a| a[0] + a[1]);
        "add_bcast_both", &[&[2, 1, 3], &[4, 1]], WIDE, |x| x[0].add(&x[1]), Some(|a| a[0] + a[1]);
        "add_scalar_tensor", &[&[2, 3], &[]], WIDE, |x| x[0].add(&x[1]), Some(|a| a[0] + a[1]);
        "sub_bcast", &[&[3, 1], &[1, 4]], WIDE, |x| x[0].sub(&x[1]), Some(|a| a[0] - a[1]);
        "mul_bcast", &[&[2, 3, 4], &[3, 1]], WIDE, |x| x[0].mul(&x[1]), Some(|a| a[0] * a[1]);
        "div_bcast", &[&[3, 4], &[4]], POS, |x| x[0].div(&x[1]), Some(|a| a[0] / a[1]);
        "pow", &[&[3, 2], &[2]], POS, |x| x[0].pow(&x[1]), Some(|a| a[0].powf(a[1]));
        "maximum", &[&[3, 4], &[1, 4]], WIDE, |x| x[0].maximum(&x[1]), Some(|a| a[0].max(a[1]));
        "minimum", &[&[3, 4], &[3, 1]], WIDE, |x| x[0].minimum(&x[1]), Some(|a| a[0].min(a[1]));
        "where", &[&[3, 4], &[3, 4], &[4]], WIDE,
            |x| Tensor::where_cond(&x[0].gt_scalar(0.0)?, &x[1], &x[2]),
            Some(|a| if a[0] > 0.0 { a[1] } else { a[2] });
        "mul_self", &[&[5]], WIDE, |x| x[0].mul(&x[0]), Some(|a| a[0] * a[0]);
    }
}

pub fn structural_cases() -> &'static [Case] {
    cases! {
        "sum_all", &[&[3, 4]], WIDE, |x| x[0].sum_all(), None;
        "sum_axis0", &[&[3, 4]], WIDE, |x| x[0].sum(&[0], false), None;
        "sum_axes_keep", &[&[2, 3, 4]], WIDE, |x| x[0].sum(&[0, 2], true), None;
        "mean", &[&[2, 3, 4]], WIDE, |x| x[0].mean(&[1], false), None;
        "max", &[&[3, 5]], WIDE, |x| x[0].max(&[1], false), None;
        "min", &[&[3, 5]], WIDE, |x| x[0].min(&[0], true), None;
        "logsumexp", &[&[3, 5]], WIDE, |x| x[0].logsumexp(&[-1], false), None;
        "softmax", &[&[3, 5]], WIDE, |x| x[0].softmax(-1), None;
        "softmax_dim0", &[&[3, 5]], WIDE, |x| x[0].softmax(0), None;
        "log_softmax", &[&[3, 5]], WIDE, |x| x[0].log_softmax(-1), None;
        "softmax_cross_entropy", &[&[4, 5]], WIDE, |x| {
            let labels = Tensor::from_vec(vec![0i64, 4, 2, 2], &[4])?;
            x[0].softmax_cross_entropy(&labels)
        }, None;
        "matmul", &[&[3, 4], &[4, 2]], WIDE, |x| x[0].matmul(&x[1]), None;
        "matmul_batched_bcast", &[&[2, 3, 4], &[4, 5]], WIDE, |x| x[0].matmul(&x[1]), None;
        "matmul_transposed", &[&[4, 3], &[2, 4]], WIDE, |x| x[0].t()?.matmul(&x[1].t()?), None;
        "matmul_vec", &[&[4], &[4, 3]], WIDE, |x| x[0].matmul(&x[1]), None;
        "dot", &[&[4], &[4]], WIDE, |x| x[0].matmul(&x[1]), None;
        "reshape", &[&[2, 6]], WIDE, |x| x[0].reshape(&[3, 4])?.mul(&x[0].reshape(&[3, 4])?), None;
        "reshape_of_transpose", &[&[2, 3]], WIDE, |x| x[0].t()?.reshape(&[6])?.exp(), None;
        "permute", &[&[2, 3, 4]], WIDE, |x| x[0].permute(&[2, 0, 1])?.tanh(), None;
        "broadcast_to", &[&[3, 1]], WIDE, |x| x[0].broadcast_to(&[2, 3, 4])?.sin(), None;
        "narrow", &[&[4, 5]], WIDE, |x| x[0].narrow(1, 1, 3)?.exp(), None;
        "cat", &[&[2, 3], &[2, 2]], WIDE, |x| Tensor::cat(&[&x[0], &x[1], &x[0]], 1)?.tanh(), None;
        "stack", &[&[3], &[3]], WIDE, |x| Tensor::stack(&[&x[0], &x[1]], 0)?.exp(), None;
        "contiguous", &[&[3, 4]], WIDE, |x| x[0].t()?.contiguous()?.sigmoid(), None;
        "gather", &[&[3, 4]], WIDE, |x| {
            let idx = Tensor::from_vec(vec![0i64, 3, 3, 1, 2, 0], &[3, 2])?;
            x[0].gather(1, &idx)
        }, None;
        "scatter_add", &[&[3, 4], &[2, 4]], WIDE, |x| {
            let idx = Tensor::from_vec(vec![0i64, 2, 2, 1, 0, 0, 1, 1], &[2, 4])?;
            x[0].scatter_add(0, &idx, &x[1])
        }, None;
        "index_select", &[&[4, 3]], WIDE, |x| {
            x[0].index_select(0, &Tensor::from_vec(vec![3i64, 0, 3], &[3])?)
        }, None;
        "to_dtype_roundtrip", &[&[3]], WIDE, |x| {
            let dt = x[0].dtype();
            x[0].to_dtype(DType::F64)?.exp()?.to_dtype(dt)
        }, None;
        "flatten_unsqueeze_squeeze", &[&[2, 3, 1]], WIDE,
            |x| x[0].squeeze(-1)?.unsqueeze(0)?.flatten(0, -1)?.exp(), None;
        "mlp_composite", &[&[4, 3], &[3, 5], &[5]], WIDE,
            |x| x[0].matmul(&x[1])?.add(&x[2])?.relu()?.mean(&[], false), None;
    }
}
