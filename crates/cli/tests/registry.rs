//! End-to-end against a real `docker-registry` on loopback: push and pull
//! back, pull progress under a pty (docker's per-layer lines, cursor
//! movement, bars) and plain lines without one, login/logout with -u/-p
//! and --password-stdin against htpasswd (config.json under DOCKER_CONFIG
//! or HOME), and private push/pull with the stored credentials.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::Daemon;
use wharf_testkit_daemon::Registry;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Imports a one-layer image of `mib` MiB of incompressible bytes as `name`.
fn import_big(d: &Daemon, name: &str, mib: usize) {
    let mut data = vec![0u8; mib << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (name.len() as u64);
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x.to_le_bytes()[3];
    }
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    t.append_data(&mut h, "blob.bin", &data[..]).unwrap();
    let file = d.dir.join("big.tar");
    std::fs::write(&file, t.into_inner().unwrap()).unwrap();
    d.ok(&["import", file.to_str().unwrap(), name]);
}

/// Runs `wharf args` on a pty (util-linux `script`), 160 columns wide;
/// returns everything written to the terminal.
fn on_pty(d: &Daemon, args: &[&str]) -> String {
    let cmd = format!(
        "stty cols 160 rows 50; exec {} {}",
        common::WHARF,
        args.join(" ")
    );
    let mut c = Command::new("script");
    c.args(["-qfec", &cmd, "/dev/null"])
        .env("WHARF_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("cfg"));
    let o = wharf_testkit::run_bounded(&mut c, Duration::from_secs(120)).unwrap();
    assert!(o.status.success(), "{}\n{}", out(&o), err(&o));
    out(&o)
}

#[test]
fn push_pull_and_progress() {
    let d = Daemon::start();
    let reg = Registry::start();
    let host = reg.host();
    let bb = format!("{host}/cli/bb:1");

    // push: docker's lines, then the same for docker's CLI (already there).
    d.ok(&["tag", "busybox", &bb]);
    let pushed = d.ok(&["push", &bb]);
    let lines: Vec<&str> = pushed.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{host}/cli/bb]"),
        "{pushed}"
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{pushed}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("1: digest: sha256:") && last.contains(" size: "),
        "{pushed}"
    );
    let again = d.ok(&["push", &bb]);
    assert!(again.contains(": Layer already exists"), "{again}");
    let docker_again = out(&d.docker(&["push", &bb]));
    assert_eq!(again, docker_again);
    assert!(!again.contains('\x1b'), "no escapes without a terminal");

    // pull back (layer shared with busybox: Already exists), then run it.
    d.ok(&["rmi", &bb]);
    let pulled = d.ok(&["pull", &bb]);
    let lines: Vec<&str> = pulled.lines().collect();
    assert_eq!(lines[0], "1: Pulling from cli/bb", "{pulled}");
    assert!(
        lines.iter().any(|l| l.ends_with(": Already exists")),
        "{pulled}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Digest: sha256:")),
        "{pulled}"
    );
    // As docker: the tag is new (the image itself was present under
    // another name), so the image is "newer" and its layer already exists.
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {bb}\n")),
        "{pulled}"
    );
    assert!(pulled.contains(": Already exists"), "{pulled}");
    assert!(!pulled.contains("Pulling fs layer"), "{pulled}");
    assert_eq!(lines.last().unwrap(), &bb);
    assert_eq!(d.ok(&["run", "--rm", &bb, "echo", "pulled"]), "pulled\n");
    let up = d.ok(&["pull", &bb]);
    assert!(
        up.contains(&format!("Status: Image is up to date for {bb}")),
        "{up}"
    );
    // -q: the name only.
    assert_eq!(d.ok(&["pull", "-q", &bb]), format!("{bb}\n"));
    let (code, e) = d.fails(&["pull", &format!("{host}/cli/none:1")]);
    assert_eq!(code, 1);
    assert!(e.starts_with("Error response from daemon: "), "{e}");

    // A fresh 6 MiB layer pulled on a pty: docker's per-layer lines,
    // rewritten in place with bars and sizes.
    let big = format!("{host}/cli/big:1");
    import_big(&d, &big, 6);
    d.ok(&["push", &big]);
    d.ok(&["rmi", &big]);
    let tty = on_pty(&d, &["pull", &big]);
    assert!(
        tty.contains("\x1b[2K\r"),
        "line erase on a terminal: {tty:?}"
    );
    assert!(tty.contains("\x1b[1A"), "cursor up on a terminal: {tty:?}");
    for status in [
        "Pulling fs layer",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ] {
        assert!(tty.contains(&format!(": {status}")), "{status}: {tty:?}");
    }
    // Downloading with a bar and sizes: `[====>   ]  1.2MB/6.3MB`.
    let dl = tty
        .split(['\r', '\n'])
        .find(|l| l.contains(": Downloading ["))
        .unwrap_or_else(|| panic!("no Downloading bar: {tty:?}"));
    let bar = &dl[dl.find('[').unwrap()..];
    // docker's JSONProgress: '=' x pct/2, '>', ' ' x (50 - pct/2).
    assert_eq!(bar.find(']'), Some(52), "{dl:?}");
    assert!(
        bar[1..52].chars().all(|c| c == '=' || c == '>' || c == ' '),
        "{dl:?}"
    );
    let (cur, total) = bar[53..].trim().split_once('/').unwrap();
    assert!(cur.ends_with('B') && total.ends_with("MB"), "{dl:?}");
    assert!(tty.contains("Digest: sha256:"), "{tty:?}");
    assert!(
        tty.contains(&format!("Status: Downloaded newer image for {big}")),
        "{tty:?}"
    );

    // Without a terminal: plain lines, no escapes, no bars.
    d.ok(&["rmi", &big]);
    let plain = d.ok(&["pull", &big]);
    assert!(!plain.contains('\x1b') && !plain.contains('['), "{plain}");
    let layer_lines: Vec<&str> = plain
        .lines()
        .filter(|l| l.split(": ").next().is_some_and(|id| id.len() == 12))
        .map(|l| l.split_once(": ").unwrap().1)
        .collect();
    assert_eq!(
        layer_lines,
        [
            "Pulling fs layer",
            "Verifying Checksum",
            "Download complete",
            "Pull complete"
        ],
        "{plain}"
    );

    // push on a pty: Preparing/Pushing/Pushed rewritten in place.
    let big2 = format!("{host}/cli/big2:1");
    d.ok(&["tag", &big, &big2]);
    let tty = on_pty(&d, &["push", &big2]);
    assert!(tty.contains("\x1b[2K\r"), "{tty:?}");
    assert!(
        tty.contains(": Layer already exists") || tty.contains(": Mounted from"),
        "{tty:?}"
    );
    assert!(tty.contains("1: digest: sha256:"), "{tty:?}");
}

