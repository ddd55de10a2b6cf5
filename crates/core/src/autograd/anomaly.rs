//! Anomaly mode (PyTorch `torch.autograd.detect_anomaly`): while a guard is held on a thread,
//! every value an op computes there, forward or backward, eager or replayed from a static
//! graph, is checked for NaN and infinity, and the first one fails with
//! [`Error::Anomaly`](crate::Error::Anomaly): the op that produced it, its input shapes and
//! where it sits (the module scope that layers push during their forward, and for a gradient
//! the op whose backward rule computed it).
//!
//! When the mode is off, an op pays one read of a thread-local flag and one branch: scopes are
//! not pushed and nothing is recorded.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::kernels::elementwise::map1;
use crate::{Error, Layout, Result, Storage, Tensor};

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    /// The module path of the layer being run (`layers.2`), one entry per nested scope.
    static SCOPES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// While a backward rule runs: the op it differentiates and the site of its forward.
    static BACKWARD: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Whether anomaly mode is on for this thread.
#[inline(always)]
pub fn is_anomaly_enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Restores the previous anomaly mode when dropped.
#[must_use = "anomaly mode ends as soon as the guard is dropped"]
pub struct AnomalyGuard {
    previous: bool,
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.previous));
    }
}

/// Turns anomaly mode on for this thread until the guard is dropped (PyTorch
/// `torch.autograd.detect_anomaly()`).
///
/// ```
/// use ferrograd_core::{Error, Tensor, detect_anomaly};
/// let x = Tensor::from_vec(vec![1.0f64, 0.0], &[2])?;
/// assert!(x.log().is_ok()); // ln 0 = -inf, unchecked
/// let _anomaly = detect_anomaly();
/// let err = x.log().unwrap_err();
/// assert!(matches!(err, Error::Anomaly { op: "log", .. }), "{err}");
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
pub fn detect_anomaly() -> AnomalyGuard {
    AnomalyGuard {
        previous: ENABLED.with(|e| e.replace(true)),
    }
}

/// Pops its module scope when dropped.
#[must_use = "the scope ends as soon as the guard is dropped"]
pub struct ScopeGuard {
    pushed: bool,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        if self.pushed {
            SCOPES.with(|s| s.borrow_mut().pop());
        }
    }
}

/// Names the part of a model that the ops run until the guard is dropped (a layer's forward
/// pushes its name, as PyTorch's module hierarchy names parameters); scopes nest with dots.
/// `name` is called only in anomaly mode: otherwise this does nothing.
pub fn scope(name: impl FnOnce() -> String) -> ScopeGuard {
    if !is_anomaly_enabled() {
        return ScopeGuard { pushed: false };
    }
    SCOPES.with(|s| s.borrow_mut().push(name()));
    ScopeGuard { pushed: true }
}

/// Where an op being recorded now sits: inside a backward rule, the op it differentiates
/// (and that op's own site); otherwise the module scope, if any.
pub(crate) fn current_site() -> Option<Arc<str>> {
    if let Some(b) = BACKWARD.with(|b| b.borrow().clone()) {
        return Some(b);
    }
    SCOPES.with(|s| {
        let s = s.borrow();
        (!s.is_empty()).then(|| Arc::from(format!("in {}", s.join(".")).as_str()))
    })
}

/// Marks the ops run until the guard is dropped as the backward rule of `op`, whose forward
/// was recorded at `site`.
pub(crate) fn backward_of(op: &'static str, site: Option<&Arc<str>>) -> BackwardGuard {
    let label = match site {
        Some(s) => format!("in the gradient of {op} ({s})"),
        None => format!("in the gradient of {op}"),
    };
    BackwardGuard {
        previous: BACKWARD.with(|b| b.replace(Some(Arc::from(label.as_str())))),
    }
}

/// Restores the previous backward context when dropped.
pub(crate) struct BackwardGuard {
    previous: Option<Arc<str>>,
}

impl Drop for BackwardGuard {
    fn drop(&mut self) {
        BACKWARD.with(|b| *b.borrow_mut() = self.previous.take());
    }
}

/// The first non-finite value of a float storage under `layout`: `Some("NaN")`, `Some("inf")`
/// or `Some("-inf")`. Integer storages hold none.
pub(crate) fn first_non_finite(s: &Storage, layout: &Layout) -> Option<&'static str> {
    let values = match s {
        Storage::F32(x) => map1(x, layout, |v: f32| v as f64),
        Storage::F64(x) => map1(x, layout, |v: f64| v),
        Storage::I64(_) => return None,
    };
    values.into_iter().find_map(|v| {
        if v.is_nan() {
            Some("NaN")
        } else if v == f64::INFINITY {
            Some("inf")
        } else if v == f64::NEG_INFINITY {
            Some("-inf")
        } else {
            None
        }
    })
}

/// Whether every value of `t` is finite (integers always are).
pub(crate) fn is_finite(t: &Tensor) -> bool {
    first_non_finite(&t.storage(), t.layout()).is_none()
}

/// Fails with [`Error::Anomaly`] when `out` (the result of `op` on inputs of `shapes`) holds a
/// NaN or an infinity. `site` is where the op sits; `inputs_finite` says whether the op made
/// the value or passed on one it was given.
pub(crate) fn check(
    op: &'static str,
    shapes: impl Fn() -> Vec<Vec<usize>>,
    storage: &Storage,
    layout: &Layout,
    site: Option<&Arc<str>>,
    inputs_finite: impl Fn() -> bool,
) -> Result<()> {
    let Some(value) = first_non_finite(storage, layout) else {
        return Ok(());
    };
    Err(Error::Anomaly {
        op,
        value,
        input_shapes: shapes(),
        site: site.map_or_else(|| "outside any named layer".into(), |s| s.to_string()),
        from_input: !inputs_finite(),
    })
}
