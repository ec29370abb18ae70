//! `/containers/...` handlers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use wharf_engine::containers::{CreateRequest, ListOptions, LogOptions, WaitCondition};
use wharf_engine::model::{ContainerConfig, HostConfig};

use super::{json_body, query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::hijack;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /containers/json`.
pub async fn list(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let q = query(&uri);
    let limit = q
        .int("limit")?
        .filter(|l| *l > 0)
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let opts = ListOptions {
        all: q.bool("all")?,
        limit,
        filters: q.filters()?,
    };
    let listed = s.engine.containers.list_filtered(&opts)?;
    let mut rows: Vec<Value> = listed.iter().map(crate::wire::summary).collect();
    if q.bool("size")? {
        let sizes = s.engine.image_service.container_sizes(listed).await?;
        for (row, size) in rows.iter_mut().zip(sizes) {
            row["SizeRw"] = json!(size.size_rw);
            row["SizeRootFs"] = json!(size.size_root_fs);
        }
    }
    Ok(axum::Json(rows).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct CreateBody {
    #[serde(flatten)]
    config: ContainerConfig,
    #[serde(rename = "HostConfig", default)]
    host_config: Option<HostConfig>,
    #[serde(rename = "NetworkingConfig", default)]
    #[allow(dead_code)]
    networking_config: Option<Value>,
}

/// `POST /containers/create`.
pub async fn create(State(s): State<Arc<AppState>>, uri: Uri, body: Bytes) -> ApiResult<Response> {
    let q = query(&uri);
    let b: CreateBody = json_body(&body)?;
    let req = CreateRequest {
        name: q.str("name").map(str::to_owned),
        config: b.config,
        host_config: b.host_config.unwrap_or_default(),
        platform: q.str("platform").map(str::to_owned),
    };
    let created = s.engine.containers.create(req).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"Id": created.id, "Warnings": created.warnings})),
    )
        .into_response())
}

/// `POST /containers/prune`.
pub async fn prune(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let filters = query(&uri).filters()?;
    let (ids, space) = s.engine.containers.prune(&filters).await?;
    Ok(axum::Json(json!({"ContainersDeleted": ids, "SpaceReclaimed": space})).into_response())
}

/// `GET /containers/{id}/json`.
pub async fn inspect(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let c = s.engine.containers.inspect(&id)?;
    let execs = s.engine.containers.exec_ids(&c.id);
    let mut v = crate::wire::inspect(&c, &execs);
    if query(&uri).bool("size")? {
        let sizes = s.engine.image_service.container_sizes(vec![c]).await?;
        if let Some(size) = sizes.first() {
            v["SizeRw"] = json!(size.size_rw);
            v["SizeRootFs"] = json!(size.size_root_fs);
        }
    }
    Ok(axum::Json(v).into_response())
}

/// `POST /containers/{id}/start`.
pub async fn start(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Response> {
    s.engine.containers.start(&id).await?;
    Ok(no_content())
}

fn stop_params(uri: &Uri) -> ApiResult<(Option<i64>, Option<String>)> {
    let q = query(uri);
    let t = match q.int("t")? {
        Some(t) => Some(t),
        None => q.int("timeout")?,
    };
    Ok((
        t,
        q.str("signal").filter(|s| !s.is_empty()).map(str::to_owned),
    ))
}

/// `POST /containers/{id}/stop`.
pub async fn stop(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let (t, sig) = stop_params(&uri)?;
    s.engine.containers.stop(&id, t, sig.as_deref()).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/restart`.
pub async fn restart(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let (t, sig) = stop_params(&uri)?;
    s.engine.containers.restart(&id, t, sig.as_deref()).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/kill`.
pub async fn kill(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    s.engine.containers.kill(&id, q.str("signal")).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/pause`.
pub async fn pause(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Response> {
    s.engine.containers.pause(&id).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    s.engine.containers.unpause(&id).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    let name = q
        .str("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("name is required"))?;
    s.engine.containers.rename(&id, name)?;
    Ok(no_content())
}

/// `DELETE /containers/{id}`.
pub async fn remove(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    if q.bool("link")? {
        return Err(ApiError::invalid("links are not supported"));
    }
    s.engine.containers.remove(&id, q.bool("force")?).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let (h, w) = size_params(&uri)?;
    s.engine.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) fn size_params(uri: &Uri) -> ApiResult<(u16, u16)> {
    let q = query(uri);
    let get = |k: &str| -> ApiResult<u16> {
        let v = q.int(k)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::invalid(format!("invalid {k}: {v}")))
    };
    Ok((get("h")?, get("w")?))
}

/// `POST /containers/{id}/wait?condition=`: headers at once, body at the exit.
pub async fn wait(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    let condition = match q.str("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(ApiError::invalid(format!("invalid condition: {other:?}"))),
    };
    let fut = s.engine.containers.wait(&id, condition)?;
    let body = futures_util::stream::once(async move {
        let r = fut.await;
        let error = r.error.map(|m| json!({"Message": m}));
        let mut v = serde_json::to_vec(&json!({"StatusCode": r.status_code, "Error": error}))
            .unwrap_or_default();
        v.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(v))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    let parse_t = |k: &str| -> ApiResult<Option<std::time::SystemTime>> {
        match q.str(k).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => wharf_engine::time::parse_time(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("invalid {k} value: {v}"))),
        }
    };
    let opts = LogOptions {
        stdout: q.bool("stdout")?,
        stderr: q.bool("stderr")?,
        follow: q.bool("follow")?,
        since: parse_t("since")?,
        until: parse_t("until")?,
        tail: match q.str("tail").unwrap_or("all") {
            "all" | "" => None,
            n => Some(
                n.parse::<usize>()
                    .map_err(|_| ApiError::invalid(format!("invalid tail value: {n}")))?,
            ),
        },
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let timestamps = q.bool("timestamps")?;
    let (tty, rx) = s.engine.containers.logs(&id, opts)?;
    use futures_util::StreamExt as _;
    let stream = super::system::tokio_stream_from(rx).map(move |e| {
        let mut data = Vec::with_capacity(e.line.len() + 40);
        if timestamps {
            data.extend_from_slice(e.time.as_bytes());
            data.push(b' ');
        }
        data.extend_from_slice(&e.line);
        let mut out = Vec::with_capacity(data.len() + 8);
        hijack::encode(
            tty,
            &wharf_engine::shim::Frame {
                stream: e.stream,
                data,
            },
            &mut out,
        );
        Ok::<_, std::io::Error>(Bytes::from(out))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// `POST /containers/{id}/attach`: hijacked (see [`hijack`]).
pub async fn attach(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let q = query(req.uri());
    let (stdin, stdout, stderr) = (q.bool("stdin")?, q.bool("stdout")?, q.bool("stderr")?);
    let (stream, logs) = (q.bool("stream")?, q.bool("logs")?);
    if !stream && !logs {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream (stream or logs)",
        ));
    }
    // Checked before the container is looked up, as dockerd does.
    let keys = hijack::parse_detach_keys(q.str("detachKeys").unwrap_or(""))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let tty = s.engine.containers.inspect(&id)?.config.tty;
    // Register the live stream first, so nothing written after the replay
    // is lost.
    let session = if stream {
        Some(s.engine.containers.attach(&id, stdin, stdout, stderr)?)
    } else {
        None
    };
    let replay = if logs {
        log_replay(&s, &id, stdout, stderr).await?
    } else {
        Vec::new()
    };
    let upgrade = hijack::wants_upgrade(req.headers());
    let Some(session) = session else {
        if !upgrade {
            let mut r = Response::new(Body::from(replay));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if tty {
                    "application/vnd.docker.raw-stream"
                } else {
                    "application/vnd.docker.multiplexed-stream"
                }),
            );
            return Ok(r);
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = on_upgrade.await {
                use tokio::io::AsyncWriteExt as _;
                let mut io = TokioIo::new(io);
                tokio::time::sleep(hijack::FIRST_WRITE_GRACE).await;
                let _ = io.write_all(&replay).await;
                let _ = io.shutdown().await;
            }
        });
        return Ok(hijack::upgraded_response(tty));
    };
    if !upgrade {
        return Ok(hijack::streaming_response(tty, replay, async move {
            session.await.ok()
        }));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let mut io = TokioIo::new(io);
        if !replay.is_empty() {
            use tokio::io::AsyncWriteExt as _;
            tokio::time::sleep(hijack::FIRST_WRITE_GRACE).await;
            if io.write_all(&replay).await.is_err() {
                return;
            }
        }
        match session.await {
            Ok(session) => hijack::pump(io, session, keys).await,
            Err(e) => tracing::warn!(error = %e.full_message(), "attach failed after upgrade"),
        }
    });
    Ok(hijack::upgraded_response(tty))
}

