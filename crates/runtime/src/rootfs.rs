//! Building the container's root filesystem inside its new mount namespace.
//!
//! Called by the init process, in this order (each step numbered in the code):
//! [`prepare`] before `pivot_root` (propagation, the rootfs bind, the spec's
//! mounts, device nodes and symlinks), [`pivot`], then [`finalize`] from
//! inside the new root (masked paths, read-only paths, read-only root,
//! rootfs propagation). Every target below the rootfs is resolved with
//! [`crate::safepath`], so symlinks in the image cannot redirect a mount or
//! a device node to the host.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, Mount};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use crate::config::Bundle;
use crate::mounts::{self, MountOptions};
use crate::safepath::{fd_path, mkdir_all_in_root, open_in_root, touch_in_root};

/// Errors while building the root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mount option {0:?} is not supported by wharf-runtime")]
    Unsupported(String),
}

fn io(op: &'static str, path: impl Into<String>) -> impl FnOnce(std::io::Error) -> RootfsError {
    let path = path.into();
    move |source| RootfsError::Io { op, path, source }
}

fn errno(
    op: &'static str,
    path: impl Into<String>,
) -> impl FnOnce(rustix::io::Errno) -> RootfsError {
    let f = io(op, path);
    move |e| f(e.into())
}

fn raw_mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: u64,
    data: &str,
) -> rustix::io::Result<()> {
    let data_c = CString::new(data).unwrap_or_default();
    let flags = MountFlags::from_bits_retain(u32::try_from(flags).unwrap_or(0));
    rustix::mount::mount(
        src,
        target,
        fstype,
        flags,
        if data.is_empty() {
            None
        } else {
            Some(data_c.as_c_str())
        },
    )
}

/// What the init knows about its namespaces when preparing the rootfs.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// In a new or joined user namespace: mknod is not allowed, bind devices.
    pub userns: bool,
    /// A new cgroup namespace: cgroup filesystems can be mounted directly.
    pub cgroupns: bool,
}

/// Step 1-4: everything before pivot_root.
///
/// `cgroups_ready` is called once, before the first cgroup mount (or before
/// the device nodes when there is none): the init waits there for the
/// runtime to finish the container's cgroups and joins them, so the mounts
/// before it overlap with the runtime's cgroup setup.
pub fn prepare<E: From<RootfsError>>(
    b: &Bundle,
    ctx: Context,
    idmapped: Vec<OwnedFd>,
    cgroups: &CgroupMounts,
    mut cgroups_ready: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    let rootfs = b.rootfs.to_string_lossy().into_owned();
    let linux = b.spec.linux().as_ref();

    // 1. Propagation of the whole tree: rslave by default so our mounts never
    //    reach the host while host mounts (e.g. a later volume) still arrive.
    let prop = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some("shared") => libc::MS_SHARED,
        Some("private") => libc::MS_PRIVATE,
        Some("unbindable") => libc::MS_UNBINDABLE,
        _ => libc::MS_SLAVE,
    };
    raw_mount("", "/", "", prop | libc::MS_REC, "").map_err(errno("make / rslave", "/"))?;

    // 2. The rootfs must be a mount point for pivot_root: bind it onto itself.
    raw_mount(&rootfs, &rootfs, "", libc::MS_BIND | libc::MS_REC, "")
        .map_err(errno("bind rootfs", &*rootfs))?;
    let root = rustix::fs::open(
        &b.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open rootfs", &*rootfs))?;

    // 3. The spec's mounts, in order.
    let mut idmapped = idmapped.into_iter();
    let mut ready = false;
    for m in b.spec.mounts().iter().flatten() {
        if !ready && matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            cgroups_ready()?;
            ready = true;
        }
        mount_one(root.as_fd(), b, m, ctx, cgroups, &mut idmapped)?;
    }

    // 4. Device nodes and the standard symlinks, from inside the device
    //    cgroup (mknod is checked against it, as with runc).
    if !ready {
        cgroups_ready()?;
    }
    create_devices(root.as_fd(), b, ctx)?;
    Ok(())
}

