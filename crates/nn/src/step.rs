//! The training step of a classifier, defined once and run eagerly or traced into a static
//! graph (`ferrograd_core::graph::StaticFn`): [`classifier_step`] (forward, loss, backward:
//! `[loss, logits, gradients...]`) and [`classifier_train_step`] / [`TrainStep`] (the whole
//! step with clipping and the optimizer's update, `[loss, logits]`).

use std::cell::RefCell;

use ferrograd_core::graph::{CompileOptions, CompiledGraph, StaticFn};
use ferrograd_core::{Error, GradStore, Result, Tensor};

use crate::loss;
use crate::module::Module;
use crate::optim::{Optimizer, Step, clip_grad_norm_traceable};

/// The step of `model` with mean softmax cross-entropy (label smoothing as given), for the
/// gradients of `params`.
///
/// ```
/// use ferrograd_core::{DType, Rng, Tensor};
/// use ferrograd_nn::{Activation, MlpConfig, classifier_step, mlp, named_params};
/// let model = mlp(&MlpConfig { input: 4, hidden: vec![], output: 3, activation: Activation::Relu, dropout: 0.0 }, DType::F64, &mut Rng::new(0))?;
/// let params: Vec<Tensor> = named_params(&model).into_iter().map(|(_, p)| p).collect();
/// let step = classifier_step(&model, &params, 0.0);
/// let out = step(&[Tensor::ones(&[2, 4], DType::F64)?, Tensor::from_vec(vec![0i64, 2], &[2])?])?;
/// assert_eq!(out.len(), 2 + params.len());
/// assert_eq!(out[1].shape(), &[2, 3]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
pub fn classifier_step<'a>(
    model: &'a dyn Module,
    params: &'a [Tensor],
    label_smoothing: f64,
) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a {
    move |i: &[Tensor]| {
        let [x, y] = i else {
            return Err(Error::Argument {
                op: "classifier_step",
                msg: format!("expected [inputs, labels], got {} tensors", i.len()),
            });
        };
        let logits = model.forward(x)?;
        let loss = loss::cross_entropy(&logits, y, label_smoothing)?;
        let grads = loss.backward()?;
        let mut out = vec![loss, logits];
        for (k, p) in params.iter().enumerate() {
            out.push(grads.get(p).cloned().ok_or_else(|| Error::Argument {
                op: "classifier_step",
                msg: format!("parameter {k} has no gradient (is it used by the model?)"),
            })?);
        }
        Ok(out)
    }
}

/// A gradient store holding `grads[k]` for `params[k]`, for an optimizer step.
pub fn grad_store(params: &[Tensor], grads: &[Tensor]) -> GradStore {
    let mut store = GradStore::default();
    for (p, g) in params.iter().zip(grads) {
        store.insert(p, g.clone());
    }
    store
}

/// The whole training step of a classifier as one function of `[inputs, labels, t, lr]` (`t`
/// the step number from 1 and `lr` the learning rate, 0-d float64 tensors), returning
/// `[loss, logits]`: forward, mean softmax cross-entropy, backward, optional clipping of the
/// gradients' global norm, and the optimizer's update of weights and state, in place.
///
/// Traced with `StaticFn`, the whole step, update included, becomes one graph whose fused
/// kernels write the new weights and optimizer state; `t` and `lr` are its run-time inputs, so
/// schedules and Adam's bias corrections need no retrace. [`TrainStep`] runs it either way.
pub fn classifier_train_step<'a>(
    model: &'a dyn Module,
    optimizer: &'a RefCell<dyn Optimizer + 'a>,
    label_smoothing: f64,
    clip_grad: Option<f64>,
) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a {
    move |i: &[Tensor]| {
        let [x, y, t, lr] = i else {
            return Err(Error::Argument {
                op: "classifier_train_step",
                msg: format!("expected [inputs, labels, t, lr], got {} tensors", i.len()),
            });
        };
        let logits = model.forward(x)?;
        let loss = loss::cross_entropy(&logits, y, label_smoothing)?;
        let mut grads = loss.backward()?;
        let mut opt = optimizer.try_borrow_mut().map_err(|_| Error::Argument {
            op: "classifier_train_step",
            msg: "the optimizer is borrowed elsewhere during the step".into(),
        })?;
        if let Some(max_norm) = clip_grad {
            let params: Vec<Tensor> = opt.params().iter().map(|(_, p)| p.clone()).collect();
            clip_grad_norm_traceable(&mut grads, &params, max_norm)?;
        }
        let at = Step {
            t: t.clone(),
            lr: lr.clone(),
        };
        opt.update(&grads, &at)?;
        Ok(vec![loss, logits])
    }
}

