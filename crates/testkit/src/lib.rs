//! `wharf-testkit`: shared helpers for wharf's tests, used only as a
//! dev-dependency.
//!
//! - [`require_root`]: root tests fail loudly instead of skipping.
//! - [`probe_path`], [`probe_json`], [`probe_lines`]: the static probe that
//!   runs inside containers and reports what it sees (`tests/probe`).
//! - [`unique_id`]: collision-free names for parallel tests.
//! - [`Bundle`]: a temporary OCI bundle (busybox rootfs + probe + config).
//! - [`Cleanup`]: a drop guard for mounts, cgroups, processes, directories
//!   and runtime containers.
//! - [`Runtime`]: drives a runc-compatible binary with a private `--root`
//!   and time limits.
//!
//! Environment: `$WHARF_PROBE` (prebuilt probe), `$WHARF_TEST_TMP` (where
//! bundles and state dirs go, default `/tmp`), `$WHARF_BUSYBOX` (static
//! busybox, default `/bin/busybox`).
#![forbid(unsafe_code)]

mod bundle;
mod cleanup;
mod command;
mod ids;
mod probe;
mod runtime;
mod tmux;

pub use bundle::{Bundle, BundleError, TEST_CGROUP_PARENT, busybox_path, test_tmp};
pub use cleanup::{
    Cleanup, CleanupError, CleanupFailures, cgroup_mounts, delete_container, kill_pid,
    remove_cgroup, unmount_once, unmount_under,
};
pub use command::{Capture, CommandError, DEFAULT_TIMEOUT, describe_command, run_bounded};
pub use ids::{MAX_ID_LEN, unique_id};
pub use probe::{
    ProbeError, describe, is_static_elf, probe_json, probe_lines, probe_path, try_probe_path,
    workspace_root,
};
pub use runtime::{Runtime, RuntimeError};
pub use tmux::{TMUX_WAIT, Tmux};

/// Fails the calling test, loudly, unless it runs as root.
///
/// wharf's runtime tests need real namespaces, mounts and cgroups. A test that
/// silently passes without root would hide regressions, so this panics instead.
pub fn require_root() {
    // /proc/self/status is readable without unsafe and tells the effective uid.
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert_eq!(
        euid, "0",
        "this test needs root (euid 0); run the suite as root: it never skips"
    );
}
