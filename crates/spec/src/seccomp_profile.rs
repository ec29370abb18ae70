//! Docker's seccomp profile format and its conversion to the OCI
//! `linux.seccomp` section.
//!
//! `docker run --security-opt seccomp=<file>` sends the file's JSON in
//! `HostConfig.SecurityOpt`; the daemon turns it into the OCI section for one
//! container with [`SeccompProfile::to_oci`]. The format is the OCI section
//! plus a few Docker additions resolved at conversion time:
//! - `archMap`: per native architecture, the architectures to cover (the
//!   native one and its `subArchitectures`); only the host's entry is used.
//!   It excludes `architectures`.
//! - per rule, `name` (one syscall) as an alternative to `names`, and
//!   `includes`/`excludes` filters: a rule is kept only when the container
//!   holds every capability in `includes.caps`, the host architecture is in
//!   `includes.arches` and the kernel is at least `includes.minKernel`; it is
//!   dropped when the container holds any capability in `excludes.caps`, the
//!   host architecture is in `excludes.arches` or the kernel is at least
//!   `excludes.minKernel`. Architectures are libseccomp's native names
//!   (`amd64`, `x86`, `x32`, `arm64`, `arm`, ...), capabilities `CAP_` names.
//!
//! A profile with neither a `defaultAction` nor rules disables seccomp, as
//! with Docker. Docker's own default profile is expressed in this format too
//! ([`crate::default_profile`]), so both go through the same conversion.
//! Unknown fields (such as a rule's `comment`) are ignored; unknown actions,
//! operators, architectures and flags are errors.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::caps::capability_name;

/// Why a profile cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    /// The profile is not JSON of the expected shape.
    #[error("decoding seccomp profile failed")]
    Decode(#[source] serde_json::Error),
    /// `defaultAction` or a rule's `action` is not a seccomp action.
    #[error("unknown seccomp action {action:?} in {place}")]
    UnknownAction { action: String, place: String },
    /// A rule's argument `op` is not a comparison operator.
    #[error("unknown seccomp operator {op:?} in the rule for {syscall}")]
    UnknownOperator { op: String, syscall: String },
    /// An entry of `architectures` or `archMap` is not a seccomp architecture.
    #[error("unknown seccomp architecture {arch:?}")]
    UnknownArch { arch: String },
    /// An entry of `flags` is not a seccomp filter flag.
    #[error("unknown seccomp flag {flag:?}")]
    UnknownFlag { flag: String },
    /// Both `architectures` and `archMap` are set.
    #[error(
        "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    /// A rule has both `name` and `names`.
    #[error(
        "'name' and 'names' were specified in the seccomp profile rule for {name}, use either 'name' or 'names'"
    )]
    NameAndNames { name: String },
    /// A rule names no syscall.
    #[error("a seccomp profile rule (action {action}) names no syscall")]
    NoSyscallName { action: String },
    /// Rules are listed but there is no `defaultAction`.
    #[error("the seccomp profile has syscall rules but no defaultAction")]
    NoDefaultAction,
    /// A `minKernel` is not `<major>.<minor>`.
    #[error("invalid minKernel {version:?} in a seccomp profile (expected e.g. \"4.8\")")]
    BadKernelVersion { version: String },
    /// A rule depends on the kernel version and it could not be read.
    #[error("a seccomp profile rule needs the kernel version, which could not be read")]
    KernelVersionUnknown,
}

/// Docker's seccomp profile (the JSON of `--security-opt seccomp=<file>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    /// `SCMP_ACT_*` for syscalls no rule matches.
    #[serde(default, deserialize_with = "null_default")]
    pub default_action: String,
    /// The errno of an `SCMP_ACT_ERRNO` default action (`EPERM` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Seccomp agent socket for `SCMP_ACT_NOTIFY`.
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub listener_path: String,
    /// Opaque data passed to the seccomp agent.
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub listener_metadata: String,
    /// `SCMP_ARCH_*` names, used as they are.
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// Architectures per native architecture.
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMapEntry>,
    /// `SECCOMP_FILTER_FLAG_*` names.
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The rules, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<ProfileSyscall>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchMapEntry {
    /// The native `SCMP_ARCH_*` this entry applies to.
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    /// Further architectures to cover on that host.
    #[serde(
        rename = "subArchitectures",
        default,
        deserialize_with = "null_default"
    )]
    pub sub_architectures: Vec<String>,
}

