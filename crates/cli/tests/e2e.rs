//! End-to-end: the `wharf` binary against a temporary wharfd, the seeds'
//! scenario typed as a person would, output compared in structure with the
//! real docker CLI run against the same daemon, and exit codes.

mod common;

use common::Daemon;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[test]
fn run_exit_codes_and_streams() {
    let d = Daemon::start();
    assert_eq!(
        d.ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    // stdout and stderr stay apart without a TTY.
    let o = d.wharf(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // A command that does not exist: 127 and docker's message shape.
    let (code, err) = d.fails(&["run", "--rm", "busybox", "/no/such/binary"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.starts_with("wharf: Error response from daemon: "),
        "{err}"
    );
    assert!(
        err.contains("Run 'wharf run --help' for more information"),
        "{err}"
    );
    // A command that cannot be invoked (a directory): 126.
    let (code, err) = d.fails(&["run", "--rm", "busybox", "/etc"]);
    assert_eq!(code, 126, "{err}");
    // Piped stdin with -i.
    let o = d.wharf_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"hi there\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi there\n");
    // `--` ends flags; -e KEY takes the caller's value; --env-file.
    let envf = d.dir.join("env.list");
    std::fs::write(&envf, "# comment\nFROM_FILE=yes\n").unwrap();
    let o = d
        .wharf_cmd(&[
            "run",
            "--rm",
            "-e",
            "CALLER_VAR",
            "--env-file",
            envf.to_str().unwrap(),
            "--",
            "busybox",
            "sh",
            "-c",
            "echo $CALLER_VAR $FROM_FILE",
        ])
        .env("CALLER_VAR", "from-caller")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "from-caller yes\n", "{}", stderr(&o));
    // Refused by the daemon (no such image, pull not possible): 125.
    let (code, err) = d.fails(&["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.starts_with("wharf: Error response from daemon: "),
        "{err}"
    );
    // Bad flag values: 125 with docker's wording.
    let (code, err) = d.fails(&["run", "-m", "lots", "busybox"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"),
        "{err}"
    );
    let (code, _) = d.fails(&["ps", "--bogus"]);
    assert_eq!(code, 125);
}

#[test]
fn seeds_scenario() {
    let d = Daemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--env",
        "FOO=bar",
        "-l",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "echo $FOO; sleep 1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

    // ps: docker's header, the same layout as the docker CLI prints.
    let ps = d.ok(&["ps"]);
    let docker_ps = stdout(&d.docker(&["ps"]));
    assert_eq!(
        first_line(&ps),
        first_line(&docker_ps),
        "ps header\nwharf:\n{ps}\ndocker:\n{docker_ps}"
    );
    assert!(
        first_line(&ps).starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{ps}"
    );
    let row = ps.lines().nth(1).unwrap();
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.ends_with("web"), "{row}");
    assert!(row.contains("Up "), "{row}");
    // Column positions agree with docker's (same widths for the same data;
    // only the relative times may differ in length).
    let docker_row = docker_ps.lines().nth(1).unwrap();
    assert_eq!(
        row.find("busybox"),
        docker_row.find("busybox"),
        "\n{row}\n{docker_row}"
    );
    assert_eq!(
        row.find("\"sh -c"),
        docker_row.find("\"sh -c"),
        "\n{row}\n{docker_row}"
    );
    assert_eq!(
        d.ok(&["container", "ls"]).lines().count(),
        ps.lines().count()
    );
    assert_eq!(d.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(d.ok(&["ps", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(
        d.ok(&[
            "ps",
            "--format",
            "{{.Names}} {{.Label \"tier\"}} {{.State}}"
        ]),
        "web front running\n"
    );
    let table = d.ok(&["ps", "--format", "table {{.Names}}\\t{{.Image}}"]);
    assert_eq!(table, "NAMES     IMAGE\nweb       busybox\n");
    // Every field as docker renders it (times aside: they move between calls).
    let json_row = |s: String| {
        let mut v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        v.as_object_mut().unwrap().remove("RunningFor");
        v.as_object_mut().unwrap().remove("Status");
        v
    };
    assert_eq!(
        json_row(d.ok(&["ps", "--format", "{{json .}}"])),
        json_row(stdout(&d.docker(&["ps", "--format", "{{json .}}"]))),
        "json rows"
    );

    // logs, exec, inspect.
    assert_eq!(d.ok(&["logs", "web"]), "bar\n");
    assert_eq!(d.ok(&["exec", "web", "echo", "hi"]), "hi\n");
    let o = d.wharf(&["exec", "web", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo $X $(pwd)"
        ]),
        "1 /tmp\n"
    );
    let env = d.ok(&["inspect", "--format", "{{.Config.Env}}", "web"]);
    assert!(env.starts_with('[') && env.contains("FOO=bar"), "{env}");
    assert_eq!(
        env,
        stdout(&d.docker(&["inspect", "--format", "{{.Config.Env}}", "web"]))
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Running}} {{json .Config.Labels}}",
            "web"
        ]),
        "/web true {\"tier\":\"front\"}\n"
    );
    let full: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "web"])).unwrap();
    assert_eq!(full[0]["Id"], id);
    assert_eq!(
        d.ok(&["container", "inspect", "-f", "{{.Id}}", "web"])
            .trim(),
        id
    );
    let o = d.wharf(&["inspect", "nosuchthing"]);
    assert_eq!(o.status.code(), Some(1));
    let docker_o = d.docker(&["inspect", "nosuchthing"]);
    assert_eq!(
        (stdout(&o), stderr(&o)),
        (stdout(&docker_o), stderr(&docker_o))
    );
    // The whole document, byte for byte as docker prints it.
    assert_eq!(
        d.ok(&["inspect", "web"]),
        stdout(&d.docker(&["inspect", "web"]))
    );

    // top, pause/unpause, rename, stop/start/restart, kill, wait.
    let top = d.ok(&["top", "web"]);
    assert!(first_line(&top).contains("PID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
    assert_eq!(d.ok(&["pause", "web"]), "web\n");
    assert_eq!(d.ok(&["ps", "--format", "{{.State}}"]), "paused\n");
    assert_eq!(d.ok(&["unpause", "web"]), "web\n");
    d.ok(&["rename", "web", "web2"]);
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "web2\n");
    assert_eq!(d.ok(&["stop", "-t", "1", "web2"]), "web2\n");
    let status = d.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (137) "), "{status}");
    assert_eq!(d.ok(&["ps", "-q"]), "");
    assert_eq!(d.ok(&["start", "web2"]), "web2\n");
    assert_eq!(d.ok(&["restart", "-t", "1", "web2"]), "web2\n");
    assert_eq!(d.ok(&["kill", "web2"]), "web2\n");
    assert_eq!(d.ok(&["wait", "web2"]), "137\n");

    // Errors: one line, docker's words, exit 1.
    let o = d.wharf(&["rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), stderr(&d.docker(&["rm", "nosuch"])));
    let o = d.wharf(&["stop", "nosuch"]);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    // create + start -a; rm -f $(wharf ps -aq).
    let created = d.ok(&["create", "--name", "c1", "busybox", "echo", "from-create"]);
    assert_eq!(created.trim().len(), 64);
    assert_eq!(
        d.ok(&["ps", "-a", "--filter", "name=c1", "--format", "{{.Status}}"]),
        "Created\n"
    );
    assert_eq!(d.ok(&["start", "-a", "c1"]), "from-create\n");
    d.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let all = d.ok(&["ps", "-aq"]);
    let ids: Vec<&str> = all.split_whitespace().collect();
    assert_eq!(ids.len(), 3, "{all}");
    // Removed together (as docker's CLI: up to 50 requests at once), printed
    // in the order named, a failure in between on stderr and exit 1.
    let mut args = vec!["rm", "-f", ids[0], "nosuch"];
    args.extend(ids[1..].iter().copied());
    let o = d.wharf(&args);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), format!("{}\n{}\n{}\n", ids[0], ids[1], ids[2]));
    assert_eq!(stderr(&o), stderr(&d.docker(&["rm", "-f", "nosuch"])));
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn system_commands() {
    let d = Daemon::start();
    let v = d.ok(&["version"]);
    assert!(v.starts_with("Client:\n Version:"), "{v}");
    assert!(v.contains("\nServer: "), "{v}");
    assert_eq!(
        d.ok(&["version", "--format", "{{.Client.ApiVersion}}"])
            .trim(),
        "1.50"
    );
    let server = d.ok(&["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]);
    assert_eq!(
        server,
        stdout(&d.docker(&["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]))
    );
    let info = d.ok(&["info"]);
    for k in [
        " Containers: ",
        "  Running: ",
        " Images: ",
        " Server Version: ",
        " Cgroup Version: ",
        " Docker Root Dir: ",
    ] {
        assert!(info.contains(k), "missing {k:?} in\n{info}");
    }
    assert_eq!(
        d.ok(&["info", "--format", "{{.Containers}}"]),
        stdout(&d.docker(&["info", "--format", "{{.Containers}}"]))
    );
    // Events: a start shows up as docker's default line.
    let since = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    d.ok(&["run", "--rm", "--name", "evt", "busybox", "true"]);
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let ev = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=start",
    ]);
    let line = ev
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no events: {ev}"));
    assert!(
        line.contains(" container start ") && line.contains("name=evt"),
        "{line}"
    );
    let fmt = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=start",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(fmt, "container start evt\n");
}

#[test]
fn completions_and_help() {
    for shell in ["bash", "zsh", "fish"] {
        let o = std::process::Command::new(common::WHARF)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("wharf"),
            "{shell}"
        );
    }
    let o = std::process::Command::new(common::WHARF)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("--sig-proxy") && help.contains("--hostname"),
        "{help}"
    );
}

#[test]
fn no_daemon_is_one_clear_line() {
    let o = std::process::Command::new(common::WHARF)
        .args(["-H", "unix:///tmp/wharf-no-such-daemon.sock", "ps"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "Cannot connect to the wharf daemon at unix:///tmp/wharf-no-such-daemon.sock."
        ),
        "{err}"
    );
}

#[test]
fn hello_world_and_images() {
    let d = Daemon::start();
    let o = d.wharf(&["run", "--rm", "hello-world"]);
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}\nlog: {}",
        stdout(&o),
        stderr(&o),
        common::tail(&d.log(), 30)
    );
    assert!(stdout(&o).contains("Hello from Wharf!"), "{}", stdout(&o));
    assert!(
        stderr(&o).starts_with("Unable to find image 'hello-world:latest' locally\n"),
        "{}",
        stderr(&o)
    );
    // Second run: the image is there, no pull.
    let o = d.wharf(&["run", "--rm", "hello-world"]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");

    let images = d.ok(&["images"]);
    let docker_images = stdout(&d.docker(&["images"]));
    assert_eq!(
        first_line(&images),
        first_line(&docker_images),
        "\n{images}\n{docker_images}"
    );
    assert!(
        images.lines().any(|l| l.starts_with("hello-world ")),
        "{images}"
    );
    assert!(
        images.lines().any(|l| l.starts_with("busybox ")),
        "{images}"
    );
    let bb = d.ok(&["image", "ls", "busybox"]);
    assert_eq!(bb.lines().count(), 2, "{bb}");
    assert_eq!(bb, stdout(&d.docker(&["image", "ls", "busybox"])));
    assert_eq!(d.ok(&["images", "-q", "busybox"]).trim().len(), 12);
    d.ok(&["tag", "busybox", "bb:v1"]);
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "bb"]),
        "bb:v1\n"
    );
    assert_eq!(d.ok(&["rmi", "bb:v1"]), "Untagged: bb:v1\n");
    let hist = d.ok(&["history", "busybox"]);
    assert_eq!(
        first_line(&hist),
        first_line(&stdout(&d.docker(&["history", "busybox"])))
    );
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Config.Cmd}}", "hello-world"]),
        "[/hello]\n"
    );
    // save and load round trip.
    let tar = d.dir.join("bb.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    d.ok(&["rmi", "busybox"]);
    let loaded = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: busybox:latest"), "{loaded}");
    assert_eq!(
        d.ok(&["rmi", "hello-world"]).lines().next(),
        Some("Untagged: hello-world:latest")
    );
    let (code, err) = d.fails(&["rmi", "nosuchimage"]);
    assert_eq!(code, 1);
    assert_eq!(err, stderr(&d.docker(&["rmi", "nosuchimage"])));
}
