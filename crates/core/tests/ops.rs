//! Every differentiable op through one helper: forward against an elementwise reference where
//! one exists, f32 against f64, and a float64 finite-difference gradient check, on random
//! inputs including broadcasting shapes. Adding an op adds one line to the table.

use ferrograd_core::{DType, GradcheckOptions, Result, Rng, Tensor, gradcheck, shape};

type OpFn = fn(&[Tensor]) -> Result<Tensor>;
type RefFn = fn(&[f64]) -> f64;

struct Case {
    name: &'static str,
    shapes: &'static [&'static [usize]],
    /// Inputs are drawn uniformly from this range.
    domain: (f64, f64),
    f: OpFn,
    /// Elementwise reference applied to the broadcast inputs, for elementwise ops.
    reference: Option<RefFn>,
}

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs()) || (a.is_nan() && b.is_nan())
}

/// Value of a (possibly broadcast) input at an output multi-index.
fn broadcast_value(values: &[f64], in_shape: &[usize], out_index: &[usize]) -> f64 {
    let lead = out_index.len() - in_shape.len();
    let mut flat = 0;
    for (d, &size) in in_shape.iter().enumerate() {
        let i = if size == 1 { 0 } else { out_index[d + lead] };
        flat = flat * size + i;
    }
    values[flat]
}

fn check(case: &Case) {
    let mut rng = Rng::new(seed_of(case.name));
    let (lo, hi) = case.domain;
    let inputs: Vec<Tensor> = case
        .shapes
        .iter()
        .map(|s| Tensor::rand_uniform(s, lo, hi, DType::F64, &mut rng).unwrap())
        .collect();

    let out = (case.f)(&inputs).unwrap_or_else(|e| panic!("{}: forward failed: {e}", case.name));
    let got = out.to_vec::<f64>().unwrap();

    if let Some(reference) = case.reference {
        let shapes: Vec<&[usize]> = case.shapes.to_vec();
        let out_shape = shapes
            .iter()
            .try_fold(Vec::new(), |acc, s| shape::broadcast_shapes("ref", &acc, s))
            .unwrap();
        assert_eq!(
            out.shape(),
            out_shape.as_slice(),
            "{}: output shape",
            case.name
        );
        let values: Vec<Vec<f64>> = inputs.iter().map(|t| t.to_vec::<f64>().unwrap()).collect();
        for (flat, &g) in got.iter().enumerate() {
            let mut index = vec![0; out_shape.len()];
            let mut rem = flat;
            for d in (0..out_shape.len()).rev() {
                index[d] = rem % out_shape[d];
                rem /= out_shape[d];
            }
            let args: Vec<f64> = values
                .iter()
                .zip(&shapes)
                .map(|(v, s)| broadcast_value(v, s, &index))
                .collect();
            let want = reference(&args);
            assert!(
                close(g, want, 1e-12),
                "{}: forward at {index:?}: got {g}, want {want}",
                case.name
            );
        }
    }

    let inputs32: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F32).unwrap())
        .collect();
    let out32 = (case.f)(&inputs32).unwrap_or_else(|e| panic!("{}: f32 forward: {e}", case.name));
    assert_eq!(out32.dtype(), DType::F32, "{}: f32 in, f32 out", case.name);
    assert_eq!(out32.shape(), out.shape(), "{}: f32 shape", case.name);
    for (a, b) in out32.to_vec_f64().iter().zip(&got) {
        assert!(close(*a, *b, 1e-4), "{}: f32 {a} vs f64 {b}", case.name);
    }

    let report = gradcheck(case.f, &inputs, &GradcheckOptions::default())
        .unwrap_or_else(|e| panic!("{}: gradcheck error: {e}", case.name));
    assert!(report.passed(), "{}: {report}", case.name);
    assert!(report.checked > 0, "{}: nothing checked", case.name);
}

macro_rules! cases {
    ($($name:literal, $shapes:expr, $domain:expr, $f:expr, $r:expr;)*) => {
        &[$(Case { name: $name, shapes: $shapes, domain: $domain, f: $f, reference: $r }),*]
    };
}

const WIDE: (f64, f64) = (-2.0, 2.0);
const POS: (f64, f64) = (0.2, 2.0);

fn unary_cases() -> &'static [Case] {
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

fn binary_cases() -> &'static [Case] {
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

fn structural_cases() -> &'static [Case] {
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

#[test]
fn unary_ops() {
    unary_cases().iter().for_each(check);
}

#[test]
fn binary_ops_with_broadcasting() {
    binary_cases().iter().for_each(check);
}

#[test]
fn reductions_linalg_movement_and_indexing() {
    structural_cases().iter().for_each(check);
}

#[test]
fn reductions_against_known_values() {
    let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 0.5, 4.0, -1.0], &[2, 3]).unwrap();
    assert_eq!(
        x.sum(&[1], false).unwrap().to_vec::<f64>().unwrap(),
        vec![2.0, 3.5]
    );
    assert_eq!(
        x.max(&[0], false).unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 4.0, 3.0]
    );
    assert_eq!(x.min(&[], false).unwrap().item().unwrap(), -2.0);
    assert_eq!(
        x.argmax(0, false).unwrap().to_vec::<i64>().unwrap(),
        vec![0, 1, 0]
    );
    let lse = x.logsumexp(&[1], false).unwrap().to_vec::<f64>().unwrap();
    let want = (1f64.exp() + (-2f64).exp() + 3f64.exp()).ln();
    assert!((lse[0] - want).abs() < 1e-12);
}

#[test]
fn matmul_against_naive() {
    let mut rng = Rng::new(3);
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 2),
        (17, 33, 9),
        (64, 70, 65),
        (130, 20, 7),
    ] {
        let a = Tensor::randn(&[m, k], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let b = Tensor::randn(&[k, n], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let (av, bv) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
        for (c, transposed) in [
            (a.matmul(&b).unwrap(), false),
            (b.t().unwrap().matmul(&a.t().unwrap()).unwrap(), true),
        ] {
            let cv = c.to_vec::<f64>().unwrap();
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|p| av[i * k + p] * bv[p * n + j]).sum();
                    let got = if transposed {
                        cv[j * m + i]
                    } else {
                        cv[i * n + j]
                    };
                    assert!((got - want).abs() < 1e-9, "({m},{k},{n}) at ({i},{j})");
                }
            }
        }
    }
}

#[test]
fn softmax_is_stable_and_normalised() {
    let x = Tensor::from_vec(vec![1e4f32, 0.0, -1e4, 3.0, 3.0, 3.0], &[2, 3]).unwrap();
    let s = x.softmax(-1).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(&s[..3], &[1.0, 0.0, 0.0]);
    for v in &s[3..] {
        assert!((v - 1.0 / 3.0).abs() < 1e-6);
    }
    let ls = x.log_softmax(-1).unwrap().to_vec::<f32>().unwrap();
    assert!(ls.iter().all(|v| v.is_finite()));
    let ce = x
        .softmax_cross_entropy(&Tensor::from_vec(vec![1i64, 0], &[2]).unwrap())
        .unwrap();
    let ce = ce.to_vec::<f32>().unwrap();
    assert_eq!(ce[0], 1e4);
    assert!((ce[1] - 3f32.ln()).abs() < 1e-6);
}
