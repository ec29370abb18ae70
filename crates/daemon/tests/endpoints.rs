//! The Engine API endpoints beyond containers and images, against a
//! temporary wharfd, through raw HTTP and the real docker CLI (v28):
//! networks (the predefined `host` and `none`), volumes, build cache
//! prune, `system prune`, swarm/plugin answers of a non-swarm node,
//! distribution inspect against a real `docker-registry`, image search
//! against a small index server on loopback, and websocket attach.

mod common;

use common::Daemon;
use serde_json::{Value, json};

/// A request whose answer is JSON: (status, parsed body).
fn json_req(d: &Daemon, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, _head, text) = d.http(method, path, body);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: body {text:?}"))
    };
    (status, v)
}

/// `filters=` for a query string.
fn filters(v: Value) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn networks_host_and_none() {
    let mut d = Daemon::start();

    // 1. The list: both predefined networks, dockerd's fields and values.
    let (st, list) = json_req(&d, "GET", "/networks", None);
    assert_eq!(st, 200, "{list}");
    let nets = list.as_array().unwrap();
    assert_eq!(nets.len(), 2, "{list}");
    let by_name = |name: &str| {
        nets.iter()
            .find(|n| n["Name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {list}"))
            .clone()
    };
    let (host, none) = (by_name("host"), by_name("none"));
    assert_eq!(host["Driver"], "host");
    assert_eq!(none["Driver"], "null");
    for n in [&host, &none] {
        let id = n["Id"].as_str().unwrap();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{n}"
        );
        assert_eq!(n["Scope"], "local");
        assert_eq!(n["EnableIPv6"], false);
        assert_eq!(n["EnableIPv4"], true);
        assert_eq!(
            n["IPAM"],
            json!({"Driver": "default", "Options": null, "Config": null})
        );
        for k in ["Internal", "Attachable", "Ingress", "ConfigOnly"] {
            assert_eq!(n[k], false, "{k} in {n}");
        }
        assert_eq!(n["ConfigFrom"], json!({"Network": ""}));
        assert_eq!(n["Options"], json!({}));
        assert_eq!(n["Labels"], json!({}));
        assert_eq!(n["Containers"], json!({}));
        assert!(n["Created"].as_str().unwrap().ends_with('Z'), "{n}");
    }
    assert_ne!(host["Id"], none["Id"]);
    let none_id = none["Id"].as_str().unwrap().to_owned();
    let host_id = host["Id"].as_str().unwrap().to_owned();

    // 2. Filters, as dockerd applies them.
    let names = |q: Value| -> Vec<String> {
        let (st, v) = json_req(
            &d,
            "GET",
            &format!("/networks?filters={}", filters(q)),
            None,
        );
        assert_eq!(st, 200, "{v}");
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["Name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(json!({"driver": ["null"]})), ["none"]);
    assert_eq!(names(json!({"name": ["^ho"]})), ["host"]);
    assert_eq!(names(json!({"id": [&none_id[..10]]})), ["none"]);
    assert_eq!(names(json!({"type": ["builtin"]})), ["host", "none"]);
    assert!(names(json!({"type": ["custom"]})).is_empty());
    assert!(names(json!({"dangling": ["true"]})).is_empty());
    assert_eq!(names(json!({"dangling": ["false"]})).len(), 2);
    assert_eq!(names(json!({"scope": ["local"]})).len(), 2);
    assert!(names(json!({"scope": ["swarm"]})).is_empty());
    assert!(names(json!({"label": ["a=b"]})).is_empty());
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/networks?filters={}", filters(json!({"bogus": ["x"]}))),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid filter 'bogus'"))
    );
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/networks?filters={}", filters(json!({"type": ["odd"]}))),
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["message"], "invalid filter: 'type'='odd'");

    // 3. The CLI's table.
    let table = d.ok(&["network", "ls"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(
        rows.contains(&vec![&host_id[..12], "host", "host", "local"]),
        "{table}"
    );
    assert!(
        rows.contains(&vec![&none_id[..12], "none", "null", "local"]),
        "{table}"
    );
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(
        d.ok(&[
            "network",
            "ls",
            "--filter",
            "driver=host",
            "--format",
            "{{.Name}}"
        ]),
        "host"
    );
    assert_eq!(
        d.ok(&["network", "ls", "-q", "--no-trunc", "-f", "name=none"]),
        none_id
    );

    // 4. Inspect by name, ID and ID prefix; the containers using it.
    let c_none = d.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let c_default = d.ok(&["run", "-d", "busybox", "sleep", "60"]);
    let c_host = d.ok(&["run", "-d", "--network", "host", "busybox", "sleep", "60"]);
    let stopped = d.ok(&["create", "--network", "none", "busybox", "true"]);
    let out = d.ok(&["network", "inspect", "none"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let n = &v[0];
    assert_eq!(n["Id"], none_id.as_str());
    let containers = n["Containers"].as_object().unwrap();
    assert!(containers.contains_key(&c_none), "{n}");
    assert!(
        containers.contains_key(&c_default),
        "a default-mode container has loopback only: {n}"
    );
    assert!(!containers.contains_key(&c_host), "{n}");
    assert!(!containers.contains_key(&stopped), "not running: {n}");
    let name = d.ok(&["inspect", "--format", "{{.Name}}", &c_none]);
    assert_eq!(
        containers[&c_none],
        json!({"Name": name.trim_start_matches('/'), "EndpointID": "", "MacAddress": "", "IPv4Address": "", "IPv6Address": ""})
    );
    let (st, h) = json_req(&d, "GET", &format!("/networks/{}", &host_id[..8]), None);
    assert_eq!(st, 200);
    assert_eq!(h["Name"], "host");
    assert_eq!(
        h["Containers"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [&c_host]
    );
    let (st, h) = json_req(&d, "GET", &format!("/networks/{host_id}"), None);
    assert_eq!((st, h["Name"].as_str()), (200, Some("host")));
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "--format",
            "{{.Driver}} {{.Scope}}",
            &none_id
        ]),
        "null local"
    );
    // The list leaves containers out (API >= 1.28), old clients get them.
    let (_, l) = json_req(&d, "GET", "/networks", None);
    assert!(
        l.as_array()
            .unwrap()
            .iter()
            .all(|n| n["Containers"] == json!({}))
    );
    let (_, l) = json_req(&d, "GET", "/v1.27/networks", None);
    let none_old = l
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Name"] == "none")
        .unwrap();
    assert!(
        none_old["Containers"]
            .as_object()
            .unwrap()
            .contains_key(&c_none)
    );
    let (st, _) = json_req(&d, "GET", "/networks/none?scope=swarm", None);
    assert_eq!(st, 404);
    let (st, v) = json_req(&d, "GET", "/networks/none?verbose=maybe", None);
    assert_eq!(st, 400, "{v}");

    // 5. Errors, with dockerd's words where dockerd has them.
    let (code, err) = d.fails(&["network", "inspect", "nosuchnet"]);
    assert_eq!(code, 1);
    assert!(err.contains("network nosuchnet not found"), "{err}");
    let (st, v) = json_req(&d, "DELETE", "/networks/none", None);
    assert_eq!(st, 403);
    assert_eq!(
        v["message"],
        "none is a pre-defined network and cannot be removed"
    );
    let (_, err) = d.fails(&["network", "rm", "host"]);
    assert!(
        err.contains("host is a pre-defined network and cannot be removed"),
        "{err}"
    );
    let (st, _) = json_req(&d, "DELETE", "/networks/nosuchnet", None);
    assert_eq!(st, 404);
    let (_, err) = d.fails(&["network", "create", "appnet"]);
    assert!(
        err.contains("bridge and user-defined networks are not supported by wharf yet"),
        "{err}"
    );
    let (st, v) = json_req(&d, "POST", "/networks/create", Some(r#"{"Name":"none"}"#));
    assert_eq!(st, 403);
    assert_eq!(
        v["message"],
        "operation is not permitted on predefined none network "
    );
    let (st, v) = json_req(
        &d,
        "POST",
        "/networks/create",
        Some(r#"{"Name":"ov","Driver":"overlay"}"#),
    );
    assert_eq!(st, 403);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("This node is not a swarm manager.")
    );
    let (_, err) = d.fails(&["network", "connect", "none", &c_default]);
    assert!(err.contains("cannot connect container"), "{err}");
    let (_, err) = d.fails(&["network", "disconnect", "none", "nosuchcontainer"]);
    assert!(err.contains("No such container: nosuchcontainer"), "{err}");
    let (_, err) = d.fails(&["network", "connect", "nosuchnet", &c_default]);
    assert!(err.contains("network nosuchnet not found"), "{err}");

    // 6. Prune: nothing user-defined exists, nothing is deleted.
    let (st, v) = json_req(&d, "POST", "/networks/prune", None);
    assert_eq!((st, v), (200, json!({"NetworksDeleted": null})));
    let (st, v) = json_req(
        &d,
        "POST",
        &format!(
            "/networks/prune?filters={}",
            filters(json!({"until": ["24h"]}))
        ),
        None,
    );
    assert_eq!((st, v), (200, json!({"NetworksDeleted": null})));
    let (st, v) = json_req(
        &d,
        "POST",
        &format!(
            "/networks/prune?filters={}",
            filters(json!({"driver": ["x"]}))
        ),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid filter 'driver'"))
    );
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(!out.contains("Deleted Networks"), "{out}");
    let rows = d.ok(&["network", "ls", "-q"]);
    assert_eq!(rows.lines().count(), 2, "{rows}");

    // 7. The IDs survive a restart (written once per data root).
    for c in [&c_none, &c_default, &c_host, &stopped] {
        d.ok(&["rm", "-f", c]);
    }
    let state = std::fs::read_to_string(d.data_root().join("network/predefined.json")).unwrap();
    assert!(
        state.contains(&none_id) && state.contains(&host_id),
        "{state}"
    );
    d.stop_with(15);
    d.spawn(&common::shim_binary());
    assert_eq!(
        d.ok(&["network", "ls", "-q", "--no-trunc", "-f", "name=none"]),
        none_id
    );
    assert_eq!(
        d.ok(&["network", "ls", "-q", "--no-trunc", "-f", "name=host"]),
        host_id
    );
}

#[test]
fn volumes_build_cache_and_system_prune() {
    let d = Daemon::start();

    // 1. Volumes: none exist (no named volumes yet); filters are checked.
    let (st, v) = json_req(&d, "GET", "/volumes", None);
    assert_eq!((st, v), (200, json!({"Volumes": [], "Warnings": null})));
    let (st, v) = json_req(
        &d,
        "GET",
        &format!(
            "/volumes?filters={}",
            filters(
                json!({"dangling": ["true"], "name": ["x"], "driver": ["local"], "label": ["a"]})
            )
        ),
        None,
    );
    assert_eq!((st, v), (200, json!({"Volumes": [], "Warnings": null})));
    let (st, v) = json_req(
        &d,
        "GET",
        &format!(
            "/volumes?filters={}",
            filters(json!({"dangling": ["maybe"]}))
        ),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid filter 'dangling=[maybe]'"))
    );
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/volumes?filters={}", filters(json!({"until": ["1h"]}))),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid filter 'until'"))
    );
    let table = d.ok(&["volume", "ls"]);
    assert_eq!(
        table.split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "dangling=true"]), "");

    let (st, v) = json_req(&d, "GET", "/volumes/data", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (404, Some("get data: no such volume"))
    );
    let (code, err) = d.fails(&["volume", "inspect", "data"]);
    assert_eq!(code, 1);
    assert!(err.contains("get data: no such volume"), "{err}");
    let (_, err) = d.fails(&["volume", "rm", "data"]);
    assert!(err.contains("no such volume"), "{err}");
    let (st, _) = json_req(&d, "DELETE", "/volumes/data?force=1", None);
    assert_eq!(st, 204);
    let (_, err) = d.fails(&["volume", "create", "data"]);
    assert!(
        err.contains("named volumes are not supported by wharf yet"),
        "{err}"
    );
    let (st, v) = json_req(&d, "POST", "/volumes/create", Some("{}"));
    assert_eq!(st, 400, "{v}");
    let (st, v) = json_req(&d, "PUT", "/volumes/data?version=1", Some("{}"));
    assert_eq!(st, 503);
    assert_eq!(
        v["message"],
        "volume update only valid for cluster volumes, but swarm is unavailable"
    );

    let (st, v) = json_req(&d, "POST", "/volumes/prune", None);
    assert_eq!(
        (st, v),
        (200, json!({"VolumesDeleted": [], "SpaceReclaimed": 0}))
    );
    let (st, v) = json_req(
        &d,
        "POST",
        &format!(
            "/volumes/prune?filters={}",
            filters(json!({"all": ["true"], "label": ["a"]}))
        ),
        None,
    );
    assert_eq!(
        (st, v),
        (200, json!({"VolumesDeleted": [], "SpaceReclaimed": 0}))
    );
    let (st, v) = json_req(
        &d,
        "POST",
        &format!(
            "/volumes/prune?filters={}",
            filters(json!({"all": ["yes"]}))
        ),
        None,
    );
    assert_eq!(st, 400, "{v}");
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");

    // 2. Build cache: none exists; prune checks its parameters; no builder.
    let (st, v) = json_req(&d, "POST", "/build/prune", None);
    assert_eq!(
        (st, v),
        (200, json!({"CachesDeleted": null, "SpaceReclaimed": 0}))
    );
    let (st, v) = json_req(
        &d,
        "POST",
        &format!(
            "/build/prune?all=1&reserved-space=1000&filters={}",
            filters(json!({"until": ["24h"], "type": ["regular"]}))
        ),
        None,
    );
    assert_eq!(
        (st, v),
        (200, json!({"CachesDeleted": null, "SpaceReclaimed": 0}))
    );
    let (st, v) = json_req(&d, "POST", "/build/prune?keep-storage=1GB", None);
    assert_eq!(st, 400, "{v}");
    let (st, v) = json_req(
        &d,
        "POST",
        &format!(
            "/build/prune?filters={}",
            filters(json!({"mutable": ["true"]}))
        ),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid filter 'mutable'"))
    );
    let (st, _) = json_req(&d, "POST", "/build/cancel?id=x", None);
    assert_eq!(st, 200);
    let (st, v) = json_req(&d, "POST", "/build/cancel", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("build ID not provided"))
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
    std::fs::write(ctx.path().join("big"), vec![7u8; 6 << 20]).unwrap();
    let out = d.docker(&["build", "-t", "x", ctx.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("building images is not supported by wharf yet"),
        "{err}"
    );

    // 3. docker system prune, with and without volumes: every prune it
    // calls answers, nothing in use is touched.
    let keep = d.ok(&["run", "-d", "busybox", "sleep", "60"]);
    let gone = d.ok(&["create", "busybox", "true"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains(&gone), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let out = d.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(d.ok(&["ps", "-q", "--no-trunc"]), keep);
    assert!(d.ok(&["images", "-q"]).lines().count() == 1);
    // Each prune was announced as dockerd announces it: the builder prunes
    // are the two above and one per system prune (the CLI calls
    // /build/prune), the network prunes one per system prune, the volume
    // prunes the two above, `volume prune` and `system prune --volumes`.
    let events = d.ok(&[
        "events",
        "--since",
        &(now - 120).to_string(),
        "--until",
        &(now + 1).to_string(),
        "--format",
        "{{.Type}} {{.Action}} {{index .Actor.Attributes \"reclaimed\"}}",
    ]);
    for (want, n) in [
        ("network prune 0", 2),
        ("volume prune 0", 4),
        ("builder prune 0", 4),
    ] {
        assert_eq!(
            events.lines().filter(|l| *l == want).count(),
            n,
            "{want:?} in:\n{events}"
        );
    }
}

/// dockerd's answer to manager requests on a node where swarm is inactive.
const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn swarm_and_plugins_as_a_non_swarm_node() {
    let d = Daemon::start();

    // 1. Every manager request: 503 and dockerd's message.
    for (method, path) in [
        ("GET", "/swarm"),
        ("GET", "/swarm/unlockkey"),
        ("POST", "/swarm/update?version=1"),
        ("POST", "/swarm/unlock"),
        ("GET", "/services"),
        ("GET", "/services/web"),
        ("POST", "/services/create"),
        ("DELETE", "/services/web"),
        ("GET", "/services/web/logs?stdout=1"),
        ("GET", "/nodes"),
        ("GET", "/nodes/self"),
        ("GET", "/tasks"),
        ("GET", "/tasks/t1"),
        ("GET", "/secrets"),
        ("POST", "/secrets/create"),
        ("GET", "/configs"),
        ("DELETE", "/configs/c1"),
        ("GET", "/v1.41/nodes"),
    ] {
        let (st, v) = json_req(&d, method, path, None);
        assert_eq!(st, 503, "{method} {path}: {v}");
        assert_eq!(v["message"], NOT_MANAGER, "{method} {path}");
    }
    let (st, v) = json_req(&d, "POST", "/swarm/leave", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (503, Some("This node is not part of a swarm"))
    );
    let (st, v) = json_req(&d, "POST", "/swarm/init", Some("{}"));
    assert_eq!(st, 503);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("swarm mode is not supported by wharf")
    );
    let (st, _) = json_req(&d, "GET", "/services?filters=%7Bnot-json", None);
    assert_eq!(st, 400);

    // 2. The CLI prints dockerd's error and exits 1.
    for args in [
        &["node", "ls"][..],
        &["service", "ls"],
        &["secret", "ls"],
        &["config", "ls"],
        &["stack", "ls"],
        &["swarm", "unlock-key"],
    ] {
        let (code, err) = d.fails(args);
        assert_eq!(code, 1, "docker {args:?}: {err}");
        assert!(err.contains(NOT_MANAGER), "docker {args:?}: {err}");
    }
    let (code, err) = d.fails(&["swarm", "leave"]);
    assert_eq!(code, 1);
    assert!(err.contains("This node is not part of a swarm"), "{err}");
    let (_, err) = d.fails(&["swarm", "init"]);
    assert!(
        err.contains("swarm mode is not supported by wharf"),
        "{err}"
    );
    assert_eq!(
        d.ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "inactive"
    );

    // 3. Plugins: none installed.
    let (st, v) = json_req(&d, "GET", "/plugins", None);
    assert_eq!((st, v), (200, json!([])));
    let (st, v) = json_req(
        &d,
        "GET",
        &format!(
            "/plugins?filters={}",
            filters(json!({"enabled": ["true"], "capability": ["volumedriver"]}))
        ),
        None,
    );
    assert_eq!((st, v), (200, json!([])));
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/plugins?filters={}", filters(json!({"color": ["red"]}))),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("invalid filter 'color'"))
    );
    let (st, v) = json_req(&d, "GET", "/plugins/vieux/sshfs:latest/json", None);
    assert_eq!(
        (st, v["message"].as_str()),
        (404, Some("plugin \"vieux/sshfs:latest\" not found"))
    );
    let (st, _) = json_req(&d, "DELETE", "/plugins/vieux/sshfs", None);
    assert_eq!(st, 404);
    let (st, _) = json_req(&d, "POST", "/plugins/sshfs/enable", None);
    assert_eq!(st, 404);
    let (st, v) = json_req(&d, "POST", "/plugins/pull?remote=vieux/sshfs", Some("[]"));
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("plugins are not supported by wharf"))
    );
    let table = d.ok(&["plugin", "ls"]);
    assert_eq!(
        table.split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAME", "DESCRIPTION", "ENABLED"]
    );
    let (code, err) = d.fails(&["plugin", "inspect", "sshfs"]);
    assert_eq!(code, 1);
    assert!(err.contains("plugin \"sshfs\" not found"), "{err}");
}

