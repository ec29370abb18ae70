//! Detaching from attach and exec sessions, with the real docker CLI under
//! tmux and with raw hijacked API connections: a detach ends the session
//! and leaves the process running with its stdin open (attach again and it
//! answers); detach keys apply to a terminal only (without one every byte
//! reaches the process, as with dockerd); the end of a client's input
//! closes stdin only for `StdinOnce` containers and execs without a
//! terminal; bad keys get docker's errors.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use wharf_testkit::Tmux;

const LIMIT: Duration = Duration::from_secs(20);
/// A detach ends the stream at once; the processes here never end by
/// themselves, so anything under this bound is the detach (it is generous:
/// the suite runs its daemons in parallel on two cores).
const DETACHED: Duration = Duration::from_secs(6);

/// A docker command line for a tmux pane, then `echo <tag>=$?`.
fn docker_line(d: &Daemon, args: &str, tag: &str) -> String {
    format!(
        "DOCKER_HOST=unix://{sock} DOCKER_CONFIG={cfg} {docker} {args}; echo {tag}=$?; sleep 600",
        sock = d.socket.display(),
        cfg = d.dir.join("cfg").display(),
        docker = common::DOCKER,
    )
}

fn running(d: &Daemon, name: &str) -> bool {
    d.ok(&["inspect", "--format", "{{.State.Running}}", name]) == "true"
}

/// Types a command into the attached shell and waits for its answer (the
/// arithmetic keeps the typed echo from matching).
fn shell_answers(tmux: &Tmux, n: u32) {
    tmux.keys(&[&format!("echo answer-$(({n}*2))"), "Enter"]);
    tmux.wait_for(&format!("answer-{}", n * 2));
}

#[test]
fn docker_attach_detaches_with_the_keys_and_the_shell_lives_on() {
    let d = Daemon::start();
    let tmux = Tmux::new("wd");
    d.ok(&["run", "-dit", "--name", "dsh", "busybox", "sh"]);

    // ctrl-p ctrl-q: the CLI's "read escape sequence" and exit status 1.
    tmux.run(&docker_line(&d, "attach dsh", "attach-exit"));
    std::thread::sleep(Duration::from_millis(500));
    shell_answers(&tmux, 21);
    tmux.keys(&["C-p", "C-q"]);
    let pane = tmux.wait_for("attach-exit=");
    assert!(pane.contains("read escape sequence"), "{pane}");
    assert!(pane.contains("attach-exit=1"), "{pane}");
    assert!(running(&d, "dsh"));

    // Custom keys; ctrl-p alone is typed into the shell, not a detach.
    tmux.run(&docker_line(
        &d,
        "attach --detach-keys ctrl-x,x dsh",
        "attach-exit",
    ));
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["C-p"]);
    shell_answers(&tmux, 33);
    tmux.keys(&["C-x", "x"]);
    let pane = tmux.wait_for("attach-exit=");
    assert!(pane.contains("attach-exit=1"), "{pane}");
    assert!(running(&d, "dsh"));

    // Attach again: the shell still reads its stdin; its exit code is
    // attach's.
    tmux.run(&docker_line(&d, "attach dsh", "attach-exit"));
    std::thread::sleep(Duration::from_millis(500));
    shell_answers(&tmux, 50);
    tmux.keys(&["exit 3", "Enter"]);
    tmux.wait_for("attach-exit=3");
    assert!(!running(&d, "dsh"));
    d.ok(&["rm", "dsh"]);
}

#[test]
fn docker_run_it_detaches_without_ending_a_stdin_once_container() {
    // `run -it` sets StdinOnce: the end of the CLI's connection must not
    // close a terminal's stdin.
    let d = Daemon::start();
    let tmux = Tmux::new("wd");
    tmux.run(&docker_line(
        &d,
        "run -it --name rsh busybox sh",
        "run-exit",
    ));
    tmux.wait_for("/ #");
    shell_answers(&tmux, 7);
    tmux.keys(&["C-p", "C-q"]);
    let pane = tmux.wait_for("run-exit=");
    assert!(pane.contains("run-exit=0"), "{pane}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(running(&d, "rsh"));
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.Config.StdinOnce}}", "rsh"]),
        "true"
    );
    tmux.run(&docker_line(&d, "attach rsh", "attach-exit"));
    std::thread::sleep(Duration::from_millis(500));
    shell_answers(&tmux, 8);
    tmux.keys(&["exit 4", "Enter"]);
    tmux.wait_for("attach-exit=4");
    d.ok(&["rm", "rsh"]);
}

