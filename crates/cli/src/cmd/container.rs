//! Container commands other than run/create/attach/exec: ps, start, stop,
//! restart, kill, rm, logs, inspect, top, stats, wait, rename, pause,
//! unpause, port, cp, diff, export, commit, update, prune.

use std::collections::BTreeMap;
use std::io::Write as _;

use serde_json::{Value, json};
use wharf_client::stream::next_chunk;
use wharf_client::{Body, Client, ClientError, Query};

use crate::app::{App, Exit, describe_client, filters_json};
use crate::cli::*;
use crate::format::human::{ago, go_time_string, now_secs, timestamp_arg};
use crate::format::template::Methods;
use crate::format::units::{bytes_size, human_size, human_size_precision};
use crate::format::{Output, ellipsis, go_quote, short_id};

/// Runs `f` on each container, printing each name on success and each
/// error on stderr; exit 1 if any failed (docker's multi-container rule).
async fn each<'a, F, Fut>(c: &'a Client, names: &'a [String], f: F) -> anyhow::Result<()>
where
    F: Fn(&'a Client, &'a str) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let mut failed = false;
    for n in names {
        match f(c, n).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", describe_client(&e));
                failed = true;
            }
        }
    }
    if failed { Err(Exit::code(1)) } else { Ok(()) }
}

/// [`each`] with the requests in flight together, as docker's CLI does for
/// stop, kill, rm, pause and unpause: at most 50 at once, results printed in
/// the order the containers were named.
async fn each_parallel<'a, F, Fut>(c: &'a Client, names: &'a [String], f: F) -> anyhow::Result<()>
where
    F: Fn(&'a Client, &'a str) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    use futures_util::stream::{self, StreamExt};
    let mut results = stream::iter(names)
        .map(|n| {
            let op = f(c, n);
            async move { (n, op.await) }
        })
        .buffered(50);
    let mut failed = false;
    while let Some((n, r)) = results.next().await {
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", describe_client(&e));
                failed = true;
            }
        }
    }
    if failed { Err(Exit::code(1)) } else { Ok(()) }
}

pub const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps_headers() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ])
}

/// A `ps` row's labels, for `.Label "k"`.
pub struct Labels(BTreeMap<String, String>);

impl Methods for Labels {
    fn call(&self, name: &str, args: &[Value]) -> Option<Value> {
        (name == "Label").then(|| {
            let k = args.first().and_then(Value::as_str).unwrap_or("");
            Value::String(self.0.get(k).cloned().unwrap_or_default())
        })
    }
}

/// docker's `DisplayablePorts`.
pub fn displayable_ports(ports: &[Value]) -> String {
    let mut ps: Vec<(u64, String, u64, String)> = ports
        .iter()
        .map(|p| {
            (
                p["PrivatePort"].as_u64().unwrap_or(0),
                p["IP"].as_str().unwrap_or("").to_owned(),
                p["PublicPort"].as_u64().unwrap_or(0),
                p["Type"].as_str().unwrap_or("tcp").to_owned(),
            )
        })
        .collect();
    ps.sort();
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host = Vec::new();
    for (private, ip, public, kind) in ps {
        let key = if ip.is_empty() {
            kind.clone()
        } else {
            if public != private {
                let h = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                host.push(format!("{h}->{private}/{kind}"));
                continue;
            }
            format!("{ip}/{kind}")
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) if private == g.2 + 1 => g.2 = private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                *g = (key, private, private);
            }
            None => groups.push((key, private, private)),
        }
    }
    for g in &groups {
        result.push(form_group(&g.0, g.1, g.2));
    }
    result.extend(host);
    result.join(", ")
}

fn form_group(key: &str, first: u64, last: u64) -> String {
    let (ip, kind) = match key.rsplit_once('/') {
        Some((ip, k)) => (ip, k),
        None => ("", key),
    };
    let mut g = first.to_string();
    if first != last {
        g = format!("{g}-{last}");
    }
    if !ip.is_empty() {
        let h = if ip.contains(':') {
            format!("[{ip}]:{g}")
        } else {
            format!("{ip}:{g}")
        };
        g = format!("{h}->{g}");
    }
    format!("{g}/{kind}")
}

