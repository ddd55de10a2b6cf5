//! Criterion benchmarks of ferrograd's CPU kernels: f32 GEMM, elementwise ops and reductions.
//!
//! Run everything (a few minutes on a 2-core machine):
//!
//! ```text
//! cargo bench -p ferrograd-core --bench kernels
//! ```
//!
//! or one group, e.g. `cargo bench -p ferrograd-core --bench kernels -- matmul_f32`.
//!
//! Every measured region runs inside a ferrograd [`ThreadPool`]: matmul at 1 and 2 threads,
//! the elementwise and reduction groups at the machine's available parallelism (the thread
//! count is part of each benchmark id). Matmul reports FLOP rates (`2 n^3` per product);
//! elementwise and reduction groups report elements per second of input.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use ferrograd_core::{DType, Rng, Tensor, ThreadPool};

/// Matmul sizes (square `n x n` times `n x n`).
const MATMUL_SIZES: [usize; 4] = [256, 512, 1024, 2048];
/// Thread counts for matmul.
const MATMUL_THREADS: [usize; 2] = [1, 2];
/// Element count of the 1-D elementwise / reduction inputs.
const ELEMS: usize = 1 << 20;
/// Side of the square 2-D inputs (`ROWS x ROWS = ELEMS`).
const ROWS: usize = 1024;

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, -1.0, 1.0, DType::F32, &mut Rng::new(seed))
        .expect("random f32 tensor")
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPool::new(threads).expect("thread pool")
}

/// Times `iters` calls of `op` inside `pool`, so every kernel uses exactly its threads and the
/// cost of entering the pool is paid once per sample, not once per call.
fn timed_in(pool: &ThreadPool, iters: u64, op: &(dyn Fn() -> Tensor + Sync)) -> Duration {
    pool.install(|| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(op());
        }
        start.elapsed()
    })
}

/// Threads for the elementwise and reduction groups.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn bench_matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_f32");
    for &n in &MATMUL_SIZES {
        let a = uniform(&[n, n], 1);
        let b = uniform(&[n, n], 2);
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        if n >= 2048 {
            // One product takes a good fraction of a second: take the minimum of 10 samples of
            // one iteration each, and give them enough time not to trigger criterion's warning.
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(8));
        } else {
            group
                .sampling_mode(SamplingMode::Auto)
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        }
        for &threads in &MATMUL_THREADS {
            let pool = pool(threads);
            group.bench_with_input(
                BenchmarkId::new(format!("t{threads}"), n),
                &n,
                |bench, _| {
                    bench.iter_custom(|iters| {
                        timed_in(&pool, iters, &|| a.matmul(&b).expect("matmul"))
                    })
                },
            );
        }
    }
    group.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let threads = default_threads();
    let pool = pool(threads);
    let x = uniform(&[ROWS, ROWS], 3);
    let bias = uniform(&[ROWS], 4);
    let mut group = c.benchmark_group("elementwise_f32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(ELEMS as u64));
    let cases: [(&str, &(dyn Fn() -> Tensor + Sync)); 4] = [
        ("add_bias_row_1024x1024", &|| x.add(&bias).expect("add")),
        ("exp_1M", &|| x.exp().expect("exp")),
        ("sigmoid_1M", &|| x.sigmoid().expect("sigmoid")),
        ("relu_1M", &|| x.relu().expect("relu")),
    ];
    for (name, op) in cases {
        group.bench_function(BenchmarkId::new(name, format!("t{threads}")), |bench| {
            bench.iter_custom(|iters| timed_in(&pool, iters, op))
        });
    }
    group.finish();
}

fn bench_reduce(c: &mut Criterion) {
    let threads = default_threads();
    let pool = pool(threads);
    let flat = uniform(&[ELEMS], 5);
    let x = uniform(&[ROWS, ROWS], 6);
    let mut group = c.benchmark_group("reduce_f32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(ELEMS as u64));
    let cases: [(&str, &(dyn Fn() -> Tensor + Sync)); 4] = [
        ("sum_all_1M", &|| flat.sum_all().expect("sum_all")),
        ("sum_axis0_1024x1024", &|| {
            x.sum(&[0], false).expect("sum axis 0")
        }),
        ("sum_axis1_1024x1024", &|| {
            x.sum(&[1], false).expect("sum axis 1")
        }),
        ("argmax_last_1024x1024", &|| {
            x.argmax(-1, false).expect("argmax")
        }),
    ];
    for (name, op) in cases {
        group.bench_function(BenchmarkId::new(name, format!("t{threads}")), |bench| {
            bench.iter_custom(|iters| timed_in(&pool, iters, op))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matmul, bench_elementwise, bench_reduce);
criterion_main!(benches);
