//! Forward mode and the function transforms: `jvp` of every op of the shared table against
//! `J v` from reverse mode and against central finite differences, eagerly and compiled;
//! Jacobians both ways; Hessians and forward-over-reverse Hessian-vector products; reverse
//! over forward; the cost of one `jvp` not growing with the number of outputs; bad arguments.

mod common;

use common::{Case, all_cases, inputs, seed_of};
use ferrograd_core::graph::{CompileOptions, compile, trace};
use ferrograd_core::{
    DType, Error, JacobianMode, Result, Rng, Tensor, hessian, hessian_vector_product, jacobian,
    jvp, vjp,
};

fn tangents(case: &Case, xs: &[Tensor]) -> Vec<Tensor> {
    let mut rng = Rng::new(seed_of(case.name) ^ 0x5eed);
    xs.iter()
        .map(|x| Tensor::rand_uniform(x.shape(), -1.0, 1.0, DType::F64, &mut rng).unwrap())
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}: element {k}: got {g}, want {w}"
        );
    }
}

/// `J v` as the reverse-mode Jacobian (one backward pass per output) times `v`.
fn reverse_jv(f: fn(&[Tensor]) -> Result<Tensor>, xs: &[Tensor], vs: &[Tensor]) -> Vec<f64> {
    let blocks = jacobian(f, xs, JacobianMode::Reverse).unwrap();
    let m = f(xs).unwrap().numel();
    let mut jv = vec![0.0; m];
    for (j, v) in blocks.iter().zip(vs) {
        let (j, v) = (j.to_vec::<f64>().unwrap(), v.to_vec::<f64>().unwrap());
        for (r, out) in jv.iter_mut().enumerate() {
            *out += (0..v.len()).map(|c| j[r * v.len() + c] * v[c]).sum::<f64>();
        }
    }
    jv
}

/// Central finite difference of `f` along `v`.
fn numeric_jv(f: fn(&[Tensor]) -> Result<Tensor>, xs: &[Tensor], vs: &[Tensor]) -> Vec<f64> {
    let eps = 1e-6;
    let shifted = |s: f64| -> Vec<f64> {
        let ys: Vec<Tensor> = xs
            .iter()
            .zip(vs)
            .map(|(x, v)| x.add(&v.mul_scalar(s).unwrap()).unwrap())
            .collect();
        f(&ys).unwrap().to_vec::<f64>().unwrap()
    };
    let (plus, minus) = (shifted(eps), shifted(-eps));
    plus.iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * eps))
        .collect()
}

#[test]
fn jvp_of_every_op_matches_reverse_mode_and_finite_differences() {
    for case in all_cases() {
        let xs = inputs(case);
        let vs = tangents(case, &xs);
        let (y, jv) = jvp(case.f, &xs, &vs).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let want_y = (case.f)(&xs).unwrap();
        assert_eq!(y.to_vec::<f64>().unwrap(), want_y.to_vec::<f64>().unwrap());
        assert_eq!(jv.shape(), y.shape(), "{}: jvp shape", case.name);
        let got = jv.to_vec::<f64>().unwrap();
        let what = format!("{}: jvp vs reverse mode", case.name);
        assert_close(&what, &got, &reverse_jv(case.f, &xs, &vs), 1e-10, 1e-9);
        let what = format!("{}: jvp vs finite differences", case.name);
        assert_close(&what, &got, &numeric_jv(case.f, &xs, &vs), 1e-5, 1e-3);
    }
}

