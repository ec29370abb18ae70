//! Image commands: pull (with docker's progress and the embedded
//! hello-world fallback), push, images/ls, rmi, tag, history, save, load,
//! import, prune, inspect.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use wharf_client::stream::{JsonStream, next_chunk};
use wharf_client::{Body, Client, Query};

use super::progress::Display;
use crate::app::{App, Exit, filters_json};
use crate::cli::*;
use crate::format::human::{ago, go_time_string, now_secs};
use crate::format::template::NoMethods;
use crate::format::units::human_size_precision;
use crate::format::{Output, short_id};

/// The `hello-world` image shipped in this binary (a `docker save` tar).
pub const HELLO_WORLD_TAR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello-world.tar"));

/// Splits `name[:tag]` (a port in the registry part is not a tag).
pub fn split_tag(r: &str) -> (&str, Option<&str>) {
    if r.contains('@') {
        return (r, None);
    }
    match r.rfind(':') {
        Some(i) if !r[i + 1..].contains('/') => (&r[..i], Some(&r[i + 1..])),
        _ => (r, None),
    }
}

/// `busybox` -> `busybox:latest` (for messages), digests kept.
pub fn with_default_tag(r: &str) -> String {
    match split_tag(r) {
        (_, Some(_)) => r.to_owned(),
        _ if r.contains('@') => r.to_owned(),
        (n, None) => format!("{n}:latest"),
    }
}

/// True when `r` names Docker Hub's `hello-world:latest`.
pub fn is_hello_world(r: &str) -> bool {
    let full = with_default_tag(r);
    let name = full
        .strip_prefix("docker.io/")
        .or_else(|| full.strip_prefix("index.docker.io/"))
        .unwrap_or(&full);
    let name = name.strip_prefix("library/").unwrap_or(name);
    name == "hello-world:latest"
}

/// Fully qualified reference as docker prints it after a pull.
fn qualified(r: &str) -> String {
    let full = with_default_tag(r);
    let first = full.split('/').next().unwrap_or("");
    let has_registry =
        full.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        full
    } else if full.contains('/') {
        format!("docker.io/{full}")
    } else {
        format!("docker.io/library/{full}")
    }
}

/// Loads the embedded hello-world image.
pub async fn load_hello_world(c: &Client) -> anyhow::Result<()> {
    let mut s = c.image_load(Body::bytes(HELLO_WORLD_TAR), true).await?;
    while let Some(m) = s.next().await {
        let m = m?;
        if let Some(e) = m["error"].as_str() {
            anyhow::bail!("loading the embedded hello-world image: {e}");
        }
    }
    Ok(())
}

async fn show_stream(
    mut s: JsonStream,
    display: &mut Display<impl std::io::Write>,
) -> anyhow::Result<()> {
    while let Some(m) = s.next().await {
        display.show(&m?).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Pulls `image` showing progress on `err_out` (stderr for run/create,
/// stdout for pull). hello-world falls back to the embedded copy.
pub async fn pull(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> anyhow::Result<()> {
    let (name, tag) = split_tag(image);
    let tag = if image.contains('@') {
        None
    } else {
        Some(tag.unwrap_or("latest"))
    };
    let attempt = async {
        let auth = super::system::registry_auth(name);
        let s = c.image_pull(name, tag, platform, auth.as_deref()).await?;
        if quiet {
            let mut s = s;
            while let Some(m) = s.next().await {
                let m = m?;
                if let Some(e) = m
                    .get("errorDetail")
                    .and_then(|d| d["message"].as_str())
                    .or_else(|| m["error"].as_str())
                {
                    anyhow::bail!("{e}");
                }
            }
            Ok(())
        } else if to_stderr {
            let term = crate::tty::stderr_is_tty();
            show_stream(s, &mut Display::new(std::io::stderr(), term)).await
        } else {
            let term = crate::tty::stdout_is_tty();
            show_stream(s, &mut Display::new(std::io::stdout(), term)).await
        }
    };
    if is_hello_world(image) {
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => Ok(()),
            _ => load_hello_world(c).await,
        }
    } else {
        attempt
            .await
            .map_err(|e| match e.downcast::<wharf_client::ClientError>() {
                Ok(c) => c.into(),
                Err(e) => anyhow::anyhow!("Error response from daemon: {e}"),
            })
    }
}

/// `--disable-content-trust=false` asks for notary signatures, which
/// wharf does not implement: refused rather than ignored.
fn no_content_trust(disabled: bool) -> anyhow::Result<()> {
    if !disabled {
        anyhow::bail!(
            "image verification (content trust) is not supported: leave --disable-content-trust at true"
        );
    }
    Ok(())
}

pub async fn cmd_pull(app: &mut App, a: &PullArgs) -> anyhow::Result<()> {
    no_content_trust(a.disable_content_trust)?;
    let c = app.client().await?;
    if !a.all_tags && split_tag(&a.name).1.is_none() && !a.name.contains('@') && !a.quiet {
        println!("Using default tag: latest");
    }
    pull(c, &a.name, a.platform.as_deref(), a.quiet, false).await?;
    println!("{}", qualified(&a.name));
    Ok(())
}

pub async fn cmd_push(app: &mut App, a: &PushArgs) -> anyhow::Result<()> {
    no_content_trust(a.disable_content_trust)?;
    let c = app.client().await?;
    let (name, tag) = split_tag(&a.name);
    if tag.is_none() && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let tag = if a.all_tags {
        None
    } else {
        Some(tag.unwrap_or("latest"))
    };
    let auth = super::system::registry_auth(name);
    let s = c.image_push(name, tag, auth.as_deref()).await?;
    if a.quiet {
        let mut s = s;
        while let Some(m) = s.next().await {
            let m = m?;
            if let Some(e) = m["error"].as_str() {
                anyhow::bail!("{e}");
            }
        }
        println!("{}", a.name);
    } else {
        show_stream(
            s,
            &mut Display::new(std::io::stdout(), crate::tty::stdout_is_tty()),
        )
        .await?;
    }
    Ok(())
}

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

fn image_headers() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ])
}

