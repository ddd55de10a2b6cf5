//! The MLP training-step fixture of the tests and benches: a classifier MLP with random
//! batches to train it on ([`MlpTask`], for the training steps of ferrograd-nn), and a
//! two-layer perceptron's step written with raw tensors ([`two_layer_step`], for the static
//! graphs of ferrograd-core), whose missing gradients are errors ([`gradients`]).

use ferrograd_core::{DType, Error, GradStore, Result, Rng, Tensor};
use ferrograd_nn::{Activation, MlpConfig, Sequential, mlp};

/// A classification problem for an MLP: its architecture and dtype; batches are random.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpTask {
    /// Input features.
    pub input: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Classes (the MLP's outputs).
    pub classes: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Dtype of the weights and inputs.
    pub dtype: DType,
}

impl MlpTask {
    /// The MNIST-shaped MLP of the benches: 784-256-128-10, ReLU, f32.
    pub fn mnist() -> MlpTask {
        MlpTask {
            input: 784,
            hidden: vec![256, 128],
            classes: 10,
            activation: Activation::Relu,
            dtype: DType::F32,
        }
    }

    /// The MLP, without dropout, initialised from `rng`.
    ///
    /// # Errors
    /// Errors of [`mlp`] (a zero width).
    pub fn model(&self, rng: &mut Rng) -> Result<Sequential> {
        let cfg = MlpConfig {
            input: self.input,
            hidden: self.hidden.clone(),
            output: self.classes,
            activation: self.activation,
            dropout: 0.0,
        };
        mlp(&cfg, self.dtype, rng)
    }

    /// `count` batches `[x, labels]` of `batch` samples drawn from `rng`, batch by batch:
    /// standard normal inputs, then uniformly random labels.
    ///
    /// # Errors
    /// Errors of the tensor constructors.
    pub fn batches(&self, count: usize, batch: usize, rng: &mut Rng) -> Result<Vec<[Tensor; 2]>> {
        (0..count)
            .map(|_| {
                let x = Tensor::randn(&[batch, self.input], 0.0, 1.0, self.dtype, rng)?;
                let y: Vec<i64> = (0..batch).map(|_| rng.below(self.classes) as i64).collect();
                Ok([x, Tensor::from_vec(y, &[batch])?])
            })
            .collect()
    }
}

/// The training step of a two-layer perceptron `logits = relu(x w1^T + b1) w2^T + b2` with the
/// mean softmax cross-entropy, written with raw tensors: `[x, labels] -> [loss, logits, the
/// gradient of the loss with respect to w1, b1, w2, b2]`.
///
/// # Errors
/// Shape errors of the ops; [`Error::Argument`] when a parameter gets no gradient (one that
/// does not require it), never a silent zero.
pub fn two_layer_step(params: [Tensor; 4]) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> {
    move |i: &[Tensor]| {
        let [w1, b1, w2, b2] = &params;
        let h = i[0].matmul(&w1.t()?)?.add(b1)?.relu()?;
        let logits = h.matmul(&w2.t()?)?.add(b2)?;
        let loss = logits.softmax_cross_entropy(&i[1])?.mean(&[], false)?;
        let g = loss.backward()?;
        let mut out = vec![loss, logits];
        out.extend(gradients(&g, &params.each_ref())?);
        Ok(out)
    }
}

/// The gradient of each of `params` in `grads`, in order.
///
/// # Errors
/// [`Error::Argument`] naming the position of a parameter that has no gradient: a step that
/// should differentiate every parameter fails instead of carrying on with a zero.
pub fn gradients(grads: &GradStore, params: &[&Tensor]) -> Result<Vec<Tensor>> {
    params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            grads.get(p).cloned().ok_or_else(|| Error::Argument {
                op: "gradients",
                msg: format!("parameter {k} has no gradient"),
            })
        })
        .collect()
}
