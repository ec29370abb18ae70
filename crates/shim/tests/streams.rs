//! Streams through the shim: attach (output frames, stdin, half-close),
//! terminals (raw output, resize), exec processes.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)] // each test file uses part of the fixture
mod common;

use std::time::Duration;

use common::{Fixture, alive, eventually};
use oci_spec::runtime::Process;
use tokio::io::AsyncWriteExt;
use wharf_shim_api::{AttachOutput, ErrorKind, ExecStatus, ShimHandle, Status, StreamKind};

const LIMIT: Duration = Duration::from_secs(20);

/// Reads frames until the collected stdout contains `needle`.
async fn read_until(out: &mut AttachOutput, needle: &str) -> String {
    let mut text = String::new();
    let found = tokio::time::timeout(LIMIT, async {
        while let Some(f) = out.next_frame().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&f.data));
            if text.contains(needle) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "{needle:?} never arrived; got {text:?}");
    text
}

async fn finish(shim: &ShimHandle) {
    let c = shim.client();
    if c.state().await.unwrap().status != Status::Stopped {
        c.kill(libc::SIGKILL, true).await.unwrap();
        c.wait().await.unwrap();
    }
    c.delete(false).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || !alive(shim.pid())));
}

fn process(args: &[&str]) -> Process {
    let mut p = Process::default();
    p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
    p.set_env(Some(vec!["PATH=/bin:/usr/bin:/sbin:/usr/sbin".into()]));
    p.set_cwd("/".into());
    p
}

