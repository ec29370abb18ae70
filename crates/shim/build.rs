//! Link settings of the `wharf-shim` binary.
//!
//! One shim runs per container, so its private memory is multiplied by the
//! number of containers. Linked as a position-dependent executable
//! (`-no-pie`), the binary's pointer tables (`.data.rel.ro`, the GOT) are
//! final in the file: the loader relocates nothing, and those pages stay
//! clean and shared between all shims instead of being copied and written
//! in each (about 300 KiB per shim, measured with `smaps`). The code is
//! still compiled position-independent; only the executable's load address
//! is fixed (no ASLR for the shim's own image; its heap, stack and
//! libraries are still randomized).

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
