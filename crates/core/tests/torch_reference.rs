//! ferrograd against PyTorch: forward values and gradients frozen from PyTorch in
//! `tests/reference/torch_reference.json`, so this test needs no PyTorch to run.
//!
//! The JSON is written by `tests/reference/generate.py` (rerun it with
//! `/path/to/python crates/core/tests/reference/generate.py`). Its sections:
//!
//! - `cases` and `cnn`: for each case, float64 inputs, the forward output, a weight `w` and the
//!   gradients of `(out * w).sum()` with respect to every differentiated input (every float
//!   input in `cases`; the inputs flagged `grad` in `cnn`, which covers convolution, pooling,
//!   padding and normalisation). Each case is rebuilt here from ferrograd ops by name (see
//!   [`CASES`] and [`CNN`]): in f64 the forward output and the gradients must agree to 1e-10,
//!   in f32 the forward output to 1e-5.
//! - `batch_norm_running`: batch normalisation trained for several steps with running
//!   statistics, then evaluated: each step's output and running mean and variance, and the
//!   evaluation output, to 1e-10 in f64 (see [`batch_norm_running`]).
//!
//! - `api`: the everyday tensor ops (variance, product, cumulative sum, sort, topk, max/min
//!   with indices, norms, rounding, inverse trigonometry, clamp with tensor bounds,
//!   masked_fill, tril/triu), in the `cases` format (see [`API`]).
//! - `jvp`: `torch.func.jvp` of compositions, including a Hessian-vector product (forward over
//!   reverse): the output and `J v` must agree to 1e-10 (see [`JVP`]).
//!
//! Every comparison is `|got - want| <= tol * (1 + |want|)`. A JSON case without an entry in
//! its table, or an entry without a JSON case, fails the test. The file is read and checked by
//! `ferrograd_testkit::reference`, shared with ferrograd-nn's reference test.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use ferrograd_core::op::{Conv2dParams, Pool2dParams};
use ferrograd_core::{BatchNormOptions, DType, Result, Tensor, jvp};
use ferrograd_testkit::reference::{
    Check, Differentiated, ForwardCheck, ForwardFn, Reference, Stored, Value, all_passed, compare,
};

const REFERENCE: &str = include_str!("reference/torch_reference.json");

/// The file has no per-input gradient flag: every float input is differentiated.
const CHECK: ForwardCheck = ForwardCheck {
    differentiated: Differentiated::FloatInputs,
    tol_f64: 1e-10,
    tol_f32: 1e-5,
};

/// The `cnn` section: each input says whether it is differentiated.
const CHECK_FLAGGED: ForwardCheck = ForwardCheck {
    differentiated: Differentiated::Flagged,
    ..CHECK
};

/// Tolerance of the batch-norm trajectories (f64).
const TOL_RUNNING: f64 = 1e-10;

/// Every case of the JSON, by name, as ferrograd ops. Adding a case is one line here (and one
/// in `generate.py`).
const CASES: &[(&str, ForwardFn)] = &[
    ("sigmoid", |x| x[0].sigmoid()),
    ("tanh", |x| x[0].tanh()),
    ("relu", |x| x[0].relu()),
    ("exp", |x| x[0].exp()),
    ("log", |x| x[0].log()),
    ("sqrt", |x| x[0].sqrt()),
    ("erf", |x| x[0].erf()),
    ("gelu_erf", |x| gelu_erf(&x[0])),
    ("gelu_tanh", |x| gelu_tanh(&x[0])),
    ("softmax_last", |x| x[0].softmax(-1)),
    ("log_softmax_last", |x| x[0].log_softmax(-1)),
    ("cross_entropy_none", |x| x[0].softmax_cross_entropy(&x[1])),
    ("cross_entropy_mean", |x| {
        x[0].softmax_cross_entropy(&x[1])?.mean(&[], false)
    }),
    ("matmul_2d", |x| x[0].matmul(&x[1])),
    ("matmul_batched_broadcast", |x| x[0].matmul(&x[1])),
    ("mean_dim1", |x| x[0].mean(&[1], false)),
    ("max_dim0", |x| x[0].max(&[0], false)),
    ("max_dim1_ties", |x| x[0].max(&[1], false)),
];

