//! ferrograd: tensors with reverse-mode automatic differentiation (eager and static graphs),
//! neural-network layers and optimizers, data sets and figures, under one name.
//!
//! The pieces live in their own crates: `ferrograd-core` (tensors, kernels, autodiff, graph
//! compiler; re-exported at the top level), [`nn`], [`data`] and [`plot`]. The numbered lessons in
//! `examples/` use this crate, and [`lesson`] holds what they share.
//!
//! ```
//! use ferrograd::Tensor;
//! let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?.with_requires_grad(true);
//! let y = x.mul(&x)?.sum_all()?;
//! let grads = y.backward()?;
//! assert_eq!(grads.get(&x).unwrap().to_vec::<f64>()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), ferrograd::Error>(())
//! ```

#![forbid(unsafe_code)]

pub use ferrograd_core::*;
pub use ferrograd_data as data;
pub use ferrograd_nn as nn;
pub use ferrograd_plot as plot;

pub mod lesson;
