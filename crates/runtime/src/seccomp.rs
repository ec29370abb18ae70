//! Compiling the OCI seccomp section to BPF, with a cache.
//!
//! The runtime turns `linux.seccomp` into a classic BPF program with
//! libseccomp *before* it creates the container process, and the child only
//! hands the finished bytes to the kernel ([`CompiledFilter::load`], which
//! does not allocate). Semantics follow runc:
//!
//! - the default action (with `defaultErrnoRet`, `EPERM` when absent) covers
//!   every syscall no rule names;
//! - the listed architectures are added and the native one is removed when
//!   it is not listed; an empty list means the native architecture only;
//! - a rule's arguments are ANDed, except when two of them test the same
//!   argument index: then each argument becomes a rule of its own (ORed),
//!   as runc does for compatibility with old profiles;
//! - syscall names libseccomp does not know are skipped with a debug log,
//!   and rules whose action equals the default action are dropped;
//! - when unlisted syscalls are denied, syscalls numbered above every
//!   syscall the profile names fail with `ENOSYS` instead, so libc falls
//!   back to older calls (runc does the same; see `enosys`);
//! - `SCMP_ACT_NOTIFY` and `listenerPath` are refused with
//!   [`SeccompError::NotifyUnsupported`].
//!
//! Compiling Docker's default profile costs milliseconds, so
//! [`CompiledFilter::load_or_compile`] keeps the result in a cache directory:
//!
//! ```text
//! <cache_dir>/<sha256 hex>.bpf
//!     key = sha256("wharf-seccomp-bpf-v3" NUL libseccomp version NUL
//!                  target arch NUL canonical JSON of the section)
//!     file = "WHFSBPF1" | u32 LE program length | sha256(program) | program
//! ```
//!
//! Files are written atomically (temporary file in the same directory,
//! fsync, rename, fsync of the directory). A short, corrupt or mismatching
//! file is ignored and rewritten. Bump the `v3` in the key when compilation
//! changes. The directory must be writable only by the runtime's user: the
//! embedded digest detects corruption, not tampering.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};
use wharf_sys::seccomp as sys;

mod enosys;

/// `EPERM`: the errno of `SCMP_ACT_ERRNO` / `SCMP_ACT_TRACE` without an
/// explicit `errnoRet`.
const EPERM: u32 = 1;

/// Highest syscall argument index (syscalls take six arguments).
const MAX_ARG_INDEX: usize = 5;

/// Versioned prefix of every cache key; bump when compilation changes.
const CACHE_FORMAT: &str = "wharf-seccomp-bpf-v3";

/// `BPF_LD|BPF_W|BPF_ABS` of `seccomp_data.arch` (offset 4): the first
/// instruction of every program libseccomp exports.
const LIBSECCOMP_PROGRAM_START: [u8; 8] = {
    let code = 0x20u16.to_ne_bytes();
    let k = 4u32.to_ne_bytes();
    [code[0], code[1], 0, 0, k[0], k[1], k[2], k[3]]
};

/// Magic opening every cache file.
const CACHE_MAGIC: &[u8; 8] = b"WHFSBPF1";

/// Cache file header: magic, program length, program digest.
const CACHE_HEADER_LEN: usize = CACHE_MAGIC.len() + 4 + 32;

