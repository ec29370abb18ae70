//! `--security-opt seccomp=...` with the real docker CLI against a
//! temporary wharfd: the CLI reads the profile file and sends its JSON; the
//! daemon converts it (Docker's format) into the container's OCI seccomp
//! section. A profile denying `mkdir` makes busybox's `mkdir` fail with
//! EPERM where the default profile lets it work; bad profiles are refused at
//! create and leave nothing behind; `seccomp=unconfined` disables seccomp.

mod common;

use common::Daemon;

/// Writes `body` as a profile file in the daemon's scratch directory.
fn profile(d: &Daemon, name: &str, body: &str) -> String {
    let p = d.dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

/// `Seccomp` from the container's `/proc/self/status` (0 off, 2 filter).
fn seccomp_mode(d: &Daemon, opts: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "grep", "^Seccomp:", "/proc/self/status"]);
    d.ok(&args)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn custom_profile_denies_mkdir() {
    let d = Daemon::start();
    let deny = profile(
        &d,
        "deny-mkdir.json",
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "comment": "no new directories"},
                {"name": "rmdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        }"#,
    );
    let opt = format!("seccomp={deny}");

    // The default profile allows mkdir.
    d.ok(&["run", "--rm", "busybox", "mkdir", "/x"]);

    let out = d.docker(&[
        "run",
        "--name",
        "denied",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    // The profile's JSON is what inspect reports, as with Docker.
    let sec = d.ok(&[
        "inspect",
        "--format",
        "{{json .HostConfig.SecurityOpt}}",
        "denied",
    ]);
    assert!(sec.contains("SCMP_ACT_ERRNO"), "{sec}");
    // Only the listed syscalls are affected, and the filter is installed.
    d.ok(&["rm", "denied"]);
    d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "touch",
        "/y",
    ]);
    assert_eq!(seccomp_mode(&d, &["--security-opt", &opt]), "2");

    // includes.caps: rmdir is denied (EACCES) only with CAP_SYS_ADMIN.
    let rmdir = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--security-opt", &opt];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "busybox", "rmdir", "/tmp"]);
        d.docker(&args)
    };
    let out = rmdir(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = rmdir(&["--cap-add", "SYS_ADMIN"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Permission denied"), "{stderr}");

    // seccomp=unconfined disables seccomp; builtin is the default. (That
    // --privileged disables it too is checked by the engine's unit tests:
    // privileged containers cannot start on hosts whose bounding set lacks
    // capabilities, as this test host's does.)
    assert_eq!(
        seccomp_mode(&d, &["--security-opt", "seccomp=unconfined"]),
        "0"
    );
    assert_eq!(
        seccomp_mode(&d, &["--security-opt", "seccomp=builtin"]),
        "2"
    );
    assert_eq!(seccomp_mode(&d, &[]), "2");
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn bad_profiles_are_refused_at_create() {
    let d = Daemon::start();

    // Not JSON: the CLI itself refuses to send it.
    let broken = profile(&d, "broken.json", r#"{"defaultAction": "SCMP_ACT_ALLOW", "#);
    let (_, err) = d.fails(&[
        "create",
        "--name",
        "broken",
        "--security-opt",
        &format!("seccomp={broken}"),
        "busybox",
    ]);
    assert!(err.contains("seccomp profile"), "{err}");

    // Valid JSON with an unknown action: the daemon answers 400 at create.
    let unknown = profile(
        &d,
        "unknown.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]}"#,
    );
    let (_, err) = d.fails(&[
        "run",
        "--name",
        "unknown",
        "--security-opt",
        &format!("seccomp={unknown}"),
        "busybox",
        "true",
    ]);
    assert!(
        err.contains("unknown seccomp action \"SCMP_ACT_EXPLODE\" in the rule for mkdir"),
        "{err}"
    );

    // The wrong shape for a field, through the API directly.
    let body = serde_json::json!({
        "Image": "busybox",
        "HostConfig": {"SecurityOpt": ["seccomp={\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": {}}"]}
    })
    .to_string();
    let (status, _, resp) = d.http("POST", "/v1.50/containers/create?name=shape", Some(&body));
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("Decoding seccomp profile failed"), "{resp}");

    // Nothing was created: no container, record or writable layer.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let records = std::fs::read_dir(d.data_root().join("containers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(records, 0);
    let snaps =
        wharf_image::snapshot::open_snapshotter(&d.data_root().join("snapshots"), None).unwrap();
    let layers: Vec<_> = snaps
        .list()
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == wharf_image::snapshot::SnapshotKind::Container)
        .map(|s| s.id)
        .collect();
    assert!(layers.is_empty(), "writable layers left: {layers:?}");
    // The names are free again.
    d.ok(&["create", "--name", "unknown", "busybox"]);
}

/// A start that fails (here: the command does not exist, under a custom
/// profile) ends `docker run` at once with the error; with `--rm` the
/// container is removed, as Docker does. (Found while writing these tests:
/// `docker run --rm` waited forever for a removal that never came.)
#[test]
fn failed_start_ends_run_and_removes_rm_containers() {
    let d = Daemon::start();
    let deny = profile(
        &d,
        "deny-mkdir.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let opt = format!("seccomp={deny}");
    for rm in [true, false] {
        let mut args = vec!["run", "--security-opt", &opt];
        if rm {
            args.push("--rm");
        } else {
            args.extend_from_slice(&["--name", "kept"]);
        }
        args.extend_from_slice(&["busybox", "no-such-command"]);
        let t = std::time::Instant::now();
        let (code, err) = d.fails(&args);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "docker run --rm={rm} took {:?}",
            t.elapsed()
        );
        assert_eq!(code, 127, "{err}");
        assert!(err.contains("executable file not found"), "{err}");
    }
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "kept created"
    );
    let error = d.ok(&["inspect", "--format", "{{.State.Error}}", "kept"]);
    assert!(error.contains("executable file not found"), "{error}");
}

#[test]
fn privileged_gets_every_capability_the_daemon_holds_and_no_seccomp() {
    let d = Daemon::start();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_owned();
    let out = d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "grep",
        "-E",
        "^(CapEff|CapBnd|Seccomp):",
        "/proc/self/status",
    ]);
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(field("CapEff:"), bnd, "{out}");
    assert_eq!(field("CapBnd:"), bnd, "{out}");
    assert_eq!(field("Seccomp:"), "0", "{out}");
    // Not privileged: Docker's default set only.
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "^CapEff:",
        "/proc/self/status",
    ]);
    assert!(out.ends_with("00000000a80425fb"), "{out}");
}