fn mount_one(
    root: BorrowedFd<'_>,
    b: &Bundle,
    m: &Mount,
    ctx: Context,
    cgroups: &CgroupMounts,
    idmapped: &mut impl Iterator<Item = OwnedFd>,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let dest_s = dest.to_string_lossy().into_owned();
    let opts = mounts::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "" });
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(root, m, &opts, ctx, cgroups);
    }
    let bind = opts.bind || typ == "bind";
    let source = m.source().as_ref().map(|s| {
        if bind && s.is_relative() {
            b.dir.join(s)
        } else {
            s.clone()
        }
    });
    let source_s = source
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());

    // The mount point: a directory, or a file when binding a non-directory.
    let is_file = bind
        && source
            .as_ref()
            .is_some_and(|s| std::fs::metadata(s).is_ok_and(|m| !m.is_dir()));
    let target = if is_file {
        touch_in_root(root, dest).map_err(io("create mount point", &*dest_s))?
    } else {
        mkdir_all_in_root(root, dest, 0o755).map_err(io("create mount point", &*dest_s))?
    };
    let tpath = fd_path(&target);

    if bind && opts.idmap {
        // The runtime made the idmapped clone of the source; move it here.
        let mnt = idmapped.next().ok_or_else(|| RootfsError::Io {
            op: "idmapped mount missing for",
            path: dest_s.clone(),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        rustix::mount::move_mount(
            &mnt,
            "",
            &target,
            "",
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(errno(
            "move idmapped mount",
            format!("{source_s} on {dest_s}"),
        ))?;
        if mounts::needs_remount(&opts) {
            let t2 = open_in_root(root, dest, OFlags::PATH)
                .map_err(io("reopen mount point", &*dest_s))?;
            remount_bind(&fd_path(&t2), opts.flags).map_err(io("remount", &*dest_s))?;
        }
    } else if bind {
        let flags = libc::MS_BIND | if opts.recursive_bind { libc::MS_REC } else { 0 };
        raw_mount(&source_s, &tpath, "", flags, "")
            .map_err(errno("bind mount", format!("{source_s} on {dest_s}")))?;
        if mounts::needs_remount(&opts) {
            // Reopen: the fd now must name the new mount, not the covered dir.
            let t2 = open_in_root(root, dest, OFlags::PATH)
                .map_err(io("reopen mount point", &*dest_s))?;
            remount_bind(&fd_path(&t2), opts.flags).map_err(io("remount", &*dest_s))?;
        }
    } else {
        match raw_mount(&source_s, &tpath, typ, opts.flags, &opts.data) {
            Ok(()) => {}
            Err(rustix::io::Errno::PERM) | Err(rustix::io::Errno::ACCESS)
                if typ == "sysfs" && ctx.userns =>
            {
                // sysfs cannot be mounted from a user namespace that does not
                // own the network namespace: bind the host's instead (as runc).
                raw_mount("/sys", &tpath, "", libc::MS_BIND | libc::MS_REC, "")
                    .map_err(errno("bind /sys", &*dest_s))?;
                let t2 = open_in_root(root, dest, OFlags::PATH)
                    .map_err(io("reopen mount point", &*dest_s))?;
                remount_bind(&fd_path(&t2), opts.flags | libc::MS_RDONLY)
                    .map_err(io("remount", &*dest_s))?;
            }
            Err(e) => return Err(errno("mount", format!("{typ} on {dest_s}"))(e)),
        }
        if opts.tmpcopyup && typ == "tmpfs" {
            return Err(RootfsError::Unsupported("tmpcopyup".into()));
        }
    }
    if !opts.propagation.is_empty() || opts.rec_set != 0 || opts.rec_clear != 0 {
        let t2 =
            open_in_root(root, dest, OFlags::PATH).map_err(io("reopen mount point", &*dest_s))?;
        for p in &opts.propagation {
            raw_mount("", &fd_path(&t2), "", *p, "").map_err(errno("set propagation", &*dest_s))?;
        }
        if opts.rec_set != 0 || opts.rec_clear != 0 {
            wharf_sys::mount::mount_setattr(t2.as_fd(), true, opts.rec_set, opts.rec_clear)
                .map_err(io("mount_setattr", &*dest_s))?;
        }
    }
    Ok(())
}

/// Remounts an existing bind mount with `flags`, keeping the flags the
/// kernel locks (nosuid, nodev, noexec, atime) when it was inherited from a
/// more privileged namespace.
fn remount_bind(target: &str, flags: u64) -> std::io::Result<()> {
    // The kernel's ST_RELATIME (statfs f_flags); the libc crate names it for
    // glibc only, the static musl build needs the value too.
    const ST_RELATIME: u64 = 0x1000;
    let st = rustix::fs::statvfs(target)?;
    let locked = st.f_flag.bits()
        & (libc::ST_NOSUID
            | libc::ST_NODEV
            | libc::ST_NOEXEC
            | libc::ST_NOATIME
            | libc::ST_NODIRATIME
            | ST_RELATIME);
    let mut keep = 0u64;
    for (st_bit, ms_bit) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (ST_RELATIME, libc::MS_RELATIME),
    ] {
        if locked & st_bit != 0 {
            keep |= ms_bit;
        }
    }
    let all = libc::MS_BIND | libc::MS_REMOUNT | flags | keep;
    match raw_mount("", target, "", all, "") {
        Ok(()) => Ok(()),
        // An atime flag we asked for may conflict with a locked one: retry
        // with only the locked flags.
        Err(rustix::io::Errno::PERM) => raw_mount(
            "",
            target,
            "",
            libc::MS_BIND | libc::MS_REMOUNT | (flags & !0x7c00) | keep,
            "",
        )
        .map_err(Into::into),
        Err(e) => Err(e.into()),
    }
}

/// Mounts the cgroup hierarchies at the mount's destination: a tmpfs with one
/// directory per v1 hierarchy (plus `unified` on a hybrid host) or, on a pure
/// v2 host, cgroup2 directly. With a new cgroup namespace the filesystems are
/// mounted fresh (their root is the container's cgroup); without one, the
/// container's own cgroup directories are bind-mounted.
fn mount_cgroups(
    root: BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
    ctx: Context,
    cgroups: &CgroupMounts,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let dest_s = dest.to_string_lossy().into_owned();
    let hier = &cgroups.hierarchies;
    let ro = opts.flags & libc::MS_RDONLY;
    let base_flags = opts.flags & !libc::MS_RDONLY;
    let pure_v2 = cgroups.pure_v2;
    let target =
        mkdir_all_in_root(root, dest, 0o755).map_err(io("create mount point", &*dest_s))?;
    if let (true, Some(h)) = (pure_v2, hier.iter().find(|h| h.v2)) {
        if ctx.cgroupns {
            raw_mount("cgroup2", &fd_path(&target), "cgroup2", opts.flags, "")
                .map_err(errno("mount cgroup2", &*dest_s))?;
        } else {
            raw_mount(
                &h.dir.to_string_lossy(),
                &fd_path(&target),
                "",
                libc::MS_BIND | libc::MS_REC,
                "",
            )
            .map_err(errno("bind cgroup2", &*dest_s))?;
            remount_bind(
                &fd_path(&open_in_root(root, dest, OFlags::PATH).map_err(io("reopen", &*dest_s))?),
                opts.flags,
            )
            .map_err(io("remount", &*dest_s))?;
        }
        return Ok(());
    }
    raw_mount("tmpfs", &fd_path(&target), "tmpfs", base_flags, "mode=755")
        .map_err(errno("mount tmpfs", &*dest_s))?;
    for h in hier {
        let name = h
            .mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let sub = dest.join(&name);
        let sub_s = sub.to_string_lossy().into_owned();
        let t = mkdir_all_in_root(root, &sub, 0o755).map_err(io("create mount point", &*sub_s))?;
        if ctx.cgroupns {
            let r = if h.v2 {
                raw_mount("cgroup2", &fd_path(&t), "cgroup2", base_flags | ro, "")
            } else {
                raw_mount(
                    "cgroup",
                    &fd_path(&t),
                    "cgroup",
                    base_flags | ro,
                    &h.options,
                )
            };
            r.map_err(errno("mount cgroup", &*sub_s))?;
        } else {
            raw_mount(
                &h.dir.to_string_lossy(),
                &fd_path(&t),
                "",
                libc::MS_BIND | libc::MS_REC,
                "",
            )
            .map_err(errno("bind cgroup", &*sub_s))?;
            let t2 = open_in_root(root, &sub, OFlags::PATH).map_err(io("reopen", &*sub_s))?;
            remount_bind(
                &fd_path(&t2),
                base_flags | ro | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            )
            .map_err(io("remount", &*sub_s))?;
        }
    }
    if ro != 0 {
        let t2 = open_in_root(root, dest, OFlags::PATH).map_err(io("reopen", &*dest_s))?;
        remount_bind(&fd_path(&t2), opts.flags).map_err(io("remount ro", &*dest_s))?;
    }
    Ok(())
}

/// A cgroup hierarchy mounted on the host and the container's directory in
/// it.
#[derive(Debug, Clone)]
pub struct CgroupMount {
    pub mountpoint: PathBuf,
    pub v2: bool,
    /// Mount options naming the v1 controllers (`memory`, `name=systemd`).
    pub options: String,
    /// The container's cgroup directory in this hierarchy.
    pub dir: PathBuf,
}

/// What the init needs to mount `/sys/fs/cgroup`, computed by the runtime
/// from the layout it detected and the manager's directories (so the init
/// reads neither mountinfo nor `/proc/self/cgroup` again).
#[derive(Debug, Clone, Default)]
pub struct CgroupMounts {
    pub hierarchies: Vec<CgroupMount>,
    pub pure_v2: bool,
}

impl CgroupMounts {
    /// The hierarchies of `setup`, each with the directory of `dirs` (a
    /// manager's [`wharf_cgroups::CgroupManager::versioned_paths`]) under its
    /// mount point.
    pub fn new(
        setup: &wharf_cgroups::CgroupSetup,
        dirs: &[(wharf_cgroups::CgroupVersion, PathBuf)],
    ) -> Self {
        let dir_in = |version, mountpoint: &Path| {
            dirs.iter()
                .find(|(v, d)| *v == version && d.starts_with(mountpoint))
                .map(|(_, d)| d.clone())
        };
        let mut hierarchies: Vec<CgroupMount> = setup
            .v1_hierarchies()
            .iter()
            .filter_map(|h| {
                Some(CgroupMount {
                    mountpoint: h.mountpoint.clone(),
                    v2: false,
                    options: h
                        .controllers
                        .iter()
                        .cloned()
                        .chain(h.name.iter().map(|n| format!("name={n}")))
                        .collect::<Vec<_>>()
                        .join(","),
                    dir: dir_in(wharf_cgroups::CgroupVersion::V1, &h.mountpoint)?,
                })
            })
            .collect();
        if let Some(v2) = setup.v2()
            && let Some(dir) = dir_in(wharf_cgroups::CgroupVersion::V2, &v2.mountpoint)
        {
            hierarchies.push(CgroupMount {
                mountpoint: v2.mountpoint.clone(),
                v2: true,
                options: String::new(),
                dir,
            });
        }
        CgroupMounts {
            hierarchies,
            pure_v2: setup.is_pure_v2(),
        }
    }
}

const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn create_devices(root: BorrowedFd<'_>, b: &Bundle, ctx: Context) -> Result<(), RootfsError> {
    let mut devs: Vec<(PathBuf, u32, u32, u32, u32, u32, char)> = DEFAULT_DEVICES
        .iter()
        .map(|(p, ma, mi)| (PathBuf::from(p), *ma, *mi, 0o666, 0, 0, 'c'))
        .collect();
    for d in b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let kind = match d.typ() {
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => 'p',
            _ => 'c',
        };
        let to_u32 = |v: i64| u32::try_from(v).unwrap_or(0);
        devs.retain(|x| x.0 != *d.path());
        devs.push((
            d.path().clone(),
            to_u32(d.major()),
            to_u32(d.minor()),
            d.file_mode().unwrap_or(0o666) & 0o7777,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
            kind,
        ));
    }
    for (path, major, minor, mode, uid, gid, kind) in devs {
        let ps = path.to_string_lossy().into_owned();
        let parent = path.parent().unwrap_or(Path::new("/dev"));
        let name = path.file_name().ok_or_else(|| RootfsError::Io {
            op: "device path",
            path: ps.clone(),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        let dir = mkdir_all_in_root(root, parent, 0o755).map_err(io("create device dir", &*ps))?;
        if ctx.userns {
            // mknod is not permitted in a user namespace: bind the host node.
            let t = touch_in_root(root, &path).map_err(io("create device file", &*ps))?;
            raw_mount(&ps, &fd_path(&t), "", libc::MS_BIND, "")
                .map_err(errno("bind device", &*ps))?;
            continue;
        }
        let ftype = match kind {
            'b' => rustix::fs::FileType::BlockDevice,
            'p' => rustix::fs::FileType::Fifo,
            _ => rustix::fs::FileType::CharacterDevice,
        };
        let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
        rustix::fs::mknodat(
            &dir,
            name,
            ftype,
            Mode::from_raw_mode(mode),
            rustix::fs::makedev(major, minor),
        )
        .map_err(errno("mknod", &*ps))?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open device", &*ps))?;
        // mknod applies the umask: set the exact mode and owner.
        rustix::fs::chmod(fd_path(&fd), Mode::from_raw_mode(mode))
            .map_err(errno("chmod device", &*ps))?;
        rustix::fs::chownat(
            &dir,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(errno("chown device", &*ps))?;
    }
    let dev = mkdir_all_in_root(root, Path::new("/dev"), 0o755).map_err(io("create", "/dev"))?;
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    // /dev/ptmx points at the devpts instance when one is mounted.
    let has_devpts = b
        .spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev/pts"));
    if has_devpts {
        let _ = rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty());
        links.push(("ptmx", "pts/ptmx"));
    }
    for (name, target) in links {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(errno("symlink", format!("/dev/{name}"))(e)),
        }
    }
    Ok(())
}

/// Step 5: makes `rootfs` the root (pivot_root, or MS_MOVE + chroot with
/// `no_pivot`) and detaches the old root.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let r = rootfs.to_string_lossy().into_owned();
    let newroot = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", &*r))?;
    rustix::process::fchdir(&newroot).map_err(errno("chdir", &*r))?;
    if no_pivot {
        raw_mount(&r, "/", "", libc::MS_MOVE, "").map_err(errno("move rootfs to /", &*r))?;
        rustix::process::chroot(".").map_err(errno("chroot", &*r))?;
    } else {
        let oldroot = rustix::fs::open(
            "/",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open", "/"))?;
        // pivot_root(".", "."): the old root ends up stacked under the new one.
        rustix::process::pivot_root(".", ".").map_err(errno("pivot_root", &*r))?;
        rustix::process::fchdir(&oldroot).map_err(errno("chdir", "old root"))?;
        // Make the old root a slave so detaching it never propagates to the host.
        rustix::mount::mount_change(
            ".",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )
        .map_err(errno("make old root rslave", "."))?;
        rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(errno("detach old root", "."))?;
    }
    rustix::process::chdir("/").map_err(errno("chdir", "/"))?;
    Ok(())
}

/// Steps 6-9, from inside the new root: masked paths, read-only paths, the
/// read-only root, and the root's propagation.
pub fn finalize(b: &Bundle) -> Result<(), RootfsError> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", "/"))?;
    let linux = b.spec.linux().as_ref();
    // 6. Masked paths: /dev/null over files, an empty read-only tmpfs over dirs.
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let fd = match open_in_root(root.as_fd(), Path::new(p), OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(io("open masked path", p.as_str())(e)),
        };
        let is_dir = rustix::fs::fstat(&fd)
            .is_ok_and(|s| rustix::fs::FileType::from_raw_mode(s.st_mode).is_dir());
        let r = if is_dir {
            raw_mount(
                "tmpfs",
                &fd_path(&fd),
                "tmpfs",
                libc::MS_RDONLY,
                "size=0k,mode=755",
            )
        } else {
            raw_mount("/dev/null", &fd_path(&fd), "", libc::MS_BIND, "")
        };
        r.map_err(errno("mask", p.as_str()))?;
    }
    // 7. Read-only paths: bind each onto itself, then remount read-only.
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let fd = match open_in_root(root.as_fd(), Path::new(p), OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(io("open readonly path", p.as_str())(e)),
        };
        raw_mount(
            &fd_path(&fd),
            &fd_path(&fd),
            "",
            libc::MS_BIND | libc::MS_REC,
            "",
        )
        .map_err(errno("bind", p.as_str()))?;
        let fd2 = open_in_root(root.as_fd(), Path::new(p), OFlags::PATH)
            .map_err(io("reopen", p.as_str()))?;
        remount_bind(
            &fd_path(&fd2),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        )
        .or_else(|_| remount_bind(&fd_path(&fd2), libc::MS_RDONLY))
        .map_err(io("remount ro", p.as_str()))?;
    }
    // 8. Read-only root.
    if b.spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind("/", libc::MS_RDONLY).map_err(io("remount ro", "/"))?;
    }
    // 9. Root propagation requested as shared/unbindable applies to / now.
    match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some("shared") => raw_mount("", "/", "", libc::MS_SHARED | libc::MS_REC, ""),
        Some("unbindable") => raw_mount("", "/", "", libc::MS_UNBINDABLE | libc::MS_REC, ""),
        Some("private") => raw_mount("", "/", "", libc::MS_PRIVATE | libc::MS_REC, ""),
        _ => Ok(()),
    }
    .map_err(errno("set root propagation", "/"))?;
    Ok(())
}

/// Writes `linux.sysctl` values under /proc/sys.
pub fn apply_sysctls(b: &Bundle) -> Result<(), RootfsError> {
    let root = rustix::fs::open(
        "/proc/sys",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", "/proc/sys"))?;
    for (k, v) in b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let rel = k.replace('.', "/");
        let fd = open_in_root(
            root.as_fd(),
            Path::new(&rel),
            OFlags::WRONLY | OFlags::TRUNC,
        )
        .map_err(io("open sysctl", k.as_str()))?;
        rustix::io::write(&fd, v.as_bytes()).map_err(errno("write sysctl", k.as_str()))?;
    }
    Ok(())
}

/// Keeps an `OwnedFd` type import used (for callers that pass descriptors).
pub type Fd = OwnedFd;
