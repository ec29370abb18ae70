//! Linux capabilities: the names the kernel knows, Docker's default set, and
//! Docker's `--cap-add` / `--cap-drop` rules.
//!
//! Callers parse user input with [`parse_capability`] (accepts `CAP_CHOWN`,
//! `chown`, `Chown`, ...) and compute a container's capability set with
//! [`apply_cap_changes`], which follows `docker run` exactly: `ALL` in the add
//! list means "every capability except the dropped ones", `ALL` in the drop
//! list means "only the added ones", otherwise the base set minus the drops
//! plus the adds. Unknown names fail with Docker's message
//! (`unknown capability: "CAP_FOO"`).

use oci_spec::runtime::Capability;

/// One capability the kernel defines: its number (bit index), its canonical
/// `CAP_` name and the oci-spec value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilityInfo {
    /// Bit number in the kernel's capability sets (`CAP_CHOWN` is 0).
    pub number: u8,
    /// Canonical upper-case name with the `CAP_` prefix.
    pub name: &'static str,
    /// The matching oci-spec value.
    pub capability: Capability,
}

const fn cap(number: u8, name: &'static str, capability: Capability) -> CapabilityInfo {
    CapabilityInfo {
        number,
        name,
        capability,
    }
}

/// Every capability Linux defines (0 through 40, `CAP_CHECKPOINT_RESTORE`),
/// in kernel bit order.
pub const ALL_CAPABILITIES: [CapabilityInfo; 41] = [
    cap(0, "CAP_CHOWN", Capability::Chown),
    cap(1, "CAP_DAC_OVERRIDE", Capability::DacOverride),
    cap(2, "CAP_DAC_READ_SEARCH", Capability::DacReadSearch),
    cap(3, "CAP_FOWNER", Capability::Fowner),
    cap(4, "CAP_FSETID", Capability::Fsetid),
    cap(5, "CAP_KILL", Capability::Kill),
    cap(6, "CAP_SETGID", Capability::Setgid),
    cap(7, "CAP_SETUID", Capability::Setuid),
    cap(8, "CAP_SETPCAP", Capability::Setpcap),
    cap(9, "CAP_LINUX_IMMUTABLE", Capability::LinuxImmutable),
    cap(10, "CAP_NET_BIND_SERVICE", Capability::NetBindService),
    cap(11, "CAP_NET_BROADCAST", Capability::NetBroadcast),
    cap(12, "CAP_NET_ADMIN", Capability::NetAdmin),
    cap(13, "CAP_NET_RAW", Capability::NetRaw),
    cap(14, "CAP_IPC_LOCK", Capability::IpcLock),
    cap(15, "CAP_IPC_OWNER", Capability::IpcOwner),
    cap(16, "CAP_SYS_MODULE", Capability::SysModule),
    cap(17, "CAP_SYS_RAWIO", Capability::SysRawio),
    cap(18, "CAP_SYS_CHROOT", Capability::SysChroot),
    cap(19, "CAP_SYS_PTRACE", Capability::SysPtrace),
    cap(20, "CAP_SYS_PACCT", Capability::SysPacct),
    cap(21, "CAP_SYS_ADMIN", Capability::SysAdmin),
    cap(22, "CAP_SYS_BOOT", Capability::SysBoot),
    cap(23, "CAP_SYS_NICE", Capability::SysNice),
    cap(24, "CAP_SYS_RESOURCE", Capability::SysResource),
    cap(25, "CAP_SYS_TIME", Capability::SysTime),
    cap(26, "CAP_SYS_TTY_CONFIG", Capability::SysTtyConfig),
    cap(27, "CAP_MKNOD", Capability::Mknod),
    cap(28, "CAP_LEASE", Capability::Lease),
    cap(29, "CAP_AUDIT_WRITE", Capability::AuditWrite),
    cap(30, "CAP_AUDIT_CONTROL", Capability::AuditControl),
    cap(31, "CAP_SETFCAP", Capability::Setfcap),
    cap(32, "CAP_MAC_OVERRIDE", Capability::MacOverride),
    cap(33, "CAP_MAC_ADMIN", Capability::MacAdmin),
    cap(34, "CAP_SYSLOG", Capability::Syslog),
    cap(35, "CAP_WAKE_ALARM", Capability::WakeAlarm),
    cap(36, "CAP_BLOCK_SUSPEND", Capability::BlockSuspend),
    cap(37, "CAP_AUDIT_READ", Capability::AuditRead),
    cap(38, "CAP_PERFMON", Capability::Perfmon),
    cap(39, "CAP_BPF", Capability::Bpf),
    cap(40, "CAP_CHECKPOINT_RESTORE", Capability::CheckpointRestore),
];

/// Docker's default capability set for a container, in Docker's order.
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Errors from parsing capability names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapError {
    /// The name (shown normalised, with the `CAP_` prefix) is not a Linux
    /// capability. The message matches Docker's.
    #[error("unknown capability: {name:?}")]
    Unknown {
        /// Normalised name, e.g. `CAP_FOO`.
        name: String,
    },
}

