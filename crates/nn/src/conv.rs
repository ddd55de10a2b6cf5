//! The 2-D convolution layer (PyTorch `nn.Conv2d`): weight `[out, in / groups, kh, kw]`,
//! optional bias `[out]`, over NCHW inputs, with PyTorch's default initialisation.

use ferrograd_core::op::Conv2dParams;
use ferrograd_core::{DType, Error, Result, Rng, Tensor};

use crate::init::{Init, fans};
use crate::module::{Module, join};

/// Hyperparameters of [`Conv2d`] (PyTorch `nn.Conv2d`'s keyword arguments): the kernel size,
/// the convolution's geometry, the bias and the initialisers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dConfig {
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Stride, padding, dilation and groups.
    pub conv: Conv2dParams,
    /// Whether to add a bias.
    pub bias: bool,
    /// Weight initialiser (default: PyTorch's, `kaiming_uniform_(a = sqrt(5))`, i.e.
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with `fan_in = in / groups * kh * kw`).
    pub weight_init: Init,
    /// Bias initialiser (default: PyTorch's, the same bound as the weight).
    pub bias_init: Init,
}

impl Default for Conv2dConfig {
    /// A 3x3 kernel, stride 1, no padding, one group, with a bias: PyTorch's defaults for
    /// `nn.Conv2d(in, out, 3)`.
    fn default() -> Self {
        Conv2dConfig {
            kernel_size: [3, 3],
            conv: Conv2dParams::default(),
            bias: true,
            weight_init: Init::PYTORCH_LINEAR,
            bias_init: Init::PYTORCH_LINEAR,
        }
    }
}

impl Conv2dConfig {
    /// A square `k x k` kernel with the other defaults.
    pub fn new(k: usize) -> Self {
        Conv2dConfig {
            kernel_size: [k, k],
            ..Default::default()
        }
    }

    /// The same stride along both axes.
    pub fn stride(self, s: usize) -> Self {
        self.with_conv(|c| c.stride(s))
    }

    /// The same padding along both axes.
    pub fn padding(self, p: usize) -> Self {
        self.with_conv(|c| c.padding(p))
    }

    /// The same dilation along both axes.
    pub fn dilation(self, d: usize) -> Self {
        self.with_conv(|c| c.dilation(d))
    }

    /// The number of groups.
    pub fn groups(self, g: usize) -> Self {
        self.with_conv(|c| c.groups(g))
    }

    /// With or without a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    fn with_conv(mut self, f: impl FnOnce(Conv2dParams) -> Conv2dParams) -> Self {
        self.conv = f(self.conv);
        self
    }
}

/// A 2-D convolution layer (PyTorch `nn.Conv2d`); parameters `weight` and `bias`.
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: Tensor,
    /// `[out_channels]`, if any.
    pub bias: Option<Tensor>,
    params: Conv2dParams,
}

