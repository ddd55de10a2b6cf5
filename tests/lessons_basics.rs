//! The claims of the basic lessons (01, 03, 04, 05), checked on their quick settings.

#[allow(dead_code)]
#[path = "../examples/01-perceptron.rs"]
mod lesson01;

#[allow(dead_code)]
#[path = "../examples/03-zero-centred.rs"]
mod lesson03;

#[allow(dead_code)]
#[path = "../examples/04-nonlinearity.rs"]
mod lesson04;

#[allow(dead_code)]
#[path = "../examples/05-logistic-vs-mlp.rs"]
mod lesson05;

use ferrograd::data::toy::Gate;

#[test]
fn perceptron_learns_and_or_but_not_xor_mlp_learns_all() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson01::Config {
        out: dir.path().to_path_buf(),
        ..lesson01::Config::quick()
    };
    let o = lesson01::run(&cfg).unwrap();
    for gate in [Gate::And, Gate::Or] {
        let g = o.gate(gate).unwrap();
        assert_eq!(g.perceptron_accuracy, 1.0, "{gate:?}");
        assert!(g.perceptron_converged_at.is_some(), "{gate:?}");
    }
    let xor = o.gate(Gate::Xor).unwrap();
    assert!(xor.perceptron_best <= 0.75, "{}", xor.perceptron_best);
    assert_eq!(xor.perceptron_converged_at, None);
    assert!(o.best_random_line_xor <= 0.75);
    for g in &o.gates {
        assert_eq!(g.mlp_accuracy, 1.0, "{:?}", g.gate);
    }
    assert!(o.figure.exists());
}

#[test]
fn sigmoid_inputs_give_same_sign_gradients_and_tanh_trains_faster() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson03::Config {
        out: dir.path().to_path_buf(),
        ..lesson03::Config::quick()
    };
    let o = lesson03::run(&cfg).unwrap();
    assert_eq!(o.sigmoid.grads.len(), cfg.steps);
    assert_eq!(o.sigmoid.same_sign_fraction, 1.0);
    assert!(
        o.tanh.same_sign_fraction < 0.2,
        "{}",
        o.tanh.same_sign_fraction
    );
    let (s, t) = (o.sigmoid.final_loss(), o.tanh.final_loss());
    assert!(t < s, "tanh {t} vs sigmoid {s}");
    assert!(t < 0.5 * s, "tanh {t} vs sigmoid {s}");
    assert!(o.figure.exists());
}

#[test]
fn deep_linear_network_collapses_and_fails_where_relu_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson04::Config {
        out: dir.path().to_path_buf(),
        ..lesson04::Config::quick()
    };
    let o = lesson04::run(&cfg).unwrap();
    assert!(o.collapse_diff < 1e-12, "{}", o.collapse_diff);
    let (xor, moons) = (&o.sets[0], &o.sets[1]);
    for s in &o.sets {
        assert!(
            s.trained_collapse_diff < 1e-12,
            "{}: {}",
            s.name,
            s.trained_collapse_diff
        );
    }
    assert!(xor.deep_linear <= 0.75 && xor.logistic <= 0.75);
    assert_eq!(xor.deep_relu, 1.0);
    assert!(
        (moons.deep_linear - moons.logistic).abs() <= 0.03,
        "{moons:?}"
    );
    assert!(moons.deep_linear < 0.92, "{moons:?}");
    assert!(moons.deep_relu >= 0.97, "{moons:?}");
    assert!(o.figure.exists());
}

#[test]
fn mlp_beats_logistic_regression_on_moons_and_circles() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson05::Config {
        out: dir.path().to_path_buf(),
        ..lesson05::Config::quick()
    };
    let o = lesson05::run(&cfg).unwrap();
    for s in &o.sets {
        assert!(s.mlp.test >= 0.95, "{s:?}");
        assert!(s.mlp.test > s.logistic.test + 0.08, "{s:?}");
    }
    assert!(o.sets[1].logistic.test < 0.7, "{:?}", o.sets[1]);
    assert!(o.figure.exists());
}
