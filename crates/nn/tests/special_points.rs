//! Every op at the special points of its domain (0, +-1, +-inf, NaN, kinks, saturation, ties):
//! forward value, gradient and (for ops of one input) second derivative, against PyTorch's
//! values frozen in `reference/special_points.json` (script: `reference/special_points.py`),
//! in eager mode and in static graphs with and without the optimisation passes. NaN must
//! match NaN and an infinity the same infinity.

use ferrograd_core::{BackwardOptions, Result, Tensor, enable_grad};
use ferrograd_nn::{activation as act, loss};
use ferrograd_testkit::modes::{in_both_modes, same_value};
use ferrograd_testkit::reference::Value;

type OpFn = fn(&[Tensor]) -> Result<Tensor>;

fn op(name: &str) -> Option<OpFn> {
    Some(match name {
        "neg" => |x| x[0].neg(),
        "exp" => |x| x[0].exp(),
        "expm1" => |x| x[0].expm1(),
        "log" => |x| x[0].log(),
        "log1p" => |x| x[0].log1p(),
        "sqrt" => |x| x[0].sqrt(),
        "abs" => |x| x[0].abs(),
        "tanh" => |x| x[0].tanh(),
        "sigmoid" => |x| x[0].sigmoid(),
        "relu" => |x| x[0].relu(),
        "recip" => |x| x[0].recip(),
        "erf" => |x| x[0].erf(),
        "sin" => |x| x[0].sin(),
        "cos" => |x| x[0].cos(),
        "square" => |x| x[0].square(),
        "powf_0" => |x| x[0].powf(0.0),
        "powf_1" => |x| x[0].powf(1.0),
        "powf_3" => |x| x[0].powf(3.0),
        "powf_half" => |x| x[0].powf(0.5),
        "powf_neg1" => |x| x[0].powf(-1.0),
        "clamp" => |x| x[0].clamp(-1.0, 1.0),
        "hard_tanh" => |x| act::hard_tanh(&x[0]),
        "hard_sigmoid" => |x| act::hard_sigmoid(&x[0]),
        "leaky_relu" => |x| act::leaky_relu(&x[0], 0.1),
        "elu" => |x| act::elu(&x[0], 1.0),
        "softplus" => |x| act::softplus(&x[0]),
        "silu" => |x| act::silu(&x[0]),
        "gelu" => |x| act::gelu(&x[0]),
        "gelu_tanh" => |x| act::gelu_tanh(&x[0]),
        "add" => |x| x[0].add(&x[1]),
        "sub" => |x| x[0].sub(&x[1]),
        "mul" => |x| x[0].mul(&x[1]),
        "div" => |x| x[0].div(&x[1]),
        "pow" => |x| x[0].pow(&x[1]),
        "maximum" => |x| x[0].maximum(&x[1]),
        "minimum" => |x| x[0].minimum(&x[1]),
        "binary_cross_entropy" => |x| x[0].binary_cross_entropy(&x[1]),
        // The loss of each element on its own.
        "bce_with_logits" => |x| {
            let losses = (0..x[0].numel())
                .map(|i| {
                    let (p, t) = (x[0].narrow(0, i, 1)?, x[1].narrow(0, i, 1)?);
                    loss::binary_cross_entropy_with_logits(&p, &t)?.reshape(&[1])
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&losses.iter().collect::<Vec<_>>(), 0)
        },
        "sum" => |x| x[0].sum(&[-1], false),
        "amax" => |x| x[0].max(&[-1], false),
        "amin" => |x| x[0].min(&[-1], false),
        "logsumexp" => |x| x[0].logsumexp(&[-1], false),
        "softmax" => |x| x[0].softmax(-1),
        "log_softmax" => |x| x[0].log_softmax(-1),
        _ => return None,
    })
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::String(s) if s == "nan" => f64::NAN,
        v => v.as_f64().expect("a number or inf/-inf/nan"),
    }
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(number).collect()
}

/// Value, the gradient of `sum(out)` for each input, and with `second` the gradient of the
/// sum of the first input's gradient.
fn evaluate(f: OpFn, second: bool, xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let _g = enable_grad();
    let leaves: Vec<Tensor> = xs.iter().map(|x| x.with_requires_grad(true)).collect();
    let out = f(&leaves)?;
    let s = out.sum_all()?;
    let opts = BackwardOptions {
        create_graph: second,
        keep_all: false,
    };
    let grads = s.backward_with(&s.ones_like(), opts)?;
    let mut results = vec![out];
    for l in &leaves {
        results.push(grads.get(l).cloned().unwrap_or_else(|| l.zeros_like()));
    }
    if second {
        let g = results[1].sum_all()?;
        let g2 = if g.tracks_grad() {
            g.backward()?.get(&leaves[0]).cloned()
        } else {
            None
        };
        results.push(g2.unwrap_or_else(|| leaves[0].zeros_like()));
    }
    Ok(results)
}

