//! A compiled training step (forward, loss, backward) allocates nothing in steady state: the
//! memory plan gives every value a workspace buffer, allocated on the first run. Counted with a
//! counting global allocator; the only allocations left are the `gemm` crate's packing
//! buffers, at most two per matrix product. Every parameter must get a gradient: a missing one
//! fails the step rather than being replaced by zeros.

use ferrograd_core::counting_alloc::{CountingAllocator, Scope};
use ferrograd_core::graph::{CompileOptions, NodeKind, compile};
use ferrograd_core::op::Op;
use ferrograd_core::{DType, Result, Rng, Tensor, ThreadPool};
use ferrograd_testkit::fixture::{gradients, two_layer_step};

// Per thread, so tests running side by side do not count each other's allocations.
#[global_allocator]
static GLOBAL: CountingAllocator<std::alloc::System> =
    CountingAllocator::new(std::alloc::System, Scope::Thread);

/// Allocations made by this thread so far.
fn allocations() -> u64 {
    GLOBAL.counts().allocations
}

#[test]
fn a_compiled_mlp_step_allocates_nothing_in_steady_state() {
    let pool = ThreadPool::new(1).unwrap();
    pool.install(|| {
        let mut rng = Rng::new(0);
        let mut p = |s: &[usize]| {
            Tensor::randn(s, 0.0, 0.05, DType::F32, &mut rng)
                .unwrap()
                .with_requires_grad(true)
        };
        let step = two_layer_step([p(&[64, 32]), p(&[64]), p(&[10, 64]), p(&[10])]);
        let x = Tensor::randn(&[16, 32], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        let y = Tensor::from_vec((0..16).map(|i| i % 10).collect::<Vec<i64>>(), &[16]).unwrap();
        let inputs = [x, y];
        let mut compiled = compile(&step, &inputs, CompileOptions::default()).unwrap();
        let matmuls = compiled
            .graph()
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Op { op: Op::MatMul, .. }))
            .count() as u64;
        let plan = compiled.memory();
        assert!(plan.buffers < plan.computed, "buffers are reused: {plan:?}");
        assert!(plan.bytes < plan.bytes_without_reuse, "{plan:?}");
        compiled.execute(&inputs).unwrap(); // allocates the workspace
        let before = allocations();
        for _ in 0..10 {
            compiled.execute(&inputs).unwrap();
        }
        let per_step = (allocations() - before) / 10;
        // The gemm crate allocates up to two packing buffers per product; nothing else
        // allocates (the next test has no products and allocates nothing at all).
        assert!(
            per_step <= 2 * matmuls,
            "{per_step} allocations per step ({matmuls} matrix products)"
        );

        // The results are still the eager ones.
        let eager = step(&inputs).unwrap();
        for (k, e) in eager.iter().enumerate() {
            let s = compiled.output(k, &inputs).unwrap();
            for (a, b) in s
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .zip(e.to_vec::<f32>().unwrap())
            {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "output {k}: {a} vs {b}"
                );
            }
        }
        // Eager mode, for comparison, allocates hundreds of times per step.
        let before = allocations();
        step(&inputs).unwrap();
        let eager_allocs = allocations() - before;
        assert!(eager_allocs > 10 * matmuls.max(1), "{eager_allocs}");
        eprintln!(
            "allocations per step: eager {eager_allocs}, static {per_step}; memory plan {plan:?}"
        );
    });
}

