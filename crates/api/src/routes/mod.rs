//! Handlers, by concern. Each parses and validates its request, calls one
//! engine service, and renders Docker's response.

pub mod archive;
pub mod attach_ws;
pub mod auth;
pub mod build;
pub mod commit;
pub mod containers;
pub mod distribution;
pub mod exec;
pub mod images;
pub mod networks;
pub mod search;
pub mod swarm;
pub mod system;
pub mod system_df;
pub mod volumes;

use axum::http::Uri;

use crate::error::ApiError;
use crate::query::Query;

/// The request's query string, parsed.
pub fn query(uri: &Uri) -> Query {
    Query::parse(uri.query())
}

/// Parses a JSON body; an empty body is `T::default()`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
}
