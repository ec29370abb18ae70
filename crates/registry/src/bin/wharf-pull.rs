//! `wharf-pull`: pulls one image into a data root with the library's
//! `pull_image`, for benchmarks (`bench/pull`) and the killed-pull fault
//! test. Not the user-facing CLI.
//!
//! ```text
//! wharf-pull --root DIR [--driver overlay|copy] [--jobs N] REFERENCE
//! ```
//! The root gets `content/`, `snapshots/` and `images/`, the same layout
//! the daemon uses. Prints one JSON line: the image ID, the wall time of
//! the pull, and the peak resident set size of this process. With
//! `WHARF_PULL_LOG` set (an `EnvFilter`, e.g. `wharf=debug`), the library's
//! events go to stderr with their time since start (per-layer timing).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use wharf_image::Reference;
use wharf_image::content::ContentStore;
use wharf_image::image_store::ImageStore;
use wharf_image::snapshot::{DriverKind, open_snapshotter};
use wharf_registry::pull::{PullOptions, PullTarget, pull_image};
use wharf_registry::{Anonymous, RegistryClient, RegistryOptions};

struct Args {
    root: PathBuf,
    driver: Option<DriverKind>,
    jobs: Option<usize>,
    reference: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut root = None;
    let mut driver = None;
    let mut jobs = None;
    let mut reference = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(it.next().context("--root needs a value")?)),
            "--driver" => {
                driver = Some(DriverKind::parse(
                    &it.next().context("--driver needs a value")?,
                )?)
            }
            "--jobs" => jobs = Some(it.next().context("--jobs needs a value")?.parse()?),
            _ if a.starts_with('-') => bail!("unknown option {a}"),
            _ => reference = Some(a),
        }
    }
    Ok(Args {
        root: root.context("--root DIR is required")?,
        driver,
        jobs,
        reference: reference.context("an image reference is required")?,
    })
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if let Ok(filter) = std::env::var("WHARF_PULL_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_thread_names(true)
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reference = Reference::parse(&args.reference)?;
    let mut options = RegistryOptions::default();
    if let Some(j) = args.jobs {
        options.max_concurrent_transfers = j;
    }
    let client = RegistryClient::new(reference.domain(), &options, Arc::new(Anonymous))?;
    let target = PullTarget {
        content: ContentStore::open(args.root.join("content"))?,
        snapshots: Arc::from(open_snapshotter(&args.root.join("snapshots"), args.driver)?),
        images: ImageStore::open(args.root.join("images")),
    };
    let start = Instant::now();
    let pulled = rt.block_on(pull_image(
        &client,
        &target,
        &reference,
        &PullOptions::default(),
        None,
    ))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "reference": pulled.reference,
            "id": pulled.record.id.to_string(),
            "downloaded": pulled.downloaded,
            "seconds": secs,
            "peak_rss_kib": peak_rss_kib(),
        })
    );
    Ok(())
}
