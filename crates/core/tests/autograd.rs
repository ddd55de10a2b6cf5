//! Behaviour of the autograd engine: what is recorded, how gradients accumulate and are freed,
//! deep graphs, in-place modification of saved tensors, and second-order gradients.

use ferrograd_core::{BackwardOptions, DType, Error, Rng, Tensor, hessian_vector_product, no_grad};

fn leaf(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).unwrap().with_requires_grad(true)
}

#[test]
fn nothing_is_recorded_without_a_tracked_input_or_under_no_grad() {
    let x = Tensor::ones(&[3], DType::F32).unwrap();
    let y = x.exp().unwrap();
    assert!(!y.tracks_grad() && y.is_leaf());
    let w = x.with_requires_grad(true);
    assert!(w.exp().unwrap().tracks_grad());
    let _g = no_grad();
    assert!(!w.exp().unwrap().tracks_grad());
}

#[test]
fn detach_cuts_the_graph() {
    let x = leaf(vec![2.0], &[1]);
    let y = x.mul(&x.detach()).unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![2.0]);
}

#[test]
fn reused_nodes_accumulate() {
    let x = leaf(vec![3.0, -1.0], &[2]);
    let h = x.mul(&x).unwrap();
    // y = h + h*x + x  =>  dy/dx = 2x + 3x^2 + 1
    let y = h
        .add(&h.mul(&x).unwrap())
        .unwrap()
        .add(&x)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![34.0, 2.0]);
}

#[test]
fn only_leaf_gradients_are_kept_unless_asked() {
    let x = leaf(vec![1.0, 2.0], &[2]);
    let w = leaf(vec![0.5, 0.5], &[2]);
    let h = x.mul(&w).unwrap();
    let y = h.tanh().unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.len(), 2);
    assert!(g.get(&h).is_none());
    let all = y
        .backward_with(
            &y.ones_like(),
            BackwardOptions {
                keep_all: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(all.get(&h).is_some());
    assert!(all.get(&y).is_some());
}

#[test]
fn a_100_000_op_chain_neither_overflows_backward_nor_drop() {
    // Run on a small stack: any recursion over the chain would overflow it.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let x = leaf(vec![0.0], &[1]);
            let mut y = x.clone();
            for _ in 0..100_000 {
                y = y.add_scalar(1.0).unwrap();
            }
            assert_eq!(y.item().unwrap(), 100_000.0);
            let g = y.sum_all().unwrap().backward().unwrap();
            assert_eq!(g.get(&x).unwrap().item().unwrap(), 1.0);
            drop(y);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn modifying_a_saved_tensor_in_place_is_detected() {
    let w = leaf(vec![1.0, 2.0], &[2]);
    let x = Tensor::from_vec(vec![3.0, 4.0], &[2]).unwrap();
    let y = x.mul(&w).unwrap().sum_all().unwrap(); // saves x and w
    // Leaves that require grad refuse in-place writes while grad mode is on.
    assert!(matches!(
        w.assign(&w.zeros_like()),
        Err(Error::InPlaceOnTracked { .. })
    ));
    {
        let _g = no_grad();
        w.assign(&w.ones_like()).unwrap();
    }
    let err = y.backward().err().expect("backward must refuse");
    assert!(
        matches!(err, Error::ModifiedInPlace { op: "mul", .. }),
        "{err}"
    );

    // Outputs saved by their own rule (exp saves its result) are protected too.
    let v = leaf(vec![0.5], &[1]);
    let e = v.exp().unwrap();
    let loss = e.sum_all().unwrap();
    e.detach().assign(&e.detach().zeros_like()).unwrap();
    assert!(matches!(
        loss.backward(),
        Err(Error::ModifiedInPlace { .. })
    ));
}

#[test]
fn updates_between_steps_are_fine() {
    let w = leaf(vec![1.0], &[1]);
    for step in 0..3 {
        let loss = w.mul(&w).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let _ng = no_grad();
        let new = w
            .sub(&g.get(&w).unwrap().mul_scalar(0.25).unwrap())
            .unwrap();
        w.assign(&new).unwrap();
        assert_eq!(w.item().unwrap(), 0.5f64.powi(step + 1));
    }
}

#[test]
fn second_derivative_of_tanh() {
    let x = leaf(vec![0.7], &[1]);
    let y = x.tanh().unwrap().sum_all().unwrap();
    let opts = BackwardOptions {
        create_graph: true,
        ..Default::default()
    };
    let dy = y
        .backward_with(&y.ones_like(), opts)
        .unwrap()
        .remove(&x)
        .unwrap();
    assert!(dy.tracks_grad());
    let d2 = dy
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
        .remove(&x)
        .unwrap()
        .item()
        .unwrap();
    let t = 0.7f64.tanh();
    assert!((d2 - (-2.0 * t * (1.0 - t * t))).abs() < 1e-12);
}

/// Finite-difference Hessian-vector product: (grad f(x + eps v) - grad f(x - eps v)) / 2 eps.
fn fd_hvp(
    f: fn(&[Tensor]) -> ferrograd_core::Result<Tensor>,
    x: &[Tensor],
    v: &[Tensor],
) -> Vec<Vec<f64>> {
    let eps = 1e-5;
    let grad_at = |sign: f64| -> Vec<Vec<f64>> {
        let shifted: Vec<Tensor> = x
            .iter()
            .zip(v)
            .map(|(a, b)| {
                a.add(&b.mul_scalar(sign * eps).unwrap())
                    .unwrap()
                    .with_requires_grad(true)
            })
            .collect();
        let g = f(&shifted).unwrap().backward().unwrap();
        shifted
            .iter()
            .map(|s| g.get(s).unwrap().to_vec::<f64>().unwrap())
            .collect()
    };
    let (p, m) = (grad_at(1.0), grad_at(-1.0));
    p.iter()
        .zip(&m)
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(u, w)| (u - w) / (2.0 * eps))
                .collect()
        })
        .collect()
}

