//! Process creation and replacement: `clone3` into new namespaces, `fork`,
//! `execve`, `fexecve`, and closing inherited descriptors.
//!
//! The runtime is a short-lived, single-threaded program. Creating a child
//! that keeps running Rust code (rather than exec'ing at once) is only sound
//! when the parent has exactly one thread: a second thread could hold a lock
//! (the allocator's, stdio's) that the child would then wait on forever.
//! [`clone_process`] therefore checks the thread count first and refuses to
//! run in a multi-threaded process.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The two sides of a successful [`clone_process`].
#[derive(Debug)]
pub enum CloneResult {
    /// Returned in the parent: the child's pid (in the parent's pid namespace)
    /// and a pidfd referring to it.
    Parent { pid: i32, pidfd: OwnedFd },
    /// Returned in the child.
    Child,
}

/// Number of threads of the calling process, from `/proc/self/stat` field 20.
pub fn thread_count() -> io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The comm field (2) may contain spaces and parentheses: fields after it
    // start past the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))?;
    // rest starts with " S ppid ..." where state is field 3; num_threads is field 20.
    rest.split_whitespace()
        .nth(17)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7).
pub const CLONE_INTO_CGROUP: u64 = 0x200000000;

/// Creates a child process with `clone3(2)` in fork mode (no shared memory, a
/// copy of the address space), with the namespace flags in `ns_flags`
/// (`CLONE_NEW*`) and optionally placed into the cgroup v2 directory
/// `cgroup_fd` (`CLONE_INTO_CGROUP`). The child gets `SIGCHLD` as its exit
/// signal, so the parent can `waitpid` it.
///
/// Fails with `EDEADLK`-like error if the calling process has more than one thread.
pub fn clone_process(ns_flags: u64, cgroup_fd: Option<BorrowedFd<'_>>) -> io::Result<CloneResult> {
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "refusing to clone: the calling process is multi-threaded",
        ));
    }
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: ns_flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: the process is single-threaded (checked above), so the child's
    // copy of the address space holds no lock owned by another thread; no
    // stack is passed, so clone3 behaves like fork and the child continues on
    // a copy of this stack. `args` outlives the call and its size is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(CloneResult::Child),
        pid => {
            // SAFETY: with CLONE_PIDFD the kernel stored a new, owned pidfd in
            // `pidfd` when the call succeeded; nothing else owns it.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            let pid = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
            Ok(CloneResult::Parent { pid, pidfd })
        }
    }
}

/// Terminates the calling process immediately with `code`, without running
/// destructors or flushing stdio buffers (for a forked child that must not
/// touch state shared with its parent).
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and has no memory-safety preconditions.
    unsafe { libc::_exit(code) }
}

fn to_cstrings(items: &[String]) -> io::Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .collect()
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Replaces the process image with `path`, passing exactly `args` and `env`.
/// Returns only on failure.
pub fn execve(path: &CStr, args: &[String], env: &[String]) -> io::Error {
    let (argv, envp) = match (to_cstrings(args), to_cstrings(env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let argv_p = null_terminated(&argv);
    let envp_p = null_terminated(&envp);
    // SAFETY: path, argv and envp are NUL-terminated C strings and
    // NULL-terminated pointer arrays that live until the call returns (it
    // only returns on failure).
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    io::Error::last_os_error()
}

/// `fexecve(3)`: executes the file open at `fd`. Returns only on failure.
pub fn fexecve(fd: BorrowedFd<'_>, args: &[String], env: &[String]) -> io::Error {
    let (argv, envp) = match (to_cstrings(args), to_cstrings(env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let argv_p = null_terminated(&argv);
    let envp_p = null_terminated(&envp);
    // SAFETY: fd is a valid borrowed descriptor; argv/envp as in `execve`.
    unsafe { libc::fexecve(fd.as_raw_fd(), argv_p.as_ptr(), envp_p.as_ptr()) };
    io::Error::last_os_error()
}

/// Marks every descriptor numbered `first` or above close-on-exec
/// (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`), so none leaks into the
/// program exec'd next (the CVE-2024-21626 class).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    let first = u32::try_from(first).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing; it only
    // sets a flag on descriptors, which cannot invalidate any Rust owner.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Clears `FD_CLOEXEC` on `fd` so it survives the next exec (for
/// `--preserve-fds` and socket activation).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an arbitrary integer is memory-safe; an invalid fd
    // yields EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Duplicates `fd` onto `target` (`dup3`, without O_CLOEXEC), for making a
/// pty slave the standard streams.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return clear_cloexec(target);
    }
    // SAFETY: dup3 on a valid source; `target` is a small stdio number that
    // the caller intends to replace; no Rust object owns stdio descriptors.
    if unsafe { libc::dup3(fd.as_raw_fd(), target, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of an inherited descriptor number (e.g. an fd passed by
/// number through the environment). The caller asserts nothing else owns it.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_GETFD) validates that the number is open; the caller
    // guarantees no other owner exists (documented contract).
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is open (checked) and, per the contract, unowned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `sethostname(2)` / `setdomainname(2)` in the current UTS namespace.
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`'s bytes, valid for the call.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare(2)` restricted to namespace flags (`CLONE_NEW*`).
///
/// rustix marks unshare unsafe because `CLONE_FILES` or `CLONE_FS` could
/// invalidate descriptors other code owns; this wrapper rejects every flag
/// that is not a namespace flag.
pub fn unshare_namespaces(flags: u64) -> io::Result<()> {
    const NS_MASK: u64 = (libc::CLONE_NEWNS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWTIME) as u64;
    if flags & !NS_MASK != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let bits = u32::try_from(flags).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let f = rustix::thread::UnshareFlags::from_bits_retain(bits);
    // SAFETY: only namespace flags are passed (checked above); they change
    // no descriptor table or filesystem context that Rust code relies on.
    unsafe { rustix::thread::unshare_unsafe(f) }.map_err(Into::into)
}

/// `personality(2)`: sets the execution domain (e.g. `PER_LINUX32`) of the
/// calling process; it applies to the program exec'd next.
pub fn set_personality(persona: u64) -> io::Result<()> {
    let p =
        libc::c_ulong::try_from(persona).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: personality takes a plain integer and touches no memory.
    if unsafe { libc::personality(p) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)` for the calling
/// process.
pub fn set_io_priority(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let value = (class << 13) | (level & 0x1fff);
    // SAFETY: ioprio_set takes plain integers and touches no memory.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's `struct sigaction` for `rt_sigaction(2)` on x86_64/aarch64
/// (glibc's wrapper refuses signals 32 and 33, which it reserves).
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Resets every ignored signal to its default action and unblocks all
/// signals, so the program exec'd next starts as a fresh process would:
/// ignored dispositions and the signal mask survive `execve`, and Rust
/// programs ignore SIGPIPE at startup.
pub fn reset_signals_for_exec() -> io::Result<()> {
    const SIGSET_SIZE: usize = 8;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction::default();
        // SAFETY: querying (act = NULL) writes only into `old`, a correctly
        // sized kernel sigaction owned by this frame.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                SIGSET_SIZE,
            )
        };
        if r != 0 || old.handler != libc::SIG_IGN {
            continue;
        }
        let dfl = KernelSigaction::default(); // SIG_DFL, no flags, empty mask
        // SAFETY: `dfl` is initialised and outlives the call; SIG_DFL installs
        // no handler code.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                SIGSET_SIZE,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let empty: u64 = 0;
    // SAFETY: SIG_SETMASK with a valid 8-byte set; the old mask is not requested.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
