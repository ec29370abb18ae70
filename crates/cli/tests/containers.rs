//! End-to-end: the container commands beyond run/ps/logs basics (cp, diff,
//! export, commit, update, stats, port, prune, inspect --type/-s, the ps
//! and logs flags), each compared with the real docker CLI run against the
//! same temporary wharfd: same lines, same columns, same exit codes.

mod common;

use std::process::Output;

use common::Daemon;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// wharf and docker print the same stdout, stderr and exit code.
fn same(d: &Daemon, args: &[&str]) -> String {
    let w = d.wharf(args);
    let k = d.docker(args);
    assert_eq!(
        (w.status.code(), out(&w), err(&w)),
        (k.status.code(), out(&k), err(&k)),
        "wharf vs docker {args:?}"
    );
    out(&w)
}

/// wharf and docker fail alike: same exit code and error line.
fn same_failure(d: &Daemon, args: &[&str]) -> String {
    let w = d.wharf(args);
    assert!(!w.status.success(), "wharf {args:?} succeeded");
    let k = d.docker(args);
    assert_eq!(w.status.code(), k.status.code(), "exit codes of {args:?}");
    // The last line: docker's client sometimes logs its own tar-writer
    // noise before the error.
    let last = |s: String| s.lines().last().unwrap_or("").to_owned();
    assert_eq!(last(err(&w)), last(err(&k)), "error lines of {args:?}");
    assert_eq!(err(&w).lines().count(), 1, "one error line: {}", err(&w));
    err(&w)
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn cp_diff_export() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "files",
        "busybox",
        "sh",
        "-c",
        "mkdir /newdir && echo x > /newdir/f && rm /etc/group && sleep 1000",
    ]);
    // Wait for the shell to make its changes.
    for _ in 0..100 {
        if d.wharf(&["exec", "files", "cat", "/newdir/f"])
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // diff: A/C/D lines, identical to docker's.
    let diff = same(&d, &["diff", "files"]);
    for l in ["C /etc", "D /etc/group", "A /newdir", "A /newdir/f"] {
        assert!(diff.lines().any(|x| x == l), "{l} missing:\n{diff}");
    }
    same_failure(&d, &["diff", "nosuch"]);

    // cp into the running container: a file, a directory, a tar on stdin.
    let local = d.dir.join("local");
    std::fs::create_dir_all(local.join("tree/sub")).unwrap();
    std::fs::write(local.join("one.txt"), "one\n").unwrap();
    std::fs::write(local.join("tree/sub/two.txt"), "two\n").unwrap();
    let p = |n: &str| local.join(n).display().to_string();
    assert_eq!(d.ok(&["cp", &p("one.txt"), "files:/tmp/"]), "");
    d.ok(&["cp", &p("tree"), "files:/tmp/tree2"]);
    assert_eq!(d.ok(&["exec", "files", "cat", "/tmp/one.txt"]), "one\n");
    assert_eq!(
        d.ok(&["exec", "files", "cat", "/tmp/tree2/sub/two.txt"]),
        "two\n"
    );
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    t.append_data(&mut h, "piped.txt", &b"piped\n"[..]).unwrap();
    let o = d.wharf_stdin(&["cp", "-", "files:/tmp"], &t.into_inner().unwrap());
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(d.ok(&["exec", "files", "cat", "/tmp/piped.txt"]), "piped\n");

    // cp out of it: a file to a new name, a directory into a directory,
    // a tar on stdout (the same entries docker streams).
    d.ok(&["cp", "files:/newdir/f", &p("f-copy")]);
    assert_eq!(
        std::fs::read_to_string(local.join("f-copy")).unwrap(),
        "x\n"
    );
    d.ok(&["cp", "files:/newdir", &p("tree")]);
    assert_eq!(
        std::fs::read_to_string(local.join("tree/newdir/f")).unwrap(),
        "x\n"
    );
    let w = d.wharf(&["cp", "files:/tmp/tree2", "-"]);
    let k = d.docker(&["cp", "files:/tmp/tree2", "-"]);
    assert!(w.status.success(), "{}", err(&w));
    assert_eq!(tar_names(&w.stdout), tar_names(&k.stdout));
    assert!(
        tar_names(&w.stdout).contains(&"tree2/sub/two.txt".to_owned()),
        "{:?}",
        tar_names(&w.stdout)
    );

    // Errors as docker words them.
    same_failure(&d, &["cp", "files:/nonexistent", &p("x")]);
    same_failure(&d, &["cp", "nosuch:/etc/hostname", &p("x")]);
    same_failure(&d, &["cp", &p("one.txt"), "files:/nodir/"]);
    same_failure(&d, &["cp", "files:/newdir/f", &p("nodir/")]);
    let (code, e) = d.fails(&["cp", &p("missing"), "files:/tmp"]);
    assert_eq!(code, 1);
    assert_eq!(e, err(&d.docker(&["cp", &p("missing"), "files:/tmp"])));

    // A stopped container: both directions still work.
    d.ok(&["stop", "-t", "0", "files"]);
    d.ok(&["cp", "files:/tmp/one.txt", &p("from-stopped.txt")]);
    assert_eq!(
        std::fs::read_to_string(local.join("from-stopped.txt")).unwrap(),
        "one\n"
    );
    d.ok(&["cp", &p("one.txt"), "files:/tmp/while-stopped.txt"]);
    let o = d.wharf(&["cp", "files:/tmp/while-stopped.txt", "-"]);
    assert_eq!(tar_names(&o.stdout), ["while-stopped.txt"], "{}", err(&o));

    // export: -o and stdout carry the same tree as docker's export.
    let file = d.dir.join("export.tar");
    assert_eq!(d.ok(&["export", "-o", file.to_str().unwrap(), "files"]), "");
    let from_file = tar_names(&std::fs::read(&file).unwrap());
    let o = d.wharf(&["export", "files"]);
    assert!(o.status.success());
    assert_eq!(tar_names(&o.stdout), from_file);
    assert_eq!(from_file, tar_names(&d.docker(&["export", "files"]).stdout));
    assert!(from_file.contains(&"newdir/f".to_owned()), "{from_file:?}");
    assert!(!from_file.contains(&"etc/group".to_owned()));
    same_failure(&d, &["export", "nosuch"]);
}