/// Rows for `images`: one per tag (or one `<none>` row).
pub fn image_rows(images: &[Value], trunc: bool, digests: bool, now: f64) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in images {
        let id = img["Id"].as_str().unwrap_or("");
        let id = if trunc { short_id(id) } else { id.to_owned() };
        let created = img["Created"].as_i64().unwrap_or(0);
        let size = img["Size"].as_f64().unwrap_or(0.0);
        let tags: Vec<String> = img["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let repo_digests: Vec<String> = img["RepoDigests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut pairs: Vec<(String, String)> = tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| {
                let (r, tg) = split_tag(t);
                (r.to_owned(), tg.unwrap_or("<none>").to_owned())
            })
            .collect();
        if pairs.is_empty() {
            for d in &repo_digests {
                let repo = d.split('@').next().unwrap_or("<none>");
                pairs.push((repo.to_owned(), "<none>".into()));
            }
        }
        if pairs.is_empty() {
            pairs.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in pairs {
            let digest = repo_digests
                .iter()
                .find(|d| d.split('@').next() == Some(repo.as_str()))
                .and_then(|d| d.split('@').nth(1))
                .unwrap_or("<none>");
            let _ = digests;
            rows.push(json!({
                "ID": id,
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": ago(created, now),
                "CreatedAt": go_time_string(created),
                "Size": human_size_precision(size, 3),
                "VirtualSize": crate::format::units::human_size(size),
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "Containers": match img["Containers"].as_i64() { Some(-1) | None => "N/A".to_owned(), Some(n) => n.to_string() },
            }));
        }
    }
    rows
}

pub async fn cmd_images(app: &mut App, a: &ImagesArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let q = Query::new()
        .flag("all", a.all)
        .flag("digests", a.digests)
        .opt("filters", filters_json(&filters)?);
    let mut images = c.image_list(q).await?;
    images.sort_by_key(|i| std::cmp::Reverse(i["Created"].as_i64().unwrap_or(0)));
    let table = if a.digests {
        IMAGES_TABLE_DIGESTS
    } else {
        IMAGES_TABLE
    };
    let out = Output::new(a.format.as_deref().unwrap_or(""), table, a.quiet)?;
    let mut rows = image_rows(&images, !a.no_trunc, a.digests, now_secs());
    // Docker's daemon lists only the matching tags of a matched image.
    if let Some(r) = a.reference.as_deref().filter(|r| !r.contains('*')) {
        let (name, tag) = split_tag(r);
        let familiar = |n: &str| {
            let n = n.strip_prefix("docker.io/").unwrap_or(n);
            n.strip_prefix("library/").unwrap_or(n).to_owned()
        };
        let want = familiar(name);
        rows.retain(|row| {
            familiar(row["Repository"].as_str().unwrap_or("")) == want
                && tag.is_none_or(|t| row["Tag"] == t)
        });
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        rows.retain(|r| seen.insert(r["ID"].as_str().unwrap_or("").to_owned()));
    }
    let rows: Vec<(Value, NoMethods)> = rows.into_iter().map(|r| (r, NoMethods)).collect();
    print!("{}", out.render(&image_headers(), &rows)?);
    Ok(())
}

