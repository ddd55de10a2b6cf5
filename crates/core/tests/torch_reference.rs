//! ferrograd against PyTorch: forward values and gradients frozen from PyTorch in
//! `tests/reference/torch_reference.json`, so this test needs no PyTorch to run.
//!
//! The JSON is written by `tests/reference/generate.py` (rerun it with
//! `/path/to/python crates/core/tests/reference/generate.py`). For each case it holds float64
//! inputs, the forward output, a weight `w` and the gradients of `(out * w).sum()` with respect
//! to every float input. Each case is rebuilt here from ferrograd ops by name (see [`CASES`]):
//! in f64 the forward output and the gradients must agree to 1e-10, in f32 the forward output
//! to 1e-5 (each as `|got - want| <= tol * (1 + |want|)`). A JSON case without an entry in the
//! table, or an entry without a JSON case, fails the test.

use std::collections::BTreeSet;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

use ferrograd_core::{DType, Result, Tensor};
use serde_json::Value;

const REFERENCE: &str = include_str!("reference/torch_reference.json");
const TOL_F64: f64 = 1e-10;
const TOL_F32: f64 = 1e-5;

/// Rebuilds one case from its inputs, in the order the JSON lists them.
type CaseFn = fn(&[Tensor]) -> Result<Tensor>;

