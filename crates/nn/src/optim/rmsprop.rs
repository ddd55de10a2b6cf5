//! The RMSprop rule (PyTorch `torch.optim.RMSprop`): divides the gradient by a running root mean
//! square, optionally centred and with momentum.

use ferrograd_core::{Result, Tensor};

use super::{Step, UpdateRule, check, ema, l2_penalty, non_negative};

/// Hyperparameters of [`super::RmsProp`] (PyTorch's defaults); as its [`UpdateRule`] they also
/// define its update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default 0.01).
    pub lr: f64,
    /// Smoothing constant of the running mean square (default 0.99).
    pub alpha: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the mean square (default false).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl UpdateRule for RmsPropConfig {
    const BUFFERS: &'static [&'static str] = &["square_avg", "grad_avg", "momentum_buffer"];
    const NAME: &'static str = "rmsprop";

    fn initial_lr(&self) -> f64 {
        self.lr
    }

    fn validate(&self) -> Result<()> {
        check(
            Self::NAME,
            "alpha",
            self.alpha,
            (0.0..=1.0).contains(&self.alpha),
        )?;
        non_negative(
            Self::NAME,
            &[
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
                ("momentum", self.momentum),
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
        let a = self.alpha;
        let g = l2_penalty(grad, p, self.weight_decay)?;
        let g2 = g.square()?;
        let sq = ema(&mut buffers[0], &g2, a, 1.0 - a, |g2| {
            g2.mul_scalar(1.0 - a)
        })?;
        let avg = if self.centered {
            let ga = ema(&mut buffers[1], &g, a, 1.0 - a, |g| g.mul_scalar(1.0 - a))?;
            sq.sub(&ga.square()?)?.sqrt()?.add_scalar(self.eps)?
        } else {
            sq.sqrt()?.add_scalar(self.eps)?
        };
        let mut step = g.div(&avg)?;
        if self.momentum > 0.0 {
            step = ema(
                &mut buffers[2],
                &step,
                self.momentum,
                1.0,
                |s| Ok(s.clone()),
            )?;
        }
        p.sub(&step.mul(&at.lr_as(p.dtype())?)?)
    }
}
