//! Static graphs agree with eager mode: every op of the shared table, forward and gradient,
//! traced (with the same backward rules) and replayed through the optimised graph; a gradient
//! check run entirely in static mode; what the passes do; retracing; and the error for
//! data-dependent control flow.

mod common;

use common::{Case, all_cases, inputs};
use ferrograd_core::graph::{CompileOptions, NodeKind, StaticFn, compile};
use ferrograd_core::{DType, Error, Result, Rng, Tensor};
use ferrograd_testkit::fixture::two_layer_step;

/// The function compiled for a case: forward output, then the gradient of `sum(out * w)` with
/// respect to every f64 input (inputs are made leaves inside, so the trace sees them).
fn with_grads(
    case: &'static Case,
    projection: Tensor,
) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> {
    move |xs: &[Tensor]| {
        let leaves: Vec<Tensor> = xs.iter().map(|x| x.with_requires_grad(true)).collect();
        let out = (case.f)(&leaves)?;
        let grads = out.mul(&projection)?.sum_all()?.backward()?;
        let mut results = vec![out];
        for l in &leaves {
            results.push(grads.get(l).cloned().unwrap_or_else(|| l.zeros_like()));
        }
        Ok(results)
    }
}

fn assert_close(name: &str, what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{name}: {what} shape");
    for (x, y) in a.to_vec_f64().iter().zip(b.to_vec_f64()) {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{name}: {what}: static {x} vs eager {y}"
        );
    }
}

#[test]
fn every_op_agrees_between_eager_and_static_mode() {
    for case in all_cases() {
        let xs = inputs(case);
        let out_shape = (case.f)(&xs).unwrap().shape().to_vec();
        let projection =
            Tensor::rand_uniform(&out_shape, 0.5, 1.5, DType::F64, &mut Rng::new(9)).unwrap();
        let f = with_grads(case, projection);
        let eager = f(&xs).unwrap();
        for opts in [CompileOptions::NONE, CompileOptions::default()] {
            let mut compiled =
                compile(&f, &xs, opts).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            // Fresh inputs of the same shapes: the graph must not have baked in the examples.
            let ys: Vec<Tensor> = xs.iter().map(|x| x.mul_scalar(0.9).unwrap()).collect();
            let got = compiled.run(&ys).unwrap();
            let want = f(&ys).unwrap();
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(case.name, &format!("output {k} ({opts:?})"), g, w, 1e-12);
            }
            let again = compiled.run(&xs).unwrap();
            assert_close(case.name, "rerun", &again[0], &eager[0], 1e-12);
        }
    }
}

/// Finite differences of the static forward graph against the static backward graph.
#[test]
fn gradcheck_in_static_mode() {
    for case in all_cases() {
        let xs = inputs(case);
        let out_shape = (case.f)(&xs).unwrap().shape().to_vec();
        let projection =
            Tensor::rand_uniform(&out_shape, 0.5, 1.5, DType::F64, &mut Rng::new(3)).unwrap();
        let mut with = compile(
            with_grads(case, projection.clone()),
            &xs,
            CompileOptions::default(),
        )
        .unwrap();
        let p2 = projection.clone();
        let mut forward = compile(
            move |v: &[Tensor]| Ok(vec![(case.f)(v)?.mul(&p2)?.sum_all()?]),
            &xs,
            CompileOptions::default(),
        )
        .unwrap();
        let analytic = with.run(&xs).unwrap();
        let eps = 1e-6;
        for (i, x) in xs.iter().enumerate() {
            let values = x.to_vec::<f64>().unwrap();
            let grad = analytic[i + 1].to_vec::<f64>().unwrap();
            for j in 0..values.len() {
                let mut probe = |d: f64| {
                    let mut v = values.clone();
                    v[j] += d;
                    let mut args = xs.clone();
                    args[i] = Tensor::from_vec(v, x.shape()).unwrap();
                    forward.run(&args).unwrap()[0].item().unwrap()
                };
                let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps);
                assert!(
                    (grad[j] - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs(),
                    "{}: input {i} element {j}: analytic {} vs numeric {numeric}",
                    case.name,
                    grad[j]
                );
            }
        }
    }
}

