//! The real docker CLI (v28) against a temporary wharfd: each test starts
//! its own daemon (data root, exec root, socket), drives it with
//! `DOCKER_HOST=unix://... docker ...`, checks the output, and tears
//! everything down (see `common`).

mod common;

use common::Daemon;

#[test]
fn version_info_and_ping() {
    let d = Daemon::start();
    let v = d.ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v, format!("{} 1.50 1.24 linux", env!("CARGO_PKG_VERSION")));
    let full = d.ok(&["version"]);
    assert!(
        full.contains("Server:") && full.contains("Engine:"),
        "{full}"
    );

    let info = d.ok(&["info", "--format", "{{.Containers}} {{.Images}} {{.Driver}} {{.CgroupVersion}} {{.OSType}} {{.DockerRootDir}} {{.NCPU}}"]);
    let f: Vec<&str> = info.split(' ').collect();
    assert_eq!(f[0], "0");
    assert_eq!(f[1], "1");
    assert!(f[2] == "overlay" || f[2] == "copy", "{info}");
    assert_eq!(f[3], "1", "this host is cgroup v1 hybrid");
    assert_eq!(f[4], "linux");
    assert_eq!(f[5], d.data_root().display().to_string());
    assert_eq!(
        f[6],
        std::thread::available_parallelism()
            .unwrap()
            .get()
            .to_string()
    );
    let mem: u64 = d
        .ok(&["info", "--format", "{{.MemTotal}}"])
        .parse()
        .unwrap();
    assert!(mem > 64 << 20);

    let (status, head, body) = d.http("GET", "/_ping", None);
    assert_eq!(status, 200);
    assert_eq!(body, "OK");
    for h in [
        "Api-Version: 1.50",
        "Ostype: linux",
        "Docker-Experimental: false",
        "Cache-Control: no-cache, no-store, must-revalidate",
        "Pragma: no-cache",
        "Builder-Version:",
    ] {
        assert!(
            head.to_ascii_lowercase().contains(&h.to_ascii_lowercase()),
            "missing {h} in {head}"
        );
    }
    let (status, head, _) = d.http("HEAD", "/v1.44/_ping", None);
    assert_eq!(status, 200, "{head}");
    let (status, _, body) = d.http("GET", "/v1.12/version", None);
    assert_eq!(status, 400);
    assert!(body.contains("too old"), "{body}");
    let (status, _, body) = d.http("GET", "/v1.99/version", None);
    assert_eq!(status, 400);
    assert!(body.contains("too new"), "{body}");
    let (status, _, body) = d.http("GET", "/nope", None);
    assert_eq!(status, 404);
    assert!(body.contains("\"message\""), "{body}");
}

