//! Activation functions, as functions of tensors and as layers. All are compositions of core
//! ops, so their derivatives come from the core's backward rules (no hand-written gradients):
//! sigmoid, tanh, hard sigmoid, hard tanh, ReLU, leaky ReLU, PReLU (learnable slope), ELU,
//! softplus, Swish/SiLU, GELU (erf and tanh forms), maxout, softmax and log-softmax.

use std::fmt;
use std::str::FromStr;

use ferrograd_core::{DType, Error, Result, Tensor};

use crate::module::{Module, join};

/// `1 / (1 + e^-x)` (PyTorch `torch.sigmoid`).
///
/// # Errors
/// For integer tensors.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    x.sigmoid()
}

/// `tanh(x)` (PyTorch `torch.tanh`).
///
/// # Errors
/// For integer tensors.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    x.tanh()
}

/// `max(x, 0)` (PyTorch `F.relu`).
///
/// # Errors
/// Never for float tensors.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.relu()
}

/// `clamp(x / 6 + 1/2, 0, 1)` (PyTorch `F.hardsigmoid`).
///
/// # Errors
/// For integer tensors.
pub fn hard_sigmoid(x: &Tensor) -> Result<Tensor> {
    x.div_scalar(6.0)?.add_scalar(0.5)?.clamp(0.0, 1.0)
}

/// `clamp(x, -1, 1)` (PyTorch `F.hardtanh`).
///
/// # Errors
/// For integer tensors.
pub fn hard_tanh(x: &Tensor) -> Result<Tensor> {
    x.clamp(-1.0, 1.0)
}

/// `x` where `x > 0`, else `slope * x` (PyTorch `F.leaky_relu`, default slope 0.01).
///
/// # Errors
/// For integer tensors.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    Tensor::where_cond(&x.gt_scalar(0.0)?, x, &x.mul_scalar(slope)?)
}

/// `x` where `x > 0`, else `a * x` with a tensor slope `a` broadcast against `x` (PyTorch
/// `F.prelu`); gradients flow to `a`.
///
/// # Errors
/// Broadcast or dtype errors.
pub fn prelu(x: &Tensor, a: &Tensor) -> Result<Tensor> {
    Tensor::where_cond(&x.gt_scalar(0.0)?, x, &x.mul(a)?)
}

/// `x` where `x > 0`, else `alpha * (e^x - 1)` (PyTorch `F.elu`, default alpha 1).
///
/// # Errors
/// For integer tensors.
pub fn elu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    // exp of the clipped input only: the unused branch must not overflow (0 * inf = NaN). The
    // clip is a `where_cond`, not `minimum`, whose gradient would split the tie at 0: this way
    // the derivative at 0 is alpha, as in PyTorch.
    let positive = x.gt_scalar(0.0)?;
    let clipped = Tensor::where_cond(&positive, &x.zeros_like(), x)?;
    let negative = clipped.expm1()?.mul_scalar(alpha)?;
    Tensor::where_cond(&positive, x, &negative)
}

/// `ln(1 + e^x)`, computed stably as `max(x, 0) + ln(1 + e^-|x|)` (PyTorch `F.softplus`).
///
/// # Errors
/// For integer tensors.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    // The positive and negative parts are split with `where_cond`: relu and abs both have
    // derivative 0 at 0, which would make softplus'(0) = 0 instead of sigmoid(0) = 1/2.
    let positive = x.gt_scalar(0.0)?;
    let zero = x.zeros_like();
    let pos = Tensor::where_cond(&positive, x, &zero)?;
    let neg = Tensor::where_cond(&positive, &zero, x)?;
    // -|x| = neg - pos <= 0, so the exponential never overflows.
    pos.add(&neg.sub(&pos)?.exp()?.log1p()?)
}

/// `x * sigmoid(x)`, also called Swish (PyTorch `F.silu`).
///
/// # Errors
/// For integer tensors.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    x.mul(&x.sigmoid()?)
}

/// `x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))` (PyTorch `F.gelu`).
///
/// # Errors
/// For integer tensors.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    let phi = x
        .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
        .erf()?
        .add_scalar(1.0)?;
    x.mul(&phi)?.mul_scalar(0.5)
}

/// The tanh approximation `x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (PyTorch
/// `F.gelu(approximate="tanh")`).
///
/// # Errors
/// For integer tensors.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let inner = x.add(&x.powf(3.0)?.mul_scalar(0.044715)?)?.mul_scalar(c)?;
    x.mul(&inner.tanh()?.add_scalar(1.0)?)?.mul_scalar(0.5)
}

/// Maximum over groups of `k` consecutive features: `[.., n * k] -> [.., n]` (Goodfellow et
/// al. 2013).
///
/// # Errors
/// [`Error::Shape`] when the last dimension is not a multiple of `k`.
pub fn maxout(x: &Tensor, k: usize) -> Result<Tensor> {
    let last = x.shape().last().copied().unwrap_or(0);
    if k == 0 || x.rank() == 0 || last % k != 0 {
        return Err(Error::Shape {
            op: "maxout",
            expected: format!("a last dimension divisible by {k}"),
            got: x.shape().to_vec(),
        });
    }
    let mut shape = x.shape()[..x.rank() - 1].to_vec();
    shape.extend_from_slice(&[last / k, k]);
    x.reshape(&shape)?.max(&[-1], false)
}

