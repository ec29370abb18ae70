//! `/_ping`, `/version`, `/info`, `/events`, and the fallback for unknown routes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use wharf_engine::events::Event;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::version::MAX_API_VERSION;

/// `GET|HEAD /_ping`.
pub async fn ping(method: Method) -> Response {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from("OK")
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_str(&MAX_API_VERSION.to_string())
            .unwrap_or(HeaderValue::from_static("1.50")),
    );
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `GET /version`.
pub async fn version(State(s): State<Arc<AppState>>) -> Response {
    let sys = s.engine.system.clone();
    let info = tokio::task::spawn_blocking(move || sys.info()).await;
    match info {
        Ok(i) => axum::Json(crate::wire::version(&i)).into_response(),
        Err(e) => ApiError {
            kind: wharf_engine::ErrorKind::Internal,
            message: e.to_string(),
        }
        .into_response(),
    }
}

/// `GET /info`.
pub async fn info(State(s): State<Arc<AppState>>) -> Response {
    let sys = s.engine.system.clone();
    match tokio::task::spawn_blocking(move || sys.info()).await {
        Ok(i) => axum::Json(crate::wire::info(&i)).into_response(),
        Err(e) => ApiError {
            kind: wharf_engine::ErrorKind::Internal,
            message: e.to_string(),
        }
        .into_response(),
    }
}

/// Unknown routes: Docker's 404 body.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("page not found: {}", uri.path()))
}

struct EventFilter {
    filters: std::collections::BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    fn matches(&self, e: &Event) -> bool {
        self.filters.iter().all(|(k, vals)| {
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "type" => e.typ == v,
                    "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
                    "container" => {
                        e.typ == "container"
                            && (e.actor.id.starts_with(v.as_str())
                                || e.actor.attributes.get("name") == Some(v))
                    }
                    "image" => e.actor.attributes.get("image") == Some(v),
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => {
                            e.actor.attributes.get(lk).map(String::as_str) == Some(lv)
                        }
                        None => e.actor.attributes.contains_key(v),
                    },
                    "scope" => e.scope == v,
                    _ => true,
                })
        })
    }
}

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// `GET /events`: past events from `since`, then live ones until `until`.
pub async fn events(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let q = super::query(&uri);
    let parse_t = |k: &str| -> ApiResult<Option<i64>> {
        match q.str(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => wharf_engine::time::parse_time(v)
                .map(|t| Some(nanos(t)))
                .ok_or_else(|| ApiError::invalid(format!("invalid {k} timestamp: {v}"))),
        }
    };
    let since = parse_t("since")?;
    let until = parse_t("until")?;
    let filter = EventFilter {
        filters: q.filters()?,
    };
    let (past, mut rx) = s.engine.events.subscribe();
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let line = |e: &Event| {
            let mut v = serde_json::to_vec(e).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        };
        if let Some(since) = since {
            for e in past
                .iter()
                .filter(|e| e.time_nano >= since && until.is_none_or(|u| e.time_nano <= u))
            {
                if filter.matches(e) && tx.send(Ok(line(e))).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| {
            let now = nanos(SystemTime::now());
            tokio::time::Instant::now() + Duration::from_nanos(u64::try_from(u - now).unwrap_or(0))
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                r = next => match r {
                    None => return,
                    Some(Ok(e)) => {
                        if filter.matches(&e) && tx.send(Ok(line(&e))).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                        tracing::warn!(missed = n, "events subscriber fell behind");
                    }
                    Some(Err(_)) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let body = Body::from_stream(tokio_stream_from(body_rx));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// An mpsc receiver as a stream.
pub fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
