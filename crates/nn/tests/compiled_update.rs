//! The whole training step compiled into one static graph, the optimizer's update included:
//! the same trajectory as eager mode for every optimizer (with a changing learning rate and
//! gradient clipping, which are run-time inputs and traced ops, not constants), the update
//! written in place through the graph's stores, and no heap allocation per step in steady
//! state beyond the `gemm` crate's packing buffers and the handles of the returned tensors.

use std::cell::RefCell;

use ferrograd_core::counting_alloc::{CountingAllocator, Scope};
use ferrograd_core::graph::NodeKind;
use ferrograd_core::{DType, Rng, Tensor, ThreadPool};
use ferrograd_nn::{
    Activation, Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, RmsProp, RmsPropConfig,
    Sequential, Sgd, SgdConfig, TrainStep, named_params,
};
use ferrograd_testkit::fixture::MlpTask;

// Per thread, so tests running side by side do not count each other's allocations.
#[global_allocator]
static GLOBAL: CountingAllocator<std::alloc::System> =
    CountingAllocator::new(std::alloc::System, Scope::Thread);

/// Allocations made by this thread so far.
fn allocations() -> u64 {
    GLOBAL.counts().allocations
}

/// The MLP 12-16-8-4 (tanh) these tests train, in `dtype`.
fn task(dtype: DType) -> MlpTask {
    MlpTask {
        input: 12,
        hidden: vec![16, 8],
        classes: 4,
        activation: Activation::Tanh,
        dtype,
    }
}

fn model(dtype: DType) -> Sequential {
    task(dtype).model(&mut Rng::new(3)).unwrap()
}

/// Four batches of eight samples.
fn batches(dtype: DType) -> Vec<[Tensor; 2]> {
    task(dtype).batches(4, 8, &mut Rng::new(11)).unwrap()
}

type MakeOpt = fn(Vec<(String, Tensor)>) -> Box<dyn Optimizer>;

/// Losses of 30 steps with a learning rate halved every 10 steps; the final weights.
fn trajectory(make: MakeOpt, compile: bool, clip: Option<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let m = model(DType::F64);
    let opt = RefCell::new(make(named_params(&m)));
    let data = batches(DType::F64);
    let mut step = TrainStep::new(&m, &opt, 0.0, clip, compile);
    let mut losses = Vec::new();
    for s in 0..30 {
        if s % 10 == 0 && s > 0 {
            let lr = opt.borrow().learning_rate();
            opt.borrow_mut().set_learning_rate(lr * 0.5);
        }
        let [x, y] = &data[s % data.len()];
        losses.push(step.run(x, y).unwrap()[0].item().unwrap());
    }
    if compile {
        assert_eq!(step.traces(), 1, "one batch shape, one trace");
    }
    assert_eq!(opt.borrow().steps(), 30);
    let weights = named_params(&m)
        .iter()
        .map(|(_, p)| p.to_vec::<f64>().unwrap())
        .collect();
    (losses, weights)
}

