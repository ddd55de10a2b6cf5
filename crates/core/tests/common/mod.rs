//! The table of op cases shared by the eager op tests and the static-graph tests: each case
//! is a function of random inputs with the shapes and value range given.

#![allow(dead_code)]

use ferrograd_core::op::{Conv2dParams, Pool2dParams};
use ferrograd_core::{BatchNormOptions, DType, Result, Rng, Tensor};

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
        .chain(cnn_cases())
        .chain(api_cases())
        .collect()
}

macro_rules! cases {
    ($($name:literal, $shapes:expr, $domain:expr, $f:expr, $r:expr;)*) => {
        &[$(Case { name: $name, shapes: $shapes, domain: $domain, f: $f, reference: $r }),*]
    };
}

pub const WIDE: (f64, f64) = (-2.0, 2.0);
pub const POS: (f64, f64) = (0.2, 2.0);
pub const PROB: (f64, f64) = (0.05, 0.95);

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
        "binary_cross_entropy", &[&[3, 4], &[3, 4]], PROB, |x| x[0].binary_cross_entropy(&x[1]),
            Some(|a| -(a[1] * a[0].ln() + (1.0 - a[1]) * (1.0 - a[0]).ln()));
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

fn conv(p: Conv2dParams) -> Conv2dParams {
    p
}

/// Convolution, pooling and normalisation: every geometry option at least once.
pub fn cnn_cases() -> &'static [Case] {
    cases! {
        "conv2d", &[&[2, 3, 5, 4], &[4, 3, 3, 2]], WIDE,
            |x| x[0].conv2d(&x[1], None, Conv2dParams::default()), None;
        "conv2d_bias_stride_pad", &[&[2, 2, 5, 5], &[3, 2, 3, 3], &[3]], WIDE,
            |x| x[0].conv2d(&x[1], Some(&x[2]), conv(Conv2dParams::default().stride(2).padding(1))), None;
        "conv2d_dilation_asym", &[&[1, 2, 6, 7], &[2, 2, 2, 3]], WIDE, |x| {
            let p = Conv2dParams { stride: [1, 2], padding: [2, 1], dilation: [2, 1], groups: 1 };
            x[0].conv2d(&x[1], None, p)
        }, None;
        "conv2d_groups", &[&[2, 4, 4, 4], &[6, 2, 2, 2]], WIDE,
            |x| x[0].conv2d(&x[1], None, Conv2dParams::default().groups(2).padding(1)), None;
        "conv2d_depthwise", &[&[1, 3, 4, 5], &[3, 1, 3, 3]], WIDE,
            |x| x[0].conv2d(&x[1], None, Conv2dParams::default().groups(3).padding(1)), None;
        "conv2d_pointwise", &[&[2, 3, 3, 3], &[2, 3, 1, 1]], WIDE,
            |x| x[0].conv2d(&x[1], None, Conv2dParams::default()), None;
        "conv2d_double_backward", &[&[1, 2, 4, 4], &[2, 2, 2, 2]], WIDE, |x| {
            // The gradients of a convolution, differentiated again: `u` and `v` are zero
            // offsets whose gradients are the input and weight gradient ops.
            let _g = ferrograd_core::enable_grad();
            let u = x[0].zeros_like().with_requires_grad(true);
            let v = x[1].zeros_like().with_requires_grad(true);
            let y = x[0].add(&u)?.conv2d(&x[1].add(&v)?, None, Conv2dParams::default().padding(1))?;
            let s = y.square()?.sum_all()?;
            let opts = ferrograd_core::BackwardOptions { create_graph: true, keep_all: false };
            let g = s.backward_with(&s.ones_like(), opts)?;
            let (gu, gv) = (g.get(&u).unwrap().clone(), g.get(&v).unwrap().clone());
            gu.sin()?.sum_all()?.add(&gv.square()?.sum_all()?)
        }, None;
        "conv1d", &[&[2, 2, 7], &[3, 2, 3], &[3]], WIDE,
            |x| x[0].conv1d(&x[1], Some(&x[2]), 2, 1, 1, 1), None;
        "max_pool2d", &[&[2, 2, 4, 4]], WIDE,
            |x| x[0].max_pool2d(Pool2dParams::new(2)), None;
        "max_pool2d_overlap_pad", &[&[1, 2, 5, 5]], WIDE,
            |x| x[0].max_pool2d(Pool2dParams::new(3).stride(2).padding(1)), None;
        "max_pool2d_dilated", &[&[1, 1, 6, 6]], WIDE,
            |x| x[0].max_pool2d(Pool2dParams::new(2).stride(1).dilation(2)), None;
        "avg_pool2d", &[&[2, 2, 5, 5]], WIDE,
            |x| x[0].avg_pool2d(Pool2dParams::new(3).stride(2).padding(1)), None;
        "adaptive_avg_pool2d", &[&[2, 2, 5, 7]], WIDE,
            |x| x[0].adaptive_avg_pool2d([3, 2]), None;
        "global_avg_pool", &[&[2, 3, 4, 4]], WIDE,
            |x| x[0].adaptive_avg_pool2d([1, 1]), None;
        "pad", &[&[2, 3, 4]], WIDE, |x| x[0].pad(&[1, 2, 0, 1], 0.5)?.exp(), None;
        "batch_norm_train", &[&[4, 3, 2, 2], &[3], &[3]], WIDE,
            |x| x[0].batch_norm(Some((&x[1], &x[2])), BatchNormOptions::default()), None;
        "batch_norm_1d", &[&[5, 3]], WIDE,
            |x| x[0].batch_norm(None, BatchNormOptions::default()), None;
        "batch_norm_eval", &[&[3, 2, 2, 2], &[2], &[2]], WIDE, |x| {
            let mean = Tensor::from_vec(vec![0.3, -0.2], &[2])?.to_dtype(x[0].dtype())?;
            let var = Tensor::from_vec(vec![0.5, 2.0], &[2])?.to_dtype(x[0].dtype())?;
            let opts = BatchNormOptions { running: Some((&mean, &var)), training: false, ..Default::default() };
            x[0].batch_norm(Some((&x[1], &x[2])), opts)
        }, None;
        "layer_norm", &[&[3, 2, 4], &[2, 4], &[2, 4]], WIDE,
            |x| x[0].layer_norm(&[2, 4], Some((&x[1], &x[2])), 1e-5), None;
        "lenet_like", &[&[2, 1, 8, 8], &[3, 1, 3, 3], &[3], &[3], &[3]], WIDE, |x| {
            let y = x[0].conv2d(&x[1], Some(&x[2]), Conv2dParams::default())?;
            let y = y.batch_norm(Some((&x[3], &x[4])), BatchNormOptions::default())?.relu()?;
            y.max_pool2d(Pool2dParams::new(2))?.adaptive_avg_pool2d([1, 1])?.flatten(1, -1)
        }, None;
    }
}

