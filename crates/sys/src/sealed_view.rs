//! Names and checks of the cached read-only views of wharf's binaries (the
//! CVE-2019-5736 protection, `wharf_runtime::selfexe`): a read-only bind
//! mount of the binary at `CACHE_DIR/<dev>-<ino>`. The runtime and the shim
//! make them and re-execute from them; the daemon uses [`existing_view`] to
//! start the shim from its view at once, which spares the re-execution.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, StatVfsMountFlags};

/// Host-wide directory of the views. Not under a runtime root: a mount
/// there would make removing the root fail.
pub const CACHE_DIR: &str = "/run/wharf-sealed-exe";

/// The name of the entry of the binary with this device and inode.
pub fn entry_name(dev: u64, ino: u64) -> String {
    format!("{dev:x}-{ino:x}")
}

/// The entry of the binary with this device and inode in a cache directory.
pub fn entry(cache_dir: &Path, dev: u64, ino: u64) -> PathBuf {
    cache_dir.join(entry_name(dev, ino))
}

/// Whether `fd` is on a read-only mount.
pub fn on_read_only_mount(fd: impl std::os::fd::AsFd) -> bool {
    rustix::fs::fstatvfs(fd).is_ok_and(|v| v.f_flag.contains(StatVfsMountFlags::RDONLY))
}

/// An `O_PATH` descriptor of `entry` when it is a read-only view of the file
/// with this device and inode (`None` when it is missing or anything else).
pub fn open_view(entry: &Path, dev: u64, ino: u64) -> io::Result<Option<OwnedFd>> {
    let fd = match rustix::fs::open(
        entry,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let s = rustix::fs::fstat(&fd)?;
    let same = s.st_dev == dev && s.st_ino == ino;
    Ok((same && on_read_only_mount(&fd)).then_some(fd))
}

/// The path of the existing read-only view of `binary` in [`CACHE_DIR`], if
/// one was made (by an earlier run of the binary) and still shows it.
pub fn existing_view(binary: &Path) -> Option<PathBuf> {
    let st = std::fs::metadata(binary).ok()?;
    let e = entry(Path::new(CACHE_DIR), st.dev(), st.ino());
    open_view(&e, st.dev(), st.ino()).ok().flatten().map(|_| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_file_is_not_a_view() {
        let dir = std::env::temp_dir().join(format!("wharf-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bin");
        std::fs::write(&f, b"x").unwrap();
        let st = std::fs::metadata(&f).unwrap();
        // The file itself (on a writable filesystem) is no view of itself.
        assert!(open_view(&f, st.dev(), st.ino()).unwrap().is_none());
        // Nor is a missing entry, nor one showing another file.
        assert!(
            open_view(&dir.join("none"), st.dev(), st.ino())
                .unwrap()
                .is_none()
        );
        assert!(open_view(&f, st.dev(), st.ino() + 1).unwrap().is_none());
        assert_eq!(
            entry(Path::new("/c"), 0xfe00, 0x98e244),
            Path::new("/c/fe00-98e244")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
