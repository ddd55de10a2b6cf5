//! Pooling layers over NCHW inputs (PyTorch `nn.MaxPool2d`, `nn.AvgPool2d`,
//! `nn.AdaptiveAvgPool2d`), and [`Flatten`], which turns their output into a linear layer's
//! input. No parameters; the window geometry is fixed at construction and checked there, the
//! input's shape at every call.

use ferrograd_core::op::Pool2dParams;
use ferrograd_core::{Error, Result, Tensor};

use crate::module::Module;

/// Checks a window at construction: positive sizes, padding at most half the kernel (as
/// PyTorch requires).
fn check_window(layer: &'static str, p: &Pool2dParams) -> Result<()> {
    let bad = p.kernel.contains(&0)
        || p.stride.contains(&0)
        || p.dilation.contains(&0)
        || (0..2).any(|a| p.padding[a] > p.kernel[a] / 2);
    if bad {
        return Err(Error::Argument {
            op: layer,
            msg: format!(
                "kernel {:?}, stride {:?} and dilation {:?} must be positive and padding {:?} \
                 at most half the kernel",
                p.kernel, p.stride, p.dilation, p.padding
            ),
        });
    }
    Ok(())
}

/// Checks an input against a window: 4-D, and large enough for one window.
fn check_input(layer: &'static str, x: &Tensor, p: &Pool2dParams) -> Result<()> {
    let fits = x.rank() == 4
        && p.as_conv()
            .output_size([x.shape()[2], x.shape()[3]], p.kernel)
            .is_some();
    if fits {
        Ok(())
    } else {
        Err(Error::Shape {
            op: layer,
            expected: format!(
                "an input [batch, channels, height, width] with height and width of at least \
                 the window {:?} (padding {:?})",
                p.kernel, p.padding
            ),
            got: x.shape().to_vec(),
        })
    }
}

/// Max pooling (PyTorch `nn.MaxPool2d`, `ceil_mode=False`).
///
/// ```
/// use ferrograd_core::{DType, Tensor, op::Pool2dParams};
/// use ferrograd_nn::{MaxPool2d, Module};
/// let pool = MaxPool2d::new(Pool2dParams::new(2))?;
/// assert_eq!(pool.forward(&Tensor::ones(&[1, 3, 7, 8], DType::F32)?)?.shape(), &[1, 3, 3, 4]);
/// assert!(pool.forward(&Tensor::ones(&[3, 7, 8], DType::F32)?).is_err());
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxPool2d {
    /// The window.
    pub params: Pool2dParams,
}

impl MaxPool2d {
    /// Max pooling over `params`' windows (`Pool2dParams::new(k)`: `k x k`, stride `k`).
    ///
    /// # Errors
    /// [`Error::Argument`] for zero sizes or padding over half the kernel.
    pub fn new(params: Pool2dParams) -> Result<Self> {
        check_window("MaxPool2d::new", &params)?;
        Ok(MaxPool2d { params })
    }
}

impl Module for MaxPool2d {
    fn name(&self) -> String {
        "MaxPool2d".to_string()
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input("MaxPool2d", x, &self.params)?;
        x.max_pool2d(self.params)
    }
}

/// Average pooling (PyTorch `nn.AvgPool2d`, `ceil_mode=False`, `count_include_pad=True`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvgPool2d {
    /// The window (dilation 1).
    pub params: Pool2dParams,
}

impl AvgPool2d {
    /// Average pooling over `params`' windows.
    ///
    /// # Errors
    /// [`Error::Argument`] for zero sizes, padding over half the kernel or a dilation other
    /// than 1.
    pub fn new(params: Pool2dParams) -> Result<Self> {
        check_window("AvgPool2d::new", &params)?;
        if params.dilation != [1, 1] {
            return Err(Error::Argument {
                op: "AvgPool2d::new",
                msg: format!("dilation {:?} is not supported (only 1)", params.dilation),
            });
        }
        Ok(AvgPool2d { params })
    }
}

impl Module for AvgPool2d {
    fn name(&self) -> String {
        "AvgPool2d".to_string()
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input("AvgPool2d", x, &self.params)?;
        x.avg_pool2d(self.params)
    }
}

/// Adaptive average pooling to a fixed output size (PyTorch `nn.AdaptiveAvgPool2d`); an
/// output of `[1, 1]` is global average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    /// Output height and width.
    pub output_size: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pooling to `output_size`.
    ///
    /// # Errors
    /// [`Error::Argument`] for a zero output size.
    pub fn new(output_size: [usize; 2]) -> Result<Self> {
        if output_size.contains(&0) {
            return Err(Error::Argument {
                op: "AdaptiveAvgPool2d::new",
                msg: format!("output size {output_size:?} must be positive"),
            });
        }
        Ok(AdaptiveAvgPool2d { output_size })
    }
}

impl Module for AdaptiveAvgPool2d {
    fn name(&self) -> String {
        "AdaptiveAvgPool2d".to_string()
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 4 || x.shape()[2] == 0 || x.shape()[3] == 0 {
            return Err(Error::Shape {
                op: "AdaptiveAvgPool2d",
                expected: "an input [batch, channels, height, width] with a positive height \
                           and width"
                    .into(),
                got: x.shape().to_vec(),
            });
        }
        x.adaptive_avg_pool2d(self.output_size)
    }
}

/// Flattens every dimension after the batch dimension (PyTorch `nn.Flatten()`):
/// `[n, c, h, w]` becomes `[n, c * h * w]`.
///
/// ```
/// use ferrograd_core::{DType, Tensor};
/// use ferrograd_nn::{Flatten, Module};
/// assert_eq!(Flatten.forward(&Tensor::ones(&[2, 3, 4, 5], DType::F32)?)?.shape(), &[2, 60]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn name(&self) -> String {
        "Flatten".to_string()
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match x.rank() {
            0 | 1 => Err(Error::Shape {
                op: "Flatten",
                expected: "an input [batch, ...] of rank 2 or more".into(),
                got: x.shape().to_vec(),
            }),
            2 => Ok(x.clone()),
            _ => x.flatten(1, -1),
        }
    }
}
