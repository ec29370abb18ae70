//! System commands: version, info, system df, events, system prune,
//! login, logout.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wharf_client::Query;

use crate::app::{App, filters_json};
use crate::cli::*;
use crate::format::human::{format_rfc3339_nano, now_secs, timestamp_arg};
use crate::format::template::{NoMethods, Template};
use crate::format::units::human_size;

fn client_version() -> Value {
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": wharf_client::MAX_API_VERSION,
        "DefaultAPIVersion": wharf_client::MAX_API_VERSION,
        "GoVersion": "n/a (Rust)",
        "GitCommit": "",
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "Context": "default",
        "Platform": {"Name": "wharf"},
    })
}

pub async fn version(app: &mut App, a: &FormatOnly) -> anyhow::Result<()> {
    super::check_format(a.format.as_deref(), super::BadFormat::Exit64("version"))?;
    let client = client_version();
    let server = match app.client().await {
        Ok(c) => Some(c.version_info().await.map_err(anyhow::Error::from)),
        Err(e) => Some(Err(e)),
    };
    let (server_v, server_err) = match server {
        Some(Ok(v)) => (v, None),
        Some(Err(e)) => (Value::Null, Some(e)),
        None => (Value::Null, None),
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = Template::parse_named("version", f)?;
        println!(
            "{}",
            t.render(&json!({"Client": client, "Server": server_v}))?
        );
    } else {
        let mut s = format!(
            "Client:\n Version:           {}\n API version:       {}\n Go version:        {}\n Git commit:        {}\n Built:             {}\n OS/Arch:           {}/{}\n Context:           default\n",
            client["Version"].as_str().unwrap_or(""),
            client["ApiVersion"].as_str().unwrap_or(""),
            client["GoVersion"].as_str().unwrap_or(""),
            client["GitCommit"].as_str().unwrap_or(""),
            client["BuildTime"].as_str().unwrap_or(""),
            client["Os"].as_str().unwrap_or(""),
            client["Arch"].as_str().unwrap_or(""),
        );
        if !server_v.is_null() {
            let sv = &server_v;
            s.push_str(&format!(
                "\nServer: {}\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  Go version:       {}\n  Git commit:       {}\n  Built:            {}\n  OS/Arch:          {}/{}\n  Experimental:     {}\n",
                sv["Platform"]["Name"].as_str().unwrap_or(""),
                sv["Version"].as_str().unwrap_or(""),
                sv["ApiVersion"].as_str().unwrap_or(""),
                sv["MinAPIVersion"].as_str().unwrap_or(""),
                sv["GoVersion"].as_str().unwrap_or(""),
                sv["GitCommit"].as_str().unwrap_or(""),
                sv["BuildTime"].as_str().unwrap_or(""),
                sv["Os"].as_str().unwrap_or(""),
                sv["Arch"].as_str().unwrap_or(""),
                sv["Experimental"].as_bool().unwrap_or(false),
            ));
            for comp in sv["Components"].as_array().into_iter().flatten() {
                if comp["Name"] == "Engine" {
                    continue;
                }
                s.push_str(&format!(
                    " {}:\n  Version:          {}\n",
                    comp["Name"].as_str().unwrap_or(""),
                    comp["Version"].as_str().unwrap_or("")
                ));
            }
        }
        print!("{s}");
    }
    if let Some(e) = server_err {
        return Err(e);
    }
    Ok(())
}

pub async fn info(app: &mut App, a: &FormatOnly) -> anyhow::Result<()> {
    super::check_format(a.format.as_deref(), super::BadFormat::Exit64(""))?;
    let c = app.client().await?;
    let v = c.info().await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        println!("{}", Template::parse(f)?.render(&v)?);
        return Ok(());
    }
    let s = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v[k].to_string())
    };
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    let mut out = String::new();
    out.push_str("Client:\n Version:    ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\n Context:    default\n Debug Mode: false\n\nServer:\n");
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        n("Containers"), n("ContainersRunning"), n("ContainersPaused"), n("ContainersStopped"), n("Images"), s("ServerVersion"), s("Driver")
    ));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        if let (Some(k), Some(val)) = (pair[0].as_str(), pair[1].as_str()) {
            out.push_str(&format!("  {k}: {val}\n"));
        }
    }
    out.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n",
        s("LoggingDriver"),
        s("CgroupDriver"),
        s("CgroupVersion")
    ));
    out.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n",
        s("KernelVersion"), s("OperatingSystem"), s("OSType"), s("Architecture"), n("NCPU"),
        crate::format::units::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0)),
        s("Name"), s("ID"), s("DockerRootDir"), v["Debug"].as_bool().unwrap_or(false)
    ));
    if let Some(regs) = v["RegistryConfig"]["InsecureRegistryCIDRs"].as_array() {
        out.push_str(" Insecure Registries:\n");
        for r in regs {
            out.push_str(&format!("  {}\n", r.as_str().unwrap_or("")));
        }
        for (k, _) in v["RegistryConfig"]["IndexConfigs"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if v["RegistryConfig"]["IndexConfigs"][k]["Secure"] == false {
                out.push_str(&format!("  {k}\n"));
            }
        }
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n",
        v["LiveRestoreEnabled"].as_bool().unwrap_or(true)
    ));
    print!("{out}");
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
    Ok(())
}

