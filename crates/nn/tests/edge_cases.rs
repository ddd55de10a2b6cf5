//! Results at the exact points where the stable formulas used to break, each against the value
//! PyTorch 2.15 gives there (computed with its public API in float64 unless the case is about
//! float32), in eager mode and in static graphs.

use ferrograd_core::{BackwardOptions, DType, Result, Tensor, enable_grad};
use ferrograd_nn::loss;
use ferrograd_testkit::modes::{in_both_modes, same_value};

fn t64(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

fn t32(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

/// Asserts every mode's `k`-th result against `want`.
fn expect(what: &str, runs: &[(&str, Vec<Tensor>)], k: usize, want: &[f64], tol: f64) {
    for (mode, results) in runs {
        let got = results[k].to_vec_f64();
        assert_eq!(got.len(), want.len(), "{what} ({mode}): length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                same_value(g, w, tol),
                "{what} ({mode}) [{i}]: got {g:e}, want {w:e}"
            );
        }
    }
}

/// The gradient of `f` at `x` with respect to `x` (and of the other inputs, made leaves too).
fn grads(f: fn(&[Tensor]) -> Result<Tensor>, xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let leaves: Vec<Tensor> = xs.iter().map(|x| x.with_requires_grad(true)).collect();
    let out = f(&leaves)?;
    let store = out.sum_all()?.backward()?;
    let mut results = vec![out];
    for l in &leaves {
        results.push(store.get(l).cloned().unwrap_or_else(|| l.zeros_like()));
    }
    Ok(results)
}

/// The first `n` derivatives of the elementwise `f` at `x` (each the gradient of the sum of
/// the previous one).
fn derivatives(f: fn(&Tensor) -> Result<Tensor>, x: &Tensor, n: usize) -> Result<Vec<Tensor>> {
    let _g = enable_grad();
    let x = x.with_requires_grad(true);
    let mut d = f(&x)?;
    let mut results = vec![];
    let opts = BackwardOptions {
        create_graph: true,
        keep_all: false,
    };
    for _ in 0..n {
        let s = d.sum_all()?;
        let store = s.backward_with(&s.ones_like(), opts)?;
        d = store.get(&x).cloned().unwrap_or_else(|| x.zeros_like());
        results.push(d.clone());
    }
    Ok(results)
}

#[test]
fn bce_with_logits_at_logit_zero() {
    let f = |x: &[Tensor]| {
        grads(
            |x| loss::binary_cross_entropy_with_logits(&x[0], &t64(&[0.0, 1.0, 0.3])),
            x,
        )
    };
    let runs = in_both_modes(f, &[t64(&[0.0, 0.0, 0.0])]).unwrap();
    expect("loss", &runs, 0, &[std::f64::consts::LN_2], 1e-15);
    let third = 1.0 / 3.0;
    let want = [0.5 * third, -0.5 * third, 0.2 * third];
    expect("d/dx", &runs, 1, &want, 1e-15);
}

#[test]
fn bce_on_probabilities_exactly_zero_and_one() {
    let f = |x: &[Tensor]| grads(|x| loss::binary_cross_entropy(&x[0], &x[1]), x);
    // PyTorch: loss ln 2 / 3, d/dp = 0 everywhere, d/dt = (ln(1 - p) - ln p) / 3 unclamped.
    let runs = in_both_modes(f, &[t64(&[0.0, 1.0, 0.5]), t64(&[0.0, 1.0, 0.5])]).unwrap();
    expect("loss", &runs, 0, &[0.23104906018664842], 1e-15);
    expect("d/dp", &runs, 1, &[0.0, 0.0, 0.0], 0.0);
    expect(
        "d/dt",
        &runs,
        2,
        &[f64::INFINITY, f64::NEG_INFINITY, 0.0],
        0.0,
    );
    // Wrong at both ends: each log clamped at -100; PyTorch's gradient divides by its float32
    // eps 1e-12, giving -/+500000001997.9014.
    let runs = in_both_modes(f, &[t64(&[0.0, 1.0]), t64(&[1.0, 0.0])]).unwrap();
    expect("loss", &runs, 0, &[100.0], 1e-15);
    expect(
        "d/dp",
        &runs,
        1,
        &[-500000001997.9014, 500000001997.9014],
        1e-15,
    );
    expect("d/dt", &runs, 2, &[f64::INFINITY, f64::NEG_INFINITY], 0.0);
}

#[test]
fn bce_of_a_saturated_float32_sigmoid() {
    // sigmoid(20) rounds to 1 and sigmoid(-120) to 0 in float32; PyTorch's loss and gradient.
    let cases: [(f32, f32, f64); 6] = [
        (20.0, 0.0, 100.0),
        (20.0, 1.0, 0.0),
        (20.0, 0.3, 70.0),
        (-120.0, 0.0, 0.0),
        (-120.0, 1.0, 100.0),
        (-120.0, 0.3, 30.000001907348633),
    ];
    for (x, t, want) in cases {
        let f =
            move |x: &[Tensor]| grads(|x| loss::binary_cross_entropy(&x[0].sigmoid()?, &x[1]), x);
        let runs = in_both_modes(f, &[t32(&[x]), t32(&[t])]).unwrap();
        expect(&format!("loss at x={x} t={t}"), &runs, 0, &[want], 1e-7);
        expect(&format!("d/dx at x={x} t={t}"), &runs, 1, &[0.0], 0.0);
    }
}

#[test]
fn powers_at_zero() {
    let zero = t64(&[0.0]);
    // d/dx x^0 at 0 is 0.
    let d = derivatives(|x| x.powf(0.0), &zero, 1).unwrap();
    assert_eq!(d[0].to_vec_f64(), [0.0]);
    // x^2 at 0: derivatives 0, 2, 0.
    let d = derivatives(|x| x.square(), &zero, 3).unwrap();
    let d: Vec<f64> = d.iter().map(|t| t.to_vec_f64()[0]).collect();
    assert_eq!(d, [0.0, 2.0, 0.0]);
    // x^1 at 0: derivatives 1, 0.
    let d = derivatives(|x| x.powf(1.0), &zero, 2).unwrap();
    let d: Vec<f64> = d.iter().map(|t| t.to_vec_f64()[0]).collect();
    assert_eq!(d, [1.0, 0.0]);

    let f = |x: &[Tensor]| grads(|x| x[0].pow(&x[1]), x);
    // pow(0, 0): value 1, d/dx 0, d/dy 0.
    let runs = in_both_modes(f, &[t64(&[0.0]), t64(&[0.0])]).unwrap();
    expect("pow(0, 0)", &runs, 0, &[1.0], 0.0);
    expect("d/dx pow(0, 0)", &runs, 1, &[0.0], 0.0);
    expect("d/dy pow(0, 0)", &runs, 2, &[0.0], 0.0);
    // pow(0, -1): value inf, d/dx -inf, d/dy -inf.
    let runs = in_both_modes(f, &[t64(&[0.0]), t64(&[-1.0])]).unwrap();
    expect("pow(0, -1)", &runs, 0, &[f64::INFINITY], 0.0);
    expect("d/dx pow(0, -1)", &runs, 1, &[f64::NEG_INFINITY], 0.0);
    expect("d/dy pow(0, -1)", &runs, 2, &[f64::NEG_INFINITY], 0.0);
}

#[test]
fn logsumexp_with_an_infinite_entry() {
    let f = |x: &[Tensor]| grads(|x| x[0].logsumexp(&[0], false), x);
    // PyTorch: inf, with gradient NaN for the infinite entry and 0 for the finite one.
    let runs = in_both_modes(f, &[t64(&[f64::INFINITY, 0.0])]).unwrap();
    expect("logsumexp", &runs, 0, &[f64::INFINITY], 0.0);
    expect("d/dx logsumexp", &runs, 1, &[f64::NAN, 0.0], 0.0);
    let runs = in_both_modes(f, &[t64(&[f64::NEG_INFINITY, f64::NEG_INFINITY])]).unwrap();
    expect("logsumexp of -inf", &runs, 0, &[f64::NEG_INFINITY], 0.0);
}

#[test]
fn float32_log_softmax_and_cross_entropy_keep_their_low_bits() {
    let f = |x: &[Tensor]| Ok(vec![x[0].log_softmax(0)?]);
    let runs = in_both_modes(f, &[t32(&[1000.0, -1000.0, 999.0])]).unwrap();
    // PyTorch float32: -0.31326166, -2000.3132, -1.3132616 (exact -0.31326169...).
    expect(
        "log_softmax",
        &runs,
        0,
        &[-0.31326165795326233, -2000.313232421875, -1.31326162815094],
        1e-7,
    );
    let labels = Tensor::from_vec(vec![2i64], &[1]).unwrap();
    let logits = Tensor::from_vec(vec![0.5f32, 80.0, 90.0], &[1, 3]).unwrap();
    let got = logits.softmax_cross_entropy(&labels).unwrap().to_vec_f64()[0];
    // Exact: ln(1 + e^-10 + e^-89.5) = 4.5398899e-5; PyTorch float32 gives 4.5418e-5.
    let exact = (-10f64).exp().ln_1p();
    assert!(
        ((got - exact) / exact).abs() < 1e-6,
        "cross-entropy {got:e}, exact {exact:e}"
    );
    let f = |x: &[Tensor]| {
        let labels = Tensor::from_vec(vec![2i64], &[1])?;
        Ok(vec![x[0].softmax_cross_entropy(&labels)?])
    };
    let runs = in_both_modes(f, std::slice::from_ref(&logits)).unwrap();
    expect("cross-entropy", &runs, 0, &[exact], 1e-9);
    assert_eq!(logits.dtype(), DType::F32);
}
