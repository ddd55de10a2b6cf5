//! The training step of a classifier as one function of `[inputs, labels]`, returning
//! `[loss, logits, gradient of each parameter]`. The same function runs eagerly or is traced
//! into a static graph (`ferrograd_core::graph::StaticFn`), so every trainer uses one
//! definition of the step in both modes.

use ferrograd_core::{Error, GradStore, Result, Tensor};

use crate::loss;
use crate::module::Module;

/// The step of `model` with mean softmax cross-entropy (label smoothing as given), for the
/// gradients of `params`.
///
/// ```
/// use ferrograd_core::{DType, Rng, Tensor};
/// use ferrograd_nn::{Activation, MlpConfig, classifier_step, mlp, named_params};
/// let model = mlp(&MlpConfig { input: 4, hidden: vec![], output: 3, activation: Activation::Relu, dropout: 0.0 }, DType::F64, &mut Rng::new(0))?;
/// let params: Vec<Tensor> = named_params(&model).into_iter().map(|(_, p)| p).collect();
/// let step = classifier_step(&model, &params, 0.0);
/// let out = step(&[Tensor::ones(&[2, 4], DType::F64), Tensor::from_vec(vec![0i64, 2], &[2])?])?;
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
