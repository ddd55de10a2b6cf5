//! # ferrograd-core
//!
//! The foundation of ferrograd: n-dimensional [`Tensor`]s of f32, f64 and i64 with
//! NumPy/PyTorch broadcasting, fast CPU kernels (multithreaded GEMM through the `gemm` crate,
//! vectorised elementwise loops and reductions over rayon), and reverse- and forward-mode automatic
//! differentiation with higher-order gradients and a finite-difference [`gradcheck`].
//!
//! Layout of the crate, bottom layer first (a module names only modules above it in this list;
//! `tests/layering.rs` fails on any cycle):
//! - `error`, `dtype`, [`shape`], `storage`, `threads`: the error type, element types, layouts
//!   and checked shape arithmetic, shared buffers, thread pools;
//! - [`op`]: the closed set of primitive ops ([`op::Op`]) that everything below names;
//! - `kernels`: the CPU loops behind the primitives (elementwise, reductions, indexing, matrix
//!   products through `gemm`, the fused elementwise kernel of static graphs);
//! - `tensor`: the tensor handle and its autograd record;
//! - `graph::ir`, `graph::trace`: the graph IR and the tracer that `ops` reports to;
//! - `ops`: the public tensor methods and `apply`, the one place a primitive is executed;
//! - `autograd`: grad mode, the backward walk, every op's backward rule, and the function
//!   transforms on top ([`jvp`] as transposed reverse mode, [`vjp`], [`jacobian`], [`hessian`]);
//! - [`graph`]: static graphs: optimisation passes, the planner, the runtime, `compile` and
//!   [`graph::StaticFn`];
//! - [`gradcheck`](crate::gradcheck()), `random`, `display`: numerical verification of
//!   gradients, random tensors, printing;
//! - [`counting_alloc`]: allocation counting for benchmarks and tests.
//!
//! ```
//! use ferrograd_core::{DType, Rng, Tensor};
//! let mut rng = Rng::new(0);
//! let w = Tensor::randn(&[3, 2], 0.0, 1.0, DType::F64, &mut rng)?.with_requires_grad(true);
//! let x = Tensor::ones(&[4, 3], DType::F64)?;
//! let loss = x.matmul(&w)?.tanh()?.sum_all()?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&w).unwrap().shape(), &[3, 2]);
//! # Ok::<(), ferrograd_core::Error>(())
//! ```

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod autograd;
pub mod counting_alloc;
mod display;
mod dtype;
mod error;
mod gradcheck;
pub mod graph;
mod kernels;
pub mod op;
mod ops;
mod random;
pub mod shape;
mod storage;
mod tensor;
mod threads;

pub use autograd::{
    AnomalyGuard, BackwardOptions, GradModeGuard, GradStore, JacobianMode, ScopeGuard,
    detect_anomaly, enable_grad, hessian, is_anomaly_enabled, is_grad_enabled, jacobian, jvp,
    no_grad, scope, vjp,
};
pub use dtype::{DType, Element, Float};
pub use error::{Error, Result};
pub use gradcheck::{GradcheckOptions, GradcheckReport, gradcheck, hessian_vector_product};
pub use ops::BatchNormOptions;
pub use random::Rng;
pub use shape::Layout;
pub use storage::{Storage, StorageCell, StorageElement};
pub use tensor::{Tensor, TensorId};
pub use threads::{ThreadPool, current_threads};
