//! Convolutional model builders for image classification, each a [`Sequential`] named like
//! the equivalent PyTorch `nn.Sequential` (`layers.0.weight`, `layers.1.running_mean`, ...):
//! [`lenet`], LeNet-5 in its modern form (ReLU and max pooling), and [`cnn`], a plain
//! configurable network of conv-batch-norm-ReLU stages with global average pooling.

use ferrograd_core::op::Pool2dParams;
use ferrograd_core::{DType, Error, Result, Rng};

use crate::activation::Activation;
use crate::conv::{Conv2d, Conv2dConfig};
use crate::linear::{Linear, LinearConfig};
use crate::module::Sequential;
use crate::norm::{BatchNorm2d, BatchNormConfig};
use crate::pool::{AdaptiveAvgPool2d, Flatten, MaxPool2d};

/// Architecture of [`lenet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeNetConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Height and width of the input images.
    pub image_size: [usize; 2],
    /// Zero padding of the first convolution.
    pub padding: usize,
    /// Outputs (classes).
    pub classes: usize,
}

impl LeNetConfig {
    /// The classic layout for `channels x height x width` images: the first convolution pads
    /// images smaller than 32x32 by 2 (so 28x28 MNIST digits are seen as 32x32, as in the
    /// MNIST LeNet) and larger ones not at all.
    pub fn for_image(channels: usize, height: usize, width: usize, classes: usize) -> Self {
        LeNetConfig {
            in_channels: channels,
            image_size: [height, width],
            padding: if height.min(width) < 32 { 2 } else { 0 },
            classes,
        }
    }

    /// Height and width of the feature maps that are flattened: `[5, 5]` for 28x28 and
    /// 32x32 inputs; `None` when the input is too small for the two 5x5 convolutions and
    /// poolings.
    pub fn feature_size(&self) -> Option<[usize; 2]> {
        let axis = |s: usize| {
            let a = (s + 2 * self.padding).checked_sub(4)? / 2;
            let b = a.checked_sub(4)? / 2;
            (b > 0).then_some(b)
        };
        Some([axis(self.image_size[0])?, axis(self.image_size[1])?])
    }
}

/// LeNet-5 in its modern form: conv 5x5 (6) -> ReLU -> max pool 2 -> conv 5x5 (16) -> ReLU ->
/// max pool 2 -> flatten -> 120 -> ReLU -> 84 -> ReLU -> classes, PyTorch's default
/// initialisation. Parameters `layers.{0,3,7,9,11}.{weight,bias}`.
///
/// ```
/// use ferrograd_core::{DType, Rng, Tensor};
/// use ferrograd_nn::{LeNetConfig, Module, lenet, named_params};
/// let m = lenet(&LeNetConfig::for_image(1, 28, 28, 10), DType::F32, &mut Rng::new(0))?;
/// assert_eq!(m.forward(&Tensor::ones(&[2, 1, 28, 28], DType::F32)?)?.shape(), &[2, 10]);
/// assert_eq!(named_params(&m)[4].0, "layers.7.weight");
/// assert_eq!(named_params(&m)[4].1.shape(), &[120, 400]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for zero channels or classes, or images too small for the network.
pub fn lenet(cfg: &LeNetConfig, dtype: DType, rng: &mut Rng) -> Result<Sequential> {
    let Some([fh, fw]) = cfg.feature_size() else {
        return Err(Error::Argument {
            op: "lenet",
            msg: format!(
                "images of {:?} (padding {}) are too small for two 5x5 convolutions each \
                 followed by 2x2 pooling (28x28 or 32x32 expected)",
                cfg.image_size, cfg.padding
            ),
        });
    };
    if cfg.in_channels == 0 || cfg.classes == 0 {
        return Err(Error::Argument {
            op: "lenet",
            msg: format!(
                "{} channels and {} classes: both must be positive",
                cfg.in_channels, cfg.classes
            ),
        });
    }
    let pool = || MaxPool2d::new(Pool2dParams::new(2));
    let linear = |i, o, rng: &mut Rng| Linear::new(i, o, LinearConfig::default(), dtype, rng);
    let conv1 = Conv2dConfig::new(5).padding(cfg.padding);
    Ok(Sequential::new()
        .with_layer(Conv2d::new(cfg.in_channels, 6, conv1, dtype, rng)?)
        .with_layer(Activation::Relu)
        .with_layer(pool()?)
        .with_layer(Conv2d::new(6, 16, Conv2dConfig::new(5), dtype, rng)?)
        .with_layer(Activation::Relu)
        .with_layer(pool()?)
        .with_layer(Flatten)
        .with_layer(linear(16 * fh * fw, 120, rng)?)
        .with_layer(Activation::Relu)
        .with_layer(linear(120, 84, rng)?)
        .with_layer(Activation::Relu)
        .with_layer(linear(84, cfg.classes, rng)?))
}