/// `X-Registry-Auth` for `user`/`pass`.
fn auth_header(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE
        .encode(json!({"username": user, "password": pass}).to_string())
}

/// The manifest `reference` (tag or digest) of `repo` as `reg` serves it.
fn registry_manifest(reg: &wharf_testkit_daemon::Registry, repo: &str, reference: &str) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(reg.addr).unwrap();
    write!(
        s,
        "GET /v2/{repo}/manifests/{reference} HTTP/1.0\r\nHost: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json\r\n\r\n",
        reg.addr
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    buf[at + 4..].to_vec()
}

#[test]
fn distribution_inspect_against_a_registry() {
    let d = Daemon::start();
    let reg = wharf_testkit_daemon::Registry::start();
    let host = reg.host();
    let arch = wharf_image::manifest::Platform::host().arch;
    // 1. A single OCI image manifest: its descriptor and its config's platform.
    let dir = tempfile::tempdir().unwrap();
    let layer = wharf_testkit_daemon::tar_of(&[("etc/", b""), ("etc/motd", b"hi\n")]);
    wharf_testkit_daemon::write_oci_layout(dir.path(), &[layer], "dist");
    reg.seed(dir.path(), "team/app", "v1");
    let digest = reg.digest("team/app", "v1").unwrap();
    let manifest = registry_manifest(&reg, "team/app", "v1");
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/distribution/{host}/team/app:v1/json"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({
            "Descriptor": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": manifest.len(),
            },
            "Platforms": [{"architecture": arch, "os": "linux"}],
        })
    );
    // By digest, and with an API version prefix: the same answer.
    let (st, by_digest) = json_req(
        &d,
        "GET",
        &format!("/v1.45/distribution/{host}/team/app@{digest}/json"),
        None,
    );
    assert_eq!((st, &by_digest), (200, &v));

    // 2. An index: one platform per entry, as listed.
    let idx_dir = tempfile::tempdir().unwrap();
    let layer = wharf_testkit_daemon::tar_of(&[("etc/", b""), ("etc/motd", b"multi\n")]);
    wharf_testkit_daemon::write_oci_layout(idx_dir.path(), &[layer], "multi");
    let index: Value =
        serde_json::from_slice(&std::fs::read(idx_dir.path().join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0].clone();
    let entry = |arch: &str, variant: Option<&str>| {
        let mut e = json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
            "platform": {"architecture": arch, "os": "linux"}});
        if let Some(v) = variant {
            e["platform"]["variant"] = json!(v);
        }
        e
    };
    let image_index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("amd64", None), entry("arm64", Some("v8"))],
    }))
    .unwrap();
    let index_digest = wharf_image::Digest::from_bytes(&image_index);
    std::fs::write(
        idx_dir.path().join("blobs/sha256").join(index_digest.hex()),
        &image_index,
    )
    .unwrap();
    std::fs::write(
        idx_dir.path().join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest.to_string(), "size": image_index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
        .unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:latest", idx_dir.path().display()))
        .arg(format!("docker://{host}/team/multi:latest"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/distribution/{host}/team/multi/json"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    // skopeo re-serialises the index: compare with what the registry serves.
    let served = registry_manifest(&reg, "team/multi", "latest");
    assert_eq!(
        v["Descriptor"]["digest"],
        wharf_image::Digest::from_bytes(&served).to_string()
    );
    assert_eq!(v["Descriptor"]["size"], served.len());
    assert_eq!(
        v["Platforms"],
        json!([{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}])
    );

    // 3. docker-py's inspect_distribution reads the same answer.
    let py = format!(
        "import docker,json; c=docker.APIClient(base_url='unix://{}'); print(json.dumps(c.inspect_distribution('{host}/team/app:v1')))",
        d.socket.display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &py])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pyv: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pyv["Descriptor"]["digest"], digest);

    // 4. Errors.
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/distribution/{host}/team/app:nope/json"),
        None,
    );
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["message"], "manifest unknown: manifest unknown");
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/distribution/{}/json", "ab".repeat(32)),
        None,
    );
    assert_eq!(
        (st, v["message"].as_str()),
        (500, Some("no manifest found for full image ID"))
    );
    let (st, v) = json_req(&d, "GET", "/distribution/Team/App/json", None);
    assert_eq!(st, 400, "{v}");

    // 5. A registry that needs credentials: refused without, served with.
    let locked = wharf_testkit_daemon::Registry::start_htpasswd("alice", "s3cret");
    locked.seed(dir.path(), "private/app", "v1");
    let lhost = locked.host();
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/distribution/{lhost}/private/app:v1/json"),
        None,
    );
    assert_eq!(st, 401, "{v}");
    let (st, v) = wharf_testkit_daemon::http(
        &d.socket,
        "GET",
        &format!("/distribution/{lhost}/private/app:v1/json"),
        &[("X-Registry-Auth", &auth_header("alice", "s3cret"))],
        b"",
    );
    assert_eq!(st, 200, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(
        v["Descriptor"]["digest"],
        locked.digest("private/app", "v1").unwrap()
    );
}

