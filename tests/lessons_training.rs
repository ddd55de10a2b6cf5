//! The claims of the lessons on activations, approximation, optimizers and backpropagation
//! (examples 02, 06, 07 and 08), checked on each lesson's quick setting.

#[allow(dead_code)]
#[path = "../examples/02-activations.rs"]
mod lesson02;

#[test]
fn lesson02_autodiff_derivatives_match_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson02::Config {
        out: dir.path().to_path_buf(),
        ..lesson02::Config::quick()
    };
    let outcome = lesson02::run(&cfg).unwrap();
    assert_eq!(outcome.rows.len(), 11);
    for r in &outcome.rows {
        let name = r.curve.activation;
        assert!(
            r.fd_max_error < 1e-6,
            "{name}: autodiff and finite difference differ by {}",
            r.fd_max_error
        );
        // Only the few grid points next to a kink are left out.
        assert!(r.fd_points + 4 >= cfg.points, "{name}: {}", r.fd_points);
    }
    let find = |name: &str| {
        outcome
            .rows
            .iter()
            .find(|r| r.curve.activation.to_string() == name)
            .unwrap()
            .summary
    };
    let sigmoid = find("sigmoid");
    assert!((sigmoid.max_derivative - 0.25).abs() < 1e-12);
    assert!((sigmoid.derivative_at_zero - 0.25).abs() < 1e-12);
    let tanh = find("tanh");
    assert!((tanh.max_derivative - 1.0).abs() < 1e-12);
    // ReLU passes gradients unchanged on the right and blocks them on the left.
    let relu = &outcome.rows[4].curve;
    assert_eq!(relu.derivatives.first(), Some(&0.0));
    assert_eq!(relu.derivatives.last(), Some(&1.0));
    assert!(outcome.figure.is_file());
}

#[allow(dead_code)]
#[path = "../examples/06-universal-approximation.rs"]
mod lesson06;

#[test]
fn lesson06_wider_hidden_layers_approximate_better() {
    use lesson06::Target;
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson06::Config {
        out: dir.path().to_path_buf(),
        ..lesson06::Config::quick()
    };
    assert_eq!(cfg.widths, [1, 8, 64]);
    let outcome = lesson06::run(&cfg).unwrap();
    let err = |t: Target, w: usize| outcome.fit(t, w).unwrap();
    let sin: Vec<f64> = [1, 8, 64]
        .iter()
        .map(|&w| err(Target::Sin, w).max_error)
        .collect();
    assert!(sin[2] < sin[1] && sin[1] < sin[0], "sin max errors {sin:?}");
    assert!(sin[0] > 0.5, "one tanh unit cannot follow a sine: {sin:?}");
    assert!(sin[2] < 0.1, "64 units fit the sine: {sin:?}");
    // The step: no continuous fit comes within 1/2 of the jump, but away from it the wide
    // layer is close, and its RMS error is far below a single unit's.
    let (narrow, wide) = (err(Target::Step, 1), err(Target::Step, 64));
    assert!(wide.max_error >= 0.45, "{}", wide.max_error);
    assert!(wide.max_error_off_jump < 0.2, "{}", wide.max_error_off_jump);
    assert!(wide.rms_error < narrow.rms_error);
    assert!(outcome.figure.is_file());
}

#[allow(dead_code)]
#[path = "../examples/07-optimizers.rs"]
mod lesson07;

#[test]
fn lesson07_every_variant_learns_and_momentum_beats_plain_descent_on_rosenbrock() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson07::Config {
        out: dir.path().to_path_buf(),
        ..lesson07::Config::quick()
    };
    let outcome = lesson07::run(&cfg).unwrap();
    assert_eq!(outcome.regression.len(), 6);
    for r in &outcome.regression {
        assert_eq!(r.losses.len(), cfg.epochs + 1);
        let (first, last) = (r.losses[0], *r.losses.last().unwrap());
        assert!(
            last < 0.1 * first,
            "{}: loss {first} -> {last} did not fall tenfold",
            r.name
        );
    }
    let gd = &outcome.rosenbrock[0];
    assert_eq!(gd.name, "gradient descent");
    assert_eq!(gd.path.len(), cfg.rosenbrock_steps + 1);
    for r in &outcome.rosenbrock[1..] {
        assert!(
            r.distance < 0.5 * gd.distance,
            "{} ends {} from (1, 1), gradient descent {}",
            r.name,
            r.distance,
            gd.distance
        );
        assert!(r.final_loss < gd.final_loss);
    }
    assert!(outcome.figure.is_file());
}

#[allow(dead_code)]
#[path = "../examples/08-backprop-by-hand.rs"]
mod lesson08;

#[test]
fn lesson08_chain_rule_by_hand_matches_autodiff_and_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson08::Config {
        out: dir.path().to_path_buf(),
        ..lesson08::Config::quick()
    };
    let outcome = lesson08::run(&cfg).unwrap();
    let names: Vec<&str> = outcome.gradients.iter().map(|g| g.name).collect();
    assert_eq!(names, ["W1", "b1", "W2", "b2"]);
    let entries: usize = outcome.gradients.iter().map(|g| g.by_hand.len()).sum();
    assert_eq!(entries, 3 * 4 + 4 + 4 * 2 + 2);
    assert!(
        outcome.max_hand_vs_autodiff < 1e-12,
        "{}",
        outcome.max_hand_vs_autodiff
    );
    assert!(
        outcome.max_autodiff_vs_fd < 1e-6,
        "{}",
        outcome.max_autodiff_vs_fd
    );
    // The gradients are not trivially zero.
    let largest = outcome
        .gradients
        .iter()
        .flat_map(|g| g.autodiff.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(largest > 0.1, "{largest}");
    assert!(outcome.figure.is_file());
}
