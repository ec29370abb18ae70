//! `GET /distribution/{name}/json`: what a registry serves for a reference
//! (see `wharf_engine::distribution`), in dockerd's shape:
//! `{"Descriptor": {"mediaType", "digest", "size"}, "Platforms": [...]}`.
//! Names contain slashes, so the route is a catch-all ending in `/json`.
//! An undecodable `X-Registry-Auth` is ignored, as dockerd ignores it here.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use wharf_engine::distribution::{DistributionError, Platform};

use super::auth::registry_auth;
use super::volumes::chained;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

impl From<DistributionError> for ApiError {
    fn from(e: DistributionError) -> ApiError {
        chained(e.kind(), &e)
    }
}

/// An OCI platform object as Go's `ocispec.Platform` marshals it.
fn platform(p: &Platform) -> Value {
    let mut m = Map::new();
    m.insert("architecture".into(), json!(p.arch));
    m.insert("os".into(), json!(p.os));
    if let Some(v) = p.os_version.as_deref().filter(|v| !v.is_empty()) {
        m.insert("os.version".into(), json!(v));
    }
    if let Some(f) = p.os_features.as_ref().filter(|f| !f.is_empty()) {
        m.insert("os.features".into(), json!(f));
    }
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        m.insert("variant".into(), json!(v));
    }
    Value::Object(m)
}

/// `GET /distribution/{name}/json`.
pub async fn inspect(
    State(s): State<Arc<AppState>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(name) = rest.strip_suffix("/json").filter(|n| !n.is_empty()) else {
        return Err(ApiError::not_found(format!(
            "page not found: /distribution/{rest}"
        )));
    };
    let creds = registry_auth(&headers).ok().flatten();
    let d = s
        .engine
        .image_service
        .distribution_inspect(name, creds)
        .await?;
    let platforms = if d.platforms.is_empty() {
        Value::Null
    } else {
        Value::Array(d.platforms.iter().map(platform).collect())
    };
    Ok(axum::Json(json!({
        "Descriptor": {
            "mediaType": d.media_type,
            "digest": d.digest.to_string(),
            "size": d.size,
        },
        "Platforms": platforms,
    }))
    .into_response())
}
