//! `--console-socket`: with `process.terminal`, `wharf-runtime` sends the
//! master of the container's pty over the caller's unix socket (SCM_RIGHTS,
//! the slave's path as payload); the container's stdio is that pty and its
//! output is read through the master.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{assert_fails_with, bin, bundle, edit_spec, runtime};
use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use serde_json::{Value, json};
use wharf_testkit::{Bundle, Cleanup, Runtime, describe, require_root, test_tmp, unique_id};

/// What the test's end of the console socket received.
struct Received {
    /// The payload: the slave's path inside the container.
    slave_name: String,
    /// The window size read from the master right after receiving it.
    winsize: (u16, u16),
    /// Everything read from the master until the container closed its side.
    output: String,
}

/// How long the receiver waits for the runtime to connect, and for the
/// container to close its side of the pty, before failing the test.
const CONSOLE_PATIENCE: Duration = Duration::from_secs(25);

/// Waits until `fd` is readable, panicking with `what` after `deadline`.
fn wait_readable(fd: impl AsFd, deadline: Instant, what: &str) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let ts = rustix::time::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => return,
            Err(e) => panic!("poll for {what}: {e}"),
        }
    }
}

/// Accepts one connection, receives the pty master and reads it to the end
/// (each step bounded by [`CONSOLE_PATIENCE`]).
fn receive_console(listener: &UnixListener) -> Received {
    let deadline = Instant::now() + CONSOLE_PATIENCE;
    wait_readable(
        listener,
        deadline,
        "the runtime to connect to the console socket",
    );
    let (stream, _) = listener.accept().expect("accept console connection");
    wait_readable(&stream, deadline, "the pty master message");
    let mut payload = [0u8; 256];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &stream,
        &mut [IoSliceMut::new(&mut payload)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .expect("recvmsg on the console socket");
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    assert_eq!(fds.len(), 1, "exactly one descriptor expected");
    let master = fds.pop().unwrap();
    let ws = rustix::termios::tcgetwinsize(&master).expect("pty window size");
    let mut file = File::from(master);
    let mut bytes = Vec::new();
    // Reading a pty master ends with EIO once every slave descriptor closed.
    let mut chunk = [0u8; 4096];
    loop {
        wait_readable(&file, deadline, "the container to close the pty");
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc_eio()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    Received {
        slave_name: String::from_utf8_lossy(&payload[..msg.bytes]).into_owned(),
        winsize: (ws.ws_row, ws.ws_col),
        output: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

/// A fresh socket path with its listener, removed at teardown.
fn listener(guard: &mut Cleanup) -> (PathBuf, UnixListener) {
    let dir = test_tmp().join(unique_id("console"));
    std::fs::create_dir_all(&dir).unwrap();
    guard.dir(&dir);
    let path = dir.join("console.sock");
    let listener = UnixListener::bind(&path).expect("bind console socket");
    (path, listener)
}

fn terminal_bundle(prefix: &str) -> Bundle {
    let mut b = bundle(prefix);
    edit_spec(&mut b, |s| {
        s["process"]["terminal"] = json!(true);
        s["process"]["consoleSize"] = json!({"height": 40, "width": 123});
    });
    b.write_config().unwrap();
    b
}

/// `run --console-socket` of the bundle while a thread receives the console;
/// any exit status.
fn run_with_console(rt: &Runtime, b: &Bundle, guard: &mut Cleanup) -> (Output, Received) {
    let (path, listener) = listener(guard);
    guard.container(bin(), rt.root(), b.id());
    std::thread::scope(|s| {
        let receiver = s.spawn(|| receive_console(&listener));
        let out = rt
            .output([
                OsStr::new("run"),
                OsStr::new("--bundle"),
                b.path().as_os_str(),
                OsStr::new("--console-socket"),
                path.as_os_str(),
                OsStr::new(b.id()),
            ])
            .expect("wharf-runtime run");
        let received = receiver.join().unwrap_or_else(|_| {
            panic!("no console received; the runtime said:\n{}", describe(&out))
        });
        (out, received)
    })
}

#[test]
fn console_socket_receives_the_pty_master() {
    require_root();
    // Declared first so it drops last: the guard's `delete --force`
    // must run before the runtime's state directory is removed.
    let rt = runtime();
    let mut guard = Cleanup::new();
    let b = terminal_bundle("cons");
    let (out, received) = run_with_console(&rt, &b, &mut guard);
    assert!(
        out.stdout.is_empty(),
        "output bypassed the pty: {}",
        describe(&out)
    );
    assert!(
        received.slave_name.starts_with("/dev/pts/"),
        "payload {:?}",
        received.slave_name
    );
    assert_eq!(received.winsize, (40, 123), "console size");
    // The tty turns \n into \r\n; the report is one JSON line.
    let text = received.output.replace("\r\n", "\n");
    let report: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("probe output through the pty is not JSON ({e}): {text:?}"));
    for stream in ["stdin", "stdout", "stderr"] {
        let tty = &report["tty"][stream];
        assert_eq!(tty["isatty"], true, "{stream}: {tty}");
        assert_eq!(
            tty["ttyname"],
            received.slave_name.as_str(),
            "{stream}: {tty}"
        );
    }
    // The pty is the controlling terminal of the container's session.
    assert_eq!(report["sid"], 1, "{report}");
}

#[test]
fn dev_console_is_the_pty() {
    require_root();
    // Declared first so it drops last: the guard's `delete --force`
    // must run before the runtime's state directory is removed.
    let rt = runtime();
    let mut guard = Cleanup::new();
    let mut b = terminal_bundle("consdev");
    b.probe_args(&["stat", "/dev/console"]);
    b.write_config().unwrap();
    let (_, received) = run_with_console(&rt, &b, &mut guard);
    let text = received.output.replace("\r\n", "\n");
    let st: Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    assert_eq!(st["ok"], true, "/dev/console missing: {st}");
    assert_eq!(st["type"], "char", "{st}");
    assert_eq!(st["rdev_major"], 136, "a devpts slave: {st}");
}

#[test]
fn terminal_without_console_socket_fails_clearly() {
    require_root();
    let rt = runtime();
    let b = terminal_bundle("consnone");
    let out = rt.create(&b, b.id()).unwrap();
    assert_fails_with(
        &out,
        "console",
        "create with terminal and no --console-socket",
    );
}

#[test]
fn exec_with_a_tty_gets_its_own_pty() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let mut b = bundle("consexec");
    b.probe_args(&["sleep", "30"]);
    common::create_and_start(&rt, &b);
    let (path, listener) = listener(&mut guard);
    let (out, received) = std::thread::scope(|s| {
        let receiver = s.spawn(|| receive_console(&listener));
        let out = rt
            .output([
                OsStr::new("exec"),
                OsStr::new("--tty"),
                OsStr::new("--console-socket"),
                path.as_os_str(),
                OsStr::new(b.id()),
                OsStr::new("/probe"),
            ])
            .expect("wharf-runtime exec --tty");
        let received = receiver.join().unwrap_or_else(|_| {
            panic!("no console received; the runtime said:\n{}", describe(&out))
        });
        (out, received)
    });
    assert!(out.status.success(), "{}", describe(&out));
    let text = received.output.replace("\r\n", "\n");
    let report: Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    assert_eq!(report["tty"]["stdout"]["isatty"], true, "{}", report["tty"]);
    assert_eq!(
        report["tty"]["stdin"]["ttyname"],
        received.slave_name.as_str()
    );
    // Its own session, apart from the init's.
    assert_ne!(report["sid"], 1, "{report}");
    assert_eq!(report["sid"], report["pid"], "{report}");
}
