//! `docker commit` with the real docker CLI against a temporary wharfd:
//! the container's changes (added, modified, deleted files and
//! directories, hard links) become a layer on its image, `--change`,
//! `-m` and `-a` reach the config and history, a running container is
//! paused for the commit and keeps running, and the new image runs.

mod common;

use common::Daemon;

#[test]
fn commit_changes_config_and_history() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "--name",
        "src",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sh",
        "-c",
        "echo added > /added && echo changed > /etc/motd && rm /etc/group && \
         mkdir -p /tree/sub && echo deep > /tree/sub/f && ln /added /added-link && rm -r /root",
    ]);
    let id = d.ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "Jane <jane@example.org>",
        "-c",
        "ENV COMMITTED=yes",
        "-c",
        r#"CMD ["cat", "/added"]"#,
        "src",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    // The image runs with the new CMD and sees the changes.
    assert_eq!(d.ok(&["run", "--rm", "committed:v1"]), "added");
    let script = "cat /etc/motd /tree/sub/f; ls /etc/group /root 2>&1; \
                  stat -c %h /added; echo $FROM_RUN $COMMITTED";
    let out = d.ok(&["run", "--rm", "committed:v1", "sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "changed");
    assert_eq!(lines[1], "deep");
    assert!(
        lines[2].contains("/etc/group") && lines[2].contains("No such file"),
        "{out}"
    );
    assert!(
        lines[3].contains("/root") && lines[3].contains("No such file"),
        "{out}"
    );
    assert_eq!(lines[4], "2", "hard link kept: {out}");
    assert_eq!(lines[5], "1 yes", "{out}");

    // Config, author, comment, parent layers and history.
    let fmt = "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}|{{json .Config.Cmd}}";
    let inspect = d.ok(&["image", "inspect", "-f", fmt, "committed:v1"]);
    let base_layers: usize = d
        .ok(&[
            "image",
            "inspect",
            "-f",
            "{{len .RootFS.Layers}}",
            "busybox",
        ])
        .parse()
        .unwrap();
    assert_eq!(
        inspect,
        format!(
            "Jane <jane@example.org>|a message|{}|[\"cat\",\"/added\"]",
            base_layers + 1
        )
    );
    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "committed:v1",
    ]);
    let top = history.lines().next().unwrap();
    assert!(
        top.starts_with("sh -c echo added") && top.ends_with("|a message"),
        "{top}"
    );

    // Bad changes are refused before anything is stored.
    let before = d.ok(&["images", "-q"]).lines().count();
    let (code, err) = d.fails(&["commit", "-c", "RUN true", "src", "bad:1"]);
    assert_ne!(code, 0);
    assert!(err.contains("RUN"), "{err}");
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), before);
    let (_, err) = d.fails(&["commit", "nope", "x:1"]);
    assert!(err.contains("No such container: nope"), "{err}");
}

#[test]
fn commit_of_a_running_container_pauses_it_and_it_keeps_running() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo state > /state; exec sleep 1000",
    ]);
    // Wait until the file exists (the shell ran).
    let mut ok = false;
    for _ in 0..100 {
        if d.docker(&["exec", "live", "cat", "/state"])
            .status
            .success()
        {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ok, "the container never wrote /state");
    d.ok(&["commit", "live", "live-img"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "live"]),
        "running"
    );
    assert_eq!(d.ok(&["run", "--rm", "live-img", "cat", "/state"]), "state");
    // Without pausing, too; and the event stream saw the commits.
    d.ok(&["commit", "--pause=false", "live", "live-img:2"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let events = d.ok(&[
        "events",
        "--since",
        &(now - 120).to_string(),
        "--until",
        &(now + 1).to_string(),
        "--filter",
        "event=commit",
        "--format",
        "{{.Actor.Attributes.imageRef}}",
    ]);
    assert!(events.contains("live-img"), "{events}");
    d.ok(&["rm", "-f", "live"]);
}