/// Architecture of [`cnn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnnConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Output channels of each stage's convolutions; each stage halves the image.
    pub channels: Vec<usize>,
    /// Convolutions per stage (1 or more).
    pub convs_per_stage: usize,
    /// Outputs (classes).
    pub classes: usize,
}

/// A plain convolutional network: per stage, `convs_per_stage` times (conv 3x3 with padding
/// 1 and no bias -> batch norm -> ReLU), then max pool 2; then global average pooling,
/// flatten and a linear head. Any image of at least `2^stages` pixels a side fits.
///
/// With one convolution per stage, stage `s` is `layers.{4s}` (conv), `layers.{4s+1}`
/// (batch norm), `layers.{4s+2}` (ReLU), `layers.{4s+3}` (pool).
///
/// ```
/// use ferrograd_core::{DType, Rng, Tensor};
/// use ferrograd_nn::{CnnConfig, Module, cnn, named_buffers, named_params};
/// let cfg = CnnConfig { in_channels: 3, channels: vec![8, 16], convs_per_stage: 1, classes: 10 };
/// let m = cnn(&cfg, DType::F32, &mut Rng::new(0))?;
/// assert_eq!(m.forward(&Tensor::ones(&[2, 3, 32, 32], DType::F32)?)?.shape(), &[2, 10]);
/// let names: Vec<String> = named_params(&m).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["layers.0.weight", "layers.1.weight", "layers.1.bias", "layers.4.weight",
///                    "layers.5.weight", "layers.5.bias", "layers.10.weight", "layers.10.bias"]);
/// assert_eq!(named_buffers(&m)[0].0, "layers.1.running_mean");
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for no stages, zero sizes or zero convolutions per stage.
pub fn cnn(cfg: &CnnConfig, dtype: DType, rng: &mut Rng) -> Result<Sequential> {
    if cfg.channels.is_empty()
        || cfg.channels.contains(&0)
        || cfg.in_channels == 0
        || cfg.classes == 0
        || cfg.convs_per_stage == 0
    {
        return Err(Error::Argument {
            op: "cnn",
            msg: format!(
                "{} input channels, stage channels {:?}, {} convolutions per stage, {} \
                 classes: expected at least one stage and positive sizes",
                cfg.in_channels, cfg.channels, cfg.convs_per_stage, cfg.classes
            ),
        });
    }
    let mut seq = Sequential::new();
    let mut width = cfg.in_channels;
    for &c in &cfg.channels {
        for _ in 0..cfg.convs_per_stage {
            let conv = Conv2dConfig::new(3).padding(1).bias(false);
            seq.push(Conv2d::new(width, c, conv, dtype, rng)?);
            seq.push(BatchNorm2d::new(c, BatchNormConfig::default(), dtype)?);
            seq.push(Activation::Relu);
            width = c;
        }
        seq.push(MaxPool2d::new(Pool2dParams::new(2))?);
    }
    seq.push(AdaptiveAvgPool2d::new([1, 1])?);
    seq.push(Flatten);
    seq.push(Linear::new(
        width,
        cfg.classes,
        LinearConfig::default(),
        dtype,
        rng,
    )?);
    Ok(seq)
}