#[tokio::test]
async fn attach_streams_output_and_feeds_stdin() {
    let mut f = Fixture::new("shcat");
    f.bundle.args(&["/bin/cat"]);
    f.cfg.stdin = true;
    f.cfg.stdin_once = true;
    let shim = f.spawn().await;
    let c = shim.client();
    // Attach before start, as `docker run` does.
    let (mut out, mut input) = c.attach(None, true, true, true).await.unwrap().into_split();
    c.start().await.unwrap();
    input.write_all(b"hello shim\n").await.unwrap();
    let f1 = tokio::time::timeout(LIMIT, out.next_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(f1.stream, StreamKind::Stdout);
    assert_eq!(f1.data, b"hello shim\n");
    // Half-close: with --stdin-once cat sees end of file and exits 0.
    input.close().await.unwrap();
    let (rest_out, rest_err) = tokio::time::timeout(LIMIT, out.collect())
        .await
        .unwrap()
        .unwrap();
    assert!(rest_out.is_empty() && rest_err.is_empty());
    assert_eq!(c.wait().await.unwrap().exit_code, 0);
    let logged: Vec<_> = f.log_entries().iter().map(|e| e["log"].clone()).collect();
    assert_eq!(logged, [serde_json::json!("hello shim\n")]);
    finish(&shim).await;
}

#[tokio::test]
async fn attach_separates_and_selects_streams() {
    let mut f = Fixture::new("shsel");
    f.bundle
        .args(&["/bin/sh", "-c", "read x; echo to-out; echo to-err >&2"]);
    f.cfg.stdin = true;
    let shim = f.spawn().await;
    let c = shim.client();
    let (mut both, _in1) = c
        .attach(None, false, true, true)
        .await
        .unwrap()
        .into_split();
    let (mut errs, _in2) = c
        .attach(None, false, false, true)
        .await
        .unwrap()
        .into_split();
    let (_o3, mut feeder) = c
        .attach(None, true, false, false)
        .await
        .unwrap()
        .into_split();
    c.start().await.unwrap();
    feeder.write_all(b"go\n").await.unwrap();
    let (o, e) = tokio::time::timeout(LIMIT, both.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (o.as_slice(), e.as_slice()),
        (&b"to-out\n"[..], &b"to-err\n"[..])
    );
    let (o, e) = tokio::time::timeout(LIMIT, errs.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((o.as_slice(), e.as_slice()), (&b""[..], &b"to-err\n"[..]));
    assert_eq!(c.wait().await.unwrap().exit_code, 0);
    // Attaching to an exited process gives an empty stream at once.
    let (mut late, _) = c
        .attach(None, false, true, true)
        .await
        .unwrap()
        .into_split();
    assert_eq!(late.next_frame().await.unwrap(), None);
    finish(&shim).await;
}

#[tokio::test]
async fn without_stdin_once_the_end_of_input_ends_the_session_not_stdin() {
    let mut f = Fixture::new("shopen");
    f.bundle.args(&["/bin/cat"]);
    f.cfg.stdin = true;
    let shim = f.spawn().await;
    let c = shim.client();
    let (mut out, mut input) = c
        .attach(None, true, true, false)
        .await
        .unwrap()
        .into_split();
    c.start().await.unwrap();
    input.write_all(b"one\n").await.unwrap();
    read_until(&mut out, "one\n").await;
    // dockerd's rule: stdin stays open, this client's stream ends.
    input.close().await.unwrap();
    let rest = tokio::time::timeout(LIMIT, out.collect()).await;
    assert!(
        matches!(rest, Ok(Ok(_))),
        "the stream did not end: {rest:?}"
    );
    assert_eq!(c.state().await.unwrap().status, Status::Running);
    // A second client keeps feeding the same stdin; a client that just
    // disappears (drops its input) leaves it open too.
    let (mut out2, mut input2) = c
        .attach(None, true, true, false)
        .await
        .unwrap()
        .into_split();
    input2.write_all(b"two\n").await.unwrap();
    read_until(&mut out2, "two\n").await;
    drop((out2, input2));
    let (mut out3, mut input3) = c
        .attach(None, true, true, false)
        .await
        .unwrap()
        .into_split();
    input3.write_all(b"three\n").await.unwrap();
    read_until(&mut out3, "three\n").await;
    c.close_stdin(None).await.unwrap();
    assert_eq!(c.wait().await.unwrap().exit_code, 0);
    let logged: String = f
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, "one\ntwo\nthree\n");
    finish(&shim).await;
}

#[tokio::test]
async fn with_a_terminal_the_end_of_input_never_closes_stdin() {
    // `docker run -it` sets StdinOnce; a detach (the daemon drops the
    // connection) or a client's half-close must leave the shell running.
    let mut f = Fixture::new("shdetach");
    f.bundle.process_mut().set_terminal(Some(true));
    f.bundle.args(&["/bin/sh"]);
    f.cfg.tty = true;
    f.cfg.stdin = true;
    f.cfg.stdin_once = true;
    let shim = f.spawn().await;
    let c = shim.client();
    let (mut out, mut input) = c.attach(None, true, true, true).await.unwrap().into_split();
    c.start().await.unwrap();
    input.write_all(b"echo one-$((1+1))\n").await.unwrap();
    read_until(&mut out, "one-2").await;
    input.close().await.unwrap();
    let rest = tokio::time::timeout(LIMIT, out.collect()).await;
    assert!(
        matches!(rest, Ok(Ok(_))),
        "the stream did not end: {rest:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.state().await.unwrap().status, Status::Running);
    // Dropped without a half-close, as the daemon does on a detach.
    let (out2, mut input2) = c.attach(None, true, true, true).await.unwrap().into_split();
    input2.write_all(b"echo two-$((2+2))\n").await.unwrap();
    drop((out2, input2));
    let (mut out3, mut input3) = c.attach(None, true, true, true).await.unwrap().into_split();
    input3
        .write_all(b"echo three-$((3+3)); exit 3\n")
        .await
        .unwrap();
    read_until(&mut out3, "three-6").await;
    assert_eq!(c.wait().await.unwrap().exit_code, 3);
    let logged: String = f
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_owned())
        .collect();
    assert!(logged.contains("two-4"), "{logged:?}");
    finish(&shim).await;
}

#[tokio::test]
async fn tty_output_is_raw_and_resize_reaches_the_terminal() {
    let mut f = Fixture::new("shtty");
    f.bundle.process_mut().set_terminal(Some(true));
    f.bundle.args(&[
        "/bin/sh",
        "-c",
        "stty size; read x; stty size; echo err >&2",
    ]);
    f.cfg.tty = true;
    f.cfg.stdin = true;
    let shim = f.spawn().await;
    let c = shim.client();
    c.resize_pty(None, 30, 100).await.unwrap();
    let (mut out, mut input) = c.attach(None, true, true, true).await.unwrap().into_split();
    c.start().await.unwrap();
    read_until(&mut out, "30 100").await;
    c.resize_pty(None, 50, 120).await.unwrap();
    input.write_all(b"\n").await.unwrap();
    let text = read_until(&mut out, "50 120").await;
    assert!(
        text.contains("\r\n"),
        "no terminal line discipline: {text:?}"
    );
    let (rest, errs) = tokio::time::timeout(LIMIT, out.collect())
        .await
        .unwrap()
        .unwrap();
    assert!(errs.is_empty(), "a terminal has one stream");
    let whole = text + &String::from_utf8_lossy(&rest);
    assert!(whole.contains("50 120\r\nerr\r\n"), "{whole:?}");
    assert_eq!(c.wait().await.unwrap().exit_code, 0);
    let entries = f.log_entries();
    assert!(entries.iter().all(|e| e["stream"] == "stdout"));
    let all: String = entries.iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert!(
        all.contains("30 100\r\n") && all.contains("50 120"),
        "{all:?}"
    );
    finish(&shim).await;
}

#[tokio::test]
async fn resize_without_a_terminal_is_a_conflict() {
    let mut f = Fixture::new("shnotty");
    f.bundle.probe_args(&["sleep", "60"]);
    let shim = f.spawn().await;
    let err = shim.client().resize_pty(None, 10, 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    finish(&shim).await;
}

#[tokio::test]
async fn exec_runs_inside_and_records_its_exit() {
    let mut f = Fixture::new("shexec");
    f.bundle.probe_args(&["sleep", "60"]);
    let shim = f.spawn().await;
    let c = shim.client();
    c.start().await.unwrap();
    let p = process(&[
        "/bin/sh",
        "-c",
        "test -x /probe && echo inside; echo oops >&2; exit 5",
    ]);
    c.exec("e1", p.clone(), false, false).await.unwrap();
    assert_eq!(
        c.exec("e1", p, false, false).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        c.exec_state("e1").await.unwrap().status,
        ExecStatus::Created
    );
    let (mut out, _) = c
        .attach(Some("e1"), false, true, true)
        .await
        .unwrap()
        .into_split();
    let pid = c.exec_start("e1").await.unwrap();
    assert!(pid > 0);
    let (o, e) = tokio::time::timeout(LIMIT, out.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o, b"inside\n");
    assert_eq!(e, b"oops\n");
    assert_eq!(c.wait_exec("e1").await.unwrap().exit_code, 5);
    let info = c.exec_state("e1").await.unwrap();
    assert_eq!(
        (info.status, info.exit_code, info.pid),
        (ExecStatus::Exited, Some(5), Some(pid))
    );
    assert_eq!(
        c.exec_start("e1").await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        c.exec_state("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Exec output is not the container's log.
    assert!(f.log_entries().is_empty());
    assert_eq!(c.state().await.unwrap().status, Status::Running);
    finish(&shim).await;
}

#[tokio::test]
async fn exec_stdin_and_exec_tty() {
    let mut f = Fixture::new("shexio");
    f.bundle.probe_args(&["sleep", "60"]);
    let shim = f.spawn().await;
    let c = shim.client();
    c.start().await.unwrap();
    // stdin: closing the client's input closes the exec's stdin.
    c.exec("cat", process(&["/bin/cat"]), false, true)
        .await
        .unwrap();
    let (mut out, mut input) = c
        .attach(Some("cat"), true, true, true)
        .await
        .unwrap()
        .into_split();
    c.exec_start("cat").await.unwrap();
    input.write_all(b"ping\n").await.unwrap();
    read_until(&mut out, "ping\n").await;
    input.close().await.unwrap();
    assert_eq!(c.wait_exec("cat").await.unwrap().exit_code, 0);
    // tty: raw output, resize after start.
    let p = process(&["/bin/sh", "-c", "read x; stty size; exit 4"]);
    c.exec("tty", p, true, true).await.unwrap();
    let (mut out, mut input) = c
        .attach(Some("tty"), true, true, true)
        .await
        .unwrap()
        .into_split();
    c.exec_start("tty").await.unwrap();
    c.resize_pty(Some("tty"), 33, 77).await.unwrap();
    input.write_all(b"\n").await.unwrap();
    read_until(&mut out, "33 77\r\n").await;
    assert_eq!(c.wait_exec("tty").await.unwrap().exit_code, 4);
    assert!(c.exec_state("tty").await.unwrap().tty);
    finish(&shim).await;
}

#[tokio::test]
async fn exec_in_a_stopped_container_is_refused() {
    let mut f = Fixture::new("shexst");
    f.bundle.probe_args(&["exit", "0"]);
    let shim = f.spawn().await;
    let c = shim.client();
    c.start().await.unwrap();
    c.wait().await.unwrap();
    let err = c
        .exec("late", process(&["/bin/true"]), false, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    finish(&shim).await;
}
