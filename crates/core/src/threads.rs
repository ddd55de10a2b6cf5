//! Thread control. Kernels use the rayon pool they run in; [`ThreadPool`] lets a caller choose
//! the thread count for a region of code explicitly (PyTorch `torch.set_num_threads`), and
//! optionally have its threads flush subnormal floats to zero
//! ([`ThreadPool::flushing_denormals`], PyTorch `torch.set_flush_denormal`): arithmetic on subnormals takes a slow path in the CPU, and an
//! optimizer's running averages of tiny gradients drift into that range.

use crate::{Error, Result};

/// A pool of worker threads; ops run inside [`ThreadPool::install`] use exactly its threads.
pub struct ThreadPool(rayon::ThreadPool);

impl ThreadPool {
    /// A pool of `threads` workers (`threads >= 1`).
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor, ThreadPool};
    /// let pool = ThreadPool::new(1)?;
    /// let y = pool.install(|| Tensor::ones(&[4, 4], DType::F32)?.matmul(&Tensor::ones(&[4, 4], DType::F32)?))?;
    /// assert_eq!(y.to_vec::<f32>()?[0], 4.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] for zero threads or when the system cannot start them.
    pub fn new(threads: usize) -> Result<Self> {
        Self::build(threads, false)
    }

    /// A pool of `threads` workers that flush subnormal floats to zero: each worker sets the
    /// FTZ and DAZ bits of its MXCSR register (x86-64) or the FZ bit of its FPCR (AArch64) when
    /// it starts, and nothing else. The thread that calls [`ThreadPool::install`] is not
    /// changed, and on other CPUs the workers keep IEEE subnormals.
    ///
    /// # Errors
    /// As [`ThreadPool::new`].
    pub fn flushing_denormals(threads: usize) -> Result<Self> {
        Self::build(threads, true)
    }

    fn build(threads: usize, flush: bool) -> Result<Self> {
        if threads == 0 {
            return Err(Error::Argument {
                op: "ThreadPool::new",
                msg: "the thread count must be at least 1".into(),
            });
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(move |_| {
                if flush {
                    set_flush_denormals(true);
                }
            })
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

/// Makes the calling thread's float arithmetic flush subnormal results and inputs to zero (on)
/// or keep them (off, the IEEE default). Returns whether this CPU supports it; elsewhere it
/// does nothing.
///
/// What it changes, precisely: on x86-64 the FTZ (bit 15) and DAZ (bit 6) bits of the calling
/// thread's MXCSR register, on AArch64 the FZ bit (24) of its FPCR; every other bit, and every
/// other thread, is left as it was. Values below 1.2e-38 (f32) or 2.2e-308 (f64) then become
/// zero. The change lasts for the thread's life, so it is made only on threads the library
/// owns: the workers of [`ThreadPool::flushing_denormals`], never a caller's thread (whose
/// other code could depend on IEEE subnormals).
pub(crate) fn set_flush_denormals(on: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        const FTZ_DAZ: u32 = 0x8040;
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit MXCSR register into `csr`, which is valid for writes.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr = if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
        // SAFETY: ldmxcsr loads MXCSR from `csr`; only the FTZ and DAZ bits differ from the
        // current value, which changes how subnormals are rounded and nothing else.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly)) };
        true
    }
    #[cfg(target_arch = "aarch64")]
    {
        const FZ: u64 = 1 << 24;
        let mut fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack)) };
        fpcr = if on { fpcr | FZ } else { fpcr & !FZ };
        // SAFETY: only the flush-to-zero bit of FPCR changes.
        unsafe { std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack)) };
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = on;
        false
    }
}
