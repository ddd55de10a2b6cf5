//! Criterion benches of the MNIST-shaped MLP training step (784-256-128-10, ReLU, mean softmax
//! cross-entropy, SGD lr 0.01; forward, backward and update) in eager and static mode, on a
//! rotating pool of 16 pre-generated batches; static mode compiles the whole step, update
//! included (`TrainStep`). `cargo bench -p ferrograd-nn --bench mlp_step`.

use std::cell::RefCell;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferrograd_core::Rng;
use ferrograd_nn::{Sgd, SgdConfig, TrainStep, named_params};
use ferrograd_testkit::fixture::MlpTask;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_sgd_step");
    group.sample_size(10);
    for batch in [1usize, 32, 128, 1024] {
        for static_mode in [false, true] {
            let mut rng = Rng::new(0);
            let task = MlpTask::mnist();
            let model = task.model(&mut rng).expect("model");
            let opt = Sgd::new(
                named_params(&model),
                SgdConfig {
                    lr: 0.01,
                    ..Default::default()
                },
            )
            .expect("sgd");
            let opt = RefCell::new(opt);
            let pool = task.batches(16, batch, &mut rng).expect("batches");
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
