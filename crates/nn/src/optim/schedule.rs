//! Learning-rate schedules, evaluated per epoch like PyTorch's `lr_scheduler` classes stepped
//! once per epoch: step decay, exponential decay, cosine annealing, reduce-on-plateau (from the
//! monitored values of the finished epochs), and one-cycle (per batch), each optionally preceded
//! by a linear warm-up. Every rate is a function of the epoch, the batch and the monitored
//! history, so a resumed run recomputes the same rates from its saved metrics.

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
    /// Multiply by `factor` when the monitored value (the validation loss) has not improved by
    /// a relative `threshold` for more than `patience` epochs, then wait `cooldown` epochs;
    /// never below `min_lr` (PyTorch `ReduceLROnPlateau`, mode `min`, threshold mode `rel`).
    Plateau {
        /// Decay factor.
        factor: f64,
        /// Epochs without improvement that are tolerated.
        patience: usize,
        /// Relative improvement that counts (PyTorch's default 1e-4).
        threshold: f64,
        /// Epochs to wait after a reduction before counting again.
        cooldown: usize,
        /// Lowest rate.
        min_lr: f64,
    },
    /// Leslie Smith's one-cycle policy, stepped per batch (PyTorch `OneCycleLR` with cosine
    /// annealing, two phases, no momentum cycling): from `base / div_factor` up to the base
    /// rate over the first `pct_start` of the steps, then down to
    /// `base / (div_factor * final_div_factor)`.
    OneCycle {
        /// Epochs of the whole cycle (0: the run's length, see [`Schedule::with_epochs`]).
        epochs: usize,
        /// Fraction of the steps spent rising (PyTorch's default 0.3).
        pct_start: f64,
        /// Initial rate = base / `div_factor` (25).
        div_factor: f64,
        /// Final rate = initial / `final_div_factor` (1e4).
        final_div_factor: f64,
    },
}

impl Schedule {
    /// PyTorch `ReduceLROnPlateau`'s defaults with the given factor and patience.
    pub fn plateau(factor: f64, patience: usize) -> Schedule {
        Schedule::Plateau {
            factor,
            patience,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        }
    }

    /// PyTorch `OneCycleLR`'s defaults over `epochs` (0: the run) with the given `pct_start`.
    pub fn one_cycle(epochs: usize, pct_start: f64) -> Schedule {
        Schedule::OneCycle {
            epochs,
            pct_start,
            div_factor: 25.0,
            final_div_factor: 1e4,
        }
    }

    /// Whether the rate changes within an epoch (one-cycle), so it is set before every batch.
    pub fn per_batch(&self) -> bool {
        matches!(self, Schedule::OneCycle { .. })
    }

    /// Whether the rate depends on the monitored values of finished epochs (plateau).
    pub fn monitors(&self) -> bool {
        matches!(self, Schedule::Plateau { .. })
    }
}

/// The rate of `ReduceLROnPlateau` after stepping it with each value of `history`.
fn plateau_lr(base: f64, schedule: &Schedule, history: &[f64]) -> f64 {
    let Schedule::Plateau {
        factor,
        patience,
        threshold,
        cooldown,
        min_lr,
    } = *schedule
    else {
        return base;
    };
    // PyTorch's `eps`: reductions smaller than this are ignored.
    const EPS: f64 = 1e-8;
    let (mut lr, mut best) = (base, f64::INFINITY);
    let (mut bad_epochs, mut cooldown_left) = (0usize, 0usize);
    for &value in history {
        if value < best * (1.0 - threshold) {
            best = value;
            bad_epochs = 0;
        } else {
            bad_epochs += 1;
        }
        if cooldown_left > 0 {
            cooldown_left -= 1;
            bad_epochs = 0;
        }
        if bad_epochs > patience {
            let reduced = (lr * factor).max(min_lr);
            if lr - reduced > EPS {
                lr = reduced;
            }
            cooldown_left = cooldown;
            bad_epochs = 0;
        }
    }
    lr
}

