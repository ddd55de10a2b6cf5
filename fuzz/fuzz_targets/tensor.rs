//! Tensor constructors and shape changes from arbitrary shapes and data lengths: the first byte
//! is the rank (0 to 7), then one little-endian u64 per dimension (small or huge), then the
//! data; each constructor must either build a tensor of exactly that many elements or fail.
#![no_main]

use ferrograd_core::shape::MAX_ELEMENTS;
use ferrograd_core::{DType, Tensor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&rank, rest)) = data.split_first() else {
        return;
    };
    let rank = usize::from(rank % 8);
    if rest.len() < rank * 8 {
        return;
    }
    let (dims, values) = rest.split_at(rank * 8);
    let shape: Vec<usize> = dims
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    let floats: Vec<f32> = values.iter().map(|&b| f32::from(b) - 128.0).collect();
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    // The product of the sizes other than 0 (the largest stride): ferrograd refuses shapes
    // where it exceeds `MAX_ELEMENTS`, empty or not.
    let span = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)));
    let representable = span.is_some_and(|n| n <= MAX_ELEMENTS);
    match Tensor::from_vec(floats.clone(), &shape) {
        Ok(t) => {
            assert_eq!(Some(t.numel()), numel);
            assert_eq!(t.numel(), floats.len());
            let _ = t.reshape(&[floats.len()]);
            let _ = t.broadcast_to(&[2, floats.len()]);
            // A reduction's output can be far larger than its (empty) input: [3, 2^32, 0]
            // sums to 3 * 2^32 zeros, which no allocator gives (and Rust aborts on), so
            // only outputs of a sane size are computed.
            let reduced: usize = shape[..rank.saturating_sub(1)].iter().product();
            if reduced <= 1 << 16 {
                let _ = t.sum(&[-1], false);
            }
            let _ = t.permute(&(0..rank).rev().collect::<Vec<_>>());
        }
        Err(_) => assert!(!representable || numel != Some(floats.len())),
    }
    let small = span.is_some_and(|n| n <= 1 << 16);
    for dtype in [DType::F32, DType::F64, DType::I64] {
        if small {
            let t = Tensor::zeros(&shape, dtype).unwrap();
            assert_eq!(Some(t.numel()), numel);
        } else if !representable {
            assert!(Tensor::zeros(&shape, dtype).is_err());
        }
    }
    if let Ok(t) = Tensor::from_vec(floats.clone(), &[floats.len()]) {
        let _ = t.reshape(&shape);
        let _ = t.broadcast_to(&shape);
    }
});