#[test]
fn passes_fuse_fold_merge_and_drop_dead_code() {
    let mut rng = Rng::new(1);
    let p = |s: &[usize], rng: &mut Rng| {
        Tensor::randn(s, 0.0, 0.1, DType::F32, rng)
            .unwrap()
            .with_requires_grad(true)
    };
    let params = [
        p(&[16, 8], &mut rng),
        p(&[16], &mut rng),
        p(&[4, 16], &mut rng),
        p(&[4], &mut rng),
    ];
    let x = Tensor::randn(&[5, 8], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 2, 3, 0], &[5]).unwrap();
    let compiled = compile(
        two_layer_step(params),
        &[x.clone(), y.clone()],
        CompileOptions::default(),
    )
    .unwrap();
    let r = compiled.report();
    assert!(r.fused_groups >= 1, "{r:?}");
    assert!(r.nodes_final < r.nodes_traced, "{r:?}");
    assert_eq!(compiled.graph().params.len(), 4);
    let text = compiled.graph().to_string();
    assert!(text.contains("fused(") && text.contains("matmul"), "{text}");
    let dot = compiled.graph().to_dot("mlp");
    assert!(dot.starts_with("digraph") && dot.contains("->") && dot.contains("param 0"));

    // A duplicated computation, a dead one and a constant expression.
    let f = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let a = i[0].exp()?;
        let b = i[0].exp()?;
        let _dead = i[0].sin()?;
        let c = Tensor::full(2.0, &[3], DType::F64)
            .unwrap()
            .mul_scalar(3.0)?;
        Ok(vec![a.add(&b)?.add(&c)?])
    };
    let x = Tensor::ones(&[3], DType::F64).unwrap();
    let mut c = compile(
        f,
        std::slice::from_ref(&x),
        CompileOptions {
            fuse: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.report().merged, 1, "{:?}", c.report());
    assert!(c.report().folded >= 1, "{:?}", c.report());
    assert!(!c.graph().to_string().contains("sin"));
    assert_eq!(
        c.run(std::slice::from_ref(&x)).unwrap()[0]
            .to_vec::<f64>()
            .unwrap(),
        f(&[x]).unwrap()[0].to_vec::<f64>().unwrap()
    );
    let consts = c
        .graph()
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Const(_)))
        .count();
    assert!(consts >= 1);
}

#[test]
fn parameters_are_read_live_and_new_shapes_retrace() {
    let w = Tensor::ones(&[3], DType::F64)
        .unwrap()
        .with_requires_grad(true);
    let w2 = w.clone();
    let mut f = StaticFn::new(
        move |i: &[Tensor]| Ok(vec![i[0].mul(&w2)?.sum_all()?]),
        CompileOptions::default(),
    );
    let x = Tensor::ones(&[3], DType::F64).unwrap();
    assert_eq!(
        f.call(std::slice::from_ref(&x)).unwrap()[0].item().unwrap(),
        3.0
    );
    {
        let _g = ferrograd_core::no_grad();
        w.assign(&Tensor::full(2.0, &[3], DType::F64).unwrap())
            .unwrap();
    }
    assert_eq!(
        f.call(std::slice::from_ref(&x)).unwrap()[0].item().unwrap(),
        6.0
    );
    assert_eq!(f.traces(), 1);
    let x2 = Tensor::ones(&[2, 3], DType::F64).unwrap();
    assert_eq!(f.call(&[x2]).unwrap()[0].item().unwrap(), 12.0);
    assert_eq!(f.traces(), 2);
    let compiled = f.compiled(&[x]).unwrap();
    assert!(
        compiled
            .run(&[Tensor::ones(&[4], DType::F64).unwrap()])
            .is_err()
    );
    assert!(
        compiled
            .run(&[Tensor::ones(&[3], DType::F32).unwrap()])
            .is_err()
    );
}

