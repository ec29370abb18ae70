//! `/containers/{id}/exec` and `/exec/{id}/...` handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use wharf_engine::containers::ExecConfig;

use super::json_body;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::hijack;

/// `POST /containers/{id}/exec`.
pub async fn create(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let cfg: ExecConfig = json_body(&body)?;
    // dockerd words this one "escape keys".
    if let Err(e) = hijack::parse_detach_keys(&cfg.detach_keys) {
        return Err(ApiError::invalid(format!(
            "Invalid escape keys ({}) provided",
            e.keys
        )));
    }
    let exec_id = s.engine.containers.exec_create(&id, cfg)?;
    Ok((StatusCode::CREATED, axum::Json(json!({"Id": exec_id}))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartBody {
    #[serde(default)]
    detach: bool,
    #[serde(default)]
    tty: Option<bool>,
}

/// `POST /exec/{id}/start`: detached (200) or hijacked.
pub async fn start(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = hijack::wants_upgrade(req.headers());
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), crate::MAX_BODY)
        .await
        .map_err(|e| ApiError::invalid(format!("reading body: {e}")))?;
    let b: StartBody = json_body(&body)?;
    let snapshot = s.engine.containers.exec_inspect(&id)?;
    // Validated at create; detach keys apply to a terminal only.
    let keys = hijack::parse_detach_keys(&snapshot.config.detach_keys).unwrap_or_default();
    let session = s.engine.containers.exec_start(&id, b.detach, b.tty).await?;
    let Some(session) = session else {
        return Ok(StatusCode::OK.into_response());
    };
    let tty = session.tty;
    let Some(on_upgrade) = on_upgrade else {
        return Ok(hijack::streaming_response(tty, Vec::new(), async move {
            Some(session)
        }));
    };
    let exited = s.engine.containers.exec_wait(&id)?;
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        // Keep the connection until the exit code is recorded, so the
        // client's follow-up inspect sees it.
        let recorded = async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), exited).await;
        };
        hijack::pump_then(TokioIo::new(io), session, keys, recorded).await;
    });
    Ok(hijack::upgraded_response(tty))
}

/// `POST /exec/{id}/resize`.
pub async fn resize(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let (h, w) = super::containers::size_params(&uri)?;
    s.engine.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /exec/{id}/json`.
pub async fn inspect(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let x = s.engine.containers.exec_inspect(&id)?;
    Ok(axum::Json(crate::wire::exec_inspect(&x)).into_response())
}