#[test]
fn jvp_in_a_compiled_function_matches_eager() {
    for case in all_cases() {
        let xs = inputs(case);
        let vs = tangents(case, &xs);
        let k = xs.len();
        let f = move |args: &[Tensor]| -> Result<Vec<Tensor>> {
            let (y, jv) = jvp(case.f, &args[..k], &args[k..])?;
            Ok(vec![y, jv])
        };
        let args: Vec<Tensor> = xs.iter().chain(&vs).cloned().collect();
        let mut compiled = compile(f, &args, CompileOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Other values of the same shapes: nothing of the example may be baked in.
        let other: Vec<Tensor> = args.iter().map(|a| a.mul_scalar(0.9).unwrap()).collect();
        let got = compiled.run(&other).unwrap();
        let want = f(&other).unwrap();
        for (g, w) in got.iter().zip(&want) {
            let what = format!("{}: compiled jvp", case.name);
            assert_close(&what, &g.to_vec_f64(), &w.to_vec_f64(), 1e-12, 1e-10);
        }
    }
}

#[test]
fn jacobians_forward_reverse_and_auto_agree() {
    // f: R^(2x3) x R^3 -> R^4, with every input mixing into every output.
    let f = |x: &[Tensor]| -> Result<Tensor> {
        let h = x[0].matmul(&x[1].unsqueeze(1)?)?.squeeze(1)?.tanh()?;
        Tensor::cat(&[&h, &h.exp()?], 0)?.mul(&x[1].sum_all()?)
    };
    let mut rng = Rng::new(7);
    let xs = vec![
        Tensor::randn(&[2, 3], 0.0, 1.0, DType::F64, &mut rng).unwrap(),
        Tensor::randn(&[3], 0.0, 1.0, DType::F64, &mut rng).unwrap(),
    ];
    let rev = jacobian(f, &xs, JacobianMode::Reverse).unwrap();
    let fwd = jacobian(f, &xs, JacobianMode::Forward).unwrap();
    let auto = jacobian(f, &xs, JacobianMode::Auto).unwrap();
    assert_eq!(rev[0].shape(), &[4, 2, 3]);
    assert_eq!(rev[1].shape(), &[4, 3]);
    for i in 0..2 {
        let r = rev[i].to_vec::<f64>().unwrap();
        assert_close("forward vs reverse", &fwd[i].to_vec_f64(), &r, 1e-12, 1e-10);
        assert_close("auto vs reverse", &auto[i].to_vec_f64(), &r, 1e-12, 1e-10);
    }
    // 9 inputs, 4 outputs: wide inputs take reverse mode; the opposite takes forward mode.
    assert_eq!(JacobianMode::Auto.resolve(9, 4), JacobianMode::Reverse);
    assert_eq!(JacobianMode::Auto.resolve(4, 9), JacobianMode::Forward);
    assert_eq!(JacobianMode::Forward.resolve(9, 4), JacobianMode::Forward);

    // A linear map's Jacobian is its matrix, exactly, both ways; an unused input gets zeros.
    let a = Tensor::from_vec((0..6).map(f64::from).collect(), &[2, 3]).unwrap();
    let lin = |x: &[Tensor]| a.matmul(&x[0]);
    let x = vec![
        Tensor::ones(&[3], DType::F64).unwrap(),
        Tensor::ones(&[2], DType::F64).unwrap(),
    ];
    for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
        let j = jacobian(lin, &x, mode).unwrap();
        assert_eq!(j[0].to_vec::<f64>().unwrap(), a.to_vec::<f64>().unwrap());
        assert_eq!(j[1].to_vec::<f64>().unwrap(), vec![0.0; 4]);
    }
}

#[test]
fn hessians_and_forward_over_reverse_products() {
    // f(x) = sum(tanh(x)^3) + x0 x1: H = diag(d2 tanh^3) + the x0 x1 coupling.
    let f = |x: &[Tensor]| -> Result<Tensor> {
        let c = x[0]
            .narrow(0, 0, 1)?
            .mul(&x[0].narrow(0, 1, 1)?)?
            .sum_all()?;
        x[0].tanh()?.powf(3.0)?.sum_all()?.add(&c)
    };
    let x = Tensor::from_vec(vec![0.3f64, -0.7, 1.1], &[3]).unwrap();
    let h = hessian(f, std::slice::from_ref(&x)).unwrap();
    assert_eq!(h[0][0].shape(), &[3, 3]);
    let hv = h[0][0].to_vec::<f64>().unwrap();
    // The closed form of d2/dx2 tanh(x)^3 = 6 t s^2 - 6 t^3 s... written with s = 1 - t^2.
    let d2 = |v: f64| {
        let t = v.tanh();
        let s = 1.0 - t * t;
        6.0 * t * s * s - 6.0 * t.powi(3) * s
    };
    let xs = x.to_vec::<f64>().unwrap();
    let mut want = vec![0.0; 9];
    for i in 0..3 {
        want[i * 3 + i] = d2(xs[i]);
    }
    want[1] = 1.0;
    want[3] = 1.0;
    assert_close("hessian", &hv, &want, 1e-12, 1e-10);

    // Forward over reverse (jvp of the gradient) equals reverse over reverse.
    let v = Tensor::from_vec(vec![1.0f64, -2.0, 0.5], &[3]).unwrap();
    let grad = |x: &[Tensor]| -> Result<Tensor> {
        let y = f(x)?;
        let g = y.backward_to(&y.ones_like(), &x[..1], true)?;
        Ok(g.get(&x[0]).unwrap().clone())
    };
    let (_, fwd_rev) = jvp(grad, std::slice::from_ref(&x), std::slice::from_ref(&v)).unwrap();
    let rev_rev = hessian_vector_product(f, std::slice::from_ref(&x), &[v]).unwrap();
    let what = "forward-over-reverse vs reverse-over-reverse";
    assert_close(
        what,
        &fwd_rev.to_vec_f64(),
        &rev_rev[0].to_vec_f64(),
        1e-12,
        1e-10,
    );

    // Two inputs: the blocks of the Hessian of x^T A y.
    let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let bilinear = |v: &[Tensor]| v[0].matmul(&a)?.matmul(&v[1]);
    let h = hessian(
        bilinear,
        &[
            Tensor::ones(&[2], DType::F64).unwrap(),
            Tensor::ones(&[3], DType::F64).unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(h[0][1].to_vec::<f64>().unwrap(), a.to_vec::<f64>().unwrap());
    assert_eq!(
        h[1][0].to_vec::<f64>().unwrap(),
        a.t()
            .unwrap()
            .contiguous()
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    );
    assert_eq!(h[0][0].to_vec::<f64>().unwrap(), vec![0.0; 4]);
    assert!(hessian(|v| v[0].exp(), &[x]).is_err());
}

#[test]
fn reverse_mode_differentiates_through_jvp_and_vjp() {
    // d/dx [J_f(x) v] for f = sin: J v = cos(x) v, whose gradient in x is -sin(x) v.
    let x = Tensor::from_vec(vec![0.2f64, 1.3], &[2])
        .unwrap()
        .with_requires_grad(true);
    let v = Tensor::from_vec(vec![2.0f64, -1.0], &[2]).unwrap();
    let (_, jv) = jvp(
        |x| x[0].sin(),
        std::slice::from_ref(&x),
        std::slice::from_ref(&v),
    )
    .unwrap();
    let g = jv.sum_all().unwrap().backward().unwrap();
    let want: Vec<f64> = [0.2f64, 1.3]
        .iter()
        .zip([2.0, -1.0])
        .map(|(a, b)| -a.sin() * b)
        .collect();
    assert_close(
        "grad of jvp",
        &g.get(&x).unwrap().to_vec_f64(),
        &want,
        1e-12,
        1e-12,
    );

    let u = Tensor::from_vec(vec![1.0f64, 3.0], &[2]).unwrap();
    let (_, gs) = vjp(|x| x[0].square(), std::slice::from_ref(&x), &u).unwrap();
    let g = gs[0].sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 6.0]);
}