/// A registry index on 127.0.0.1 serving `/v1/_ping` and `/v1/search` over
/// plain HTTP, recording each request's target and auth headers; stopped
/// on drop.
struct Index {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Index {
    fn start() -> Index {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                // A TLS hello is not a request line: drop the connection.
                if reader.read_line(&mut line).is_err() || !line.starts_with("GET ") {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (mut auth, mut token) = (String::new(), String::new());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        match k.to_ascii_lowercase().as_str() {
                            "authorization" => auth = v.trim().to_owned(),
                            "x-docker-token" => token = v.trim().to_owned(),
                            _ => {}
                        }
                    }
                }
                seen2.lock().unwrap().push((target.clone(), auth, token));
                let body = if target == "/v1/_ping" {
                    "true".to_owned()
                } else if target.starts_with("/v1/search?") {
                    json!({"query": "foo", "num_results": 3, "results": [
                        {"name": "foo/one", "description": "first of foo", "star_count": 5, "is_official": false, "is_automated": true},
                        {"name": "foo", "description": "the foo", "star_count": 100, "is_official": true, "is_automated": false},
                        {"name": "foo/two", "description": "second", "star_count": 1, "is_official": false, "is_automated": false}
                    ]})
                    .to_string()
                } else {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    continue;
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Index {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The search requests received so far: (target, Authorization, X-Docker-Token).
    fn searches(&self) -> Vec<(String, String, String)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t.starts_with("/v1/search"))
            .cloned()
            .collect()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn image_search_on_a_loopback_index() {
    let d = Daemon::start();
    let index = Index::start();
    let term = format!("{}/foo", index.addr);
    let q = |extra: &str| format!("/images/search?term={term}{extra}");

    // 1. The index's results, is_automated forced false, dockerd's fields.
    let (st, v) = json_req(&d, "GET", &q(""), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!([
            {"star_count": 5, "is_official": false, "name": "foo/one", "is_automated": false, "description": "first of foo"},
            {"star_count": 100, "is_official": true, "name": "foo", "is_automated": false, "description": "the foo"},
            {"star_count": 1, "is_official": false, "name": "foo/two", "is_automated": false, "description": "second"}
        ])
    );
    let last = index.searches().pop().unwrap();
    assert_eq!(last.0, "/v1/search?q=foo&n=25");
    assert_eq!((last.1.as_str(), last.2.as_str()), ("", "true"));

    // 2. Filters and limits.
    let names = |extra: &str| -> Vec<String> {
        let (st, v) = json_req(&d, "GET", &q(extra), None);
        assert_eq!(st, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let f = |v: Value| format!("&filters={}", filters(v));
    assert_eq!(names(&f(json!({"is-official": ["true"]}))), ["foo"]);
    assert_eq!(
        names(&f(json!({"is-official": ["false"]}))),
        ["foo/one", "foo/two"]
    );
    assert_eq!(names(&f(json!({"stars": ["3"]}))), ["foo/one", "foo"]);
    assert_eq!(names(&f(json!({"stars": ["3", "50"]}))), ["foo"]);
    assert!(names(&f(json!({"is-automated": ["true"]}))).is_empty());
    assert_eq!(
        names("&limit=2").len(),
        3,
        "the index decides what it returns"
    );
    assert_eq!(index.searches().pop().unwrap().0, "/v1/search?q=foo&n=2");
    for (extra, msg) in [
        (f(json!({"stars": ["many"]})), "invalid filter 'stars=many'"),
        (f(json!({"color": ["red"]})), "invalid filter 'color'"),
        (
            "&limit=101".to_owned(),
            "limit 101 is outside the range of [1, 100]",
        ),
        ("&limit=x".to_owned(), "invalid limit specified"),
    ] {
        let (st, v) = json_req(&d, "GET", &q(&extra), None);
        assert_eq!(st, 400, "{extra}: {v}");
        assert!(
            v["message"].as_str().unwrap().starts_with(msg),
            "{extra}: {v}"
        );
    }
    let (st, v) = json_req(&d, "GET", "/images/search?term=http://127.0.0.1/foo", None);
    assert_eq!(st, 400);
    assert_eq!(
        v["message"],
        "invalid repository name: repository name (http://127.0.0.1/foo) should not have a scheme"
    );

    // 3. Credentials go to the index as Basic auth.
    let (st, _) = wharf_testkit_daemon::http(
        &d.socket,
        "GET",
        &q(""),
        &[("X-Registry-Auth", &auth_header("alice", "s3cret"))],
        b"",
    );
    assert_eq!(st, 200);
    use base64::Engine as _;
    assert_eq!(
        index.searches().pop().unwrap().1,
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
        )
    );

    // 4. An index that does not answer.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let (st, v) = json_req(
        &d,
        "GET",
        &format!("/images/search?term={dead_addr}/foo"),
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().starts_with(&format!(
            "invalid registry endpoint \"https://{dead_addr}/v1/\". HTTPS attempt:"
        )),
        "{v}"
    );

    // 5. The docker CLI.
    let table = d.ok(&["search", &term]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"],
        "{table}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].starts_with("foo/one") && rows[0].contains("first of foo"),
        "{table}"
    );
    assert!(
        rows[1].contains("100") && rows[1].contains("[OK]"),
        "{table}"
    );
    assert_eq!(
        d.ok(&[
            "search",
            "--filter",
            "is-official=true",
            "--format",
            "{{.Name}} {{.StarCount}}",
            &term
        ]),
        "foo 100"
    );
    d.ok(&["search", "--limit", "7", &term]);
    assert_eq!(index.searches().pop().unwrap().0, "/v1/search?q=foo&n=7");
    let (code, err) = d.fails(&["search", "--limit", "200", &term]);
    assert_eq!(code, 1);
    assert!(
        err.contains("limit 200 is outside the range of [1, 100]"),
        "{err}"
    );
}

/// A websocket client, just enough for attach: the RFC 6455 handshake over
/// the daemon's socket, masked client frames, unmasked server frames.
struct Ws {
    s: std::os::unix::net::UnixStream,
}

/// The RFC 6455 sample key and the accept value a server must derive from it.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl Ws {
    /// Opens `path`; an HTTP answer other than 101 is `Err((status, body))`.
    fn connect(d: &Daemon, path: &str) -> Result<Ws, (u16, String)> {
        use std::io::{Read as _, Write as _};
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: wharf\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if status != 101 {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).unwrap();
            return Err((status, String::from_utf8_lossy(&body).into_owned()));
        }
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "sec-websocket-accept: {}",
                WS_ACCEPT.to_ascii_lowercase()
            )),
            "{head}"
        );
        Ok(Ws { s })
    }

    fn send(&mut self, opcode: u8, data: &[u8]) {
        use std::io::Write as _;
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut f = vec![0x80 | opcode];
        match data.len() {
            n if n < 126 => f.push(0x80 | u8::try_from(n).unwrap()),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    /// The next message: (opcode, payload); `None` at end of stream.
    fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        use std::io::Read as _;
        let mut h = [0u8; 2];
        self.s.read_exact(&mut h).ok()?;
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).ok()?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let mut data = vec![0u8; usize::try_from(len).unwrap()];
        self.s.read_exact(&mut data).ok()?;
        Some((h[0] & 0x0f, data))
    }

    /// Data messages until `want` has arrived (or a close / the end).
    fn read_until(&mut self, want: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut data, mut opcodes) = (Vec::new(), Vec::new());
        while !data.windows(want.len().max(1)).any(|w| w == want) {
            match self.recv() {
                Some((8, _)) | None => break,
                Some((op, d)) => {
                    opcodes.push(op);
                    data.extend_from_slice(&d);
                }
            }
        }
        (data, opcodes)
    }

    /// Everything until the server closes: (data, opcodes, saw a close frame).
    fn read_to_close(&mut self) -> (Vec<u8>, Vec<u8>, bool) {
        let (mut data, mut opcodes) = (Vec::new(), Vec::new());
        loop {
            match self.recv() {
                Some((8, _)) => return (data, opcodes, true),
                None => return (data, opcodes, false),
                Some((op, d)) => {
                    opcodes.push(op);
                    data.extend_from_slice(&d);
                }
            }
        }
    }
}