type StepFn<'a> = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a>;

/// A classifier's training step ([`classifier_train_step`]) run eagerly or compiled as one
/// static graph. In static mode the first step runs eagerly (it creates the optimizer's
/// state), later ones replay the graph traced for their batch shape; the two give the same
/// results.
///
/// ```
/// use std::cell::RefCell;
/// use ferrograd_core::{DType, Rng, Tensor};
/// use ferrograd_nn::{Activation, MlpConfig, Sgd, SgdConfig, TrainStep, mlp, named_params};
/// let model = mlp(&MlpConfig { input: 4, hidden: vec![8], output: 3, activation: Activation::Relu, dropout: 0.0 }, DType::F32, &mut Rng::new(0))?;
/// let opt = RefCell::new(Sgd::new(named_params(&model), SgdConfig { lr: 0.1, ..Default::default() })?);
/// let mut step = TrainStep::new(&model, &opt, 0.0, None, true);
/// let (x, y) = (Tensor::ones(&[2, 4], DType::F32)?, Tensor::from_vec(vec![0i64, 2], &[2])?);
/// let first = step.run(&x, &y)?[0].item()?;
/// for _ in 0..20 {
///     step.run(&x, &y)?;
/// }
/// assert!(step.run(&x, &y)?[0].item()? < first);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
pub struct TrainStep<'a> {
    step: StepFn<'a>,
    compiled: Option<StaticFn<StepFn<'a>>>,
    optimizer: &'a RefCell<dyn Optimizer + 'a>,
    t: Tensor,
    lr: Tensor,
}

impl<'a> TrainStep<'a> {
    /// The step of `model` updated by `optimizer`; `compile` picks static mode.
    pub fn new(
        model: &'a dyn Module,
        optimizer: &'a RefCell<dyn Optimizer + 'a>,
        label_smoothing: f64,
        clip_grad: Option<f64>,
        compile: bool,
    ) -> Self {
        let build = || -> StepFn<'a> {
            Box::new(classifier_train_step(
                model,
                optimizer,
                label_smoothing,
                clip_grad,
            ))
        };
        TrainStep {
            step: build(),
            compiled: compile.then(|| StaticFn::new(build(), CompileOptions::default())),
            optimizer,
            t: Tensor::scalar(0.0f64),
            lr: Tensor::scalar(0.0f64),
        }
    }

    /// One step on a batch; returns `[loss, logits]`. The optimizer's learning rate and step
    /// count are read before and the count advanced after.
    ///
    /// # Errors
    /// Shape errors of the model or the loss, and errors of the optimizer.
    pub fn run(&mut self, x: &Tensor, y: &Tensor) -> Result<Vec<Tensor>> {
        let (t, lr) = {
            let opt = self.optimizer.borrow();
            (opt.steps() + 1, opt.learning_rate())
        };
        self.t.fill(t as f64)?;
        self.lr.fill(lr)?;
        let inputs = [x.clone(), y.clone(), self.t.clone(), self.lr.clone()];
        let out = match self.compiled.as_mut() {
            Some(f) if t > 1 => f.call(&inputs)?,
            _ => (self.step)(&inputs)?,
        };
        self.optimizer.borrow_mut().advance();
        Ok(out)
    }

    /// The compiled graph for a batch of these shapes, once traced (static mode only).
    pub fn compiled(&mut self, x: &Tensor, y: &Tensor) -> Option<&mut CompiledGraph> {
        let inputs = [x.clone(), y.clone(), self.t.clone(), self.lr.clone()];
        self.compiled.as_mut()?.compiled(&inputs)
    }

    /// How many times the step was traced (static mode).
    pub fn traces(&self) -> usize {
        self.compiled.as_ref().map_or(0, StaticFn::traces)
    }
}