/// Kills a child on drop (a docker CLI that never ends by itself).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_a_terminal_keys_pass_through_and_stdin_stays_open() {
    let d = Daemon::start();
    d.ok(&["run", "-di", "--name", "dcat", "busybox", "cat"]);
    let logs = || {
        let out = d.docker(&["logs", "dcat"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let attach = |keys: &[&str]| {
        let mut args = vec!["attach", "--sig-proxy=false"];
        args.extend_from_slice(keys);
        args.push("dcat");
        let mut c = d.docker_cmd();
        c.args(&args)
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Kill(c.spawn().expect("spawn docker attach"))
    };

    // dockerd scans for detach keys only with a terminal: ctrl-x reaches cat.
    let mut cli = attach(&["--detach-keys", "ctrl-x"]);
    let mut stdin = cli.0.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    eventually("first line in the log", || logs().contains("first\n"));
    stdin.write_all(b"a\x18b\n").unwrap();
    eventually("ctrl-x passed to cat", || logs().contains("a\u{18}b\n"));
    // The client's input ends (the CLI half-closes), then the client goes:
    // without StdinOnce the container's stdin stays open.
    drop(stdin);
    std::thread::sleep(Duration::from_millis(500));
    drop(cli);
    assert!(running(&d, "dcat"));
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.Config.StdinOnce}}", "dcat"]),
        "false"
    );

    // Attach again: the next line still reaches cat.
    let mut cli = attach(&[]);
    let mut stdin = cli.0.stdin.take().unwrap();
    stdin.write_all(b"again\n").unwrap();
    eventually("the second client's line", || logs().contains("again\n"));
    drop(stdin);
    drop(cli);
    assert!(running(&d, "dcat"));
    assert_eq!(logs(), "first\na\u{18}b\nagain\n");
    d.ok(&["rm", "-f", "dcat"]);
}

/// A hijacked API connection: the request is sent, the `101` read.
fn hijack(d: &Daemon, path: &str, body: &str) -> UnixStream {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: wharf\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "connection closed in the head");
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Reads until `needle` shows up; returns everything read.
fn read_until(s: &mut UnixStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "stream ended before {needle:?}: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading for {needle:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the daemon closes the stream; returns how long that took.
fn read_to_end(s: &mut UnixStream) -> Duration {
    let t0 = Instant::now();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the stream ends");
    t0.elapsed()
}

#[test]
fn the_daemon_detaches_attach_and_exec_sessions() {
    let d = Daemon::start();
    d.ok(&["run", "-dit", "--name", "api", "busybox", "sh"]);

    // Letters as keys: a prefix that fails ("qq") is typed, "qz" detaches.
    let mut s = hijack(
        &d,
        "/containers/api/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=q,z",
        "",
    );
    s.write_all(b"echo qq-$((6*7))\n").unwrap();
    read_until(&mut s, "qq-42");
    s.write_all(b"qz").unwrap();
    assert!(read_to_end(&mut s) < DETACHED);
    std::thread::sleep(Duration::from_millis(300));
    assert!(running(&d, "api"));

    // The default keys, then again: the shell still reads its stdin.
    let mut s = hijack(
        &d,
        "/containers/api/attach?stream=1&stdin=1&stdout=1&stderr=1",
        "",
    );
    s.write_all(b"echo two-$((1+1))\n").unwrap();
    read_until(&mut s, "two-2");
    s.write_all(b"\x10\x11").unwrap();
    read_to_end(&mut s);
    assert!(running(&d, "api"));

    // An exec with a terminal detaches at once and keeps running.
    let (code, _, body) = d.http(
        "POST",
        "/containers/api/exec",
        Some(r#"{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let exec_id = body.split('"').nth(3).unwrap().to_owned();
    let mut s = hijack(&d, &format!("/exec/{exec_id}/start"), r#"{"Tty":true}"#);
    s.write_all(b"echo ex-$((4+4))\n").unwrap();
    read_until(&mut s, "ex-8");
    s.write_all(b"\x18").unwrap();
    assert!(read_to_end(&mut s) < DETACHED);
    let (_, _, inspect) = d.http("GET", &format!("/exec/{exec_id}/json"), None);
    assert!(inspect.contains(r#""Running":true"#), "{inspect}");

    // Docker's errors for keys it cannot parse.
    let (code, _, body) = d.http(
        "POST",
        "/containers/api/attach?stream=1&detachKeys=ctrl-foo",
        None,
    );
    assert_eq!(code, 400);
    assert!(
        body.contains("Invalid detach keys (ctrl-foo) provided"),
        "{body}"
    );
    let (code, _, body) = d.http(
        "POST",
        "/containers/api/exec",
        Some(r#"{"Cmd":["true"],"DetachKeys":"ctrl-P"}"#),
    );
    assert_eq!(code, 400);
    assert!(
        body.contains("Invalid escape keys (ctrl-P) provided"),
        "{body}"
    );
    let (_, err) = d.fails(&["attach", "--no-stdin", "--detach-keys", "nope", "api"]);
    // docker 28 leaves the check to the daemon, which refuses the upgrade.
    assert!(
        err.contains("invalid detach keys") || err.contains("received 400"),
        "{err}"
    );
    d.ok(&["rm", "-f", "api"]);
}
