//! Optimizers, learning-rate schedules and gradient clipping (by global norm or by value).
//! Every optimizer can maximize instead of minimize ([`RuleOptimizer::maximize`]).
//!
//! Traversal is kept apart from the update rule: [`RuleOptimizer`] walks the named parameters,
//! fetches each gradient (reporting a parameter that has none instead of skipping it), and hands
//! one parameter at a time, with its explicit state buffers, to an [`UpdateRule`]. A rule holds
//! no state, so it is nothing but its hyperparameters: [`SgdConfig`], [`AdamConfig`] (Adam and
//! AdamW), [`RmsPropConfig`] and [`AdagradConfig`] are the hyperparameters of each algorithm
//! and, through [`UpdateRule`], the update they define; [`Sgd`], [`Adam`], [`RmsProp`] and
//! [`Adagrad`] are the optimizers driven by them. Each config implements `Default` with
//! PyTorch's defaults.
//!
//! Updates are written in place under `no_grad`, weights and state buffers alike, and the step
//! number and learning rate reach the rules as 0-d tensors ([`Step`]): the same update can then
//! be traced into a compiled training step, where they are the graph's run-time inputs rather
//! than constants baked in at trace time.

mod adagrad;
mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;

pub use adagrad::AdagradConfig;
pub use adam::AdamConfig;
pub use clip::{clip_grad_norm, clip_grad_norm_traceable, clip_grad_value};
pub use rmsprop::RmsPropConfig;
pub use schedule::{LrSchedule, Schedule};
pub use sgd::SgdConfig;

use ferrograd_core::graph::{CompileOptions, CompiledGraph, compile, is_tracing};
use ferrograd_core::{DType, Error, GradStore, Result, Tensor, no_grad};

/// Gradient descent / SGD with momentum and Nesterov (PyTorch `torch.optim.SGD`).
pub type Sgd = RuleOptimizer<SgdConfig>;
/// Adam and AdamW (PyTorch `torch.optim.Adam`, `torch.optim.AdamW`).
pub type Adam = RuleOptimizer<AdamConfig>;
/// RMSprop (PyTorch `torch.optim.RMSprop`).
pub type RmsProp = RuleOptimizer<RmsPropConfig>;
/// Adagrad (PyTorch `torch.optim.Adagrad`).
pub type Adagrad = RuleOptimizer<AdagradConfig>;

/// An optimizer: updates its parameters from a gradient store.
pub trait Optimizer {
    /// Applies one update to every parameter and counts the step.
    ///
    /// # Errors
    /// [`Error::Argument`] naming a parameter that has no gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let at = Step::new(self.steps() + 1, self.learning_rate());
        self.update(grads, &at)?;
        self.advance();
        Ok(())
    }

    /// Applies one update with the step number and learning rate given as tensors, without
    /// counting the step (see [`Optimizer::advance`]). [`Optimizer::step`] calls it with the
    /// optimizer's own; a compiled training step traces it with the graph's inputs.
    ///
    /// While traced, the state buffers must exist already (take the first step eagerly).
    ///
    /// # Errors
    /// As [`Optimizer::step`]; [`Error::Argument`] when traced before the state exists.
    fn update(&mut self, grads: &GradStore, at: &Step) -> Result<()>;

    /// Counts one step taken through [`Optimizer::update`]; returns the new count.
    fn advance(&mut self) -> u64;

    /// Steps taken so far.
    fn steps(&self) -> u64;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (schedules call this).
    fn set_learning_rate(&mut self, lr: f64);

    /// The optimizer's state as named tensors (`<param>.<buffer>` and `step`), for checkpoints.
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Restores state saved by [`Optimizer::state`].
    ///
    /// # Errors
    /// [`Error::Argument`] for a missing entry or one whose shape or dtype differs.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()>;

    /// The parameters, by name.
    fn params(&self) -> &[(String, Tensor)];
}

/// A boxed or borrowed optimizer is an optimizer.
macro_rules! forward_optimizer {
    ($($ty:ty),*) => {$(
        impl<O: Optimizer + ?Sized> Optimizer for $ty {
            fn step(&mut self, grads: &GradStore) -> Result<()> {
                (**self).step(grads)
            }
            fn update(&mut self, grads: &GradStore, at: &Step) -> Result<()> {
                (**self).update(grads, at)
            }
            fn advance(&mut self) -> u64 {
                (**self).advance()
            }
            fn steps(&self) -> u64 {
                (**self).steps()
            }
            fn learning_rate(&self) -> f64 {
                (**self).learning_rate()
            }
            fn set_learning_rate(&mut self, lr: f64) {
                (**self).set_learning_rate(lr)
            }
            fn state(&self) -> Vec<(String, Tensor)> {
                (**self).state()
            }
            fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
                (**self).load_state(state)
            }
            fn params(&self) -> &[(String, Tensor)] {
                (**self).params()
            }
        }
    )*};
}