/// One rule of a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSyscall {
    /// A single syscall (alternative to `names`).
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// `SCMP_ACT_*`.
    #[serde(default, deserialize_with = "null_default")]
    pub action: String,
    /// The errno of an `SCMP_ACT_ERRNO` (or the value of `SCMP_ACT_TRACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions, ANDed.
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ProfileArg>,
    /// Conditions for keeping the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<ProfileFilter>,
    /// Conditions for dropping the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<ProfileFilter>,
}

/// An argument condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileArg {
    pub index: usize,
    #[serde(default)]
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_*`.
    #[serde(default, deserialize_with = "null_default")]
    pub op: String,
}

/// `includes` / `excludes` of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileFilter {
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    /// `<major>.<minor>`, e.g. `"4.8"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

/// Go decodes `null` as the zero value; so do these fields.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A kernel version as `includes/excludes.minKernel` compares it: major and
/// minor only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parses the leading `<major>.<minor>` of a release string such as
    /// `6.1.0-18-amd64` or `4.8`.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let mut parts = release.trim().splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor_part = parts.next()?;
        let digits = minor_part
            .find(|c: char| !c.is_ascii_digit())
            .map_or(minor_part, |end| &minor_part[..end]);
        let minor = digits.parse().ok()?;
        Some(KernelVersion { major, minor })
    }

    /// The running kernel's version (`/proc/sys/kernel/osrelease`).
    pub fn host() -> Option<KernelVersion> {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .as_deref()
            .and_then(KernelVersion::parse)
    }
}

/// libseccomp's name for this host's architecture, as `includes.arches`
/// uses it.
#[cfg(target_arch = "x86_64")]
pub const HOST_ARCH_NAME: &str = "amd64";
/// libseccomp's name for this host's architecture, as `includes.arches`
/// uses it.
#[cfg(target_arch = "aarch64")]
pub const HOST_ARCH_NAME: &str = "arm64";
/// libseccomp's name for this host's architecture, as `includes.arches`
/// uses it.
#[cfg(target_arch = "x86")]
pub const HOST_ARCH_NAME: &str = "x86";
/// libseccomp's name for this host's architecture, as `includes.arches`
/// uses it.
#[cfg(target_arch = "arm")]
pub const HOST_ARCH_NAME: &str = "arm";
/// libseccomp's name for this host's architecture, as `includes.arches`
/// uses it.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "x86",
    target_arch = "arm"
)))]
pub const HOST_ARCH_NAME: &str = std::env::consts::ARCH;

/// What a profile is resolved against: the container and the host.
#[derive(Debug, Clone, Copy)]
pub struct ProfileTarget<'a> {
    /// The container's bounding capability set.
    pub capabilities: &'a [Capability],
    /// libseccomp's native architecture name (see [`HOST_ARCH_NAME`]).
    pub arch: &'a str,
    /// The kernel version; needed only by rules with a `minKernel`.
    pub kernel: Option<KernelVersion>,
}

impl<'a> ProfileTarget<'a> {
    /// This host, for a container holding `capabilities`.
    pub fn host(capabilities: &'a [Capability]) -> ProfileTarget<'a> {
        ProfileTarget {
            capabilities,
            arch: HOST_ARCH_NAME,
            kernel: KernelVersion::host(),
        }
    }

    fn native_scmp_arch(&self) -> Option<&'static str> {
        Some(match self.arch {
            "amd64" => "SCMP_ARCH_X86_64",
            "x86" => "SCMP_ARCH_X86",
            "arm64" => "SCMP_ARCH_AARCH64",
            "arm" => "SCMP_ARCH_ARM",
            "ppc64le" => "SCMP_ARCH_PPC64LE",
            "s390x" => "SCMP_ARCH_S390X",
            "riscv64" => "SCMP_ARCH_RISCV64",
            _ => return None,
        })
    }

