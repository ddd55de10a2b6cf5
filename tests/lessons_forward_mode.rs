//! The claims of lesson 13 (forward against reverse mode), checked on its quick setting by
//! counting passes and work, never by timing.

#[allow(dead_code)]
#[path = "../examples/13-forward-mode.rs"]
mod lesson13;

#[test]
fn lesson13_reverse_wins_for_wide_inputs_forward_for_wide_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson13::Config {
        out: dir.path().to_path_buf(),
        ..lesson13::Config::quick()
    };
    let o = lesson13::run(&cfg).unwrap();
    for sweep in [&o.by_outputs, &o.by_inputs] {
        assert_eq!(sweep.points.len(), cfg.sizes.len());
        for p in &sweep.points {
            // The same Jacobian both ways, from n columns and m rows.
            assert!(p.max_difference < 1e-12, "{p:?}");
            assert_eq!((p.forward_passes, p.reverse_passes), (p.n, p.m));
            // Reverse mode wins by a clear margin for n >= 4m, forward mode for m >= 4n.
            if p.n >= 4 * p.m {
                assert!(p.reverse_work < p.forward_work, "{p:?}");
            }
            if p.m >= 4 * p.n {
                assert!(p.forward_work < p.reverse_work, "{p:?}");
            }
        }
        // The counted work crosses where the work of single passes predicts.
        let measured = sweep
            .measured_crossover
            .expect("the two modes cross in the range");
        let ratio = measured / sweep.predicted_crossover;
        assert!(
            (0.5..=2.0).contains(&ratio),
            "measured crossover {measured}, predicted {}",
            sweep.predicted_crossover
        );
    }
    // With n fixed, forward mode's work grows far slower with m than reverse mode's.
    let first = &o.by_outputs.points[0];
    let last = o.by_outputs.points.last().unwrap();
    let growth = |a: u64, b: u64| b as f64 / a as f64;
    assert!(
        growth(first.forward_work, last.forward_work)
            < growth(first.reverse_work, last.reverse_work) / 2.0,
        "{first:?} {last:?}"
    );
    assert!(o.figure.exists());
}
