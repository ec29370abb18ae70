//! Tuning of the C library's allocator (glibc) for long-lived, mostly idle
//! processes: the daemon and the per-container shims.
//!
//! - [`limit_arenas`]: glibc gives each thread that allocates its own arena
//!   (64 MiB reserved, a few hundred KiB touched); a daemon whose work is
//!   I/O-bound gains nothing from them and keeps their pages resident.
//! - [`trim`]: returns the free memory at the top of the heap and unused
//!   pages inside it to the kernel, e.g. after a setup phase whose
//!   allocations are gone.
//!
//! Both are advisory: on a C library without these calls they do nothing.

/// Caps the number of malloc arenas (glibc's `M_ARENA_MAX`); returns
/// whether the allocator accepted it. Call early, before threads start.
pub fn limit_arenas(max: u16) -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only changes allocator parameters; M_ARENA_MAX
        // (-8) takes any positive count and is safe to set at any time
        // (existing arenas stay, no new ones beyond the cap are made).
        unsafe { libc::mallopt(libc::M_ARENA_MAX, i32::from(max.max(1))) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = max;
        false
    }
}

/// Releases free heap memory to the kernel (glibc's `malloc_trim(0)`);
/// returns whether any memory was released.
pub fn trim() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: malloc_trim takes the allocator's own locks and only
        // releases memory that no allocation uses; it has no preconditions.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuning_calls_succeed_on_glibc() {
        assert!(super::limit_arenas(2));
        // Free a large block, then trim: glibc reports whether it released.
        let v = vec![1u8; 8 << 20];
        drop(std::hint::black_box(v));
        let _ = super::trim();
    }
}
