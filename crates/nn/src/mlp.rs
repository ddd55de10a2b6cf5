//! The multilayer perceptron builder: `Linear -> activation (-> dropout)` per hidden layer,
//! then a linear output layer that produces logits. With no hidden layers it is softmax
//! regression (multinomial logistic regression); with one output, logistic regression.

use ferrograd_core::{DType, Error, Result, Rng, Tensor};

use crate::activation::{Activation, Maxout, PRelu};
use crate::dropout::Dropout;
use crate::linear::{Linear, LinearConfig};
use crate::module::Sequential;

/// Architecture of an MLP.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpConfig {
    /// Input features.
    pub input: usize,
    /// Hidden layer widths (empty: a one-layer network, i.e. logistic/softmax regression).
    pub hidden: Vec<usize>,
    /// Outputs (classes; 1 for binary logistic regression).
    pub output: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Dropout probability after each hidden activation (0 for none).
    pub dropout: f64,
}

/// Builds the MLP as a [`Sequential`] named like PyTorch's (`layers.0.weight`, ...), with
/// PyTorch's default `nn.Linear` initialisation.
///
/// ```
/// use ferrograd_core::{DType, Rng, Tensor};
/// use ferrograd_nn::{Activation, MlpConfig, Module, mlp, named_params};
/// let cfg = MlpConfig { input: 64, hidden: vec![32, 16], output: 10, activation: Activation::Tanh, dropout: 0.1 };
/// let m = mlp(&cfg, DType::F32, &mut Rng::new(0))?;
/// let names: Vec<String> = named_params(&m).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias", "layers.6.weight", "layers.6.bias"]);
/// assert_eq!(m.forward(&Tensor::ones(&[2, 64], DType::F32)?)?.shape(), &[2, 10]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for zero sizes or a bad dropout probability.
pub fn mlp(cfg: &MlpConfig, dtype: DType, rng: &mut Rng) -> Result<Sequential> {
    if cfg.input == 0 || cfg.output == 0 || cfg.hidden.contains(&0) {
        return Err(Error::Argument {
            op: "mlp",
            msg: format!(
                "layer sizes must be positive: {} -> {:?} -> {}",
                cfg.input, cfg.hidden, cfg.output
            ),
        });
    }
    let mut seq = Sequential::new();
    let mut width = cfg.input;
    for &h in &cfg.hidden {
        let pieces = match cfg.activation {
            Activation::Maxout(k) => k,
            _ => 1,
        };
        seq.push(Linear::new(
            width,
            h * pieces,
            LinearConfig::default(),
            dtype,
            rng,
        )?);
        match cfg.activation {
            Activation::PRelu => seq.push(PRelu::new(1, dtype)?),
            Activation::Maxout(k) => seq.push(Maxout(k)),
            a => seq.push(a),
        }
        if cfg.dropout > 0.0 {
            seq.push(Dropout::new(cfg.dropout, rng.fork())?);
        }
        width = h;
    }
    seq.push(Linear::new(
        width,
        cfg.output,
        LinearConfig::default(),
        dtype,
        rng,
    )?);
    Ok(seq)
}

/// Predicted classes (argmax of the logits) and accuracy against labels.
///
/// # Errors
/// Shape errors of the ops.
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Result<f64> {
    let pred = logits.argmax(-1, false)?;
    let hits = pred.eq(labels)?.sum_all()?.item()?;
    Ok(hits / labels.numel().max(1) as f64)
}
