//! Reverse-mode automatic differentiation: grad mode (`no_grad`), the iterative backward walk
//! with its gradient store, and the backward rules of every primitive op (in `rules`, the one
//! place they are written, in terms of tensor ops so they can be differentiated again),
//! anomaly mode (checking every value for NaN and infinity, naming the op that made it), and
//! the function transforms built on them (`functional`: forward mode as transposed reverse
//! mode, vector-Jacobian products, Jacobians, Hessians).

pub(crate) mod anomaly;
mod backward;
mod functional;
mod grad_mode;
pub(crate) mod rules;

pub use anomaly::{AnomalyGuard, ScopeGuard, detect_anomaly, is_anomaly_enabled, scope};
pub use backward::{BackwardOptions, GradStore};
pub use functional::{JacobianMode, hessian, jacobian, jvp, vjp};
pub use grad_mode::{GradModeGuard, enable_grad, is_grad_enabled, no_grad};
