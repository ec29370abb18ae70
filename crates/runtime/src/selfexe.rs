//! Protection against overwriting the runtime binary from inside a container
//! (the CVE-2019-5736 class).
//!
//! A container process that can reach `/proc/<pid>/exe` of a runtime process
//! running in its namespaces (or that makes the init exec `/proc/self/exe`)
//! could open the host binary and write to it after the runtime exits.
//! Before doing anything that enters a container, the runtime re-executes
//! itself from a view of its binary that cannot be written:
//!
//! 1. preferred: a detached, read-only overlayfs mount (`fsopen`/`fsmount`,
//!    never attached to any mount tree) whose lower layers are the binary's
//!    directory and an empty directory; writes through it fail with EROFS,
//!    and nothing is copied (runc 1.2 does the same);
//! 2. fallback (no overlayfs, or a path overlayfs cannot take): a sealed
//!    memfd copy of the binary.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Whether the running executable cannot be written: a sealed memfd, or a
/// file on a read-only overlayfs mount.
pub fn running_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    if rustix::fs::fcntl_get_seals(&f).is_ok_and(|s| s.contains(SEALS)) {
        return true;
    }
    match (rustix::fs::fstatfs(&f), rustix::fs::fstatvfs(&f)) {
        (Ok(sfs), Ok(svfs)) => {
            sfs.f_type == OVERLAYFS_SUPER_MAGIC
                && svfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY)
        }
        _ => false,
    }
}

/// Re-executes the current program from an unwritable view of its binary
/// unless it already runs from one. `scratch` is a directory the runtime
/// owns, where an empty directory (the second overlay layer) is kept.
/// Returns only on failure.
pub fn reexec_sealed(scratch: &Path) -> io::Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe")?;
    let fd = match overlay_view(&exe, scratch) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(error = %e, "overlay view of the runtime binary failed; copying to a sealed memfd");
            memfd_copy()?
        }
    };
    let args: Vec<String> = std::env::args().collect();
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    Err(wharf_sys::process::fexecve(fd.as_fd(), &args, &env))
}

fn overlay_view(exe: &Path, scratch: &Path) -> io::Result<OwnedFd> {
    let dir = exe
        .parent()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let name = exe
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let empty = scratch.join(".exe-empty");
    match std::fs::create_dir(&empty) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let (d, e) = (dir.to_string_lossy(), empty.to_string_lossy());
    if d.contains([':', ',', '\\']) || e.contains([':', ',', '\\']) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&fs, "lowerdir", format!("{d}:{e}"))?;
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?;
    Ok(rustix::fs::openat(
        &mnt,
        name,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn memfd_copy() -> io::Result<OwnedFd> {
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let memfd = rustix::fs::memfd_create(
        "wharf-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut dst = std::fs::File::from(memfd);
    io::copy(&mut exe, &mut dst)?;
    rustix::fs::fcntl_add_seals(&dst, SEALS)?;
    Ok(OwnedFd::from(dst))
}