#[test]
fn run_logs_ps_inspect_rm() {
    let d = Daemon::start();
    // docker run: create + attach + wait + start, output and exit code.
    let out = d.docker(&[
        "run",
        "--name",
        "hello",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&d.log(), 40)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "out\n",
        "log:\n{}",
        common::tail(&d.log(), 60)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    assert_eq!(d.ok(&["logs", "hello"]), "out");
    let logs = d.docker(&["logs", "hello"]);
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "err\n");
    let ts = d.ok(&["logs", "-t", "hello"]);
    assert!(ts.ends_with(" out") && ts.starts_with("20"), "{ts}");

    let ps = d.ok(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}|{{.Image}}|{{.Status}}|{{.Command}}",
    ]);
    assert!(ps.starts_with("hello|busybox|Exited (3) "), "{ps}");
    assert!(ps.contains("sh -c"), "{ps}");
    assert_eq!(d.ok(&["ps", "-q"]), "", "nothing running");
    let state = d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Config.Image}} {{.HostConfig.NetworkMode}}", "hello"]);
    assert_eq!(state, "exited 3 /hello busybox bridge");

    // Detached, env, cmd override, wait, ps filters, stop, kill, rm -f.
    let id = d.ok(&[
        "run", "-d", "--name", "sleeper", "-e", "FOO=bar", "--label", "team=a", "busybox", "sleep",
        "300",
    ]);
    assert_eq!(id.len(), 64);
    let ps = d.ok(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert!(
        ps.starts_with(&format!("{} sleeper Up ", &id[..12])),
        "{ps}"
    );
    assert_eq!(d.ok(&["ps", "-q", "--filter", "label=team=a"]), id[..12]);
    assert_eq!(d.ok(&["ps", "-aq", "--filter", "status=exited"]).len(), 12);
    assert_eq!(d.ok(&["ps", "-q", "--filter", "name=sleep"]), id[..12]);
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", &format!("id={}", &id[..6])]),
        id[..12]
    );
    let env = d.ok(&[
        "inspect",
        "--format",
        "{{json .Config.Env}} {{.State.Running}} {{.State.Pid}}",
        "sleeper",
    ]);
    assert!(
        env.contains("\"FOO=bar\"") && env.contains(" true "),
        "{env}"
    );

    // Exec: output, exit code, env and user.
    let out = d.docker(&["exec", "sleeper", "sh", "-c", "echo $FOO; id -u; exit 7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bar\n0\n");
    assert_eq!(
        d.ok(&[
            "exec",
            "-u",
            "web",
            "-w",
            "/tmp",
            "sleeper",
            "sh",
            "-c",
            "id -u; pwd"
        ]),
        "1000\n/tmp"
    );
    assert_eq!(
        d.ok(&["exec", "-e", "A=1", "sleeper", "env"])
            .lines()
            .filter(|l| *l == "A=1")
            .count(),
        1
    );

    // Name conflict, bad names, missing image: docker's errors.
    let (_, err) = d.fails(&["create", "--name", "sleeper", "busybox"]);
    assert!(err.contains("is already in use by container"), "{err}");
    let (_, err) = d.fails(&["create", "--name", "bad name", "busybox"]);
    assert!(err.contains("Invalid container name"), "{err}");
    let (code, err) = d.fails(&["run", "--pull", "never", "nosuchimage"]);
    assert_eq!(code, 125);
    assert!(err.contains("No such image"), "{err}");
    let (_, err) = d.fails(&["rm", "sleeper"]);
    assert!(err.contains("container is running"), "{err}");

    let t0 = std::time::Instant::now();
    d.ok(&["stop", "-t", "1", "sleeper"]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "sleeper",
    ]);
    assert!(st == "exited 137" || st == "exited 143", "{st}");
    assert_eq!(d.ok(&["wait", "sleeper"]), st.split(' ').nth(1).unwrap());

    d.ok(&["start", "sleeper"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "sleeper"]),
        "running"
    );
    d.ok(&["kill", "sleeper"]);
    assert_eq!(d.ok(&["wait", "sleeper"]), "137");

    d.ok(&["start", "sleeper"]);
    d.ok(&["rm", "-f", "sleeper", "hello"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let (_, err) = d.fails(&["inspect", "sleeper"]);
    assert!(
        err.contains("No such object") || err.contains("No such container"),
        "{err}"
    );
    // Out of the store when rm answers; the files follow in the background.
    let records = || -> Vec<String> {
        std::fs::read_dir(d.data_root().join("containers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        records().iter().all(|n| n.starts_with("tmp-rm-")),
        "{:?}",
        records()
    );
    d.wait_removals_deleted();
    assert_eq!(records(), Vec::<String>::new());
}

#[test]
fn stdin_and_tty_and_attach() {
    let d = Daemon::start();
    let out = d.docker_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"piped input\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped input\n");
    assert_eq!(d.ok(&["ps", "-aq"]), "", "--rm removed it");

    // Attach to a running container sees its later output.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo tick; sleep 1; echo tock",
    ]);
    let out = d.docker(&["attach", "ticker"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("tock"), "{s}");
    assert_eq!(d.ok(&["logs", "ticker"]), "tick\ntock");
    assert_eq!(d.ok(&["logs", "--tail", "1", "ticker"]), "tock");

    // Exec with a terminal (no local tty: the CLI sends raw bytes).
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    let out = d.docker_stdin(&["exec", "-i", "box", "cat"], b"via exec\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via exec\n");
}

#[test]
fn tty_run() {
    let d = Daemon::start();
    // A terminal: one raw stream, \r\n line endings from the pty.
    let out = d.docker(&[
        "run",
        "-t",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo tty; [ -t 1 ] && echo is-a-tty",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tty\r\nis-a-tty\r\n");
}

#[test]
fn restart_pause_rename_events() {
    let d = Daemon::start();
    let id = d.ok(&["run", "-d", "--name", "svc", "busybox", "sleep", "300"]);
    d.ok(&["pause", "svc"]);
    let status = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(
        status.starts_with("Up ") && status.ends_with("(Paused)"),
        "{status}"
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}}",
            "svc"
        ]),
        "paused true"
    );
    d.ok(&["unpause", "svc"]);
    let pid1 = d.ok(&["inspect", "--format", "{{.State.Pid}}", "svc"]);
    d.ok(&["restart", "-t", "1", "svc"]);
    let pid2 = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Pid}} {{.State.Status}}",
        "svc",
    ]);
    assert!(
        pid2.ends_with(" running") && !pid2.starts_with(&format!("{pid1} ")),
        "{pid1} -> {pid2}"
    );
    d.ok(&["rename", "svc", "svc2"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.Name}}", &id[..12]]),
        "/svc2"
    );

    // An ambiguous prefix: two containers whose IDs share the first hex digit.
    let mut ids = vec![id.clone()];
    while !ids
        .iter()
        .any(|a| ids.iter().any(|b| a != b && a[..1] == b[..1]))
    {
        ids.push(d.ok(&["create", "busybox", "true"]));
    }
    let prefix = ids
        .iter()
        .find(|a| ids.iter().any(|b| *a != b && a[..1] == b[..1]))
        .unwrap()[..1]
        .to_owned();
    let (code, err) = d.fails(&["inspect", "--type", "container", &prefix]);
    assert_ne!(code, 0);
    assert!(
        err.contains("multiple IDs found with provided prefix"),
        "{err}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ev = d.ok(&[
        "events",
        "--since",
        &(now - 120).to_string(),
        "--until",
        &(now + 1).to_string(),
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    for a in [
        "create", "start", "pause", "unpause", "kill", "die", "stop", "restart", "rename",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    d.ok(&["rm", "-f", "svc2"]);
}

#[test]
fn bad_input_is_refused_cleanly() {
    let d = Daemon::start();
    let count = || {
        std::fs::read_dir(d.data_root().join("containers"))
            .unwrap()
            .count()
    };
    let (status, _, body) = d.http("POST", "/containers/create", Some("{not json"));
    assert_eq!(status, 400);
    assert!(body.contains("\"message\""), "{body}");
    let (status, _, body) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image": "busybox", "HostConfig": {"Memory": 1024}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Minimum memory limit"), "{body}");
    let (status, _, body) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = d.http(
        "POST",
        "/containers/create?name=capx",
        Some(r#"{"Image": "busybox", "HostConfig": {"CapAdd": ["CAP_BOGUS"]}}"#),
    );
    assert_eq!(status, 400);
    let (status, _, body) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image": "busybox", "Cmd": 5}"#),
    );
    assert_eq!(status, 400, "{body}");
    let big = format!(
        r#"{{"Image": "busybox", "Env": ["{}"]}}"#,
        "x".repeat(5 << 20)
    );
    let (status, _, _) = d.http("POST", "/containers/create", Some(&big));
    assert_eq!(status, 413, "unbounded bodies are bounded");
    assert_eq!(count(), 0, "nothing half-created");
    assert_eq!(d.ok(&["ps", "-aq"]), "", "and no name left reserved");
    d.ok(&["create", "--name", "xx", "busybox"]);

    let (_, err) = d.fails(&["run", "--memory", "1k", "busybox", "true"]);
    assert!(err.contains("Minimum memory limit"), "{err}");
    d.ok(&["run", "-d", "--name", "kk", "busybox", "sleep", "300"]);
    let (_, err) = d.fails(&["kill", "--signal", "SIGBOGUS", "kk"]);
    assert!(err.contains("Invalid signal"), "{err}");
    let (status, _, _) = d.http("POST", "/containers/kk/start", None);
    assert_eq!(status, 304, "start of a running container");
    let (status, _, _) = d.http("POST", "/containers/xx/stop", None);
    assert_eq!(status, 304, "stop of a stopped container");
    let (status, _, body) = d.http("POST", "/containers/xx/kill", None);
    assert_eq!(status, 409, "{body}");
    let (status, _, body) = d.http("GET", "/containers/nope/json", None);
    assert_eq!(
        (status, body.trim()),
        (404, r#"{"message":"No such container: nope"}"#)
    );
    let (status, _, _) = d.http("GET", "/containers/json?filters=%7Bbad", None);
    assert_eq!(status, 400);
    let (status, _, body) = d.http(
        "GET",
        "/containers/json?filters=%7B%22color%22%3A%5B%22red%22%5D%7D",
        None,
    );
    assert_eq!(status, 400, "{body}");
    // Commands that cannot run: docker's 127 and 126, the reason shown.
    let (code, err) = d.fails(&["run", "busybox", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    let (code, _) = d.fails(&["run", "--name", "noexec", "busybox", "/etc/passwd"]);
    assert_eq!(code, 126);
    let (_, err) = d.fails(&["exec", "noexec", "true"]);
    assert!(err.contains("is not running"), "{err}");
    d.ok(&["rm", "noexec"]);
    // The daemon still serves; prune removes every stopped container.
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "kk");
}

#[test]
fn logs_follow_and_start_attach() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.3; done",
    ]);
    // -f follows until the container exits.
    let out = d.ok(&["logs", "-f", "counter"]);
    assert_eq!(out, "line1\nline2\nline3");
    // start -a attaches to a stopped container's next run.
    let out = d.ok(&["start", "-a", "counter"]);
    assert_eq!(out, "line1\nline2\nline3");
    assert_eq!(d.ok(&["logs", "counter"]).lines().count(), 6);
    let since_nothing = d.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "counter"]);
    assert_eq!(since_nothing, "");
}

