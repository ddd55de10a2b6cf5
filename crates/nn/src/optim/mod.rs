//! Optimizers, learning-rate schedules and gradient clipping.
//!
//! Traversal is kept apart from the update rule: [`Optim`] walks the named parameters, fetches
//! each gradient (reporting a parameter that has none instead of skipping it), and hands one
//! parameter at a time, with its explicit state buffers, to an [`UpdateRule`] (SGD, Adam/AdamW,
//! RMSprop, Adagrad). Updates are written in place under `no_grad`. Each rule's config implements
//! `Default` with PyTorch's defaults.

mod adagrad;
mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;

pub use adagrad::AdagradConfig;
pub use adam::AdamConfig;
pub use clip::clip_grad_norm;
pub use rmsprop::RmsPropConfig;
pub use schedule::{LrSchedule, Schedule};
pub use sgd::SgdConfig;

use ferrograd_core::{Error, GradStore, Result, Tensor, no_grad};

/// Gradient descent / SGD with momentum and Nesterov (PyTorch `torch.optim.SGD`).
pub type Sgd = Optim<SgdConfig>;
/// Adam and AdamW (PyTorch `torch.optim.Adam`, `torch.optim.AdamW`).
pub type Adam = Optim<AdamConfig>;
/// RMSprop (PyTorch `torch.optim.RMSprop`).
pub type RmsProp = Optim<RmsPropConfig>;
/// Adagrad (PyTorch `torch.optim.Adagrad`).
pub type Adagrad = Optim<AdagradConfig>;

/// An optimizer: updates its parameters from a gradient store.
pub trait Optimizer {
    /// Applies one update to every parameter.
    ///
    /// # Errors
    /// [`Error::Argument`] naming a parameter that has no gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;

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

/// How one parameter is updated: the rule of an optimizer, with its hyperparameters.
pub trait UpdateRule {
    /// Names of the per-parameter state buffers (as PyTorch names them).
    const BUFFERS: &'static [&'static str];
    /// Name used in error messages.
    const NAME: &'static str;

    /// Checks the hyperparameters.
    ///
    /// # Errors
    /// [`Error::Argument`] naming the bad hyperparameter.
    fn validate(&self) -> Result<()>;

    /// The learning rate the optimizer starts with (schedules change it later).
    fn initial_lr(&self) -> f64;

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
        at: Step,
    ) -> Result<Tensor>;
}

/// Where an update happens: the step number (1 for the first) and the current learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Step number, from 1.
    pub t: u64,
    /// Learning rate of this step.
    pub lr: f64,
}

/// An optimizer built from a parameter list and an [`UpdateRule`].
pub struct Optim<R: UpdateRule> {
    params: Vec<(String, Tensor)>,
    rule: R,
    lr: f64,
    /// `buffers[i][k]`: buffer `R::BUFFERS[k]` of parameter `i`.
    buffers: Vec<Vec<Option<Tensor>>>,
    step: u64,
}

impl<R: UpdateRule> Optim<R> {
    /// An optimizer over named parameters (from [`crate::named_params`]).
    ///
    /// # Errors
    /// [`Error::Argument`] for invalid hyperparameters.
    pub fn new(params: Vec<(String, Tensor)>, rule: R) -> Result<Self> {
        rule.validate()?;
        let buffers = vec![vec![None; R::BUFFERS.len()]; params.len()];
        Ok(Optim {
            params,
            lr: rule.initial_lr(),
            rule,
            buffers,
            step: 0,
        })
    }

    /// The update rule and its hyperparameters.
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }
}

impl<R: UpdateRule> Optimizer for Optim<R> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let _guard = no_grad();
        let t = self.step + 1;
        // Every gradient is fetched first, so a missing one leaves parameters and state as
        // they were.
        let gs = self
            .params
            .iter()
            .map(|(name, p)| {
                grads.get(p).ok_or_else(|| Error::Argument {
                    op: R::NAME,
                    msg: format!("parameter {name} has no gradient (is it used by the loss?)"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for (((_, p), buffers), g) in self.params.iter().zip(&mut self.buffers).zip(gs) {
            let value = self.rule.update(p, g, buffers, Step { t, lr: self.lr })?;
            p.assign(&value)?;
        }
        self.step = t;
        Ok(())
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
                    Some(t) if t.shape() == p.shape() && t.dtype() == p.dtype() => Some(t.detach()),
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

/// The gradient with an L2 penalty `weight_decay * p` added (PyTorch's `weight_decay`).
pub(crate) fn l2_penalty(grad: &Tensor, p: &Tensor, weight_decay: f64) -> Result<Tensor> {
    if weight_decay == 0.0 {
        Ok(grad.clone())
    } else {
        grad.add(&p.mul_scalar(weight_decay)?)
    }
}

/// `buf = decay * buf + scale * x`, starting from `init(x)` when the buffer is empty.
pub(crate) fn ema(
    buf: &mut Option<Tensor>,
    x: &Tensor,
    decay: f64,
    scale: f64,
    init: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let next = match buf.as_ref() {
        Some(b) => b.mul_scalar(decay)?.add(&x.mul_scalar(scale)?)?,
        None => init(x)?,
    };
    *buf = Some(next.clone());
    Ok(next)
}
