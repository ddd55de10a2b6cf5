//! Thread control. Kernels use the rayon pool they run in; [`ThreadPool`] lets a caller choose
//! the thread count for a region of code explicitly (PyTorch `torch.set_num_threads`).

use crate::{Error, Result};

/// A pool of worker threads; ops run inside [`ThreadPool::install`] use exactly its threads.
pub struct ThreadPool(rayon::ThreadPool);

impl ThreadPool {
    /// A pool of `threads` workers (`threads >= 1`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor, ThreadPool};
    /// let pool = ThreadPool::new(1)?;
    /// let y = pool.install(|| Tensor::ones(&[4, 4], DType::F32).matmul(&Tensor::ones(&[4, 4], DType::F32)))?;
    /// assert_eq!(y.to_vec::<f32>()?[0], 4.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for zero threads or when the system cannot start them.
    pub fn new(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::Argument {
                op: "ThreadPool::new",
                msg: "the thread count must be at least 1".into(),
            });
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map(ThreadPool)
            .map_err(|e| Error::Argument {
                op: "ThreadPool::new",
                msg: e.to_string(),
            })
    }

    /// Runs `f` with this pool's threads serving every kernel it calls.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.0.install(f)
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.0.current_num_threads()
    }
}

/// The number of threads kernels called from here will use.
pub fn current_threads() -> usize {
    rayon::current_num_threads()
}
