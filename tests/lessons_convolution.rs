//! The claims of lesson 12 (convolution), checked on its quick setting.

#[allow(dead_code)]
#[path = "../examples/12-convolution.rs"]
mod lesson12;

#[test]
fn lesson12_cnn_matches_the_mlp_with_several_times_fewer_parameters_and_copes_with_shifts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson12::Config {
        out: dir.path().to_path_buf(),
        ..lesson12::Config::quick()
    };
    let o = lesson12::run(&cfg).unwrap();
    let (mlp, cnn) = (&o.mlps[0], &o.cnn);
    // MLP 64-128-10 against conv 1->8, conv 8->16, linear 64->10.
    assert_eq!(mlp.parameters, 64 * 128 + 128 + 128 * 10 + 10);
    assert_eq!(
        cnn.parameters,
        (8 * 9 + 8) + (16 * 8 * 9 + 16) + (64 * 10 + 10)
    );
    assert!(
        mlp.parameters >= 4 * cnn.parameters,
        "{} vs {} parameters",
        mlp.parameters,
        cnn.parameters
    );
    assert!(mlp.test_accuracy >= 0.95, "MLP {}", mlp.test_accuracy);
    assert!(
        cnn.test_accuracy >= mlp.test_accuracy - 0.03,
        "CNN {} vs MLP {}",
        cnn.test_accuracy,
        mlp.test_accuracy
    );
    // Fewer parameters, more work: every convolution weight is used at many positions.
    assert!(cnn.mult_adds > mlp.mult_adds);
    // Digits moved by one pixel: every model suffers, the CNN least, whatever the MLP's size.
    for m in &o.mlps {
        assert!(m.shifted_accuracy < m.test_accuracy - 0.2, "{m:?}");
        assert!(
            cnn.shifted_accuracy >= m.shifted_accuracy + 0.05,
            "CNN {} vs {} {} on shifted digits",
            cnn.shifted_accuracy,
            m.name,
            m.shifted_accuracy
        );
    }

    // The first convolution is a dense matrix, mostly zeros, with tied weights.
    let u = &o.unrolled;
    assert_eq!(u.shape, [8 * 64, 64]);
    assert_eq!(u.max_row_nonzeros, 9);
    assert!(
        (8 * 8..=8 * 9).contains(&u.distinct_weights),
        "{}",
        u.distinct_weights
    );
    assert!(u.max_difference < 1e-4, "{}", u.max_difference);
    assert_eq!(
        (u.dense_parameters, u.conv_parameters),
        (64 * 512 + 512, 80)
    );
    assert!(o.shift_difference < 1e-5, "{}", o.shift_difference);

    assert!(o.filters_figure.is_file());
    assert!(o.maps_figure.is_file());
}