#[test]
fn data_dependent_control_flow_is_refused_with_a_pointer_to_eager_mode() {
    let f = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let s = i[0].sum_all()?;
        // Branching on a value: fine eagerly, impossible to capture in a static graph.
        if s.item()? > 0.0 {
            Ok(vec![i[0].exp()?])
        } else {
            Ok(vec![i[0].neg()?])
        }
    };
    let x = Tensor::ones(&[3], DType::F64).unwrap();
    assert!(f(std::slice::from_ref(&x)).is_ok());
    let err = compile(f, std::slice::from_ref(&x), CompileOptions::default())
        .err()
        .expect("must refuse");
    assert!(matches!(err, Error::DataDependent { op: "item" }), "{err}");
    assert!(err.to_string().contains("eager mode"), "{err}");
    // Swallowing the error does not help: the trace still fails.
    let sneaky = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let _ = i[0].to_vec_f64();
        Ok(vec![i[0].exp()?])
    };
    assert!(matches!(
        compile(sneaky, std::slice::from_ref(&x), CompileOptions::default()),
        Err(Error::DataDependent { .. })
    ));
    // An in-place write into a value computed inside the trace is refused.
    let writes = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let y = i[0].exp()?;
        y.assign(&i[0])?;
        Ok(vec![y])
    };
    assert!(matches!(
        compile(writes, &[x], CompileOptions::default()),
        Err(Error::DataDependent { op: "assign" })
    ));
}

#[test]
fn writes_into_outside_tensors_are_recorded_and_replayed_in_place() {
    // `w` is state (no grad), `v` a parameter: both are written by every run, not by the trace.
    let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
    let v = Tensor::from_vec(vec![0.5f64; 3], &[3])
        .unwrap()
        .with_requires_grad(true);
    let step = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let _g = ferrograd_core::no_grad();
        let next = w.mul(&i[0])?.add_scalar(1.0)?; // w <- w * x + 1
        w.assign(&next)?;
        // Reads after the write see the new value, as they would eagerly.
        v.assign(&v.add(&w)?)?;
        Ok(vec![w.sum_all()?])
    };
    let x = Tensor::from_vec(vec![2.0f64, 2.0, 2.0], &[3]).unwrap();
    let mut compiled = compile(step, std::slice::from_ref(&x), CompileOptions::default()).unwrap();
    assert_eq!(
        w.to_vec::<f64>().unwrap(),
        vec![1.0, 2.0, 3.0],
        "tracing writes nothing"
    );
    assert_eq!(compiled.graph().stores.len(), 2, "{}", compiled.graph());
    let out = compiled.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(w.to_vec::<f64>().unwrap(), vec![3.0, 5.0, 7.0]);
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![3.5, 5.5, 7.5]);
    assert_eq!(out[0].item().unwrap(), 15.0);
    compiled.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(w.to_vec::<f64>().unwrap(), vec![7.0, 11.0, 15.0]);
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![10.5, 16.5, 22.5]);
    // Both updates are fused loops written straight into the tensors' storage.
    assert_eq!(compiled.memory().in_place, 2, "{:?}", compiled.memory());
    // `q <- p` then `p <- p * 2`: each store goes to its own tensor.
    let pp = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    let qq = Tensor::zeros(&[2], DType::F64).unwrap();
    let chain = |_: &[Tensor]| -> Result<Vec<Tensor>> {
        qq.assign(&pp)?;
        pp.assign(&pp.mul_scalar(2.0)?)?;
        Ok(vec![])
    };
    compile(chain, &[], CompileOptions::default())
        .unwrap()
        .run(&[])
        .unwrap();
    assert_eq!(qq.to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(pp.to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
    // A write whose value reads a permuted view of the target is copied, not done in place.
    let m = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let transpose = |_: &[Tensor]| -> Result<Vec<Tensor>> {
        m.assign(&m.t()?.mul_scalar(2.0)?)?;
        Ok(vec![])
    };
    let mut compiled = compile(transpose, &[], CompileOptions::default()).unwrap();
    assert_eq!(compiled.memory().in_place, 0);
    compiled.run(&[]).unwrap();
    assert_eq!(m.to_vec::<f64>().unwrap(), vec![2.0, 6.0, 4.0, 8.0]);
}

#[test]
fn outputs_share_the_workspace_but_never_change_afterwards() {
    let f =
        |i: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![i[0].exp()?.add_scalar(1.0)?, i[0].t()?]) };
    let x = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0], &[2, 2]).unwrap();
    let mut c = compile(f, std::slice::from_ref(&x), CompileOptions::default()).unwrap();
    let first = c.run(std::slice::from_ref(&x)).unwrap();
    let kept = first[0].to_vec::<f64>().unwrap();
    let second = c.run(&[x.mul_scalar(2.0).unwrap()]).unwrap();
    assert_eq!(
        first[0].to_vec::<f64>().unwrap(),
        kept,
        "an earlier result changed"
    );
    assert_ne!(second[0].to_vec::<f64>().unwrap(), kept);
    assert_eq!(first[1].to_vec::<f64>().unwrap(), vec![0.0, 2.0, 1.0, 3.0]);
    // A strided input is copied, not misread.
    let strided = x.t().unwrap();
    let out = c.run(std::slice::from_ref(&strided)).unwrap();
    assert_eq!(
        out[0].to_vec::<f64>().unwrap(),
        f(std::slice::from_ref(&strided)).unwrap()[0]
            .to_vec::<f64>()
            .unwrap()
    );
    assert_eq!(out[1].to_vec::<f64>().unwrap(), x.to_vec::<f64>().unwrap());
}

