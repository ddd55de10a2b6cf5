//! Shapes whose element count overflows are errors, in debug builds (where unchecked
//! arithmetic would panic) and in release builds (where it would wrap and hand the kernels a
//! buffer far smaller than the shape). CI runs this file in both profiles. The large operands
//! here are broadcast views of one element, so nothing large is ever allocated.

use ferrograd_core::shape::{MAX_ELEMENTS, checked_numel};
use ferrograd_core::{DType, Error, Tensor};

/// A view of `shape` over a single element.
fn huge(shape: &[usize]) -> Tensor {
    Tensor::scalar(1.0f32).broadcast_to(shape).unwrap()
}

fn too_large<T: std::fmt::Debug>(r: Result<T, Error>, op: &str) {
    match r {
        Err(Error::TooLarge { op: o, .. }) => assert_eq!(o, op),
        other => panic!("{op}: expected a TooLarge error, got {other:?}"),
    }
}

#[test]
fn creation_from_a_wrapping_shape_is_an_error() {
    // 2 * (2^63 + 2) wraps to 4 in 64-bit arithmetic.
    let wrapping = [2, (1usize << 63) + 2];
    too_large(Tensor::from_vec(vec![0f32; 4], &wrapping), "from_vec");
    too_large(Tensor::zeros(&wrapping, DType::F32), "zeros");
    too_large(Tensor::full(1.0, &[usize::MAX, 2], DType::F64), "full");
    too_large(Tensor::ones(&[1 << 40, 1 << 40], DType::F32), "ones");
    let mut rng = ferrograd_core::Rng::new(0);
    too_large(
        Tensor::randn(&wrapping, 0.0, 1.0, DType::F32, &mut rng),
        "randn",
    );
    too_large(Tensor::arange(0.0, 1e30, 1.0, DType::F32), "arange");
}

#[test]
fn the_wrapping_matmul_of_the_report_is_refused_before_the_kernel() {
    // The shape that used to pass the length check and reach gemm with k far beyond the data.
    let x = Tensor::from_vec(vec![0f32; 4], &[2, (1 << 63) + 2]);
    assert!(x.is_err());
}

#[test]
fn derived_shapes_are_checked() {
    let x = Tensor::zeros(&[4], DType::F32).unwrap();
    too_large(x.reshape(&[2, (1 << 63) + 2]), "reshape");
    // Broadcasting two valid views to 2^80 elements.
    too_large(huge(&[1 << 40, 1]).add(&huge(&[1, 1 << 40])), "add");
    too_large(
        Tensor::scalar(1.0f32).broadcast_to(&[1 << 40, 1 << 40]),
        "broadcast_to",
    );
    // A product of two empty operands whose output would hold 2^80 elements.
    let a = huge(&[1 << 40, 1]).narrow(1, 0, 0).unwrap();
    let b = huge(&[1, 1 << 40]).narrow(0, 0, 0).unwrap();
    too_large(a.matmul(&b), "matmul");
    // Concatenation past the limit.
    let part = huge(&[MAX_ELEMENTS / 2 + 1]);
    too_large(Tensor::cat(&[&part, &part], 0), "cat");
}

#[test]
fn the_limit_itself_is_exact() {
    assert_eq!(checked_numel("t", &[MAX_ELEMENTS]).unwrap(), MAX_ELEMENTS);
    assert!(checked_numel("t", &[MAX_ELEMENTS + 1]).is_err());
    assert_eq!(checked_numel("t", &[0, 7]).unwrap(), 0);
    assert!(checked_numel("t", &[0, usize::MAX, 2]).is_err());
    assert_eq!(checked_numel("t", &[]).unwrap(), 1);
}