/// A parameter-free activation, usable as a layer and chosen by name on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// No activation.
    Identity,
    /// [`sigmoid`].
    Sigmoid,
    /// [`tanh`].
    Tanh,
    /// [`hard_sigmoid`].
    HardSigmoid,
    /// [`hard_tanh`].
    HardTanh,
    /// [`relu`].
    Relu,
    /// [`leaky_relu`] with this slope.
    LeakyRelu(f64),
    /// [`elu`] with this alpha.
    Elu(f64),
    /// [`softplus`].
    Softplus,
    /// [`silu`].
    Silu,
    /// [`gelu`].
    Gelu,
    /// [`gelu_tanh`].
    GeluTanh,
    /// Softmax over the last axis.
    Softmax,
    /// Log-softmax over the last axis.
    LogSoftmax,
    /// [`PRelu`]: a learnable slope per layer (a layer with a parameter; see [`crate::mlp`]).
    PRelu,
    /// [`Maxout`] with `k` pieces (its linear layer produces `k` times the units).
    Maxout(usize),
}

impl Activation {
    /// Every activation name accepted by [`FromStr`].
    pub const NAMES: &'static [&'static str] = &[
        "identity",
        "sigmoid",
        "tanh",
        "hard-sigmoid",
        "hard-tanh",
        "relu",
        "leaky-relu",
        "elu",
        "softplus",
        "silu",
        "swish",
        "gelu",
        "gelu-tanh",
        "softmax",
        "log-softmax",
        "prelu",
        "maxout",
    ];

    /// Applies the activation. `PRelu` here uses PyTorch's initial slope 0.25 as a constant;
    /// use the [`PRelu`] layer to learn it.
    ///
    /// # Errors
    /// As the underlying function.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match *self {
            Activation::Identity => Ok(x.clone()),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
            Activation::HardSigmoid => hard_sigmoid(x),
            Activation::HardTanh => hard_tanh(x),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(s) => leaky_relu(x, s),
            Activation::Elu(a) => elu(x, a),
            Activation::Softplus => softplus(x),
            Activation::Silu => silu(x),
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => gelu_tanh(x),
            Activation::Softmax => x.softmax(-1),
            Activation::LogSoftmax => x.log_softmax(-1),
            Activation::PRelu => prelu(x, &x.scalar_like(PRelu::INITIAL_SLOPE)),
            Activation::Maxout(k) => maxout(x, k),
        }
    }

    /// The gain [`crate::init::gain`] recommends for layers followed by this activation.
    pub fn init_gain(&self) -> f64 {
        match *self {
            Activation::Tanh => 5.0 / 3.0,
            Activation::Relu
            | Activation::Elu(_)
            | Activation::Silu
            | Activation::Gelu
            | Activation::GeluTanh
            | Activation::Softplus
            | Activation::Maxout(_) => std::f64::consts::SQRT_2,
            Activation::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
            Activation::PRelu => (2.0 / (1.0 + 0.0625f64)).sqrt(),
            _ => 1.0,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => f.write_str("identity"),
            Activation::Sigmoid => f.write_str("sigmoid"),
            Activation::Tanh => f.write_str("tanh"),
            Activation::HardSigmoid => f.write_str("hard-sigmoid"),
            Activation::HardTanh => f.write_str("hard-tanh"),
            Activation::Relu => f.write_str("relu"),
            Activation::LeakyRelu(s) => write!(f, "leaky-relu:{s}"),
            Activation::Elu(a) => write!(f, "elu:{a}"),
            Activation::Softplus => f.write_str("softplus"),
            Activation::Silu => f.write_str("silu"),
            Activation::Gelu => f.write_str("gelu"),
            Activation::GeluTanh => f.write_str("gelu-tanh"),
            Activation::Softmax => f.write_str("softmax"),
            Activation::LogSoftmax => f.write_str("log-softmax"),
            Activation::PRelu => f.write_str("prelu"),
            Activation::Maxout(k) => write!(f, "maxout:{k}"),
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses a name from [`Activation::NAMES`], with an optional parameter after a colon:
    /// `leaky-relu:0.1`, `elu:0.5`, `maxout:3` (defaults 0.01, 1.0 and 2).
    fn from_str(s: &str) -> Result<Self> {
        let (name, param) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let bad = |msg: String| Error::Argument {
            op: "activation",
            msg,
        };
        let float = |default: f64| -> Result<f64> {
            param.map_or(Ok(default), |p| {
                p.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(format!("{p:?} is not a number in {s:?}")))
            })
        };
        let act = match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "identity" | "linear" | "none" => Activation::Identity,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "hard-sigmoid" | "hardsigmoid" => Activation::HardSigmoid,
            "hard-tanh" | "hardtanh" => Activation::HardTanh,
            "relu" => Activation::Relu,
            "leaky-relu" | "leakyrelu" => Activation::LeakyRelu(float(0.01)?),
            "elu" => Activation::Elu(float(1.0)?),
            "softplus" => Activation::Softplus,
            "silu" | "swish" => Activation::Silu,
            "gelu" => Activation::Gelu,
            "gelu-tanh" => Activation::GeluTanh,
            "softmax" => Activation::Softmax,
            "log-softmax" | "logsoftmax" => Activation::LogSoftmax,
            "prelu" => Activation::PRelu,
            "maxout" => {
                let k = match param {
                    None => 2,
                    Some(p) => p.parse::<usize>().ok().filter(|&k| k >= 1).ok_or_else(|| {
                        bad(format!("maxout needs a piece count >= 1, got {p:?}"))
                    })?,
                };
                Activation::Maxout(k)
            }
            _ => {
                return Err(bad(format!(
                    "unknown activation {s:?}; expected one of {}",
                    Activation::NAMES.join(", ")
                )));
            }
        };
        let takes_param = matches!(
            act,
            Activation::LeakyRelu(_) | Activation::Elu(_) | Activation::Maxout(_)
        );
        if param.is_some() && !takes_param {
            return Err(bad(format!("{name} takes no parameter (got {s:?})")));
        }
        Ok(act)
    }
}

