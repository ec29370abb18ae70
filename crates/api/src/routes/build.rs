//! `/build...` handlers over the engine's build service (no builder yet:
//! see `wharf_engine::build_cache`): cache prune in dockerd's shape
//! (`{"CachesDeleted": null, "SpaceReclaimed": 0}` when nothing is
//! deleted), build refused, cancel.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use wharf_engine::build_cache::{BuildError, CachePruneRequest};
use wharf_engine::filters::Filters;

use super::query;
use super::volumes::chained;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::version::ApiVersion;

impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> ApiError {
        chained(e.kind(), &e)
    }
}

/// `POST /build/prune?all=&filters=&reserved-space=&keep-storage=&max-used-space=&min-free-space=`.
pub async fn prune(
    State(s): State<Arc<AppState>>,
    axum::Extension(version): axum::Extension<ApiVersion>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    // Only keep-storage existed before API 1.48.
    let names: &[&'static str] = if version >= ApiVersion(1, 48) {
        &[
            "reserved-space",
            "keep-storage",
            "max-used-space",
            "min-free-space",
        ]
    } else {
        &["keep-storage"]
    };
    let req = CachePruneRequest {
        all: q.bool("all")?,
        filters: Filters::from(q.filters()?),
        sizes: names
            .iter()
            .filter_map(|n| q.str(n).map(|v| (*n, v.to_owned())))
            .collect(),
    };
    let r = s.engine.builds.prune(&req)?;
    let deleted = if r.deleted.is_empty() {
        Value::Null
    } else {
        json!(r.deleted)
    };
    Ok(axum::Json(json!({
        "CachesDeleted": deleted,
        "SpaceReclaimed": r.space_reclaimed,
    }))
    .into_response())
}

/// `POST /build`: refused. The build context (a tar the client streams) is
/// read to its end first, so the client sees the answer rather than a
/// connection closed under its upload.
pub async fn build(State(s): State<Arc<AppState>>, body: Body) -> ApiResult<Response> {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        if chunk.is_err() {
            break;
        }
    }
    s.engine.builds.build()?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /build/cancel?id=`.
pub async fn cancel(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    s.engine
        .builds
        .cancel(query(&uri).str("id").unwrap_or(""))?;
    Ok(StatusCode::OK.into_response())
}
