//! Normalisation layers: batch normalisation (PyTorch `nn.BatchNorm1d`, `nn.BatchNorm2d`),
//! whose running statistics are buffers (saved by checkpoints, never trained) updated in
//! training mode and used in evaluation mode, and layer normalisation (`nn.LayerNorm`).

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use ferrograd_core::{BatchNormOptions, DType, Error, Result, Tensor, no_grad};

use crate::module::{Module, join};

/// Hyperparameters of batch normalisation (PyTorch's keyword arguments and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance (1e-5).
    pub eps: f64,
    /// Weight of each new batch in the running statistics (0.1).
    pub momentum: f64,
    /// Learnable per-channel scale `weight` (ones) and shift `bias` (zeros) (true).
    pub affine: bool,
    /// Keep running statistics for evaluation (true); without them, every mode normalises
    /// with the batch's own statistics.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: 0.1,
            affine: true,
            track_running_stats: true,
        }
    }
}

/// Batch normalisation over the channel axis 1 of its input: the state and behaviour shared
/// by [`BatchNorm1d`] and [`BatchNorm2d`], which differ only in the inputs they accept.
///
/// In training mode it normalises with the batch's statistics, updates `running_mean` and
/// `running_var` (`(1 - momentum) running + momentum batch`, unbiased batch variance) and
/// counts the step in `num_batches_tracked`; in evaluation mode it normalises with the
/// running statistics. The updates are stores under `no_grad`, so a compiled training step
/// replays them.
pub struct BatchNorm {
    /// Per-channel scale `[c]` (parameter), if affine.
    pub weight: Option<Tensor>,
    /// Per-channel shift `[c]` (parameter), if affine.
    pub bias: Option<Tensor>,
    /// Running mean `[c]` (buffer), if tracked.
    pub running_mean: Option<Tensor>,
    /// Running variance `[c]` (buffer), if tracked.
    pub running_var: Option<Tensor>,
    /// Training steps taken, an i64 scalar (buffer), if tracked.
    pub num_batches_tracked: Option<Tensor>,
    num_features: usize,
    config: BatchNormConfig,
    layer: &'static str,
    /// The input shape accepted, for errors; `{c}` stands for the channel count.
    input: &'static str,
    ranks: &'static [usize],
    training: AtomicBool,
}

impl BatchNorm {
    fn build(
        layer: &'static str,
        input: &'static str,
        ranks: &'static [usize],
        num_features: usize,
        config: BatchNormConfig,
        dtype: DType,
    ) -> Result<Self> {
        let momentum_ok = (0.0..=1.0).contains(&config.momentum);
        if num_features == 0 || !momentum_ok || !(config.eps.is_finite() && config.eps >= 0.0) {
            return Err(Error::Argument {
                op: layer,
                msg: format!(
                    "{num_features} features, momentum {}, eps {}: expected a positive feature \
                     count, a momentum in [0, 1] and a finite eps >= 0",
                    config.momentum, config.eps
                ),
            });
        }
        let c = [num_features];
        let (weight, bias) = if config.affine {
            (
                Some(Tensor::ones(&c, dtype)?.with_requires_grad(true)),
                Some(Tensor::zeros(&c, dtype)?.with_requires_grad(true)),
            )
        } else {
            (None, None)
        };
        let (running_mean, running_var, num_batches_tracked) = if config.track_running_stats {
            (
                Some(Tensor::zeros(&c, dtype)?),
                Some(Tensor::ones(&c, dtype)?),
                Some(Tensor::scalar(0i64)),
            )
        } else {
            (None, None, None)
        };
        Ok(BatchNorm {
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
            num_features,
            config,
            layer,
            input,
            ranks,
            training: AtomicBool::new(true),
        })
    }

