//! The Adagrad rule (PyTorch `torch.optim.Adagrad`): per-parameter learning rates shrinking with
//! the running sum of squared gradients.

use ferrograd_core::{Result, Tensor};

use super::{Step, UpdateRule, ema, l2_penalty, non_negative};

/// Hyperparameters of [`super::Adagrad`] (PyTorch's defaults); as its [`UpdateRule`] they also
/// define its update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default 0.01).
    pub lr: f64,
    /// Learning-rate decay per step (default 0).
    pub lr_decay: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Initial value of the sum of squares (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator (default 1e-10).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 0.01,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

impl UpdateRule for AdagradConfig {
    const BUFFERS: &'static [&'static str] = &["sum"];
    const NAME: &'static str = "adagrad";

    fn initial_lr(&self) -> f64 {
        self.lr
    }

    fn validate(&self) -> Result<()> {
        non_negative(
            Self::NAME,
            &[
                ("lr_decay", self.lr_decay),
                ("weight_decay", self.weight_decay),
                ("initial_accumulator_value", self.initial_accumulator_value),
                ("eps", self.eps),
            ],
        )
    }

    fn update(
        &self,
        p: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        at: &Step,
    ) -> Result<Tensor> {
        let g = l2_penalty(grad, p, self.weight_decay)?;
        // lr / (1 + (t - 1) * lr_decay)
        let clr = at
            .lr
            .div(
                &at.t
                    .add_scalar(-1.0)?
                    .mul_scalar(self.lr_decay)?
                    .add_scalar(1.0)?,
            )?
            .to_dtype(p.dtype())?;
        let init = self.initial_accumulator_value;
        let sum = ema(&mut buffers[0], &g.square()?, 1.0, 1.0, |g2| {
            g2.add_scalar(init)
        })?;
        p.sub(&g.div(&sum.sqrt()?.add_scalar(self.eps)?)?.mul(&clr)?)
    }
}
