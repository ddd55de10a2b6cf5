//! The eager optimizer's compiled update: traced once, from the second step; a rule that reads
//! values is traced once and then runs op by op; any other error of tracing the rule is
//! returned to the caller instead of being swallowed and retried at every step; after
//! `load_state` the first update runs eagerly, creating the buffers the saved state lacks.

use std::cell::Cell;

use ferrograd_core::graph::is_tracing;
use ferrograd_core::{Error, GradStore, Result, Tensor};
use ferrograd_nn::{Adam, AdamConfig, Optimizer, RuleOptimizer, Step, UpdateRule};

thread_local! {
    // Per thread, so tests running side by side do not count each other's traces.
    static TRACED_UPDATES: Cell<usize> = const { Cell::new(0) };
}

fn traced_updates() -> usize {
    TRACED_UPDATES.with(Cell::get)
}

/// Plain gradient descent that counts its traced calls and, depending on `fault`, cannot be
/// traced.
struct Probe {
    fault: Fault,
}

#[derive(Clone, Copy)]
enum Fault {
    /// Traces fine.
    None,
    /// Reads a value of the parameter (data-dependent control flow).
    ReadsValues,
    /// Fails with an ordinary error, only while traced.
    FailsWhenTraced,
}

impl UpdateRule for Probe {
    const BUFFERS: &'static [&'static str] = &[];
    const NAME: &'static str = "probe";

    fn initial_lr(&self) -> f64 {
        0.1
    }

    fn validate(&self) -> Result<()> {
        Ok(())
    }

    fn update(
        &self,
        p: &Tensor,
        grad: &Tensor,
        _buffers: &mut [Option<Tensor>],
        at: &Step,
    ) -> Result<Tensor> {
        if is_tracing() {
            TRACED_UPDATES.with(|c| c.set(c.get() + 1));
        }
        match self.fault {
            Fault::None => {}
            Fault::ReadsValues => {
                p.sum_all()?.item()?;
            }
            Fault::FailsWhenTraced if is_tracing() => {
                return Err(Error::Argument {
                    op: Self::NAME,
                    msg: "this rule cannot be traced".into(),
                });
            }
            Fault::FailsWhenTraced => {}
        }
        p.sub(&grad.mul(&at.lr_as(p.dtype())?)?)
    }
}

/// The parameter of the probe runs.
fn param() -> Tensor {
    Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3])
        .unwrap()
        .with_requires_grad(true)
}

/// The gradients of `sum(w^2)`.
fn grads(w: &Tensor) -> GradStore {
    w.square().unwrap().sum_all().unwrap().backward().unwrap()
}

/// Takes `steps` steps of the probe with `fault` on `sum(w^2)`; the results of each step and
/// how many traced updates they took.
fn run(fault: Fault, steps: usize) -> (Vec<Result<()>>, usize) {
    let w = param();
    let mut opt = RuleOptimizer::new(vec![("w".into(), w.clone())], Probe { fault }).unwrap();
    let before = traced_updates();
    let results = (0..steps).map(|_| opt.step(&grads(&w))).collect();
    (results, traced_updates() - before)
}

#[test]
fn a_traceable_rule_is_traced_once() {
    let (results, traces) = run(Fault::None, 6);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(traces, 1, "traced at the second step, replayed after");
}

#[test]
fn a_rule_that_reads_values_is_traced_once_then_runs_eagerly() {
    let (results, traces) = run(Fault::ReadsValues, 6);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(traces, 1, "the refused trace is not tried again");
    // The same values as gradient descent: w <- w - 0.1 * 2w = 0.8 w at every step.
    let w = param();
    let mut opt = RuleOptimizer::new(
        vec![("w".into(), w.clone())],
        Probe {
            fault: Fault::ReadsValues,
        },
    )
    .unwrap();
    for _ in 0..6 {
        opt.step(&grads(&w)).unwrap();
    }
    let want = [1.0, -2.0, 3.0].map(|v| v * 0.8f64.powi(6));
    for (got, want) in w.to_vec::<f64>().unwrap().iter().zip(want) {
        assert!((got - want).abs() <= 1e-12, "{got} vs {want}");
    }
}

#[test]
fn any_other_trace_error_is_returned_not_swallowed() {
    let (results, traces) = run(Fault::FailsWhenTraced, 2);
    assert!(results[0].is_ok(), "the first step runs eagerly");
    let err = results[1]
        .as_ref()
        .expect_err("the trace error must surface");
    assert!(
        err.to_string().contains("this rule cannot be traced"),
        "{err}"
    );
    assert_eq!(traces, 1);
}

#[test]
fn after_load_state_the_first_update_runs_eagerly_and_creates_missing_buffers() {
    let w = Tensor::from_vec(vec![0.5f32, -1.5, 2.0, 0.25], &[2, 2])
        .unwrap()
        .with_requires_grad(true);
    let mut opt = Adam::new(vec![("w".into(), w.clone())], AdamConfig::default()).unwrap();
    // A checkpoint of a few steps taken before its moments were saved.
    opt.load_state(&[("step".into(), Tensor::scalar(3i64))])
        .unwrap();
    for _ in 0..3 {
        opt.step(&grads(&w)).unwrap();
    }
    assert_eq!(opt.steps(), 6);
    let state: Vec<String> = opt.state().into_iter().map(|(k, _)| k).collect();
    assert_eq!(state, ["step", "w.exp_avg", "w.exp_avg_sq"]);
}