pub async fn cmd_rmi(app: &mut App, a: &RmiArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let mut failed = false;
    for img in &a.images {
        match c.image_remove(img, a.force, a.no_prune).await {
            Ok(v) => {
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", crate::app::describe_client(&e));
                failed = true;
            }
        }
    }
    if failed { Err(Exit::code(1)) } else { Ok(()) }
}

pub async fn cmd_tag(app: &mut App, a: &TagArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let (repo, tag) = split_tag(&a.target);
    c.image_tag(&a.source, repo, Some(tag.unwrap_or("latest")))
        .await?;
    Ok(())
}

pub async fn cmd_history(app: &mut App, a: &HistoryArgs) -> anyhow::Result<()> {
    let c = app.client().await?;
    let h = c.image_history(&a.image).await?;
    let now = now_secs();
    let rows: Vec<(Value, NoMethods)> = h
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let id = e["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || a.no_trunc { id.to_owned() } else { short_id(id) };
            let created = e["Created"].as_i64().unwrap_or(0);
            let by = e["CreatedBy"].as_str().unwrap_or("");
            let by = if a.no_trunc { by.to_owned() } else { crate::format::ellipsis(&by.replace('\t', " "), 45) };
            let size = e["Size"].as_f64().unwrap_or(0.0);
            (
                json!({
                    "ID": id,
                    "CreatedSince": if a.human { ago(created, now) } else { go_time_string(created) },
                    "CreatedAt": go_time_string(created),
                    "CreatedBy": by,
                    "Size": if a.human { human_size_precision(size, 3) } else { e["Size"].to_string() },
                    "Comment": e["Comment"].as_str().unwrap_or(""),
                }),
                NoMethods,
            )
        })
        .collect();
    let headers = BTreeMap::from([
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]);
    let out = Output::new(
        a.format.as_deref().unwrap_or(""),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        a.quiet,
    )?;
    print!("{}", out.render(&headers, &rows)?);
    Ok(())
}

pub async fn cmd_save(app: &mut App, a: &SaveArgs) -> anyhow::Result<()> {
    if a.output.is_none() && crate::tty::stdout_is_tty() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let c = app.client().await?;
    let mut body = c.image_save(&a.images).await?;
    let mut out: Box<dyn std::io::Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| anyhow::anyhow!("failed to save image: {p}: {e}"))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = next_chunk(&mut body).await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn cmd_load(app: &mut App, a: &LoadArgs) -> anyhow::Result<()> {
    let body = match &a.input {
        Some(p) => Body::reader(
            tokio::fs::File::open(p)
                .await
                .map_err(|e| anyhow::anyhow!("open {p}: {e}"))?,
        ),
        None => {
            if crate::tty::stdin_is_tty() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            Body::reader(tokio::io::stdin())
        }
    };
    let c = app.client().await?;
    let mut s = c.image_load(body, a.quiet).await?;
    while let Some(m) = s.next().await {
        let m = m?;
        if let Some(e) = m
            .get("errorDetail")
            .and_then(|d| d["message"].as_str())
            .or_else(|| m["error"].as_str())
        {
            anyhow::bail!("{e}");
        }
        if let Some(st) = m["stream"].as_str() {
            print!("{st}");
        } else if let Some(st) = m["status"].as_str()
            && !a.quiet
        {
            println!("{st}");
        }
    }
    Ok(())
}

pub async fn cmd_import(app: &mut App, a: &ImportArgs) -> anyhow::Result<()> {
    let mut q = Query::new();
    let body = if a.source == "-" {
        q = q.set("fromSrc", "-");
        Body::reader(tokio::io::stdin())
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        q = q.set("fromSrc", &a.source);
        Body::empty()
    } else {
        q = q.set("fromSrc", "-");
        Body::reader(
            tokio::fs::File::open(&a.source)
                .await
                .map_err(|e| anyhow::anyhow!("open {}: {e}", a.source))?,
        )
    };
    if let Some(r) = &a.repository {
        let (repo, tag) = split_tag(r);
        q = q.set("repo", repo).opt("tag", tag);
    }
    for ch in &a.change {
        q = q.set("changes", ch);
    }
    q = q
        .opt("message", a.message.as_deref())
        .opt("platform", a.platform.as_deref());
    let c = app.client().await?;
    let mut s = c.image_import(q, body).await?;
    while let Some(m) = s.next().await {
        let m = m?;
        if let Some(e) = m["error"].as_str() {
            anyhow::bail!("{e}");
        }
        if let Some(st) = m["status"].as_str() {
            println!("{st}");
        }
    }
    Ok(())
}

