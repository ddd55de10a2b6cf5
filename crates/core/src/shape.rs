//! Shapes, strides and views: [`Layout`] maps an n-d index to a position in a flat buffer, and
//! the helpers here do the shape arithmetic of broadcasting, axis normalisation and views.

use crate::{Error, Result};

/// Most elements a tensor may have: its bytes (at most 8 per element) must fit in an `isize`,
/// as Rust's allocations require. Every tensor's shape is checked against it when the shape
/// comes from outside (creation, reshape, broadcast, products, concatenation), so the plain
/// [`numel`] of an existing tensor's shape never overflows.
pub const MAX_ELEMENTS: usize = isize::MAX as usize / 8;

/// Number of elements of a shape that is known to be valid (an existing tensor's, or one checked
/// by [`checked_numel`]); 1 for a scalar.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements of a shape from outside, without overflow.
///
/// ```
/// use ferrograd_core::shape::checked_numel;
/// assert_eq!(checked_numel("t", &[2, 3]).unwrap(), 6);
/// assert!(checked_numel("t", &[2, (1 << 63) + 2]).is_err()); // wraps to 4 unchecked
/// ```
///
/// # Errors
/// [`Error::TooLarge`] when the product of the sizes (zeros aside) overflows or exceeds
/// [`MAX_ELEMENTS`].
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    // The sizes other than 0 must multiply without overflow too: strides are their products.
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
        .filter(|&n| n <= MAX_ELEMENTS)
        .map(|_| numel(shape))
        .ok_or_else(|| Error::TooLarge {
            op,
            shape: shape.to_vec(),
            max: MAX_ELEMENTS,
        })
}

/// Row-major (C order) strides of a contiguous tensor of this shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// Resolves a possibly negative axis (`-1` is the last) against a rank.
///
/// # Errors
/// [`Error::Dim`] when the axis is outside `-rank..rank`.
pub fn normalize_dim(op: &'static str, dim: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(Error::Dim { op, dim, rank });
    }
    Ok(d as usize)
}

/// Resolves a list of axes, sorted and without repeats. An empty list means every axis.
///
/// # Errors
/// [`Error::Dim`] for an axis out of range, [`Error::Argument`] for a repeated axis.
pub fn normalize_dims(op: &'static str, dims: &[isize], rank: usize) -> Result<Vec<usize>> {
    if dims.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = normalize_dim(op, d, rank)?;
        if out.contains(&d) {
            return Err(Error::Argument {
                op,
                msg: format!("dimension {d} appears more than once in {dims:?}"),
            });
        }
        out.push(d);
    }
    out.sort_unstable();
    Ok(out)
}

/// The broadcast shape of two shapes under NumPy/PyTorch rules (align right; sizes equal or 1).
///
/// # Errors
/// [`Error::Broadcast`] naming `op` and both shapes.
pub fn broadcast_shapes(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    let rank = lhs.len().max(rhs.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let l = if i < rank - lhs.len() {
            1
        } else {
            lhs[i - (rank - lhs.len())]
        };
        let r = if i < rank - rhs.len() {
            1
        } else {
            rhs[i - (rank - rhs.len())]
        };
        out[i] = if l == r || r == 1 {
            l
        } else if l == 1 {
            r
        } else {
            return Err(Error::Broadcast {
                op,
                lhs: lhs.to_vec(),
                rhs: rhs.to_vec(),
            });
        };
    }
    checked_numel(op, &out)?;
    Ok(out)
}

/// How a tensor's elements sit in its storage: shape, strides (in elements) and offset.
/// Views (reshape, permute, broadcast, narrow) are new layouts over the same storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// A contiguous row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            strides: contiguous_strides(shape),
            shape: shape.to_vec(),
            offset: 0,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strides, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Position of the first element in the storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Whether the elements are stored row-major without gaps (dims of size 1 ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d;
        }
        true
    }

    /// The contiguous range of storage this layout covers, when it is contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.numel())
    }

    /// A reshaped view, when the layout is contiguous (otherwise the caller copies first).
    pub(crate) fn reshaped(&self, shape: &[usize]) -> Option<Layout> {
        self.is_contiguous().then(|| Layout {
            strides: contiguous_strides(shape),
            shape: shape.to_vec(),
            offset: self.offset,
        })
    }

    /// A view with axes reordered: axis `i` of the result is axis `perm[i]` of `self`.
    pub(crate) fn permuted(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// A broadcast view (stride 0 along expanded axes). `shape` must be a valid broadcast target.
    pub(crate) fn broadcast_to(&self, shape: &[usize]) -> Layout {
        let extra = shape.len() - self.shape.len();
        let mut strides = vec![0; shape.len()];
        for i in 0..self.shape.len() {
            if self.shape[i] == shape[i + extra] {
                strides[i + extra] = self.strides[i];
            }
        }
        Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        }
    }

    /// A view of `len` elements from `start` along `dim` (bounds checked by the caller).
    pub(crate) fn narrowed(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut shape = self.shape.clone();
        shape[dim] = len;
        Layout {
            shape,
            strides: self.strides.clone(),
            offset: self.offset + start * self.strides[dim],
        }
    }

    /// One past the largest storage index this layout reaches (0 when it has no element), or
    /// `None` if that overflows. A storage of at least this length holds every element.
    pub fn span(&self) -> Option<usize> {
        if self.shape.contains(&0) {
            return Some(0);
        }
        self.shape
            .iter()
            .zip(&self.strides)
            .try_fold(self.offset, |end, (&d, &s)| {
                end.checked_add((d - 1).checked_mul(s)?)
            })?
            .checked_add(1)
    }

    /// Storage index of the element at a multi-index.
    pub fn index_of(&self, index: &[usize]) -> usize {
        self.offset
            + index
                .iter()
                .zip(&self.strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes("t", &[3, 1], &[4]).unwrap(), vec![3, 4]);
        assert_eq!(broadcast_shapes("t", &[], &[2, 2]).unwrap(), vec![2, 2]);
        assert_eq!(
            broadcast_shapes("t", &[2, 1, 5], &[3, 1]).unwrap(),
            vec![2, 3, 5]
        );
        let err = broadcast_shapes("add", &[2, 3], &[4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: shapes [2, 3] and [4] cannot be broadcast together"
        );
    }

    #[test]
    fn contiguity() {
        let l = Layout::contiguous(&[2, 3]);
        assert!(l.is_contiguous());
        assert!(!l.permuted(&[1, 0]).is_contiguous());
        assert!(l.narrowed(0, 1, 1).is_contiguous());
        assert!(!l.narrowed(1, 1, 1).is_contiguous());
        assert!(!l.broadcast_to(&[4, 2, 3]).is_contiguous());
    }

    #[test]
    fn dims_are_normalised() {
        assert_eq!(normalize_dim("t", -1, 3).unwrap(), 2);
        assert!(normalize_dim("t", 3, 3).is_err());
        assert_eq!(normalize_dims("t", &[-1, 0], 3).unwrap(), vec![0, 2]);
        assert!(normalize_dims("t", &[1, 1], 3).is_err());
    }
}