fn optimizers() -> Vec<(&'static str, MakeOpt)> {
    vec![
        ("sgd", |p| {
            Box::new(
                Sgd::new(
                    p,
                    SgdConfig {
                        lr: 0.1,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("sgd nesterov + weight decay", |p| {
            let cfg = SgdConfig {
                lr: 0.05,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-3,
                ..Default::default()
            };
            Box::new(Sgd::new(p, cfg).unwrap())
        }),
        ("adam", |p| {
            Box::new(
                Adam::new(
                    p,
                    AdamConfig {
                        lr: 0.01,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
        ("adamw", |p| {
            Box::new(
                Adam::new(
                    p,
                    AdamConfig {
                        lr: 0.01,
                        ..AdamConfig::adamw()
                    },
                )
                .unwrap(),
            )
        }),
        ("rmsprop centered + momentum", |p| {
            let cfg = RmsPropConfig {
                lr: 0.005,
                centered: true,
                momentum: 0.5,
                ..Default::default()
            };
            Box::new(RmsProp::new(p, cfg).unwrap())
        }),
        ("adagrad", |p| {
            let cfg = AdagradConfig {
                lr: 0.05,
                lr_decay: 0.01,
                ..Default::default()
            };
            Box::new(Adagrad::new(p, cfg).unwrap())
        }),
        ("adamw amsgrad", |p| {
            let cfg = AdamConfig {
                lr: 0.01,
                amsgrad: true,
                ..AdamConfig::adamw()
            };
            Box::new(Adam::new(p, cfg).unwrap())
        }),
    ]
}

#[test]
fn compiled_updates_follow_the_eager_trajectory() {
    for (name, make) in optimizers() {
        for clip in [None, Some(0.5)] {
            let (eager, w_eager) = trajectory(make, false, clip);
            let (stat, w_stat) = trajectory(make, true, clip);
            assert!(
                eager[29] < eager[0],
                "{name}: learns ({} -> {})",
                eager[0],
                eager[29]
            );
            for (s, (a, b)) in eager.iter().zip(&stat).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                    "{name}, clip {clip:?}, step {s}: eager {a} vs compiled {b}"
                );
            }
            for (a, b) in w_eager.iter().flatten().zip(w_stat.iter().flatten()) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                    "{name}: weights differ"
                );
            }
        }
    }
}

/// Also guards the fast path of the compiled Adam update: the fused kernel recognises the exact
/// op sequences `optim/adam.rs` emits (the two moving averages and the step) and runs each by a
/// hand-written loop; should the emitted ops change, `update_loops` falls below three per parameter.
#[test]
fn the_update_is_stored_and_fused_and_allocates_nothing() {
    let pool = ThreadPool::new(1).unwrap();
    pool.install(|| {
        let m = model(DType::F32);
        let params = named_params(&m).len();
        let opt = RefCell::new(Adam::new(named_params(&m), AdamConfig::default()).unwrap());
        let data = batches(DType::F32);
        let mut step = TrainStep::new(&m, &opt, 0.0, None, true);
        for s in 0..3 {
            let [x, y] = &data[s % data.len()];
            step.run(x, y).unwrap();
        }
        let [x, y] = &data[0];
        let graph = step.compiled(x, y).unwrap().graph().clone();
        // Six parameters, each with a weight, exp_avg and exp_avg_sq written in place.
        assert_eq!(params, 6);
        assert_eq!(graph.stores.len(), 3 * params, "{graph}");
        let fused_stores = graph
            .stores
            .iter()
            .filter(|&&(_, v)| matches!(graph.nodes[v].kind, NodeKind::Fused { .. }))
            .count();
        assert_eq!(
            fused_stores,
            3 * params,
            "every update is one fused loop:\n{graph}"
        );
        let memory = step.compiled(x, y).unwrap().memory();
        assert_eq!(
            memory.in_place,
            3 * params,
            "every update written in place: {memory:?}"
        );
        // Each weight's moments and the weight itself run as one pass, each by its loop: the
        // fast path taken by every parameter.
        assert_eq!(memory.grouped, 2 * params, "{memory:?}");
        assert_eq!(memory.update_loops, 3 * params, "{memory:?}");
        let matmuls = graph.to_string().matches("matmul").count() as u64;
        let before = allocations();
        for s in 0..20 {
            let [x, y] = &data[s % data.len()];
            step.run(x, y).unwrap();
        }
        let per_step = (allocations() - before) / 20;
        // The graph itself allocates only gemm's packing buffers (at most 2 per product); handing
        // out the two result tensors takes 3 small allocations (their handles and the Vec).
        assert!(
            per_step <= 2 * matmuls + 3,
            "{per_step} allocations per step; gemm's packing buffers and the results allow {}",
            2 * matmuls + 3
        );
    });
}

#[test]
fn optimizers_with_a_compiled_update_stay_send() {
    fn send<T: Send>() {}
    send::<Adam>();
    send::<Sgd>();
}

/// Also guards the fast path of the compiled SGD update: the executor folds the exact sequence
/// `w - g * lr` that `optim/sgd.rs` emits, for a weight whose gradient is a matrix product, into
/// that product; should the emitted ops change, `product_updates` falls below the number of
/// weight matrices.
#[test]
fn plain_sgd_accumulates_the_weight_gradient_product_into_the_weights() {
    let m = model(DType::F32);
    let sgd = SgdConfig {
        lr: 0.1,
        ..Default::default()
    };
    let opt = RefCell::new(Sgd::new(named_params(&m), sgd).unwrap());
    let data = batches(DType::F32);
    let mut step = TrainStep::new(&m, &opt, 0.0, None, true);
    let mut losses = Vec::new();
    for s in 0..12 {
        let [x, y] = &data[s % data.len()];
        losses.push(step.run(x, y).unwrap()[0].item().unwrap());
    }
    let [x, y] = &data[0];
    let memory = step.compiled(x, y).unwrap().memory();
    // Every weight matrix; the biases' gradients are sums, not products.
    let weights = named_params(&m)
        .iter()
        .filter(|(_, p)| p.shape().len() == 2)
        .count();
    assert_eq!(weights, 3);
    assert_eq!(memory.product_updates, weights, "{memory:?}");
    // The same trajectory as eager mode, to rounding (the fused product rounds once less).
    let m2 = model(DType::F32);
    let opt2 = RefCell::new(Sgd::new(named_params(&m2), sgd).unwrap());
    let mut eager = TrainStep::new(&m2, &opt2, 0.0, None, false);
    for (s, l) in losses.iter().enumerate() {
        let [x, y] = &data[s % data.len()];
        let e = eager.run(x, y).unwrap()[0].item().unwrap();
        assert!(
            (e - l).abs() <= 1e-5 * (1.0 + e.abs()),
            "step {s}: eager {e}, compiled {l}"
        );
    }
}
