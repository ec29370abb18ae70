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
        let t = Template::parse(f)?;
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
    let pct = |r: f64, t: f64| {
        if t > 0.0 {
            format!("{} ({:.0}%)", human_size(r), r / t * 100.0)
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
    let img_reclaim: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) <= 0)
        .map(|i| {
            i["Size"].as_f64().unwrap_or(0.0) - i["SharedSize"].as_f64().unwrap_or(0.0).max(0.0)
        })
        .sum();
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
    print!("{}", out.render(&headers, &rows)?);
    if a.verbose {
        let now = now_secs();
        println!("\nImages space usage:\n");
        let irows: Vec<(Value, NoMethods)> = super::image::image_rows(&images, true, false, now)
            .into_iter()
            .map(|r| (r, NoMethods))
            .collect();
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
                r["Size"] = json!(human_size(c["SizeRw"].as_f64().unwrap_or(0.0)));
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
        println!("\nBuild cache usage: {}", human_size(cache_total));
    }
    Ok(())
}

pub async fn events(app: &mut App, a: &EventsArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let now = now_secs();
    let since = a
        .since
        .as_deref()
        .map(|s| timestamp_arg(s, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| timestamp_arg(s, now))
        .transpose()?;
    let q = Query::new()
        .opt("since", since)
        .opt("until", until)
        .opt("filters", filters_json(&a.filter)?);
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(f)?),
    };
    let mut s = c.events(q).await?;
    use std::io::Write as _;
    while let Some(ev) = s.next().await {
        let ev = ev?;
        let line = match &tmpl {
            Some(t) => t.render(&ev)?,
            None => event_line(&ev),
        };
        let mut o = std::io::stdout().lock();
        if writeln!(o, "{line}").and_then(|_| o.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// docker's default event line:
/// `2024-01-02T03:04:05.123456789Z container start <id> (image=x, name=y)`.
pub fn event_line(ev: &Value) -> String {
    let nanos = ev["timeNano"]
        .as_i64()
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let ts = format_rfc3339_nano(
        nanos.div_euclid(1_000_000_000),
        u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    );
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
    let deleted: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect();
    if !deleted.is_empty() {
        println!("Deleted Containers:\n{}\n", deleted.join("\n"));
    }
    // Networks and volumes may not be served yet: a 404 there is "nothing to prune".
    match c.network_prune(filters.as_deref()).await {
        Ok(n) => {
            let d: Vec<&str> = n["NetworksDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .collect();
            if !d.is_empty() {
                println!("Deleted Networks:\n{}\n", d.join("\n"));
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if a.volumes {
        match c.volume_prune(filters.as_deref()).await {
            Ok(n) => {
                total += n["SpaceReclaimed"].as_f64().unwrap_or(0.0);
                let d: Vec<&str> = n["VolumesDeleted"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str())
                    .collect();
                if !d.is_empty() {
                    println!("Deleted Volumes:\n{}\n", d.join("\n"));
                }
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
            "2024-01-02T03:04:05.123Z container start abc (image=busybox, name=web)"
        );
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
