//! The process heap of a long-lived bulkhead process ([`keep_compile_memory`]).
//!
//! A full compile of a large ACL allocates and frees tens of MiB (a
//! 10k-rule list: ~37 MiB in ~130k blocks, docs/benchmarks.md). With
//! glibc's defaults, the large blocks are mapped and unmapped on each
//! compile and the free top of the heap is handed back to the kernel, so
//! the next compile page-faults all of it in again: ~450 faults per compile
//! of the 10k-rule ACL, ~6% of its time. The service keeps that memory
//! instead, within bounds an operator can afford.

/// Blocks up to this size come from the heap, not from their own mapping
/// (glibc's own ceiling for its adaptive threshold).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory at the top of a heap kept for the next compile before it is
/// handed back to the kernel: after a compile of any size, the service
/// holds at most this much more than it uses.
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Makes this process keep the memory a compile frees for the next one
/// ([`MMAP_THRESHOLD`], [`TRIM_THRESHOLD`]); call once, at start, before
/// other threads run. Nothing on other C libraries (the musl builds), whose
/// allocators take no such settings.
pub fn keep_compile_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets allocator parameters; both values are
    // in range for `c_int`, and it is called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}