pub async fn df(app: &mut App, a: &DfArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let v = c.disk_usage().await?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let cache = v["BuildCache"].as_array().cloned().unwrap_or_default();
    // Docker divides integers: the percentage is truncated.
    #[allow(clippy::cast_possible_truncation)]
    let pct = |r: f64, t: f64| {
        if t > 0.0 {
            format!("{} ({}%)", human_size(r), (r * 100.0 / t) as i64)
        } else {
            human_size(r)
        }
    };
    let img_total: f64 = v["LayersSize"].as_f64().unwrap_or_else(|| {
        images
            .iter()
            .map(|i| i["Size"].as_f64().unwrap_or(0.0))
            .sum()
    });
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    // docker: the total less the unique size of images in use.
    let img_used: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) != 0)
        .filter(|i| i["Size"].as_f64() != Some(-1.0) && i["SharedSize"].as_f64() != Some(-1.0))
        .map(|i| i["Size"].as_f64().unwrap_or(0.0) - i["SharedSize"].as_f64().unwrap_or(0.0))
        .sum();
    let img_reclaim = img_total - img_used;
    let ctr_total: f64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_f64().unwrap_or(0.0))
        .sum();
    let ctr_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let ctr_reclaim: f64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| c["SizeRw"].as_f64().unwrap_or(0.0))
        .sum();
    let vol_total: f64 = volumes
        .iter()
        .map(|x| x["UsageData"]["Size"].as_f64().unwrap_or(0.0))
        .sum();
    let vol_active = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let vol_reclaim: f64 = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) == 0)
        .map(|x| x["UsageData"]["Size"].as_f64().unwrap_or(0.0))
        .sum();
    let cache_total: f64 = cache
        .iter()
        .map(|x| x["Size"].as_f64().unwrap_or(0.0))
        .sum();
    let cache_active = cache
        .iter()
        .filter(|x| x["InUse"].as_bool().unwrap_or(false))
        .count();
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(), "Size": human_size(img_total), "Reclaimable": pct(img_reclaim.max(0.0), img_total)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": ctr_active.to_string(), "Size": human_size(ctr_total), "Reclaimable": pct(ctr_reclaim, ctr_total)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": vol_active.to_string(), "Size": human_size(vol_total), "Reclaimable": pct(vol_reclaim, vol_total)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": cache_active.to_string(), "Size": human_size(cache_total), "Reclaimable": human_size(cache_total)}),
    ];
    let headers = BTreeMap::from([
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ]);
    let out = crate::format::Output::new(
        a.format.as_deref().unwrap_or(""),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        false,
    )?;
    let rows: Vec<(Value, NoMethods)> = rows.into_iter().map(|r| (r, NoMethods)).collect();
    if !a.verbose {
        print!("{}", out.render(&headers, &rows)?);
    } else {
        let now = now_secs();
        println!("Images space usage:\n");
        let mut irows: Vec<(Value, NoMethods)> = Vec::new();
        for img in &images {
            let size = img["Size"].as_f64().unwrap_or(0.0);
            let shared = img["SharedSize"].as_f64().unwrap_or(-1.0);
            for mut r in super::image::image_rows(std::slice::from_ref(img), true, false, now) {
                if shared >= 0.0 {
                    r["SharedSize"] = json!(human_size(shared));
                    r["UniqueSize"] = json!(human_size(size - shared));
                }
                irows.push((r, NoMethods));
            }
        }
        let io = crate::format::Output::new(
            "",
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
            false,
        )?;
        let mut ih = BTreeMap::from([
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
        ]);
        ih.insert("Containers", "CONTAINERS");
        print!("{}", io.render(&ih, &irows)?);
        println!("\nContainers space usage:\n");
        let crows: Vec<(Value, NoMethods)> = containers
            .iter()
            .map(|c| {
                let (r, _) = super::container::ps_row(c, true, now);
                let mut r = r;
                r["LocalVolumes"] = json!(
                    c["Mounts"]
                        .as_array()
                        .map(|m| m.len())
                        .unwrap_or(0)
                        .to_string()
                );
                r["Size"] = json!(crate::format::units::human_size_precision(
                    c["SizeRw"].as_f64().unwrap_or(0.0),
                    3
                ));
                (r, NoMethods)
            })
            .collect();
        let co = crate::format::Output::new(
            "",
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
            false,
        )?;
        print!("{}", co.render(&super::container::ps_headers(), &crows)?);
        println!("\nLocal Volumes space usage:\n");
        let vrows: Vec<(Value, NoMethods)> = volumes
            .iter()
            .map(|x| (json!({"Name": x["Name"], "Links": x["UsageData"]["RefCount"].to_string(), "Size": human_size(x["UsageData"]["Size"].as_f64().unwrap_or(0.0))}), NoMethods))
            .collect();
        let vo = crate::format::Output::new("", "table {{.Name}}\t{{.Links}}\t{{.Size}}", false)?;
        print!(
            "{}",
            vo.render(
                &BTreeMap::from([
                    ("Name", "VOLUME NAME"),
                    ("Links", "LINKS"),
                    ("Size", "SIZE")
                ]),
                &vrows
            )?
        );
        println!("\nBuild cache usage: {}\n", human_size(cache_total));
        let brows: Vec<(Value, NoMethods)> = cache
            .iter()
            .map(|x| {
                let id = x["ID"].as_str().unwrap_or("");
                (
                    json!({
                        "ID": id.get(..12).unwrap_or(id),
                        "CacheType": x["Type"],
                        "Size": human_size(x["Size"].as_f64().unwrap_or(0.0)),
                        "CreatedSince": x["CreatedAt"],
                        "LastUsedSince": x["LastUsedAt"],
                        "UsageCount": x["UsageCount"].to_string(),
                        "Shared": x["Shared"].to_string(),
                    }),
                    NoMethods,
                )
            })
            .collect();
        let bo = crate::format::Output::new(
            "",
            "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
            false,
        )?;
        print!(
            "{}",
            bo.render(
                &BTreeMap::from([
                    ("ID", "CACHE ID"),
                    ("CacheType", "CACHE TYPE"),
                    ("Size", "SIZE"),
                    ("CreatedSince", "CREATED"),
                    ("LastUsedSince", "LAST USED"),
                    ("UsageCount", "USAGE"),
                    ("Shared", "SHARED"),
                ]),
                &brows
            )?
        );
    }
    Ok(())
}

