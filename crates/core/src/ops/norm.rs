//! Batch and layer normalisation, as compositions of primitives (their gradients, in both
//! graph modes and of any order, follow from the primitives' rules). Batch normalisation's
//! running statistics are updated with `assign`, an ordinary store: a compiled training step
//! updates them in place like an optimizer's state.

use crate::{Error, Result, Tensor, no_grad};

/// The running statistics and hyperparameters of [`Tensor::batch_norm`] (PyTorch
/// `F.batch_norm`'s `running_mean`, `running_var`, `training`, `momentum` and `eps`).
#[derive(Debug, Clone, Copy)]
pub struct BatchNormOptions<'a> {
    /// Running mean and variance `[c]`: read in evaluation; updated in training when present.
    pub running: Option<(&'a Tensor, &'a Tensor)>,
    /// Normalise with the batch's statistics (training) or the running ones (evaluation).
    pub training: bool,
    /// Weight of the new batch in the running statistics (PyTorch's default 0.1).
    pub momentum: f64,
    /// Added to the variance (PyTorch's default 1e-5).
    pub eps: f64,
}

impl Default for BatchNormOptions<'_> {
    /// Training without running statistics, momentum 0.1, eps 1e-5.
    fn default() -> Self {
        BatchNormOptions {
            running: None,
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

fn shape_error(op: &'static str, expected: String, got: &[usize]) -> Error {
    Error::Shape {
        op,
        expected,
        got: got.to_vec(),
    }
}

impl Tensor {
    /// `self * weight + bias`, each `[c]`-shaped parameter reshaped to `shape`.
    fn affine(&self, affine: Option<(&Tensor, &Tensor)>, shape: &[usize]) -> Result<Tensor> {
        match affine {
            None => Ok(self.clone()),
            Some((w, b)) => self.mul(&w.reshape(shape)?)?.add(&b.reshape(shape)?),
        }
    }

    /// Batch normalisation of `[n, c, ...]` over every axis but the channel axis 1 (PyTorch
    /// `F.batch_norm`): `(x - mean) / sqrt(var + eps) * weight + bias`, with the batch's mean
    /// and biased variance in training and the running ones in evaluation. In training with
    /// running statistics, they become `(1 - momentum) running + momentum batch`, with the
    /// unbiased batch variance, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_core::{BatchNormOptions, DType, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 5.0, 7.0], &[2, 2])?;
    /// let (mean, var) = (Tensor::zeros(&[2], DType::F64)?, Tensor::ones(&[2], DType::F64)?);
    /// let opts = BatchNormOptions { running: Some((&mean, &var)), ..Default::default() };
    /// let y = x.batch_norm(None, opts)?;
    /// assert!((y.to_vec::<f64>()?[0] + 1.0).abs() < 1e-5);
    /// let m = mean.to_vec::<f64>()?; // 0.9 * 0 + 0.1 * [3, 5]
    /// assert!((m[0] - 0.3).abs() < 1e-12 && (m[1] - 0.5).abs() < 1e-12);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for an input of rank below 2 or statistics and affine parameters that
    /// are not `[c]`; [`Error::Argument`] for training on one value per channel;
    /// [`Error::UnsupportedDType`] for integers.
    pub fn batch_norm(
        &self,
        affine: Option<(&Tensor, &Tensor)>,
        opts: BatchNormOptions<'_>,
    ) -> Result<Tensor> {
        const OP: &str = "batch_norm";
        self.float_only(OP)?;
        if self.rank() < 2 {
            return Err(shape_error(
                OP,
                "an input of shape [batch, channels, ...]".into(),
                self.shape(),
            ));
        }
        let c = self.shape()[1];
        let params = opts
            .running
            .into_iter()
            .chain(affine)
            .flat_map(|(a, b)| [a, b]);
        for t in params {
            if t.shape() != [c] {
                return Err(shape_error(
                    OP,
                    format!("running statistics and affine parameters of shape [{c}]"),
                    t.shape(),
                ));
            }
        }
        let mut shape = vec![1; self.rank()];
        shape[1] = c;
        let dims: Vec<isize> = (0..self.rank() as isize).filter(|&d| d != 1).collect();
        let count = self.numel() / c.max(1);
        let (mean, var) = match (opts.training, opts.running) {
            (false, Some((m, v))) => (m.reshape(&shape)?, v.reshape(&shape)?),
            (false, None) => {
                return Err(Error::Argument {
                    op: OP,
                    msg: "evaluation mode needs running statistics".into(),
                });
            }
            (true, _) => {
                if count <= 1 {
                    return Err(Error::Argument {
                        op: OP,
                        msg: format!(
                            "expected more than one value per channel in training, got input \
                             of shape {:?}",
                            self.shape()
                        ),
                    });
                }
                let mean = self.mean(&dims, true)?;
                let var = self.sub(&mean)?.square()?.mean(&dims, true)?;
                (mean, var)
            }
        };
        if let (true, Some((rm, rv))) = (opts.training, opts.running) {
            let _g = no_grad();
            let m = opts.momentum;
            let unbiased = count as f64 / (count - 1) as f64;
            let batch_mean = mean.detach().reshape(&[c])?;
            let batch_var = var.detach().reshape(&[c])?.mul_scalar(unbiased * m)?;
            rm.assign(&rm.mul_scalar(1.0 - m)?.add(&batch_mean.mul_scalar(m)?)?)?;
            rv.assign(&rv.mul_scalar(1.0 - m)?.add(&batch_var)?)?;
        }
        let inv_std = var.add_scalar(opts.eps)?.powf(-0.5)?;
        self.sub(&mean)?.mul(&inv_std)?.affine(affine, &shape)
    }

    /// Layer normalisation over the trailing dimensions `normalized_shape` (PyTorch
    /// `F.layer_norm`): each sample's values there are shifted to mean 0 and scaled to
    /// (biased) variance 1, then multiplied by `weight` and shifted by `bias` of that shape.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 10.0, 30.0], &[2, 2])?;
    /// let y = x.layer_norm(&[2], None, 0.0)?.to_vec::<f64>()?;
    /// assert_eq!(y, vec![-1.0, 1.0, -1.0, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] when the trailing dimensions are not `normalized_shape` or the affine
    /// parameters do not have it; [`Error::UnsupportedDType`] for integers.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        affine: Option<(&Tensor, &Tensor)>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        self.float_only(OP)?;
        let k = normalized_shape.len();
        if k == 0 || k > self.rank() || &self.shape()[self.rank() - k..] != normalized_shape {
            return Err(shape_error(
                OP,
                format!("an input ending in the normalized shape {normalized_shape:?}"),
                self.shape(),
            ));
        }
        for t in affine.into_iter().flat_map(|(a, b)| [a, b]) {
            if t.shape() != normalized_shape {
                return Err(shape_error(
                    OP,
                    format!("weight and bias of shape {normalized_shape:?}"),
                    t.shape(),
                ));
            }
        }
        let dims: Vec<isize> = (self.rank() - k..self.rank()).map(|d| d as isize).collect();
        let mean = self.mean(&dims, true)?;
        let centered = self.sub(&mean)?;
        let var = centered.square()?.mean(&dims, true)?;
        let y = centered.mul(&var.add_scalar(eps)?.powf(-0.5)?)?;
        y.affine(affine, normalized_shape)
    }
}
