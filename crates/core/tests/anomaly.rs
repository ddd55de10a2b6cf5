//! Anomaly mode: off, NaN and infinity pass unchecked; on, the first op that produces one
//! fails with its name, input shapes and site, forward and backward, eager and in static
//! graphs (unfused and fused).

use ferrograd_core::graph::{CompileOptions, compile};
use ferrograd_core::{Error, Result, Tensor, detect_anomaly, is_anomaly_enabled, scope};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

fn anomaly(e: Error) -> (&'static str, &'static str, Vec<Vec<usize>>, String, bool) {
    match e {
        Error::Anomaly {
            op,
            value,
            input_shapes,
            site,
            from_input,
        } => (op, value, input_shapes, site, from_input),
        other => panic!("expected an anomaly, got: {other}"),
    }
}

#[test]
fn off_by_default_and_scoped_by_its_guard() {
    assert!(!is_anomaly_enabled());
    assert!(t(&[0.0]).log().is_ok());
    {
        let _a = detect_anomaly();
        assert!(is_anomaly_enabled());
        assert!(t(&[0.0]).log().is_err());
        assert!(t(&[1.0]).log().is_ok());
    }
    assert!(!is_anomaly_enabled());
    assert!(t(&[0.0]).log().is_ok());
}

#[test]
fn a_forward_op_is_named_with_its_shapes_and_layer() {
    let _a = detect_anomaly();
    let x = Tensor::from_vec(vec![1.0f64, 2.0, -1.0, 4.0], &[2, 2]).unwrap();
    let (op, value, shapes, site, from_input) = anomaly(x.sqrt().unwrap_err());
    assert_eq!((op, value), ("sqrt", "NaN"));
    assert_eq!(shapes, vec![vec![2, 2]]);
    assert_eq!(site, "outside any named layer");
    assert!(!from_input);
    let err = {
        let _outer = scope(|| "encoder".into());
        let _inner = scope(|| "layers.3".into());
        x.log().unwrap_err()
    };
    let message = err.to_string();
    let (op, _, _, site, _) = anomaly(err);
    assert_eq!((op, site.as_str()), ("log", "in encoder.layers.3"));
    assert!(
        message.contains("log produced NaN in encoder.layers.3"),
        "{message}"
    );
    // A value that arrives non-finite is reported where it is first used, as passed on.
    let inf = t(&[f64::INFINITY]);
    let (op, _, _, _, from_input) = anomaly(inf.mul_scalar(2.0).unwrap_err());
    assert_eq!(op, "mul");
    assert!(from_input);
}

#[test]
fn a_gradient_is_named_by_the_rule_that_computed_it() {
    let _a = detect_anomaly();
    let x = t(&[0.0, 4.0]).with_requires_grad(true);
    let y = {
        let _s = scope(|| "layers.1".into());
        x.sqrt().unwrap()
    };
    // sqrt(0) = 0 is fine; its gradient 1 / (2 sqrt(0)) is not.
    let Err(err) = y.sum_all().unwrap().backward() else {
        panic!("backward through sqrt(0) passed in anomaly mode");
    };
    let (op, value, shapes, site, from_input) = anomaly(err);
    assert_eq!((op, value), ("div", "inf"));
    assert_eq!(shapes, vec![vec![2], vec![2]]);
    assert_eq!(site, "in the gradient of sqrt (in layers.1)");
    assert!(!from_input);
}

fn log_then_double(x: &[Tensor]) -> Result<Vec<Tensor>> {
    let _s = scope(|| "head".into());
    Ok(vec![x[0].log()?.mul_scalar(2.0)?.sum_all()?])
}

fn sqrt_gradient(x: &[Tensor]) -> Result<Vec<Tensor>> {
    let w = x[0].with_requires_grad(true);
    let y = {
        let _s = scope(|| "layers.0".into());
        w.sqrt()?
    };
    let g = y.sum_all()?.backward()?;
    Ok(vec![g.get(&w).cloned().unwrap_or_else(|| w.zeros_like())])
}

#[test]
fn static_graphs_check_every_node_they_run() {
    let _a = detect_anomaly();
    let good = t(&[1.0, 2.0]);
    for opts in [CompileOptions::NONE, CompileOptions::default()] {
        let mut g = compile(log_then_double, std::slice::from_ref(&good), opts).unwrap();
        assert!(g.run(std::slice::from_ref(&good)).is_ok());
        let err = g.run(&[t(&[1.0, -1.0])]).unwrap_err();
        let message = err.to_string();
        let (op, value, shapes, site, _) = anomaly(err);
        assert_eq!(value, "NaN", "{opts:?}");
        assert!(site.starts_with("in head"), "{opts:?}: {site}");
        if opts == CompileOptions::NONE {
            assert_eq!((op, shapes), ("log", vec![vec![2]]));
        } else {
            // A fused node is named by its last op, with the ops fused into it.
            assert!(message.contains("log"), "{message}");
        }

        let mut g = compile(sqrt_gradient, std::slice::from_ref(&good), opts).unwrap();
        assert!(g.run(std::slice::from_ref(&good)).is_ok());
        let err = g.run(&[t(&[0.0, 1.0])]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("in the gradient of sqrt (in layers.0)"),
            "{opts:?}: {message}"
        );
    }
    drop(_a);
    // Off, the same graph runs through the NaN.
    let mut g = compile(
        log_then_double,
        std::slice::from_ref(&good),
        CompileOptions::NONE,
    )
    .unwrap();
    let out = g.run(&[t(&[1.0, -1.0])]).unwrap();
    assert!(out[0].to_vec_f64()[0].is_nan());
}