impl Conv2d {
    /// A layer with freshly initialised parameters.
    ///
    /// ```
    /// use ferrograd_core::{DType, Rng, Tensor};
    /// use ferrograd_nn::{Conv2d, Conv2dConfig, Module};
    /// let conv = Conv2d::new(3, 8, Conv2dConfig::new(3).padding(1), DType::F32, &mut Rng::new(0))?;
    /// let y = conv.forward(&Tensor::ones(&[2, 3, 10, 10], DType::F32)?)?;
    /// assert_eq!(y.shape(), &[2, 8, 10, 10]);
    /// assert!(conv.forward(&Tensor::ones(&[2, 4, 10, 10], DType::F32)?).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for zero sizes, a zero stride or dilation, or groups that do not
    /// divide both channel counts; initialiser errors.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        cfg: Conv2dConfig,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        let (g, stride, dilation) = (cfg.conv.groups, cfg.conv.stride, cfg.conv.dilation);
        let bad = in_channels == 0
            || out_channels == 0
            || cfg.kernel_size.contains(&0)
            || stride.contains(&0)
            || dilation.contains(&0)
            || g == 0
            || !in_channels.is_multiple_of(g)
            || !out_channels.is_multiple_of(g);
        if bad {
            return Err(Error::Argument {
                op: "Conv2d::new",
                msg: format!(
                    "{in_channels} -> {out_channels} channels, kernel {:?}, stride {:?}, \
                     dilation {:?}, {g} groups: sizes must be positive and the groups must \
                     divide both channel counts",
                    cfg.kernel_size, stride, dilation
                ),
            });
        }
        let shape = [
            out_channels,
            in_channels / g,
            cfg.kernel_size[0],
            cfg.kernel_size[1],
        ];
        let weight = cfg
            .weight_init
            .tensor(&shape, dtype, rng)?
            .with_requires_grad(true);
        let bias = if cfg.bias {
            // The bias uses the weight's fan-in, as PyTorch does.
            let (fan_in, fan_out) = fans(&shape)?;
            let b = cfg
                .bias_init
                .tensor_with_fans(&[out_channels], fan_in, fan_out, dtype, rng)?;
            Some(b.with_requires_grad(true))
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            params: cfg.conv,
        })
    }

    /// A layer from existing tensors (which should require grad to be trained).
    ///
    /// # Errors
    /// [`Error::Shape`] when the weight is not 4-D or the bias is not `[out_channels]`;
    /// [`Error::Argument`] for a zero stride, dilation or group count, or groups that do not
    /// divide the output channels.
    pub fn from_tensors(
        weight: Tensor,
        bias: Option<Tensor>,
        params: Conv2dParams,
    ) -> Result<Self> {
        const OP: &str = "Conv2d::from_tensors";
        if weight.rank() != 4 {
            return Err(Error::Shape {
                op: OP,
                expected: "a weight [out_channels, in_channels / groups, kh, kw]".into(),
                got: weight.shape().to_vec(),
            });
        }
        let o = weight.shape()[0];
        if let Some(b) = &bias
            && b.shape() != [o]
        {
            return Err(Error::Shape {
                op: OP,
                expected: format!("a bias of shape [{o}]"),
                got: b.shape().to_vec(),
            });
        }
        let g = params.groups;
        if params.stride.contains(&0)
            || params.dilation.contains(&0)
            || g == 0
            || !o.is_multiple_of(g)
        {
            return Err(Error::Argument {
                op: OP,
                msg: format!(
                    "stride {:?}, dilation {:?}, {g} groups for {o} output channels: sizes must \
                     be positive and the groups must divide the output channels",
                    params.stride, params.dilation
                ),
            });
        }
        Ok(Conv2d {
            weight,
            bias,
            params,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.shape()[1] * self.params.groups
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Kernel height and width.
    pub fn kernel_size(&self) -> [usize; 2] {
        [self.weight.shape()[2], self.weight.shape()[3]]
    }

    /// Stride, padding, dilation and groups.
    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// The output height and width for an input of `hw`, or `None` when the kernel does not
    /// fit the padded input.
    pub fn output_size(&self, hw: [usize; 2]) -> Option<[usize; 2]> {
        self.params.output_size(hw, self.kernel_size())
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.in_channels();
        if x.rank() != 4 || x.shape()[1] != c {
            return Err(Error::Shape {
                op: "Conv2d",
                expected: format!("an input [batch, {c}, height, width]"),
                got: x.shape().to_vec(),
            });
        }
        if self.output_size([x.shape()[2], x.shape()[3]]).is_none() {
            let p = self.params;
            return Err(Error::Shape {
                op: "Conv2d",
                expected: format!(
                    "an input [batch, {c}, height, width] large enough for the kernel {:?} \
                     (padding {:?}, dilation {:?})",
                    self.kernel_size(),
                    p.padding,
                    p.dilation
                ),
                got: x.shape().to_vec(),
            });
        }
        x.conv2d(&self.weight, self.bias.as_ref(), self.params)
    }

    fn name(&self) -> String {
        "Conv2d".to_string()
    }

    /// `in_channels / groups * kh * kw` per output element.
    fn macs(&self, _input: &[usize], output: &[usize]) -> u64 {
        let per_output = self.weight.numel() / self.weight.shape()[0].max(1);
        (output.iter().product::<usize>() * per_output) as u64
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}
