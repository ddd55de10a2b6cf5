//! # ferrograd-nn
//!
//! Neural-network building blocks on top of `ferrograd-core`: the [`Module`] trait and layers
//! ([`Linear`], [`Sequential`], [`Dropout`], [`PRelu`], [`Maxout`], activations, [`Conv2d`],
//! [`MaxPool2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`], [`Flatten`], [`BatchNorm1d`],
//! [`BatchNorm2d`], [`LayerNorm`], [`Embedding`]), the [`mlp`] builder (logistic and softmax
//! regression are its zero-hidden-layer case), the convolutional builders [`lenet`] and
//! [`cnn`], weight initialisers, losses (each with a [`loss::Reduction`]), optimizers (SGD with
//! momentum/Nesterov, Adam, AdamW and AMSGrad, RMSprop, Adagrad; each can maximize),
//! learning-rate schedules (including reduce-on-plateau and one-cycle), gradient clipping (by
//! norm or by value), early stopping and model summaries. Everything is composed from core
//! tensor ops, so every layer and loss is differentiable without a hand-written backward.
//!
//! ```
//! use ferrograd_core::{DType, Rng, Tensor};
//! use ferrograd_nn::{Activation, MlpConfig, Module, Optimizer, Sgd, SgdConfig, loss, mlp, named_params};
//! let mut rng = Rng::new(0);
//! let model = mlp(&MlpConfig { input: 4, hidden: vec![8], output: 3, activation: Activation::Relu, dropout: 0.0 }, DType::F32, &mut rng)?;
//! let params = named_params(&model);
//! assert_eq!(params[0].0, "layers.0.weight");
//! let mut opt = Sgd::new(params, SgdConfig { lr: 0.1, ..Default::default() })?;
//! let x = Tensor::randn(&[5, 4], 0.0, 1.0, DType::F32, &mut rng)?;
//! let y = Tensor::from_vec(vec![0i64, 1, 2, 0, 1], &[5])?;
//! let loss = loss::cross_entropy(&model.forward(&x)?, &y, 0.0)?;
//! opt.step(&loss.backward()?)?;
//! # Ok::<(), ferrograd_core::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod activation;
pub mod activation_curve;
pub mod checkpoint;
mod conv;
mod dropout;
mod early_stopping;
mod embedding;
pub mod init;
mod linear;
pub mod loss;
mod mlp;
mod models;
mod module;
mod norm;
pub mod optim;
mod pool;
mod step;
mod summary;

pub use activation::{Activation, Maxout, PRelu};
pub use conv::{Conv2d, Conv2dConfig};
pub use dropout::Dropout;
pub use early_stopping::{EarlyStopping, Goal, Verdict};
pub use embedding::{Embedding, EmbeddingConfig};
pub use linear::{Linear, LinearConfig};
pub use mlp::{MlpConfig, accuracy, mlp};
pub use models::{CnnConfig, LeNetConfig, cnn, lenet};
pub use module::{Module, Sequential, named_buffers, named_params, named_state};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, LayerNorm, LayerNormConfig};
pub use optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, LrSchedule, Optimizer, RmsProp, RmsPropConfig,
    RuleOptimizer, Schedule, Sgd, SgdConfig, Step, UpdateRule, clip_grad_norm,
    clip_grad_norm_traceable, clip_grad_value,
};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, Flatten, MaxPool2d};
pub use step::{TrainStep, classifier_step, classifier_train_step, grad_store};
pub use summary::{LayerSummary, ModelSummary, summary};
