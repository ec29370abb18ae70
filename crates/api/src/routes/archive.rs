//! `docker cp`, `export`, `diff` and `update`: `/containers/{id}/archive`
//! (`HEAD` stat, `GET` a tar of a path, `PUT` a tar into a directory),
//! `/containers/{id}/export`, `/containers/{id}/changes` and
//! `/containers/{id}/update`.
//!
//! The stat travels in the `X-Docker-Container-Path-Stat` header as base64
//! JSON (`{name, size, mode, mtime, linkTarget}`), on `HEAD` and on `GET`.
//! Uploaded archives are streamed to the engine (no size bound: they are
//! written to the container as they arrive, never buffered).

use std::io::{self, Read};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::sync::mpsc;
use wharf_engine::containers::UpdateRequest;
use wharf_engine::containers::archive::{PathStat, PutOptions};

use super::{json_body, query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Most bytes read and dropped after the end of an uploaded archive.
const MAX_TRAILER: usize = 16 << 20;

/// The header carrying a path's stat.
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path_param(q: &crate::query::Query) -> ApiResult<String> {
    q.str("path")
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid("path is required"))
}

fn stat_header(st: &PathStat) -> ApiResult<HeaderValue> {
    let json = serde_json::to_vec(st).map_err(|e| ApiError::invalid(e.to_string()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
        .map_err(|e| ApiError::invalid(e.to_string()))
}

fn tar_response(rx: wharf_engine::containers::archive::ByteStream) -> Response {
    let mut r = Response::new(Body::from_stream(super::system::tokio_stream_from(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    r
}

/// `HEAD /containers/{id}/archive?path=`.
pub async fn head(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let path = path_param(&query(&uri))?;
    let st = s.engine.containers.archive_stat(&id, &path).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(PATH_STAT_HEADER, stat_header(&st)?);
    Ok(r)
}

/// `GET /containers/{id}/archive?path=`.
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let path = path_param(&query(&uri))?;
    let (st, rx) = s.engine.containers.archive_get(&id, &path).await?;
    let mut r = tar_response(rx);
    r.headers_mut().insert(PATH_STAT_HEADER, stat_header(&st)?);
    Ok(r)
}

/// A blocking reader over the request body, fed by an async task.
struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`.
pub async fn put(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let q = query(req.uri());
    let path = path_param(&q)?;
    let opts = PutOptions {
        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir")?,
        copy_uid_gid: q.bool("copyUIDGID")?,
    };
    let (tx, rx) = mpsc::channel(8);
    let mut body = req.into_body().into_data_stream();
    // Feeds the extractor; once it stops reading (a tar ends before the
    // padding clients add after it), drains what the client still sends,
    // so the client is not cut off mid-write (a broken pipe for it).
    let feeder = tokio::spawn(async move {
        let mut drained = 0usize;
        let mut feeding = true;
        while let Some(chunk) = body.next().await {
            if feeding {
                if tx.send(chunk.map_err(io::Error::other)).await.is_err() {
                    feeding = false;
                }
            } else {
                drained += chunk.map_or(0, |c| c.len());
                if drained > MAX_TRAILER {
                    break;
                }
            }
        }
    });
    let reader = BodyReader {
        rx,
        cur: Bytes::new(),
    };
    let result = s
        .engine
        .containers
        .archive_put(&id, &path, opts, Box::new(reader))
        .await;
    if result.is_err() {
        feeder.abort();
    } else {
        let _ = feeder.await;
    }
    result?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/export`.
pub async fn export(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Response> {
    let rx = s.engine.containers.export(&id).await?;
    Ok(tar_response(rx))
}

/// `GET /containers/{id}/changes`.
pub async fn changes(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let c = s.engine.containers.changes(&id).await?;
    Ok(axum::Json(c).into_response())
}

/// `POST /containers/{id}/update`.
pub async fn update(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: UpdateRequest = json_body(&body)?;
    let warnings = s.engine.containers.update(&id, req).await?;
    Ok(axum::Json(json!({ "Warnings": warnings })).into_response())
}
