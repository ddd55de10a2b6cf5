//! The lookup table `y = W[idx]` (PyTorch `nn.Embedding`), weight stored `[num, dim]`, with an
//! optional padding index whose row starts at zero and receives no gradient.

use ferrograd_core::{DType, Error, Result, Rng, Tensor};

use crate::init::Init;
use crate::module::{Module, join};

/// Hyperparameters of [`Embedding`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbeddingConfig {
    /// A row that starts at zero and is never trained (PyTorch `padding_idx`); its lookups
    /// return the row's value and pass no gradient to it.
    pub padding_idx: Option<usize>,
    /// Weight initialiser (default: PyTorch's, `N(0, 1)`).
    pub weight_init: Init,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            padding_idx: None,
            weight_init: Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
        }
    }
}

/// A table of `num` learned vectors of size `dim`, looked up by i64 indices of any shape
/// (PyTorch `nn.Embedding`). A lookup is a `gather`, so its gradient is a scatter-add into
/// the rows used.
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    padding_idx: Option<usize>,
}

impl Embedding {
    /// A table with freshly initialised rows (the padding row, if any, zero).
    ///
    /// ```
    /// use ferrograd_core::{DType, Rng, Tensor};
    /// use ferrograd_nn::{Embedding, EmbeddingConfig, Module};
    /// let cfg = EmbeddingConfig { padding_idx: Some(0), ..Default::default() };
    /// let e = Embedding::new(10, 4, cfg, DType::F32, &mut Rng::new(0))?;
    /// let y = e.forward(&Tensor::from_vec(vec![0i64, 3, 3, 9, 0, 1], &[2, 3])?)?;
    /// assert_eq!(y.shape(), &[2, 3, 4]);
    /// // The padding index (first of the first row) looks up a zero row.
    /// assert_eq!(y.narrow(0, 0, 1)?.narrow(1, 0, 1)?.to_vec::<f32>()?, vec![0.0; 4]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for zero sizes or a padding index outside the table; initialiser
    /// errors.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        cfg: EmbeddingConfig,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        if num_embeddings == 0 || embedding_dim == 0 {
            return Err(Error::Argument {
                op: "Embedding::new",
                msg: format!("sizes must be positive, got {num_embeddings} x {embedding_dim}"),
            });
        }
        let mut weight = cfg
            .weight_init
            .tensor(&[num_embeddings, embedding_dim], dtype, rng)?;
        if let Some(p) = cfg.padding_idx {
            check_padding(p, num_embeddings)?;
            let mut rows = weight.to_vec_f64();
            rows[p * embedding_dim..(p + 1) * embedding_dim].fill(0.0);
            weight = Tensor::from_vec(rows, &[num_embeddings, embedding_dim])?.to_dtype(dtype)?;
        }
        Ok(Embedding {
            weight: weight.with_requires_grad(true),
            padding_idx: cfg.padding_idx,
        })
    }

    /// A table from an existing weight `[num, dim]` (PyTorch `nn.Embedding.from_pretrained`
    /// with `freeze=False`); the weight should require grad to be trained.
    ///
    /// # Errors
    /// [`Error::Shape`] when the weight is not 2-D, [`Error::Argument`] for a padding index
    /// outside the table.
    pub fn from_tensor(weight: Tensor, padding_idx: Option<usize>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::Shape {
                op: "Embedding::from_tensor",
                expected: "a weight of shape [num_embeddings, embedding_dim]".into(),
                got: weight.shape().to_vec(),
            });
        }
        if let Some(p) = padding_idx {
            check_padding(p, weight.shape()[0])?;
        }
        Ok(Embedding {
            weight,
            padding_idx,
        })
    }

    /// The number of rows.
    pub fn num_embeddings(&self) -> usize {
        self.weight.shape()[0]
    }

    /// The size of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The padding row, if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }
}

fn check_padding(p: usize, num: usize) -> Result<()> {
    if p >= num {
        return Err(Error::Argument {
            op: "Embedding",
            msg: format!("padding_idx {p} is outside the table of {num} rows"),
        });
    }
    Ok(())
}

impl Module for Embedding {
    /// Looks up i64 indices of shape `s`, giving `s ++ [dim]`.
    fn forward(&self, idx: &Tensor) -> Result<Tensor> {
        if idx.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op: "Embedding (indices must be i64)",
                dtype: idx.dtype(),
            });
        }
        let flat = idx.reshape(&[idx.numel()])?;
        let rows = self.weight.index_select(0, &flat)?;
        let rows = match self.padding_idx {
            // The padding row's value, cut from the graph: no gradient reaches it.
            Some(p) => {
                let pad = flat.eq_scalar(p as f64)?.unsqueeze(1)?;
                Tensor::where_cond(&pad, &rows.detach(), &rows)?
            }
            None => rows,
        };
        let mut shape = idx.shape().to_vec();
        shape.push(self.embedding_dim());
        rows.reshape(&shape)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
    }

    fn name(&self) -> String {
        "Embedding".to_string()
    }
}
