//! Property tests: broadcasting, reductions and convolutions (with their gradients) agree
//! with naive loops on random shapes, and the gradient of a broadcast is the sum over the
//! broadcast axes.

use ferrograd_core::op::Conv2dParams;
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

/// A convolution's sizes: input `[n, c, h, w]`, `o` output channels, kernel, stride,
/// padding, dilation and groups.
#[derive(Debug, Clone)]
struct ConvCase {
    x: [usize; 4],
    o: usize,
    k: [usize; 2],
    p: Conv2dParams,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=40, 1usize..=3, 1usize..=3),
        (1usize..=9, 1usize..=9),
        (1usize..=4, 1usize..=4),
        (
            (1usize..=3, 1usize..=3),
            (0usize..=2, 0usize..=2),
            (1usize..=2, 1usize..=2),
        ),
    )
        .prop_filter_map(
            "the window fits the padded input",
            |((n, cg, g), (h, w), (og, k), (s, p, d))| {
                let kernel = [k.min(3), (k + 1).min(4)];
                let span = |k: usize, d: usize| (k - 1) * d + 1;
                (span(kernel[0], d.0) <= h + 2 * p.0 && span(kernel[1], d.1) <= w + 2 * p.1).then(
                    || ConvCase {
                        x: [n, cg * g, h, w],
                        o: og * g,
                        k: kernel,
                        p: Conv2dParams {
                            stride: [s.0, s.1],
                            padding: [p.0, p.1],
                            dilation: [d.0, d.1],
                            groups: g,
                        },
                    },
                )
            },
        )
}

/// `y = conv2d(x, w)` and the gradients of `sum(y * dy)`, by the definition's loops.
fn naive_conv(c: &ConvCase, x: &[f64], w: &[f64], dy: &[f64]) -> [Vec<f64>; 3] {
    let [n, ch, h, wd] = c.x;
    let [kh, kw] = c.k;
    let (cg, og) = (ch / c.p.groups, c.o / c.p.groups);
    let out = |size: usize, k: usize, i: usize| {
        (size + 2 * c.p.padding[i] - (k - 1) * c.p.dilation[i] - 1) / c.p.stride[i] + 1
    };
    let (ho, wo) = (out(h, kh, 0), out(wd, kw, 1));
    let (mut y, mut dx, mut dw) = (
        vec![0.0; n * c.o * ho * wo],
        vec![0.0; x.len()],
        vec![0.0; w.len()],
    );
    for (b, oc, oh, ow, ci, ki, kj) in itertools_free(n, c.o, ho, wo, cg, kh, kw) {
        let ih = (oh * c.p.stride[0] + ki * c.p.dilation[0]) as isize - c.p.padding[0] as isize;
        let iw = (ow * c.p.stride[1] + kj * c.p.dilation[1]) as isize - c.p.padding[1] as isize;
        let wi = ((oc * cg + ci) * kh + ki) * kw + kj;
        let yi = ((b * c.o + oc) * ho + oh) * wo + ow;
        if ih < 0 || iw < 0 || ih as usize >= h || iw as usize >= wd {
            // Zero padding: a zero input, multiplied like any other.
            y[yi] += 0.0 * w[wi];
            dw[wi] += dy[yi] * 0.0;
            continue;
        }
        let xi = ((b * ch + (oc / og) * cg + ci) * h + ih as usize) * wd + iw as usize;
        y[yi] += x[xi] * w[wi];
        dx[xi] += dy[yi] * w[wi];
        dw[wi] += dy[yi] * x[xi];
    }
    [y, dx, dw]
}

/// Every index of the seven nested loops of a convolution.
fn itertools_free(
    n: usize,
    o: usize,
    ho: usize,
    wo: usize,
    cg: usize,
    kh: usize,
    kw: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize, usize, usize, usize)> {
    (0..n).flat_map(move |b| {
        (0..o).flat_map(move |oc| {
            (0..ho).flat_map(move |oh| {
                (0..wo).flat_map(move |ow| {
                    (0..cg).flat_map(move |ci| {
                        (0..kh)
                            .flat_map(move |ki| (0..kw).map(move |kj| (b, oc, oh, ow, ci, ki, kj)))
                    })
                })
            })
        })
    })
}

/// Equal within a relative tolerance, NaN where the other is NaN, the same infinity.
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

proptest! {
    /// The convolution kernels (several samples per product, positions past the output
    /// computed and discarded) against the definition, with an infinite input or weight
    /// whose products with zero gradients must stay out of the other taps' sums.
    #[test]
    fn conv2d_and_its_gradients_match_naive(c in conv_case(), seed in 0u64..100, poison in 0u8..3) {
        let wshape = [c.o, c.x[1] / c.p.groups, c.k[0], c.k[1]];
        let mut xv = values(c.x.iter().product(), seed);
        let mut wv = values(wshape.iter().product(), seed + 1);
        match poison {
            1 => { let i = (seed as usize * 31) % xv.len(); xv[i] = f64::INFINITY; }
            2 => { let i = (seed as usize * 17) % wv.len(); wv[i] = f64::NEG_INFINITY; }
            _ => {}
        }
        let x = Tensor::from_vec(xv.clone(), &c.x).unwrap().with_requires_grad(true);
        let w = Tensor::from_vec(wv.clone(), &wshape).unwrap().with_requires_grad(true);
        let y = x.conv2d(&w, None, c.p).unwrap();
        let dyv = values(y.numel(), seed + 2);
        let dy = Tensor::from_vec(dyv.clone(), y.shape()).unwrap();
        let grads = y.mul(&dy).unwrap().sum(&[], false).unwrap().backward().unwrap();
        let want = naive_conv(&c, &xv, &wv, &dyv);
        let got = [y.to_vec::<f64>().unwrap(), grads.get(&x).unwrap().to_vec::<f64>().unwrap(), grads.get(&w).unwrap().to_vec::<f64>().unwrap()];
        for (name, (g, e)) in ["output", "input gradient", "weight gradient"].iter().zip(got.iter().zip(&want)) {
            prop_assert_eq!(g.len(), e.len());
            for (i, (&a, &b)) in g.iter().zip(e).enumerate() {
                prop_assert!(same(a, b), "{} [{}]: {} against {}", name, i, a, b);
            }
        }
    }

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