forward_optimizer!(Box<O>, &mut O);

/// How one parameter is updated: the rule a [`RuleOptimizer`] applies. A rule is stateless (the
/// optimizer keeps the state buffers), so the type implementing it is the algorithm's
/// hyperparameters, e.g. [`SgdConfig`].
pub trait UpdateRule {
    /// Names of the per-parameter state buffers (as PyTorch names them).
    const BUFFERS: &'static [&'static str];
    /// Name used in error messages.
    const NAME: &'static str;

    /// The learning rate the optimizer starts with (schedules change it later). The optimizer
    /// checks that it is finite and non-negative.
    fn initial_lr(&self) -> f64;

    /// Checks the hyperparameters other than the learning rate.
    ///
    /// # Errors
    /// [`Error::Argument`] naming the bad hyperparameter.
    fn validate(&self) -> Result<()>;

    /// The new value of parameter `p` given its gradient and its buffers (updated in place;
    /// `None` until first set), at step `at`.
    ///
    /// # Errors
    /// Errors of the tensor ops.
    fn update(
        &self,
        p: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        at: &Step,
    ) -> Result<Tensor>;
}

/// Where an update happens: the step number (1 for the first) and the learning rate, as 0-d
/// float64 tensors, so that a traced update reads them at run time.
#[derive(Debug, Clone)]
pub struct Step {
    /// Step number, from 1.
    pub t: Tensor,
    /// Learning rate of this step.
    pub lr: Tensor,
}

impl Step {
    /// Step `t` with learning rate `lr`.
    pub fn new(t: u64, lr: f64) -> Step {
        Step {
            t: Tensor::scalar(t as f64),
            lr: Tensor::scalar(lr),
        }
    }

    /// The learning rate in `dtype` (a parameter's), for elementwise use.
    ///
    /// # Errors
    /// Errors of the cast.
    pub fn lr_as(&self, dtype: DType) -> Result<Tensor> {
        self.lr.to_dtype(dtype)
    }

    /// `1 - beta^t` (Adam's bias correction) in `dtype`.
    ///
    /// # Errors
    /// Errors of the tensor ops.
    pub fn bias_correction(&self, beta: f64, dtype: DType) -> Result<Tensor> {
        // beta^t = exp(t ln beta); exp(-inf) = 0 covers beta = 0.
        self.t
            .mul_scalar(beta.ln())?
            .exp()?
            .neg()?
            .add_scalar(1.0)?
            .to_dtype(dtype)
    }
}

/// The optimizer driven by an [`UpdateRule`]: it owns the parameter list, the step count, the
/// learning rate and each parameter's state buffers, and applies the rule to every parameter.
pub struct RuleOptimizer<R: UpdateRule> {
    params: Vec<(String, Tensor)>,
    rule: R,
    lr: f64,
    /// `buffers[i][k]`: buffer `R::BUFFERS[k]` of parameter `i`.
    buffers: Vec<Vec<Option<Tensor>>>,
    step: u64,
    /// The update of every parameter traced once into a static graph of fused in-place loops
    /// and replayed at every eager step (see [`RuleOptimizer::update`]).
    compiled: Option<CompiledGraph>,
    /// Set once an eager update has run since the state was created or loaded: every buffer
    /// the rule uses exists then, and a traced update needs them to exist (it cannot create
    /// one).
    state_ready: bool,
    /// Set when the rule cannot be traced; the update then always runs op by op.
    untraceable: bool,
    /// Ascend instead of descend: gradients are negated before the rule sees them.
    maximize: bool,
}

impl<R: UpdateRule> RuleOptimizer<R> {
    /// An optimizer over named parameters (from [`crate::named_params`]).
    ///
    /// # Errors
    /// [`Error::Argument`] for invalid hyperparameters.
    pub fn new(params: Vec<(String, Tensor)>, rule: R) -> Result<Self> {
        let lr = rule.initial_lr();
        non_negative(R::NAME, &[("lr", lr)])?;
        rule.validate()?;
        let buffers = vec![vec![None; R::BUFFERS.len()]; params.len()];
        Ok(RuleOptimizer {
            params,
            lr,
            rule,
            buffers,
            step: 0,
            compiled: None,
            state_ready: false,
            untraceable: false,
            maximize: false,
        })
    }