    /// Channels normalised.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The hyperparameters.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn expected_input(&self) -> String {
        self.input.replace("{c}", &self.num_features.to_string())
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.num_features;
        if !self.ranks.contains(&x.rank()) || x.shape()[1] != c {
            return Err(Error::Shape {
                op: self.layer,
                expected: self.expected_input(),
                got: x.shape().to_vec(),
            });
        }
        let training_mode = self.is_training();
        let running = self.running_mean.as_ref().zip(self.running_var.as_ref());
        // Without running statistics every mode uses the batch's (PyTorch does the same).
        let training = training_mode || running.is_none();
        if training && x.numel() / c <= 1 {
            return Err(Error::Shape {
                op: self.layer,
                expected: format!(
                    "{} with more than one value per channel in training mode",
                    self.expected_input()
                ),
                got: x.shape().to_vec(),
            });
        }
        let opts = BatchNormOptions {
            running,
            training,
            momentum: self.config.momentum,
            eps: self.config.eps,
        };
        let y = x.batch_norm(self.weight.as_ref().zip(self.bias.as_ref()), opts)?;
        if let (true, Some(n)) = (training_mode, &self.num_batches_tracked) {
            let _g = no_grad();
            n.assign(&n.add_scalar(1.0)?)?;
        }
        Ok(y)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f(join(prefix, "weight"), w);
            f(join(prefix, "bias"), b);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        let buffers = [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ];
        for (name, t) in buffers {
            if let Some(t) = t {
                f(join(prefix, name), t);
            }
        }
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn name(&self) -> String {
        self.layer.to_string()
    }

    /// One multiply-add per element (the normalisation folded into a scale and a shift).
    fn macs(&self, _input: &[usize], output: &[usize]) -> u64 {
        output.iter().product::<usize>() as u64
    }
}

/// Declares a batch-norm layer accepting inputs of the given ranks: a wrapper of
/// [`BatchNorm`] (reachable through `Deref`) that is a [`Module`] like it.
macro_rules! batch_norm_layer {
    ($(#[$doc:meta])* $name:ident, $input:literal, $ranks:expr) => {
        $(#[$doc])*
        pub struct $name(BatchNorm);

        impl $name {
            /// A layer over `num_features` channels: weight ones, bias zeros, running mean
            /// zeros, running variance ones, `num_batches_tracked` 0, in training mode.
            ///
            /// # Errors
            /// [`Error::Argument`] for zero features, a momentum outside `[0, 1]` or a
            /// negative eps.
            pub fn new(num_features: usize, config: BatchNormConfig, dtype: DType) -> Result<Self> {
                BatchNorm::build(stringify!($name), $input, $ranks, num_features, config, dtype)
                    .map($name)
            }
        }

        impl Deref for $name {
            type Target = BatchNorm;

            fn deref(&self) -> &BatchNorm {
                &self.0
            }
        }

        impl Module for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.0.forward(x)
            }

            fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
                self.0.visit_params(prefix, f)
            }

            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
                self.0.visit_buffers(prefix, f)
            }

            fn set_training(&self, training: bool) {
                self.0.set_training(training)
            }

            fn name(&self) -> String {
                self.0.name()
            }

            fn macs(&self, input: &[usize], output: &[usize]) -> u64 {
                self.0.macs(input, output)
            }
        }
    };
}

batch_norm_layer!(
    /// Batch normalisation of `[n, c]` or `[n, c, l]` inputs over the batch (and length)
    /// (PyTorch `nn.BatchNorm1d`); parameters `weight`, `bias`; buffers `running_mean`,
    /// `running_var`, `num_batches_tracked`.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// use ferrograd_nn::{BatchNorm1d, BatchNormConfig, Module};
    /// let bn = BatchNorm1d::new(2, BatchNormConfig::default(), DType::F64)?;
    /// let x = Tensor::from_vec(vec![1.0f64, 10.0, 3.0, 30.0], &[2, 2])?;
    /// let y = bn.forward(&x)?.to_vec::<f64>()?;
    /// assert!((y[0] + 1.0).abs() < 1e-4 && (y[3] - 1.0).abs() < 1e-4);
    /// assert_eq!(bn.running_mean.as_ref().unwrap().to_vec::<f64>()?, vec![0.2, 2.0]);
    /// assert!(bn.forward(&Tensor::ones(&[2, 3], DType::F64)?).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    BatchNorm1d,
    "an input [batch, {c}] or [batch, {c}, length]",
    &[2, 3]
);

