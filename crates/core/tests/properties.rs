//! Property tests: broadcasting and reductions agree with naive loops on random shapes, and
//! the gradient of a broadcast is the sum over the broadcast axes.

use ferrograd_core::{DType, Tensor};
use proptest::prelude::*;

/// A shape of rank 0..=4 with sizes 1..=4, and a shape broadcast-compatible with it.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec((1usize..=4, 0u8..3), 0..=4).prop_flat_map(|dims| {
        let full: Vec<usize> = dims.iter().map(|d| d.0).collect();
        // Each axis of the second shape is either the same size or 1; maybe drop leading axes.
        let other: Vec<usize> = dims
            .iter()
            .map(|&(s, k)| if k == 0 { 1 } else { s })
            .collect();
        (Just(full), 0..=other.len(), Just(other))
            .prop_map(|(full, drop, other)| (full, other[drop..].to_vec()))
    })
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as u64 * 7919 + seed * 104729) % 1000) as f64 / 100.0 - 5.0)
        .collect()
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

fn ravel_broadcast(idx: &[usize], shape: &[usize]) -> usize {
    let lead = idx.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (d, &s)| {
        acc * s + if s == 1 { 0 } else { idx[d + lead] }
    })
}

proptest! {
    #[test]
    fn broadcast_binary_matches_naive((a_shape, b_shape) in broadcast_pair(), swap in any::<bool>(), seed in 0u64..100) {
        let (a_shape, b_shape) = if swap { (b_shape, a_shape) } else { (a_shape, b_shape) };
        let av = values(a_shape.iter().product(), seed);
        let bv = values(b_shape.iter().product(), seed + 1);
        let a = Tensor::from_vec(av.clone(), &a_shape).unwrap();
        let b = Tensor::from_vec(bv.clone(), &b_shape).unwrap();
        let c = a.mul(&b).unwrap().sub(&b).unwrap();
        let out_shape = c.shape().to_vec();
        prop_assert_eq!(out_shape.len(), a_shape.len().max(b_shape.len()));
        for (flat, got) in c.to_vec::<f64>().unwrap().into_iter().enumerate() {
            let idx = unravel(flat, &out_shape);
            let (x, y) = (av[ravel_broadcast(&idx, &a_shape)], bv[ravel_broadcast(&idx, &b_shape)]);
            prop_assert_eq!(got, x * y - y);
        }
    }

    #[test]
    fn broadcast_gradient_sums_back((full, small) in broadcast_pair(), seed in 0u64..100) {
        let x = Tensor::from_vec(values(small.iter().product(), seed), &small).unwrap().with_requires_grad(true);
        let w = Tensor::from_vec(values(full.iter().product(), seed + 3), &full).unwrap();
        let g = x.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = g.get(&x).unwrap();
        prop_assert_eq!(gx.shape(), small.as_slice());
        // Naive: sum w over every output position that reads each element of x.
        let mut want = vec![0.0; small.iter().product()];
        let out: Vec<usize> = if full.len() >= small.len() { full.clone() } else { small.clone() };
        let wv = w.to_vec::<f64>().unwrap();
        for flat in 0..out.iter().product() {
            let idx = unravel(flat, &out);
            want[ravel_broadcast(&idx, &small)] += wv[ravel_broadcast(&idx, &full)];
        }
        for (a, b) in gx.to_vec::<f64>().unwrap().iter().zip(&want) {
            prop_assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn reductions_match_naive(shape in prop::collection::vec(1usize..=5, 1..=4), mask in any::<u8>(), keepdim in any::<bool>(), transpose in any::<bool>(), seed in 0u64..100) {
        let mut x = Tensor::from_vec(values(shape.iter().product(), seed), &shape).unwrap();
        if transpose && shape.len() >= 2 {
            x = x.transpose(0, -1).unwrap();
        }
        let shape = x.shape().to_vec();
        let xv = x.to_vec::<f64>().unwrap();
        let dims: Vec<usize> = (0..shape.len()).filter(|d| mask & (1 << d) != 0).collect();
        let dims = if dims.is_empty() { (0..shape.len()).collect() } else { dims };
        let idims: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
        let out_shape: Vec<usize> = shape.iter().enumerate().map(|(d, &s)| if dims.contains(&d) { 1 } else { s }).collect();
        let n_out: usize = out_shape.iter().product();
        let mut sum = vec![0.0; n_out];
        let mut max = vec![f64::NEG_INFINITY; n_out];
        for (flat, &v) in xv.iter().enumerate() {
            let o = ravel_broadcast(&unravel(flat, &shape), &out_shape);
            sum[o] += v;
            max[o] = max[o].max(v);
        }
        let s = x.sum(&idims, keepdim).unwrap();
        let m = x.max(&idims, keepdim).unwrap();
        let expected_rank = if keepdim { shape.len() } else { shape.len() - dims.len() };
        prop_assert_eq!(s.rank(), expected_rank);
        for (a, b) in s.to_vec::<f64>().unwrap().iter().zip(&sum) {
            prop_assert!((a - b).abs() < 1e-9);
        }
        prop_assert_eq!(m.to_vec::<f64>().unwrap(), max);
    }

    #[test]
    fn f32_and_i64_reductions_agree_with_f64(shape in prop::collection::vec(1usize..=6, 1..=3), seed in 0u64..50) {
        let v = values(shape.iter().product(), seed);
        let x = Tensor::from_vec(v, &shape).unwrap();
        let ints = x.mul_scalar(10.0).unwrap().to_dtype(DType::I64).unwrap();
        let want = ints.to_dtype(DType::F64).unwrap().sum(&[0], false).unwrap().to_vec::<f64>().unwrap();
        let got = ints.sum(&[0], false).unwrap().to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        prop_assert_eq!(got, want);
        let s32 = x.to_dtype(DType::F32).unwrap().sum(&[-1], false).unwrap().to_vec_f64();
        let s64 = x.sum(&[-1], false).unwrap().to_vec::<f64>().unwrap();
        for (a, b) in s32.iter().zip(&s64) {
            prop_assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()));
        }
    }
}