/// One `ps` row as docker's container context renders it.
pub fn ps_row(c: &Value, trunc: bool, now: f64) -> (Value, Labels) {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/').to_owned())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = go_quote(&if trunc {
        ellipsis(command, 20)
    } else {
        command.to_owned()
    });
    let created = c["Created"].as_i64().unwrap_or(0);
    let labels: BTreeMap<String, String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let labels_s = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or_else(|| m["Source"].as_str())
                .unwrap_or("");
            if trunc { ellipsis(n, 15) } else { n.to_owned() }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let srw = c["SizeRw"].as_f64().unwrap_or(0.0);
    let srf = c["SizeRootFs"].as_f64().unwrap_or(0.0);
    let size = if srf > 0.0 {
        format!(
            "{} (virtual {})",
            human_size_precision(srw, 3),
            human_size_precision(srf, 3)
        )
    } else {
        human_size_precision(srw, 3)
    };
    let image = c["Image"].as_str().unwrap_or("");
    let image = if image.is_empty() {
        "<no image>".to_owned()
    } else if trunc && image.starts_with("sha256:") {
        short_id(image)
    } else {
        image.to_owned()
    };
    let status = c["Status"].as_str().unwrap_or("");
    let row = json!({
        "ID": if trunc { short_id(id) } else { id.to_owned() },
        "Names": names,
        "Image": image,
        "Command": command,
        "CreatedAt": go_time_string(created),
        "RunningFor": ago(created, now),
        "Ports": displayable_ports(c["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[])),
        "State": c["State"].as_str().unwrap_or(""),
        "Status": status,
        "Size": size,
        "Labels": labels_s,
        "Mounts": mounts.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Networks": networks.join(","),
        "Platform": Value::Null,
    });
    (row, Labels(labels))
}

pub async fn ps(app: &mut App, a: &PsArgs) -> anyhow::Result<()> {
    super::check_format(a.format.as_deref(), super::BadFormat::Ps)?;
    let c = app.client().await?;
    let format = a.format.as_deref().unwrap_or("");
    // Docker asks for sizes when the template uses .Size or `json .` (not
    // for `--format json`).
    let size = a.size || (!a.quiet && (format.contains(".Size") || format.contains("json .}}")));
    let limit = if a.latest { 1 } else { a.last };
    let q = Query::new()
        .flag("all", a.all || limit > 0)
        .opt("limit", (limit > 0).then(|| limit.to_string()))
        .flag("size", size)
        .opt("filters", filters_json(&a.filter)?);
    let list = c.container_list(q).await?;
    let mut table = PS_TABLE.to_owned();
    if a.size && (format.is_empty() || format == "table") {
        table.push_str("\t{{.Size}}");
    }
    let out = Output::new(format, &table, a.quiet)?;
    let now = now_secs();
    let rows: Vec<(Value, Labels)> = list.iter().map(|c| ps_row(c, !a.no_trunc, now)).collect();
    print!("{}", out.render(&ps_headers(), &rows)?);
    Ok(())
}

pub async fn start(app: &mut App, a: &StartArgs) -> anyhow::Result<()> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        return super::run::start_attached(
            app,
            &a.containers[0],
            a.interactive,
            a.detach_keys.as_deref(),
        )
        .await;
    }
    let c = app.client().await?;
    let mut failed = false;
    for n in &a.containers {
        match c.container_start(n).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", describe_client(&e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::with(
            1,
            "Error: failed to start containers: ".to_owned() + &a.containers.join(", "),
        ));
    }
    Ok(())
}

pub async fn stop(app: &mut App, a: &StopArgs, restart: bool) -> anyhow::Result<()> {
    let c = app.client().await?;
    let (t, s) = (a.timeout, a.signal.as_deref());
    if restart {
        each(c, &a.containers, |c, n| c.container_restart(n, t, s)).await
    } else {
        each_parallel(c, &a.containers, |c, n| c.container_stop(n, t, s)).await
    }
}

pub async fn kill(app: &mut App, a: &KillArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let s = a.signal.as_deref();
    each_parallel(c, &a.containers, |c, n| c.container_kill(n, s)).await
}

pub async fn rm(app: &mut App, a: &RmArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let (f, v, l) = (a.force, a.volumes, a.link);
    each_parallel(c, &a.containers, |c, n| c.container_remove(n, f, v, l)).await
}

