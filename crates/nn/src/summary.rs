//! Model summaries, like Keras' `model.summary()`: one row per layer of a [`Sequential`] with
//! its output shape, parameter count and multiply-accumulates for one sample, found by running
//! one zero sample through the model.

use ferrograd_core::{DType, Result, Tensor, no_grad};

use crate::module::{Module, Sequential, named_buffers, named_params};

/// One layer of a [`ModelSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// The prefix of the layer's parameters (`layers.3`).
    pub name: String,
    /// The layer's kind ([`Module::name`]: `Conv2d`, `ReLU`, ...).
    pub kind: String,
    /// Output shape of one sample (without the batch dimension).
    pub output_shape: Vec<usize>,
    /// Trainable parameters (elements).
    pub params: usize,
    /// Elements of saved but untrained state (batch norm's running statistics).
    pub buffers: usize,
    /// Multiply-accumulates for one sample ([`Module::macs`]).
    pub macs: u64,
}

/// The layers of a model for inputs of one shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// Shape of one input sample (without the batch dimension).
    pub input_shape: Vec<usize>,
    /// One row per layer, in order.
    pub layers: Vec<LayerSummary>,
}

impl ModelSummary {
    /// Total trainable parameters; equals the elements of [`named_params`].
    pub fn params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Total elements of buffers (non-trainable state).
    pub fn buffers(&self) -> usize {
        self.layers.iter().map(|l| l.buffers).sum()
    }

    /// Total multiply-accumulates of one sample's forward pass.
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(|l| l.macs).sum()
    }
}

/// Summarises `model` for samples of `input_shape` (without the batch dimension) in `dtype`.
/// The model is switched to evaluation mode (so batch norm's running statistics are not
/// touched) and left there.
///
/// ```
/// use ferrograd_core::{DType, Rng};
/// use ferrograd_nn::{Activation, MlpConfig, mlp, summary};
/// let cfg = MlpConfig { input: 64, hidden: vec![32], output: 10, activation: Activation::Relu, dropout: 0.0 };
/// let model = mlp(&cfg, DType::F32, &mut Rng::new(0))?;
/// let s = summary(&model, &[64], DType::F32)?;
/// assert_eq!(s.layers[0].kind, "Linear");
/// assert_eq!(s.layers[0].output_shape, [32]);
/// assert_eq!(s.params(), 64 * 32 + 32 + 32 * 10 + 10);
/// assert_eq!(s.macs(), 64 * 32 + 32 * 10);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// The first layer's error when the shape does not fit the model.
pub fn summary(model: &Sequential, input_shape: &[usize], dtype: DType) -> Result<ModelSummary> {
    model.set_training(false);
    let _guard = no_grad();
    let shape: Vec<usize> = std::iter::once(1)
        .chain(input_shape.iter().copied())
        .collect();
    let mut x = Tensor::zeros(&shape, dtype)?;
    let mut layers = Vec::with_capacity(model.len());
    for (i, layer) in model.layers().enumerate() {
        let y = layer.forward(&x)?;
        let count = |list: Vec<(String, Tensor)>| list.iter().map(|(_, t)| t.numel()).sum();
        layers.push(LayerSummary {
            name: format!("layers.{i}"),
            kind: layer.name(),
            output_shape: y.shape()[1..].to_vec(),
            params: count(named_params(layer)),
            buffers: count(named_buffers(layer)),
            macs: layer.macs(x.shape(), y.shape()),
        });
        x = y;
    }
    Ok(ModelSummary {
        input_shape: input_shape.to_vec(),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CnnConfig, LeNetConfig, cnn, lenet, named_state};
    use ferrograd_core::Rng;

    fn numel(list: Vec<(String, Tensor)>) -> usize {
        list.iter().map(|(_, t)| t.numel()).sum()
    }

    #[test]
    fn lenet_counts_are_the_classic_ones() {
        let model = lenet(
            &LeNetConfig::for_image(1, 28, 28, 10),
            DType::F32,
            &mut Rng::new(0),
        )
        .unwrap();
        let s = summary(&model, &[1, 28, 28], DType::F32).unwrap();
        assert_eq!(s.params(), numel(named_params(&model)));
        assert_eq!(s.params(), 61_706);
        // conv1 6x28x28 outputs of 25 products, conv2 16x10x10 of 150, then 400-120-84-10.
        assert_eq!(
            s.macs(),
            6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
        );
        let kinds: Vec<&str> = s.layers.iter().map(|l| l.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Conv2d",
                "ReLU",
                "MaxPool2d",
                "Conv2d",
                "ReLU",
                "MaxPool2d",
                "Flatten",
                "Linear",
                "ReLU",
                "Linear",
                "ReLU",
                "Linear"
            ]
        );
        assert_eq!(s.layers[2].output_shape, [6, 14, 14]);
        assert_eq!(s.layers[6].output_shape, [400]);
    }

    #[test]
    fn cnn_counts_match_its_parameters_and_buffers() {
        let cfg = CnnConfig {
            in_channels: 3,
            channels: vec![8, 16],
            convs_per_stage: 1,
            classes: 10,
        };
        let model = cnn(&cfg, DType::F32, &mut Rng::new(0)).unwrap();
        // Training mode on entry: the summary must not move batch norm's statistics.
        model.set_training(true);
        let before: Vec<Vec<f32>> = named_state(&model)
            .iter()
            .map(|(_, t)| t.to_vec::<f32>().unwrap_or_default())
            .collect();
        let s = summary(&model, &[3, 16, 16], DType::F32).unwrap();
        let after: Vec<Vec<f32>> = named_state(&model)
            .iter()
            .map(|(_, t)| t.to_vec::<f32>().unwrap_or_default())
            .collect();
        assert_eq!(before, after);
        assert_eq!(s.params(), numel(named_params(&model)));
        assert_eq!(s.buffers(), numel(named_buffers(&model)));
        assert_eq!(s.layers.last().unwrap().output_shape, [10]);
        let conv_macs: u64 = s
            .layers
            .iter()
            .filter(|l| l.kind == "Conv2d")
            .map(|l| l.macs)
            .sum();
        assert_eq!(conv_macs, 8 * 16 * 16 * 27 + 16 * 8 * 8 * 72);
        assert!(
            s.layers
                .iter()
                .any(|l| l.kind == "BatchNorm2d" && l.macs == 8 * 16 * 16)
        );
        assert!(summary(&model, &[1, 16, 16], DType::F32).is_err());
    }
}
