//! Pooling over NCHW tensors and constant padding, as compositions: max pooling gathers each
//! window's maximum at the position a non-differentiable index op finds (so its gradient is a
//! scatter-add, and overlapping windows that pick one element add their gradients); average
//! and adaptive average pooling are products with constant window matrices along each axis.

use super::apply;
use crate::op::{Op, Pool2dParams};
use crate::{DType, Error, Result, Tensor};

fn shape_error(op: &'static str, expected: String, got: &[usize]) -> Error {
    Error::Shape {
        op,
        expected,
        got: got.to_vec(),
    }
}

/// The `[out, size]` matrix whose row `i` averages the input positions of window `i`: weight
/// `scale(i)` on each position of `window(i)` (a half-open range, clipped to `0..size`).
fn window_matrix(
    size: usize,
    out: usize,
    window: impl Fn(usize) -> (isize, isize),
    scale: impl Fn(usize, usize) -> f64,
    dtype: DType,
) -> Result<Tensor> {
    let mut m = vec![0.0f64; out * size];
    for i in 0..out {
        let (a, b) = window(i);
        let (lo, hi) = (a.max(0) as usize, (b.max(0) as usize).min(size));
        for j in lo..hi {
            m[i * size + j] = scale(i, hi - lo);
        }
    }
    Tensor::from_vec(m, &[out, size])?.to_dtype(dtype)
}

impl Tensor {
    fn check_pool(&self, op: &'static str, p: &Pool2dParams) -> Result<[usize; 2]> {
        self.float_only(op)?;
        if self.rank() != 4 {
            return Err(shape_error(
                op,
                "an input of shape [batch, channels, height, width]".into(),
                self.shape(),
            ));
        }
        let bad = p.kernel.contains(&0)
            || p.stride.contains(&0)
            || p.dilation.contains(&0)
            || (0..2).any(|a| p.padding[a] > p.kernel[a] / 2);
        if bad {
            return Err(Error::Argument {
                op,
                msg: format!(
                    "kernel {:?}, stride {:?} and dilation {:?} must be positive and padding \
                     {:?} at most half the kernel",
                    p.kernel, p.stride, p.dilation, p.padding
                ),
            });
        }
        let hw = [self.shape()[2], self.shape()[3]];
        p.as_conv().output_size(hw, p.kernel).ok_or_else(|| {
            shape_error(
                op,
                format!(
                    "a height and width that fit the window {:?} (padding {:?}, dilation {:?})",
                    p.kernel, p.padding, p.dilation
                ),
                self.shape(),
            )
        })
    }