/// The container's logged output (attach `logs=1`), framed as attach
/// output is.
async fn log_replay(s: &AppState, id: &str, stdout: bool, stderr: bool) -> ApiResult<Vec<u8>> {
    if !stdout && !stderr {
        return Ok(Vec::new());
    }
    let (tty, mut rx) = s.engine.containers.logs(
        id,
        LogOptions {
            stdout,
            stderr,
            ..LogOptions::default()
        },
    )?;
    let mut out = Vec::new();
    while let Some(e) = rx.recv().await {
        hijack::encode(
            tty,
            &wharf_engine::shim::Frame {
                stream: e.stream,
                data: e.line,
            },
            &mut out,
        );
    }
    Ok(out)
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    let t = s
        .engine
        .containers
        .top(&id, q.str("ps_args").unwrap_or(""))
        .await?;
    Ok(axum::Json(json!({"Titles": t.titles, "Processes": t.processes})).into_response())
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: one object per second
/// while streaming; a single object otherwise (after a second sample, so
/// CPU percentages can be computed, unless `one-shot`).
pub async fn stats(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    let stream = match q.str("stream") {
        None => true,
        Some(_) => q.bool("stream")?,
    };
    let one_shot = q.bool("one-shot")?;
    let containers = s.engine.containers.clone();
    let c = containers.inspect(&id)?;
    let first = containers.stats(&c.id).await?;
    if !stream {
        let (cur, pre) = if one_shot {
            (first, None)
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            (containers.stats(&c.id).await?, Some(first))
        };
        return Ok(axum::Json(crate::wire::stats(&c, &cur, pre.as_ref())).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut pre: Option<wharf_engine::containers::StatsSample> = None;
        let mut cur = first;
        loop {
            let mut line =
                serde_json::to_vec(&crate::wire::stats(&c, &cur, pre.as_ref())).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            match containers.stats(&c.id).await {
                Ok(next) => pre = Some(std::mem::replace(&mut cur, next)),
                Err(_) => return,
            }
        }
    });
    let mut r = Response::new(Body::from_stream(super::system::tokio_stream_from(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