#[test]
fn update_stats_port_inspect() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "-p",
        "18080:80",
        "-p",
        "127.0.0.1::53/udp",
        "busybox",
        "sleep",
        "1000",
    ]);
    // update: docker's one line per container; the values land in inspect.
    assert_eq!(
        same(
            &d,
            &[
                "update",
                "--memory",
                "64m",
                "--cpus",
                "0.5",
                "--restart",
                "on-failure:3",
                "lim"
            ]
        ),
        "lim\n"
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "lim"
        ]),
        "67108864 500000000 on-failure:3\n"
    );
    same_failure(&d, &["update", "lim"]);
    same_failure(&d, &["update", "--memory", "1k", "lim"]);
    same_failure(&d, &["update", "--memory", "64m", "nosuch"]);

    // stats --no-stream: docker's header; --format per container.
    let w = d.ok(&["stats", "--no-stream"]);
    let k = out(&d.docker(&["stats", "--no-stream"]));
    assert_eq!(w.lines().next(), k.lines().next(), "\n{w}\n{k}");
    assert!(
        w.lines()
            .next()
            .unwrap()
            .starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT"),
        "{w}"
    );
    let row = w.lines().nth(1).unwrap();
    assert!(row.contains(" / 64MiB "), "memory limit from update: {row}");
    assert_eq!(
        same(
            &d,
            &["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"]
        ),
        "lim 1\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(d.ok(&["stats", "--no-stream", "--format", "json"]).trim()).unwrap();
    assert_eq!(json["Name"], "lim");

    // port: published ports are declared but bridge networking does not
    // serve them yet; wharf prints what docker prints for this daemon.
    same(&d, &["port", "lim"]);
    same_failure(&d, &["port", "lim", "80"]);
    same_failure(&d, &["port", "lim", "53/udp"]);
    same_failure(&d, &["port", "nosuch"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", "lim"]),
        "{\"53/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"\"}],\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"18080\"}]}\n"
    );

    // inspect --type and -s.
    same(
        &d,
        &["inspect", "--type", "image", "-f", "{{.Id}}", "busybox"],
    );
    same(
        &d,
        &["inspect", "--type", "container", "-f", "{{.Name}}", "lim"],
    );
    same_failure(&d, &["inspect", "--type", "container", "busybox"]);
    same_failure(&d, &["inspect", "--type", "image", "lim"]);
    same_failure(&d, &["inspect", "--type", "bogus", "lim"]);
    let sizes = same(
        &d,
        &["inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "lim"],
    );
    let n: Vec<u64> = sizes
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(n[1] > 1_000_000 && n[1] >= n[0], "{sizes}");
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "-s", "lim"])).unwrap();
    assert!(v[0]["SizeRootFs"].as_u64().unwrap() > 0);
}

