//! Convolutions over NCHW tensors: `conv2d` (stride, padding, dilation, groups, optional bias)
//! and `conv1d` as a convolution of height one. The two gradients of a convolution are
//! primitives of their own, so backward rules, static graphs and gradients of gradients treat
//! them like any op.

use super::apply;
use crate::op::{Conv2dParams, Op};
use crate::shape::checked_numel;
use crate::{Error, Result, Tensor};

fn shape_error(op: &'static str, expected: String, got: &[usize]) -> Error {
    Error::Shape {
        op,
        expected,
        got: got.to_vec(),
    }
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as in deep learning) of an input `[n, c, h, w]`
    /// with a weight `[o, c / groups, kh, kw]`, plus an optional bias `[o]` (PyTorch
    /// `F.conv2d(x, weight, bias, stride, padding, dilation, groups)`). The output is
    /// `[n, o, ho, wo]` with `ho = (h + 2 padding - dilation (kh - 1) - 1) / stride + 1`.
    /// `groups = c = o` is a depthwise convolution.
    ///
    /// ```
    /// use ferrograd_core::{Tensor, op::Conv2dParams};
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4])?;
    /// let w = Tensor::from_vec(vec![1.0f32; 4], &[1, 1, 2, 2])?;
    /// let y = x.conv2d(&w, None, Conv2dParams::default().stride(2))?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![10.0, 18.0, 42.0, 50.0]);
    /// assert!(x.conv2d(&w, None, Conv2dParams::default().groups(2)).is_err());
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for inputs that are not 4-D, channels that do not match the weight or
    /// split into the groups, a bias that is not `[o]`, or a kernel larger than the padded
    /// input; [`Error::Argument`] for a zero stride, dilation or group count;
    /// [`Error::DTypeMismatch`] / [`Error::UnsupportedDType`] unless all are floats of one dtype.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        self.float_only(OP)?;
        for t in std::iter::once(weight).chain(bias) {
            if t.dtype() != self.dtype() {
                return Err(Error::DTypeMismatch {
                    op: OP,
                    lhs: self.dtype(),
                    rhs: t.dtype(),
                });
            }
        }
        if p.stride.contains(&0) || p.dilation.contains(&0) || p.groups == 0 {
            return Err(Error::Argument {
                op: OP,
                msg: format!(
                    "stride {:?}, dilation {:?} and groups {} must be positive",
                    p.stride, p.dilation, p.groups
                ),
            });
        }
        if self.rank() != 4 {
            return Err(shape_error(
                OP,
                "an input of shape [batch, channels, height, width]".into(),
                self.shape(),
            ));
        }
        let [n, c, h, w] = [0, 1, 2, 3].map(|d| self.shape()[d]);
        let ws = weight.shape();
        if weight.rank() != 4
            || !c.is_multiple_of(p.groups)
            || ws[1] * p.groups != c
            || !ws[0].is_multiple_of(p.groups)
        {
            return Err(shape_error(
                OP,
                format!(
                    "a weight [out_channels, {c} / groups, kh, kw] with {} groups dividing both \
                     channel counts",
                    p.groups
                ),
                ws,
            ));
        }
        let o = ws[0];
        let Some([ho, wo]) = p.output_size([h, w], [ws[2], ws[3]]) else {
            return Err(shape_error(
                OP,
                format!(
                    "an input whose height and width padded by {:?} fit the kernel {:?} \
                     dilated by {:?}",
                    p.padding,
                    &ws[2..],
                    p.dilation
                ),
                self.shape(),
            ));
        };
        checked_numel(OP, &[n, o, ho, wo])?;
        let y = apply(Op::Conv2d(p), &[self, weight])?;
        match bias {
            None => Ok(y),
            Some(b) if b.shape() == [o] => y.add(&b.reshape(&[1, o, 1, 1])?),
            Some(b) => Err(shape_error(OP, format!("a bias of shape [{o}]"), b.shape())),
        }
    }

    /// 1-D convolution of an input `[n, c, l]` with a weight `[o, c / groups, k]` and an
    /// optional bias `[o]` (PyTorch `F.conv1d`), computed as a 2-D convolution of height one.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 1, 4])?;
    /// let w = Tensor::from_vec(vec![1.0f64, -1.0], &[1, 1, 2])?;
    /// assert_eq!(x.conv1d(&w, None, 1, 0, 1, 1)?.to_vec::<f64>()?, vec![-1.0, -1.0, -1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tensor::conv2d`], for 3-D inputs and weights.
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
    ) -> Result<Tensor> {
        for (t, what) in [
            (self, "an input [batch, channels, length]"),
            (weight, "a weight [out, in / groups, k]"),
        ] {
            if t.rank() != 3 {
                return Err(shape_error("conv1d", what.into(), t.shape()));
            }
        }
        let p = Conv2dParams {
            stride: [1, stride],
            padding: [0, padding],
            dilation: [1, dilation],
            groups,
        };
        self.unsqueeze(2)?
            .conv2d(&weight.unsqueeze(2)?, bias, p)?
            .squeeze(2)
    }

    /// The gradient of `conv2d`'s input of size `input`, given the output gradient `self`.
    pub(crate) fn conv2d_input_grad(
        &self,
        weight: &Tensor,
        p: Conv2dParams,
        input: [usize; 2],
    ) -> Result<Tensor> {
        apply(Op::Conv2dInputGrad { conv: p, input }, &[self, weight])
    }

    /// The gradient of `conv2d`'s weight with a `kernel`, for input `self` and output
    /// gradient `dy`.
    pub(crate) fn conv2d_weight_grad(
        &self,
        dy: &Tensor,
        p: Conv2dParams,
        kernel: [usize; 2],
    ) -> Result<Tensor> {
        apply(Op::Conv2dWeightGrad { conv: p, kernel }, &[self, dy])
    }
}
