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
