//! `docker cp` (both ways, running and stopped containers, bind mounts,
//! hostile symlinks and archives), `docker export`, `docker diff`,
//! `docker update` and attach with `logs=1`, with the real docker CLI
//! against a temporary wharfd.

mod common;

use std::path::Path;

use common::Daemon;

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

fn mounted_under(p: &Path) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.display().to_string();
    mi.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&p)))
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let d = Daemon::start();
    let host = d.dir.join("host");
    let bind = d.dir.join("bind");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::create_dir_all(&bind).unwrap();
    write(&host.join("f.txt"), "hello from the host\n");
    write(&host.join("tree/a"), "a\n");
    write(&host.join("tree/sub/b"), "b\n");
    let bind_arg = format!("{}:/data", bind.display());
    d.ok(&[
        "run", "-d", "--name", "c1", "-v", &bind_arg, "busybox", "sleep", "1000",
    ]);

    // Host -> running container: a file, a tree, into a bind mount.
    d.ok(&["cp", host.join("f.txt").to_str().unwrap(), "c1:/tmp/"]);
    assert_eq!(
        d.ok(&["exec", "c1", "cat", "/tmp/f.txt"]),
        "hello from the host"
    );
    d.ok(&["cp", host.join("tree").to_str().unwrap(), "c1:/tmp/copied"]);
    assert_eq!(d.ok(&["exec", "c1", "cat", "/tmp/copied/sub/b"]), "b");
    d.ok(&[
        "cp",
        host.join("f.txt").to_str().unwrap(),
        "c1:/data/in-bind.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(bind.join("in-bind.txt")).unwrap(),
        "hello from the host\n"
    );

    // Running container -> host.
    let out = d.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    d.ok(&["cp", "c1:/etc/passwd", out.to_str().unwrap()]);
    assert!(
        std::fs::read_to_string(out.join("passwd"))
            .unwrap()
            .starts_with("root:x:0:0:root:/root:/bin/sh\nweb:x:1000")
    );
    d.ok(&["cp", "c1:/tmp/copied", out.join("back").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("back/a")).unwrap(), "a\n");
    assert_eq!(
        std::fs::read_to_string(out.join("back/sub/b")).unwrap(),
        "b\n"
    );
    let (_, err) = d.fails(&["cp", "c1:/nope", out.to_str().unwrap()]);
    assert!(
        err.contains("Could not find the file /nope in container c1"),
        "{err}"
    );

    // Symlinks in the container pointing at / or climbing with .. resolve
    // inside the container, never on the host.
    d.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "busybox ln -s / /tmp/evil && busybox ln -s ../../../../../.. /tmp/up",
    ]);
    let marker = format!("wharf-escape-{}", std::process::id());
    let mpath = host.join(&marker);
    write(&mpath, "must stay in the container\n");
    d.ok(&["cp", mpath.to_str().unwrap(), "c1:/tmp/evil/"]);
    d.ok(&["cp", mpath.to_str().unwrap(), "c1:/tmp/up/tmp/"]);
    assert!(
        !Path::new("/").join(&marker).exists(),
        "cp wrote to the host's /"
    );
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "cp wrote to the host's /tmp"
    );
    assert_eq!(
        d.ok(&["exec", "c1", "cat", &format!("/{marker}")]),
        "must stay in the container"
    );
    assert_eq!(
        d.ok(&["exec", "c1", "cat", &format!("/tmp/{marker}")]),
        "must stay in the container"
    );
    d.ok(&[
        "cp",
        "c1:/tmp/up/etc/passwd",
        out.join("up-passwd").to_str().unwrap(),
    ]);
    let got = std::fs::read_to_string(out.join("up-passwd")).unwrap();
    assert!(got.contains("web:x:1000"), "read the host's passwd: {got}");
    assert_ne!(got, std::fs::read_to_string("/etc/passwd").unwrap());

    // A hostile archive: an entry climbing out of the extraction point.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let esc = format!("../../../../../../tmp/{marker}-tar");
    h.as_gnu_mut().unwrap().name[..esc.len()].copy_from_slice(esc.as_bytes());
    h.set_cksum();
    t.append(&h, &b"bad"[..]).unwrap();
    let body = String::from_utf8(t.into_inner().unwrap()).unwrap();
    let (status, _, resp) = d.http("PUT", "/containers/c1/archive?path=/tmp", Some(&body));
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("escape"), "{resp}");
    assert!(!Path::new(&format!("/tmp/{marker}-tar")).exists());

    // Stopped: the root is mounted on demand (with the bind), then released.
    d.ok(&["stop", "-t", "1", "c1"]);
    let id = d.ok(&["inspect", "--format", "{{.Id}}", "c1"]);
    let rootfs = d.data_root().join("containers").join(&id).join("rootfs");
    d.ok(&[
        "cp",
        host.join("tree/a").to_str().unwrap(),
        "c1:/tmp/while-stopped",
    ]);
    d.ok(&[
        "cp",
        host.join("tree/a").to_str().unwrap(),
        "c1:/data/stopped-bind",
    ]);
    assert_eq!(
        std::fs::read_to_string(bind.join("stopped-bind")).unwrap(),
        "a\n"
    );
    d.ok(&[
        "cp",
        "c1:/tmp/f.txt",
        out.join("stopped.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("stopped.txt")).unwrap(),
        "hello from the host\n"
    );
    d.ok(&[
        "cp",
        "c1:/data/in-bind.txt",
        out.join("stopped-bind.txt").to_str().unwrap(),
    ]);
    assert!(!mounted_under(&rootfs), "on-demand mount left behind");
    d.ok(&["start", "c1"]);
    assert_eq!(d.ok(&["exec", "c1", "cat", "/tmp/while-stopped"]), "a");

    // Raw HEAD: the stat header.
    let (status, head, _) = d.http("HEAD", "/containers/c1/archive?path=/etc/passwd", None);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-docker-container-path-stat: "),
        "{head}"
    );
    let (status, _, _) = d.http("HEAD", "/containers/c1/archive?path=/missing", None);
    assert_eq!(status, 404);
}