#[test]
fn top_and_stats() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "sleep 301; echo done",
    ]);
    let top = d.ok(&["top", "busy"]);
    let mut lines = top.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.contains("sleep 301")), "{top}");
    assert!(
        rows.iter().all(|r| !r.contains("wharfd")),
        "only the container's processes: {top}"
    );

    let s = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}",
        "busy",
    ]);
    let f: Vec<&str> = s.split('|').collect();
    assert_eq!(f[0], "busy", "{s}");
    assert!(
        f[1].ends_with("/ 64MiB"),
        "memory limit from the cgroup: {s}"
    );
    assert_eq!(f[2], "2", "sh and sleep: {s}");
    assert!(f[3].ends_with('%'), "{s}");
    let (_, err) = d.fails(&["top", "nope"]);
    assert!(err.contains("No such container"), "{err}");
}

#[test]
fn restart_policy_auto_remove_and_socket_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");

    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let state = loop {
        let s = d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
            "flaky",
        ]);
        if s == "exited 2 1" || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(state, "exited 2 1", "two restarts, then it stays down");
    assert_eq!(d.ok(&["logs", "flaky"]), "run\nrun\nrun");

    let id = d.ok(&["run", "-d", "--rm", "busybox", "true"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !d.ok(&["ps", "-aq", "--no-trunc"]).lines().all(|l| l != id) {
        assert!(
            std::time::Instant::now() < deadline,
            "--rm container not removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The CLI refuses this itself; the daemon does too.
    let (status, _, body) = d.http("POST", "/containers/create", Some(r#"{"Image": "busybox", "HostConfig": {"AutoRemove": true, "RestartPolicy": {"Name": "always"}}}"#));
    assert_eq!(status, 400);
    assert!(body.contains("AutoRemove"), "{body}");
}

/// `rm -f` of many running containers (and `run --rm`) answers once they
/// are out of the stores; the mounts' teardown and the files' deletion
/// follow in the background and leave nothing: no mount, no directory, no
/// shim state. The image is free to go at once.
#[test]
fn removal_answers_then_deletes_everything() {
    let d = Daemon::start();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(d.ok(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            &format!("mkdir -p /data/{i} && echo {i} > /data/{i}/f && sleep 1000"),
        ]));
    }
    assert_eq!(
        d.ok(&["run", "--rm", "busybox", "cat", "/etc/hostname"])
            .len(),
        12
    );
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    assert_eq!(d.ok(&rm).lines().count(), 6);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.ok(&["rmi", "busybox"]);
    d.wait_removals_deleted();
    let root = d.data_root().display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root))
        .map(str::to_owned)
        .collect();
    assert_eq!(mounts, Vec::<String>::new());
    for dir in ["containers", "snapshots/containers"] {
        let left: Vec<_> = std::fs::read_dir(d.data_root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    let shims: Vec<_> = std::fs::read_dir(d.exec_root().join("shims"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(shims.is_empty(), "shim state left: {shims:?}");
}