impl Module for Activation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x)
    }

    /// PyTorch's class name (`ReLU`, `LeakyReLU`, `GELU`, ...).
    fn name(&self) -> String {
        match self {
            Activation::Identity => "Identity",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::HardSigmoid => "Hardsigmoid",
            Activation::HardTanh => "Hardtanh",
            Activation::Relu => "ReLU",
            Activation::LeakyRelu(_) => "LeakyReLU",
            Activation::Elu(_) => "ELU",
            Activation::Softplus => "Softplus",
            Activation::Silu => "SiLU",
            Activation::Gelu | Activation::GeluTanh => "GELU",
            Activation::Softmax => "Softmax",
            Activation::LogSoftmax => "LogSoftmax",
            Activation::PRelu => "PReLU",
            Activation::Maxout(_) => "Maxout",
        }
        .to_string()
    }
}

/// Leaky ReLU with a learnable slope (PyTorch `nn.PReLU`): one slope shared by all features, or
/// one per feature (the last axis).
pub struct PRelu {
    /// The slope(s): `[1]` or `[features]`.
    pub weight: Tensor,
}

impl PRelu {
    /// PyTorch's initial slope.
    pub const INITIAL_SLOPE: f64 = 0.25;

    /// A PReLU with `num_parameters` slopes (1, or the feature count), initialised to 0.25.
    ///
    /// # Errors
    /// [`ferrograd_core::Error::TooLarge`] for more slopes than a tensor can hold.
    pub fn new(num_parameters: usize, dtype: DType) -> Result<Self> {
        Ok(PRelu {
            weight: Tensor::full(Self::INITIAL_SLOPE, &[num_parameters.max(1)], dtype)?
                .with_requires_grad(true),
        })
    }
}

impl Module for PRelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        prelu(x, &self.weight)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
    }

    fn name(&self) -> String {
        "PReLU".to_string()
    }
}

/// Maxout over groups of `k` features, as a layer.
pub struct Maxout(pub usize);

impl Module for Maxout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        maxout(x, self.0)
    }

    fn name(&self) -> String {
        "Maxout".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Derivatives at and around 0, where ties in `max`/`abs` could pick a wrong subgradient.
    fn derivative(f: impl Fn(&Tensor) -> Result<Tensor>, xs: &[f64]) -> Vec<f64> {
        let x = Tensor::from_vec(xs.to_vec(), &[xs.len()])
            .unwrap()
            .with_requires_grad(true);
        let g = f(&x).unwrap().sum_all().unwrap().backward().unwrap();
        g.get(&x).unwrap().to_vec::<f64>().unwrap()
    }

    #[test]
    fn softplus_derivative_is_sigmoid_everywhere() {
        let xs = [-800.0, -1.0, 0.0, 1.0, 800.0];
        let d = derivative(softplus, &xs);
        for (x, d) in xs.iter().zip(d) {
            let want = 1.0 / (1.0 + (-x).exp());
            assert!(
                (d - want).abs() < 1e-15,
                "softplus'({x}) = {d}, want {want}"
            );
        }
        let y = softplus(&Tensor::from_vec(xs.to_vec(), &[5]).unwrap()).unwrap();
        assert_eq!(y.to_vec::<f64>().unwrap()[4], 800.0);
    }

    #[test]
    fn elu_derivative_at_zero_is_alpha_like_pytorch() {
        assert_eq!(derivative(|x| elu(x, 1.0), &[0.0]), vec![1.0]);
        assert_eq!(derivative(|x| elu(x, 0.5), &[0.0, 2.0]), vec![0.5, 1.0]);
        assert!(derivative(|x| elu(x, 1.0), &[-800.0])[0].is_finite());
    }
}
