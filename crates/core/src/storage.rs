//! Flat, reference-counted buffers. A [`Storage`] holds the elements; a [`StorageCell`] shares
//! one between views and counts in-place writes so autograd can detect a saved tensor that was
//! modified after it was recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{DType, Element};

/// A flat buffer of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// i64 elements.
    I64(Vec<i64>),
}

impl Storage {
    /// A buffer of `n` zeros.
    pub fn zeros(dtype: DType, n: usize) -> Storage {
        match dtype {
            DType::F32 => Storage::F32(vec![0.0; n]),
            DType::F64 => Storage::F64(vec![0.0; n]),
            DType::I64 => Storage::I64(vec![0; n]),
        }
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::I64(_) => DType::I64,
        }
    }

    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::I64(v) => v.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Conversion between a typed `Vec` / slice and [`Storage`].
pub trait StorageElement: Element {
    /// Wraps a vector.
    fn into_storage(v: Vec<Self>) -> Storage;
    /// Borrows the typed buffer, if the dtype matches.
    fn slice(s: &Storage) -> Option<&[Self]>;
    /// Mutably borrows the typed buffer, if the dtype matches.
    fn slice_mut(s: &mut Storage) -> Option<&mut [Self]>;
}

macro_rules! impl_storage_element {
    ($t:ty, $variant:ident) => {
        impl StorageElement for $t {
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(v)
            }
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut Storage) -> Option<&mut [Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
impl_storage_element!(f32, F32);
impl_storage_element!(f64, F64);
impl_storage_element!(i64, I64);

/// A storage shared by every view of it, with a version counter bumped by each in-place write.
#[derive(Debug)]
pub struct StorageCell {
    data: RwLock<Storage>,
    version: AtomicU64,
}

impl StorageCell {
    /// Wraps a storage at version 0.
    pub fn new(storage: Storage) -> Self {
        StorageCell {
            data: RwLock::new(storage),
            version: AtomicU64::new(0),
        }
    }

    /// Read access. A poisoned lock (a panic while writing) still yields the data.
    pub fn read(&self) -> RwLockReadGuard<'_, Storage> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access; bumps the version, since the caller is about to modify the data.
    pub fn write(&self) -> RwLockWriteGuard<'_, Storage> {
        self.version.fetch_add(1, Ordering::Relaxed);
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access, for the owner of the only handle (no locking); bumps the version.
    pub fn get_mut(&mut self) -> &mut Storage {
        *self.version.get_mut() += 1;
        self.data.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of in-place writes so far.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }
}
