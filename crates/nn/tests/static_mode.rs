//! The same MLP trained for 100 steps eagerly and with its step compiled into a static graph
//! follows the same loss trajectory.

use ferrograd_core::graph::{CompileOptions, StaticFn};
use ferrograd_core::{DType, Rng, Tensor};
use ferrograd_nn::{
    Activation, Optimizer, Sgd, SgdConfig, classifier_step, grad_store, named_params,
};
use ferrograd_testkit::fixture::MlpTask;

fn train(static_mode: bool) -> Vec<f64> {
    let mut rng = Rng::new(7);
    let task = MlpTask {
        input: 20,
        hidden: vec![32, 16],
        classes: 5,
        activation: Activation::Tanh,
        dtype: DType::F64,
    };
    let model = task.model(&mut rng).unwrap();
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
    let batches = task.batches(10, 16, &mut rng).unwrap();
    let step = classifier_step(&model, &tensors, 0.0);
    let mut compiled = StaticFn::new(&step, CompileOptions::default());
    let mut losses = Vec::new();
    for s in 0..100 {
        let inputs = &batches[s % batches.len()];
        let out = if static_mode {
            compiled.call(inputs).unwrap()
        } else {
            step(inputs).unwrap()
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