pub async fn cmd_inspect(app: &mut App, a: &ImageInspectArgs) -> anyhow::Result<()> {
    super::check_format(a.format.as_deref(), super::BadFormat::Exit64(""))?;
    let c = app.client().await?;
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match c.image_inspect_raw(n).await.and_then(|raw| {
            serde_json::from_slice::<Value>(&raw)
                .map(|v| (v, raw))
                .map_err(|source| wharf_client::ClientError::Decode {
                    path: format!("inspect {n}"),
                    source,
                })
        }) {
            Ok(v) => items.push(v),
            Err(e) if e.is_not_found() => {
                errors.push(format!("Error response from daemon: No such image: {n}"))
            }
            Err(e) => errors.push(crate::app::describe_client(&e)),
        }
    }
    super::print_inspect(&items, a.format.as_deref(), &errors)
}

pub async fn cmd_prune(app: &mut App, a: &ImagePruneArgs) -> anyhow::Result<()> {
    if !a.force {
        let warn = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !super::confirm(warn)? {
            return Ok(());
        }
    }
    let c = app.client().await?;
    let mut f = a.filter.clone();
    f.push(format!("dangling={}", !a.all));
    let v = c.image_prune(filters_json(&f)?.as_deref()).await?;
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
    println!(
        "Total reclaimed space: {}",
        crate::format::units::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(split_tag("busybox"), ("busybox", None));
        assert_eq!(split_tag("busybox:1.36"), ("busybox", Some("1.36")));
        assert_eq!(split_tag("localhost:5000/a"), ("localhost:5000/a", None));
        assert_eq!(
            split_tag("localhost:5000/a:v1"),
            ("localhost:5000/a", Some("v1"))
        );
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert!(is_hello_world("hello-world"));
        assert!(is_hello_world("docker.io/library/hello-world:latest"));
        assert!(!is_hello_world("hello-world:linux"));
        assert_eq!(qualified("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(qualified("me/app:1"), "docker.io/me/app:1");
        assert_eq!(qualified("localhost:5000/app"), "localhost:5000/app:latest");
    }

    #[test]
    fn images_table_as_docker() {
        let imgs = vec![
            json!({
                "Id": "sha256:0123456789abcdef0123", "Created": 1000, "Size": 4_261_000,
                "RepoTags": ["busybox:latest", "localhost:5000/bb:v1"], "RepoDigests": []
            }),
            json!({"Id": "sha256:fedcba9876543210", "Created": 1000, "Size": 100, "RepoTags": [], "RepoDigests": []}),
        ];
        let rows: Vec<(Value, NoMethods)> = image_rows(&imgs, true, false, 1000.0 + 7200.0)
            .into_iter()
            .map(|r| (r, NoMethods))
            .collect();
        let out = Output::new("", IMAGES_TABLE, false)
            .unwrap()
            .render(&image_headers(), &rows)
            .unwrap();
        assert_eq!(
            out,
            "REPOSITORY          TAG       IMAGE ID       CREATED       SIZE\n\
             busybox             latest    0123456789ab   2 hours ago   4.26MB\n\
             localhost:5000/bb   v1        0123456789ab   2 hours ago   4.26MB\n\
             <none>              <none>    fedcba987654   2 hours ago   100B\n"
        );
    }

    #[test]
    fn embedded_hello_world_archive() {
        let mut ar = tar::Archive::new(HELLO_WORLD_TAR);
        let mut names = Vec::new();
        let mut manifest = Value::Null;
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p == "manifest.json" {
                manifest = serde_json::from_reader(&mut e).unwrap();
            }
            names.push(p);
        }
        assert_eq!(manifest[0]["RepoTags"], json!(["hello-world:latest"]));
        assert!(names.contains(&manifest[0]["Config"].as_str().unwrap().to_owned()));
        assert!(names.contains(&manifest[0]["Layers"][0].as_str().unwrap().to_owned()));
        assert!(HELLO_WORLD_TAR.len() < 64 * 1024, "hello-world stays small");
    }
}
