//! Protection against overwriting the runtime binary from inside a container
//! (the CVE-2019-5736 class).
//!
//! A container process that can reach `/proc/<pid>/exe` of a runtime
//! process running in its namespaces could open the host binary and write to
//! it after the runtime exits. Before doing anything that enters a container,
//! the runtime re-executes itself from a sealed memfd copy: its
//! `/proc/self/exe` is then an anonymous, write-sealed file, and the host
//! binary is never executing inside a container.

use std::io;

use rustix::fs::{MemfdFlags, SealFlags};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Whether the running executable is a sealed memfd.
pub fn running_sealed() -> bool {
    match std::fs::File::open("/proc/self/exe") {
        Ok(f) => rustix::fs::fcntl_get_seals(&f).is_ok_and(|s| s.contains(SEALS)),
        Err(_) => false,
    }
}

/// Re-executes the current program from a sealed memfd copy unless it
/// already runs from one. Returns only on failure.
pub fn reexec_sealed() -> io::Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let memfd = rustix::fs::memfd_create(
        "wharf-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut dst = std::fs::File::from(memfd);
    io::copy(&mut exe, &mut dst)?;
    rustix::fs::fcntl_add_seals(&dst, SEALS)?;
    let args: Vec<String> = std::env::args().collect();
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    Err(wharf_sys::process::fexecve(
        std::os::fd::AsFd::as_fd(&dst),
        &args,
        &env,
    ))
}
