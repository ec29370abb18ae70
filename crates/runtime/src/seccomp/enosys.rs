//! `ENOSYS` for syscalls newer than the profile.
//!
//! A deny-by-default profile written before a syscall existed makes that
//! syscall fail with the profile's errno (`EPERM` for Docker's). libc
//! wrappers probe new syscalls (`clone3`, `fchmodat2`, `openat2` ...) and
//! fall back to older ones only on `ENOSYS`, so `EPERM` breaks them. Like
//! runc, wharf puts a short BPF prologue before libseccomp's program: per
//! architecture, a syscall number above the largest one the profile names
//! returns `ENOSYS`; everything else (and any architecture the prologue does
//! not know) continues into the libseccomp program unchanged. Classic BPF
//! jumps are relative and forward-only, so prepending instructions leaves
//! libseccomp's program valid.
//!
//! Only x86-64 (with x32 and i386) and AArch64 (with Arm) are handled.

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::LinuxSyscall;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// `SECCOMP_RET_ERRNO | ENOSYS`.
const RET_ENOSYS: u32 = 0x0005_0000 | 38;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive as x86-64 with this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

impl Insn {
    const fn stmt(code: u16, k: u32) -> Self {
        Self {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
}

/// Where a jump goes before offsets are known.
#[derive(Debug, Clone, Copy)]
enum Target {
    Next,
    Enosys,
    Main,
    /// Start of the check block for the architecture at this index.
    Arch(usize),
    /// Skip this many following instructions.
    Skip(u8),
}

/// Largest syscall number (as the kernel sees it) the rules name on `arch`.
fn max_syscall(rules: &[LinuxSyscall], arch: ScmpArch) -> Option<u32> {
    rules
        .iter()
        .flat_map(|r| r.names())
        .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
        .filter_map(|s| u32::try_from(i32::from(s)).ok())
        .max()
}

/// One prologue block per kernel audit architecture.
struct ArchCheck {
    audit_arch: u32,
    max: u32,
    /// x86-64 only: the x32 maximum, when x32 is in the filter.
    x32_max: Option<u32>,
    /// x86-64 only: whether x32 numbers must be passed through.
    has_x32_range: bool,
}

/// The prologue for a filter covering `arches`, or `None` when no
/// architecture it knows is present or the rules name no syscall.
pub(super) fn prologue(arches: &[ScmpArch], rules: &[LinuxSyscall]) -> Option<Vec<u8>> {
    let mut checks = Vec::new();
    let has = |a: ScmpArch| arches.contains(&a);
    if has(ScmpArch::X8664) || has(ScmpArch::X32) {
        let x32_max = if has(ScmpArch::X32) {
            max_syscall(rules, ScmpArch::X32).map(|m| m | X32_SYSCALL_BIT)
        } else {
            None
        };
        let max = if has(ScmpArch::X8664) {
            max_syscall(rules, ScmpArch::X8664)
        } else {
            None
        };
        if max.is_some() || x32_max.is_some() {
            checks.push(ArchCheck {
                audit_arch: AUDIT_ARCH_X86_64,
                // Without x86-64 rules, every plain x86-64 number passes.
                max: max.unwrap_or(u32::MAX),
                x32_max,
                has_x32_range: true,
            });
        }
    }
    for (arch, audit_arch) in [
        (ScmpArch::X86, AUDIT_ARCH_I386),
        (ScmpArch::Aarch64, AUDIT_ARCH_AARCH64),
        (ScmpArch::Arm, AUDIT_ARCH_ARM),
    ] {
        if has(arch)
            && let Some(max) = max_syscall(rules, arch)
        {
            checks.push(ArchCheck {
                audit_arch,
                max,
                x32_max: None,
                has_x32_range: false,
            });
        }
    }
    if checks.is_empty() {
        return None;
    }

    // 1. Symbolic program.
    let mut prog: Vec<(Insn, Target, Target)> = Vec::new();
    let mut arch_start = Vec::new();
    let plain = |i: Insn| (i, Target::Next, Target::Next);
    prog.push(plain(Insn::stmt(BPF_LD_W_ABS, DATA_ARCH)));
    for (i, check) in checks.iter().enumerate() {
        arch_start.push(prog.len());
        let next_arch = if i + 1 < checks.len() {
            Target::Arch(i + 1)
        } else {
            Target::Main
        };
        prog.push((
            Insn::stmt(BPF_JMP_JEQ_K, check.audit_arch),
            Target::Next,
            next_arch,
        ));
        prog.push(plain(Insn::stmt(BPF_LD_W_ABS, DATA_NR)));
        if check.has_x32_range {
            // nr >= X32 bit: an x32 call, checked against the x32 maximum
            // (or passed on when x32 is not in the filter).
            prog.push((
                Insn::stmt(BPF_JMP_JGE_K, X32_SYSCALL_BIT),
                Target::Next,
                Target::Skip(1),
            ));
            match check.x32_max {
                Some(max) => {
                    prog.push((Insn::stmt(BPF_JMP_JGT_K, max), Target::Enosys, Target::Main))
                }
                None => prog.push((Insn::stmt(BPF_JMP_JA, 0), Target::Main, Target::Main)),
            }
        }
        prog.push((
            Insn::stmt(BPF_JMP_JGT_K, check.max),
            Target::Enosys,
            Target::Main,
        ));
    }
    let enosys = prog.len();
    prog.push(plain(Insn::stmt(BPF_RET_K, RET_ENOSYS)));
    let main = prog.len();

    // 2. Resolve targets to relative offsets (all forward, all < 256).
    let resolve = |at: usize, t: Target| -> u8 {
        let dest = match t {
            Target::Next => at + 1,
            Target::Enosys => enosys,
            Target::Main => main,
            Target::Arch(i) => arch_start[i],
            Target::Skip(n) => at + 1 + usize::from(n),
        };
        u8::try_from(dest - at - 1).unwrap_or(u8::MAX)
    };
    let mut out = Vec::with_capacity(prog.len() * 8);
    for (at, (mut insn, jt, jf)) in prog.into_iter().enumerate() {
        if insn.code == BPF_JMP_JA {
            // Unconditional jumps carry their offset in k.
            insn.k = u32::from(resolve(at, jt));
        } else if insn.code & 0x07 == 0x05 {
            insn.jt = resolve(at, jt);
            insn.jf = resolve(at, jf);
        }
        out.extend_from_slice(&insn.code.to_ne_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_ne_bytes());
    }
    Some(out)
}

#[cfg(test)]
pub(super) mod interp {
    //! A classic-BPF interpreter for the instructions libseccomp and the
    //! prologue emit, so tests can evaluate a program on chosen inputs
    //! without loading it.

    /// Runs `bpf` on a `seccomp_data` built from the arguments and returns
    /// the filter's verdict.
    pub fn run(bpf: &[u8], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        run_counted(bpf, arch, nr, args).0
    }

    /// [`run`], and how many instructions the verdict took.
    pub fn run_counted(bpf: &[u8], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
        let mut steps = 0usize;
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let word = |off: u32| {
            let o = usize::try_from(off).unwrap();
            u32::from_ne_bytes(data[o..o + 4].try_into().unwrap())
        };
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0usize;
        loop {
            steps += 1;
            let i = &bpf[pc * 8..pc * 8 + 8];
            let code = u16::from_ne_bytes([i[0], i[1]]);
            let (jt, jf) = (usize::from(i[2]), usize::from(i[3]));
            let k = u32::from_ne_bytes([i[4], i[5], i[6], i[7]]);
            let m = usize::try_from(k).unwrap_or(0) % 16;
            pc += 1;
            let cond = |c: bool| if c { jt } else { jf };
            match code {
                0x20 => a = word(k),
                0x00 => a = k,
                0x01 => x = k,
                0x60 => a = mem[m],
                0x61 => x = mem[m],
                0x02 => mem[m] = a,
                0x03 => mem[m] = x,
                0x07 => x = a,
                0x87 => a = x,
                0x54 => a &= k,
                0x44 => a |= k,
                0x05 => pc += usize::try_from(k).unwrap(),
                0x15 => pc += cond(a == k),
                0x25 => pc += cond(a > k),
                0x35 => pc += cond(a >= k),
                0x45 => pc += cond(a & k != 0),
                0x1d => pc += cond(a == x),
                0x2d => pc += cond(a > x),
                0x3d => pc += cond(a >= x),
                0x06 => return (k, steps),
                0x16 => return (a, steps),
                other => panic!("bpf opcode {other:#x} at {} not interpreted", pc - 1),
            }
        }
    }
}
