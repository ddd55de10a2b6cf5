//! Printing tensors the way PyTorch does: nested brackets, aligned values, and the middle of
//! large tensors elided with `...`.

use std::fmt;

use crate::{DType, Storage, Tensor};

/// Tensors with more elements than this are summarised.
const SUMMARY_THRESHOLD: usize = 1000;
/// Entries shown at each end of a summarised dimension.
const EDGE: usize = 3;

/// Indices shown along a dimension of `size` (None marks the elided gap).
fn shown(size: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && size > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((size - EDGE..size).map(Some))
            .collect()
    } else {
        (0..size).map(Some).collect()
    }
}

struct Printer<'a> {
    t: &'a Tensor,
    storage: &'a Storage,
    summarise: bool,
    width: usize,
    format: fn(f64, bool) -> String,
    sci: bool,
}

impl Printer<'_> {
    fn value(&self, index: &[usize]) -> f64 {
        let i = self.t.layout().index_of(index);
        match self.storage {
            Storage::F32(v) => v[i] as f64,
            Storage::F64(v) => v[i],
            Storage::I64(v) => v[i] as f64,
        }
    }

    fn visit(&self, index: &mut Vec<usize>, each: &mut impl FnMut(f64)) {
        let d = index.len();
        if d == self.t.rank() {
            each(self.value(index));
            return;
        }
        for i in shown(self.t.shape()[d], self.summarise)
            .into_iter()
            .flatten()
        {
            index.push(i);
            self.visit(index, each);
            index.pop();
        }
    }

    fn write(
        &self,
        f: &mut fmt::Formatter<'_>,
        index: &mut Vec<usize>,
        indent: usize,
    ) -> fmt::Result {
        let d = index.len();
        if d == self.t.rank() {
            let s = (self.format)(self.value(index), self.sci);
            return write!(f, "{s:>w$}", w = self.width);
        }
        f.write_str("[")?;
        let last_dim = d + 1 == self.t.rank();
        for (k, i) in shown(self.t.shape()[d], self.summarise)
            .into_iter()
            .enumerate()
        {
            if k > 0 {
                if last_dim {
                    f.write_str(", ")?;
                } else {
                    f.write_str(",")?;
                    let blank_lines = self.t.rank() - d - 1;
                    for _ in 0..blank_lines {
                        f.write_str("\n")?;
                    }
                    write!(f, "{:indent$}", "", indent = indent + 1)?;
                }
            }
            match i {
                Some(i) => {
                    index.push(i);
                    self.write(f, index, indent + 1)?;
                    index.pop();
                }
                None => f.write_str("...")?,
            }
        }
        f.write_str("]")
    }
}

fn format_float(v: f64, sci: bool) -> String {
    if sci {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

fn format_int(v: f64, _sci: bool) -> String {
    format!("{}", v as i64)
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let storage = self.storage();
        let mut p = Printer {
            t: self,
            storage: &storage,
            summarise: self.numel() > SUMMARY_THRESHOLD,
            width: 0,
            format: if self.dtype() == DType::I64 {
                format_int
            } else {
                format_float
            },
            sci: false,
        };
        if self.dtype() != DType::I64 {
            let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
            p.visit(&mut Vec::new(), &mut |v| {
                if v.is_finite() && v != 0.0 {
                    lo = lo.min(v.abs());
                    hi = hi.max(v.abs());
                }
            });
            p.sci = hi >= 1e8 || (lo < 1e-4 && hi > 0.0);
        }
        let mut width = 0;
        p.visit(&mut Vec::new(), &mut |v| {
            width = width.max((p.format)(v, p.sci).len())
        });
        p.width = width;
        f.write_str("tensor(")?;
        p.write(f, &mut Vec::new(), "tensor(".len())?;
        write!(f, ", shape={:?}, dtype={}", self.shape(), self.dtype())?;
        if self.requires_grad() {
            f.write_str(", requires_grad=true")?;
        } else if let Some(op) = self.op_name() {
            write!(f, ", grad_fn={op}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn prints_like_pytorch() {
        let t = Tensor::from_vec(vec![1.0f32, -2.5, 3.0, 4.0], &[2, 2]).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]], shape=[2, 2], dtype=f32)"
        );
        let s = Tensor::scalar(7i64);
        assert_eq!(s.to_string(), "tensor(7, shape=[], dtype=i64)");
    }

    #[test]
    fn elides_large_tensors() {
        let t = Tensor::zeros(&[100, 100], DType::F64).unwrap();
        let s = t.to_string();
        assert!(s.contains("..."), "{s}");
        assert!(s.lines().count() < 10, "{s}");
    }
}
