//! Protection against overwriting the runtime binary from inside a container
//! (the CVE-2019-5736 class).
//!
//! A container process that can reach `/proc/<pid>/exe` of a runtime process
//! running in its namespaces (or that makes the init exec `/proc/self/exe`)
//! could open the host binary and write to it after the runtime exits.
//! Before doing anything that enters a container, the runtime re-executes
//! itself from a view of its binary that cannot be written:
//!
//! 1. preferred: a read-only bind mount of the binary, made once per binary
//!    (device and inode) under [`SEALED_CACHE_DIR`] and reused by every later
//!    invocation ([`cached_view`]): writes through it fail with EROFS, and
//!    no mount is created or torn down per container (tearing down a mount
//!    waits for an RCU grace period, 0.2 ms on a quiet host and several
//!    milliseconds on a busy one). Entries whose binary was deleted
//!    (rebuilt, upgraded) are unmounted when the next entry is made;
//! 2. a detached, read-only overlayfs mount (`fsopen`/`fsmount`, never
//!    attached to any mount tree) whose lower layers are the binary's
//!    directory and an empty directory (runc 1.2 does the same);
//! 3. last resort (no overlayfs, or a path overlayfs cannot take): a sealed
//!    memfd copy of the binary.
//!
//! Any file on a read-only mount is already safe to run from, so a binary
//! installed on a read-only filesystem is not re-executed at all.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use rustix::fs::{FlockOperation, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Host-wide directory of the cached read-only views of runtime binaries.
/// Not under a runtime root: a mount there would make removing the root
/// fail.
pub const SEALED_CACHE_DIR: &str = wharf_sys::sealed_view::CACHE_DIR;

/// Whether the running executable cannot be written: a sealed memfd, or a
/// file on a read-only mount (the cached bind view, the overlay view, or a
/// read-only filesystem).
pub fn running_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    if rustix::fs::fcntl_get_seals(&f).is_ok_and(|s| s.contains(SEALS)) {
        return true;
    }
    wharf_sys::sealed_view::on_read_only_mount(&f)
}

/// Re-executes the current program from an unwritable view of its binary
/// unless it already runs from one. `scratch` is a directory the runtime
/// owns, where an empty directory (the second overlay layer) is kept.
/// Returns only on failure.
pub fn reexec_sealed(scratch: &Path) -> io::Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let fd = match cached_view(Path::new(SEALED_CACHE_DIR)) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(error = %e, dir = SEALED_CACHE_DIR, "cached read-only view of the runtime binary failed; trying an overlay view");
            let exe = std::fs::read_link("/proc/self/exe")?;
            match overlay_view(&exe, scratch) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::debug!(error = %e, "overlay view of the runtime binary failed; copying to a sealed memfd");
                    memfd_copy()?
                }
            }
        }
    };
    let args: Vec<String> = std::env::args().collect();
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    Err(wharf_sys::process::fexecve(fd.as_fd(), &args, &env))
}

/// An `O_PATH` descriptor of the read-only bind mount of the running binary
/// in `cache_dir` (named by the binary's device and inode), made first if
/// missing. Creation is serialized by an `flock` on the directory and also
/// unmounts the entries of deleted binaries.
pub fn cached_view(cache_dir: &Path) -> io::Result<OwnedFd> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&exe)?;
    let name = wharf_sys::sealed_view::entry_name(st.st_dev, st.st_ino);
    let entry = cache_dir.join(&name);
    if let Some(fd) = wharf_sys::sealed_view::open_view(&entry, st.st_dev, st.st_ino)? {
        return Ok(fd);
    }
    // 1. The directory (root only), locked against concurrent creators.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache_dir)?;
    let dir = rustix::fs::open(
        cache_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::flock(&dir, FlockOperation::LockExclusive)?;
    if let Some(fd) = wharf_sys::sealed_view::open_view(&entry, st.st_dev, st.st_ino)? {
        return Ok(fd);
    }
    // 2. Entries of binaries that no longer exist, and a leftover at ours.
    remove_stale(cache_dir, &name);
    unmount_and_remove(&entry);
    // 3. A detached clone of the mount of our binary (rooted at the file),
    //    read-only, attached on an empty file: once attached, closing the
    //    clone's descriptor tears nothing down.
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        "/proc/self/exe",
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    wharf_sys::mount::mount_setattr(
        tree.as_fd(),
        false,
        wharf_sys::mount::MOUNT_ATTR_RDONLY
            | wharf_sys::mount::MOUNT_ATTR_NOSUID
            | wharf_sys::mount::MOUNT_ATTR_NODEV,
        0,
    )?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(&entry)?;
    if let Err(e) = rustix::mount::move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        &entry,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    ) {
        let _ = std::fs::remove_file(&entry);
        return Err(e.into());
    }
    wharf_sys::sealed_view::open_view(&entry, st.st_dev, st.st_ino)?.ok_or_else(|| {
        io::Error::other(format!(
            "{} is not a read-only view of the runtime binary",
            entry.display()
        ))
    })
}

/// Unmounts and removes every entry but `keep` whose binary was deleted.
fn remove_stale(cache_dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name() == keep {
            continue;
        }
        let path = e.path();
        let deleted = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .and_then(rustix::fs::fstat)
        .is_ok_and(|s| s.st_nlink == 0);
        if deleted {
            tracing::debug!(entry = %path.display(), "removing the view of a deleted runtime binary");
            unmount_and_remove(&path);
        }
    }
}

fn unmount_and_remove(path: &Path) {
    while rustix::mount::unmount(path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).is_ok() {}
    let _ = std::fs::remove_file(path);
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
