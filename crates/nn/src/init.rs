//! Weight initialisers (PyTorch `torch.nn.init`): constant, uniform, normal, Xavier/Glorot and
//! He/Kaiming with gains, computed from a tensor's fan-in and fan-out.

use ferrograd_core::{DType, Error, Result, Rng, Tensor};

/// Which fan Kaiming initialisation preserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass (PyTorch default).
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// An initialiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All values equal.
    Constant(f64),
    /// `U(low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// `N(mean, std^2)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `U(-b, b)` with `b = gain * sqrt(6 / (fan_in + fan_out))` (`xavier_uniform_`).
    XavierUniform {
        /// Gain (see [`gain`]).
        gain: f64,
    },
    /// `N(0, std^2)` with `std = gain * sqrt(2 / (fan_in + fan_out))` (`xavier_normal_`).
    XavierNormal {
        /// Gain (see [`gain`]).
        gain: f64,
    },
    /// `U(-b, b)` with `b = gain * sqrt(3 / fan)` (`kaiming_uniform_`).
    KaimingUniform {
        /// Gain (see [`gain`]; `sqrt(2)` for ReLU).
        gain: f64,
        /// Which fan.
        mode: FanMode,
    },
    /// `N(0, std^2)` with `std = gain / sqrt(fan)` (`kaiming_normal_`).
    KaimingNormal {
        /// Gain (see [`gain`]; `sqrt(2)` for ReLU).
        gain: f64,
        /// Which fan.
        mode: FanMode,
    },
}

impl Init {
    /// All zeros.
    pub const ZEROS: Init = Init::Constant(0.0);

    /// PyTorch's `nn.Linear` default: `kaiming_uniform_(a = sqrt(5))`, i.e.
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (also used for its bias).
    pub const PYTORCH_LINEAR: Init = Init::KaimingUniform {
        gain: 0.577_350_269_189_625_8, // sqrt(2 / (1 + 5))
        mode: FanMode::FanIn,
    };

    /// He initialisation for ReLU layers: `kaiming_normal_(nonlinearity="relu")`.
    pub const HE_NORMAL: Init = Init::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        mode: FanMode::FanIn,
    };

    /// A tensor of `shape` drawn from this initialiser, fans taken from the shape.
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for i64; [`Error::Argument`] for invalid parameters or a
    /// fan-based initialiser on a 0-d or 1-d shape without explicit fans.
    pub fn tensor(&self, shape: &[usize], dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        let (fan_in, fan_out) = fans(shape)?;
        self.tensor_with_fans(shape, fan_in, fan_out, dtype, rng)
    }

    /// A tensor of `shape` drawn from this initialiser with explicit fans.
    ///
    /// # Errors
    /// As [`Init::tensor`].
    pub fn tensor_with_fans(
        &self,
        shape: &[usize],
        fan_in: usize,
        fan_out: usize,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        let fan = |mode: FanMode| match mode {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
        } as f64;
        match *self {
            Init::Constant(v) => Ok(Tensor::full(v, shape, dtype)?),
            Init::Uniform { low, high } => Tensor::rand_uniform(shape, low, high, dtype, rng),
            Init::Normal { mean, std } => Tensor::randn(shape, mean, std, dtype, rng),
            Init::XavierUniform { gain } => {
                let b = gain * (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                Tensor::rand_uniform(shape, -b, b, dtype, rng)
            }
            Init::XavierNormal { gain } => {
                let std = gain * (2.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                Tensor::randn(shape, 0.0, std, dtype, rng)
            }
            Init::KaimingUniform { gain, mode } => {
                let b = gain * (3.0 / fan(mode).max(1.0)).sqrt();
                Tensor::rand_uniform(shape, -b, b, dtype, rng)
            }
            Init::KaimingNormal { gain, mode } => {
                Tensor::randn(shape, 0.0, gain / fan(mode).max(1.0).sqrt(), dtype, rng)
            }
        }
    }
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, receptive...]`, as PyTorch computes them.
///
/// # Errors
/// [`Error::Argument`] for shapes of rank below 2.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::Argument {
            op: "init",
            msg: format!("fan in and fan out need a shape of rank >= 2, got {shape:?}"),
        });
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// The recommended gain for a nonlinearity (PyTorch `nn.init.calculate_gain`): 1 for linear
/// and sigmoid, 5/3 for tanh, sqrt(2) for ReLU, `sqrt(2 / (1 + slope^2))` for leaky ReLU, 3/4
/// for SELU.
///
/// # Errors
/// [`Error::Argument`] for an unknown name.
pub fn gain(nonlinearity: &str, slope: f64) -> Result<f64> {
    Ok(match nonlinearity {
        "linear" | "identity" | "sigmoid" => 1.0,
        "tanh" => 5.0 / 3.0,
        "relu" => std::f64::consts::SQRT_2,
        "leaky_relu" | "leaky-relu" => (2.0 / (1.0 + slope * slope)).sqrt(),
        "selu" => 0.75,
        other => {
            return Err(Error::Argument {
                op: "init::gain",
                msg: format!("unknown nonlinearity {other:?}"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(t: &Tensor) -> (f64, f64, f64) {
        let v = t.to_vec_f64();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (mean, var.sqrt(), max)
    }

    #[test]
    fn bounds_and_spreads_follow_the_formulas() {
        let mut rng = Rng::new(0);
        let shape = [200, 300];
        let t = Init::XavierUniform { gain: 1.0 }
            .tensor(&shape, DType::F64, &mut rng)
            .unwrap();
        let b = (6.0f64 / 500.0).sqrt();
        let (_, std, max) = stats(&t);
        assert!(max <= b && max > 0.95 * b);
        assert!((std - b / 3f64.sqrt()).abs() < 0.02 * b);
        let t = Init::HE_NORMAL
            .tensor(&shape, DType::F64, &mut rng)
            .unwrap();
        let (mean, std, _) = stats(&t);
        assert!(mean.abs() < 0.01);
        assert!((std - (2.0f64 / 300.0).sqrt()).abs() < 0.02 * std);
        let t = Init::PYTORCH_LINEAR
            .tensor(&shape, DType::F64, &mut rng)
            .unwrap();
        let (_, _, max) = stats(&t);
        assert!(max <= 1.0 / 300f64.sqrt());
        let t = Init::XavierNormal {
            gain: gain("tanh", 0.0).unwrap(),
        }
        .tensor(&shape, DType::F64, &mut rng)
        .unwrap();
        let (_, std, _) = stats(&t);
        assert!((std - 5.0 / 3.0 * (2.0f64 / 500.0).sqrt()).abs() < 0.02 * std);
        let t = Init::KaimingUniform {
            gain: 1.0,
            mode: FanMode::FanOut,
        }
        .tensor(&shape, DType::F64, &mut rng)
        .unwrap();
        assert!(stats(&t).2 <= (3.0f64 / 200.0).sqrt());
    }

    #[test]
    fn fans_and_gains() {
        assert_eq!(fans(&[10, 3, 5, 5]).unwrap(), (75, 250));
        assert!(fans(&[10]).is_err());
        assert_eq!(gain("leaky_relu", 0.0).unwrap(), std::f64::consts::SQRT_2);
        assert!(gain("nope", 0.0).is_err());
        assert_eq!(
            Init::ZEROS
                .tensor(&[2, 2], DType::F32, &mut Rng::new(0))
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![0.0; 4]
        );
    }
}
