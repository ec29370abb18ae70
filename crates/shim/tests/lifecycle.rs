//! The shim around real containers: create/start/wait, logs, kill, OOM,
//! surviving its client, exit.json, delete.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)] // each test file uses part of the fixture
mod common;

use std::time::Duration;

use common::{Fixture, MIB, alive, eventually};
use wharf_shim_api::time::parse_rfc3339;
use wharf_shim_api::{ErrorKind, ShimClient, ShimHandle, Status, layout};

#[tokio::test]
async fn start_and_wait_returns_the_exit_code() {
    let mut f = Fixture::new("shexit");
    f.bundle.probe_args(&["exit", "7"]);
    let shim = f.spawn().await;
    let c = shim.client();
    let st = c.state().await.unwrap();
    assert_eq!(st.status, Status::Created);
    assert!(st.pid > 0);
    assert_eq!(st.shim_pid, shim.pid());
    // The start answers with the state (the exit is not reaped before the
    // answer is sent).
    let started = c.start().await.unwrap().expect("state with the start");
    assert_eq!(started.status, Status::Running);
    assert_eq!(started.pid, st.pid);
    assert!(parse_rfc3339(started.started_at.as_deref().unwrap()).is_some());
    let exit = c.wait().await.unwrap();
    assert_eq!(exit.exit_code, 7);
    assert!(!exit.oom_killed);
    assert!(
        parse_rfc3339(&exit.exited_at).is_some(),
        "{}",
        exit.exited_at
    );
    let st = c.state().await.unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit_code, Some(7));
    assert!(st.started_at.is_some() && st.finished_at.is_some());
    // exit.json on disk, same content.
    let file = layout::read_exit(&f.cfg.state_dir).unwrap().unwrap();
    assert_eq!(file, exit);
    // A second start is a conflict; waiting again answers at once.
    assert_eq!(c.start().await.unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(c.wait().await.unwrap(), exit);
    delete_and_check_gone(&f, &shim).await;
}

async fn delete_and_check_gone(f: &Fixture, shim: &ShimHandle) {
    let pid = shim.pid();
    shim.client().delete(false).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the shim did not exit after delete"
    );
    assert!(!f.runtime_state().exists(), "runtime state left behind");
    assert!(!layout::socket_path(&f.cfg.state_dir).exists());
    assert!(!layout::pid_path(&f.cfg.state_dir).exists());
    assert!(layout::exit_path(&f.cfg.state_dir).exists());
    let cg = format!("/sys/fs/cgroup/memory{}", f.bundle.cgroups_path());
    assert!(
        !std::path::Path::new(&cg).exists(),
        "cgroup {cg} left behind"
    );
    let err = shim.client().state().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
}

#[tokio::test]
async fn output_lands_in_the_json_log_with_stream_tags() {
    let mut f = Fixture::new("shlog");
    f.bundle.args(&[
        "/bin/sh",
        "-c",
        "echo out-1; echo err-1 >&2; printf 'out-2\\nno-newline'; echo err-2 >&2",
    ]);
    let shim = f.spawn().await;
    shim.client().start().await.unwrap();
    assert_eq!(shim.client().wait().await.unwrap().exit_code, 0);
    let entries = f.log_entries();
    let of = |stream: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["stream"] == stream)
            .map(|e| e["log"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(of("stdout"), ["out-1\n", "out-2\n", "no-newline"]);
    assert_eq!(of("stderr"), ["err-1\n", "err-2\n"]);
    let mut last = None;
    for e in &entries {
        assert_eq!(e.as_object().unwrap().len(), 3, "{e}");
        let t = e["time"].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() == 30, "not RFC3339Nano: {t}");
        let parsed = parse_rfc3339(t).unwrap_or_else(|| panic!("bad time {t}"));
        // Entries are stamped when written: the file is in time order.
        assert!(last.is_none_or(|prev| prev <= parsed), "{entries:#?}");
        last = Some(parsed);
    }
    delete_and_check_gone(&f, &shim).await;
}