pub async fn pause(app: &mut App, a: &Containers, un: bool) -> anyhow::Result<()> {
    let c = app.client().await?;
    if un {
        each_parallel(c, &a.containers, |c, n| c.container_unpause(n)).await
    } else {
        each_parallel(c, &a.containers, |c, n| c.container_pause(n)).await
    }
}

pub async fn rename(app: &mut App, a: &RenameArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    if a.new_name.trim().is_empty() {
        anyhow::bail!("Error: neither old nor new names may be empty");
    }
    c.container_rename(&a.container, &a.new_name).await?;
    Ok(())
}

pub async fn wait(app: &mut App, a: &Containers) -> anyhow::Result<()> {
    let c = app.client().await?;
    let mut failed = false;
    for n in &a.containers {
        let r = async { c.container_wait(n, None).await?.result().await }.await;
        match r {
            Ok(w) => println!("{}", w.status_code),
            Err(e) => {
                eprintln!("{}", describe_client(&e));
                failed = true;
            }
        }
    }
    if failed { Err(Exit::code(1)) } else { Ok(()) }
}

pub async fn logs(app: &mut App, a: &LogsArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let info = c.container_inspect(&a.container, false).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = now_secs();
    let since = a
        .since
        .as_deref()
        .map(|s| timestamp_arg("since", s, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| timestamp_arg("until", s, now))
        .transpose()?;
    let q = Query::new()
        .set("stdout", "1")
        .set("stderr", "1")
        .flag("follow", a.follow)
        .flag("timestamps", a.timestamps)
        .flag("details", a.details)
        .set("tail", &a.tail)
        .opt("since", since)
        .opt("until", until);
    let body = c.container_logs(&a.container, q).await?;
    crate::streams::copy_logs(body, tty).await
}

pub async fn inspect(
    app: &mut App,
    names: &[String],
    format: Option<&str>,
    size: bool,
    kind: Option<&str>,
) -> anyhow::Result<()> {
    super::check_format(format, super::BadFormat::Exit64(""))?;
    let c = app.client().await?;
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        let got = match kind {
            Some("container") => c.container_inspect_raw(n, size).await,
            Some("image") => c.image_inspect_raw(n).await,
            Some(other) => anyhow::bail!(
                "unknown type: {other:?}: must be one of \"config\", \"container\", \"image\", \"network\", \"node\", \"plugin\", \"secret\", \"service\", \"task\", \"volume\""
            ),
            None => match c.container_inspect_raw(n, size).await {
                Err(e) if e.is_not_found() => c.image_inspect_raw(n).await,
                r => r,
            },
        };
        match got.and_then(|raw| {
            serde_json::from_slice::<Value>(&raw)
                .map(|v| (v, raw))
                .map_err(|source| ClientError::Decode {
                    path: format!("inspect {n}"),
                    source,
                })
        }) {
            Ok(v) => items.push(v),
            Err(e) if e.is_not_found() && kind.is_none() => {
                errors.push(format!("Error: No such object: {n}"))
            }
            Err(e) => errors.push(describe_client(&e)),
        }
    }
    super::print_inspect(&items, format, &errors)
}

pub async fn top(app: &mut App, a: &TopArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let ps_args = (!a.ps_args.is_empty()).then(|| a.ps_args.join(" "));
    let v = c.container_top(&a.container, ps_args.as_deref()).await?;
    let mut text = String::new();
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    text.push_str(&titles.join("\t"));
    text.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cols: Vec<&str> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        text.push_str(&cols.join("\t"));
        text.push('\n');
    }
    let mut tw = crate::format::tabwriter::TabWriter::new(20, 1);
    tw.push(&text);
    print!("{}", tw.finish());
    Ok(())
}