batch_norm_layer!(
    /// Batch normalisation of `[n, c, h, w]` inputs over the batch and the image (PyTorch
    /// `nn.BatchNorm2d`); parameters `weight`, `bias`; buffers `running_mean`, `running_var`,
    /// `num_batches_tracked`.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// use ferrograd_nn::{BatchNorm2d, BatchNormConfig, Module};
    /// let bn = BatchNorm2d::new(3, BatchNormConfig::default(), DType::F32)?;
    /// let x = Tensor::randn(&[4, 3, 5, 5], 2.0, 3.0, DType::F32, &mut ferrograd_core::Rng::new(0))?;
    /// assert_eq!(bn.forward(&x)?.shape(), &[4, 3, 5, 5]);
    /// assert_eq!(bn.num_batches_tracked.as_ref().unwrap().item()?, 1.0);
    /// bn.set_training(false); // running statistics from now on
    /// assert_eq!(bn.forward(&x)?.shape(), &[4, 3, 5, 5]);
    /// assert_eq!(bn.num_batches_tracked.as_ref().unwrap().item()?, 1.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    BatchNorm2d,
    "an input [batch, {c}, height, width]",
    &[4]
);

/// Hyperparameters of [`LayerNorm`] (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the variance (1e-5).
    pub eps: f64,
    /// Learnable `weight` (ones) and `bias` (zeros) of the normalised shape (true).
    pub elementwise_affine: bool,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig {
            eps: 1e-5,
            elementwise_affine: true,
        }
    }
}

/// Layer normalisation over the trailing `normalized_shape` dimensions of each sample
/// (PyTorch `nn.LayerNorm`); parameters `weight` and `bias` of that shape. The same in
/// training and evaluation.
///
/// ```
/// use ferrograd_core::{DType, Tensor};
/// use ferrograd_nn::{LayerNorm, LayerNormConfig, Module};
/// let ln = LayerNorm::new(&[2], LayerNormConfig { eps: 0.0, ..Default::default() }, DType::F64)?;
/// let y = ln.forward(&Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 30.0], &[2, 2])?)?;
/// assert_eq!(y.to_vec::<f64>()?, vec![-1.0, 1.0, -1.0, 1.0]);
/// assert!(ln.forward(&Tensor::ones(&[2, 3], DType::F64)?).is_err());
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
pub struct LayerNorm {
    /// Scale of the normalised shape (parameter), if affine.
    pub weight: Option<Tensor>,
    /// Shift of the normalised shape (parameter), if affine.
    pub bias: Option<Tensor>,
    normalized_shape: Vec<usize>,
    eps: f64,
}

impl LayerNorm {
    /// A layer normalising the trailing dimensions `normalized_shape`.
    ///
    /// # Errors
    /// [`Error::Argument`] for an empty shape, a zero dimension or a negative eps.
    pub fn new(normalized_shape: &[usize], config: LayerNormConfig, dtype: DType) -> Result<Self> {
        if normalized_shape.is_empty()
            || normalized_shape.contains(&0)
            || !(config.eps.is_finite() && config.eps >= 0.0)
        {
            return Err(Error::Argument {
                op: "LayerNorm",
                msg: format!(
                    "normalized shape {normalized_shape:?}, eps {}: expected positive sizes and                      a finite eps >= 0",
                    config.eps
                ),
            });
        }
        let (weight, bias) = if config.elementwise_affine {
            (
                Some(Tensor::ones(normalized_shape, dtype)?.with_requires_grad(true)),
                Some(Tensor::zeros(normalized_shape, dtype)?.with_requires_grad(true)),
            )
        } else {
            (None, None)
        };
        Ok(LayerNorm {
            weight,
            bias,
            normalized_shape: normalized_shape.to_vec(),
            eps: config.eps,
        })
    }

    /// The normalised trailing shape.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.normalized_shape.len();
        if x.rank() < k || x.shape()[x.rank() - k..] != self.normalized_shape[..] {
            return Err(Error::Shape {
                op: "LayerNorm",
                expected: format!("an input [..., {}]", dims(&self.normalized_shape)),
                got: x.shape().to_vec(),
            });
        }
        let affine = self.weight.as_ref().zip(self.bias.as_ref());
        x.layer_norm(&self.normalized_shape, affine, self.eps)
    }

    fn name(&self) -> String {
        "LayerNorm".to_string()
    }

    /// One multiply-add per element (the normalisation's scale and shift).
    fn macs(&self, _input: &[usize], output: &[usize]) -> u64 {
        output.iter().product::<usize>() as u64
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f(join(prefix, "weight"), w);
            f(join(prefix, "bias"), b);
        }
    }
}

fn dims(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
