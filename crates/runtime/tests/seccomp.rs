//! Seccomp filters compiled by `wharf_runtime::seccomp`, enforced by the
//! real kernel.
//!
//! A filter cannot be removed once loaded, so every enforcement scenario
//! runs in a fresh child process: the parent test re-executes this test
//! binary with `--exact child::child_mode --ignored`, naming the scenario in
//! `$WHARF_SECCOMP_SCENARIO`. The child compiles and loads a filter on its
//! test thread, makes the syscalls under test on that same thread, and
//! prints one `RESULT <text>` line that the parent checks. The children run
//! as root (no `no_new_privs` needed) and create nothing outside their
//! own process.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::Instant;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use wharf_runtime::seccomp::{CompiledFilter, FilterOrigin, compile};
use wharf_spec::{DEFAULT_CAPABILITIES, default_seccomp};

const SCENARIO_ENV: &str = "WHARF_SECCOMP_SCENARIO";
const SIGSYS: i32 = 31;

// ---------------------------------------------------------------- helpers

fn rule(names: &[&str], action: LinuxSeccompAction, errno: Option<u32>) -> LinuxSyscall {
    let mut r = LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .action(action)
        .build()
        .unwrap();
    r.set_errno_ret(errno);
    r
}

fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value)
        .build()
        .unwrap()
}

/// A profile that allows everything except `rules`.
fn allow_all_but(rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActAllow);
    s.set_syscalls(Some(rules));
    s
}

fn load(section: &LinuxSeccomp) {
    compile(section).unwrap().load().unwrap();
}

fn errno_of<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(err) => err
            .raw_os_error()
            .map_or_else(|| err.to_string(), |e| e.to_string()),
    }
}

fn run_child(scenario: &str) -> Output {
    wharf_testkit::require_root();
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child::child_mode",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_ENV, scenario)
        .output()
        .unwrap()
}

/// Runs `scenario` in a child and returns its `RESULT` line.
fn child_result(scenario: &str) -> String {
    let out = run_child(scenario);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {scenario} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {scenario} printed no RESULT line:\n{stdout}"))
        .to_owned()
}

// ------------------------------------------------------------ child half

#[cfg(test)]
mod child {
    use super::*;

    /// The child half of the enforcement tests: runs the scenario named in
    /// `$WHARF_SECCOMP_SCENARIO` (fails when run without one).
    #[test]
    #[ignore = "child process of the seccomp enforcement tests, started by them"]
    fn child_mode() {
        let scenario = std::env::var(SCENARIO_ENV).expect("WHARF_SECCOMP_SCENARIO is not set");
        let result = match scenario.as_str() {
            "errno-ret" => {
                load(&allow_all_but(vec![rule(
                    &["getcwd"],
                    LinuxSeccompAction::ScmpActErrno,
                    Some(42),
                )]));
                format!(
                    "getcwd={} pid-ok={}",
                    errno_of(std::env::current_dir()),
                    std::process::id() > 0
                )
            }
            "docker-default" | "docker-default-errno" => {
                // Docker's profile for the default capabilities minus
                // CAP_SYS_CHROOT, so chroot is not allowed.
                let caps: Vec<_> = DEFAULT_CAPABILITIES
                    .iter()
                    .copied()
                    .filter(|c| *c != oci_spec::runtime::Capability::SysChroot)
                    .collect();
                let mut profile = default_seccomp(&caps);
                if scenario == "docker-default-errno" {
                    profile.set_default_errno_ret(Some(44));
                }
                load(&profile);
                // glibc's posix_spawn tries clone3 first: the profile's ENOSYS
                // for clone3 must make it fall back to clone, so this works.
                let spawn = Command::new("/bin/true")
                    .status()
                    .map(|s| s.success().to_string())
                    .unwrap_or_else(|e| format!("error {e}"));
                format!(
                    "chroot={} getcwd={} spawn={spawn}",
                    errno_of(std::os::unix::fs::chroot("/")),
                    errno_of(std::env::current_dir()),
                )
            }
            "arg-rules" => {
                let open = || File::options().write(true).open("/dev/null").unwrap();
                let (mut a, mut b, mut c, mut d) = (open(), open(), open(), open());
                let fd = |f: &File| u64::try_from(f.as_raw_fd()).unwrap();
                use LinuxSeccompOperator::*;
                // Same index twice: alternatives (a or b), errno 45.
                let mut either = rule(&["write"], LinuxSeccompAction::ScmpActErrno, Some(45));
                either.set_args(Some(vec![
                    arg(0, ScmpCmpEq, fd(&a)),
                    arg(0, ScmpCmpEq, fd(&b)),
                ]));
                // Different indexes: all must hold (fd c and count 3), errno 46.
                let mut both = rule(&["write"], LinuxSeccompAction::ScmpActErrno, Some(46));
                both.set_args(Some(vec![arg(0, ScmpCmpEq, fd(&c)), arg(2, ScmpCmpEq, 3)]));
                load(&allow_all_but(vec![either, both]));
                format!(
                    "a={} b={} c3={} c4={} d={}",
                    errno_of(a.write(b"xyz")),
                    errno_of(b.write(b"xyz")),
                    errno_of(c.write(b"xyz")),
                    errno_of(c.write(b"wxyz")),
                    errno_of(d.write(b"xyz")),
                )
            }
            "masked" => {
                let mut f = File::options().write(true).open("/dev/null").unwrap();
                let fd = u64::try_from(f.as_raw_fd()).unwrap();
                // (count & 0xf0) == 0x10: counts 16..=31 fail with errno 48.
                let mut r = rule(&["write"], LinuxSeccompAction::ScmpActErrno, Some(48));
                let masked = LinuxSeccompArgBuilder::default()
                    .index(2usize)
                    .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                    .value(0xf0u64)
                    .value_two(0x10u64)
                    .build()
                    .unwrap();
                r.set_args(Some(vec![
                    arg(0, LinuxSeccompOperator::ScmpCmpEq, fd),
                    masked,
                ]));
                load(&allow_all_but(vec![r]));
                format!(
                    "w15={} w16={} w31={} w32={}",
                    errno_of(f.write(&[0; 15])),
                    errno_of(f.write(&[0; 16])),
                    errno_of(f.write(&[0; 31])),
                    errno_of(f.write(&[0; 32])),
                )
            }
            "kill-process" => {
                load(&allow_all_but(vec![rule(
                    &["getcwd"],
                    LinuxSeccompAction::ScmpActKillProcess,
                    None,
                )]));
                let _ = std::env::current_dir();
                "survived".to_owned()
            }
            other => panic!("unknown scenario {other:?}"),
        };
        // libtest has already printed "test child::child_mode ... " on this line.
        println!("\nRESULT {result}");
    }
}

