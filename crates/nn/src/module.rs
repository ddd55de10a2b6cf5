//! The [`Module`] trait and [`Sequential`]: a layer is a plain struct with a `forward`; its
//! parameters and buffers are reported by name, in a fixed order, so checkpoints are stable and
//! readable by other tools (`layers.0.weight`, `layers.1.running_mean`, as PyTorch names them).
//! Parameters are what optimizers train; buffers (batch norm's running statistics) are state
//! that checkpoints save and load but no optimizer touches.

use ferrograd_core::{Result, Tensor, scope};

/// A layer or model: a function of one tensor, possibly with parameters.
///
/// Only `forward` is required. Layers with parameters report them through `visit_params`,
/// layers with other saved state (running statistics) report it through `visit_buffers`;
/// layers that behave differently in training (dropout, batch norm) react to `set_training`.
pub trait Module: Send + Sync {
    /// Applies the layer.
    ///
    /// # Errors
    /// Shape or dtype errors of the underlying ops, naming the op.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Calls `f(name, parameter)` for each parameter, names prefixed with `prefix`.
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor)) {}

    /// Calls `f(name, buffer)` for each buffer: state saved in checkpoints but not trained
    /// (PyTorch's registered buffers, such as batch norm's `running_mean`), names prefixed
    /// with `prefix`.
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor)) {}

    /// Switches between training and evaluation behaviour (PyTorch `model.train(flag)`).
    /// Takes `&self` (layers keep the flag in an atomic), so a model can be switched while a
    /// training step borrows it.
    fn set_training(&self, _training: bool) {}

    /// Restarts the random streams that layers draw from in training (dropout masks) from
    /// `seed`. A training loop reseeds at every epoch from (run seed, epoch), so a run resumed
    /// from a checkpoint draws the same masks as one that never stopped.
    fn reseed(&self, _seed: u64) {}

    /// The layer's kind as PyTorch names its class (`Linear`, `Conv2d`, `ReLU`), for model
    /// summaries.
    fn name(&self) -> String {
        "Module".to_string()
    }

    /// Multiply-accumulates of one forward pass over an input of shape `input` giving
    /// `output` (both with their batch dimension), counting the products with weights (and
    /// batch normalisation's one per element); element-wise activations, pooling and reshapes
    /// count 0, as in the usual FLOP counters (fvcore, ptflops).
    fn macs(&self, _input: &[usize], _output: &[usize]) -> u64 {
        0
    }
}

/// All parameters of a module with their names, in a deterministic order.
pub fn named_params(m: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    m.visit_params("", &mut |name, t| out.push((name, t.clone())));
    out
}

/// All buffers of a module with their names, in a deterministic order.
pub fn named_buffers(m: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    m.visit_buffers("", &mut |name, t| out.push((name, t.clone())));
    out
}

/// Everything a checkpoint holds (PyTorch's `state_dict()`): the parameters, then the
/// buffers, by name.
///
/// ```
/// use ferrograd_core::{DType, Rng};
/// use ferrograd_nn::{BatchNorm2d, BatchNormConfig, named_params, named_state};
/// let bn = BatchNorm2d::new(3, BatchNormConfig::default(), DType::F32)?;
/// let names: Vec<String> = named_state(&bn).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
/// assert_eq!(named_params(&bn).len(), 2);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
pub fn named_state(m: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = named_params(m);
    out.extend(named_buffers(m));
    out
}

/// Joins a prefix and a name with a dot.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Layers applied in order (PyTorch `nn.Sequential`). Parameters are named
/// `layers.<index>.<name>`, where the index counts every layer, as in PyTorch.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Module + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// Appends a layer (builder form).
    pub fn with_layer(mut self, layer: impl Module + 'static) -> Self {
        self.push(layer);
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers, in order.
    pub fn layers(&self) -> impl Iterator<Item = &dyn Module> {
        self.layers.iter().map(|l| l.as_ref())
    }

    /// Applies the layers in order and returns every intermediate output (the last is the
    /// model's output), for inspection and teaching.
    ///
    /// # Errors
    /// The first layer error.
    pub fn forward_all(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut outs = Vec::with_capacity(self.layers.len());
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let _scope = scope(|| format!("layers.{i}"));
            h = layer.forward(&h)?;
            outs.push(h.clone());
        }
        Ok(outs)
    }
}

impl Module for Sequential {
    /// Applies the layers in order. In anomaly mode each layer runs in the scope
    /// `layers.<index>` (its parameters' prefix), so an error names the layer.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let _scope = scope(|| format!("layers.{i}"));
            h = layer.forward(&h)?;
        }
        Ok(h)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_params(&join(&join(prefix, "layers"), &i.to_string()), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_buffers(&join(&join(prefix, "layers"), &i.to_string()), f);
        }
    }

    fn name(&self) -> String {
        "Sequential".to_string()
    }

    fn set_training(&self, training: bool) {
        for layer in &self.layers {
            layer.set_training(training);
        }
    }

    fn reseed(&self, seed: u64) {
        // Each layer gets its own stream: the seed mixed with the layer's index.
        for (i, layer) in self.layers.iter().enumerate() {
            layer.reseed(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
    }
}
