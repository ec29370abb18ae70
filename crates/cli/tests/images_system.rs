//! End-to-end: import (file and stdin, with -c), images flags, image and
//! system prune, system df (-v) and events (--since/--until, -f, --format),
//! compared with the real docker CLI against the same temporary wharfd.

mod common;

use std::process::Output;

use common::Daemon;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// wharf and docker print the same; a second try covers a relative time
/// ("1 second ago") that ticked between the two calls.
fn same(d: &Daemon, args: &[&str]) -> String {
    for _ in 0..2 {
        let (w, k) = (d.wharf(args), d.docker(args));
        if (w.status.code(), &w.stdout, &w.stderr) == (k.status.code(), &k.stdout, &k.stderr) {
            return out(&w);
        }
    }
    let w = d.wharf(args);
    let k = d.docker(args);
    assert_eq!(
        (w.status.code(), out(&w), String::from_utf8_lossy(&w.stderr)),
        (k.status.code(), out(&k), String::from_utf8_lossy(&k.stderr)),
        "wharf vs docker {args:?}"
    );
    out(&w)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn import_images_prune_df_events() {
    let d = Daemon::start();
    let since = (now() - 1).to_string();
    // A rootfs tar from export.
    d.ok(&["create", "--name", "src", "busybox", "true"]);
    let tar = d.dir.join("rootfs.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "src"]);
    d.ok(&["rm", "src"]);

    // import from a file with -c, and from stdin.
    let id = d.ok(&[
        "import",
        "-c",
        "CMD [\"echo\", \"imported\"]",
        "-c",
        "ENV IMPORTED=yes",
        "-m",
        "from a file",
        tar.to_str().unwrap(),
        "imp:file",
    ]);
    assert!(
        id.trim().starts_with("sha256:") && id.trim().len() == 71,
        "{id}"
    );
    assert_eq!(d.ok(&["run", "--rm", "imp:file"]), "imported\n");
    assert_eq!(
        d.ok(&["run", "--rm", "imp:file", "sh", "-c", "echo $IMPORTED"]),
        "yes\n"
    );
    assert_eq!(
        d.ok(&["history", "--format", "{{.Comment}}", "imp:file"]),
        "from a file\n"
    );
    let o = d.wharf_stdin(&["import", "-", "imp:stdin"], &std::fs::read(&tar).unwrap());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An untagged import: dangling.
    d.ok(&["import", tar.to_str().unwrap()]);
    let (code, _) = d.fails(&["import", "/no/such.tar"]);
    assert_eq!(code, 1);

    // images flags, byte for byte as docker.
    for args in [
        &["images"][..],
        &["images", "--digests"],
        &["images", "--no-trunc"],
        &["images", "-f", "dangling=true"],
        &["images", "-f", "dangling=true", "-q"],
        &["images", "-q"],
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
        &[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}",
        ],
        &["images", "--format", "json"],
        &["images", "--format", "{{json .}}"],
        &["images", "imp"],
    ] {
        same(&d, args);
    }
    assert_eq!(
        d.ok(&["images", "-f", "dangling=true", "-q"])
            .lines()
            .count(),
        1
    );
    assert!(
        d.ok(&["images", "--format", "json"])
            .contains("\\u003cnone\\u003e")
    );

    // system df and df -v.
    let df = same(&d, &["system", "df"]);
    assert!(
        df.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"),
        "{df}"
    );
    let v = same(&d, &["system", "df", "-v"]);
    assert!(v.starts_with("Images space usage:\n\nREPOSITORY"), "{v}");
    for section in [
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(v.contains(section), "{section}: {v}");
    }

    // image prune: declined prompt exits 0; -f removes the dangling one.
    let o = d.wharf_stdin(&["image", "prune"], b"n\n");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).starts_with("WARNING! This will remove all dangling images.\n"),
        "{}",
        out(&o)
    );
    let pruned = d.ok(&["image", "prune", "-f"]);
    assert!(
        pruned.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{pruned}"
    );
    assert!(
        pruned
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("Total reclaimed space: ")
    );
    assert_eq!(d.ok(&["images", "-f", "dangling=true", "-q"]), "");
    // -a: every image without a container, tags untagged first.
    d.ok(&["create", "--name", "keeper", "imp:file"]);
    let pruned = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("untagged: imp:stdin"), "{pruned}");
    assert!(!pruned.contains("untagged: imp:file"), "{pruned}");
    assert!(d.ok(&["images", "-q", "imp:file"]).trim().len() == 12);

    // system prune: stopped containers and unused images.
    let o = d.wharf_stdin(&["system", "prune"], b"n\n");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).starts_with("WARNING! This will remove:\n  - all stopped containers\n"),
        "{}",
        out(&o)
    );
    let pruned = d.ok(&["system", "prune", "-a", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    assert!(pruned.contains("untagged: imp:file"), "{pruned}");
    assert!(
        pruned
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("Total reclaimed space: ")
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.ok(&["images", "-q"]), "");

    // events: default lines, -f, --format, json: identical to docker's.
    let until = (now() + 1).to_string();
    let window = ["--since", since.as_str(), "--until", until.as_str()];
    let ev = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["events"];
        a.extend_from_slice(&window);
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_owned).collect()
    };
    for extra in [
        &[][..],
        &["-f", "type=container"],
        &["-f", "event=destroy", "-f", "type=container"],
        &[
            "-f",
            "type=image",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
        &["--format", "{{.Status}} {{.ID}} {{.From}} {{.TimeNano}}"],
        &["--format", "json"],
        &["--format", "{{json .}}"],
    ] {
        let args = ev(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = same(&d, &args);
        assert!(!text.is_empty(), "no events for {args:?}");
    }
    let lines = same(
        &d,
        &ev(&["-f", "event=create"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let first = lines.lines().next().unwrap();
    let (ts, rest) = first.split_once(' ').unwrap();
    assert_eq!(ts.len(), "2024-01-02T03:04:05.123456789Z".len(), "{first}");
    assert!(rest.starts_with("container create "), "{first}");
    let (code, e) = d.fails(&["events", "--since", "bogus"]);
    assert_eq!(code, 1);
    assert_eq!(e, "failed to parse value as time or duration: \"bogus\"\n");
}
