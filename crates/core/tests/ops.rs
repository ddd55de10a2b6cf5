//! Every differentiable op through one helper: forward against an elementwise reference where
//! one exists, f32 against f64, and a float64 finite-difference gradient check, on random
//! inputs including broadcasting shapes. Adding an op adds one line to the table.

mod common;

use common::{Case, api_cases, binary_cases, cnn_cases, inputs, structural_cases, unary_cases};
use ferrograd_core::{DType, GradcheckOptions, Rng, Tensor, gradcheck, shape};

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
    let inputs = inputs(case);

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
fn convolution_pooling_and_normalisation() {
    cnn_cases().iter().for_each(check);
}

#[test]
fn statistics_sorting_rounding_and_masking() {
    api_cases().iter().for_each(check);
}

#[test]
fn sorting_indices_and_constructors_against_known_values() {
    let x = Tensor::from_vec(vec![3.0f64, f64::NAN, 1.0, 3.0, 2.0], &[5]).unwrap();
    // NaN sorts last ascending and first descending; ties keep their order (PyTorch, stable).
    assert_eq!(
        x.argsort(0, false).unwrap().to_vec::<i64>().unwrap(),
        vec![2, 4, 0, 3, 1]
    );
    assert_eq!(
        x.argsort(0, true).unwrap().to_vec::<i64>().unwrap(),
        vec![1, 0, 3, 4, 2]
    );
    let y = Tensor::from_vec(vec![3.0f64, 1.0, 1.0, 0.0, 5.0, 0.0], &[2, 3]).unwrap();
    assert_eq!(
        y.argmin(1, false).unwrap().to_vec::<i64>().unwrap(),
        vec![1, 0]
    );
    assert_eq!(y.argmin(0, true).unwrap().shape(), &[1, 3]);
    let (v, i) = y.max_dim(0, false).unwrap();
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![3.0, 5.0, 1.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1, 0]);
    let (v, i) = y.topk(2, -1, false).unwrap();
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![1.0, 1.0, 0.0, 0.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 2, 0, 2]);
    assert!(y.topk(4, 1, true).is_err());
    assert!(y.argsort(2, false).is_err());
    // The gradient of max with indices goes to the first of tied maxima only.
    let t = Tensor::from_vec(vec![1.0f64, 3.0, 3.0], &[3])
        .unwrap()
        .with_requires_grad(true);
    let g = t.max_dim(0, false).unwrap().0.backward().unwrap();
    assert_eq!(
        g.get(&t).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 0.0]
    );

    let halves = Tensor::from_vec(vec![0.5f64, 1.5, 2.5, -0.5, -1.7], &[5]).unwrap();
    assert_eq!(
        halves.round().unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 2.0, 2.0, -0.0, -2.0]
    );
    assert_eq!(
        halves.floor().unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 2.0, -1.0, -2.0]
    );
    assert_eq!(
        halves.ceil().unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 2.0, 3.0, -0.0, -1.0]
    );

    assert_eq!(
        Tensor::eye(3, DType::I64).unwrap().to_vec::<i64>().unwrap(),
        vec![1, 0, 0, 0, 1, 0, 0, 0, 1]
    );
    let l = Tensor::linspace(-1.0, 1.0, 3, DType::F32).unwrap();
    assert_eq!(l.to_vec::<f32>().unwrap(), vec![-1.0, 0.0, 1.0]);
    assert_eq!(
        Tensor::linspace(2.0, 5.0, 1, DType::F64)
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![2.0]
    );
    assert_eq!(
        Tensor::linspace(2.0, 5.0, 0, DType::F64).unwrap().numel(),
        0
    );
    assert!(Tensor::linspace(0.0, f64::INFINITY, 3, DType::F64).is_err());
    assert!(Tensor::ones(&[3], DType::F64).unwrap().tril(0).is_err());

    let z = Tensor::zeros(&[2, 3], DType::F64)
        .unwrap()
        .with_requires_grad(true);
    let n = z.norm(2.0, &[1], false).unwrap();
    assert_eq!(n.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    let g = n.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&z).unwrap().to_vec::<f64>().unwrap(), vec![0.0; 6]);
    assert!(z.norm(f64::NAN, &[], false).is_err());
    let c = Tensor::from_vec(vec![0.0f64, 2.0, 0.0, 1.0], &[4]).unwrap();
    assert_eq!(c.norm(0.0, &[], false).unwrap().item().unwrap(), 2.0);
    assert_eq!(c.prod(&[], false).unwrap().item().unwrap(), 0.0);
    assert_eq!(
        Tensor::zeros(&[0], DType::F64)
            .unwrap()
            .prod(&[0], false)
            .unwrap()
            .item()
            .unwrap(),
        1.0
    );
    let one = Tensor::from_vec(vec![4.0f64], &[1]).unwrap();
    assert!(one.var(&[], true, false).unwrap().item().unwrap().is_nan());
    assert!(x.clamp_tensor(None, None).is_err());
    assert!(
        one.masked_fill(&Tensor::ones(&[2], DType::I64).unwrap(), 0.0)
            .is_err()
    );
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