/// Errors from compiling, caching and loading a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile needs a seccomp agent (`SCMP_ACT_NOTIFY`, `listenerPath`
    /// or a listener-only flag).
    #[error("seccomp notify (listenerPath) is not supported by wharf-runtime")]
    NotifyUnsupported,
    /// An `errnoRet` does not fit the 16 bits seccomp returns.
    #[error("seccomp errnoRet {value} for {context} is larger than 65535")]
    InvalidErrno {
        /// The rule (`syscall read`) or `defaultAction`.
        context: String,
        /// The rejected value.
        value: u32,
    },
    /// An argument index beyond the sixth argument.
    #[error("seccomp rule for syscall {syscall:?} tests argument index {index}, the largest is 5")]
    InvalidArgIndex {
        /// Syscall name of the rule.
        syscall: String,
        /// The rejected index.
        index: usize,
    },
    /// libseccomp could not build the filter context.
    #[error("failed to create a libseccomp filter context")]
    NewFilter(#[source] libseccomp::error::SeccompError),
    /// libseccomp refused an architecture.
    #[error("failed to set architecture {arch} in the seccomp filter")]
    Arch {
        /// The architecture as written in the spec.
        arch: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp refused a rule.
    #[error("failed to add the seccomp rule for syscall {syscall:?}")]
    AddRule {
        /// Syscall name of the rule.
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp could not generate the BPF program.
    #[error("failed to export the seccomp filter as bpf")]
    Export(#[source] libseccomp::error::SeccompError),
    /// The memory file the program is exported into failed.
    #[error("failed to read back the exported seccomp bpf program")]
    ExportBuffer(#[source] io::Error),
    /// The runtime library version could not be queried (cache key).
    #[error("failed to query the libseccomp library version")]
    Version(#[source] libseccomp::error::SeccompError),
    /// The section could not be serialised for the cache key.
    #[error("failed to serialise the seccomp section for its cache key")]
    CacheKey(#[source] serde_json::Error),
    /// The kernel refused the program.
    #[error("failed to load the seccomp filter ({instructions} instructions, flags {flags:#x})")]
    Load {
        /// Program length in instructions.
        instructions: usize,
        /// Kernel flags passed to seccomp(2).
        flags: u32,
        #[source]
        source: io::Error,
    },
}

/// Where a [`CompiledFilter`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOrigin {
    /// libseccomp compiled it in this process.
    Compiled,
    /// Read from the cache directory.
    Cache,
}

/// A seccomp filter ready for the kernel: the BPF program and the
/// `seccomp(2)` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    bpf: Vec<u8>,
    flags: u32,
    origin: FilterOrigin,
}

impl CompiledFilter {
    /// The BPF program: native-endian `struct sock_filter` records.
    pub fn bpf(&self) -> &[u8] {
        &self.bpf
    }

    /// The flags for `seccomp(SECCOMP_SET_MODE_FILTER)` (see
    /// [`wharf_sys::seccomp::FLAG_TSYNC`] and friends).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Program length in BPF instructions.
    pub fn instructions(&self) -> usize {
        self.bpf.len() / sys::BPF_INSTRUCTION_LEN
    }

    /// Whether the program was compiled now or read from the cache.
    pub fn origin(&self) -> FilterOrigin {
        self.origin
    }

    /// Returns the filter for `section`, from `<cache_dir>/<key>.bpf` when a
    /// valid entry exists, else compiled and stored there. Without a cache
    /// directory this is [`compile`]. Cache I/O failures are logged and
    /// never fail the call: the cache only saves time.
    pub fn load_or_compile(
        section: &LinuxSeccomp,
        cache_dir: Option<&Path>,
    ) -> Result<Self, SeccompError> {
        let Some(dir) = cache_dir else {
            return compile(section);
        };
        let flags = kernel_flags(section)?;
        let path = dir.join(format!("{}.bpf", cache_key(section)?));
        match fs::read(&path) {
            Ok(bytes) => match decode_cache_file(&bytes) {
                Some(bpf) => {
                    debug!(path = %path.display(), "seccomp filter cache hit");
                    return Ok(Self {
                        bpf: bpf.to_vec(),
                        flags,
                        origin: FilterOrigin::Cache,
                    });
                }
                None => debug!(path = %path.display(), "ignoring corrupt seccomp cache file"),
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => warn!(path = %path.display(), %err, "cannot read seccomp cache file"),
        }
        let filter = compile(section)?;
        if let Err(err) = write_cache_file(dir, &path, &filter.bpf) {
            warn!(path = %path.display(), %err, "cannot write seccomp cache file");
        }
        Ok(filter)
    }

    /// Installs the filter on the calling thread (on all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). Needs `no_new_privs` or
    /// `CAP_SYS_ADMIN`; does not allocate.
    pub fn load(&self) -> Result<(), SeccompError> {
        sys::load_filter(&self.bpf, self.flags).map_err(|source| SeccompError::Load {
            instructions: self.instructions(),
            flags: self.flags,
            source,
        })
    }
}

/// The cache key of `section`: hex sha256 over the cache format, the
/// libseccomp version, the target architecture and the section's JSON.
pub fn cache_key(section: &LinuxSeccomp) -> Result<String, SeccompError> {
    let version = ScmpVersion::current().map_err(SeccompError::Version)?;
    // serde_json writes struct fields in declaration order and the section
    // holds no maps, so this serialisation is canonical.
    let json = serde_json::to_vec(section).map_err(SeccompError::CacheKey)?;
    let mut hasher = Sha256::new();
    hasher.update(CACHE_FORMAT);
    hasher.update([0]);
    hasher.update(format!(
        "{}.{}.{}",
        version.major, version.minor, version.micro
    ));
    hasher.update([0]);
    hasher.update(std::env::consts::ARCH);
    hasher.update([0]);
    hasher.update(&json);
    Ok(hex::encode(hasher.finalize()))
}

/// The `seccomp(2)` flags requested by `section.flags`.
pub fn kernel_flags(section: &LinuxSeccomp) -> Result<u32, SeccompError> {
    let mut flags = 0;
    for flag in section.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => sys::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => sys::FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => sys::FLAG_SPEC_ALLOW,
            // Only meaningful together with a notify listener.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::NotifyUnsupported);
            }
        };
    }
    Ok(flags)
}

/// Compiles `section` to BPF with libseccomp (see the module docs for the
/// rules).
pub fn compile(section: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    compile_with(section, Layout::BinaryTree)
}

/// How libseccomp lays out the syscall checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One comparison after another, in rule order (runc's program): a
    /// syscall far down Docker's list runs hundreds of instructions.
    #[cfg_attr(not(test), allow(dead_code))]
    Linear,
    /// A binary search on the syscall number (`SCMP_FLTATR_CTL_OPTIMIZE`
    /// 2, libseccomp 2.5): for Docker's default profile 17 instructions
    /// per syscall on average instead of 294, for every syscall the
    /// container makes, for a program a quarter longer (1,237 instructions
    /// instead of 993).
    BinaryTree,
}

fn compile_with(section: &LinuxSeccomp, layout: Layout) -> Result<CompiledFilter, SeccompError> {
    let flags = kernel_flags(section)?;
    if section.listener_path().is_some() {
        return Err(SeccompError::NotifyUnsupported);
    }

    // 1. Context with the default action.
    let default_action = action(
        section.default_action(),
        section.default_errno_ret(),
        "defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default_action).map_err(SeccompError::NewFilter)?;
    if layout == Layout::BinaryTree
        && let Err(err) = ctx.set_ctl_optimize(2)
    {
        // Older libseccomp: the linear program means the same.
        debug!(%err, "libseccomp cannot build a binary tree; linear filter");
    }

    // 2. Architectures: add the listed ones, drop native if unlisted.
    let arches = section.architectures().as_deref().unwrap_or_default();
    let native = ScmpArch::native();
    let mut native_listed = arches.is_empty();
    let mut filter_arches = vec![native];
    for arch in arches {
        let scmp = scmp_arch(*arch);
        native_listed |= scmp == ScmpArch::Native || scmp == native;
        filter_arches.push(if scmp == ScmpArch::Native {
            native
        } else {
            scmp
        });
        ctx.add_arch(scmp).map_err(|source| SeccompError::Arch {
            arch: arch.to_string(),
            source,
        })?;
    }
    if !native_listed {
        filter_arches.retain(|a| *a != native);
        ctx.remove_arch(ScmpArch::Native)
            .map_err(|source| SeccompError::Arch {
                arch: format!("{native:?} (native, removed)"),
                source,
            })?;
    }

    // 3. Rules.
    let rules = section.syscalls().as_deref().unwrap_or_default();
    for rule in rules {
        add_rule(&mut ctx, rule, default_action)?;
    }

    // 4. Export: libseccomp 2.5 writes to a file descriptor only.
    let mut file = sys::bpf_export_file().map_err(SeccompError::ExportBuffer)?;
    ctx.export_bpf(&file).map_err(SeccompError::Export)?;
    let mut bpf = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bpf))
        .map_err(SeccompError::ExportBuffer)?;

    // 5. ENOSYS for syscalls newer than the profile (see `enosys`), when
    //    unknown syscalls would otherwise be denied.
    if !matches!(default_action, ScmpAction::Allow | ScmpAction::Log) {
        match enosys::prologue(&filter_arches, rules) {
            // libseccomp's program opens by loading seccomp_data.arch.
            Some(prologue) if bpf.starts_with(&LIBSECCOMP_PROGRAM_START) => {
                bpf.splice(0..0, prologue);
            }
            Some(_) => debug!("unexpected libseccomp program start, no ENOSYS prologue"),
            None => {}
        }
    }
    Ok(CompiledFilter {
        bpf,
        flags,
        origin: FilterOrigin::Compiled,
    })
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default_action: ScmpAction,
) -> Result<(), SeccompError> {
    let first = rule.names().first().map_or("", String::as_str);
    let act = action(rule.action(), rule.errno_ret(), &format!("syscall {first}"))?;
    if act == default_action {
        debug!(syscalls = ?rule.names(), "seccomp rule has the default action, skipped");
        return Ok(());
    }
    let args = rule.args().as_deref().unwrap_or_default();
    for name in rule.names() {
        let conditions = args
            .iter()
            .map(|arg| compare(name, arg))
            .collect::<Result<Vec<_>, _>>()?;
        let syscall = match ScmpSyscall::from_name(name) {
            Ok(syscall) => syscall,
            Err(err) => {
                debug!(syscall = %name, %err, "syscall unknown to libseccomp, rule skipped");
                continue;
            }
        };
        let added = if conditions.is_empty() {
            ctx.add_rule(act, syscall).map(drop)
        } else if repeats_an_index(args) {
            // runc compatibility: conditions on one index are alternatives.
            conditions.iter().try_for_each(|c| {
                ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))
                    .map(drop)
            })
        } else {
            ctx.add_rule_conditional(act, syscall, &conditions)
                .map(drop)
        };
        added.map_err(|source| SeccompError::AddRule {
            syscall: name.clone(),
            source,
        })?;
    }
    Ok(())
}