#[tokio::test]
async fn kill_reports_128_plus_signal() {
    let mut f = Fixture::new("shkill");
    f.bundle.probe_args(&["sleep", "60"]);
    let shim = f.spawn().await;
    let c = shim.client();
    c.start().await.unwrap();
    assert_eq!(c.state().await.unwrap().status, Status::Running);
    // The init is PID 1 of its namespace: only SIGKILL reaches it without a
    // handler, so that is the signal to observe.
    c.kill(libc::SIGKILL, false).await.unwrap();
    let exit = c.wait().await.unwrap();
    assert_eq!(exit.exit_code, 128 + libc::SIGKILL);
    let err = c.kill(libc::SIGKILL, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    delete_and_check_gone(&f, &shim).await;
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let mut f = Fixture::new("shoom");
    let linux = f.bundle.spec_mut().linux_mut().as_mut().unwrap();
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut mem = oci_spec::runtime::LinuxMemory::default();
    mem.set_limit(Some((16 * MIB) as i64));
    mem.set_swap(Some((16 * MIB) as i64));
    res.set_memory(Some(mem));
    linux.set_resources(Some(res));
    f.bundle.probe_args(&["alloc", "64"]);
    let shim = f.spawn().await;
    shim.client().start().await.unwrap();
    let exit = shim.client().wait().await.unwrap();
    assert_eq!(exit.exit_code, 137);
    assert!(exit.oom_killed, "{exit:?}");
    assert!(shim.client().state().await.unwrap().oom_killed);
    assert!(
        layout::read_exit(&f.cfg.state_dir)
            .unwrap()
            .unwrap()
            .oom_killed
    );
    delete_and_check_gone(&f, &shim).await;
}

#[tokio::test]
async fn the_shim_outlives_its_client_and_keeps_the_exit() {
    let mut f = Fixture::new("shsurv");
    f.bundle.args(&["/bin/sh", "-c", "read x; exit 3"]);
    f.cfg.stdin = true;
    f.cfg.stdin_once = true;
    // The "daemon": its own tokio runtime, dropped with everything it had.
    let cfg = f.cfg.clone();
    f.bundle.write_config().unwrap();
    let pid = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let shim = wharf_shim_api::spawn_shim(&common::shim_binary(), &cfg)
                .await
                .unwrap();
            shim.client().start().await.unwrap();
            // A pending wait that the dying client abandons.
            let c = shim.client().clone();
            tokio::spawn(async move { c.wait().await });
            tokio::time::sleep(Duration::from_millis(50)).await;
            shim.pid()
        })
    })
    .join()
    .unwrap();
    assert!(alive(pid));
    // The shim is not a child of this process.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(ppid, std::process::id() as i32);
    // A new client adopts it and drives the container to its end.
    let shim = ShimHandle::adopt(&f.cfg.state_dir).await.unwrap();
    assert_eq!(shim.pid(), pid);
    assert_eq!(shim.client().state().await.unwrap().status, Status::Running);
    let att = shim.client().attach(None, true, true, true).await.unwrap();
    let (_out, input) = att.into_split();
    input.close().await.unwrap();
    let exit = shim.client().wait().await.unwrap();
    assert_eq!(exit.exit_code, 3);
    // The shim stays after the exit: state still answers.
    let again = ShimClient::for_state_dir(&f.cfg.state_dir);
    assert_eq!(again.state().await.unwrap().exit_code, Some(3));
    delete_and_check_gone(&f, &shim).await;
}

#[tokio::test]
async fn a_bad_bundle_fails_spawn_with_the_reason() {
    let mut f = Fixture::new("shbad");
    f.bundle.args(&["/does-not-exist"]);
    f.bundle.write_config().unwrap();
    // The init fails at exec time only; a missing rootfs fails create.
    std::fs::remove_dir_all(f.bundle.rootfs()).unwrap();
    let err = wharf_shim_api::spawn_shim(&common::shim_binary(), &f.cfg)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&f.cfg.id), "{msg}");
    assert!(!f.runtime_state().exists(), "runtime state left behind");
    assert!(!layout::socket_path(&f.cfg.state_dir).exists());
}

