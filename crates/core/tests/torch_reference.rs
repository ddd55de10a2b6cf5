//! ferrograd against PyTorch: forward values and gradients frozen from PyTorch in
//! `tests/reference/torch_reference.json`, so this test needs no PyTorch to run.
//!
//! The JSON is written by `tests/reference/generate.py` (rerun it with
//! `/path/to/python crates/core/tests/reference/generate.py`). For each case it holds float64
//! inputs, the forward output, a weight `w` and the gradients of `(out * w).sum()` with respect
//! to every float input. Each case is rebuilt here from ferrograd ops by name (see [`CASES`]):
//! in f64 the forward output and the gradients must agree to 1e-10, in f32 the forward output
//! to 1e-5 (each as `|got - want| <= tol * (1 + |want|)`). A JSON case without an entry in the
//! table, or an entry without a JSON case, fails the test. The file is read and checked by
//! `ferrograd_testkit::reference`, shared with ferrograd-nn's reference test.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use ferrograd_core::{Result, Tensor};
use ferrograd_testkit::reference::{Differentiated, ForwardCheck, ForwardFn, Reference};

const REFERENCE: &str = include_str!("reference/torch_reference.json");

/// The file has no per-input gradient flag: every float input is differentiated.
const CHECK: ForwardCheck = ForwardCheck {
    differentiated: Differentiated::FloatInputs,
    tol_f64: 1e-10,
    tol_f32: 1e-5,
};

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

#[test]
fn matches_pytorch_reference() {
    Reference::parse(REFERENCE, "torch_reference.json")
        .run_section("cases", CASES, |case, f| CHECK.run(case, *f));
}
