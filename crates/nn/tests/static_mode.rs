//! The same MLP trained for 100 steps eagerly and with its step compiled into a static graph
//! follows the same loss trajectory.

use ferrograd_core::graph::{CompileOptions, StaticFn};
use ferrograd_core::{DType, Rng, Tensor};
use ferrograd_nn::{
    Activation, MlpConfig, Optimizer, Sgd, SgdConfig, classifier_step, grad_store, mlp,
    named_params,
};

fn train(static_mode: bool) -> Vec<f64> {
    let mut rng = Rng::new(7);
    let cfg = MlpConfig {
        input: 20,
        hidden: vec![32, 16],
        output: 5,
        activation: Activation::Tanh,
        dropout: 0.0,
    };
    let model = mlp(&cfg, DType::F64, &mut rng).unwrap();
    let params = named_params(&model);
    let tensors: Vec<Tensor> = params.iter().map(|(_, p)| p.clone()).collect();
    let mut opt = Sgd::new(
        params.clone(),
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        },
    )
    .unwrap();
    let batches: Vec<(Tensor, Tensor)> = (0..10)
        .map(|_| {
            let x = Tensor::randn(&[16, 20], 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let y = Tensor::from_vec(
                (0..16).map(|_| rng.below(5) as i64).collect::<Vec<_>>(),
                &[16],
            )
            .unwrap();
            (x, y)
        })
        .collect();
    let step = classifier_step(&model, &tensors, 0.0);
    let mut compiled = StaticFn::new(&step, CompileOptions::default());
    let mut losses = Vec::new();
    for s in 0..100 {
        let (x, y) = &batches[s % batches.len()];
        let inputs = [x.clone(), y.clone()];
        let out = if static_mode {
            compiled.call(&inputs).unwrap()
        } else {
            step(&inputs).unwrap()
        };
        opt.step(&grad_store(&tensors, &out[2..])).unwrap();
        losses.push(out[0].item().unwrap());
    }
    if static_mode {
        assert_eq!(compiled.traces(), 1, "one shape, one trace");
    }
    losses
}

#[test]
fn mlp_trajectories_match_between_modes() {
    let eager = train(false);
    let stat = train(true);
    assert!(
        eager[99] < eager[0] * 0.5,
        "the MLP learns: {} -> {}",
        eager[0],
        eager[99]
    );
    for (s, (a, b)) in eager.iter().zip(&stat).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
            "step {s}: eager {a} vs static {b}"
        );
    }
}
