//! Compositions that construct or mask tensors: `eye`, `linspace`, `tril`/`triu`,
//! `masked_fill`, `clamp` with tensor bounds, and `tan`. None is a primitive; gradients come
//! from `where`, `maximum`/`minimum`, `sin` and `cos`.

use crate::{DType, Error, Result, Tensor, shape::checked_numel};

impl Tensor {
    /// The `n x n` identity matrix (PyTorch `torch.eye(n)`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let i = Tensor::eye(2, DType::F32)?;
    /// assert_eq!(i.to_vec::<f32>()?, vec![1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `n * n` overflows the element limit.
    pub fn eye(n: usize, dtype: DType) -> Result<Tensor> {
        checked_numel("eye", &[n, n])?;
        let mut v = vec![0.0f64; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        Tensor::from_vec(v, &[n, n])?.to_dtype(dtype)
    }

    /// `steps` evenly spaced values from `start` to `end`, both included (PyTorch
    /// `torch.linspace`). Like PyTorch, the first half counts up from `start` and the second
    /// half down from `end`, so both ends are exact.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::linspace(0.0, 1.0, 5, DType::F64)?;
    /// assert_eq!(x.to_vec::<f64>()?, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for a non-finite end, [`Error::TooLarge`] for too many steps.
    pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType) -> Result<Tensor> {
        if !start.is_finite() || !end.is_finite() {
            return Err(Error::Argument {
                op: "linspace",
                msg: format!("the ends must be finite, got {start} and {end}"),
            });
        }
        checked_numel("linspace", &[steps])?;
        let step = if steps > 1 {
            (end - start) / (steps - 1) as f64
        } else {
            0.0
        };
        // One step is `start` alone, as in PyTorch.
        let half = if steps == 1 { 1 } else { steps / 2 };
        let v: Vec<f64> = (0..steps)
            .map(|i| {
                if i < half {
                    start + step * i as f64
                } else {
                    end - step * (steps - 1 - i) as f64
                }
            })
            .collect();
        Tensor::from_vec(v, &[steps])?.to_dtype(dtype)
    }

    /// Keeps the elements where `keep(row, col)` holds in the last two axes, zeros elsewhere.
    fn triangle(&self, op: &'static str, keep: impl Fn(i64, i64) -> bool) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::Shape {
                op,
                expected: "a tensor with at least 2 dimensions".into(),
                got: self.shape().to_vec(),
            });
        }
        let (r, c) = (self.shape()[self.rank() - 2], self.shape()[self.rank() - 1]);
        let mask: Vec<f64> = (0..r * c)
            .map(|k| f64::from(u8::from(keep((k / c) as i64, (k % c) as i64))))
            .collect();
        let mask = Tensor::from_vec(mask, &[r, c])?;
        Tensor::where_cond(&mask, self, &self.scalar_like(0.0))
    }

    /// The lower triangle of the last two axes: elements on and below the `k`-th diagonal,
    /// zeros above (PyTorch `torch.tril(x, k)`; `k > 0` keeps diagonals above the main one).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::ones(&[2, 3], DType::F64)?;
    /// assert_eq!(x.tril(0)?.to_vec::<f64>()?, vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for a tensor of rank below 2.
    pub fn tril(&self, k: i64) -> Result<Tensor> {
        self.triangle("tril", |i, j| j - i <= k)
    }

    /// The upper triangle of the last two axes: elements on and above the `k`-th diagonal
    /// (PyTorch `torch.triu(x, k)`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let x = Tensor::ones(&[2, 3], DType::F64)?;
    /// assert_eq!(x.triu(1)?.to_vec::<f64>()?, vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for a tensor of rank below 2.
    pub fn triu(&self, k: i64) -> Result<Tensor> {
        self.triangle("triu", |i, j| j - i >= k)
    }

    /// `value` where `mask` is nonzero, this tensor elsewhere (PyTorch
    /// `tensor.masked_fill(mask, value)`); `mask` broadcasts. No gradient reaches the filled
    /// positions.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
    /// let m = Tensor::from_vec(vec![0i64, 1, 0], &[3])?;
    /// assert_eq!(x.masked_fill(&m, -9.0)?.to_vec::<f64>()?, vec![1.0, -9.0, 3.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Broadcast`] when the mask does not broadcast to this tensor's shape.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let out = Tensor::where_cond(mask, &self.scalar_like(value), self)?;
        if out.shape() != self.shape() {
            return Err(Error::Broadcast {
                op: "masked_fill",
                lhs: self.shape().to_vec(),
                rhs: mask.shape().to_vec(),
            });
        }
        Ok(out)
    }

    /// Limits values to tensor bounds, `min(max(x, lo), hi)`, with broadcasting (PyTorch
    /// `torch.clamp(x, min=lo, max=hi)` with tensors). Either bound may be absent. Gradients
    /// flow to whichever of `x` and the bounds is selected, and a tie between `x` and a bound
    /// shares the gradient equally, as PyTorch does; where `lo > hi` the result is `hi`.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![-2.0f64, 0.5, 3.0], &[3])?;
    /// let lo = Tensor::from_vec(vec![-1.0f64, 1.0, 0.0], &[3])?;
    /// let hi = Tensor::scalar(2.0f64);
    /// assert_eq!(x.clamp_tensor(Some(&lo), Some(&hi))?.to_vec::<f64>()?, vec![-1.0, 1.0, 2.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] when both bounds are absent; [`Error::Broadcast`] and
    /// [`Error::DTypeMismatch`] as for `maximum`.
    pub fn clamp_tensor(&self, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<Tensor> {
        if min.is_none() && max.is_none() {
            return Err(Error::Argument {
                op: "clamp",
                msg: "at least one of min and max must be given".into(),
            });
        }
        let low = match min {
            Some(lo) => self.maximum(lo)?,
            None => self.clone(),
        };
        match max {
            Some(hi) => low.minimum(hi),
            None => Ok(low),
        }
    }

    /// Elementwise tangent, `sin(x) / cos(x)` (PyTorch `torch.tan`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let y = Tensor::from_vec(vec![0.5f64], &[1])?.tan()?;
    /// assert!((y.item()? - 0.5f64.tan()).abs() < 1e-15);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for integer tensors.
    pub fn tan(&self) -> Result<Tensor> {
        self.sin()?.div(&self.cos()?)
    }
}
