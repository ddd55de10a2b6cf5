//! The SGD rule, following PyTorch's `torch.optim.SGD` exactly: L2 weight decay is added to the
//! gradient, the first momentum step copies the gradient, and Nesterov looks ahead along the
//! momentum buffer.

use ferrograd_core::{Result, Tensor};

use super::{Step, UpdateRule, check, ema, l2_penalty};

/// Hyperparameters of [`super::Sgd`].
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

    fn validate(&self) -> Result<()> {
        check(Self::NAME, "lr", self.lr, self.lr >= 0.0)?;
        check(Self::NAME, "momentum", self.momentum, self.momentum >= 0.0)?;
        check(Self::NAME, "dampening", self.dampening, true)?;
        check(
            Self::NAME,
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
        )?;
        let nesterov_ok = !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0);
        check(
            Self::NAME,
            "momentum for nesterov (needs momentum > 0, dampening 0)",
            self.momentum,
            nesterov_ok,
        )
    }

    fn initial_lr(&self) -> f64 {
        self.lr
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
        p.sub(&g.mul(&at.lr_as(p.dtype())?)?)
    }
}