#[test]
fn hessian_vector_products_match_finite_differences() {
    type F = fn(&[Tensor]) -> ferrograd_core::Result<Tensor>;
    let cases: &[(&str, &[&[usize]], F)] = &[
        ("mul", &[&[3], &[3]], |x| {
            x[0].mul(&x[1])?.mul(&x[0])?.sum_all()
        }),
        ("tanh", &[&[4]], |x| x[0].tanh()?.mul(&x[0])?.sum_all()),
        ("sigmoid", &[&[4]], |x| x[0].sigmoid()?.square()?.sum_all()),
        ("exp", &[&[4]], |x| {
            x[0].mul_scalar(0.5)?.exp()?.mul(&x[0])?.sum_all()
        }),
        ("matmul", &[&[2, 3], &[3, 2]], |x| {
            x[0].matmul(&x[1])?.tanh()?.sum_all()
        }),
        ("softmax_ce", &[&[3, 4]], |x| {
            let l = Tensor::from_vec(vec![1i64, 0, 3], &[3])?;
            x[0].softmax_cross_entropy(&l)?.sum_all()
        }),
    ];
    let mut rng = Rng::new(11);
    for (name, shapes, f) in cases {
        let x: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::randn(s, 0.0, 1.0, DType::F64, &mut rng).unwrap())
            .collect();
        let v: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::randn(s, 0.0, 1.0, DType::F64, &mut rng).unwrap())
            .collect();
        let hv = hessian_vector_product(f, &x, &v).unwrap();
        let fd = fd_hvp(*f, &x, &v);
        for (a, b) in hv.iter().zip(&fd) {
            for (u, w) in a.to_vec::<f64>().unwrap().iter().zip(b) {
                assert!((u - w).abs() < 1e-6 * (1.0 + w.abs()), "{name}: {u} vs {w}");
            }
        }
    }
}

#[test]
fn backward_needs_a_scalar_or_a_matching_gradient() {
    let x = leaf(vec![1.0, 2.0], &[2]);
    let y = x.exp().unwrap();
    let err = y.backward().err().unwrap();
    assert!(err.to_string().contains("backward"), "{err}");
    assert!(
        y.backward_with(&Tensor::ones(&[3], DType::F64).unwrap(), Default::default())
            .is_err()
    );
    assert!(
        y.backward_with(&Tensor::ones(&[2], DType::F32).unwrap(), Default::default())
            .is_err()
    );
    let g = y
        .backward_with(
            &Tensor::from_vec(vec![1.0, 0.0], &[2]).unwrap(),
            Default::default(),
        )
        .unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![1f64.exp(), 0.0]
    );
}

#[test]
fn gradients_flow_through_dtype_casts() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2])
        .unwrap()
        .with_requires_grad(true);
    let y = x
        .to_dtype(DType::F64)
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap();
    let g = y.backward().unwrap().remove(&x).unwrap();
    assert_eq!(g.dtype(), DType::F32);
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
}