/// Upper-cases `name` and adds the `CAP_` prefix when missing.
fn normalize(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Looks a capability up by name: `CAP_NET_ADMIN`, `net_admin`, `Net_Admin`
/// are all accepted. `ALL` is not a capability here (see
/// [`apply_cap_changes`]).
pub fn parse_capability(name: &str) -> Result<Capability, CapError> {
    let normalized = normalize(name);
    ALL_CAPABILITIES
        .iter()
        .find(|info| info.name == normalized)
        .map(|info| info.capability)
        .ok_or(CapError::Unknown { name: normalized })
}

/// Kernel bit number of `capability` (an exhaustive match, so a new
/// oci-spec variant fails to compile here rather than at run time).
pub fn capability_number(capability: Capability) -> u8 {
    use Capability::*;
    match capability {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The information row of `capability`.
pub fn capability_info(capability: Capability) -> &'static CapabilityInfo {
    &ALL_CAPABILITIES[usize::from(capability_number(capability))]
}

/// Canonical `CAP_` name of `capability`.
pub fn capability_name(capability: Capability) -> &'static str {
    capability_info(capability).name
}

/// One entry of a `--cap-add` / `--cap-drop` list after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapArg {
    All,
    One(Capability),
}

fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<CapArg>, CapError> {
    names
        .iter()
        .map(|name| {
            let name = name.as_ref();
            if name.trim().eq_ignore_ascii_case("ALL") {
                Ok(CapArg::All)
            } else {
                parse_capability(name).map(CapArg::One)
            }
        })
        .collect()
}

fn push_unique(caps: &mut Vec<Capability>, capability: Capability) {
    if !caps.contains(&capability) {
        caps.push(capability);
    }
}

/// Applies Docker's `--cap-add` / `--cap-drop` rules to `base` (normally
/// [`DEFAULT_CAPABILITIES`]):
///
/// 1. `ALL` in `add`: every capability except those named in `drop`;
/// 2. else `ALL` in `drop`: only the capabilities named in `add`;
/// 3. else `base` without `drop`, then `add` appended.
///
/// Names are parsed with [`parse_capability`]; the result has no duplicates
/// and keeps first-seen order.
pub fn apply_cap_changes<S: AsRef<str>>(
    base: &[Capability],
    add: &[S],
    drop: &[S],
) -> Result<Vec<Capability>, CapError> {
    let add = parse_list(add)?;
    let drop = parse_list(drop)?;
    let dropped = |c: Capability| drop.contains(&CapArg::One(c));
    let mut caps = Vec::new();
    if add.contains(&CapArg::All) {
        for info in &ALL_CAPABILITIES {
            if !dropped(info.capability) {
                push_unique(&mut caps, info.capability);
            }
        }
    } else if drop.contains(&CapArg::All) {
        for arg in &add {
            if let CapArg::One(c) = arg {
                push_unique(&mut caps, *c);
            }
        }
    } else {
        for c in base {
            if !dropped(*c) {
                push_unique(&mut caps, *c);
            }
        }
        for arg in &add {
            if let CapArg::One(c) = arg {
                push_unique(&mut caps, *c);
            }
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_kernel_order_and_complete() {
        for (i, info) in ALL_CAPABILITIES.iter().enumerate() {
            assert_eq!(usize::from(info.number), i, "{}", info.name);
            assert_eq!(capability_number(info.capability), info.number);
            // The oci-spec serialisation agrees with our name.
            let json = serde_json::to_string(&info.capability).unwrap();
            assert_eq!(json, format!("\"{}\"", info.name));
        }
        assert_eq!(DEFAULT_CAPABILITIES.len(), 14);
    }

    #[test]
    fn parse_accepts_docker_spellings() {
        assert_eq!(parse_capability("CAP_NET_ADMIN"), Ok(Capability::NetAdmin));
        assert_eq!(parse_capability("net_admin"), Ok(Capability::NetAdmin));
        assert_eq!(parse_capability("Sys_Admin"), Ok(Capability::SysAdmin));
        assert_eq!(parse_capability("cap_bpf"), Ok(Capability::Bpf));
        let err = parse_capability("foo").unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
        assert!(parse_capability("ALL").is_err());
    }

    #[test]
    fn add_and_drop_follow_docker_rules() {
        let none: [&str; 0] = [];
        let same = apply_cap_changes(DEFAULT_CAPABILITIES, &none, &none).unwrap();
        assert_eq!(same, DEFAULT_CAPABILITIES);

        let caps = apply_cap_changes(DEFAULT_CAPABILITIES, &["NET_ADMIN"], &["chown", "CAP_KILL"])
            .unwrap();
        assert!(caps.contains(&Capability::NetAdmin));
        assert!(!caps.contains(&Capability::Chown));
        assert!(!caps.contains(&Capability::Kill));
        assert_eq!(caps.len(), 13);

        let all = apply_cap_changes(DEFAULT_CAPABILITIES, &["all"], &["SYS_ADMIN"]).unwrap();
        assert_eq!(all.len(), 40);
        assert!(!all.contains(&Capability::SysAdmin));

        let only = apply_cap_changes(DEFAULT_CAPABILITIES, &["chown"], &["ALL"]).unwrap();
        assert_eq!(only, vec![Capability::Chown]);

        // Adding something already present does not duplicate it.
        let dup = apply_cap_changes(DEFAULT_CAPABILITIES, &["CAP_CHOWN"], &[]).unwrap();
        assert_eq!(dup.len(), 14);

        let err = apply_cap_changes(DEFAULT_CAPABILITIES, &["CAP_FOO"], &[]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
        let err = apply_cap_changes(DEFAULT_CAPABILITIES, &[], &["bar"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_BAR\"");
    }
}
