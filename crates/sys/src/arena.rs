//! An arena-first global allocator for short-lived processes.
//!
//! `wharf-runtime` lives for one container operation and allocates a few
//! hundred kilobytes (the parsed spec, its JSON, the state file, paths).
//! musl's allocator returns every freed group to the kernel, so one
//! `wharf-runtime run` made about 120 `mmap` and 110 `munmap` calls and
//! hundreds of page faults on fresh pages: about a tenth of the runtime's
//! CPU time in a profile of `bench/runtime`.
//!
//! [`ArenaFirst`] hands out memory from one static region by bumping an
//! offset: no system call, each page faulted in at most once. A free gives
//! memory back only when it is the most recent allocation (the common
//! push/pop pattern of temporary buffers); other frees are left in place.
//! The waste is bounded by the region's size: once it is used up, every
//! further allocation goes to the system allocator, which frees normally,
//! so a long-running `run` or `exec` (a terminal relay) does not grow.
//! Not for long-lived processes, where pages of dead objects would stay
//! resident for good.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The region's alignment (a page): any `Layout` up to it is served from
/// the arena, larger alignments go to the system allocator.
const REGION_ALIGN: usize = 4096;

#[repr(C, align(4096))]
struct Region<const N: usize>(UnsafeCell<[u8; N]>);

/// A global allocator serving the first `N` bytes from a static region
/// (zero-filled `.bss`: pages cost nothing until touched), then the system
/// allocator.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: wharf_sys::arena::ArenaFirst<{ 8 << 20 }> = wharf_sys::arena::ArenaFirst::new();
/// ```
pub struct ArenaFirst<const N: usize> {
    /// Offset of the first free byte of the region.
    next: AtomicUsize,
    region: Region<N>,
}

// SAFETY: the region is only reached through pointers handed out by
// `alloc`, and the compare-and-swap on `next` gives every allocation a
// range no other allocation overlaps, whichever thread asks. Nothing else
// reads or writes the region.
unsafe impl<const N: usize> Sync for ArenaFirst<N> {}

impl<const N: usize> ArenaFirst<N> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ArenaFirst {
            next: AtomicUsize::new(0),
            region: Region(UnsafeCell::new([0; N])),
        }
    }

    fn base(&self) -> usize {
        self.region.0.get() as usize
    }

    /// Whether `ptr` points into the region.
    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + N
    }

    /// A range of the region for `layout`, or `None` when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if layout.align() > REGION_ALIGN {
            return None;
        }
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            // The region is page-aligned, so aligning the offset aligns the
            // address.
            let start = cur.checked_add(layout.align() - 1)? & !(layout.align() - 1);
            let end = start.checked_add(layout.size())?;
            if end > N {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((self.base() + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }

    /// Bytes of the region handed out so far (for tests and diagnostics).
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

// SAFETY: every pointer returned is either a
// fresh, suitably aligned range of the region that no live allocation
// overlaps (see `bump`) or the system allocator's; `dealloc` and `realloc`
// tell the two apart by address and hand system pointers back to `System`
// with the same layout they were allocated with.
unsafe impl<const N: usize> GlobalAlloc for ArenaFirst<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: `layout` is the caller's, valid as `GlobalAlloc::alloc`
            // requires (non-zero size).
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            // Give the bytes back only if this was the last allocation: the
            // offset then moves back to its start. Anything else stays
            // allocated (bounded by the region's size).
            let start = ptr as usize - self.base();
            let end = start + layout.size();
            let _ = self
                .next
                .compare_exchange(end, start, Ordering::Relaxed, Ordering::Relaxed);
            return;
        }
        // SAFETY: not in the region, so `alloc` or `realloc` got it from
        // `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: a `System` pointer with its layout; `new_size` is the
            // caller's, valid as `GlobalAlloc::realloc` requires.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let start = ptr as usize - self.base();
        let end = start + layout.size();
        // The most recent allocation grows or shrinks in place.
        if let Some(new_end) = start.checked_add(new_size)
            && new_end <= N
            && self
                .next
                .compare_exchange(end, new_end, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a power of two (it came from a valid
        // layout) and `new_size` does not overflow when rounded up, as
        // `GlobalAlloc::realloc` requires of its caller.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid, non-zero layout (new_size > old size >= 0).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both ranges are live allocations of at least
            // `layout.size()` bytes and distinct (the new one was just made).
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
            // SAFETY: `ptr` with its own layout, no longer used.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SMALL: ArenaFirst<8192> = ArenaFirst::new();

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn serves_from_the_region_then_from_the_system() {
        // One test drives the shared static arena so the offsets are known.
        let a = SMALL.base();
        // SAFETY: valid layouts; every pointer is freed with its layout.
        unsafe {
            let p = SMALL.alloc(layout(10, 1));
            assert_eq!(p as usize, a);
            let q = SMALL.alloc(layout(16, 16));
            assert_eq!(q as usize, a + 16, "aligned");
            assert!(SMALL.owns(q));
            // The last allocation grows in place, then is given back.
            let q2 = SMALL.realloc(q, layout(16, 16), 100);
            assert_eq!(q2, q);
            assert_eq!(SMALL.used(), 116);
            SMALL.dealloc(q2, layout(100, 16));
            assert_eq!(SMALL.used(), 16);
            // A free that is not the last leaves the offset alone.
            let r = SMALL.alloc(layout(8, 8));
            SMALL.dealloc(p, layout(10, 1));
            assert_eq!(SMALL.used(), 24);
            // Growing an older allocation copies it.
            std::ptr::write_bytes(p, 7, 10);
            let r2 = SMALL.alloc(layout(4, 4));
            let p2 = SMALL.realloc(p, layout(10, 1), 20);
            assert_ne!(p2, p);
            assert_eq!(std::slice::from_raw_parts(p2, 10), &[7; 10]);
            // Too big for what is left, or a larger alignment: the system's.
            let big = SMALL.alloc(layout(9000, 8));
            assert!(!big.is_null() && !SMALL.owns(big));
            std::ptr::write_bytes(big, 1, 9000);
            let big2 = SMALL.realloc(big, layout(9000, 8), 20000);
            assert!(!SMALL.owns(big2));
            SMALL.dealloc(big2, layout(20000, 8));
            let page = SMALL.alloc(layout(64, 8192));
            assert!(!SMALL.owns(page) && (page as usize).is_multiple_of(8192));
            SMALL.dealloc(page, layout(64, 8192));
            // Shrinking keeps the pointer.
            let r3 = SMALL.realloc(r, layout(8, 8), 4);
            assert_eq!(r3, r);
            SMALL.dealloc(r2, layout(4, 4));
            SMALL.dealloc(p2, layout(20, 1));
        }
    }

    #[test]
    fn threads_get_disjoint_ranges() {
        static SHARED: ArenaFirst<{ 1 << 20 }> = ArenaFirst::new();
        let handles: Vec<_> = (0..4u8)
            .map(|t: u8| {
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..500 {
                        // SAFETY: a valid layout; the pointer is written
                        // within its size and kept (never freed).
                        let p = unsafe { SHARED.alloc(layout(24, 8)) };
                        // SAFETY: 24 bytes were allocated at `p`.
                        unsafe { std::ptr::write_bytes(p, t, 24) };
                        got.push(p as usize);
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<usize> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        for w in all.windows(2) {
            assert!(w[1] - w[0] >= 24, "overlap");
        }
        assert_eq!(SHARED.used(), 2000 * 24);
    }
}
