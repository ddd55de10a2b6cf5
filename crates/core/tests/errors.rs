//! Bad input gives an error that names the op and what it expected; nothing panics.

use ferrograd_core::{DType, Error, Tensor};

fn t(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape, DType::F32).unwrap()
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let e = t(&[2, 3]).add(&t(&[4])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "add: shapes [2, 3] and [4] cannot be broadcast together"
    );
    let e = t(&[2, 3]).matmul(&t(&[2, 3])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MatMul {
                k_lhs: 3,
                k_rhs: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("[2, 3]"));
    let e = t(&[2, 3]).reshape(&[4]).unwrap_err();
    assert!(e.to_string().starts_with("reshape:"), "{e}");
    let e = t(&[2, 3]).sum(&[2], false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sum: dimension 2 is out of range for a tensor of rank 2"
    );
    let e = Tensor::cat(&[&t(&[2, 3]), &t(&[3, 3])], 1).unwrap_err();
    assert!(e.to_string().starts_with("cat:"), "{e}");
}

#[test]
fn dtype_errors_are_reported_not_promoted() {
    let a = Tensor::zeros(&[2], DType::F32).unwrap();
    let b = Tensor::zeros(&[2], DType::F64).unwrap();
    let e = a.add(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "add: dtype mismatch, f32 and f64 (convert one with `to_dtype`)"
    );
    let i = Tensor::zeros(&[2], DType::I64).unwrap();
    assert!(matches!(
        i.exp(),
        Err(Error::UnsupportedDType { op: "exp", .. })
    ));
    assert!(matches!(i.div(&i), Err(Error::UnsupportedDType { .. })));
    assert!(i.matmul(&i).is_err());
    assert_eq!(i.add(&i).unwrap().to_vec::<i64>().unwrap(), vec![0, 0]);
}

#[test]
fn index_errors_name_the_index_and_size() {
    let x = t(&[3, 2]);
    let e = x
        .index_select(0, &Tensor::from_vec(vec![0i64, 3], &[2]).unwrap())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "gather: index 3 is out of range for dimension of size 3"
    );
    let logits = t(&[2, 4]);
    let e = logits
        .softmax_cross_entropy(&Tensor::from_vec(vec![0i64, -1], &[2]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("index -1"), "{e}");
    assert!(
        logits
            .softmax_cross_entropy(&Tensor::zeros(&[2], DType::F32).unwrap())
            .is_err()
    );
    assert!(
        logits
            .softmax_cross_entropy(&Tensor::zeros(&[3], DType::I64).unwrap())
            .is_err()
    );
    let e = x.narrow(0, 2, 2).unwrap_err();
    assert!(e.to_string().contains("out of bounds"), "{e}");
}

#[test]
fn odd_arguments_are_errors() {
    assert!(Tensor::from_vec(vec![1.0f32; 3], &[2, 2]).is_err());
    assert!(t(&[2, 3]).permute(&[0]).is_err());
    assert!(t(&[2, 3]).permute(&[1, 1]).is_err());
    assert!(t(&[2, 3]).clamp(1.0, -1.0).is_err());
    assert!(t(&[0, 3]).max(&[0], false).is_err());
    assert!(t(&[2, 0]).argmax(1, false).is_err());
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32).is_err());
    assert!(Tensor::arange(0.0, 1.0, -1.0, DType::F32).is_err());
    assert!(t(&[2]).squeeze(0).is_err());
    assert!(t(&[2]).item().is_err());
    assert!(t(&[2]).to_vec::<f64>().is_err());
    assert!(Tensor::cat(&[], 0).is_err());
    assert!(t(&[2, 2]).t().unwrap().assign(&t(&[2, 2])).is_err());
}

#[test]
fn empty_tensors_work() {
    let e = t(&[0, 3]);
    assert_eq!(
        e.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(),
        vec![0.0; 3]
    );
    assert_eq!(e.exp().unwrap().shape(), &[0, 3]);
    assert_eq!(e.matmul(&t(&[3, 2])).unwrap().shape(), &[0, 2]);
    assert_eq!(
        t(&[2, 0])
            .matmul(&t(&[0, 2]))
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0; 4]
    );
}