fn repeats_an_index(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = [false; MAX_ARG_INDEX + 1];
    args.iter().any(|a| {
        let index = a.index().min(MAX_ARG_INDEX);
        std::mem::replace(&mut seen[index], true)
    })
}

fn errno_ret(errno: Option<u32>, context: &str) -> Result<u16, SeccompError> {
    let value = errno.unwrap_or(EPERM);
    u16::try_from(value).map_err(|_| SeccompError::InvalidErrno {
        context: context.to_owned(),
        value,
    })
}

fn action(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    context: &str,
) -> Result<ScmpAction, SeccompError> {
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(i32::from(errno_ret(errno, context)?))
        }
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno_ret(errno, context)?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => return Err(SeccompError::NotifyUnsupported),
    })
}

fn compare(syscall: &str, arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    let index = arg.index();
    let invalid = || SeccompError::InvalidArgIndex {
        syscall: syscall.to_owned(),
        index,
    };
    if index > MAX_ARG_INDEX {
        return Err(invalid());
    }
    let index = u32::try_from(index).map_err(|_| invalid())?;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // (arg & value) == valueTwo
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The program inside a cache file, or `None` when the file is short,
/// has the wrong magic, a bad length or a digest mismatch.
fn decode_cache_file(bytes: &[u8]) -> Option<&[u8]> {
    let (header, program) = bytes.split_at_checked(CACHE_HEADER_LEN)?;
    let (magic, rest) = header.split_at(CACHE_MAGIC.len());
    let (len, digest) = rest.split_at(4);
    let len = usize::try_from(u32::from_le_bytes(len.try_into().ok()?)).ok()?;
    let valid = magic == CACHE_MAGIC
        && len == program.len()
        && len > 0
        && len.is_multiple_of(sys::BPF_INSTRUCTION_LEN)
        && Sha256::digest(program).as_slice() == digest;
    valid.then_some(program)
}

fn encode_cache_file(bpf: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(bpf.len()).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(CACHE_HEADER_LEN + bpf.len());
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(bpf));
    out.extend_from_slice(bpf);
    Ok(out)
}

