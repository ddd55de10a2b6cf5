//! Learning-rate schedules, evaluated per epoch like PyTorch's `lr_scheduler` classes stepped
//! once per epoch: step decay, exponential decay, cosine annealing, each optionally preceded by
//! a linear warm-up.

use std::fmt;
use std::str::FromStr;

use ferrograd_core::{Error, Result};

/// The shape of a schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `step_size` epochs (PyTorch `StepLR`).
    Step {
        /// Epochs between decays.
        step_size: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiply by `gamma` every epoch (PyTorch `ExponentialLR`).
    Exponential {
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine from the base rate down to `eta_min` over `t_max` epochs (PyTorch
    /// `CosineAnnealingLR`, closed form).
    Cosine {
        /// Epochs of one half period.
        t_max: usize,
        /// Final rate.
        eta_min: f64,
    },
}

/// A schedule with its base rate and an optional linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// The base learning rate.
    pub base_lr: f64,
    /// The decay shape.
    pub schedule: Schedule,
    /// Epochs of linear warm-up from `base_lr / warmup` up to the schedule's rate (0: none).
    pub warmup: usize,
}

impl LrSchedule {
    /// The learning rate for `epoch` (0-based).
    ///
    /// ```
    /// use ferrograd_nn::{LrSchedule, Schedule};
    /// let s = LrSchedule { base_lr: 0.1, schedule: Schedule::Step { step_size: 2, gamma: 0.5 }, warmup: 0 };
    /// assert_eq!([s.lr_at(0), s.lr_at(1), s.lr_at(2), s.lr_at(4)], [0.1, 0.1, 0.05, 0.025]);
    /// ```
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let base = self.base_lr;
        let lr = match self.schedule {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => {
                base * gamma.powi((epoch / step_size.max(1)) as i32)
            }
            Schedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
            Schedule::Cosine { t_max, eta_min } => {
                let t = epoch.min(t_max) as f64;
                let cos = (std::f64::consts::PI * t / t_max.max(1) as f64).cos();
                eta_min + (base - eta_min) * (1.0 + cos) / 2.0
            }
        };
        if epoch < self.warmup {
            lr * (epoch + 1) as f64 / self.warmup as f64
        } else {
            lr
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Step { step_size, gamma } => write!(f, "step:{step_size}:{gamma}"),
            Schedule::Exponential { gamma } => write!(f, "exponential:{gamma}"),
            Schedule::Cosine { t_max, eta_min } => write!(f, "cosine:{t_max}:{eta_min}"),
        }
    }
}

impl FromStr for Schedule {
    type Err = Error;

    /// Parses `constant`, `step:STEP_SIZE[:GAMMA]` (gamma 0.1), `exponential[:GAMMA]` (0.95),
    /// `cosine:T_MAX[:ETA_MIN]` (0). `cosine` alone needs `T_MAX` from the caller; use
    /// [`Schedule::with_epochs`].
    fn from_str(s: &str) -> Result<Self> {
        let bad = |msg: String| Error::Argument {
            op: "schedule",
            msg,
        };
        let parts: Vec<&str> = s.split(':').collect();
        let num = |i: usize, default: Option<f64>| -> Result<f64> {
            match parts.get(i) {
                Some(p) => p
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| bad(format!("{p:?} is not a non-negative number in {s:?}"))),
                None => default.ok_or_else(|| bad(format!("{s:?} is missing a value"))),
            }
        };
        let sched = match parts[0] {
            "constant" | "none" => Schedule::Constant,
            "step" => Schedule::Step {
                step_size: match parts.get(1).map(|p| p.parse::<usize>()) {
                    Some(Ok(n)) if n > 0 => n,
                    Some(_) => {
                        return Err(bad(format!(
                            "the step size in {s:?} must be a whole number of epochs, at least 1"
                        )));
                    }
                    None => return Err(bad(format!("{s:?} is missing a value"))),
                },
                gamma: num(2, Some(0.1))?,
            },
            "exponential" | "exp" => Schedule::Exponential {
                gamma: num(1, Some(0.95))?,
            },
            "cosine" => Schedule::Cosine {
                t_max: num(1, Some(0.0))? as usize,
                eta_min: num(2, Some(0.0))?,
            },
            other => {
                return Err(bad(format!(
                    "unknown schedule {other:?}; expected constant, step:N[:GAMMA], exponential[:GAMMA] or cosine[:T_MAX[:ETA_MIN]]"
                )));
            }
        };
        Ok(sched)
    }
}

impl Schedule {
    /// Fills in defaults that depend on the run length (a cosine without `T_MAX` spans the run).
    pub fn with_epochs(self, epochs: usize) -> Schedule {
        match self {
            Schedule::Cosine { t_max: 0, eta_min } => Schedule::Cosine {
                t_max: epochs,
                eta_min,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_match_pytorch_closed_forms() {
        let exp = LrSchedule {
            base_lr: 1.0,
            schedule: Schedule::Exponential { gamma: 0.5 },
            warmup: 0,
        };
        assert_eq!(exp.lr_at(3), 0.125);
        let cos = LrSchedule {
            base_lr: 1.0,
            schedule: Schedule::Cosine {
                t_max: 10,
                eta_min: 0.0,
            },
            warmup: 0,
        };
        assert!((cos.lr_at(5) - 0.5).abs() < 1e-12);
        assert!(cos.lr_at(10).abs() < 1e-12);
        let warm = LrSchedule {
            base_lr: 1.0,
            schedule: Schedule::Constant,
            warmup: 4,
        };
        assert_eq!(
            [warm.lr_at(0), warm.lr_at(3), warm.lr_at(4)],
            [0.25, 1.0, 1.0]
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(
            "step:3".parse::<Schedule>().unwrap(),
            Schedule::Step {
                step_size: 3,
                gamma: 0.1
            }
        );
        assert_eq!(
            "cosine".parse::<Schedule>().unwrap().with_epochs(7),
            Schedule::Cosine {
                t_max: 7,
                eta_min: 0.0
            }
        );
        assert!("step".parse::<Schedule>().is_err());
        assert!("step:0".parse::<Schedule>().is_err());
        assert!("step:1.5".parse::<Schedule>().is_err());
        assert!("warp".parse::<Schedule>().is_err());
        assert!("exponential:-1".parse::<Schedule>().is_err());
    }
}
