//! Criterion benches of the MNIST-shaped MLP training step (784-256-128-10, ReLU, mean softmax
//! cross-entropy, SGD lr 0.01; forward, backward and update) in eager and static mode, on a
//! rotating pool of 16 pre-generated batches; static mode compiles the whole step, update
//! included (`TrainStep`). `cargo bench -p ferrograd-nn --bench mlp_step`.

use std::cell::RefCell;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferrograd_core::{DType, Rng, Tensor};
use ferrograd_nn::{Activation, MlpConfig, Sgd, SgdConfig, TrainStep, mlp, named_params};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_sgd_step");
    group.sample_size(10);
    for batch in [1usize, 32, 128, 1024] {
        for static_mode in [false, true] {
            let mut rng = Rng::new(0);
            let cfg = MlpConfig {
                input: 784,
                hidden: vec![256, 128],
                output: 10,
                activation: Activation::Relu,
                dropout: 0.0,
            };
            let model = mlp(&cfg, DType::F32, &mut rng).expect("model");
            let opt = Sgd::new(
                named_params(&model),
                SgdConfig {
                    lr: 0.01,
                    ..Default::default()
                },
            )
            .expect("sgd");
            let opt = RefCell::new(opt);
            let pool: Vec<[Tensor; 2]> = (0..16)
                .map(|_| {
                    let x =
                        Tensor::randn(&[batch, 784], 0.0, 1.0, DType::F32, &mut rng).expect("x");
                    let y: Vec<i64> = (0..batch).map(|_| rng.below(10) as i64).collect();
                    [x, Tensor::from_vec(y, &[batch]).expect("y")]
                })
                .collect();
            let mut step = TrainStep::new(&model, &opt, 0.0, None, static_mode);
            let mut k = 0;
            let mode = if static_mode { "static" } else { "eager" };
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(mode, batch), |b| {
                b.iter(|| {
                    let [x, y] = &pool[k % pool.len()];
                    k += 1;
                    step.run(x, y).expect("step")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