    /// Maximizes the objective instead of minimizing it (PyTorch's `maximize=True`, which
    /// every PyTorch optimizer takes): each gradient is negated before the rule, weight decay
    /// and momentum included, sees it, exactly as PyTorch does.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// use ferrograd_nn::{Optimizer, Sgd, SgdConfig};
    /// let w = Tensor::from_vec(vec![1.0f64], &[1])?.with_requires_grad(true);
    /// let cfg = SgdConfig { lr: 0.5, ..Default::default() };
    /// let mut opt = Sgd::new(vec![("w".into(), w.clone())], cfg)?.maximize(true);
    /// opt.step(&w.square()?.sum_all()?.backward()?)?; // d(w^2)/dw = 2: w += 0.5 * 2
    /// assert_eq!(w.to_vec::<f64>()?, vec![2.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self.compiled = None;
        self
    }

    /// Whether the optimizer maximizes (see [`RuleOptimizer::maximize`]).
    pub fn maximizes(&self) -> bool {
        self.maximize
    }

    /// Applies the rule to every parameter, op by op (recorded when traced).
    fn apply_rule(&mut self, grads: &[Tensor], at: &Step) -> Result<()> {
        for (((_, p), buffers), g) in self.params.iter().zip(&mut self.buffers).zip(grads) {
            let ascent;
            let g = if self.maximize {
                ascent = g.neg()?;
                &ascent
            } else {
                g
            };
            let value = self.rule.update(p, g, buffers, at)?;
            p.assign(&value)?;
        }
        Ok(())
    }

    /// The eager update through the compiled graph, compiling it first when there is none for
    /// these gradients' shapes. `Ok(false)` when the rule reads values (data-dependent control
    /// flow), which no graph can capture: the update then runs op by op from now on.
    ///
    /// # Errors
    /// Any other error of tracing the rule, and errors of running the graph.
    fn update_compiled(&mut self, grads: &[Tensor], at: &Step) -> Result<bool> {
        let n = grads.len();
        let mut inputs = grads.to_vec();
        inputs.extend([at.t.clone(), at.lr.clone()]);
        let mut compiled = match self.compiled.take() {
            Some(c) if c.accepts(&inputs) => c,
            _ => {
                let traced = compile(
                    |i: &[Tensor]| {
                        let at = Step {
                            t: i[n].clone(),
                            lr: i[n + 1].clone(),
                        };
                        self.apply_rule(&i[..n], &at)?;
                        Ok(Vec::new())
                    },
                    &inputs,
                    CompileOptions::default(),
                );
                match traced {
                    Ok(c) => c,
                    Err(Error::DataDependent { .. }) => {
                        self.untraceable = true;
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        compiled.execute(&inputs)?;
        self.compiled = Some(compiled);
        Ok(true)
    }

    /// The update rule and its hyperparameters.
    pub fn rule(&self) -> &R {
        &self.rule
    }
}

impl<R: UpdateRule> Optimizer for RuleOptimizer<R> {
    /// Eagerly, from the second step on (the first creates the state buffers, as does the first
    /// after [`Optimizer::load_state`]), the rule runs as a compiled static graph: traced once
    /// (per set of gradient shapes), its update of each parameter and buffer is one fused loop
    /// written in place, replayed with the step number and learning rate as inputs, with the
    /// same results as running the rule op by op. A rule that reads values (data-dependent
    /// control flow) runs op by op from then on; any other error of tracing it is returned.
    /// While a training step is being traced, the rule's ops are recorded into that trace
    /// instead.
    ///
    /// # Errors
    /// As [`Optimizer::update`], and errors of tracing or running the compiled update.
    fn update(&mut self, grads: &GradStore, at: &Step) -> Result<()> {
        let _guard = no_grad();
        // Every gradient is fetched first, so a missing one leaves parameters and state as
        // they were.
        let gs = self
            .params
            .iter()
            .map(|(name, p)| {
                grads.get(p).cloned().ok_or_else(|| Error::Argument {
                    op: R::NAME,
                    msg: format!("parameter {name} has no gradient (is it used by the loss?)"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if is_tracing() {
            return self.apply_rule(&gs, at);
        }
        if self.state_ready && !self.untraceable && self.update_compiled(&gs, at)? {
            return Ok(());
        }
        self.apply_rule(&gs, at)?;
        self.state_ready = true;
        Ok(())
    }

    fn advance(&mut self) -> u64 {
        self.step += 1;
        self.step
    }

    fn steps(&self) -> u64 {
        self.step
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::scalar(self.step as i64))];
        for ((name, _), buffers) in self.params.iter().zip(&self.buffers) {
            for (buf, value) in R::BUFFERS.iter().zip(buffers) {
                if let Some(v) = value {
                    out.push((format!("{name}.{buf}"), v.clone()));
                }
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let bad = |msg: String| Error::Argument {
            op: "optimizer load_state",
            msg,
        };
        let find = |key: &str| state.iter().find(|(k, _)| k == key).map(|(_, t)| t);
        let step = find("step").ok_or_else(|| bad("missing entry \"step\"".into()))?;
        let step = step.item()?;
        if !(step >= 0.0 && step.fract() == 0.0) {
            return Err(bad(format!("invalid step count {step}")));
        }
        let mut loaded = self.buffers.clone();
        for ((name, p), buffers) in self.params.iter().zip(&mut loaded) {
            for (buf, slot) in R::BUFFERS.iter().zip(buffers.iter_mut()) {
                let key = format!("{name}.{buf}");
                *slot = match find(&key) {
                    // A copy: buffers are updated in place.
                    Some(t) if t.shape() == p.shape() && t.dtype() == p.dtype() => {
                        Some(t.contiguous_copy())
                    }
                    Some(t) => {
                        return Err(bad(format!(
                            "{key} has shape {:?} ({}), expected {:?} ({})",
                            t.shape(),
                            t.dtype(),
                            p.shape(),
                            p.dtype()
                        )));
                    }
                    // Buffers start lazily; an absent one is simply not started yet.
                    None => None,
                };
            }
        }
        self.buffers = loaded;
        self.step = step as u64;
        // The compiled update reads the old buffers, and a buffer the rule uses may not have
        // been saved yet: the next update runs eagerly, then compiles.
        self.compiled = None;
        self.state_ready = false;
        Ok(())
    }

    fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }
}

/// Checks one hyperparameter: finite and satisfying `ok`.
pub(crate) fn check(op: &'static str, name: &str, v: f64, ok: bool) -> Result<()> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(Error::Argument {
            op,
            msg: format!("invalid {name}: {v}"),
        })
    }
}

/// Checks hyperparameters that must be finite and non-negative (learning rate, weight decay,
/// momentum, eps, ...), in order, naming the first bad one.
pub(crate) fn non_negative(op: &'static str, values: &[(&str, f64)]) -> Result<()> {
    values
        .iter()
        .try_for_each(|&(name, v)| check(op, name, v, v >= 0.0))
}

/// The gradient with an L2 penalty `weight_decay * p` added (PyTorch's `weight_decay`).
pub(crate) fn l2_penalty(grad: &Tensor, p: &Tensor, weight_decay: f64) -> Result<Tensor> {
    if weight_decay == 0.0 {
        Ok(grad.clone())
    } else {
        grad.add(&p.mul_scalar(weight_decay)?)
    }
}

/// `buf = max(buf, x)`, written into the buffer in place, starting from `x` when the buffer is
/// empty (AMSGrad's running maximum).
pub(crate) fn running_max(buf: &mut Option<Tensor>, x: &Tensor) -> Result<Tensor> {
    ema_like(buf, x, |b| b.maximum(x), |x| Ok(x.clone()))
}

/// `buf = decay * buf + scale * x`, written into the buffer in place (so a traced update
/// writes the live state), starting from `init(x)` when the buffer is empty.
pub(crate) fn ema(
    buf: &mut Option<Tensor>,
    x: &Tensor,
    decay: f64,
    scale: f64,
    init: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    // `b * decay + x * scale`, the sequence the fused kernel runs by a hand-written loop (see
    // the comment in `adam.rs`).
    ema_like(
        buf,
        x,
        |b| b.mul_scalar(decay)?.add(&x.mul_scalar(scale)?),
        init,
    )
}

/// `buf = next(buf)`, written into the buffer in place (so a traced update writes the live
/// state), starting from `init(x)` when the buffer is empty.
fn ema_like(
    buf: &mut Option<Tensor>,
    x: &Tensor,
    next: impl FnOnce(&Tensor) -> Result<Tensor>,
    init: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    match buf.as_ref() {
        Some(b) => {
            let next = next(b)?;
            b.assign(&next)?;
            Ok(next)
        }
        None if is_tracing() => Err(Error::Argument {
            op: "optimizer update",
            msg: "the optimizer's state does not exist yet, so it cannot be traced: \
                  take the first step eagerly, then compile the update"
                .into(),
        }),
        None => {
            let next = init(x)?.contiguous_copy();
            *buf = Some(next.clone());
            Ok(next)
        }
    }
}
