//! Allocation counting for benchmarks and tests: [`CountingAllocator`] wraps any global
//! allocator, forwards every call to it unchanged and counts the allocations (and the bytes
//! requested) either for the whole process or for each thread separately. A test, example or
//! benchmark binary installs it as its global allocator (a `static`, hence the `const`
//! constructor) and reads [`CountingAllocator::counts`] around the code it measures; nothing
//! else in ferrograd installs it.
//!
//! ```
//! use std::alloc::{GlobalAlloc, Layout, System};
//! use ferrograd_core::counting_alloc::{CountingAllocator, Scope};
//!
//! static COUNTING: CountingAllocator<System> = CountingAllocator::new(System, Scope::Thread);
//!
//! let before = COUNTING.counts();
//! let layout = Layout::new::<[u8; 100]>();
//! // SAFETY: the layout's size is not zero, and the block is freed once with that layout.
//! unsafe {
//!     let block = COUNTING.alloc(layout);
//!     assert!(!block.is_null());
//!     COUNTING.dealloc(block, layout);
//! }
//! let counted = COUNTING.counts().since(before);
//! assert_eq!((counted.allocations, counted.bytes), (1, 100));
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whose allocations a [`CountingAllocator`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every thread's, in one process-wide total (for multithreaded benchmarks).
    Process,
    /// Each thread's separately; [`CountingAllocator::counts`] reports the calling thread's, so
    /// tests running side by side do not count each other's allocations.
    Thread,
}

/// Allocations and bytes counted so far. `alloc`, `alloc_zeroed` and `realloc` each count as
/// one allocation; the bytes are the sizes requested (the new size for `realloc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Allocation calls.
    pub allocations: u64,
    /// Bytes requested by those calls.
    pub bytes: u64,
}

impl Counts {
    /// What was counted between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            allocations: self.allocations.wrapping_sub(earlier.allocations),
            bytes: self.bytes.wrapping_sub(earlier.bytes),
        }
    }
}

thread_local! {
    // A const initialiser and a type without destructor: reading and writing it never
    // allocates and works at any point of a thread's life, as an allocator requires.
    static THREAD_COUNTS: Cell<Counts> = const {
        Cell::new(Counts { allocations: 0, bytes: 0 })
    };
}

/// A global allocator that forwards to `A` and counts allocations. [`CountingAllocator::new`]
/// is `const`, so it can be the `static` a binary installs as its global allocator.
#[derive(Debug)]
pub struct CountingAllocator<A> {
    inner: A,
    scope: Scope,
    allocations: AtomicU64,
    bytes: AtomicU64,
}

impl<A> CountingAllocator<A> {
    /// Wraps `inner`, counting in the given scope.
    pub const fn new(inner: A, scope: Scope) -> Self {
        CountingAllocator {
            inner,
            scope,
            allocations: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// The counts so far: the whole process's for [`Scope::Process`], the calling thread's for
    /// [`Scope::Thread`].
    pub fn counts(&self) -> Counts {
        match self.scope {
            Scope::Process => Counts {
                allocations: self.allocations.load(Ordering::Relaxed),
                bytes: self.bytes.load(Ordering::Relaxed),
            },
            Scope::Thread => THREAD_COUNTS.with(Cell::get),
        }
    }

    fn count(&self, bytes: usize) {
        match self.scope {
            Scope::Process => {
                self.allocations.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            Scope::Thread => THREAD_COUNTS.with(|c| {
                let Counts {
                    allocations,
                    bytes: b,
                } = c.get();
                c.set(Counts {
                    allocations: allocations + 1,
                    bytes: b + bytes as u64,
                });
            }),
        }
    }
}

// SAFETY: every call is forwarded unchanged to `inner`, which upholds the `GlobalAlloc`
// contract; counting only touches atomics or a thread-local cell with a const initialiser (no
// allocation, no destructor), so it neither allocates nor affects the memory handed out.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count(layout.size());
        // SAFETY: forwarded with the caller's layout, which meets `alloc`'s requirements.
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count(layout.size());
        // SAFETY: forwarded with the caller's layout, which meets `alloc_zeroed`'s requirements.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: every block handed out came from `inner` (all allocation calls forward to
        // it), so `ptr` was allocated by `inner` with this layout.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count(new_size);
        // SAFETY: `ptr` was allocated by `inner` with `layout` (as in `dealloc`), and the
        // caller guarantees `new_size` meets `realloc`'s requirements.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn counts_forwarded_calls_in_either_scope() {
        for scope in [Scope::Process, Scope::Thread] {
            let a = CountingAllocator::new(System, scope);
            let layout = Layout::from_size_align(64, 8).unwrap();
            let before = a.counts();
            // SAFETY: the layout has a non-zero size; each block is freed once, by the same
            // allocator, with the layout it was last allocated with.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                let p = a.realloc(p, layout, 128);
                assert!(!p.is_null());
                a.dealloc(p, Layout::from_size_align(128, 8).unwrap());
                let z = a.alloc_zeroed(layout);
                assert!(!z.is_null() && *z == 0);
                a.dealloc(z, layout);
            }
            let counted = a.counts().since(before);
            assert_eq!(
                counted,
                Counts {
                    allocations: 3,
                    bytes: 64 + 128 + 64
                },
                "{scope:?}"
            );
        }
    }
}
