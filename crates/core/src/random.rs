//! Seeded random numbers. Every random tensor is drawn from an explicit [`Rng`], sequentially,
//! so the same seed gives the same values on every run and at every thread count.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{DType, Error, Result, Storage, Tensor, shape::checked_numel};

/// A seeded, portable random number generator (ChaCha8).
#[derive(Debug, Clone)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform float in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0.r#gen::<f64>()
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n.max(1))
    }

    /// A standard normal sample.
    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// Shuffles a slice in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A new generator seeded from this one, for an independent stream.
    pub fn fork(&mut self) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(self.0.r#gen()))
    }
}

fn float_tensor(
    op: &'static str,
    shape: &[usize],
    dtype: DType,
    mut sample: impl FnMut() -> f64,
) -> Result<Tensor> {
    let n = checked_numel(op, shape)?;
    let storage = match dtype {
        DType::F32 => Storage::F32((0..n).map(|_| sample() as f32).collect()),
        DType::F64 => Storage::F64((0..n).map(|_| sample()).collect()),
        DType::I64 => return Err(Error::UnsupportedDType { op, dtype }),
    };
    Ok(Tensor::from_storage(storage, shape))
}

impl Tensor {
    /// Uniform samples in `[low, high)` (PyTorch `torch.empty(shape).uniform_(low, high)`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Rng, Tensor};
    /// let a = Tensor::rand_uniform(&[3], -1.0, 1.0, DType::F32, &mut Rng::new(7))?;
    /// let b = Tensor::rand_uniform(&[3], -1.0, 1.0, DType::F32, &mut Rng::new(7))?;
    /// assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for i64, [`Error::Argument`] when `low > high`.
    pub fn rand_uniform(
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        if low.is_nan() || high.is_nan() || low > high {
            return Err(Error::Argument {
                op: "rand_uniform",
                msg: format!("invalid range [{low}, {high})"),
            });
        }
        float_tensor("rand_uniform", shape, dtype, || {
            low + (high - low) * rng.uniform()
        })
    }

    /// Normal samples with mean `mean` and standard deviation `std` (PyTorch
    /// `torch.normal(mean, std, shape)`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Rng, Tensor};
    /// let x = Tensor::randn(&[10_000], 1.0, 2.0, DType::F64, &mut Rng::new(0))?;
    /// assert!((x.mean(&[], false)?.item()? - 1.0).abs() < 0.1);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for i64, [`Error::Argument`] for a negative or NaN `std`.
    pub fn randn(
        shape: &[usize],
        mean: f64,
        std: f64,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        if std.is_nan() || std < 0.0 {
            return Err(Error::Argument {
                op: "randn",
                msg: format!("standard deviation {std} is not a non-negative number"),
            });
        }
        float_tensor("randn", shape, dtype, || mean + std * rng.normal())
    }
}