#[test]
fn ops_without_in_place_kernels_and_many_inputs_run_in_static_mode() {
    // Concatenating ten tensors: more inputs than a fused node reads, and no in-place kernel.
    let f = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let parts: Vec<Tensor> = (0..10)
            .map(|k| i[0].mul_scalar(k as f64))
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = parts.iter().collect();
        let idx = Tensor::from_vec(vec![3i64, 0], &[2])?;
        Ok(vec![
            Tensor::cat(&refs, 0)?.index_select(0, &idx)?,
            i[0].argmax(-1, false)?,
        ])
    };
    let x = Tensor::from_vec(vec![1.0f64, 3.0, 2.0], &[1, 3]).unwrap();
    let mut c = compile(f, std::slice::from_ref(&x), CompileOptions::default()).unwrap();
    let got = c.run(std::slice::from_ref(&x)).unwrap();
    let want = f(std::slice::from_ref(&x)).unwrap();
    assert_eq!(
        got[0].to_vec::<f64>().unwrap(),
        want[0].to_vec::<f64>().unwrap()
    );
    assert_eq!(got[1].to_vec::<i64>().unwrap(), vec![1]);
}

#[test]
fn in_place_updates_grouped_block_by_block_match_running_them_one_by_one() {
    // Long enough for several blocks, a partial last block and parallel tasks on two threads.
    let n = 70_001;
    let mut rng = Rng::new(7);
    let mut start: Vec<Tensor> = (0..4)
        .map(|_| Tensor::randn(&[n], 0.0, 1.0, DType::F64, &mut rng).unwrap())
        .collect();
    start[1] = start[1].square().unwrap(); // a second moment
    let g = Tensor::randn(&[n], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    // An Adam-like update: moments, then the weight reading their new values; before it, a
    // tensor updated from the weight's old value.
    let update = |t: &[Tensor]| -> Result<Vec<Tensor>> {
        let [m, v, p, a] = t else { unreachable!() };
        let _g = ferrograd_core::no_grad();
        m.assign(&m.mul_scalar(0.9)?.add(&g.mul_scalar(0.1)?)?)?;
        v.assign(&v.mul_scalar(0.99)?.add(&g.square()?.mul_scalar(0.01)?)?)?;
        a.assign(&a.add(p)?.mul_scalar(0.5)?)?;
        p.assign(&p.sub(&m.div(&v.sqrt()?.add_scalar(1e-8)?)?.mul_scalar(0.01)?)?)?;
        Ok(vec![])
    };
    // A write read through a broadcast of one of its elements cannot join the group.
    let broadcast = |t: &[Tensor]| -> Result<Vec<Tensor>> {
        let [m, v, ..] = t else { unreachable!() };
        let _g = ferrograd_core::no_grad();
        m.assign(&m.add_scalar(1.0)?)?;
        v.assign(&v.add(&m.narrow(0, 0, 1)?.broadcast_to(&[n])?)?)?;
        Ok(vec![])
    };
    // A value computed between two updates from a tensor neither writes runs before the
    // group; one computed from the first update's result ends the group.
    let between = |t: &[Tensor]| -> Result<Vec<Tensor>> {
        let [m, v, _, a] = t else { unreachable!() };
        let _g = ferrograd_core::no_grad();
        m.assign(&m.mul_scalar(0.9)?.add_scalar(1.0)?)?;
        let total = a.sum_all()?.mul_scalar(1e-3)?;
        v.assign(&v.add(&m.mul(&total)?)?)?;
        Ok(vec![])
    };
    let after = |t: &[Tensor]| -> Result<Vec<Tensor>> {
        let [m, v, ..] = t else { unreachable!() };
        let _g = ferrograd_core::no_grad();
        m.assign(&m.add_scalar(1.0)?)?;
        let total = m.sum_all()?.mul_scalar(1e-3)?;
        v.assign(&v.add(&total)?)?;
        Ok(vec![])
    };
    let copies = || -> Vec<Tensor> { start.iter().map(Tensor::contiguous_copy).collect() };
    let pool = ferrograd_core::ThreadPool::new(2).unwrap();
    for (name, f, grouped) in [
        (
            "adam-like",
            &update as &(dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + Sync),
            3,
        ),
        ("broadcast", &broadcast, 0),
        ("between", &between, 1),
        ("after", &after, 0),
    ] {
        let eager = copies();
        let traced = copies();
        pool.install(|| {
            let mut compiled = compile(|_| f(&traced), &[], CompileOptions::default()).unwrap();
            assert_eq!(
                compiled.memory().grouped,
                grouped,
                "{name}: {}",
                compiled.graph()
            );
            for _ in 0..2 {
                f(&eager).unwrap();
                compiled.run(&[]).unwrap();
            }
        });
        for (k, (e, t)) in eager.iter().zip(&traced).enumerate() {
            let (e, t) = (e.to_vec::<f64>().unwrap(), t.to_vec::<f64>().unwrap());
            assert!(e.iter().all(|x| x.is_finite()), "{name}: tensor {k}");
            let same = e.iter().zip(&t).filter(|(a, b)| a == b).count();
            assert_eq!(same, n, "{name}: tensor {k} differs from eager");
        }
    }
}

#[test]
fn backward_computes_no_gradient_for_inputs_that_do_not_need_one() {
    // The batch `x` needs no gradient: the backward pass of `x @ w` is one product (w's
    // gradient), not two, even before dead-code elimination; `x * w` likewise one product.
    let w = Tensor::full(0.5, &[3, 2], DType::F64)
        .unwrap()
        .with_requires_grad(true);
    let v = Tensor::full(0.5, &[4, 3], DType::F64)
        .unwrap()
        .with_requires_grad(true);
    let step = |i: &[Tensor]| -> Result<Vec<Tensor>> {
        let loss = i[0].matmul(&w)?.sum_all()?.add(&i[0].mul(&v)?.sum_all()?)?;
        let grads = loss.backward()?;
        Ok(vec![
            grads.get(&w).unwrap().clone(),
            grads.get(&v).unwrap().clone(),
        ])
    };
    let x = Tensor::ones(&[4, 3], DType::F64).unwrap();
    // Everything the step ran, before any pass.
    let graph = ferrograd_core::graph::trace(step, std::slice::from_ref(&x))
        .unwrap()
        .to_string();
    assert_eq!(graph.matches("matmul").count(), 2, "{graph}");
    assert_eq!(graph.matches(" mul(").count(), 2, "{graph}");
}

#[test]
fn distinct_i64_constants_above_2_pow_53_are_not_merged() {
    // 2^53 and 2^53 + 1 are one f64: merging constants by their f64 values would alias them.
    let a = Tensor::from_vec(vec![1i64 << 53], &[1]).unwrap();
    let b = Tensor::from_vec(vec![(1i64 << 53) + 1], &[1]).unwrap();
    let f = |i: &[Tensor]| Ok(vec![i[0].add(&a)?, i[0].add(&b)?]);
    let x = Tensor::from_vec(vec![0i64], &[1]).unwrap();
    let mut c = compile(f, std::slice::from_ref(&x), CompileOptions::default()).unwrap();
    let out = c.run(&[x]).unwrap();
    assert_eq!(out[0].to_vec::<i64>().unwrap(), vec![1 << 53]);
    assert_eq!(out[1].to_vec::<i64>().unwrap(), vec![(1 << 53) + 1]);
}