    /// Max pooling of `[n, c, h, w]` over windows of `p.kernel` (PyTorch `F.max_pool2d` with
    /// `ceil_mode=False`). Padding counts as minus infinity. The gradient of each window goes
    /// to its maximum; on ties, to the first in row-major window order, and a NaN wins over
    /// every number (as PyTorch's CPU kernel). Overlapping windows that pick the same element
    /// add their gradients there.
    ///
    /// ```
    /// use ferrograd_core::{Tensor, op::Pool2dParams};
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 0.0, 3.0, 3.0, 4.0, -1.0, 0.0], &[1, 1, 3, 3])?;
    /// let y = x.max_pool2d(Pool2dParams::new(2).stride(1))?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 5.0, 4.0, 3.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for an input that is not 4-D or smaller than the window,
    /// [`Error::Argument`] for zero sizes or padding over half the kernel,
    /// [`Error::UnsupportedDType`] for integers.
    pub fn max_pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        let [ho, wo] = self.check_pool("max_pool2d", &p)?;
        let [n, c, h, w] = [0, 1, 2, 3].map(|d| self.shape()[d]);
        let index = apply(Op::MaxPool2dIndex(p), &[self])?;
        self.reshape(&[n, c, h * w])?
            .gather(2, &index)?
            .reshape(&[n, c, ho, wo])
    }

    /// Average pooling of `[n, c, h, w]` over windows of `p.kernel` (PyTorch `F.avg_pool2d`
    /// with `ceil_mode=False, count_include_pad=True`: padded positions count as zeros in the
    /// average). Dilation must be 1.
    ///
    /// ```
    /// use ferrograd_core::{Tensor, op::Pool2dParams};
    /// let x = Tensor::from_vec((0..16).map(|v| v as f64).collect(), &[1, 1, 4, 4])?;
    /// assert_eq!(x.avg_pool2d(Pool2dParams::new(2))?.to_vec::<f64>()?, vec![2.5, 4.5, 10.5, 12.5]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`]; [`Error::Argument`] for a dilation other than 1.
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        const OP: &str = "avg_pool2d";
        let [ho, wo] = self.check_pool(OP, &p)?;
        if p.dilation != [1, 1] {
            return Err(Error::Argument {
                op: OP,
                msg: format!("dilation {:?} is not supported (only 1)", p.dilation),
            });
        }
        let [h, w] = [self.shape()[2], self.shape()[3]];
        let axis = |a: usize, size: usize, out: usize| {
            let (k, s, pad) = (p.kernel[a], p.stride[a], p.padding[a]);
            window_matrix(
                size,
                out,
                |i| {
                    let start = (i * s) as isize - pad as isize;
                    (start, start + k as isize)
                },
                |_, _| 1.0 / k as f64,
                self.dtype(),
            )
        };
        self.pool_with(&axis(0, h, ho)?, &axis(1, w, wo)?)
    }

    /// Adaptive average pooling of `[n, c, h, w]` to `[n, c, out[0], out[1]]` (PyTorch
    /// `F.adaptive_avg_pool2d`): output row `i` averages input rows
    /// `floor(i h / ho) .. ceil((i + 1) h / ho)`, and likewise for columns. An output of
    /// `[1, 1]` is global average pooling.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec((0..6).map(|v| v as f64).collect(), &[1, 1, 2, 3])?;
    /// assert_eq!(x.adaptive_avg_pool2d([1, 1])?.to_vec::<f64>()?, vec![2.5]);
    /// assert_eq!(x.adaptive_avg_pool2d([1, 2])?.to_vec::<f64>()?, vec![2.0, 3.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for an input that is not 4-D, [`Error::Argument`] for a zero output
    /// size, [`Error::UnsupportedDType`] for integers.
    pub fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Result<Tensor> {
        const OP: &str = "adaptive_avg_pool2d";
        self.float_only(OP)?;
        if self.rank() != 4 {
            return Err(shape_error(
                OP,
                "an input of shape [batch, channels, height, width]".into(),
                self.shape(),
            ));
        }
        if out.contains(&0) {
            return Err(Error::Argument {
                op: OP,
                msg: format!("output size {out:?} must be positive"),
            });
        }
        if out == [1, 1] {
            return self.mean(&[2, 3], true);
        }
        let axis = |size: usize, out: usize| {
            window_matrix(
                size,
                out,
                |i| {
                    let start = (i * size) / out;
                    let end = ((i + 1) * size).div_ceil(out);
                    (start as isize, end as isize)
                },
                |_, count| 1.0 / count as f64,
                self.dtype(),
            )
        };
        let [h, w] = [self.shape()[2], self.shape()[3]];
        self.pool_with(&axis(h, out[0])?, &axis(w, out[1])?)
    }

    /// `rows @ x @ cols^T` over the last two axes: pooling by window matrices.
    fn pool_with(&self, rows: &Tensor, cols: &Tensor) -> Result<Tensor> {
        rows.matmul(&self.matmul(&cols.t()?)?)
    }

    /// Pads the last dimensions with a constant (PyTorch `F.pad(x, pads, value=value)`):
    /// `pads` lists (before, after) amounts from the last dimension backwards, so
    /// `[left, right, top, bottom]` pads width then height.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
    /// let y = x.pad(&[1, 0, 0, 1], 9.0)?;
    /// assert_eq!(y.shape(), &[2, 3]);
    /// assert_eq!(y.to_vec::<f32>()?, vec![9.0, 1.0, 2.0, 9.0, 9.0, 9.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for an odd number of amounts or more pairs than dimensions.
    pub fn pad(&self, pads: &[usize], value: f64) -> Result<Tensor> {
        if !pads.len().is_multiple_of(2) || pads.len() / 2 > self.rank() {
            return Err(Error::Argument {
                op: "pad",
                msg: format!(
                    "{} padding amounts for a tensor of rank {}: expected (before, after) pairs \
                     for at most {} dimensions",
                    pads.len(),
                    self.rank(),
                    self.rank()
                ),
            });
        }
        let mut out = self.clone();
        for (k, pair) in pads.chunks(2).enumerate() {
            let dim = self.rank() - 1 - k;
            let block = |len: usize| {
                let mut s = out.shape().to_vec();
                s[dim] = len;
                Tensor::full(value, &s, self.dtype())
            };
            if pair[0] + pair[1] > 0 {
                out = Tensor::cat(&[&block(pair[0])?, &out, &block(pair[1])?], dim as isize)?;
            }
        }
        Ok(out)
    }
}