/// The rate of `OneCycleLR` at `step` of `total` steps.
fn one_cycle_lr(base: f64, schedule: &Schedule, step: usize, total: usize) -> f64 {
    let Schedule::OneCycle {
        pct_start,
        div_factor,
        final_div_factor,
        ..
    } = *schedule
    else {
        return base;
    };
    let initial = base / div_factor;
    let min = initial / final_div_factor;
    let anneal = |start: f64, end: f64, pct: f64| {
        end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
    };
    let step = step as f64;
    let rise_end = pct_start * total as f64 - 1.0;
    let fall_end = total as f64 - 1.0;
    // A phase of no steps is finished at once (PyTorch would divide by zero).
    let pct = |done: f64, len: f64| if len > 0.0 { done / len } else { 1.0 };
    if step <= rise_end {
        anneal(initial, base, pct(step, rise_end))
    } else {
        anneal(base, min, pct(step - rise_end, fall_end - rise_end))
    }
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
        self.lr_at_batch(epoch, 0, 1, &[])
    }

    /// The learning rate for batch `batch` of `batches` in `epoch` (0-based), after the
    /// monitored values `history` of the finished epochs (the validation losses; only
    /// [`Schedule::Plateau`] reads them, only [`Schedule::OneCycle`] reads the batch).
    ///
    /// ```
    /// use ferrograd_nn::{LrSchedule, Schedule};
    /// let s = LrSchedule { base_lr: 1.0, schedule: Schedule::plateau(0.5, 1), warmup: 0 };
    /// assert_eq!(s.lr_at_batch(4, 0, 10, &[1.0, 0.9, 0.9, 0.9]), 0.5);
    /// let c = LrSchedule { base_lr: 1.0, schedule: Schedule::one_cycle(2, 0.25), warmup: 0 };
    /// assert!((c.lr_at_batch(0, 0, 4, &[]) - 1.0 / 25.0).abs() < 1e-12);
    /// assert!((c.lr_at_batch(0, 1, 4, &[]) - 1.0).abs() < 1e-12);
    /// ```
    pub fn lr_at_batch(&self, epoch: usize, batch: usize, batches: usize, history: &[f64]) -> f64 {
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
            Schedule::Plateau { .. } => {
                plateau_lr(base, &self.schedule, &history[..epoch.min(history.len())])
            }
            Schedule::OneCycle { epochs, .. } => {
                let batches = batches.max(1);
                let total = epochs.max(1) * batches;
                let step = (epoch * batches + batch.min(batches - 1)).min(total - 1);
                one_cycle_lr(base, &self.schedule, step, total)
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
            Schedule::Plateau {
                factor,
                patience,
                threshold,
                cooldown,
                min_lr,
            } => write!(
                f,
                "plateau:{factor}:{patience}:{threshold}:{cooldown}:{min_lr}"
            ),
            Schedule::OneCycle {
                epochs,
                pct_start,
                div_factor,
                final_div_factor,
            } => write!(
                f,
                "one-cycle:{pct_start}:{div_factor}:{final_div_factor}:{epochs}"
            ),
        }
    }
}

impl FromStr for Schedule {
    type Err = Error;

    /// Parses `constant`, `step:STEP_SIZE[:GAMMA]` (gamma 0.1), `exponential[:GAMMA]` (0.95),
    /// `cosine:T_MAX[:ETA_MIN]` (0),
    /// `plateau[:FACTOR[:PATIENCE[:THRESHOLD[:COOLDOWN[:MIN_LR]]]]]` (0.1, 10, 1e-4, 0, 0) and
    /// `one-cycle[:PCT_START[:DIV_FACTOR[:FINAL_DIV_FACTOR[:EPOCHS]]]]` (0.3, 25, 1e4, the
    /// run). `cosine` and `one-cycle` alone need the run's length from the caller; use
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
            "plateau" => {
                let factor = num(1, Some(0.1))?;
                if !(factor > 0.0 && factor < 1.0) {
                    return Err(bad(format!("the factor of {s:?} must be in (0, 1)")));
                }
                Schedule::Plateau {
                    factor,
                    patience: num(2, Some(10.0))? as usize,
                    threshold: num(3, Some(1e-4))?,
                    cooldown: num(4, Some(0.0))? as usize,
                    min_lr: num(5, Some(0.0))?,
                }
            }
            "one-cycle" | "onecycle" => {
                let pct_start = num(1, Some(0.3))?;
                if !(pct_start > 0.0 && pct_start < 1.0) {
                    return Err(bad(format!("the pct_start of {s:?} must be in (0, 1)")));
                }
                let div_factor = num(2, Some(25.0))?;
                let final_div_factor = num(3, Some(1e4))?;
                if div_factor <= 0.0 || final_div_factor <= 0.0 {
                    return Err(bad(format!(
                        "the division factors of {s:?} must be positive"
                    )));
                }
                Schedule::OneCycle {
                    epochs: num(4, Some(0.0))? as usize,
                    pct_start,
                    div_factor,
                    final_div_factor,
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown schedule {other:?}; expected constant, step:N[:GAMMA], exponential[:GAMMA], cosine[:T_MAX[:ETA_MIN]], plateau[:FACTOR[:PATIENCE]] or one-cycle[:PCT_START]"
                )));
            }
        };
        if parts.len() > 6 {
            return Err(bad(format!("{s:?} has too many values")));
        }
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
            Schedule::OneCycle {
                epochs: 0,
                pct_start,
                div_factor,
                final_div_factor,
            } => Schedule::OneCycle {
                epochs,
                pct_start,
                div_factor,
                final_div_factor,
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
