//! `GET /system/df`: disk usage of images (with shared and unique sizes),
//! containers (writable layers and whole root filesystems), volumes and
//! build cache (none exist yet: empty lists), and all layers together.
//! `type=` (repeatable) limits what is computed; the rest is `null`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::images::query_all;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// `GET /system/df`.
pub async fn df(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let types = query_all(&uri, "type");
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::invalid(format!("unknown object type: {t}")));
        }
    }
    let wants = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let containers = if wants("container") {
        s.engine.containers.list()
    } else {
        Vec::new()
    };
    let du = s.engine.image_service.disk_usage(containers).await?;
    let images = if wants("image") {
        json!(du.images)
    } else {
        Value::Null
    };
    let containers = if wants("container") {
        Value::Array(
            du.containers
                .iter()
                .map(|(c, size)| {
                    let mut v = crate::wire::summary(c);
                    v["SizeRw"] = json!(size.size_rw);
                    v["SizeRootFs"] = json!(size.size_root_fs);
                    v
                })
                .collect(),
        )
    } else {
        Value::Null
    };
    let empty = |t: &str| if wants(t) { json!([]) } else { Value::Null };
    Ok(axum::Json(json!({
        "LayersSize": if wants("image") { json!(du.layers_size) } else { json!(0) },
        "Images": images,
        "Containers": containers,
        "Volumes": empty("volume"),
        "BuildCache": empty("build-cache"),
    }))
    .into_response())
}