// ----------------------------------------------------------- parent half

#[cfg(test)]
mod enforcement {
    use super::*;

    #[test]
    fn errno_ret_is_returned_by_the_kernel() {
        assert_eq!(child_result("errno-ret"), "getcwd=42 pid-ok=true");
    }

    #[test]
    fn docker_default_profile_denies_with_eperm_and_keeps_spawn_working() {
        assert_eq!(
            child_result("docker-default"),
            "chroot=1 getcwd=ok spawn=true"
        );
    }

    #[test]
    fn default_errno_ret_is_used_for_unlisted_syscalls() {
        assert_eq!(
            child_result("docker-default-errno"),
            "chroot=44 getcwd=ok spawn=true"
        );
    }

    #[test]
    fn argument_rules_and_or_like_runc() {
        assert_eq!(child_result("arg-rules"), "a=45 b=45 c3=46 c4=ok d=ok");
    }

    #[test]
    fn masked_equal_compares_under_the_mask() {
        assert_eq!(child_result("masked"), "w15=ok w16=48 w31=48 w32=ok");
    }

    #[test]
    fn kill_process_action_kills_with_sigsys() {
        let out = run_child("kill-process");
        assert_eq!(
            out.status.signal(),
            Some(SIGSYS),
            "status {:?}, stdout:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("RESULT survived"));
    }
}

#[cfg(test)]
mod cache {
    use super::*;

    #[test]
    fn cache_returns_identical_bytes_without_recompiling() {
        let dir = tempfile::tempdir().unwrap();
        let profile = default_seccomp(DEFAULT_CAPABILITIES);

        let started = Instant::now();
        let fresh = CompiledFilter::load_or_compile(&profile, Some(dir.path())).unwrap();
        let compile_time = started.elapsed();
        assert_eq!(fresh.origin(), FilterOrigin::Compiled);

        let started = Instant::now();
        let cached = CompiledFilter::load_or_compile(&profile, Some(dir.path())).unwrap();
        let cache_time = started.elapsed();
        assert_eq!(cached.origin(), FilterOrigin::Cache);
        assert_eq!(cached.bpf(), fresh.bpf());
        assert_eq!(cached.flags(), fresh.flags());
        println!(
            "default profile: {} instructions; compile+store {compile_time:?}, cache load {cache_time:?}",
            fresh.instructions()
        );

        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            files.len(),
            1,
            "one cache file, no temporary left: {files:?}"
        );

        // A damaged file is ignored, recompiled and rewritten.
        let path = &files[0];
        let mut bytes = std::fs::read(path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(path, &bytes).unwrap();
        let healed = CompiledFilter::load_or_compile(&profile, Some(dir.path())).unwrap();
        assert_eq!(healed.origin(), FilterOrigin::Compiled);
        assert_eq!(healed.bpf(), fresh.bpf());
        // A truncated one too.
        std::fs::write(path, &bytes[..20]).unwrap();
        let healed = CompiledFilter::load_or_compile(&profile, Some(dir.path())).unwrap();
        assert_eq!(healed.origin(), FilterOrigin::Compiled);
        let again = CompiledFilter::load_or_compile(&profile, Some(dir.path())).unwrap();
        assert_eq!(again.origin(), FilterOrigin::Cache);
        assert_eq!(again.bpf(), fresh.bpf());

        // Another profile gets its own entry.
        let other =
            CompiledFilter::load_or_compile(&default_seccomp(&[]), Some(dir.path())).unwrap();
        assert_eq!(other.origin(), FilterOrigin::Compiled);
        assert_ne!(other.bpf(), fresh.bpf());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn cache_directory_is_created_and_unwritable_cache_still_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let profile = allow_all_but(vec![rule(
            &["getcwd"],
            LinuxSeccompAction::ScmpActErrno,
            Some(9),
        )]);
        let f = CompiledFilter::load_or_compile(&profile, Some(&nested)).unwrap();
        assert_eq!(f.origin(), FilterOrigin::Compiled);
        assert_eq!(std::fs::read_dir(&nested).unwrap().count(), 1);
        // A cache "directory" that is a regular file: the cache is skipped.
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let f2 = CompiledFilter::load_or_compile(&profile, Some(&file)).unwrap();
        assert_eq!(f2.bpf(), f.bpf());
    }
}
