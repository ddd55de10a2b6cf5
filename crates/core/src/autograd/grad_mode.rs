//! Grad mode: whether ops are recorded for backward on this thread (PyTorch's
//! `torch.no_grad()` / `torch.enable_grad()`), switched by scoped guards.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread are recorded for backward (true unless inside [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored as soon as the guard is dropped"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

fn set(enabled: bool) -> GradModeGuard {
    GradModeGuard {
        previous: GRAD_ENABLED.with(|g| g.replace(enabled)),
    }
}

/// Stops recording ops on this thread until the guard is dropped (PyTorch `torch.no_grad()`).
/// Use it for inference and for parameter updates.
///
/// ```
/// use ferrograd_core::{DType, Tensor, no_grad};
/// let w = Tensor::ones(&[2], DType::F32)?.with_requires_grad(true);
/// {
///     let _guard = no_grad();
///     assert!(!w.mul(&w)?.tracks_grad());
/// }
/// assert!(w.mul(&w)?.tracks_grad());
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
pub fn no_grad() -> GradModeGuard {
    set(false)
}

/// Records ops on this thread until the guard is dropped, even inside [`no_grad`]
/// (PyTorch `torch.enable_grad()`).
pub fn enable_grad() -> GradModeGuard {
    set(true)
}
