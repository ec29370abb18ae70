//! `wharfd`: reads its configuration, takes the data-root lock, opens the
//! engine (re-adopting running containers), serves the Docker Engine API on
//! every `-H` host, and shuts down on SIGTERM/SIGINT. Containers keep
//! running across a shutdown: they live in their shims.
#![forbid(unsafe_code)]

mod config;
mod listen;
mod tls;

use std::time::Duration;

use anyhow::Context;
use clap::Parser as _;
use tokio::signal::unix::{SignalKind, signal};
use wharf_engine::{Engine, EngineConfig, Layout};

fn init_tracing(level: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let level = if level == "fatal" { "error" } else { level };
    // `WHARFD_LOG` takes `level,target=level,...` directives. A `Targets`
    // filter rather than an `EnvFilter`: no regex engine is built (and kept
    // resident) for a filter that only matches target prefixes.
    let filter = std::env::var("WHARFD_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            format!("{level},hyper=info,h2=info")
                .parse::<Targets>()
                .unwrap_or_default()
        });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only on a terminal; log files get plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .init();
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop wharfd with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received: shutting down"),
    }
}

/// Gives the allocator's free memory back to the kernel once the API has
/// been quiet for a second after some work: a burst of requests leaves
/// freed heap pages resident that an idle daemon does not need.
fn spawn_idle_trim() {
    tokio::spawn(async {
        let mut seen = wharf_api::server::requests_served();
        let mut trimmed_at = seen;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = wharf_api::server::requests_served();
            if now == seen && now != trimmed_at {
                trimmed_at = now;
                let _ = tokio::task::spawn_blocking(wharf_sys::malloc::trim).await;
            }
            seen = now;
        }
    });
}

async fn run(cfg: config::Config) -> anyhow::Result<()> {
    spawn_idle_trim();
    let layout = Layout::new(&cfg.data_root, &cfg.exec_root);
    let _lock = listen::lock_data_root(&layout.lock_file())?;
    let _pid = listen::PidFile::write(&cfg.pidfile)?;
    let hosts: Vec<listen::Host> = cfg
        .hosts
        .iter()
        .map(|h| listen::parse_host(h))
        .collect::<anyhow::Result<_>>()?;
    let acceptor = if hosts.iter().any(|h| matches!(h, listen::Host::Tcp(_))) {
        Some(tls::acceptor(&cfg.tls)?)
    } else {
        None
    };
    let snapshot_driver = cfg
        .storage_driver
        .as_deref()
        .map(wharf_image::snapshot::DriverKind::parse)
        .transpose()
        .context("invalid --storage-driver")?;
    let engine = Engine::open(EngineConfig {
        layout: layout.clone(),
        shim_binary: cfg.shim_binary.clone(),
        init_binary: cfg.init_binary.clone(),
        default_ulimits: cfg.default_ulimits.clone(),
        log_max_size: cfg.log_max_size,
        log_max_files: cfg.log_max_files,
        cgroup_parent: "/wharf".into(),
        registry: wharf_engine::system::RegistrySettings {
            insecure_registries: cfg.insecure_registries.clone(),
            mirrors: cfg.registry_mirrors.clone(),
        },
        snapshot_driver,
        debug: cfg.debug,
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.full_message()))?;
    let containers = engine.containers.clone();
    let router = wharf_api::router(engine);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for h in hosts {
        let mut rx = stop_rx.clone();
        let stop = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let router = router.clone();
        match h {
            listen::Host::Unix(path) => {
                let l = listen::bind_unix(&path, cfg.group.as_deref())?;
                tracing::info!(socket = %path.display(), "API listening");
                sockets.push(path);
                servers.spawn(wharf_api::serve(l, router, stop, Duration::from_secs(2)));
            }
            listen::Host::Tcp(addr) => {
                let tcp = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("cannot listen on tcp://{addr}"))?;
                let acceptor = acceptor.clone().context("TLS acceptor")?;
                tracing::info!(address = %addr, "API listening (TLS, client certificates required)");
                let l = tls::TlsListener { tcp, acceptor };
                servers.spawn(wharf_api::serve(l, router, stop, Duration::from_secs(2)));
            }
        }
    }
    tracing::info!(version = wharf_engine::system::VERSION, data_root = %cfg.data_root.display(), "wharfd ready");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    // Deletions of removed containers still queued: given a moment, else
    // the next start sweeps them.
    let settled =
        tokio::task::spawn_blocking(move || containers.settle_removals(Duration::from_secs(5)))
            .await;
    if !matches!(settled, Ok(true)) {
        tracing::info!("files of removed containers left for the next start to delete");
    }
    tracing::info!("wharfd stopped; containers keep running in their shims");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let flags = config::Flags::parse();
    let cfg = match config::load(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wharfd: {e:#}");
            return std::process::ExitCode::from(1);
        }
    };
    init_tracing(&cfg.log_level);
    // One malloc arena per thread keeps a few hundred KiB resident per
    // worker for an I/O-bound daemon; two arenas are plenty.
    wharf_sys::malloc::limit_arenas(2);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Blocking threads (unmounts, fsyncs, removals: dozens at once for
        // `rm -f` of many) leave soon after a burst instead of keeping
        // their stacks resident for tokio's default 10 s.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharfd: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("wharfd: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