/// The `api` section, by name.
const API: &[(&str, ForwardFn)] = &[
    ("var_unbiased", |x| x[0].var(&[1], true, false)),
    ("var_biased_keepdim", |x| x[0].var(&[0], false, true)),
    ("std_all", |x| x[0].std(&[], true, false)),
    ("prod_dim1_zeros", |x| x[0].prod(&[1], false)),
    ("cumsum_dim1", |x| x[0].cumsum(1)),
    ("cumsum_dim0", |x| x[0].cumsum(0)),
    ("sort_descending", |x| Ok(x[0].sort(1, true)?.0)),
    ("topk_2", |x| Ok(x[0].topk(2, 1, true)?.0)),
    ("max_dim_values_ties", |x| Ok(x[0].max_dim(1, false)?.0)),
    ("min_dim_values_ties", |x| Ok(x[0].min_dim(0, false)?.0)),
    ("norm_2", |x| x[0].norm(2.0, &[1], false)),
    ("norm_1", |x| x[0].norm(1.0, &[1], false)),
    ("norm_3", |x| x[0].norm(3.0, &[1], false)),
    ("norm_inf", |x| x[0].norm(f64::INFINITY, &[1], false)),
    ("norm_2_zero_row", |x| x[0].norm(2.0, &[1], false)),
    ("floor", |x| x[0].floor()),
    ("ceil", |x| x[0].ceil()),
    ("round", |x| x[0].round()),
    ("tan", |x| x[0].tan()),
    ("atan", |x| x[0].atan()),
    ("asin", |x| x[0].asin()),
    ("acos", |x| x[0].acos()),
    ("clamp_tensor_ties", |x| {
        x[0].clamp_tensor(Some(&x[1]), Some(&x[2]))
    }),
    ("masked_fill", |x| x[0].masked_fill(&x[1], -1.5)),
    ("tril_0", |x| x[0].tril(0)),
    ("triu_1", |x| x[0].triu(1)),
    ("tril_minus1", |x| x[0].tril(-1)),
];

/// The `jvp` section, by name: the function whose `jvp` PyTorch computed.
const JVP: &[(&str, ForwardFn)] = &[
    ("mlp", |x| {
        x[0].matmul(&x[1])?.add(&x[2])?.tanh()?.matmul(&x[3])
    }),
    ("log_softmax_exp", |x| {
        x[0].log_softmax(-1)?.mul(&x[1].exp()?)
    }),
    ("cumsum_prod_var_norm", |x| {
        let x = &x[0];
        x.cumsum(1)?
            .mul(&x.prod(&[1], true)?)?
            .add(&x.var(&[1], true, true)?)?
            .add(&x.norm(2.0, &[1], true)?)
    }),
    ("inverse_trig", |x| {
        let x = &x[0];
        let b = x
            .div_scalar(3.0)?
            .asin()?
            .mul(&x.div_scalar(4.0)?.acos()?)?;
        x.atan()?.add(&b)?.add(&x.div_scalar(2.0)?.tan()?)
    }),
    ("conv2d_max_pool", |x| {
        x[0].conv2d(&x[1], None, Conv2dParams::default().padding(1))?
            .max_pool2d(Pool2dParams::new(2))
    }),
    ("sort_topk", |x| {
        let top = x[0].topk(4, 1, true)?.0;
        x[0].sort(1, false)?.0.mul_scalar(2.0)?.add(&top)
    }),
    ("hvp_sum_tanh_cube", |x| {
        // The gradient, recorded so that forward mode can differentiate it again.
        let y = x[0].tanh()?.powf(3.0)?.sum_all()?;
        let g = y.backward_to(&y.ones_like(), &x[..1], true)?;
        Ok(g.get(&x[0]).cloned().unwrap_or_else(|| x[0].zeros_like()))
    }),
];