#[test]
fn export_and_diff() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "--name",
        "c2",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/new && busybox rm /etc/group && echo x >> /etc/passwd && mkdir -p /root/d",
    ]);
    let diff = d.ok(&["diff", "c2"]);
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines,
        [
            "C /etc",
            "D /etc/group",
            "C /etc/passwd",
            "C /root",
            "A /root/d",
            "C /tmp",
            "A /tmp/new"
        ],
        "{diff}"
    );
    let fresh = d.ok(&["create", "busybox", "true"]);
    d.ok(&["start", "-a", &fresh]);
    assert_eq!(
        d.ok(&["diff", &fresh]),
        "",
        "a container that changed nothing"
    );

    let tarball = d.dir.join("c2.tar");
    d.ok(&["export", "-o", tarball.to_str().unwrap(), "c2"]);
    let mut a = tar::Archive::new(std::fs::File::open(&tarball).unwrap());
    let mut names = Vec::new();
    let mut passwd = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        if n == "etc/passwd" {
            use std::io::Read as _;
            e.read_to_string(&mut passwd).unwrap();
        }
        names.push(n);
    }
    for want in ["bin/busybox", "bin/sh", "tmp/new", "root/d/"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n == "etc/group"),
        "deleted file exported"
    );
    assert!(passwd.ends_with("x\n"), "{passwd}");
}

#[test]
fn update_resources_and_restart_policy() {
    let d = Daemon::start();
    d.ok(&[
        "run", "-d", "--name", "u1", "--memory", "64m", "busybox", "sleep", "1000",
    ]);
    let id = d.ok(&["inspect", "--format", "{{.Id}}", "u1"]);
    let out = d.ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--restart",
        "on-failure:3",
        "u1",
    ]);
    assert_eq!(out, "u1");
    let f = d.ok(&[
        "inspect", "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "u1",
    ]);
    assert_eq!(f, "100663296 512 50 500000000 on-failure:3");
    // Applied live: the container's cgroups.
    let cg = |ctl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/wharf/{id}/{file}"))
            .unwrap_or_else(|e| panic!("{ctl}/{file}: {e}"))
            .trim()
            .to_owned()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "100663296");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("pids", "pids.max"), "50");
    // Persisted: a restart keeps them.
    d.ok(&["restart", "-t", "1", "u1"]);
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "100663296");
    assert_eq!(cg("pids", "pids.max"), "50");
    d.ok(&["update", "--pids-limit", "-1", "u1"]);
    assert_eq!(cg("pids", "pids.max"), "max");

    let (_, err) = d.fails(&[
        "update",
        "--restart",
        "always",
        "--cpus",
        "0.5",
        "--cpu-quota",
        "1000",
        "u1",
    ]);
    assert!(err.contains("Conflicting options"), "{err}");
    d.ok(&["create", "--name", "u2", "--rm", "busybox", "true"]);
    let (_, err) = d.fails(&["update", "--restart", "always", "u2"]);
    assert!(err.contains("AutoRemove"), "{err}");
    // A stopped container: recorded only.
    d.ok(&["create", "--name", "u3", "busybox", "true"]);
    d.ok(&["update", "--cpu-shares", "256", "u3"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.HostConfig.CpuShares}}", "u3"]),
        "256"
    );
}