/// Writes `path` atomically: temporary file in `dir`, fsync, rename, fsync
/// of `dir`. The temporary file is removed on failure.
fn write_cache_file(dir: &Path, path: &Path, bpf: &[u8]) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp: PathBuf = dir.join(format!(".tmp-{}-{nanos}.bpf", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(&encode_cache_file(bpf)?)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temporary file may not exist or already be renamed.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSyscallBuilder};
    use wharf_spec::{DEFAULT_CAPABILITIES, default_seccomp};

    fn errno_profile(rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
        let mut s = LinuxSeccomp::default();
        s.set_default_action(LinuxSeccompAction::ScmpActAllow);
        s.set_syscalls(Some(rules));
        s
    }

    fn errno_rule(name: &str, errno: u32) -> LinuxSyscall {
        LinuxSyscallBuilder::default()
            .names(vec![name.to_owned()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(errno)
            .build()
            .unwrap()
    }

    #[test]
    fn compiles_docker_default_profile() {
        let filter = compile(&default_seccomp(DEFAULT_CAPABILITIES)).unwrap();
        assert!(filter.instructions() > 100);
        assert!(filter.instructions() <= sys::BPF_MAX_INSTRUCTIONS);
        assert_eq!(filter.bpf().len() % 8, 0);
        assert_eq!(filter.flags(), 0);
        assert_eq!(filter.origin(), FilterOrigin::Compiled);
        // Deterministic: the same section gives the same bytes.
        let again = compile(&default_seccomp(DEFAULT_CAPABILITIES)).unwrap();
        assert_eq!(again.bpf(), filter.bpf());
        // A different capability set gives a different program.
        let admin = compile(&default_seccomp(&[oci_spec::runtime::Capability::SysAdmin])).unwrap();
        assert_ne!(admin.bpf(), filter.bpf());
    }

    /// Evaluates Docker's default profile with the BPF interpreter: the
    /// compiled program means what the profile says, per architecture.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn default_profile_verdicts_on_x86() {
        use enosys::interp::run;
        const ALLOW: u32 = 0x7fff_0000;
        const DENY: u32 = 0x0005_0001;
        const ENOSYS: u32 = 0x0005_0026;
        const X86_64: u32 = 0xC000_003E;
        const I386: u32 = 0x4000_0003;
        let nr = |name: &str, arch: ScmpArch| {
            u32::try_from(i32::from(
                ScmpSyscall::from_name_by_arch(name, arch).unwrap(),
            ))
            .unwrap()
        };
        let bpf = compile(&default_seccomp(DEFAULT_CAPABILITIES)).unwrap().bpf;
        let x64 = |name: &str, args: [u64; 6]| run(&bpf, X86_64, nr(name, ScmpArch::X8664), args);
        let none = [0; 6];
        let first = |a: u64| [a, 0, 0, 0, 0, 0];

        assert_eq!(x64("read", none), ALLOW);
        assert_eq!(x64("arch_prctl", none), ALLOW);
        assert_eq!(x64("chroot", none), ALLOW);
        assert_eq!(x64("kexec_load", none), DENY);
        assert_eq!(x64("mount", none), DENY);
        assert_eq!(x64("unshare", none), DENY);
        // clone: thread/vfork flags pass, namespace flags do not.
        assert_eq!(x64("clone", first(0x0001_0f00)), ALLOW);
        assert_eq!(x64("clone", first(0x0002_0000)), DENY);
        assert_eq!(x64("clone", first(0x4000_0000 | 0x100)), DENY);
        assert_eq!(x64("clone3", none), ENOSYS);
        assert_eq!(x64("personality", first(0xffff_ffff)), ALLOW);
        assert_eq!(x64("personality", first(0x0040_0000)), DENY);
        assert_eq!(x64("socket", first(2)), ALLOW);
        assert_eq!(x64("socket", first(40)), DENY);
        // A 64-bit argument is compared whole, not by its low half.
        assert_eq!(x64("socket", first((1 << 32) | 40)), ALLOW);
        // Newer than anything the profile names: ENOSYS; in range: EPERM.
        assert_eq!(run(&bpf, X86_64, 1000, none), ENOSYS);
        // x32 and i386 numbers are checked against their own tables.
        assert_eq!(run(&bpf, X86_64, nr("read", ScmpArch::X32), none), ALLOW);
        assert_eq!(run(&bpf, X86_64, 0x4000_0000 | 1000, none), ENOSYS);
        assert_eq!(run(&bpf, I386, nr("read", ScmpArch::X86), none), ALLOW);
        assert_eq!(run(&bpf, I386, nr("mount", ScmpArch::X86), none), DENY);
        assert_eq!(run(&bpf, I386, 2000, none), ENOSYS);
        // An architecture outside the filter is killed by libseccomp.
        assert_eq!(run(&bpf, 0xC000_00B7, 0, none), 0);

        // With CAP_SYS_ADMIN the namespace checks are gone.
        let admin = compile(&default_seccomp(&[oci_spec::runtime::Capability::SysAdmin])).unwrap();
        let admin_nr = |name: &str| nr(name, ScmpArch::X8664);
        assert_eq!(run(admin.bpf(), X86_64, admin_nr("mount"), none), ALLOW);
        assert_eq!(
            run(admin.bpf(), X86_64, admin_nr("clone"), first(0x2_0000)),
            ALLOW
        );
        assert_eq!(run(admin.bpf(), X86_64, admin_nr("clone3"), none), ALLOW);
    }

    /// The binary-tree program gives the linear one's verdict for every
    /// syscall number of the three x86 ABIs (and past them), with the
    /// argument patterns the profile tests, and takes far fewer steps.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn binary_tree_means_the_same_as_linear_and_is_shorter() {
        use enosys::interp::run_counted;
        const X86_64: u32 = 0xC000_003E;
        const I386: u32 = 0x4000_0003;
        for caps in [
            DEFAULT_CAPABILITIES,
            &[oci_spec::runtime::Capability::SysAdmin][..],
        ] {
            let profile = default_seccomp(caps);
            let tree = compile_with(&profile, Layout::BinaryTree).unwrap();
            let linear = compile_with(&profile, Layout::Linear).unwrap();
            assert_ne!(tree.bpf(), linear.bpf(), "libseccomp built no tree");
            let args: [[u64; 6]; 6] = [
                [0; 6],
                [0x0001_0f00, 0, 0, 0, 0, 0],
                [0x0002_0000, 0, 0, 0, 0, 0],
                [0xffff_ffff, 0, 0, 0, 0, 0],
                [40, 0, 0, 0, 0, 0],
                [(1 << 32) | 40, 2, 3, 0, 0, 0],
            ];
            let (mut tree_steps, mut linear_steps, mut n) = (0usize, 0usize, 0usize);
            for (arch, base) in [(X86_64, 0u32), (X86_64, 0x4000_0000), (I386, 0)] {
                for nr in 0..600u32 {
                    for a in args {
                        let (t, ts) = run_counted(tree.bpf(), arch, base | nr, a);
                        let (l, ls) = run_counted(linear.bpf(), arch, base | nr, a);
                        assert_eq!(t, l, "arch {arch:#x} nr {nr:#x} args {a:?}");
                        tree_steps += ts;
                        linear_steps += ls;
                        n += 1;
                    }
                }
            }
            let (tree_avg, linear_avg) = (tree_steps / n, linear_steps / n);
            assert!(
                tree_avg * 4 < linear_avg,
                "average steps: tree {tree_avg}, linear {linear_avg}"
            );
        }
    }

    #[test]
    fn allow_by_default_profiles_get_no_enosys_prologue() {
        let f = compile(&errno_profile(vec![errno_rule("getcwd", 42)])).unwrap();
        assert!(f.bpf().starts_with(&LIBSECCOMP_PROGRAM_START));
        let native = u32::try_from(i32::from(ScmpSyscall::from_name("getcwd").unwrap())).unwrap();
        let arch = enosys_test_native_audit_arch();
        assert_eq!(
            enosys::interp::run(f.bpf(), arch, native, [0; 6]),
            0x0005_0000 | 42
        );
        assert_eq!(
            enosys::interp::run(f.bpf(), arch, 1000, [0; 6]),
            0x7fff_0000
        );
    }

    fn enosys_test_native_audit_arch() -> u32 {
        if cfg!(target_arch = "aarch64") {
            0xC000_00B7
        } else {
            0xC000_003E
        }
    }

    #[test]
    fn notify_is_refused() {
        let mut s = errno_profile(vec![]);
        s.set_listener_path(Some("/run/agent.sock".into()));
        let err = compile(&s).unwrap_err();
        assert!(matches!(err, SeccompError::NotifyUnsupported));
        assert_eq!(
            err.to_string(),
            "seccomp notify (listenerPath) is not supported by wharf-runtime"
        );
        let mut rule = errno_rule("getcwd", 1);
        rule.set_action(LinuxSeccompAction::ScmpActNotify);
        assert!(matches!(
            compile(&errno_profile(vec![rule])),
            Err(SeccompError::NotifyUnsupported)
        ));
    }

    #[test]
    fn flags_map_to_kernel_bits() {
        let mut s = errno_profile(vec![]);
        s.set_flags(Some(vec![
            LinuxSeccompFilterFlag::SeccompFilterFlagLog,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        ]));
        assert_eq!(kernel_flags(&s).unwrap(), 2 | 4);
        s.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagTsync]));
        assert_eq!(compile(&s).unwrap().flags(), 1);
    }

    #[test]
    fn unknown_syscalls_are_skipped_and_bad_values_rejected() {
        let plain = compile(&errno_profile(vec![errno_rule("getcwd", 42)])).unwrap();
        let mut with_unknown = errno_rule("getcwd", 42);
        with_unknown.set_names(vec!["getcwd".into(), "no_such_syscall_xyz".into()]);
        let skipped = compile(&errno_profile(vec![with_unknown])).unwrap();
        assert_eq!(plain.bpf(), skipped.bpf());

        let err = compile(&errno_profile(vec![errno_rule("getcwd", 70_000)])).unwrap_err();
        assert!(
            matches!(err, SeccompError::InvalidErrno { value: 70_000, .. }),
            "{err}"
        );

        let mut bad_index = errno_rule("getcwd", 42);
        bad_index.set_args(Some(vec![
            LinuxSeccompArgBuilder::default()
                .index(6usize)
                .value(1u64)
                .build()
                .unwrap(),
        ]));
        let err = compile(&errno_profile(vec![bad_index])).unwrap_err();
        assert!(
            matches!(err, SeccompError::InvalidArgIndex { index: 6, .. }),
            "{err}"
        );
    }

    #[test]
    fn repeated_index_detection() {
        let arg = |index: usize| {
            LinuxSeccompArgBuilder::default()
                .index(index)
                .build()
                .unwrap()
        };
        assert!(!repeats_an_index(&[arg(0), arg(1)]));
        assert!(repeats_an_index(&[arg(1), arg(0), arg(1)]));
    }

    #[test]
    fn cache_key_depends_on_the_section() {
        let a = cache_key(&default_seccomp(DEFAULT_CAPABILITIES)).unwrap();
        let b = cache_key(&default_seccomp(&[])).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(
            a,
            cache_key(&default_seccomp(DEFAULT_CAPABILITIES)).unwrap()
        );
    }

    #[test]
    fn cache_file_encoding_rejects_damage() {
        let bpf: Vec<u8> = (0..64).collect();
        let file = encode_cache_file(&bpf).unwrap();
        assert_eq!(decode_cache_file(&file), Some(&bpf[..]));
        assert_eq!(decode_cache_file(&file[..file.len() - 8]), None);
        assert_eq!(decode_cache_file(&file[..10]), None);
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode_cache_file(&flipped), None);
        let mut magic = file;
        magic[0] = b'X';
        assert_eq!(decode_cache_file(&magic), None);
    }
}