#[test]
fn ps_flags_logs_flags_and_prune() {
    let d = Daemon::start();
    d.ok(&["run", "--name", "first", "busybox", "true"]);
    d.ok(&[
        "run",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; echo three",
    ]);
    d.ok(&["run", "-d", "--name", "last", "busybox", "sleep", "1000"]);

    // ps -n/-l/-s/--no-trunc/-f/--format table: the same rows as docker
    // (times move between the two calls, so compare without them).
    let strip = |s: String| -> String {
        s.lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| {
                        !c.is_empty()
                            && !c.contains(" ago")
                            && !c.starts_with("Up ")
                            && !c.starts_with("Exited")
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for args in [
        &["ps", "-n", "2"][..],
        &["ps", "-l"],
        &["ps", "-a", "-s"],
        &["ps", "-a", "--no-trunc"],
        &["ps", "-a", "-f", "status=exited"],
        &["ps", "-a", "-f", "name=talk"],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\t{{.Names}}\t{{.Size}}",
        ],
        &["ps", "-a", "-q", "-f", "status=running"],
    ] {
        let w = d.wharf(args);
        let k = d.docker(args);
        assert!(w.status.success(), "{args:?}: {}", err(&w));
        assert_eq!(strip(out(&w)), strip(out(&k)), "{args:?}");
    }
    let latest = d.ok(&["ps", "-l", "--format", "{{.Names}}"]);
    assert_eq!(latest, "last\n");
    assert_eq!(
        d.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        "last\ntalker\n"
    );
    let sized = d.ok(&["ps", "-s"]);
    assert!(
        sized.lines().next().unwrap().ends_with("   SIZE"),
        "{sized}"
    );
    assert!(sized.contains("(virtual "), "{sized}");
    assert_eq!(
        d.ok(&["ps", "-a", "--no-trunc", "-q"])
            .lines()
            .map(str::len)
            .max(),
        Some(64)
    );
    let (code, _) = d.fails(&["ps", "-f", "bogus"]);
    assert_ne!(code, 0);

    // logs -t/--details/--since/--until/-n: the same lines as docker.
    for args in [
        &["logs", "-t", "talker"][..],
        &["logs", "--details", "talker"],
        &["logs", "-n", "1", "talker"],
        &["logs", "--since", "2000-01-01", "talker"],
        &["logs", "--until", "2000-01-01", "talker"],
        &[
            "logs",
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2100-01-02",
            "talker",
        ],
        &["logs", "--since", "10m", "talker"],
    ] {
        same(&d, args);
    }
    let t = d.ok(&["logs", "-t", "talker"]);
    let first = t.lines().next().unwrap();
    let (ts, rest) = first.split_once(' ').unwrap();
    assert_eq!(rest, "one");
    assert!(ts.ends_with('Z') && ts.len() >= 20, "{ts}");
    assert_eq!(d.ok(&["logs", "--until", "2000-01-01", "talker"]), "");
    same_failure(&d, &["logs", "--since", "bogus", "talker"]);

    // container prune: docker's listing and total line; declined prompt is
    // not an error.
    let o = d.wharf_stdin(&["container", "prune"], b"n\n");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).starts_with("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "),
        "{}",
        out(&o)
    );
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 3);
    let pruned = d.ok(&["container", "prune", "-f"]);
    let lines: Vec<&str> = pruned.lines().collect();
    assert_eq!(lines[0], "Deleted Containers:", "{pruned}");
    assert_eq!(lines[1].len(), 64);
    assert_eq!(lines[2].len(), 64);
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with("Total reclaimed space: "), "{pruned}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "last\n");
    assert_eq!(
        same(&d, &["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn commit_then_run() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo committed > /data/f",
    ]);
    let id = d.ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "Me <me@example.com>",
        "-c",
        "CMD [\"cat\", \"/data/f\"]",
        "-c",
        "ENV FOO=bar",
        "src",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{.Config.Cmd}}",
            "committed:v1"
        ]),
        "Me <me@example.com>|a message|[cat /data/f]\n"
    );
    assert_eq!(d.ok(&["run", "--rm", "committed:v1"]), "committed\n");
    assert_eq!(
        d.ok(&["run", "--rm", "committed:v1", "sh", "-c", "echo $FOO"]),
        "bar\n"
    );
    same_failure(&d, &["commit", "nosuch"]);
}
