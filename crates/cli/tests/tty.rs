//! The terminal path under tmux: `wharf run -it busybox sh`, a typed
//! command's output read from the pane, the window size followed on
//! resize, detach with ctrl-p ctrl-q, `attach` again, exit, and the
//! caller's terminal settings restored.

mod common;

use std::time::Duration;

use common::Daemon;
use wharf_testkit::Tmux;

fn start_shell(d: &Daemon, tmux: &Tmux) {
    let shell = format!(
        "stty -a > {dir}/before; WHARF_HOST={host} {wharf} run -it --name tt busybox sh; echo wharf-exit=$?; stty -a > {dir}/after; echo stty-saved; sleep 600",
        dir = d.dir.display(),
        host = d.host(),
        wharf = common::WHARF
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        &shell,
    ]);
    tmux.wait_for("/ #");
}

fn assert_terminal_restored(d: &Daemon, tmux: &Tmux) {
    tmux.wait_for("stty-saved");
    // Everything but the first line (speed and the window size, which the
    // test changes on purpose).
    let modes = |f: &str| {
        let s = std::fs::read_to_string(d.dir.join(f)).unwrap();
        s.lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    assert!(modes("before").contains("icanon"), "{}", modes("before"));
    assert_eq!(
        modes("before"),
        modes("after"),
        "terminal settings not restored"
    );
}

#[test]
fn interactive_terminal_under_tmux() {
    let d = Daemon::start();
    let tmux = Tmux::new("wt");
    start_shell(&d, &tmux);
    tmux.cmd(&["send-keys", "-t", "t", "echo typed-$((40+2))", "Enter"]);
    tmux.wait_for("typed-42");
    tmux.cmd(&["send-keys", "-t", "t", "stty size", "Enter"]);
    tmux.wait_for("30 100");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "90", "-y", "25"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "stty size", "Enter"]);
    tmux.wait_for("25 90");
    tmux.cmd(&["send-keys", "-t", "t", "exit 7", "Enter"]);
    tmux.wait_for("wharf-exit=7");
    assert_terminal_restored(&d, &tmux);
}

#[test]
fn detach_and_attach_again_under_tmux() {
    let d = Daemon::start();
    let tmux = Tmux::new("wt");
    start_shell(&d, &tmux);
    // Detach: the container keeps running, wharf exits 0.
    tmux.cmd(&["send-keys", "-t", "t", "C-p", "C-q"]);
    tmux.wait_for("wharf-exit=0");
    assert_terminal_restored(&d, &tmux);
    assert_eq!(
        d.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "tt running\n"
    );
    // Attach, detach again: as docker, attach says so and exits 1.
    let attach = format!(
        "WHARF_HOST={host} {wharf} attach tt; echo attach-exit=$?; sleep 600",
        host = d.host(),
        wharf = common::WHARF
    );
    tmux.cmd(&["respawn-pane", "-k", "-t", "t", &attach]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "C-p", "C-q"]);
    tmux.wait_for("attach-exit=1");
    tmux.wait_for("read escape sequence");
    // Attach again, exit the shell: attach returns its exit code.
    tmux.cmd(&["respawn-pane", "-k", "-t", "t", &attach]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "echo again; exit 5", "Enter"]);
    tmux.wait_for("attach-exit=5");
}
