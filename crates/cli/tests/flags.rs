//! Command lines docker refuses while parsing its flags, refused by wharf
//! with the same text on stderr and the same exit status (125): values
//! that do not parse (`invalid argument "V" for "-s, --long" flag: ...`
//! and the usage line), unknown flags, flags missing their value, and the
//! checks docker makes after parsing, before it talks to the daemon
//! (`docker: invalid containerPort: bad`). Both run with no daemon.

mod docker_text;

use docker_text::{DOCKER, WHARF, run, to_wharf};

#[test]
fn bad_flags_read_as_dockers() {
    let cases: &[&[&str]] = &[
        &["ps", "-f", "foo"],
        &["ps", "--filter=foo"],
        &["images", "-f", "foo"],
        &["image", "ls", "-f", "foo"],
        &["events", "-f", "foo"],
        &["system", "events", "--filter", "foo"],
        &["container", "ls", "-f", "foo"],
        &["container", "prune", "--filter", "foo"],
        &["image", "prune", "--filter", "foo"],
        &["system", "prune", "--filter", "foo"],
        &["run", "--memory", "abc", "busybox"],
        &["create", "-m", "abc", "busybox"],
        &["container", "run", "--memory-swap", "abc", "busybox"],
        &["run", "--shm-size", "1q", "busybox"],
        &["update", "--memory", "abc", "x"],
        &["run", "-p", "bad", "busybox"],
        &["run", "-p", "80:bad", "busybox"],
        &["run", "-p", "80/xyz", "busybox"],
        &["run", "--expose", "bad", "busybox"],
        &["run", "--ulimit", "bad", "busybox"],
        &["run", "--ulimit", "nofile=a", "busybox"],
        &["run", "--ulimit", "foo=1", "busybox"],
        &["run", "--restart", "on-failure:x", "busybox"],
        &["run", "--cpus", "abc", "busybox"],
        &["run", "-c", "abc", "busybox"],
        &["run", "--pids-limit", "x", "busybox"],
        &["run", "--health-interval", "x", "busybox"],
        &["run", "--sig-proxy=maybe", "busybox"],
        &["run", "--rm=maybe", "busybox"],
        &["run", "-e", "", "busybox"],
        &["run", "-l", "", "busybox"],
        &["run", "--add-host", "bad", "busybox"],
        &["run", "--add-host", "a:b", "busybox"],
        &["run", "--mount", "bad", "busybox"],
        &["run", "--sysctl", "x", "busybox"],
        &["run", "--dns", "bad", "busybox"],
        &["run", "-a", "bad", "busybox"],
        &["run", "-v", "", "busybox"],
        &["run", "--pull", "bad", "busybox"],
        &["run", "--rm", "-d", "--restart", "always", "busybox"],
        &["ps", "-n", "abc"],
        &["ps", "--all=x"],
        &["stop", "-t", "abc", "x"],
        &["ps", "--bogus"],
        &["ps", "-Z"],
        &["ps", "-aZ"],
        &["ps", "-n"],
        &["ps", "--last"],
        &["ps", "--format"],
        &["run", "-e"],
        &["stop", "-t"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let d = run(DOCKER, args);
        let w = run(WHARF, args);
        let want = to_wharf(&String::from_utf8_lossy(&d.stderr));
        let got = String::from_utf8_lossy(&w.stderr).into_owned();
        assert_eq!(d.status.code(), Some(125), "docker {args:?}: {want}");
        assert!(
            !want.contains("Cannot connect"),
            "docker {args:?} got as far as the daemon: not a parse error"
        );
        if got != want || w.status.code() != Some(125) || !w.stdout.is_empty() {
            failures.push(format!(
                "{args:?} (exit {:?}):\n--- docker\n{want}--- wharf\n{got}",
                w.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
