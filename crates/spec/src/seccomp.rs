//! Docker's default seccomp profile, built as an OCI `linux.seccomp` section.
//!
//! [`default_seccomp`] returns the filter `docker run` would install for a
//! container holding the given capabilities on this host's architecture: an
//! allowlist (everything else fails with `EPERM`), a few argument-checked
//! rules (`socket` without `AF_VSOCK`, a fixed set of `personality` values,
//! `clone` without namespace flags), and groups of syscalls that are only
//! allowed when the container holds the capability that guards them (for
//! example `mount`, `setns`, `unshare` with `CAP_SYS_ADMIN`). Without
//! `CAP_SYS_ADMIN`, `clone3` fails with `ENOSYS` so that libc falls back to
//! `clone`, whose flags can be inspected.
//!
//! The facts come from moby's `profiles/seccomp/default.json`; they are kept
//! here as Rust tables so the profile needs no parsing at run time.
//! [`default_profile`] assembles them into Docker's profile format (with
//! `archMap` and capability/architecture `includes`/`excludes`), and
//! [`default_seccomp`] converts that with the same code as a user's
//! `--security-opt seccomp=<file>` profile ([`crate::seccomp_profile`]). The
//! result is plain data: the runtime compiles it to BPF.

use oci_spec::runtime::{Arch, Capability, LinuxSeccomp};

use crate::caps::capability_name;
use crate::seccomp_profile::{
    ArchMapEntry, HOST_ARCH_NAME, ProfileArg, ProfileFilter, ProfileSyscall, ProfileTarget,
    SeccompProfile,
};

/// `errno` returned by syscalls the profile does not allow (`EPERM`).
pub const DEFAULT_ERRNO: u32 = 1;

/// `ENOSYS`: returned for `clone3` when namespaces cannot be inspected.
const ENOSYS: u32 = 38;

/// `AF_VSOCK`: the one socket family containers may not open.
const AF_VSOCK: u64 = 40;

/// `clone` flags creating namespaces (`CLONE_NEWNS | CLONE_NEWCGROUP |
/// CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET`): without `CAP_SYS_ADMIN` a `clone` is allowed only when
/// none of them is set.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality(2)` personas the profile allows: `PER_LINUX`, `UNAME26`,
/// `ADDR_NO_RANDOMIZE`, both of those together, and the query value
/// `0xffffffff`.
pub const ALLOWED_PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Syscalls every container may make.
const ALWAYS_ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Allowed on every kernel wharf supports (Docker gates them on Linux 4.8,
/// where ptrace stopped being able to bypass seccomp).
const PTRACE_FAMILY: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// Syscalls allowed only on x86 hosts (kept for libseccomp's `amd64`, `x32`
/// and `x86`).
const X86_ALLOWED: &[&str] = &["arch_prctl", "modify_ldt"];
const X86_ARCHES: &[&str] = &["amd64", "x32", "x86"];
/// Syscalls allowed only on Arm hosts (`arm`, `arm64`).
const ARM_ALLOWED: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
];
const ARM_ARCHES: &[&str] = &["arm", "arm64"];

/// The seccomp architectures a filter covers on this host: the native one
/// and the compat ABIs a container binary could use.
#[cfg(target_arch = "x86_64")]
pub const HOST_ARCHITECTURES: &[Arch] =
    &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];
/// The seccomp architectures a filter covers on this host: the native one
/// and the compat ABIs a container binary could use.
#[cfg(target_arch = "aarch64")]
pub const HOST_ARCHITECTURES: &[Arch] = &[Arch::ScmpArchAarch64, Arch::ScmpArchArm];
/// The seccomp architectures a filter covers on this host (native only).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const HOST_ARCHITECTURES: &[Arch] = &[Arch::ScmpArchNative];

/// Syscalls unlocked by `CAP_SYS_ADMIN` (which also lifts the `clone`
/// flag check and the `clone3` block).
const SYS_ADMIN_ALLOWED: &[&str] = &[
    "bpf",
    "clone",
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
];