pub const UNIT: (f64, f64) = (-0.9, 0.9);

/// The everyday ops built on the primitives (statistics, sorting, rounding, inverse
/// trigonometry, masking, triangles).
pub fn api_cases() -> &'static [Case] {
    cases! {
        "tan", &[&[2, 3]], (-1.2, 1.2), |x| x[0].tan(), Some(|a| a[0].tan());
        "atan", &[&[2, 3]], WIDE, |x| x[0].atan(), Some(|a| a[0].atan());
        "asin", &[&[2, 3]], UNIT, |x| x[0].asin(), Some(|a| a[0].asin());
        "acos", &[&[2, 3]], UNIT, |x| x[0].acos(), Some(|a| a[0].acos());
        "floor", &[&[2, 3]], WIDE, |x| x[0].floor(), Some(|a| a[0].floor());
        "ceil", &[&[2, 3]], WIDE, |x| x[0].ceil(), Some(|a| a[0].ceil());
        "round", &[&[2, 3]], WIDE, |x| x[0].round(), Some(|a| a[0].round_ties_even());
        "var_unbiased", &[&[3, 4]], WIDE, |x| x[0].var(&[1], true, false), None;
        "var_biased_all", &[&[2, 3]], WIDE, |x| x[0].var(&[], false, true), None;
        "std", &[&[3, 4]], WIDE, |x| x[0].std(&[0], true, false), None;
        "prod_axis", &[&[3, 5]], WIDE, |x| x[0].prod(&[1], false), None;
        "prod_axes_keep", &[&[2, 3, 2]], WIDE, |x| x[0].prod(&[0, 2], true), None;
        "cumsum", &[&[3, 5]], WIDE, |x| x[0].cumsum(1), None;
        "cumsum_dim0", &[&[6, 2]], WIDE, |x| x[0].cumsum(0), None;
        "sort", &[&[3, 4]], WIDE, |x| Ok(x[0].sort(1, true)?.0), None;
        "sort_dim0", &[&[4, 3]], WIDE, |x| Ok(x[0].sort(0, false)?.0), None;
        "topk", &[&[3, 5]], WIDE, |x| Ok(x[0].topk(2, 1, true)?.0), None;
        "topk_smallest", &[&[5, 2]], WIDE, |x| Ok(x[0].topk(3, 0, false)?.0), None;
        "max_dim", &[&[3, 5]], WIDE, |x| Ok(x[0].max_dim(1, false)?.0), None;
        "min_dim_keep", &[&[3, 5]], WIDE, |x| Ok(x[0].min_dim(0, true)?.0), None;
        "norm_2", &[&[3, 4]], WIDE, |x| x[0].norm(2.0, &[1], false), None;
        "norm_1", &[&[3, 4]], WIDE, |x| x[0].norm(1.0, &[], false), None;
        "norm_3", &[&[3, 4]], WIDE, |x| x[0].norm(3.0, &[0], true), None;
        "norm_inf", &[&[3, 4]], WIDE, |x| x[0].norm(f64::INFINITY, &[1], false), None;
        "clamp_tensor", &[&[3, 4], &[3, 4], &[4]], WIDE,
            |x| x[0].clamp_tensor(Some(&x[1]), Some(&x[2].add_scalar(1.0)?)), None;
        "clamp_tensor_min_only", &[&[3, 4], &[4]], WIDE,
            |x| x[0].clamp_tensor(Some(&x[1]), None), None;
        "masked_fill", &[&[3, 4], &[3, 4]], WIDE,
            |x| x[1].masked_fill(&x[0].gt_scalar(0.0)?, 0.25), None;
        "tril", &[&[2, 3, 4]], WIDE, |x| x[0].tril(0), None;
        "triu", &[&[4, 3]], WIDE, |x| x[0].triu(-1), None;
    }
}
