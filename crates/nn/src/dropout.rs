//! Dropout (PyTorch `nn.Dropout`): in training, zeroes each element with probability `p` and
//! scales the rest by `1 / (1 - p)`; in evaluation, the identity.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ferrograd_core::{Error, Result, Rng, Tensor};

use crate::module::Module;

/// Dropout with its own seeded random stream.
pub struct Dropout {
    p: f64,
    training: AtomicBool,
    rng: Mutex<Rng>,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`, in training mode.
    ///
    /// # Errors
    /// [`Error::Argument`] for `p` outside `[0, 1)`.
    pub fn new(p: f64, rng: Rng) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Argument {
                op: "Dropout::new",
                msg: format!("drop probability must be in [0, 1), got {p}"),
            });
        }
        Ok(Dropout {
            p,
            training: AtomicBool::new(true),
            rng: Mutex::new(rng),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training.load(Ordering::Relaxed) || self.p == 0.0 {
            return Ok(x.clone());
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let u = Tensor::rand_uniform(x.shape(), 0.0, 1.0, x.dtype(), &mut rng)?;
        let keep = u.ge_scalar(self.p)?.div_scalar(1.0 - self.p)?;
        x.mul(&keep)
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = Rng::new(seed);
    }

    fn name(&self) -> String {
        "Dropout".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_core::DType;

    #[test]
    fn drops_and_rescales_in_training_only() {
        let d = Dropout::new(0.25, Rng::new(1)).unwrap();
        let x = Tensor::ones(&[10_000], DType::F64).unwrap();
        let y = d.forward(&x).unwrap().to_vec::<f64>().unwrap();
        let zeros = y.iter().filter(|v| **v == 0.0).count();
        assert!((2200..2800).contains(&zeros), "{zeros}");
        assert!(
            y.iter()
                .all(|v| *v == 0.0 || (*v - 4.0 / 3.0).abs() < 1e-12)
        );
        d.set_training(false);
        assert_eq!(
            d.forward(&x).unwrap().to_vec::<f64>().unwrap(),
            vec![1.0; 10_000]
        );
        assert!(Dropout::new(1.0, Rng::new(0)).is_err());
    }

    #[test]
    fn reseeding_repeats_the_masks() {
        let d = Dropout::new(0.5, Rng::new(1)).unwrap();
        let x = Tensor::ones(&[64], DType::F64).unwrap();
        d.reseed(7);
        let first = d.forward(&x).unwrap().to_vec::<f64>().unwrap();
        let second = d.forward(&x).unwrap().to_vec::<f64>().unwrap();
        assert_ne!(first, second);
        d.reseed(7);
        assert_eq!(d.forward(&x).unwrap().to_vec::<f64>().unwrap(), first);
    }
}