#[test]
fn attach_with_logs_replays_output() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "--name",
        "l1",
        "busybox",
        "sh",
        "-c",
        "echo first; echo second >&2",
    ]);
    // logs=1 without stream: the recorded output, multiplexed.
    let (status, _, body) = d.http(
        "POST",
        "/containers/l1/attach?logs=1&stream=0&stdout=1&stderr=1",
        None,
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("first\n") && body.contains("second\n"),
        "{body:?}"
    );
    let (status, _, body) = d.http(
        "POST",
        "/containers/l1/attach?logs=1&stream=0&stdout=1&stderr=0",
        None,
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("first\n") && !body.contains("second"),
        "{body:?}"
    );
    // start -a of the exited container shows its new output.
    let out = d.ok(&["start", "-a", "l1"]);
    assert_eq!(out, "first");
}

/// The mount points and generated files live in the shared init layer
/// (below the writable layer, as Docker's `-init` layer): a container that
/// changes nothing has an empty writable layer and an empty `diff`, sees
/// Docker's `/.dockerenv` and `/etc/mtab`, and an image's symlink at a bind
/// mount target (here `/etc/resolv.conf` pointing out of the root) is
/// shadowed, so the generated file is what the container reads.
#[test]
fn init_layer_holds_the_mount_points() {
    let d = Daemon::start();
    let id = d.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let upper = d
        .data_root()
        .join("snapshots/containers")
        .join(&id)
        .join("diff");
    let entries: Vec<_> = std::fs::read_dir(&upper)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(entries.is_empty(), "writable layer: {entries:?}");
    // The parents of per-container subtrees are `chattr +T` on ext4 without
    // a journal (this CI machine's root), and only there.
    for dir in [
        d.data_root().join("containers"),
        d.data_root().join("snapshots/containers"),
        d.exec_root().join("shims"),
        d.exec_root().join("runtime"),
    ] {
        let flag = wharf_sys::fsflags::is_top_directory(&dir).unwrap();
        let wanted = wharf_sys::fsflags::ext4_without_journal(&dir);
        assert_eq!(flag == Some(true), wanted, "{}: {flag:?}", dir.display());
    }
    assert_eq!(d.ok(&["diff", &id]), "");
    assert_eq!(
        d.ok(&[
            "exec",
            &id,
            "sh",
            "-c",
            "test -f /.dockerenv && readlink /etc/mtab"
        ]),
        "/proc/mounts"
    );
    // Writes to the generated files reach the container's own copies,
    // never the shared layer.
    d.ok(&["exec", &id, "sh", "-c", "echo 10.9.9.9 extra >> /etc/hosts"]);
    let shared = d.data_root().join("init-v1");
    assert_eq!(std::fs::read(shared.join("etc/hosts")).unwrap(), b"");

    let link_dir = d.dir.join("link");
    std::fs::create_dir_all(&link_dir).unwrap();
    std::os::unix::fs::symlink("/outside/resolv.conf", link_dir.join("resolv.conf")).unwrap();
    d.ok(&["create", "--name", "mk", "busybox", "true"]);
    d.ok(&[
        "cp",
        link_dir.join("resolv.conf").to_str().unwrap(),
        "mk:/etc/",
    ]);
    let mk = d.ok(&["inspect", "-f", "{{.Id}}", "mk"]);
    let in_layer = d
        .data_root()
        .join("snapshots/containers")
        .join(&mk)
        .join("diff/etc/resolv.conf");
    assert!(
        std::fs::symlink_metadata(&in_layer)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    d.ok(&["commit", "mk", "symlinked:1"]);
    let ls = d.ok(&["run", "--rm", "symlinked:1", "ls", "-l", "/etc/resolv.conf"]);
    assert!(ls.starts_with("-rw"), "a regular file inside: {ls}");
    let seen = d.ok(&["run", "--rm", "symlinked:1", "cat", "/etc/resolv.conf"]);
    assert!(seen.contains("nameserver"), "{seen}");
    assert!(!d.dir.join("outside").exists());
    d.ok(&["rm", "-f", &id, "mk"]);
}
