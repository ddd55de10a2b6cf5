//! Running one function of tensors in both graph modes: eagerly, and traced into a static
//! graph (with and without the optimisation passes) and replayed. Tests that pin values at
//! special points use it so that a fix in a backward rule is checked where both modes read it.

use ferrograd_core::graph::{CompileOptions, compile};
use ferrograd_core::{Result, Tensor};

/// The results of `f(inputs)` in each mode, labelled `eager`, `static` (no passes) and
/// `static+passes`.
///
/// # Errors
/// The first error of `f` or of compiling it.
pub fn in_both_modes<F>(f: F, inputs: &[Tensor]) -> Result<Vec<(&'static str, Vec<Tensor>)>>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>> + Copy,
{
    let mut runs = vec![("eager", f(inputs)?)];
    for (label, opts) in [
        ("static", CompileOptions::NONE),
        ("static+passes", CompileOptions::default()),
    ] {
        let mut compiled = compile(f, inputs, opts)?;
        runs.push((label, compiled.run(inputs)?));
    }
    Ok(runs)
}

/// Whether two values agree to `tol` relative to `1 + |want|`, with NaN equal to NaN and
/// infinities equal only to the same infinity.
pub fn same_value(got: f64, want: f64, tol: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= tol * (1.0 + want.abs())
}
