//! `POST /commit`: a new image from a container's changes
//! (`container`, `repo`, `tag`, `comment`, `author`, `pause` (default true),
//! repeated `changes`; an optional container config as the body).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wharf_engine::containers::archive::CommitRequest;

use super::images::query_all;
use super::query;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// `POST /commit`.
pub async fn commit(State(s): State<Arc<AppState>>, req: Request) -> ApiResult<Response> {
    let q = query(req.uri());
    let changes = query_all(req.uri(), "changes");
    let container = q.str("container").unwrap_or_default().to_owned();
    let repo = q.str("repo").unwrap_or_default();
    let tag = q.str("tag").unwrap_or_default();
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, true) => None,
        (true, false) => {
            return Err(ApiError::invalid(
                "invalid reference: tag given without a repository",
            ));
        }
        (false, true) => Some(repo.to_owned()),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let pause = if q.str("pause").is_some() {
        q.bool("pause")?
    } else {
        true
    };
    let comment = q.str("comment").map(str::to_owned);
    let author = q.str("author").map(str::to_owned);
    let body: Bytes = axum::body::to_bytes(req.into_body(), crate::MAX_BODY)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the request body: {e}")))?;
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?,
        )
    };
    let id = s
        .engine
        .containers
        .commit(
            &container,
            CommitRequest {
                reference,
                comment,
                author,
                changes,
                pause,
                config,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "Id": id.to_string() })),
    )
        .into_response())
}