/// Every case of the JSON, by name, as ferrograd ops. Adding a case is one line here (and one
/// in `generate.py`).
const CASES: &[(&str, CaseFn)] = &[
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

/// A `{"shape": [...], "values": [...]}` object of the JSON.
struct Stored {
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn stored(v: &Value) -> std::result::Result<Stored, String> {
    let shape = v["shape"]
        .as_array()
        .ok_or("missing shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let values = v["values"]
        .as_array()
        .ok_or("missing values")?
        .iter()
        .map(|x| x.as_f64().ok_or("non-numeric value"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if values.len() != shape.iter().product::<usize>() {
        return Err(format!("{} values for shape {shape:?}", values.len()));
    }
    Ok(Stored { shape, values })
}

/// `|got - want| <= tol * (1 + |want|)`; false for NaN.
fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * (1.0 + want.abs())
}

/// Compares `got` with the reference `want` (shape, dtype and values).
fn compare(
    what: &str,
    got: &Tensor,
    dtype: DType,
    want: &Stored,
    tol: f64,
) -> std::result::Result<(), String> {
    if got.dtype() != dtype {
        return Err(format!(
            "{what}: dtype {:?}, expected {dtype:?}",
            got.dtype()
        ));
    }
    if got.shape() != want.shape.as_slice() {
        return Err(format!(
            "{what}: shape {:?}, expected {:?}",
            got.shape(),
            want.shape
        ));
    }
    let bad: Vec<String> = got
        .to_vec_f64()
        .iter()
        .zip(&want.values)
        .enumerate()
        .filter(|(_, (g, w))| !close(**g, **w, tol))
        .map(|(i, (g, w))| format!("[{i}] got {g:e}, want {w:e}, diff {:.3e}", (g - w).abs()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} mismatches (tol {tol:e}): {}",
            bad.len(),
            bad.join("; ")
        ))
    }
}

/// Runs one JSON case through `f`: forward and gradients in f64, forward in f32.
fn check_case(case: &Value, f: CaseFn) -> std::result::Result<(), String> {
    let e = |err: ferrograd_core::Error| err.to_string();
    let mut names = Vec::new();
    let mut inputs64 = Vec::new();
    let mut inputs32 = Vec::new();
    for input in case["inputs"].as_array().ok_or("missing inputs")? {
        let name = input["name"].as_str().ok_or("input without name")?;
        let s = stored(input).map_err(|m| format!("input {name}: {m}"))?;
        let (t64, t32) = match input["dtype"].as_str() {
            Some("float64") => (
                Tensor::from_vec(s.values.clone(), &s.shape)
                    .map_err(e)?
                    .with_requires_grad(true),
                Tensor::from_vec(s.values.iter().map(|&v| v as f32).collect(), &s.shape)
                    .map_err(e)?,
            ),
            Some("int64") => {
                let t = Tensor::from_vec(s.values.iter().map(|&v| v as i64).collect(), &s.shape)
                    .map_err(e)?;
                (t.clone(), t)
            }
            other => return Err(format!("input {name}: unknown dtype {other:?}")),
        };
        names.push(name);
        inputs64.push(t64);
        inputs32.push(t32);
    }
    let float_inputs: BTreeSet<&str> = names
        .iter()
        .zip(&inputs64)
        .filter(|(_, t)| t.dtype().is_float())
        .map(|(n, _)| *n)
        .collect();
    let grads_json = case["grads"].as_object().ok_or("missing grads")?;
    let grad_names: BTreeSet<&str> = grads_json.keys().map(String::as_str).collect();
    if grad_names != float_inputs {
        return Err(format!(
            "JSON grads for {grad_names:?}, but the float inputs are {float_inputs:?}"
        ));
    }
    let want_out = stored(&case["output"]).map_err(|m| format!("output: {m}"))?;
    let w = stored(&case["weight"]).map_err(|m| format!("weight: {m}"))?;

    let mut failures = Vec::new();
    let out = f(&inputs64).map_err(|err| format!("f64 forward: {err}"))?;
    failures.extend(compare("f64 forward", &out, DType::F64, &want_out, TOL_F64).err());
    let w = Tensor::from_vec(w.values, &w.shape).map_err(e)?;
    let grads = out
        .mul(&w)
        .and_then(|l| l.sum_all())
        .and_then(|l| l.backward())
        .map_err(|err| format!("backward: {err}"))?;
    for (name, t) in names.iter().zip(&inputs64) {
        if !t.dtype().is_float() {
            continue;
        }
        let want = stored(&grads_json[*name]).map_err(|m| format!("grad {name}: {m}"))?;
        match grads.get(t) {
            Some(g) => {
                let what = format!("f64 grad of {name}");
                failures.extend(compare(&what, g, DType::F64, &want, TOL_F64).err());
            }
            None => failures.push(format!("no gradient for input {name}")),
        }
    }
    match f(&inputs32) {
        Ok(out) => {
            failures.extend(compare("f32 forward", &out, DType::F32, &want_out, TOL_F32).err())
        }
        Err(err) => failures.push(format!("f32 forward: {err}")),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n    "))
    }
}

#[test]
fn matches_pytorch_reference() {
    let root: Value = serde_json::from_str(REFERENCE).expect("torch_reference.json is not JSON");
    assert_eq!(
        root["meta"]["dtype"], "float64",
        "reference must be float64"
    );
    let json_cases = root["cases"].as_array().expect("no cases array");
    assert!(!json_cases.is_empty(), "no cases in torch_reference.json");

    let table: BTreeSet<&str> = CASES.iter().map(|(n, _)| *n).collect();
    assert_eq!(table.len(), CASES.len(), "duplicate name in CASES");
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for case in json_cases {
        let Some(name) = case["name"].as_str() else {
            failures.push("a JSON case has no name".to_string());
            continue;
        };
        if !seen.insert(name) {
            failures.push(format!("{name}: duplicate JSON case"));
        }
        match CASES.iter().find(|(n, _)| *n == name) {
            Some(&(_, f)) => {
                if let Err(msg) = check_case(case, f) {
                    failures.push(format!("{name}:\n    {msg}"));
                }
            }
            None => failures.push(format!("{name}: JSON case has no Rust closure in CASES")),
        }
    }
    for name in table.difference(&seen) {
        failures.push(format!("{name}: in CASES but not in torch_reference.json"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} PyTorch reference cases failed:\n{}",
        failures.len(),
        json_cases.len(),
        failures.join("\n")
    );
}
