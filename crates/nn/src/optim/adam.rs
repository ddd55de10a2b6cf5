//! The Adam rule (PyTorch `torch.optim.Adam` / `AdamW`): bias-corrected first and second moment
//! estimates. Adam adds `weight_decay * p` to the gradient (L2); AdamW decays the weights
//! directly, `p *= 1 - lr * weight_decay`, before the update. With `amsgrad`, the denominator
//! uses the running maximum of the second moment estimate.

use ferrograd_core::{Result, Tensor};

use super::{Step, UpdateRule, check, ema, l2_penalty, non_negative, running_max};

/// Hyperparameters of [`super::Adam`]; as its [`UpdateRule`] they also define its update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Weight decay: an L2 term for Adam, decoupled decay for AdamW.
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
    /// Divide by the largest second moment estimate so far (AMSGrad; PyTorch `amsgrad`).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    /// PyTorch's Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay, no
    /// AMSGrad.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// PyTorch's AdamW defaults: Adam's, with decoupled weight decay 0.01.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled: true,
            ..AdamConfig::default()
        }
    }
}

impl UpdateRule for AdamConfig {
    // `max_exp_avg_sq` exists only with `amsgrad` (buffers start lazily).
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    const NAME: &'static str = "adam";

    fn initial_lr(&self) -> f64 {
        self.lr
    }

    fn validate(&self) -> Result<()> {
        check(
            Self::NAME,
            "beta1",
            self.betas.0,
            (0.0..1.0).contains(&self.betas.0),
        )?;
        check(
            Self::NAME,
            "beta2",
            self.betas.1,
            (0.0..1.0).contains(&self.betas.1),
        )?;
        non_negative(
            Self::NAME,
            &[("eps", self.eps), ("weight_decay", self.weight_decay)],
        )
    }

    fn update(
        &self,
        p: &Tensor,
        grad: &Tensor,
        buffers: &mut [Option<Tensor>],
        at: &Step,
    ) -> Result<Tensor> {
        let (b1, b2) = self.betas;
        let (g, value) = if self.decoupled {
            // p * (1 - lr * weight_decay)
            let decay = at.lr.mul_scalar(-self.weight_decay)?.add_scalar(1.0)?;
            (grad.clone(), p.mul(&decay.to_dtype(p.dtype())?)?)
        } else {
            (l2_penalty(grad, p, self.weight_decay)?, p.clone())
        };
        // The moving averages (`ema`) and the step below are the exact op sequences the fused
        // kernel of a compiled update recognises and runs by hand-written loops (guarded by
        // `the_update_is_stored_and_fused_and_allocates_nothing` in
        // `tests/compiled_update.rs`): keep their ops and operand order.
        let [first, second, max_second] = buffers else {
            return Err(ferrograd_core::Error::Internal(
                "adam: three state buffers expected".into(),
            ));
        };
        let m = ema(first, &g, b1, 1.0 - b1, |g| g.mul_scalar(1.0 - b1))?;
        let g2 = g.square()?;
        let v = ema(second, &g2, b2, 1.0 - b2, |g2| g2.mul_scalar(1.0 - b2))?;
        let v = if self.amsgrad {
            running_max(max_second, &v)?
        } else {
            v
        };
        let dtype = p.dtype();
        let bc1 = at.bias_correction(b1, dtype)?;
        let bc2 = at.bias_correction(b2, dtype)?;
        let denom = v.sqrt()?.div(&bc2.sqrt()?)?.add_scalar(self.eps)?;
        value.sub(&m.div(&denom)?.mul(&at.lr_as(dtype)?.div(&bc1)?)?)
    }
}