#[test]
fn a_compiled_step_without_matrix_products_allocates_nothing_at_all() {
    let pool = ThreadPool::new(1).unwrap();
    pool.install(|| {
        let mut rng = Rng::new(1);
        let w = Tensor::randn(&[10], 0.0, 1.0, DType::F64, &mut rng)
            .unwrap()
            .with_requires_grad(true);
        let b = Tensor::randn(&[10], 0.0, 1.0, DType::F64, &mut rng)
            .unwrap()
            .with_requires_grad(true);
        let step = |i: &[Tensor]| -> Result<Vec<Tensor>> {
            let logits = i[0].mul(&w)?.add(&b)?.tanh()?;
            let loss = logits.softmax_cross_entropy(&i[1])?.mean(&[], false)?;
            let g = loss.backward()?;
            let mut out = vec![loss];
            out.extend(gradients(&g, &[&w, &b])?);
            Ok(out)
        };
        let x = Tensor::randn(&[32, 10], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let y = Tensor::from_vec((0..32).map(|i| i % 10).collect::<Vec<i64>>(), &[32]).unwrap();
        let inputs = [x, y];
        let mut compiled = compile(step, &inputs, CompileOptions::default()).unwrap();
        compiled.execute(&inputs).unwrap();
        let before = allocations();
        for _ in 0..10 {
            compiled.execute(&inputs).unwrap();
        }
        assert_eq!(allocations() - before, 0);
        let eager = step(&inputs).unwrap();
        for (k, e) in eager.iter().enumerate() {
            assert_eq!(
                compiled
                    .output(k, &inputs)
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap(),
                e.to_vec::<f64>().unwrap()
            );
        }
    });
}

#[test]
fn a_compiled_convolutional_step_allocates_only_gemm_packing() {
    use ferrograd_core::BatchNormOptions;
    use ferrograd_core::op::{Conv2dParams, Pool2dParams};
    let pool = ThreadPool::new(1).unwrap();
    pool.install(|| {
        let mut rng = Rng::new(2);
        let mut p = |s: &[usize]| {
            Tensor::randn(s, 0.0, 0.2, DType::F32, &mut rng)
                .unwrap()
                .with_requires_grad(true)
        };
        let params = [
            p(&[4, 1, 3, 3]),
            p(&[4]),
            p(&[6, 4, 3, 3]),
            p(&[6]),
            p(&[6]),
            p(&[10, 6]),
        ];
        let running = (
            Tensor::zeros(&[6], DType::F32).unwrap(),
            Tensor::ones(&[6], DType::F32).unwrap(),
        );
        let step = |i: &[Tensor]| -> Result<Vec<Tensor>> {
            let [w1, b1, w2, g2, b2, w3] = &params;
            let h = i[0].conv2d(w1, Some(b1), Conv2dParams::default().padding(1))?;
            let h = h.relu()?.max_pool2d(Pool2dParams::new(2))?;
            let h = h.conv2d(w2, None, Conv2dParams::default())?;
            let opts = BatchNormOptions {
                running: Some((&running.0, &running.1)),
                ..Default::default()
            };
            let h = h.batch_norm(Some((g2, b2)), opts)?.relu()?;
            let logits = h
                .adaptive_avg_pool2d([1, 1])?
                .flatten(1, -1)?
                .matmul(&w3.t()?)?;
            let loss = logits.softmax_cross_entropy(&i[1])?.mean(&[], false)?;
            let g = loss.backward()?;
            let mut out = vec![loss];
            out.extend(gradients(&g, &params.iter().collect::<Vec<_>>())?);
            Ok(out)
        };
        let x = Tensor::randn(&[3, 1, 8, 8], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        let y = Tensor::from_vec(vec![1i64, 7, 3], &[3]).unwrap();
        let inputs = [x, y];
        let mut compiled = compile(step, &inputs, CompileOptions::default()).unwrap();
        // Each matrix product is one gemm call; a convolution op makes one per sample and
        // group.
        let gemm_calls: u64 = compiled
            .graph()
            .nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Op { op: Op::MatMul, .. } => 1,
                NodeKind::Op {
                    op: Op::Conv2d(p), ..
                }
                | NodeKind::Op {
                    op: Op::Conv2dInputGrad { conv: p, .. },
                    ..
                }
                | NodeKind::Op {
                    op: Op::Conv2dWeightGrad { conv: p, .. },
                    ..
                } => 3 * p.groups as u64,
                _ => 0,
            })
            .sum();
        assert!(gemm_calls > 0);
        compiled.execute(&inputs).unwrap();
        let before = allocations();
        for _ in 0..5 {
            compiled.execute(&inputs).unwrap();
        }
        let per_step = (allocations() - before) / 5;
        assert!(
            per_step <= 2 * gemm_calls,
            "{per_step} allocations per step ({gemm_calls} gemm calls)"
        );
        eprintln!("allocations per step: {per_step} for {gemm_calls} gemm calls");
    });
}
