//! The SGD rule, following PyTorch's `torch.optim.SGD` exactly: L2 weight decay is added to the
//! gradient, the first momentum step copies the gradient, and Nesterov looks ahead along the
//! momentum buffer.

use ferrograd_core::{Result, Tensor};

use super::{Step, UpdateRule, check, ema, l2_penalty, non_negative};

/// Hyperparameters of [`super::Sgd`]; as its [`UpdateRule`] they also define its update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: plain gradient descent).
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// Use Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    /// PyTorch's defaults (`lr = 1e-3`, no momentum, no weight decay).
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl UpdateRule for SgdConfig {
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];
    const NAME: &'static str = "sgd";

    fn initial_lr(&self) -> f64 {
        self.lr
    }

    fn validate(&self) -> Result<()> {
        non_negative(
            Self::NAME,
            &[
                ("momentum", self.momentum),
                ("weight_decay", self.weight_decay),
            ],
        )?;
        check(Self::NAME, "dampening", self.dampening, true)?;
        let nesterov_ok = !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0);
        check(
            Self::NAME,
            "momentum for nesterov (needs momentum > 0, dampening 0)",
            self.momentum,
            nesterov_ok,
        )
    }

    fn update(
        &self,
        p: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        at: &Step,
    ) -> Result<Tensor> {
        let mut g = l2_penalty(grad, p, self.weight_decay)?;
        if self.momentum != 0.0 {
            let buf = ema(
                &mut buffers[0],
                &g,
                self.momentum,
                1.0 - self.dampening,
                |g| Ok(g.clone()),
            )?;
            g = if self.nesterov {
                g.add(&buf.mul_scalar(self.momentum)?)?
            } else {
                buf
            };
        }
        // Exactly `p - g * lr`: a compiled step folds this sequence into the matrix product
        // that computes a weight's gradient. Guarded by the test
        // `plain_sgd_accumulates_the_weight_gradient_product_into_the_weights`
        // (`tests/compiled_update.rs`).
        p.sub(&g.mul(&at.lr_as(p.dtype())?)?)
    }
}