#[test]
fn websocket_attach() {
    let d = Daemon::start();
    let wait_exit = |id: &str| {
        d.ok(&["wait", id]);
    };

    // 1. Refusals are HTTP errors before the upgrade, in dockerd's words.
    let Err((st, body)) = Ws::connect(&d, "/containers/nosuch/attach/ws?stream=1") else {
        panic!("attached to a missing container");
    };
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such container: nosuch"), "{body}");
    let cat = d.ok(&["run", "-d", "-i", "busybox", "cat"]);
    let Err((st, body)) = Ws::connect(
        &d,
        &format!("/containers/{cat}/attach/ws?stream=1&detachKeys=ctrl-foo"),
    ) else {
        panic!("bad detach keys accepted");
    };
    assert_eq!(st, 400);
    assert!(
        body.contains("Invalid detach keys (ctrl-foo) provided"),
        "{body}"
    );
    d.ok(&["pause", &cat]);
    let Err((st, body)) = Ws::connect(&d, &format!("/containers/{cat}/attach/ws?stream=1")) else {
        panic!("attached to a paused container");
    };
    assert_eq!(st, 409);
    assert!(
        body.contains("is paused, unpause the container before attach"),
        "{body}"
    );
    d.ok(&["unpause", &cat]);

    // 2. Streams: every message is stdin, output comes back raw (not
    // multiplexed), in binary messages.
    let mut ws = Ws::connect(
        &d,
        &format!("/containers/{cat}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"),
    )
    .unwrap();
    ws.send(2, b"binary line\n");
    let (out, ops) = ws.read_until(b"binary line\n");
    assert_eq!(out, b"binary line\n");
    assert!(ops.iter().all(|&o| o == 2), "{ops:?}");
    ws.send(1, b"text line\n");
    assert_eq!(ws.read_until(b"text line\n").0, b"text line\n");
    ws.send(8, &[]);
    drop(ws);
    // Without a terminal and StdinOnce the process's stdin stays open.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", &cat]),
        "running"
    );

    // 3. logs=1 without stream: the log replayed raw, then the close.
    let both = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "echo out; sleep 0.2; echo err >&2",
    ]);
    wait_exit(&both);
    let mut ws = Ws::connect(
        &d,
        &format!("/containers/{both}/attach/ws?logs=1&stdout=1&stderr=1"),
    )
    .unwrap();
    let (out, ops, closed) = ws.read_to_close();
    assert_eq!(String::from_utf8_lossy(&out), "out\nerr\n");
    assert!(closed && ops.iter().all(|&o| o == 2), "{ops:?}");
    let mut ws = Ws::connect(&d, &format!("/containers/{both}/attach/ws?logs=1&stderr=1")).unwrap();
    assert_eq!(ws.read_to_close().0, b"err\n");
    // Before API 1.42 all three streams are attached; before 1.28 the
    // messages are text.
    let mut ws = Ws::connect(&d, &format!("/v1.27/containers/{both}/attach/ws?logs=1")).unwrap();
    let (out, ops, _) = ws.read_to_close();
    assert_eq!(String::from_utf8_lossy(&out), "out\nerr\n");
    assert!(ops.iter().all(|&o| o == 1), "{ops:?}");
    // Neither logs nor stream: the socket opens and closes.
    let mut ws = Ws::connect(&d, &format!("/containers/{both}/attach/ws")).unwrap();
    assert_eq!(ws.read_to_close(), (Vec::new(), Vec::new(), true));

    // 4. Attached before the start: the first output arrives, the socket
    // closes when the process exits.
    let later = d.ok(&["create", "busybox", "sh", "-c", "echo started"]);
    let mut ws = Ws::connect(
        &d,
        &format!("/containers/{later}/attach/ws?stream=1&stdout=1&stderr=1"),
    )
    .unwrap();
    d.ok(&["start", &later]);
    let (out, _, closed) = ws.read_to_close();
    assert_eq!(out, b"started\n");
    assert!(closed);

    // 5. A terminal: the detach keys end the session, the container runs on.
    let tty = d.ok(&["run", "-d", "-t", "-i", "busybox", "cat"]);
    let mut ws = Ws::connect(
        &d,
        &format!("/containers/{tty}/attach/ws?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x"),
    )
    .unwrap();
    ws.send(2, b"hello\n");
    let (out, _) = ws.read_until(b"hello\r\nhello\r\n");
    assert!(
        String::from_utf8_lossy(&out).contains("hello\r\nhello\r\n"),
        "{out:?}"
    );
    ws.send(2, &[0x18]);
    let (_, _, closed) = ws.read_to_close();
    assert!(closed, "a detach closes the socket");
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", &tty]),
        "running"
    );
    // And again with the default keys, ctrl-p ctrl-q.
    let mut ws = Ws::connect(
        &d,
        &format!("/containers/{tty}/attach/ws?stream=1&stdin=1&stdout=1"),
    )
    .unwrap();
    ws.send(2, &[0x10]);
    ws.send(2, &[0x11]);
    assert!(ws.read_to_close().2);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", &tty]),
        "running"
    );
}
