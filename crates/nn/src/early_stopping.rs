//! Early stopping (Keras' `EarlyStopping`, Lightning's callback of the same name): follows a
//! monitored value epoch by epoch, tells when it improved (the epoch whose checkpoint to keep)
//! and when it has not improved for `patience` epochs (time to stop).

/// Whether smaller or larger values of the monitored quantity are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Smaller is better (a loss).
    Minimize,
    /// Larger is better (an accuracy).
    Maximize,
}

/// What [`EarlyStopping::update`] decided about one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The epoch's value is the best so far (by more than `min_delta`).
    pub improved: bool,
    /// `patience` epochs in a row have not improved: training should stop.
    pub stop: bool,
}

/// Follows a monitored value and decides when to stop.
///
/// An epoch improves when its value beats the best so far by more than `min_delta`
/// (Keras' rule); after `patience` epochs in a row without improvement, [`Verdict::stop`] is
/// set. A non-finite value never improves.
///
/// ```
/// use ferrograd_nn::{EarlyStopping, Goal};
/// let mut es = EarlyStopping::new(2, 0.0, Goal::Minimize);
/// let stops: Vec<bool> = [1.0, 0.5, 0.6, 0.4, 0.45, 0.41]
///     .iter().enumerate().map(|(e, &v)| es.update(e + 1, v).stop).collect();
/// assert_eq!(stops, [false, false, false, false, false, true]);
/// assert_eq!(es.best(), Some((4, 0.4)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    goal: Goal,
    best: Option<(usize, f64)>,
    bad_epochs: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without an improvement of more than `min_delta` (taken
    /// as an absolute value).
    pub fn new(patience: usize, min_delta: f64, goal: Goal) -> Self {
        EarlyStopping {
            patience,
            min_delta: min_delta.abs(),
            goal,
            best: None,
            bad_epochs: 0,
        }
    }

    /// Records the value of `epoch` (any numbering the caller likes, e.g. from 1).
    pub fn update(&mut self, epoch: usize, value: f64) -> Verdict {
        let improved = value.is_finite()
            && match (self.best, self.goal) {
                (None, _) => true,
                (Some((_, best)), Goal::Minimize) => value < best - self.min_delta,
                (Some((_, best)), Goal::Maximize) => value > best + self.min_delta,
            };
        if improved {
            self.best = Some((epoch, value));
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        Verdict {
            improved,
            stop: self.bad_epochs >= self.patience.max(1),
        }
    }

    /// The best epoch and its value so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best
    }

    /// Epochs in a row without improvement.
    pub fn bad_epochs(&self) -> usize {
        self.bad_epochs
    }

    /// The patience.
    pub fn patience(&self) -> usize {
        self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_delta_and_goal() {
        let mut es = EarlyStopping::new(1, 0.05, Goal::Maximize);
        assert!(es.update(1, 0.5).improved);
        let v = es.update(2, 0.54);
        assert!(
            !v.improved && v.stop,
            "an improvement below min_delta does not count"
        );
        let mut es = EarlyStopping::new(3, 0.0, Goal::Minimize);
        assert!(!es.update(1, f64::NAN).improved);
        assert!(es.update(2, 2.0).improved);
        assert!(!es.update(3, f64::INFINITY).improved);
        assert_eq!(es.best(), Some((2, 2.0)));
        assert_eq!(es.bad_epochs(), 1);
    }
}
