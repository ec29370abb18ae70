//! `wharf-testkit`: shared helpers for wharf's tests (root guard, bundles,
//! cleanup). Used only as a dev-dependency.
#![forbid(unsafe_code)]

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
    assert_eq!(euid, "0", "this test needs root (euid 0); run the suite as root: it never skips");
}
