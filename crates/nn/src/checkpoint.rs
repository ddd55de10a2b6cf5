//! Saving and loading named tensors in the safetensors format, which PyTorch, candle and the
//! Hugging Face tools read. Loading into a model checks every name, shape and dtype and writes
//! the values into the existing parameters in place.

use std::collections::HashMap;

use ferrograd_core::{DType, Error, Result, Tensor, no_grad};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn bad(msg: String) -> Error {
    Error::Argument {
        op: "safetensors",
        msg,
    }
}

/// Serialises named tensors (and optional string metadata) to safetensors bytes.
///
/// ```
/// use ferrograd_core::{DType, Tensor};
/// use ferrograd_nn::checkpoint::{from_safetensors, to_safetensors};
/// let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
/// let bytes = to_safetensors(&[("w".to_string(), t)], None)?;
/// let back = from_safetensors(&bytes)?;
/// assert_eq!(back[0].1.to_vec::<f32>()?, vec![1.0, 2.0]);
/// # Ok::<(), ferrograd_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Argument`] for repeated names or a serialisation failure.
pub fn to_safetensors(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if buffers.iter().any(|(n, ..)| n == name) {
            return Err(bad(format!("tensor name {name:?} appears twice")));
        }
        let (dtype, bytes) = match t.dtype() {
            DType::F32 => (
                Dtype::F32,
                t.to_vec::<f32>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            DType::F64 => (
                Dtype::F64,
                t.to_vec::<f64>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            DType::I64 => (
                Dtype::I64,
                t.to_vec::<i64>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        };
        buffers.push((name.clone(), dtype, t.shape().to_vec(), bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| bad(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, metadata).map_err(|e| bad(e.to_string()))
}

fn decode<T, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

/// Reads named tensors (f32, f64 or i64) from safetensors bytes, in the file's order.
///
/// # Errors
/// [`Error::Argument`] for a malformed file or an unsupported dtype.
pub fn from_safetensors(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.iter() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => Tensor::from_vec(decode(data, f32::from_le_bytes), &shape)?,
            Dtype::F64 => Tensor::from_vec(decode(data, f64::from_le_bytes), &shape)?,
            Dtype::I64 => Tensor::from_vec(decode(data, i64::from_le_bytes), &shape)?,
            other => {
                return Err(bad(format!(
                    "tensor {name:?} has unsupported dtype {other:?}"
                )));
            }
        };
        out.push((name.to_string(), t));
    }
    Ok(out)
}

/// The string metadata of a safetensors file.
///
/// # Errors
/// [`Error::Argument`] for a malformed file.
pub fn safetensors_metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Copies loaded values into existing parameters, in place. Every parameter must be present
/// with its exact shape and dtype, and no unknown names may remain.
///
/// # Errors
/// [`Error::Argument`] naming the missing, unexpected or mismatched tensor.
pub fn load_into(params: &[(String, Tensor)], loaded: &[(String, Tensor)]) -> Result<()> {
    for (name, _) in loaded {
        if !params.iter().any(|(n, _)| n == name) {
            return Err(bad(format!(
                "unexpected tensor {name:?} (the model has no such parameter)"
            )));
        }
    }
    let _guard = no_grad();
    for (name, p) in params {
        let Some((_, t)) = loaded.iter().find(|(n, _)| n == name) else {
            return Err(bad(format!("missing tensor {name:?}")));
        };
        if t.shape() != p.shape() || t.dtype() != p.dtype() {
            return Err(bad(format!(
                "{name}: expected shape {:?} ({}), found {:?} ({})",
                p.shape(),
                p.dtype(),
                t.shape(),
                t.dtype()
            )));
        }
        p.assign(t)?;
    }
    Ok(())
}