    fn holds(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| capability_name(*c) == cap)
    }

    fn kernel_at_least(&self, min: &str) -> Result<bool, SeccompProfileError> {
        let want = KernelVersion::parse(min)
            .filter(|_| min.trim().split('.').count() >= 2)
            .ok_or_else(|| SeccompProfileError::BadKernelVersion {
                version: min.to_owned(),
            })?;
        let have = self
            .kernel
            .ok_or(SeccompProfileError::KernelVersionUnknown)?;
        Ok(have >= want)
    }
}

/// Parses an OCI enum from its JSON string form.
fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

fn parse_arch(name: &str) -> Result<Arch, SeccompProfileError> {
    from_name(name).ok_or_else(|| SeccompProfileError::UnknownArch {
        arch: name.to_owned(),
    })
}

fn parse_action(
    action: &str,
    place: impl FnOnce() -> String,
) -> Result<LinuxSeccompAction, SeccompProfileError> {
    from_name(action).ok_or_else(|| SeccompProfileError::UnknownAction {
        action: action.to_owned(),
        place: place(),
    })
}

impl SeccompProfile {
    /// Decodes a profile from its JSON text.
    pub fn from_json(text: &str) -> Result<SeccompProfile, SeccompProfileError> {
        serde_json::from_str(text).map_err(SeccompProfileError::Decode)
    }

    /// The OCI section for `target`, or `None` when the profile disables
    /// seccomp (no `defaultAction` and no rules).
    pub fn to_oci(
        &self,
        target: &ProfileTarget<'_>,
    ) -> Result<Option<LinuxSeccomp>, SeccompProfileError> {
        if self.default_action.is_empty() && self.syscalls.is_empty() {
            return Ok(None);
        }
        if self.default_action.is_empty() {
            return Err(SeccompProfileError::NoDefaultAction);
        }
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(SeccompProfileError::ArchitecturesAndArchMap);
        }
        let mut out = LinuxSeccomp::default();
        out.set_default_action(parse_action(&self.default_action, || {
            "defaultAction".to_owned()
        })?);
        out.set_default_errno_ret(self.default_errno_ret);

        let mut arches = Vec::new();
        for a in &self.architectures {
            arches.push(parse_arch(a)?);
        }
        let native = target.native_scmp_arch();
        for entry in &self.arch_map {
            // Every entry must name real architectures, used or not.
            parse_arch(&entry.architecture)?;
            for sub in &entry.sub_architectures {
                parse_arch(sub)?;
            }
            if Some(entry.architecture.as_str()) == native && arches.is_empty() {
                arches.push(parse_arch(&entry.architecture)?);
                for sub in &entry.sub_architectures {
                    arches.push(parse_arch(sub)?);
                }
            }
        }
        if !arches.is_empty() {
            out.set_architectures(Some(arches));
        }

        let mut flags = Vec::new();
        for f in &self.flags {
            flags.push(
                from_name::<LinuxSeccompFilterFlag>(f)
                    .ok_or_else(|| SeccompProfileError::UnknownFlag { flag: f.clone() })?,
            );
        }
        if !flags.is_empty() {
            out.set_flags(Some(flags));
        }
        if !self.listener_path.is_empty() {
            out.set_listener_path(Some(self.listener_path.clone().into()));
        }
        if !self.listener_metadata.is_empty() {
            out.set_listener_metadata(Some(self.listener_metadata.clone()));
        }

        let mut rules = Vec::new();
        for call in &self.syscalls {
            if let Some(rule) = call.to_oci(target)? {
                rules.push(rule);
            }
        }
        out.set_syscalls(Some(rules));
        Ok(Some(out))
    }
}

impl ProfileSyscall {
    /// The rule's names for messages.
    fn label(&self) -> String {
        if self.name.is_empty() {
            self.names.join(",")
        } else {
            self.name.clone()
        }
    }