/// Traces `g` and counts the primitive ops it ran and their work (`Graph::work`).
fn work(g: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>, args: &[Tensor]) -> (usize, u64) {
    let graph = trace(g, args).unwrap();
    (graph.counts().0, graph.work())
}

#[test]
fn one_jvp_costs_a_few_forward_passes_whatever_the_number_of_outputs() {
    let mut rng = Rng::new(3);
    let n = 40;
    let x = Tensor::randn(&[n], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let v = Tensor::randn(&[n], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let mut ratios = Vec::new();
    let mut op_counts = Vec::new();
    for m in [1, 10, 100, 1000] {
        let w1 = Tensor::randn(&[30, n], 0.0, 0.2, DType::F64, &mut rng).unwrap();
        let w2 = Tensor::randn(&[m, 30], 0.0, 0.2, DType::F64, &mut rng).unwrap();
        let f = move |x: &[Tensor]| w2.matmul(&w1.matmul(&x[0])?.tanh()?)?.sin();
        let (_, forward) = work(|a| Ok(vec![f(a)?]), std::slice::from_ref(&x));
        let (ops, with_jvp) = work(
            |a| {
                let (y, jv) = jvp(f, &a[..1], &a[1..])?;
                Ok(vec![y, jv])
            },
            &[x.clone(), v.clone()],
        );
        ratios.push(with_jvp as f64 / forward as f64);
        op_counts.push(ops);
    }
    // The same primitives run for every m, and their work stays a fixed multiple of f's.
    assert!(op_counts.windows(2).all(|w| w[0] == w[1]), "{op_counts:?}");
    assert!(
        ratios.iter().all(|&r| r < 6.0),
        "jvp work / f work: {ratios:?}"
    );
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    assert!(hi / lo < 1.5, "jvp work / f work: {ratios:?}");
}

#[test]
fn bad_arguments_are_named_errors() {
    let x = Tensor::ones(&[3], DType::F64).unwrap();
    let f = |x: &[Tensor]| x[0].exp();
    let wrong = Tensor::ones(&[2], DType::F64).unwrap();
    assert!(matches!(
        jvp(f, std::slice::from_ref(&x), std::slice::from_ref(&wrong)),
        Err(Error::Argument { op: "jvp", .. })
    ));
    assert!(matches!(
        jvp(f, std::slice::from_ref(&x), &[]),
        Err(Error::Argument { .. })
    ));
    assert!(vjp(f, std::slice::from_ref(&x), &wrong).is_err());
    let labels = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
    assert!(matches!(
        jacobian(|x| x[0].to_dtype(DType::F64), &[labels], JacobianMode::Auto),
        Err(Error::UnsupportedDType { op: "jacobian", .. })
    ));
}
