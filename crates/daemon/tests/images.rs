//! The image side of the Engine API, driven by the real docker CLI against
//! a temporary wharfd and a real `docker-registry` on loopback: pull (with
//! progress, up to date, auto-pull by `run`), images, tag, push (upload,
//! mount, already exists), rmi (untag vs delete, in use, force), prune,
//! history, inspect, save/load, import, login against htpasswd, system df,
//! and bad input.

mod common;

use common::Daemon;
use wharf_testkit_daemon::{Registry, daemon_busybox_layer, http, tar_of, write_oci_layout};

fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

/// An image sharing the daemon's busybox layer plus one layer of its own
/// (`/etc/motd`), seeded into `reg` as `repo:tag`.
fn seed_two_layer_image(d: &Daemon, reg: &Registry, repo: &str, tag: &str, motd: &str) {
    let dir = tempfile::tempdir().unwrap();
    let base = daemon_busybox_layer(&d.data_root());
    let top = tar_of(&[("etc/", b""), ("etc/motd", motd.as_bytes())]);
    write_oci_layout(dir.path(), &[base, top], repo);
    reg.seed(dir.path(), repo, tag);
}

#[test]
fn pull_images_run_tag_push_rmi_prune_df() {
    let d = Daemon::start();
    let reg = Registry::start();
    let host = reg.host();
    seed_two_layer_image(&d, &reg, "busybox", "latest", "hello from layer two\n");
    let name = format!("{host}/busybox:latest");

    // 1. Pull: Docker's progress lines; the shared layer already exists.
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("latest: Pulling from busybox"), "{out}");
    assert_eq!(lines_with(&out, ": Already exists").len(), 1, "{out}");
    assert_eq!(lines_with(&out, ": Pull complete").len(), 1, "{out}");
    assert!(out.contains(": Download complete"), "{out}");
    let digest = reg.digest("busybox", "latest").unwrap();
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(name.as_str()), "{out}");

    // 2. Again: up to date.
    let out = d.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    assert!(!out.contains("Pull complete"), "{out}");

    // 3. `docker images`: columns and values.
    let table = d.ok(&["images"]);
    let header = table.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{host}/busybox ")))
        .unwrap_or_else(|| panic!("no row for the pulled image:\n{table}"));
    assert!(row.split_whitespace().nth(1) == Some("latest"), "{row}");
    let id = d.ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    assert!(row.contains(&id["sha256:".len()..][..12]), "{row} vs {id}");
    let digests = d.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}}",
    ]);
    assert!(
        digests.contains(&format!("{host}/busybox {digest}")),
        "{digests}"
    );
    let filtered = d.ok(&["images", "-q", "--filter", "label=wharf.test=busybox"]);
    assert_eq!(filtered.lines().count(), 1, "{filtered}");
    assert!(id.contains(filtered.trim()), "{filtered} vs {id}");

    // 4. Inspect and history.
    let cfg = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}} {{json .Config.Cmd}} {{len .RootFS.Layers}} {{index .RepoTags 0}}",
        &name,
    ]);
    assert_eq!(cfg, format!("linux [\"sh\"] 2 {name}"));
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        &name,
    ]);
    let steps: Vec<&str> = hist.lines().collect();
    assert_eq!(steps.len(), 2, "{hist}");
    assert!(steps[0].starts_with("wharf image test layer 1|"), "{hist}");
    assert!(steps[1].starts_with("wharf image test layer 0|"), "{hist}");

    // 5. `docker run` of an image not present: the CLI pulls it, then runs.
    seed_two_layer_image(&d, &reg, "runme", "v2", "auto-pulled\n");
    let out = d.docker(&[
        "run",
        "--rm",
        &format!("{host}/runme:v2"),
        "cat",
        "/etc/motd",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        common::tail(&d.log(), 40)
    );
    assert!(
        stderr.contains(&format!("Unable to find image '{host}/runme:v2' locally")),
        "{stderr}"
    );
    assert!(stderr.contains("Pulling from runme"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "auto-pulled\n");

    // 6. Tag and push a local-only image: layers uploaded; to a second
    // repository: mounted from the first; again: already there.
    let local1 = format!("{host}/local:v1");
    d.ok(&["tag", "busybox:latest", &local1]);
    let out = d.ok(&["push", &local1]);
    assert!(
        out.contains(&format!("The push refers to repository [{host}/local]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let pushed = reg.digest("local", "v1").expect("pushed manifest");
    assert!(
        out.contains(&format!("v1: digest: {pushed} size: ")),
        "{out}"
    );
    let local2 = format!("{host}/local2:v1");
    d.ok(&["tag", &local1, &local2]);
    let out = d.ok(&["push", &local2]);
    assert!(out.contains(": Mounted from local"), "{out}");
    assert!(!out.contains(": Pushed"), "{out}");
    assert_eq!(reg.digest("local2", "v1").as_deref(), Some(pushed.as_str()));
    let out = d.ok(&["push", &local2]);
    assert!(out.contains(": Layer already exists"), "{out}");
    let repo_digests = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &local2,
    ]);
    assert!(
        repo_digests.contains(&format!("{host}/local2@{pushed}")),
        "{repo_digests}"
    );
    // A pulled image pushed elsewhere on its registry mounts from where it came.
    let copy = format!("{host}/copy:v1");
    d.ok(&["tag", &name, &copy]);
    let out = d.ok(&["push", &copy]);
    assert!(out.contains(": Mounted from busybox"), "{out}");
    assert!(reg.digest("copy", "v1").is_some());
    // What was pushed pulls back and runs.
    d.ok(&["rmi", &local1, &local2]);
    d.ok(&["pull", &local2]);
    assert_eq!(
        d.ok(&["run", "--rm", &local2, "echo", "round trip"]),
        "round trip"
    );

    // 7. rmi: a second tag is only untagged; the image stays.
    let out = d.ok(&["rmi", &copy]);
    assert!(out.contains(&format!("Untagged: {copy}")), "{out}");
    assert!(!out.contains("Deleted:"), "{out}");
    assert_eq!(
        d.ok(&["image", "inspect", "--format", "{{.Id}}", &name]),
        id
    );
    // Used by a container: refused, then forced.
    let cid = d.ok(&["create", &name, "true"]);
    let (_, err) = d.fails(&["rmi", &id]);
    assert!(
        err.contains("image is being used by stopped container"),
        "{err}"
    );
    let (_, err) = d.fails(&["rmi", &name]);
    assert!(err.contains("conflict"), "{err}");
    let out = d.ok(&["rmi", "-f", &name]);
    assert!(out.contains(&format!("Untagged: {name}")), "{out}");
    // The container still starts from its layers.
    d.ok(&["start", "-a", &cid]);
    d.ok(&["rm", &cid]);

    // 8. Prune: an untagged (dangling) image goes; tagged ones stay.
    let before = d.ok(&["images", "-q", "--filter", "dangling=true"]);
    let out = d.ok(&["image", "prune", "-f"]);
    if before.is_empty() {
        assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    }
    let imp = tempfile::tempdir().unwrap();
    let rootfs = imp.path().join("rootfs.tar");
    std::fs::write(&rootfs, tar_of(&[("etc/", b""), ("etc/dangling", b"x")])).unwrap();
    let dangling = d.ok(&["import", rootfs.to_str().unwrap()]);
    assert!(dangling.starts_with("sha256:"), "{dangling}");
    let listed = d.ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert!(listed.contains(&dangling), "{listed}");
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(
        d.ok(&["images", "-q", "--filter", "dangling=true"])
            .is_empty()
    );
    assert!(!d.ok(&["images", "-q", "busybox"]).is_empty());

    // 9. system df: honest figures.
    d.ok(&[
        "run",
        "--name",
        "df-writer",
        &local2,
        "sh",
        "-c",
        "seq 1 100000 > /big",
    ]);
    let df = d.ok(&["system", "df"]);
    let row = |kind: &str| {
        df.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row:\n{df}"))
            .to_owned()
    };
    let images = row("Images");
    let n_images = d
        .ok(&["images", "-q"])
        .lines()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(
        images.split_whitespace().nth(1),
        Some(n_images.to_string().as_str()),
        "{df}"
    );
    let containers = row("Containers");
    assert_eq!(containers.split_whitespace().nth(1), Some("1"), "{df}");
    // seq 1 100000 writes 588895 bytes: the writable layer holds about that.
    let size = containers.split_whitespace().nth(3).unwrap();
    assert!(size.ends_with("kB") || size.ends_with("MB"), "{df}");
    assert!(
        row("Local Volumes").split_whitespace().nth(2) == Some("0"),
        "{df}"
    );
    assert!(
        row("Build Cache").split_whitespace().nth(2) == Some("0"),
        "{df}"
    );
    let v = d.ok(&["system", "df", "-v"]);
    assert!(v.contains("Images space usage:"), "{v}");
    assert!(
        v.contains("SHARED SIZE") && v.contains("UNIQUE SIZE"),
        "{v}"
    );
    assert!(
        v.contains("Containers space usage:") && v.contains("df-writer"),
        "{v}"
    );
    let sizes = d.ok(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(sizes.contains("df-writer "), "{sizes}");
    assert!(!sizes.contains("df-writer 0B"), "{sizes}");
    let rw = d.ok(&[
        "inspect",
        "-s",
        "--format",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "df-writer",
    ]);
    let (rw, root): (u64, u64) = {
        let mut it = rw.split_whitespace().map(|x| x.parse::<u64>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    assert!((588_895..2_000_000).contains(&rw), "SizeRw {rw}");
    assert!(root > rw, "SizeRootFs {root} vs SizeRw {rw}");

    // 10. Events of all this.
    // `--until` has one-second resolution (as Docker's): a moment just
    // ahead includes everything above, however fast it ran.
    let until = (std::time::SystemTime::now() + std::time::Duration::from_secs(2))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    for action in ["pull", "tag", "push", "untag", "delete", "import", "prune"] {
        assert!(ev.lines().any(|l| l == action), "no {action} event:\n{ev}");
    }
}

#[test]
fn save_load_import_and_corrupt_archives() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    d.ok(&["tag", "busybox:latest", "saved:1"]);
    let id = d.ok(&["image", "inspect", "--format", "{{.Id}}", "saved:1"]);

    // save -o, rmi, load -i: the same image comes back and runs.
    let archive = dir.path().join("saved.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "saved:1"]);
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("manifest.json") && listing.contains("index.json"),
        "{listing}"
    );
    d.ok(&["rmi", "saved:1"]);
    assert!(
        d.fails(&["image", "inspect", "saved:1"])
            .1
            .contains("No such image")
    );
    let out = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: saved:1");
    assert_eq!(
        d.ok(&["image", "inspect", "--format", "{{.Id}}", "saved:1"]),
        id
    );
    assert_eq!(
        d.ok(&["run", "--rm", "saved:1", "echo", "loaded"]),
        "loaded"
    );
    // save to stdout and load from stdin work the same.
    let out = d.docker(&["save", "saved:1"]);
    assert!(out.status.success());
    assert!(out.stdout.len() > 500_000, "{} bytes", out.stdout.len());
    let out = d.docker_stdin(&["load"], &out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Loaded image: saved:1"));
    // save of a missing image: 404 before any byte.
    let (_, err) = d.fails(&[
        "save",
        "-o",
        dir.path().join("x.tar").to_str().unwrap(),
        "nope:1",
    ]);
    assert!(err.contains("No such image: nope:1"), "{err}");

    // A corrupt archive: a clean error, nothing half-loaded, daemon fine.
    let before = d.ok(&["images", "-q", "--no-trunc"]);
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    let broken = dir.path().join("broken.tar");
    std::fs::write(&broken, &bytes).unwrap();
    d.ok(&["rmi", "saved:1"]);
    let (_, err) = d.fails(&["load", "-i", broken.to_str().unwrap()]);
    assert!(err.contains("Error response from daemon"), "{err}");
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all").unwrap();
    let (_, err) = d.fails(&["load", "-i", garbage.to_str().unwrap()]);
    assert!(err.contains("invalid") || err.contains("archive"), "{err}");
    // The busybox image (same ID as saved:1) is still there; nothing else.
    let ids = |s: &str| {
        s.lines()
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let after = d.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest"
    );
    assert!(
        d.fails(&["image", "inspect", "saved:1"])
            .1
            .contains("No such image")
    );
    d.ok(&["version"]);

    // import of a root filesystem tarball with a change.
    let busybox = std::fs::read(wharf_testkit::busybox_path()).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let header = || {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    let mut h = header();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    tar.append_data(&mut h, "bin/", std::io::empty()).unwrap();
    let mut h = header();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", &busybox[..])
        .unwrap();
    for applet in ["sh", "echo", "cat"] {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, tar.into_inner().unwrap()).unwrap();
    let out = d.ok(&[
        "import",
        "--change",
        r#"CMD ["/bin/sh"]"#,
        "--change",
        "ENV WHO=imported",
        "-m",
        "from a test",
        rootfs.to_str().unwrap(),
        "imported:1",
    ]);
    assert!(out.starts_with("sha256:") && out.len() == 71, "{out}");
    let cfg = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}} {{.Comment}} {{.Id}}",
        "imported:1",
    ]);
    assert_eq!(cfg, format!(r#"["/bin/sh"] from a test {out}"#));
    assert_eq!(
        d.ok(&["run", "--rm", "imported:1", "sh", "-c", "echo $WHO"]),
        "imported"
    );
    let out = d.docker_stdin(
        &["run", "--rm", "-i", "imported:1"],
        b"echo via default cmd\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via default cmd\n");
    // import from stdin.
    let out = d.docker_stdin(
        &["import", "-", "imported:2"],
        &std::fs::read(&rootfs).unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, err) = d.fails(&[
        "import",
        "--change",
        "BOGUS x",
        rootfs.to_str().unwrap(),
        "imported:3",
    ]);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(
        d.fails(&["image", "inspect", "imported:3"])
            .1
            .contains("No such image")
    );
}

#[test]
fn login_with_htpasswd_then_private_pull() {
    let d = Daemon::start();
    let reg = Registry::start_htpasswd("alice", "s3cret-pass");
    let host = reg.host();
    seed_two_layer_image(&d, &reg, "private/app", "1.0", "private bits\n");
    let name = format!("{host}/private/app:1.0");

    // Anonymous: refused.
    let (_, err) = d.fails(&["pull", &name]);
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    // Wrong password: refused, nothing stored.
    let out = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"wrong\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    // Right password.
    let out = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        b"s3cret-pass\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Login Succeeded"), "{stdout}");
    // The CLI now sends X-Registry-Auth: the private pull works.
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", &name, "cat", "/etc/motd"]),
        "private bits"
    );
    // And a push with the same credentials.
    d.ok(&["tag", &name, &format!("{host}/private/copy:1")]);
    d.ok(&["push", &format!("{host}/private/copy:1")]);
    assert!(reg.digest("private/copy", "1").is_some());
    d.ok(&["logout", &host]);
    d.ok(&["rmi", &name]);
    let (_, err) = d.fails(&["pull", &name]);
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
}

#[test]
fn bad_image_requests() {
    use base64::Engine as _;
    let d = Daemon::start();
    let reg = Registry::start();
    let host = reg.host();

    // Malformed X-Registry-Auth: 400, no pull started.
    let (st, body) = http(
        &d.socket,
        "POST",
        &format!("/images/create?fromImage={host}/busybox&tag=latest"),
        &[("X-Registry-Auth", "%%%not-base64")],
        b"",
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid X-Registry-Auth header"), "{body}");
    let junk = base64::engine::general_purpose::URL_SAFE.encode("{not json");
    let (st, body) = http(
        &d.socket,
        "POST",
        "/images/create?fromImage=busybox&tag=latest",
        &[("X-Registry-Auth", &junk)],
        b"",
    );
    assert_eq!(st, 400, "{body}");

    // Invalid references: Docker's "invalid reference format".
    for bad in ["Bad%20Name", "UPPER", "a::b", "-lead"] {
        let (st, body) = http(
            &d.socket,
            "POST",
            &format!("/images/create?fromImage={bad}&tag=latest"),
            &[],
            b"",
        );
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(body.contains("invalid reference format"), "{bad}: {body}");
    }
    let (st, body) = http(
        &d.socket,
        "POST",
        "/images/busybox/tag?repo=Bad%20Repo",
        &[],
        b"",
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid reference format"), "{body}");
    let (_, err) = d.fails(&["tag", "nope:1", "x:1"]);
    assert!(err.contains("No such image: nope:1"), "{err}");

    // Missing manifest: a 404 before any progress line.
    let (code, err) = d.fails(&["pull", &format!("{host}/missing:1")]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("manifest for {host}/missing:1 not found")),
        "{err}"
    );
    // An unreachable registry.
    let (_, err) = d.fails(&["pull", "127.0.0.1:9/nothing:1"]);
    assert!(err.contains("Error response from daemon"), "{err}");
    // Push of a tag that does not exist.
    let (_, err) = d.fails(&["push", &format!("{host}/absent:1")]);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
    // Unknown image actions and names.
    let (st, _) = http(&d.socket, "GET", "/images/busybox/frobnicate", &[], b"");
    assert_eq!(st, 404);
    let (st, body) = http(&d.socket, "GET", "/images/nope/json", &[], b"");
    assert_eq!(st, 404);
    assert!(body.contains("No such image: nope"), "{body}");
    let (st, _) = http(
        &d.socket,
        "POST",
        "/images/create?fromSrc=http://example.invalid/x.tar",
        &[],
        b"",
    );
    assert_eq!(st, 400);
    let (st, _) = http(&d.socket, "GET", "/system/df?type=bogus", &[], b"");
    assert_eq!(st, 400);
    let (st, _) = http(
        &d.socket,
        "POST",
        "/images/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        &[],
        b"",
    );
    assert_eq!(st, 400);
    // The daemon still serves, and nothing was added.
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "busybox:latest");
}

#[test]
fn concurrent_pulls_share_one_transfer() {
    let d = Daemon::start();
    let reg = Registry::start();
    let host = reg.host();
    // A layer large enough (incompressible) for the pulls to overlap.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..24 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let base = daemon_busybox_layer(&d.data_root());
    let top = tar_of(&[("data/", b""), ("data/noise", &noise)]);
    write_oci_layout(dir.path(), &[base, top], "dedup");
    reg.seed(dir.path(), "dedup", "latest");

    let path = format!("/images/create?fromImage={host}/dedup&tag=latest");
    let pulls: Vec<_> = (0..3)
        .map(|_| {
            let socket = d.socket.clone();
            let path = path.clone();
            std::thread::spawn(move || http(&socket, "POST", &path, &[], b""))
        })
        .collect();
    for p in pulls {
        let (status, body) = p.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("errorDetail"), "{body}");
        assert!(
            body.contains(&format!(
                "Status: Downloaded newer image for {host}/dedup:latest"
            )) || body.contains("Status: Image is up to date"),
            "{body}"
        );
    }
    // Each blob crossed the wire once: the pulls that overlapped joined the
    // first one; one that came after found everything present.
    let log = reg.log();
    let blob_gets: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"GET /v2/dedup/blobs/sha256:"))
        .collect();
    let mut unique = blob_gets.clone();
    unique.sort_unstable();
    unique.dedup_by(|a, b| {
        let key = |l: &str| l.split("/blobs/").nth(1).map(|r| r[..71].to_owned());
        key(a) == key(b)
    });
    assert_eq!(
        blob_gets.len(),
        unique.len(),
        "blobs fetched more than once:\n{log}"
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            &format!("{host}/dedup"),
            "sh",
            "-c",
            "wc -c < /data/noise"
        ]),
        (24 << 20).to_string()
    );
}

#[test]
fn registry_mirror_serves_docker_hub_names() {
    let reg = Registry::start();
    let mirror = format!("http://{}", reg.host());
    let d = Daemon::start_with(vec!["--registry-mirror".into(), mirror.clone()]);
    seed_two_layer_image(&d, &reg, "library/busybox", "mirrored", "from the mirror\n");
    let info = d.ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert!(info.contains(&mirror), "{info}");
    // `busybox:mirrored` is docker.io/library/busybox: served by the mirror.
    let out = d.ok(&["pull", "busybox:mirrored"]);
    assert!(
        out.contains("mirrored: Pulling from library/busybox"),
        "{out}"
    );
    assert!(
        out.contains("Status: Downloaded newer image for busybox:mirrored"),
        "{out}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "busybox:mirrored", "cat", "/etc/motd"]),
        "from the mirror"
    );
}