/// One stats sample as docker's stats table shows it.
pub fn stats_row(name: &str, id: &str, s: &Value, trunc: bool) -> Value {
    let cpu_delta = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys_delta = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let ncpu = s["cpu_stats"]["online_cpus"]
        .as_f64()
        .filter(|n| *n > 0.0)
        .unwrap_or_else(|| {
            s["cpu_stats"]["cpu_usage"]["percpu_usage"]
                .as_array()
                .map(|a| a.len() as f64)
                .unwrap_or(1.0)
        });
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let usage = s["memory_stats"]["usage"].as_f64().unwrap_or(0.0);
    let cache = s["memory_stats"]["stats"]["total_inactive_file"]
        .as_f64()
        .or_else(|| s["memory_stats"]["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let mem = (usage - cache).max(0.0);
    let limit = s["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for (_, n) in s["networks"].as_object().into_iter().flatten() {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => br += e["value"].as_f64().unwrap_or(0.0),
            "write" => bw += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let pids = s["pids_stats"]["current"].as_u64().unwrap_or(0);
    json!({
        "Container": name,
        "Name": name,
        "ID": if trunc { short_id(id) } else { id.to_owned() },
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size_precision(rx, 3), human_size_precision(tx, 3)),
        "BlockIO": format!("{} / {}", human_size_precision(br, 3), human_size_precision(bw, 3)),
        "PIDs": pids.to_string(),
    })
}

pub async fn stats(app: &mut App, a: &StatsArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let names: Vec<String> = if a.containers.is_empty() {
        c.container_list(Query::new().flag("all", a.all))
            .await?
            .iter()
            .filter_map(|x| x["Id"].as_str().map(str::to_owned))
            .collect()
    } else {
        a.containers.clone()
    };
    let headers = BTreeMap::from([
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ]);
    let out = Output::new(
        a.format.as_deref().unwrap_or(""),
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
        false,
    )?;
    loop {
        let mut rows = Vec::new();
        for n in &names {
            let mut s = c.container_stats(n, false).await?;
            let Some(v) = s.next().await else { continue };
            let v = v?;
            let name = v["name"]
                .as_str()
                .unwrap_or(n)
                .trim_start_matches('/')
                .to_owned();
            let id = v["id"].as_str().unwrap_or(n).to_owned();
            rows.push((
                stats_row(&name, &id, &v, !a.no_trunc),
                crate::format::template::NoMethods,
            ));
        }
        let text = out.render(&headers, &rows)?;
        if a.no_stream {
            print!("{text}");
            return Ok(());
        }
        print!("\x1b[2J\x1b[H{text}");
        std::io::stdout().flush()?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

pub async fn port(app: &mut App, a: &PortArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let info = c.container_inspect(&a.container, false).await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    let want = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    for (k, v) in &ports {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in v.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let hp = b["HostPort"].as_str().unwrap_or("");
            let addr = if ip.contains(':') {
                format!("[{ip}]:{hp}")
            } else {
                format!("{ip}:{hp}")
            };
            lines.push(if want.is_some() {
                addr
            } else {
                format!("{k} -> {addr}")
            });
        }
    }
    if let Some(p) = &a.port
        && lines.is_empty()
    {
        anyhow::bail!("Error: No public port '{p}' published for {}", a.container);
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

pub async fn diff(app: &mut App, a: &OneContainer) -> anyhow::Result<()> {
    let c = app.client().await?;
    let v = c.container_changes(&a.container).await?;
    for ch in v.as_array().into_iter().flatten() {
        let k = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{k} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

async fn write_body(mut body: wharf_client::Incoming, output: Option<&str>) -> anyhow::Result<()> {
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| anyhow::anyhow!("failed to export container: {p}: {e}"))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = next_chunk(&mut body).await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn export(app: &mut App, a: &ExportArgs) -> anyhow::Result<()> {
    if a.output.is_none() && crate::tty::stdout_is_tty() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let c = app.client().await?;
    let body = c.container_export(&a.container).await?;
    write_body(body, a.output.as_deref()).await
}

/// Splits `container:path` (a local path has no colon before a slash).
fn split_cp(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

pub async fn cp(app: &mut App, a: &CpArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    match (split_cp(&a.src), split_cp(&a.dest)) {
        (Some((ctr, path)), None) => {
            let (_, body) = c.archive_get(ctr, path).await?;
            if a.dest == "-" {
                return write_body(body, None).await;
            }
            // Unpack the tar at the destination, renaming the top entry
            // when the destination does not exist (docker cp semantics).
            let mut bytes = Vec::new();
            let mut body = body;
            while let Some(ch) = next_chunk(&mut body).await {
                bytes.extend_from_slice(&ch?);
            }
            let dest = std::path::Path::new(&a.dest);
            if a.dest.ends_with('/') && !dest.is_dir() {
                return Err(match std::fs::symlink_metadata(dest) {
                    Ok(_) => anyhow::anyhow!("stat {}: not a directory", abs(&a.dest)),
                    Err(_) => anyhow::anyhow!("no such directory"),
                });
            }
            let base = std::path::Path::new(path)
                .file_name()
                .map(|s| s.to_os_string())
                .unwrap_or_default();
            let (target_dir, rename) = if dest.is_dir() {
                (dest.to_path_buf(), None)
            } else {
                (
                    dest.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."))
                        .to_path_buf(),
                    dest.file_name().map(|f| f.to_os_string()),
                )
            };
            let mut ar = tar::Archive::new(&bytes[..]);
            ar.set_preserve_permissions(true);
            for e in ar.entries()? {
                let mut e = e?;
                let p = e.path()?.into_owned();
                let p = match (&rename, p.strip_prefix(&base)) {
                    (Some(r), Ok(rest)) if rest.as_os_str().is_empty() => {
                        std::path::PathBuf::from(r)
                    }
                    (Some(r), Ok(rest)) => std::path::Path::new(r).join(rest),
                    _ => p,
                };
                if p.components().any(|c| {
                    !matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )
                }) {
                    anyhow::bail!(
                        "refusing archive entry outside the destination: {}",
                        p.display()
                    );
                }
                let out = target_dir.join(&p);
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                e.unpack(&out)?;
            }
            Ok(())
        }
        (None, Some((ctr, path))) => {
            let body = if a.src == "-" {
                Body::reader(tokio::io::stdin())
            } else {
                let src = std::path::PathBuf::from(&a.src);
                let meta = std::fs::symlink_metadata(&src)
                    .map_err(|e| anyhow::anyhow!("lstat {}: {}", abs(&a.src), go_io_error(&e)))?;
                let stat = c.archive_stat(ctr, path).await;
                if path.ends_with('/') {
                    match &stat {
                        Err(e) if e.is_not_found() => anyhow::bail!("no such directory"),
                        Ok(s) if s["mode"].as_u64().is_some_and(|m| m & (1 << 31) == 0) => {
                            anyhow::bail!(
                                "Error response from daemon: not a directory: {ctr}:{path}"
                            )
                        }
                        _ => {}
                    }
                }
                let (dir, name) = match stat {
                    Ok(s) if s["mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0) => (
                        path.to_owned(),
                        src.file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    _ => {
                        let p = std::path::Path::new(path);
                        (
                            p.parent()
                                .map(|x| x.to_string_lossy().into_owned())
                                .unwrap_or_else(|| "/".into()),
                            p.file_name()
                                .map(|f| f.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                        )
                    }
                };
                let mut t = tar::Builder::new(Vec::new());
                t.follow_symlinks(a.follow_link);
                if meta.is_dir() {
                    t.append_dir_all(&name, &src)?;
                } else {
                    t.append_path_with_name(&src, &name)?;
                }
                let bytes = t.into_inner()?;
                return Ok(c
                    .archive_put(ctr, &dir, Body::bytes(bytes), a.archive)
                    .await?);
            };
            c.archive_put(ctr, path, body, a.archive).await?;
            Ok(())
        }
        (Some(_), Some(_)) => anyhow::bail!("copying between containers is not supported"),
        (None, None) => anyhow::bail!("must specify at least one container source"),
    }
}

/// `p` made absolute against the working directory, for messages.
fn abs(p: &str) -> String {
    match std::path::absolute(p) {
        Ok(a) => a.display().to_string(),
        Err(_) => p.to_owned(),
    }
}

/// An I/O error as Go words it (`no such file or directory`).
fn go_io_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

pub async fn commit(app: &mut App, a: &CommitArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let mut q = Query::new()
        .set("container", &a.container)
        .bool("pause", a.pause);
    if let Some(r) = &a.repository {
        let (repo, tag) = super::image::split_tag(r);
        q = q.set("repo", repo).opt("tag", tag);
    }
    q = q
        .opt("author", a.author.as_deref())
        .opt("comment", a.message.as_deref());
    for ch in &a.change {
        q = q.set("changes", ch);
    }
    let v = c.commit(q, None).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn update(app: &mut App, a: &UpdateArgs) -> anyhow::Result<()> {
    use crate::opts;
    let mut u = serde_json::Map::new();
    if let Some(v) = &a.cpus {
        u.insert("NanoCpus".into(), json!(opts::nano_cpus(v)?));
    }
    if let Some(v) = a.cpu_shares {
        u.insert("CpuShares".into(), json!(v));
    }
    if let Some(v) = a.cpu_period {
        u.insert("CpuPeriod".into(), json!(v));
    }
    if let Some(v) = a.cpu_quota {
        u.insert("CpuQuota".into(), json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        u.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        u.insert("CpusetMems".into(), json!(v));
    }
    if let Some(v) = a.blkio_weight {
        u.insert("BlkioWeight".into(), json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        u.insert("CpuRealtimePeriod".into(), json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        u.insert("CpuRealtimeRuntime".into(), json!(v));
    }
    if let Some(v) = &a.memory {
        u.insert("Memory".into(), json!(opts::mem("-m, --memory", v)?));
    }
    if let Some(v) = &a.memory_reservation {
        u.insert(
            "MemoryReservation".into(),
            json!(opts::mem("--memory-reservation", v)?),
        );
    }
    if let Some(v) = &a.memory_swap {
        u.insert("MemorySwap".into(), json!(opts::memory_swap(v)?));
    }
    if let Some(v) = a.pids_limit {
        u.insert("PidsLimit".into(), json!(v));
    }
    if let Some(r) = &a.restart {
        u.insert("RestartPolicy".into(), opts::restart_policy(r)?);
    }
    if u.is_empty() {
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    let body = Value::Object(u);
    let c = app.client().await?;
    let mut failed = false;
    for n in &a.containers {
        match c.container_update(n, &body).await {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or(""));
                }
                println!("{n}");
            }
            Err(e) => {
                eprintln!("{}", describe_client(&e));
                failed = true;
            }
        }
    }
    if failed { Err(Exit::code(1)) } else { Ok(()) }
}

pub async fn prune(app: &mut App, a: &PruneArgs) -> anyhow::Result<()> {
    if !a.force && !super::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let c = app.client().await?;
    let v = c
        .container_prune(filters_json(&a.filter)?.as_deref())
        .await?;
    super::system::print_deleted(&v, "ContainersDeleted", "Containers");
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_as_docker_displays_them() {
        let ports = vec![
            json!({"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"}),
            json!({"PrivatePort": 443, "Type": "tcp"}),
            json!({"PrivatePort": 444, "Type": "tcp"}),
            json!({"PrivatePort": 53, "PublicPort": 53, "IP": "0.0.0.0", "Type": "udp"}),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "0.0.0.0:53->53/udp, 443-444/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn ps_table_as_docker() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox",
            "Command": "sleep 1000000000000000", "Created": 1000, "State": "running",
            "Status": "Up 2 minutes", "Labels": {"a": "b"}, "Ports": []
        });
        let rows = vec![ps_row(&c, true, 1130.0)];
        let out = Output::new("", PS_TABLE, false)
            .unwrap()
            .render(&ps_headers(), &rows)
            .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n\
             0123456789ab   busybox   \"sleep 1000000000000…\"   2 minutes ago   Up 2 minutes             web\n"
        );
        let out = Output::new("{{.Names}} {{.Label \"a\"}} {{.Labels}}", PS_TABLE, false)
            .unwrap()
            .render(&ps_headers(), &rows)
            .unwrap();
        assert_eq!(out, "web b a=b\n");
    }

    #[test]
    fn stats_figures() {
        let s = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 1_572_864u64 + 4096, "limit": 2_147_483_648u64, "stats": {"inactive_file": 4096}},
            "pids_stats": {"current": 3}
        });
        let r = stats_row("web", "0123456789abcdef", &s, true);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "1.5MiB / 2GiB");
        assert_eq!(r["MemPerc"], "0.07%");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["ID"], "0123456789ab");
    }

    #[test]
    fn cp_argument_split() {
        assert_eq!(split_cp("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_cp("/tmp/a:b"), None);
        assert_eq!(split_cp("./x"), None);
        assert_eq!(split_cp("file"), None);
    }
}