    /// Whether `includes`/`excludes` keep this rule for `target`.
    fn applies(&self, target: &ProfileTarget<'_>) -> Result<bool, SeccompProfileError> {
        if let Some(ex) = &self.excludes {
            if ex.arches.iter().any(|a| a == target.arch) {
                return Ok(false);
            }
            if ex.caps.iter().any(|c| target.holds(c)) {
                return Ok(false);
            }
            if let Some(k) = &ex.min_kernel
                && target.kernel_at_least(k)?
            {
                return Ok(false);
            }
        }
        if let Some(inc) = &self.includes {
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
                return Ok(false);
            }
            if !inc.caps.iter().all(|c| target.holds(c)) {
                return Ok(false);
            }
            if let Some(k) = &inc.min_kernel
                && !target.kernel_at_least(k)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn to_oci(
        &self,
        target: &ProfileTarget<'_>,
    ) -> Result<Option<LinuxSyscall>, SeccompProfileError> {
        // Validate every rule, including those the filters drop, so a typo
        // is reported whatever the host.
        let action = parse_action(&self.action, || format!("the rule for {}", self.label()))?;
        if !self.name.is_empty() && !self.names.is_empty() {
            return Err(SeccompProfileError::NameAndNames {
                name: self.name.clone(),
            });
        }
        if self.name.is_empty() && self.names.is_empty() {
            return Err(SeccompProfileError::NoSyscallName {
                action: self.action.clone(),
            });
        }
        let mut args = Vec::new();
        for a in &self.args {
            let op: LinuxSeccompOperator =
                from_name(&a.op).ok_or_else(|| SeccompProfileError::UnknownOperator {
                    op: a.op.clone(),
                    syscall: self.label(),
                })?;
            args.push(oci_arg(a.index, a.value, a.value_two, op));
        }
        if !self.applies(target)? {
            return Ok(None);
        }
        let mut rule = LinuxSyscall::default();
        rule.set_names(if self.name.is_empty() {
            self.names.clone()
        } else {
            vec![self.name.clone()]
        });
        rule.set_action(action);
        rule.set_errno_ret(self.errno_ret);
        if !args.is_empty() {
            rule.set_args(Some(args));
        }
        Ok(Some(rule))
    }
}

/// An OCI argument condition; `value_two` 0 is left out, as Docker does.
pub(crate) fn oci_arg(
    index: usize,
    value: u64,
    value_two: u64,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let b = if value_two == 0 {
        b
    } else {
        b.value_two(value_two)
    };
    // The builder has a default for every field, so `build` cannot fail.
    b.build()
        .expect("LinuxSeccompArg builder defaults every field")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[Capability]) -> ProfileTarget<'_> {
        ProfileTarget {
            capabilities: caps,
            arch: "amd64",
            kernel: Some(KernelVersion {
                major: 5,
                minor: 10,
            }),
        }
    }

    fn convert(
        json: &str,
        caps: &[Capability],
    ) -> Result<Option<LinuxSeccomp>, SeccompProfileError> {
        SeccompProfile::from_json(json)?.to_oci(&target(caps))
    }

    #[test]
    fn deny_mkdir_profile() {
        let p = convert(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"comment":"x"},
                {"name":"chmod","action":"SCMP_ACT_KILL_PROCESS"}]}"#,
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(p.default_errno_ret(), None);
        assert_eq!(p.architectures(), &None);
        let rules = p.syscalls().as_deref().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].names(), &["mkdir", "mkdirat"]);
        assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rules[0].errno_ret(), Some(13));
        assert_eq!(rules[1].names(), &["chmod"]);
        assert_eq!(rules[1].action(), LinuxSeccompAction::ScmpActKillProcess);
    }

    #[test]
    fn empty_profile_disables_seccomp() {
        assert!(convert("{}", &[]).unwrap().is_none());
        assert!(
            convert(r#"{"defaultAction":"","syscalls":null}"#, &[])
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            convert(
                r#"{"syscalls":[{"name":"read","action":"SCMP_ACT_ALLOW"}]}"#,
                &[]
            ),
            Err(SeccompProfileError::NoDefaultAction)
        ));
    }

    #[test]
    fn arch_map_picks_the_host_entry() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "archMap":[
              {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]},
              {"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}],
            "flags":["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls":[]}"#;
        let p = convert(json, &[]).unwrap().unwrap();
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.flags().as_deref(),
            Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..])
        );
        let arm = SeccompProfile::from_json(json)
            .unwrap()
            .to_oci(&ProfileTarget {
                arch: "arm64",
                ..target(&[])
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        let plain = convert(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#,
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            plain.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64][..])
        );
        assert!(matches!(
            convert(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                    "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
                &[]
            ),
            Err(SeccompProfileError::ArchitecturesAndArchMap)
        ));
    }

    #[test]
    fn includes_and_excludes() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
            {"names":["clone"],"action":"SCMP_ACT_ALLOW",
             "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}],
             "excludes":{"caps":["CAP_SYS_ADMIN"],"arches":["s390x"]}},
            {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64","x32"]}},
            {"names":["sync_file_range2"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["ppc64le"]}},
            {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
            {"names":["futex_waitv"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.16"}},
            {"names":["old_thing"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.4"}}]}"#;
        let names = |caps: &[Capability]| -> Vec<String> {
            convert(json, caps)
                .unwrap()
                .unwrap()
                .syscalls()
                .clone()
                .unwrap()
                .iter()
                .flat_map(|r| r.names().clone())
                .collect()
        };
        assert_eq!(names(&[]), ["clone", "arch_prctl", "ptrace"]);
        assert_eq!(
            names(&[Capability::SysAdmin]),
            ["mount", "arch_prctl", "ptrace"]
        );
        let p = convert(json, &[]).unwrap().unwrap();
        let clone = &p.syscalls().as_deref().unwrap()[0];
        let a = &clone.args().as_deref().unwrap()[0];
        assert_eq!(
            (a.index(), a.value(), a.value_two(), a.op()),
            (0, 0x7E02_0000, None, LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        // Without a known kernel version, minKernel rules cannot be decided.
        let unknown = SeccompProfile::from_json(json)
            .unwrap()
            .to_oci(&ProfileTarget {
                kernel: None,
                ..target(&[])
            });
        assert!(matches!(
            unknown,
            Err(SeccompProfileError::KernelVersionUnknown)
        ));
    }

    #[test]
    fn bad_profiles_are_refused_with_context() {
        let err = |json: &str| convert(json, &[]).unwrap_err().to_string();
        assert!(matches!(
            convert("{not json", &[]),
            Err(SeccompProfileError::Decode(_))
        ));
        assert!(matches!(
            convert(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}"#, &[]),
            Err(SeccompProfileError::Decode(_))
        ));
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#),
            "unknown seccomp action \"SCMP_ACT_MAYBE\" in defaultAction"
        );
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"DENY"}]}"#
            ),
            "unknown seccomp action \"DENY\" in the rule for mkdir"
        );
        // Unknown actions are reported even in rules the filters drop.
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"NOPE","includes":{"arches":["s390x"]}}]}"#)
                .contains("NOPE")
        );
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]}"#)
                .contains("SCMP_CMP_ALMOST")
        );
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#)
                .contains("SCMP_ARCH_VAX")
        );
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_FAST"]}"#)
                .contains("SECCOMP_FILTER_FLAG_FAST")
        );
        assert!(matches!(
            convert(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#,
                &[]
            ),
            Err(SeccompProfileError::NameAndNames { .. })
        ));
        assert!(matches!(
            convert(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}"#,
                &[]
            ),
            Err(SeccompProfileError::NoSyscallName { .. })
        ));
        assert!(matches!(
            convert(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"four"}}]}"#,
                &[]
            ),
            Err(SeccompProfileError::BadKernelVersion { .. })
        ));
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v657"),
            Some(KernelVersion {
                major: 6,
                minor: 18
            })
        );
        assert_eq!(
            KernelVersion::parse("3.12-1-amd64"),
            Some(KernelVersion {
                major: 3,
                minor: 12
            })
        );
        assert_eq!(KernelVersion::parse("4"), None);
        assert!(
            KernelVersion { major: 5, minor: 4 }
                > KernelVersion {
                    major: 4,
                    minor: 19
                }
        );
        assert!(KernelVersion::host().is_some());
    }

    #[test]
    fn round_trips_through_json() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
            "syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW",
              "args":[{"index":0,"value":1,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"}],
              "includes":{"minKernel":"4.8"},"excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let p = SeccompProfile::from_json(json).unwrap();
        let back = SeccompProfile::from_json(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let rule = &p
            .to_oci(&target(&[]))
            .unwrap()
            .unwrap()
            .syscalls()
            .clone()
            .unwrap()[0];
        assert_eq!(rule.args().as_deref().unwrap()[0].value_two(), Some(2));
    }
}