/// One `jvp` case: `jvp(f, inputs, tangents)` against PyTorch's output and `J v`.
fn jvp_case(case: &Value, f: ForwardFn) -> Check {
    let tensors = |key: &str| -> std::result::Result<Vec<Tensor>, String> {
        case[key]
            .as_array()
            .ok_or(format!("missing {key}"))?
            .iter()
            .map(|v| stored(v, key)?.f64_tensor())
            .collect()
    };
    let (inputs, tangents) = (tensors("inputs")?, tensors("tangents")?);
    let (out, jv) = jvp(f, &inputs, &tangents).map_err(|e| format!("jvp: {e}"))?;
    let mut failures = Vec::new();
    let want_out = stored(&case["output"], "output")?;
    failures.extend(compare("output", &out, DType::F64, &want_out, 1e-10).err());
    let want_jv = stored(&case["jvp"], "jvp")?;
    failures.extend(compare("jvp", &jv, DType::F64, &want_jv, 1e-10).err());
    all_passed(failures)
}

/// `0.5 x (1 + erf(x / sqrt 2))` (PyTorch `F.gelu`).
fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.mul_scalar(FRAC_1_SQRT_2)?
        .erf()?
        .add_scalar(1.0)?
        .mul(x)?
        .mul_scalar(0.5)
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (PyTorch `F.gelu(approximate="tanh")`).
fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    x.powf(3.0)?
        .mul_scalar(0.044715)?
        .add(x)?
        .mul_scalar((2.0 / PI).sqrt())?
        .tanh()?
        .add_scalar(1.0)?
        .mul(x)?
        .mul_scalar(0.5)
}

