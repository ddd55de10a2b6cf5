//! Results do not depend on the thread count: kernels split work in fixed-size pieces.

use ferrograd_core::{DType, Rng, Tensor, ThreadPool};

#[test]
fn large_kernels_give_identical_results_on_1_and_2_threads() {
    let mut rng = Rng::new(5);
    let x = Tensor::randn(&[300, 1000], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let b = Tensor::randn(&[1000], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let w = Tensor::randn(&[1000, 64], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let run = |threads: usize| {
        ThreadPool::new(threads).unwrap().install(|| {
            let y = x.add(&b).unwrap().tanh().unwrap();
            vec![
                y.sum_all().unwrap().to_vec::<f32>().unwrap(),
                y.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(),
                y.max(&[1], false).unwrap().to_vec::<f32>().unwrap(),
                y.matmul(&w).unwrap().to_vec::<f32>().unwrap(),
            ]
        })
    };
    let (one, two) = (run(1), run(2));
    for (a, b) in one[..3].iter().zip(&two[..3]) {
        assert_eq!(a, b);
    }
    // GEMM blocks differently per thread count; the sums agree to rounding.
    for (a, b) in one[3].iter().zip(&two[3]) {
        assert!((a - b).abs() <= 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

#[test]
fn random_tensors_are_reproducible() {
    let a = Tensor::randn(&[1000], 0.0, 1.0, DType::F64, &mut Rng::new(1)).unwrap();
    let b = ThreadPool::new(2)
        .unwrap()
        .install(|| Tensor::randn(&[1000], 0.0, 1.0, DType::F64, &mut Rng::new(1)).unwrap());
    assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    let mean = a.mean(&[], false).unwrap().item().unwrap();
    assert!(mean.abs() < 0.1, "{mean}");
}

#[test]
fn flushing_pools_flush_subnormals_and_plain_pools_keep_them() {
    use ferrograd_core::{DType, Tensor, ThreadPool};
    let tiny = Tensor::full(1e-30, &[4], DType::F32).unwrap();
    let scale = Tensor::full(1e-10, &[4], DType::F32).unwrap();
    let product =
        |pool: &ThreadPool| pool.install(|| tiny.mul(&scale).unwrap().to_vec::<f32>().unwrap());
    let flushed = product(&ThreadPool::flushing_denormals(1).unwrap());
    let kept = product(&ThreadPool::new(1).unwrap());
    // The caller's own thread is left as it was.
    let here = tiny.mul(&scale).unwrap().to_vec::<f32>().unwrap();
    assert!(here.iter().all(|&v| v > 0.0), "{here:?}");
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(flushed, vec![0.0; 4]);
    }
    assert!(
        kept.iter().all(|&v| v > 0.0 && v < f32::MIN_POSITIVE),
        "{kept:?}"
    );
}

/// `a b` for row-major `[m, k]` and `[k, n]` data, by the definition.
fn naive_product(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    out
}

#[test]
fn products_cut_into_bands_over_threads_match_the_definition() {
    let mut rng = Rng::new(11);
    // (m, k, n): cut by rows (m >= n) and by columns (n > m), with sides that are not a
    // multiple of the band's tile, and a product with fewer rows than the tile.
    for (m, k, n) in [(301, 50, 37), (37, 50, 301), (3, 90, 700), (130, 129, 128)] {
        // `a` is read through a transposed view, so both operand layouts are exercised.
        let at = Tensor::randn(&[k, m], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let b = Tensor::randn(&[k, n], 0.0, 1.0, DType::F64, &mut rng).unwrap();
        let a = at.t().unwrap();
        let want = naive_product(
            &a.contiguous().unwrap().to_vec::<f64>().unwrap(),
            &b.to_vec::<f64>().unwrap(),
            m,
            k,
            n,
        );
        for threads in [1, 2, 3] {
            let got = ThreadPool::new(threads).unwrap().install(|| {
                // A freed block of NaNs of the output's size, which the allocator may hand to
                // the product's output: the product writes every element without reading it.
                drop(std::hint::black_box(vec![f64::NAN; m * n]));
                a.matmul(&b).unwrap().to_vec::<f64>().unwrap()
            });
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-10 * (1.0 + w.abs()),
                    "({m}, {k}, {n}) on {threads} threads, element {i}: {g} vs {w}"
                );
            }
        }
    }
}