pub async fn events(app: &mut App, a: &EventsArgs) -> anyhow::Result<()> {
    super::check_format(a.format.as_deref(), super::BadFormat::Events)?;
    let c = app.client().await?;
    let now = now_secs();
    let since = a
        .since
        .as_deref()
        .map(|s| timestamp_arg("since", s, now))
        .transpose()
        .map_err(short_time_error)?;
    let until = a
        .until
        .as_deref()
        .map(|s| timestamp_arg("until", s, now))
        .transpose()
        .map_err(short_time_error)?;
    let q = Query::new()
        .opt("since", since)
        .opt("until", until)
        .opt("filters", filters_json(&a.filter)?);
    // `json` and `{{json .}}` print docker's events.Message in its field order.
    let whole_json = matches!(
        a.format.as_deref().map(str::trim),
        Some("json" | "{{json .}}")
    );
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        _ if whole_json => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut s = c.events(q).await?;
    use std::io::Write as _;
    while let Some(ev) = s.next().await {
        let ev = ev?;
        let line = match &tmpl {
            Some(t) => t.render(&event_fields(&ev))?,
            None if whole_json => event_json(&ev),
            None => event_line(&ev),
        };
        let mut o = std::io::stdout().lock();
        if writeln!(o, "{line}").and_then(|_| o.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// docker events words a bad time without naming the flag.
fn short_time_error(e: crate::format::human::HumanError) -> anyhow::Error {
    match e {
        crate::format::human::HumanError::TimeArg { value, .. } => {
            anyhow::anyhow!("failed to parse value as time or duration: {value:?}")
        }
        other => other.into(),
    }
}

/// An event as docker's template sees its Go struct: the JSON keys plus
/// the field names (`.Status`, `.ID`, `.From`, `.Time`, `.TimeNano`, `.Scope`).
fn event_fields(ev: &Value) -> Value {
    let mut v = ev.clone();
    if let Some(m) = v.as_object_mut() {
        for (field, key) in [
            ("Status", "status"),
            ("ID", "id"),
            ("From", "from"),
            ("Time", "time"),
            ("TimeNano", "timeNano"),
            ("Scope", "scope"),
        ] {
            // A Go struct field always exists: absent means its zero value.
            let zero = if key.starts_with("time") {
                json!(0)
            } else {
                json!("")
            };
            m.insert(
                field.to_owned(),
                ev.get(key)
                    .filter(|x| !x.is_null())
                    .cloned()
                    .unwrap_or(zero),
            );
        }
        for k in ["Type", "Action"] {
            m.entry(k).or_insert_with(|| json!(""));
        }
    }
    v
}

/// `json.Marshal` of docker's events.Message: its field order, empty
/// legacy fields omitted, `<>&` escaped.
fn event_json(ev: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for k in ["status", "id", "from"] {
        if ev[k].as_str().is_some_and(|s| !s.is_empty()) {
            parts.push(format!("\"{k}\":{}", ev[k]));
        }
    }
    parts.push(format!("\"Type\":{}", ev["Type"]));
    parts.push(format!("\"Action\":{}", ev["Action"]));
    let attrs = match &ev["Actor"]["Attributes"] {
        Value::Null => json!({}),
        a => a.clone(),
    };
    parts.push(format!(
        "\"Actor\":{{\"ID\":{},\"Attributes\":{attrs}}}",
        ev["Actor"]["ID"]
    ));
    for k in ["scope", "time", "timeNano"] {
        if !ev[k].is_null() {
            parts.push(format!("\"{k}\":{}", ev[k]));
        }
    }
    format!("{{{}}}", parts.join(","))
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// docker's default event line:
/// `2024-01-02T03:04:05.123456789Z container start <id> (image=x, name=y)`.
pub fn event_line(ev: &Value) -> String {
    let nanos = ev["timeNano"]
        .as_i64()
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    // jsonmessage.RFC3339NanoFixed: always nine digits.
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let base = format_rfc3339_nano(secs, 0);
    let ts = format!("{}.{frac:09}Z", base.trim_end_matches('Z'));
    let kind = ev["Type"].as_str().unwrap_or("");
    let action = ev["Action"]
        .as_str()
        .or_else(|| ev["status"].as_str())
        .unwrap_or("");
    let id = ev["Actor"]["ID"]
        .as_str()
        .or_else(|| ev["id"].as_str())
        .unwrap_or("");
    let attrs: Vec<String> = ev["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if attrs.is_empty() {
        format!("{ts} {kind} {action} {id}")
    } else {
        format!("{ts} {kind} {action} {id} ({})", attrs.join(", "))
    }
}

pub async fn prune(app: &mut App, a: &SystemPruneArgs) -> anyhow::Result<()> {
    if !a.force {
        let mut w = String::from(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
        );
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        w.push_str(if a.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        w.push_str("  - unused build cache\n");
        if !super::confirm(&w)? {
            return Ok(());
        }
    }
    let c = app.client().await?;
    let filters = filters_json(&a.filter)?;
    let mut total = 0.0;
    let v = c.container_prune(filters.as_deref()).await?;
    total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    print_deleted(&v, "ContainersDeleted", "Containers");
    // Networks and volumes may not be served yet: a 404 there is "nothing to prune".
    match c.network_prune(filters.as_deref()).await {
        Ok(n) => print_deleted(&n, "NetworksDeleted", "Networks"),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if a.volumes {
        match c.volume_prune(filters.as_deref()).await {
            Ok(n) => {
                total += n["SpaceReclaimed"].as_f64().unwrap_or(0.0);
                print_deleted(&n, "VolumesDeleted", "Volumes");
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut f = a.filter.clone();
    f.push(format!("dangling={}", !a.all));
    let v = c.image_prune(filters_json(&f)?.as_deref()).await?;
    total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    let mut lines = String::new();
    for d in v["ImagesDeleted"].as_array().into_iter().flatten() {
        if let Some(u) = d["Untagged"].as_str() {
            lines.push_str(&format!("untagged: {u}\n"));
        }
        if let Some(x) = d["Deleted"].as_str() {
            lines.push_str(&format!("deleted: {x}\n"));
        }
    }
    if !lines.is_empty() {
        println!("Deleted Images:\n{lines}");
    }
    match c.build_prune(a.all).await {
        Ok(b) => total += b["SpaceReclaimed"].as_f64().unwrap_or(0.0),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    println!("Total reclaimed space: {}", human_size(total));
    Ok(())
}

/// Prints a prune reply's list `key` as docker does (`Deleted <what>:`,
/// one ID per line, a blank line), nothing when it is empty.
pub fn print_deleted(reply: &Value, key: &str, what: &str) {
    let ids: Vec<&str> = reply[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect();
    if !ids.is_empty() {
        println!("Deleted {what}:\n{}\n", ids.join("\n"));
    }
}

/// The `X-Registry-Auth` header value for `reference` from the stored
/// `config.json` credentials (docker's base64url-encoded JSON), if any.
pub fn registry_auth(reference: &str) -> Option<String> {
    use base64::Engine as _;
    let first = reference.split('/').next().unwrap_or("");
    let key = if reference.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_owned()
    } else {
        server_key(None)
    };
    let cfg: Value = serde_json::from_slice(&std::fs::read(config_path()).ok()?).ok()?;
    let entry = &cfg["auths"][&key];
    let (user, pass) = match entry["auth"].as_str() {
        Some(a) => {
            let raw = base64::engine::general_purpose::STANDARD.decode(a).ok()?;
            let raw = String::from_utf8(raw).ok()?;
            let (u, p) = raw.split_once(':')?;
            (u.to_owned(), p.to_owned())
        }
        None => (
            entry["username"].as_str()?.to_owned(),
            entry["password"].as_str()?.to_owned(),
        ),
    };
    let doc = json!({"username": user, "password": pass, "serveraddress": key});
    Some(base64::engine::general_purpose::URL_SAFE.encode(doc.to_string()))
}

fn config_path() -> std::path::PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

fn server_key(server: Option<&str>) -> String {
    match server {
        None | Some("docker.io") | Some("index.docker.io") | Some("registry-1.docker.io") => {
            "https://index.docker.io/v1/".into()
        }
        Some(s) => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
    }
}

pub async fn login(app: &mut App, a: &LoginArgs) -> anyhow::Result<()> {
    use base64::Engine as _;
    let password = if a.password_stdin {
        if a.password.is_some() {
            anyhow::bail!("--password and --password-stdin are mutually exclusive");
        }
        if a.username.is_none() {
            anyhow::bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        anyhow::bail!(
            "Error: Cannot perform an interactive login from a non TTY device; use --username and --password-stdin"
        );
    };
    let user = a
        .username
        .clone()
        .ok_or_else(|| anyhow::anyhow!("Must provide --username"))?;
    let key = server_key(a.server.as_deref());
    let c = app.client().await?;
    let resp = c
        .auth(&json!({"username": user, "password": password, "serveraddress": key}))
        .await?;
    let path = config_path();
    let mut cfg: Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    cfg["auths"][&key] = json!({"auth": auth});
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&cfg)?)?;
    std::fs::rename(&tmp, &path)?;
    println!("{}", resp["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(())
}

pub async fn logout(a: &LogoutArgs) -> anyhow::Result<()> {
    let key = server_key(a.server.as_deref());
    let path = config_path();
    let mut cfg: Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    let removed = cfg["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&key))
        .is_some();
    if !removed {
        println!("Not logged in to {key}");
        return Ok(());
    }
    println!("Removing login credentials for {key}");
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let ev = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}, "time": 1_704_164_645, "timeNano": 1_704_164_645_123_000_000i64});
        assert_eq!(
            event_line(&ev),
            "2024-01-02T03:04:05.123000000Z container start abc (image=busybox, name=web)"
        );
    }

    #[test]
    fn event_json_in_docker_field_order() {
        let ev = json!({"Type": "image", "Action": "tag", "Actor": {"ID": "sha256:1", "Attributes": {"name": "a<b>"}}, "scope": "local", "time": 1, "timeNano": 1_000_000_001, "status": "tag", "id": "sha256:1"});
        assert_eq!(
            event_json(&ev),
            r#"{"status":"tag","id":"sha256:1","Type":"image","Action":"tag","Actor":{"ID":"sha256:1","Attributes":{"name":"a\u003cb\u003e"}},"scope":"local","time":1,"timeNano":1000000001}"#
        );
        assert_eq!(event_fields(&ev)["TimeNano"], 1_000_000_001);
    }

    #[test]
    fn registry_keys() {
        assert_eq!(server_key(None), "https://index.docker.io/v1/");
        assert_eq!(
            server_key(Some("https://localhost:5000/")),
            "localhost:5000"
        );
    }
}