/// `Conv2dParams` from `[height, width]` pairs.
const fn conv(
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dParams {
    Conv2dParams {
        stride,
        padding,
        dilation,
        groups,
    }
}

/// `Pool2dParams` from `[height, width]` pairs.
const fn pool(
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> Pool2dParams {
    Pool2dParams {
        kernel,
        stride,
        padding,
        dilation,
    }
}

/// `table! { "name" => entry; ... }`: a `&[(name, entry)]` table, one line per case.
macro_rules! table {
    ($($name:literal => $entry:expr;)*) => {
        &[$(($name, $entry)),*]
    };
}

/// `x[0]` convolved with the weight `x[1]` and the bias `x[2]` when there is one.
fn conv2d(x: &[Tensor], p: Conv2dParams) -> Result<Tensor> {
    x[0].conv2d(&x[1], x.get(2), p)
}

/// Batch normalisation of `x[0]` with `x[1..]` as weight and bias (when `affine`) followed by
/// the running mean and variance (when `running`).
fn batch_norm(
    x: &[Tensor],
    affine: bool,
    running: bool,
    training: bool,
    eps: f64,
) -> Result<Tensor> {
    let (params, stats) = x[1..].split_at(if affine { 2 } else { 0 });
    let opts = BatchNormOptions {
        running: running.then(|| (&stats[0], &stats[1])),
        training,
        momentum: 0.1,
        eps,
    };
    x[0].batch_norm(affine.then(|| (&params[0], &params[1])), opts)
}

/// Every case of the `cnn` section, by name, as ferrograd ops.
const CNN: &[(&str, ForwardFn)] = table! {
    "conv2d_plain" => |x| conv2d(x, Conv2dParams::default());
    "conv2d_plain_no_bias" => |x| conv2d(x, Conv2dParams::default());
    "conv2d_stride2_pad1" => |x| conv2d(x, Conv2dParams::default().stride(2).padding(1));
    "conv2d_stride3_uncovered" => |x| conv2d(x, Conv2dParams::default().stride(3));
    "conv2d_asymmetric" => |x| conv2d(x, conv([2, 1], [1, 2], [1, 2], 1));
    "conv2d_dilation2" => |x| conv2d(x, Conv2dParams::default().padding(2).dilation(2));
    "conv2d_groups2" => |x| conv2d(x, Conv2dParams::default().padding(1).groups(2));
    "conv2d_depthwise" => |x| conv2d(x, conv([2, 2], [1, 1], [1, 1], 3));
    "conv2d_depthwise_multiplier2" => |x| conv2d(x, Conv2dParams::default().groups(2));
    "conv2d_pointwise" => |x| conv2d(x, Conv2dParams::default());
    "conv2d_all_options" => |x| conv2d(x, conv([2, 2], [2, 2], [2, 2], 2));
    "conv2d_lenet_5x5_pad2" => |x| conv2d(x, Conv2dParams::default().padding(2));
    "conv1d_plain" => |x| x[0].conv1d(&x[1], Some(&x[2]), 1, 1, 1, 1);
    "conv1d_all_options" => |x| x[0].conv1d(&x[1], None, 2, 2, 2, 2);
    "max_pool2d_2x2" => |x| x[0].max_pool2d(Pool2dParams::new(2));
    "max_pool2d_ties_overlap" => |x| x[0].max_pool2d(Pool2dParams::new(3).stride(1));
    "max_pool2d_ties_pad1_stride2" => |x| x[0].max_pool2d(pool([3, 3], [2, 2], [1, 1], [1, 1]));
    "max_pool2d_negative_pad1" => |x| x[0].max_pool2d(Pool2dParams::new(2).padding(1));
    "max_pool2d_dilation2_ties" => |x| x[0].max_pool2d(Pool2dParams::new(2).stride(1).dilation(2));
    "max_pool2d_asymmetric" => |x| x[0].max_pool2d(pool([3, 2], [2, 1], [1, 0], [1, 1]));
    "max_pool2d_constant" => |x| x[0].max_pool2d(Pool2dParams::new(2).stride(1));
    "avg_pool2d_2x2" => |x| x[0].avg_pool2d(Pool2dParams::new(2));
    "avg_pool2d_pad1_stride2" => |x| x[0].avg_pool2d(Pool2dParams::new(3).stride(2).padding(1));
    "avg_pool2d_asymmetric" => |x| x[0].avg_pool2d(pool([2, 3], [1, 2], [1, 1], [1, 1]));
    "adaptive_avg_pool2d_5x7_to_3x4" => |x| x[0].adaptive_avg_pool2d([3, 4]);
    "adaptive_avg_pool2d_7x5_to_2x3" => |x| x[0].adaptive_avg_pool2d([2, 3]);
    "adaptive_avg_pool2d_global" => |x| x[0].adaptive_avg_pool2d([1, 1]);
    "adaptive_avg_pool2d_3x3_to_4x5" => |x| x[0].adaptive_avg_pool2d([4, 5]);
    "batch_norm_train_affine" => |x| batch_norm(x, true, true, true, 1e-5);
    "batch_norm_train_plain" => |x| batch_norm(x, false, false, true, 1e-5);
    "batch_norm_train_1d_eps1e-3" => |x| batch_norm(x, true, false, true, 1e-3);
    "batch_norm_train_2d" => |x| batch_norm(x, true, false, true, 1e-5);
    "batch_norm_eval_affine" => |x| batch_norm(x, true, true, false, 1e-5);
    "batch_norm_eval_plain" => |x| batch_norm(x, false, true, false, 1e-5);
    "layer_norm_affine_last" => |x| x[0].layer_norm(&[5], Some((&x[1], &x[2])), 1e-5);
    "layer_norm_affine_last2_eps1e-3" => |x| x[0].layer_norm(&[3, 4], Some((&x[1], &x[2])), 1e-3);
    "layer_norm_plain" => |x| x[0].layer_norm(&[6], None, 1e-5);
    "pad_last_dim" => |x| x[0].pad(&[2, 1], 0.0);
    "pad_width_height" => |x| x[0].pad(&[1, 2, 0, 3], 0.5);
    "pad_three_dims" => |x| x[0].pad(&[1, 0, 0, 1, 2, 0], -1.25);
};

/// The `batch_norm_running` cases that exist (the driver is generic: every case is run the
/// same way).
const RUNNING: &[(&str, ())] = &[
    ("batch_norm2d_momentum_0.1", ()),
    ("batch_norm1d_momentum_0.1_initial_stats", ()),
    ("batch_norm2d_momentum_0.3_eps1e-3", ()),
];

fn stored(v: &Value, what: &str) -> std::result::Result<Stored, String> {
    Stored::parse(v).map_err(|m| format!("{what}: {m}"))
}

/// One `batch_norm_running` case: the module's weight, bias and initial running statistics,
/// each training step's output and running statistics after it, then the evaluation output.
fn batch_norm_running(case: &Value) -> Check {
    let f64_of = |v: &Value, what: &str| stored(v, what)?.f64_tensor();
    let number = |key: &str| case[key].as_f64().ok_or(format!("missing {key}"));
    let (momentum, eps) = (number("momentum")?, number("eps")?);
    let weight = f64_of(&case["weight"], "weight")?;
    let bias = f64_of(&case["bias"], "bias")?;
    let mean = f64_of(&case["initial_mean"], "initial_mean")?;
    let var = f64_of(&case["initial_var"], "initial_var")?;
    // One batch-norm call on the step's `x`: `Err` for a malformed case or an op error, else
    // the comparison of its output.
    let run = |what: &str, step: &Value, training: bool| -> std::result::Result<Check, String> {
        let opts = BatchNormOptions {
            running: Some((&mean, &var)),
            training,
            momentum,
            eps,
        };
        let out = f64_of(&step["x"], "x")?
            .batch_norm(Some((&weight, &bias)), opts)
            .map_err(|e| format!("{what}: {e}"))?;
        let want = stored(&step["output"], "output")?;
        Ok(compare(
            &format!("{what} output"),
            &out,
            DType::F64,
            &want,
            TOL_RUNNING,
        ))
    };
    let steps = case["steps"].as_array().ok_or("missing steps")?;
    if steps.is_empty() {
        return Err("no steps".into());
    }
    let mut failures = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        failures.extend(run(&format!("step {i}"), step, true)?.err());
        for (key, got) in [("running_mean", &mean), ("running_var", &var)] {
            let want = stored(&step[key], key)?;
            let what = format!("step {i} {key}");
            failures.extend(compare(&what, got, DType::F64, &want, TOL_RUNNING).err());
        }
    }
    failures.extend(run("eval", &case["eval"], false)?.err());
    all_passed(failures)
}

#[test]
fn matches_pytorch_reference() {
    Reference::parse(REFERENCE, "torch_reference.json")
        .run_section("cases", CASES, |case, f| CHECK.run(case, *f));
}

#[test]
fn cnn_ops_match_pytorch_reference() {
    Reference::parse(REFERENCE, "torch_reference.json")
        .run_section("cnn", CNN, |case, f| CHECK_FLAGGED.run(case, *f));
}

#[test]
fn batch_norm_running_statistics_match_pytorch_reference() {
    Reference::parse(REFERENCE, "torch_reference.json").run_section(
        "batch_norm_running",
        RUNNING,
        |case, ()| batch_norm_running(case),
    );
}

#[test]
fn everyday_ops_match_pytorch_reference() {
    Reference::parse(REFERENCE, "torch_reference.json")
        .run_section("api", API, |case, f| CHECK.run(case, *f));
}

#[test]
fn forward_mode_matches_torch_func_jvp() {
    Reference::parse(REFERENCE, "torch_reference.json")
        .run_section("jvp", JVP, |case, f| jvp_case(case, *f));
}
