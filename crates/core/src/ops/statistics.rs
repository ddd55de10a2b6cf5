//! Reductions and scans built from primitives: variance and standard deviation, product,
//! cumulative sum and p-norms. All are compositions, so their gradients (and forward-mode
//! derivatives) come from the primitives' rules: the product multiplies halves pairwise
//! (exact gradients where elements are zero), the cumulative sum adds shifted copies in
//! `log2(n)` steps.

use crate::{Error, Result, Tensor, shape::normalize_dim, shape::normalize_dims};

impl Tensor {
    /// Variance over `dims` (all axes when empty), dividing by `N - 1` when `unbiased` (Bessel's
    /// correction, PyTorch's default) and by `N` otherwise (PyTorch `torch.var(x, dims,
    /// unbiased, keepdim)`). A single element with `unbiased` gives NaN, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4])?;
    /// assert!((x.var(&[0], true, false)?.item()? - 5.0 / 3.0).abs() < 1e-12);
    /// assert_eq!(x.var(&[], false, false)?.item()?, 1.25);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis, [`Error::UnsupportedDType`] for integer tensors.
    pub fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        self.float_only("var")?;
        let resolved = normalize_dims("var", dims, self.rank())?;
        let all: Vec<usize> = (0..self.rank()).collect();
        let axes = if resolved.is_empty() { &all } else { &resolved };
        let count: usize = axes.iter().map(|&d| self.shape()[d]).product();
        let divisor = if unbiased {
            count as f64 - 1.0
        } else {
            count as f64
        };
        let centred = self.sub(&self.mean(dims, true)?)?;
        centred
            .square()?
            .sum(dims, keepdim)?
            .div(&self.scalar_like(divisor))
    }

    /// Standard deviation, the square root of [`Tensor::var`] (PyTorch `torch.std`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![2.0f64, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], &[8])?;
    /// assert_eq!(x.std(&[], false, false)?.item()?, 2.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::var`].
    pub fn std(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        self.var(dims, unbiased, keepdim)?.sqrt()
    }

    /// Product over `dims` (all axes when empty) (PyTorch `torch.prod`). Computed by
    /// multiplying halves pairwise, so the gradient is exact also where elements are zero.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(x.prod(&[1], false)?.to_vec::<f64>()?, vec![6.0, 120.0]);
    /// assert_eq!(x.prod(&[], false)?.item()?, 720.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for a bad axis or repeated axes.
    pub fn prod(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let resolved = normalize_dims("prod", dims, self.rank())?;
        let axes: Vec<usize> = if resolved.is_empty() {
            (0..self.rank()).collect()
        } else {
            resolved
        };
        // Move the reduced axes last and flatten them into one.
        let kept: Vec<usize> = (0..self.rank()).filter(|d| !axes.contains(d)).collect();
        let perm: Vec<usize> = kept.iter().chain(&axes).copied().collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&d| self.shape()[d]).collect();
        let n: usize = axes.iter().map(|&d| self.shape()[d]).product();
        let mut p = self
            .permute(&perm)?
            .reshape(&[kept_shape.clone(), vec![n]].concat())?;
        let last = kept_shape.len() as isize;
        if n == 0 {
            p = Tensor::ones(&[kept_shape.clone(), vec![1]].concat(), self.dtype())?;
        }
        while p.shape()[last as usize] > 1 {
            let len = p.shape()[last as usize];
            let half = len / 2;
            let mut q = p.narrow(last, 0, half)?.mul(&p.narrow(last, half, half)?)?;
            if !len.is_multiple_of(2) {
                q = Tensor::cat(&[&q, &p.narrow(last, len - 1, 1)?], last)?;
            }
            p = q;
        }
        let out = p.reshape(&kept_shape)?;
        if !keepdim {
            return Ok(out);
        }
        let mut shape = self.shape().to_vec();
        for &d in &axes {
            shape[d] = 1;
        }
        out.reshape(&shape)
    }

    /// Cumulative sum along `dim` (PyTorch `torch.cumsum`): `out[i] = x[0] + ... + x[i]`.
    /// Computed as `log2(n)` additions of shifted copies (a Hillis-Steele scan).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(x.cumsum(1)?.to_vec::<f64>()?, vec![1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
    /// assert_eq!(x.cumsum(0)?.to_vec::<f64>()?, vec![1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Dim`] for an axis out of range.
    pub fn cumsum(&self, dim: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let d = normalize_dim("cumsum", dim, self.rank())?;
        let n = self.shape()[d];
        let mut y = self.clone();
        let mut shift = 1;
        while shift < n {
            let mut zeros_shape = self.shape().to_vec();
            zeros_shape[d] = shift;
            let zeros = Tensor::zeros(&zeros_shape, self.dtype())?;
            let shifted = Tensor::cat(&[&zeros, &y.narrow(d as isize, 0, n - shift)?], d as isize)?;
            y = y.add(&shifted)?;
            shift *= 2;
        }
        Ok(y)
    }

    /// The p-norm over `dims` (all axes when empty): `(sum |x|^p)^(1/p)`, the largest `|x|`
    /// for `p = inf`, the smallest for `p = -inf`, and the number of nonzero elements for
    /// `p = 0` (PyTorch `torch.linalg.vector_norm(x, p, dims, keepdim)`). The gradient at a
    /// zero norm is zero, as in PyTorch; tied maxima share it for `p = inf`.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f64, -4.0], &[2])?;
    /// assert_eq!(x.norm(2.0, &[], false)?.item()?, 5.0);
    /// assert_eq!(x.norm(1.0, &[], false)?.item()?, 7.0);
    /// assert_eq!(x.norm(f64::INFINITY, &[], false)?.item()?, 4.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for a NaN `p`, [`Error::Dim`] for a bad axis,
    /// [`Error::UnsupportedDType`] for integer tensors.
    pub fn norm(&self, p: f64, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.float_only("norm")?;
        if p.is_nan() {
            return Err(Error::Argument {
                op: "norm",
                msg: "the order p is NaN".into(),
            });
        }
        let a = self.abs()?;
        if p == f64::INFINITY {
            return a.max(dims, keepdim);
        }
        if p == f64::NEG_INFINITY {
            return a.min(dims, keepdim);
        }
        if p == 0.0 {
            return a.detach().ne_scalar(0.0)?.sum(dims, keepdim);
        }
        if p == 1.0 {
            return a.sum(dims, keepdim);
        }
        let powered = if p == 2.0 { self.square()? } else { a.powf(p)? };
        let s = powered.sum(dims, keepdim)?;
        // Where the sum is zero the root's derivative is infinite; take the root of 1 there
        // and return 0, so the gradient is 0 instead of NaN.
        let zero = s.detach().eq_scalar(0.0)?;
        let safe = Tensor::where_cond(&zero, &s.ones_like(), &s)?;
        let root = if p == 2.0 {
            safe.sqrt()?
        } else {
            safe.powf(1.0 / p)?
        };
        Tensor::where_cond(&zero, &s.zeros_like(), &root)
    }
}