/// Other capability-gated groups, in the order Docker lists them.
const CAP_GATED: &[(Capability, &[&str])] = &[
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(list: &[&str], action: &str) -> ProfileSyscall {
    ProfileSyscall {
        names: names(list),
        action: action.to_owned(),
        ..ProfileSyscall::default()
    }
}

fn allow(list: &[&str]) -> ProfileSyscall {
    rule(list, ALLOW)
}

fn allow_if(name: &str, index: usize, value: u64, op: &str) -> ProfileSyscall {
    ProfileSyscall {
        args: vec![ProfileArg {
            index,
            value,
            value_two: 0,
            op: op.to_owned(),
        }],
        ..allow(&[name])
    }
}

fn with_caps(cap: Capability, exclude: bool, r: ProfileSyscall) -> ProfileSyscall {
    let filter = Some(ProfileFilter {
        caps: vec![capability_name(cap).to_owned()],
        ..ProfileFilter::default()
    });
    if exclude {
        ProfileSyscall {
            excludes: filter,
            ..r
        }
    } else {
        ProfileSyscall {
            includes: filter,
            ..r
        }
    }
}

fn with_arches(arches: &[&str], r: ProfileSyscall) -> ProfileSyscall {
    ProfileSyscall {
        includes: Some(ProfileFilter {
            arches: names(arches),
            ..ProfileFilter::default()
        }),
        ..r
    }
}

const ALLOW: &str = "SCMP_ACT_ALLOW";

/// Docker's default profile in Docker's profile format, for every
/// architecture and capability set: the filters of its rules pick what
/// applies to one container when it is converted ([`default_seccomp`]).
pub fn default_profile() -> SeccompProfile {
    let mut rules = vec![allow(ALWAYS_ALLOWED), allow(PTRACE_FAMILY)];
    rules.push(allow_if("socket", 0, AF_VSOCK, "SCMP_CMP_NE"));
    for persona in ALLOWED_PERSONALITIES {
        rules.push(allow_if("personality", 0, persona, "SCMP_CMP_EQ"));
    }
    rules.push(with_arches(X86_ARCHES, allow(X86_ALLOWED)));
    rules.push(with_arches(ARM_ARCHES, allow(ARM_ALLOWED)));
    rules.push(with_caps(
        Capability::DacReadSearch,
        false,
        allow(&["open_by_handle_at"]),
    ));
    rules.push(with_caps(
        Capability::SysAdmin,
        false,
        allow(SYS_ADMIN_ALLOWED),
    ));
    // s390 passes the flags in the second argument; wharf does not target
    // s390, so the first-argument form is the only one needed.
    // MASKED_EQ with valueTwo 0: (flags & CLONE_NAMESPACE_FLAGS) == 0.
    rules.push(with_caps(
        Capability::SysAdmin,
        true,
        allow_if("clone", 0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ"),
    ));
    rules.push(with_caps(
        Capability::SysAdmin,
        true,
        ProfileSyscall {
            errno_ret: Some(ENOSYS),
            ..rule(&["clone3"], "SCMP_ACT_ERRNO")
        },
    ));
    for (cap, list) in CAP_GATED {
        rules.push(with_caps(*cap, false, allow(list)));
    }
    SeccompProfile {
        default_action: "SCMP_ACT_ERRNO".to_owned(),
        default_errno_ret: Some(DEFAULT_ERRNO),
        arch_map: vec![
            ArchMapEntry {
                architecture: "SCMP_ARCH_X86_64".to_owned(),
                sub_architectures: names(&["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            },
            ArchMapEntry {
                architecture: "SCMP_ARCH_AARCH64".to_owned(),
                sub_architectures: names(&["SCMP_ARCH_ARM"]),
            },
        ],
        syscalls: rules,
        ..SeccompProfile::default()
    }
}

/// Docker's default seccomp profile for a container holding `caps`, for
/// this host's architecture (see [`HOST_ARCHITECTURES`]): [`default_profile`]
/// converted like any `--security-opt seccomp=<file>` profile.
pub fn default_seccomp(caps: &[Capability]) -> LinuxSeccomp {
    let target = ProfileTarget {
        capabilities: caps,
        arch: HOST_ARCH_NAME,
        // No rule of the default profile depends on the kernel version.
        kernel: None,
    };
    default_profile()
        .to_oci(&target)
        .expect("the default profile uses only known actions, operators and architectures")
        .expect("the default profile has a default action")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_CAPABILITIES;
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};

    /// Every rule in `profile` that names `syscall`.
    fn rules_for<'a>(profile: &'a LinuxSeccomp, syscall: &str) -> Vec<&'a LinuxSyscall> {
        profile
            .syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == syscall))
            .collect()
    }

    fn unconditionally_allowed(profile: &LinuxSeccomp, syscall: &str) -> bool {
        rules_for(profile, syscall).iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().as_deref().unwrap_or_default().is_empty()
        })
    }

    #[test]
    fn denies_by_default_with_eperm() {
        let p = default_seccomp(DEFAULT_CAPABILITIES);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(p.architectures().as_deref(), Some(HOST_ARCHITECTURES));
    }

    #[test]
    fn basic_syscalls_allowed_dangerous_ones_not() {
        let p = default_seccomp(DEFAULT_CAPABILITIES);
        for ok in ["read", "write", "execve", "openat", "exit_group", "chroot"] {
            assert!(unconditionally_allowed(&p, ok), "{ok} should be allowed");
        }
        for bad in [
            "kexec_load",
            "mount",
            "umount2",
            "setns",
            "unshare",
            "reboot",
            "bpf",
        ] {
            assert!(rules_for(&p, bad).is_empty(), "{bad} should not be allowed");
        }
        // Every name appears at most once in the allowlist.
        let mut seen = std::collections::HashSet::new();
        for n in ALWAYS_ALLOWED {
            assert!(seen.insert(n), "duplicate {n}");
        }
    }

    #[test]
    fn sys_admin_unlocks_mount_and_namespaces() {
        let without = default_seccomp(&[]);
        assert!(!unconditionally_allowed(&without, "mount"));
        assert!(!unconditionally_allowed(&without, "chroot"));
        let with = default_seccomp(&[Capability::SysAdmin]);
        for name in ["mount", "umount2", "setns", "unshare", "clone", "clone3"] {
            assert!(unconditionally_allowed(&with, name), "{name}");
        }
        // No clone3 ENOSYS rule once CAP_SYS_ADMIN is held.
        assert!(
            rules_for(&with, "clone3")
                .iter()
                .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        );
    }

    #[test]
    fn clone_without_sys_admin_excludes_namespace_flags() {
        let p = default_seccomp(DEFAULT_CAPABILITIES);
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        let args = clone[0].args().as_deref().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].value_two().unwrap_or(0), 0);
        // Each namespace flag is inside the mask; CLONE_VM, CLONE_THREAD... are not.
        for ns_flag in [
            0x2_0000u64,
            0x0200_0000,
            0x0400_0000,
            0x0800_0000,
            0x1000_0000,
            0x2000_0000,
            0x4000_0000,
        ] {
            assert_ne!(args[0].value() & ns_flag, 0);
        }
        for thread_flag in [0x100u64, 0x1_0000, 0x20_0000] {
            assert_eq!(args[0].value() & thread_flag, 0);
        }
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn personality_and_socket_are_argument_checked() {
        let p = default_seccomp(DEFAULT_CAPABILITIES);
        let persona: Vec<u64> = rules_for(&p, "personality")
            .iter()
            .map(|r| {
                let a = r.args().as_deref().unwrap();
                assert_eq!(a[0].op(), LinuxSeccompOperator::ScmpCmpEq);
                a[0].value()
            })
            .collect();
        assert_eq!(persona, ALLOWED_PERSONALITIES);
        let socket = rules_for(&p, "socket");
        assert_eq!(socket.len(), 1);
        let a = socket[0].args().as_deref().unwrap();
        assert_eq!(
            (a[0].value(), a[0].op()),
            (40, LinuxSeccompOperator::ScmpCmpNe)
        );
    }

    #[test]
    fn capability_groups() {
        let p = default_seccomp(&[Capability::SysPtrace, Capability::SysTime]);
        assert!(unconditionally_allowed(&p, "kcmp"));
        assert!(unconditionally_allowed(&p, "clock_settime"));
        assert!(!unconditionally_allowed(&p, "reboot"));
        assert!(!unconditionally_allowed(&default_seccomp(&[]), "kcmp"));
        assert!(!unconditionally_allowed(
            &default_seccomp(&[]),
            "clock_settime"
        ));
    }

    #[test]
    fn round_trips_through_json() {
        let p = default_seccomp(DEFAULT_CAPABILITIES);
        let json = serde_json::to_string(&p).unwrap();
        let back: LinuxSeccomp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn default_profile_as_json_converts_to_the_same_filter() {
        // The profile survives Docker's JSON format, so a user who saves it
        // and passes it back with --security-opt gets the default filter.
        let json = serde_json::to_string_pretty(&default_profile()).unwrap();
        let back = SeccompProfile::from_json(&json).unwrap();
        assert_eq!(back, default_profile());
        for caps in [DEFAULT_CAPABILITIES, &[], &[Capability::SysAdmin]] {
            let target = ProfileTarget {
                capabilities: caps,
                arch: HOST_ARCH_NAME,
                kernel: None,
            };
            assert_eq!(
                back.to_oci(&target).unwrap().unwrap(),
                default_seccomp(caps)
            );
        }
    }

    #[test]
    fn arch_specific_rules_follow_the_architecture() {
        let arm = default_profile()
            .to_oci(&ProfileTarget {
                capabilities: DEFAULT_CAPABILITIES,
                arch: "arm64",
                kernel: None,
            })
            .unwrap()
            .unwrap();
        assert!(unconditionally_allowed(&arm, "set_tls"));
        assert!(!unconditionally_allowed(&arm, "arch_prctl"));
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        #[cfg(target_arch = "x86_64")]
        {
            let p = default_seccomp(DEFAULT_CAPABILITIES);
            assert!(unconditionally_allowed(&p, "arch_prctl"));
            assert!(!unconditionally_allowed(&p, "set_tls"));
        }
    }
}