#[tokio::test]
async fn delete_with_force_kills_a_running_container() {
    let mut f = Fixture::new("shforce");
    f.bundle.probe_args(&["sleep", "60"]);
    let shim = f.spawn().await;
    shim.client().start().await.unwrap();
    let err = shim.client().delete(false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = shim.client().shutdown().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let init = shim.client().state().await.unwrap().pid;
    shim.client().delete(true).await.unwrap();
    assert!(!alive(init));
    let exit = layout::read_exit(&f.cfg.state_dir).unwrap().unwrap();
    assert_eq!(exit.exit_code, 137);
    assert!(eventually(Duration::from_secs(5), || !alive(shim.pid())));
    assert!(!f.runtime_state().exists());
}

#[tokio::test]
async fn the_shim_holds_none_of_its_launchers_descriptors() {
    check_descriptors(false).await;
}

#[tokio::test]
async fn with_a_terminal_the_shim_holds_only_its_own_descriptors() {
    check_descriptors(true).await;
}

async fn check_descriptors(tty: bool) {
    let mut f = Fixture::new("shfds");
    f.bundle.probe_args(&["sleep", "60"]);
    f.bundle.process_mut().set_terminal(Some(tty));
    f.cfg.tty = tty;
    f.cfg.stdin = true;
    // A descriptor without O_CLOEXEC, as a careless daemon might leak.
    let (leak_r, _leak_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::empty()).unwrap();
    let leaked = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&leak_r)
    ))
    .unwrap();
    let shim = f.spawn().await;
    let fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{}/fd", shim.pid()))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let target = std::fs::read_link(e.path()).unwrap();
            (
                e.file_name().into_string().unwrap(),
                target.display().to_string(),
            )
        })
        .collect();
    for (fd, target) in &fds {
        if ["0", "1", "2"].contains(&fd.as_str()) {
            assert_eq!(target, "/dev/null", "fd {fd}: {fds:?}");
        } else {
            assert_ne!(
                target,
                &leaked.display().to_string(),
                "inherited fd {fd}: {fds:?}"
            );
            assert_ne!(target, "/dev/null", "stray /dev/null at fd {fd}: {fds:?}");
        }
    }
    shim.client().kill(libc::SIGKILL, false).await.unwrap();
    shim.client().wait().await.unwrap();
    shim.client().delete(false).await.unwrap();
}

#[tokio::test]
async fn the_container_does_not_inherit_an_ignored_sigpipe() {
    let mut f = Fixture::new("shsig");
    f.bundle
        .args(&["/bin/sh", "-c", "grep SigIgn /proc/self/status"]);
    let shim = f.spawn().await;
    shim.client().start().await.unwrap();
    shim.client().wait().await.unwrap();
    let line: String = f
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_owned())
        .collect();
    let mask = line
        .trim()
        .strip_prefix("SigIgn:\t")
        .and_then(|m| u64::from_str_radix(m, 16).ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {line:?}"
    );
    shim.client().delete(false).await.unwrap();
}

/// Process `pid` runs the shim binary through the mount at `view`. (A
/// view made from a name cargo has since re-linked shows " (deleted)"
/// after its path, though it is the same file: compare files, not names.)
fn runs_from(pid: i32, view: &std::path::Path) {
    use std::os::unix::fs::MetadataExt as _;
    let exe = format!("/proc/{pid}/exe");
    let shown = std::fs::read_link(&exe).unwrap();
    let shown = shown.to_string_lossy();
    assert_eq!(
        shown.strip_suffix(" (deleted)").unwrap_or(&shown),
        view.to_string_lossy(),
        "exe of {pid}"
    );
    let (running, binary) = (
        std::fs::metadata(&exe).unwrap(),
        std::fs::metadata(common::shim_binary()).unwrap(),
    );
    assert_eq!(
        (running.dev(), running.ino()),
        (binary.dev(), binary.ino()),
        "{pid} runs another file than the shim binary"
    );
}

#[tokio::test]
async fn later_shims_start_from_the_read_only_view() {
    let mut first = Fixture::new("shview");
    first.bundle.probe_args(&["exit", "0"]);
    let a = first.spawn().await;
    // The first shim ran from the view (made now or by an earlier shim).
    let view = wharf_sys::sealed_view::existing_view(&common::shim_binary())
        .expect("a read-only view of the shim binary after a shim ran");
    runs_from(a.pid(), &view);
    // A later one is started from the view itself (no re-execution), under
    // the binary's own argv[0] and process name.
    assert_eq!(
        wharf_shim_api::spawn::launch_path(&common::shim_binary()),
        view
    );
    let mut second = Fixture::new("shview2");
    second.bundle.probe_args(&["exit", "0"]);
    let b = second.spawn().await;
    runs_from(b.pid(), &view);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", b.pid())).unwrap();
    let argv0 = cmdline.split(|&c| c == 0).next().unwrap();
    assert_eq!(
        std::path::Path::new(std::str::from_utf8(argv0).unwrap()),
        common::shim_binary()
    );
    for pid in [a.pid(), b.pid()] {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "wharf-shim");
    }
    delete_and_check_gone(&first, &a).await;
    delete_and_check_gone(&second, &b).await;
}
