//! The fully connected layer `y = x W^T + b` (PyTorch `nn.Linear`), weight stored `[out, in]`.

use ferrograd_core::{DType, Error, Result, Rng, Tensor};

use crate::init::Init;
use crate::module::{Module, join};

/// Hyperparameters of [`Linear`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearConfig {
    /// Whether to add a bias.
    pub bias: bool,
    /// Weight initialiser (default: PyTorch's, `U(-1/sqrt(in), 1/sqrt(in))`).
    pub weight_init: Init,
    /// Bias initialiser (default: PyTorch's, the same bound as the weight).
    pub bias_init: Init,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            bias: true,
            weight_init: Init::PYTORCH_LINEAR,
            bias_init: Init::PYTORCH_LINEAR,
        }
    }
}

/// A fully connected layer (PyTorch `nn.Linear`).
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if any.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with freshly initialised parameters.
    ///
    /// ```
    /// use ferrograd_core::{DType, Rng, Tensor};
    /// use ferrograd_nn::{Linear, LinearConfig, Module};
    /// let l = Linear::new(3, 2, LinearConfig::default(), DType::F32, &mut Rng::new(0))?;
    /// let y = l.forward(&Tensor::ones(&[5, 3], DType::F32)?)?;
    /// assert_eq!(y.shape(), &[5, 2]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for zero sizes; initialiser errors.
    pub fn new(
        in_features: usize,
        out_features: usize,
        cfg: LinearConfig,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(Error::Argument {
                op: "Linear::new",
                msg: format!("sizes must be positive, got {in_features} -> {out_features}"),
            });
        }
        let weight = cfg
            .weight_init
            .tensor(&[out_features, in_features], dtype, rng)?
            .with_requires_grad(true);
        let bias = if cfg.bias {
            // The bias uses the weight's fan-in, as PyTorch does.
            let b = cfg.bias_init.tensor_with_fans(
                &[out_features],
                in_features,
                out_features,
                dtype,
                rng,
            )?;
            Some(b.with_requires_grad(true))
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// A layer from existing tensors (which should require grad to be trained).
    ///
    /// # Errors
    /// [`Error::Shape`] when the weight is not 2-D or the bias does not match it.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::Shape {
                op: "Linear::from_tensors",
                expected: "a weight of shape [out, in]".into(),
                got: weight.shape().to_vec(),
            });
        }
        if let Some(b) = &bias
            && b.shape() != [weight.shape()[0]]
        {
            return Err(Error::Shape {
                op: "Linear::from_tensors",
                expected: format!("a bias of shape [{}]", weight.shape()[0]),
                got: b.shape().to_vec(),
            });
        }
        Ok(Linear { weight, bias })
    }

    /// Input size.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output size.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() == 0 || x.shape()[x.rank() - 1] != self.in_features() {
            return Err(Error::Shape {
                op: "Linear",
                expected: format!("input with last dimension {}", self.in_features()),
                got: x.shape().to_vec(),
            });
        }
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }

    fn name(&self) -> String {
        "Linear".to_string()
    }

    /// `in * out` per output row.
    fn macs(&self, _input: &[usize], output: &[usize]) -> u64 {
        let rows = output.iter().product::<usize>() / self.out_features().max(1);
        (rows * self.weight.numel()) as u64
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}