/// What is compared.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Value,
    Gradient,
    Second,
}

/// Where ferrograd deliberately differs from PyTorch, each listed with its reason in
/// `docs/conventions.md`: `row` is the input row of a row-wise op (else the element).
fn documented_deviation(name: &str, kind: Kind, x: f64, row: &[f64]) -> bool {
    match name {
        // PyTorch's threshold: softplus(x) = x for x > 20; ferrograd stays exact.
        "softplus" => x >= 20.0,
        // PyTorch's elu kernel passes gradient 1 at NaN and has second derivative 0 at 0;
        // ferrograd's NaN propagates, and its second derivative at 0 is the negative side's.
        "elu" => (x.is_nan() && kind != Kind::Value) || (x == 0.0 && kind == Kind::Second),
        // In a row holding +inf, PyTorch gives NaN for the finite entries (inf - inf);
        // ferrograd gives their limit, -inf, and its gradient.
        "log_softmax" => row.contains(&f64::INFINITY) && x.is_finite(),
        _ => false,
    }
}

fn compare(
    failures: &mut Vec<String>,
    (name, mode, kind): (&str, &str, Kind),
    got: &Tensor,
    want: &[f64],
    xs: &[Vec<f64>],
    row_len: usize,
) {
    // PyTorch's float64 hard_sigmoid kernel uses the float32 constant 1/6 for its slope.
    let tol = if name == "hard_sigmoid" { 1e-7 } else { 1e-12 };
    for (i, (&g, &w)) in got.to_vec_f64().iter().zip(want).enumerate() {
        let at: Vec<f64> = xs.iter().map(|x| x[i.min(x.len() - 1)]).collect();
        let j = (i / row_len) * row_len;
        let row = &xs[0][j..(j + row_len).min(xs[0].len())];
        if !same_value(g, w, tol) && !documented_deviation(name, kind, at[0], row) {
            let what = match kind {
                Kind::Value => "value",
                Kind::Gradient => "gradient",
                Kind::Second => "second derivative",
            };
            failures.push(format!(
                "{name} ({mode}) {what} [{i}] at {at:?}: got {g:e}, PyTorch {w:e}"
            ));
        }
    }
}

#[test]
fn every_op_matches_pytorch_at_its_special_points() {
    let text = include_str!("reference/special_points.json");
    let root: Value = serde_json::from_str(text).expect("valid JSON");
    let cases = root["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let f = op(name).unwrap_or_else(|| panic!("no ferrograd op for the reference case {name}"));
        let raw: Vec<Vec<f64>> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(numbers)
            .collect();
        let shape: Vec<usize> = match case.get("shape") {
            Some(Value::Array(s)) => s.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            _ => vec![raw[0].len()],
        };
        let xs: Vec<Tensor> = raw
            .iter()
            .map(|v| Tensor::from_vec(v.clone(), &shape).unwrap())
            .collect();
        let second = !case["second"].is_null();
        let run = move |inputs: &[Tensor]| evaluate(f, second, inputs);
        let runs = match in_both_modes(run, &xs) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let row_len = if shape.len() == 2 { shape[1] } else { 1 };
        for (mode, results) in &runs {
            let out = numbers(&case["out"]);
            // A row-wise op's output has one value per row (reductions) or per element.
            let out_row = if results[0].numel() == out.len() && out.len() == raw[0].len() {
                row_len
            } else {
                1
            };
            let inputs: Vec<Vec<f64>> = if out_row == row_len {
                raw.clone()
            } else {
                raw.iter()
                    .map(|r| r.iter().step_by(row_len).copied().collect())
                    .collect()
            };
            let tag = |kind| (name, *mode, kind);
            compare(
                &mut failures,
                tag(Kind::Value),
                &results[0],
                &out,
                &inputs,
                out_row,
            );
            for (k, g) in case["grads"].as_array().unwrap().iter().enumerate() {
                let (got, want) = (&results[1 + k], numbers(g));
                compare(
                    &mut failures,
                    tag(Kind::Gradient),
                    got,
                    &want,
                    &raw,
                    row_len,
                );
            }
            if second {
                let want = numbers(&case["second"]);
                let got = &results[1 + xs.len()];
                compare(&mut failures, tag(Kind::Second), got, &want, &raw, row_len);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches with PyTorch:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