#[test]
fn login_logout_and_private_images() {
    let d = Daemon::start();
    let reg = Registry::start_htpasswd("alice", "s3cret");
    let host = reg.host();
    let cfg = d.dir.join("cfg").join("config.json");

    // Without credentials the registry refuses.
    let private = format!("{host}/team/bb:1");
    d.ok(&["tag", "busybox", &private]);
    let (code, e) = d.fails(&["push", &private]);
    assert_eq!(code, 1);
    assert!(
        e.to_lowercase().contains("unauthorized") || e.contains("no basic auth"),
        "{e}"
    );

    // Wrong password: exit 1 and docker's error line; nothing stored.
    let w = d.wharf_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"wrong\n",
    );
    assert_eq!(w.status.code(), Some(1));
    let mut k = Command::new(common::DOCKER);
    k.args(["login", "-u", "alice", "--password-stdin", &host])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("cfg"));
    let k = {
        use std::io::Write as _;
        let mut child = k
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"wrong\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(w.status.code(), k.status.code());
    assert_eq!(
        err(&w).lines().last(),
        err(&k).lines().last(),
        "{}",
        err(&w)
    );
    assert!(!cfg.exists() || !std::fs::read_to_string(&cfg).unwrap().contains(&host));

    // --password-stdin: Login Succeeded; config.json holds base64(user:pass).
    let o = d.wharf_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"s3cret\n",
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "Login Succeeded\n");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!(v["auths"][&host]["auth"], "YWxpY2U6czNjcmV0");

    // The stored credentials serve push and pull.
    let pushed = d.ok(&["push", &private]);
    assert!(pushed.contains(": Pushed"), "{pushed}");
    d.ok(&["rmi", &private]);
    let pulled = d.ok(&["pull", &private]);
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    assert_eq!(pulled.lines().last(), Some(private.as_str()), "{pulled}");

    // logout removes them; a second logout says so.
    assert_eq!(
        d.ok(&["logout", &host]),
        format!("Removing login credentials for {host}\n")
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"].get(&host).is_none(), "{v}");
    assert_eq!(
        d.ok(&["logout", &host]),
        format!("Not logged in to {host}\n")
    );

    // -u/-p with HOME (no DOCKER_CONFIG): ~/.docker/config.json, and
    // docker's warning about --password on stderr.
    let home = d.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = d.wharf_cmd(&["login", "-u", "alice", "-p", "s3cret", &host]);
    c.env_remove("DOCKER_CONFIG").env("HOME", &home);
    let o = wharf_testkit::run_bounded(&mut c, Duration::from_secs(60)).unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "Login Succeeded\n");
    assert_eq!(
        err(&o),
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(".docker/config.json")).unwrap()).unwrap();
    assert_eq!(v["auths"][&host]["auth"], "YWxpY2U6czNjcmV0");
    // Flag misuse as docker words it.
    let (code, e) = d.fails(&["login", "--password-stdin", &host]);
    assert_eq!(code, 1);
    assert!(
        e.contains("Must provide --username with --password-stdin"),
        "{e}"
    );
}
