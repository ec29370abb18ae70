//! `GET /images/search?term=&limit=&filters=`: the index's v1 search (see
//! `wharf_engine::search`), answered as dockerd does: a JSON array of
//! `{"star_count", "is_official", "name", "is_automated", "description"}`.
//! An undecodable `X-Registry-Auth` is ignored (dockerd: "for a search it
//! is not an error if no auth was given").

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use wharf_engine::filters::Filters;
use wharf_engine::search::{SearchError, SearchRequest};

use super::auth::registry_auth;
use super::query;
use super::volumes::chained;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> ApiError {
        chained(e.kind(), &e)
    }
}

/// `GET /images/search`.
pub async fn search(
    State(s): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = query(&uri);
    let limit = match q.str("limit").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| ApiError::invalid(format!("invalid limit specified: {v:?}")))?,
    };
    let req = SearchRequest {
        term: q.str("term").unwrap_or("").to_owned(),
        limit,
        filters: Filters::from(q.filters()?),
        credentials: registry_auth(&headers).ok().flatten(),
    };
    let results = s.engine.image_service.search(req).await?;
    Ok(axum::Json(results).into_response())
}
