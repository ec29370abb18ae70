//! `/volumes/...` handlers over the engine's [`wharf_engine::Volumes`]
//! (no named volumes yet: see that module), in dockerd's shapes:
//! `{"Volumes": [...], "Warnings": null}` for the list,
//! `{"VolumesDeleted": [...], "SpaceReclaimed": n}` for prune.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use wharf_engine::ErrorKind;
use wharf_engine::filters::Filters;
use wharf_engine::volumes::VolumeError;

use super::{json_body, query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// An error of a service outside [`wharf_engine::EngineError`]: its kind,
/// and its message with every source appended (`a: b: c`).
pub(crate) fn chained(kind: ErrorKind, e: &dyn std::error::Error) -> ApiError {
    let mut message = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        message.push_str(": ");
        message.push_str(&s.to_string());
        cur = s.source();
    }
    if kind == ErrorKind::Internal {
        tracing::error!(error = %message, "request failed");
    }
    ApiError { kind, message }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> ApiError {
        chained(e.kind(), &e)
    }
}

/// `GET /volumes?filters=`.
pub async fn list(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let filters = Filters::from(query(&uri).filters()?);
    let volumes = s.engine.volumes.list(&filters)?;
    Ok(axum::Json(json!({"Volumes": volumes, "Warnings": null})).into_response())
}

/// `GET /volumes/{name}`.
pub async fn inspect(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(axum::Json(s.engine.volumes.get(&name)?).into_response())
}

/// `DELETE /volumes/{name}?force=`.
pub async fn remove(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let force = query(&uri).bool("force")?;
    s.engine.volumes.remove(&name, force)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /volumes/{name}` (cluster volumes only).
pub async fn update(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    s.engine.volumes.update(&name)?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateBody {
    #[serde(rename = "Name")]
    name: String,
}

/// `POST /volumes/create`.
pub async fn create(State(s): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = json_body(&body)?;
    let v = s.engine.volumes.create(&b.name)?;
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

/// `POST /volumes/prune?filters=`.
pub async fn prune(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let filters = Filters::from(query(&uri).filters()?);
    let r = s.engine.volumes.prune(&filters)?;
    // dockerd allocates the list before pruning: `[]`, not `null`, when
    // nothing was deleted.
    Ok(axum::Json(json!({
        "VolumesDeleted": r.deleted,
        "SpaceReclaimed": r.space_reclaimed,
    }))
    .into_response())
}
