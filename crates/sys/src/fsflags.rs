//! Inode flags (`FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS`, `chattr`).
//!
//! wharf sets one: `FS_TOPDIR_FL` ("T") on the directories that hold one
//! subtree per container (`containers/`, the container snapshots, the shims'
//! and the runtime's state directories). ext4's Orlov allocator then treats
//! each container's directory as the top of a hierarchy and spreads them
//! over the block groups instead of packing them into their parent's group.
//! That matters on ext4 without a journal: there every inode allocation
//! skips, one buffer-cache lookup each, the inodes of its group deleted in
//! the last one to six minutes (`find_inode_bit` → `recently_deleted`), so
//! with every container's files in one group, churn (create, remove, create)
//! made each new file scan past thousands of them. Filesystems without the
//! flag ignore it (or refuse the ioctl, which callers ignore).

use std::io;
use std::path::Path;

use rustix::fs::{IFlags, Mode, OFlags};

/// Sets `FS_TOPDIR_FL` on the directory `dir`. Returns `Ok(true)` when it
/// set the flag, `Ok(false)` when it was already set, and the error when the
/// filesystem has no inode flags (`ENOTTY`, `EOPNOTSUPP`, `EINVAL`) or the
/// caller may not change them: callers treat it as a hint and log at most.
pub fn mark_top_directory(dir: &Path) -> io::Result<bool> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let flags = rustix::fs::ioctl_getflags(&fd)?;
    if flags.contains(IFlags::TOPDIR) {
        return Ok(false);
    }
    rustix::fs::ioctl_setflags(&fd, flags | IFlags::TOPDIR)?;
    Ok(true)
}

/// Whether `dir` carries `FS_TOPDIR_FL` (`None`: the filesystem has no inode
/// flags).
pub fn is_top_directory(dir: &Path) -> io::Result<Option<bool>> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    match rustix::fs::ioctl_getflags(&fd) {
        Ok(f) => Ok(Some(f.contains(IFlags::TOPDIR))),
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_a_directory_once_where_the_filesystem_has_inode_flags() {
        let base = std::env::temp_dir().join(format!("wharf-topdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("sub")).unwrap();
        let supported = is_top_directory(&base).unwrap();
        match supported {
            Some(before) => {
                assert!(!before, "a fresh directory is not a top directory");
                assert!(mark_top_directory(&base).unwrap());
                assert_eq!(is_top_directory(&base).unwrap(), Some(true));
                assert!(
                    !mark_top_directory(&base).unwrap(),
                    "second call is a no-op"
                );
                assert_eq!(
                    is_top_directory(&base.join("sub")).unwrap(),
                    Some(false),
                    "the flag is not inherited by existing children"
                );
            }
            None => assert!(mark_top_directory(&base).is_err()),
        }
        // A symlink is refused rather than followed.
        std::os::unix::fs::symlink(&base, base.join("link")).unwrap();
        assert!(mark_top_directory(&base.join("link")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
