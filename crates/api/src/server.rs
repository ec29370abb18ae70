//! Serving the router on Unix (or TCP) listeners with hyper: HTTP/1.1 with
//! upgrades (for hijacked attach/exec streams), a tracing span per request,
//! and graceful shutdown (stop accepting, let requests in flight finish for
//! a short grace period; hijacked streams are cut when the daemon exits).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument as _;

/// Something that accepts connections. `accept` returns the raw
/// connection quickly; `prepare` (run in the connection's own task, so a
/// slow client cannot stall the accept loop) turns it into the stream HTTP
/// is spoken on (a TLS handshake, or nothing).
pub trait Accept: Send + 'static {
    type Io: Send + 'static;
    type Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
    fn prepare(
        &self,
        io: Self::Io,
    ) -> impl Future<Output = std::io::Result<Self::Conn>> + Send + 'static;
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Conn = tokio::net::UnixStream;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
    fn prepare(
        &self,
        io: Self::Io,
    ) -> impl Future<Output = std::io::Result<Self::Conn>> + Send + 'static {
        std::future::ready(Ok(io))
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits up
/// to `grace` for open connections.
pub async fn serve<L: Accept>(
    mut listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let tracker = tokio_util::task::TaskTracker::new();
    let token = tokio_util::sync::CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let io = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(io) => io,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let svc = TowerToHyperService::new(router.clone());
        let token = token.clone();
        let prepare = listener.prepare(io);
        tracker.spawn(async move {
            let io = match prepare.await {
                Ok(io) => io,
                Err(e) => {
                    tracing::info!(error = %e, "connection refused during handshake");
                    return;
                }
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracker.close();
    token.cancel();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::info!("connections still open after the grace period; closing them");
    }
}

/// Middleware: one span per request with method, path and status.
/// Requests answered since the daemon started (read by the daemon's idle
/// memory trimming).
static SERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many requests have been answered so far.
pub fn requests_served() -> u64 {
    SERVED.load(std::sync::atomic::Ordering::Relaxed)
}

pub async fn trace_request(req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        status = tracing::field::Empty,
    );
    let start = std::time::Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    span.record("status", res.status().as_u16());
    SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    span.in_scope(|| {
        tracing::debug!(
            elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            "request served"
        )
    });
    res
}
