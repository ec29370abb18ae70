//! Swarm-mode and plugin endpoints. wharf is never a swarm node and has no
//! plugin system, so these answer exactly as dockerd does on a node where
//! swarm is inactive and no plugin is installed:
//! - swarm, service, node, task, secret and config requests: 503 with
//!   dockerd's "This node is not a swarm manager. Use \"docker swarm init\"
//!   ..." (leave: "This node is not part of a swarm");
//! - `POST /swarm/init` and `/swarm/join`, which dockerd would carry out:
//!   503 saying wharf cannot be a swarm node;
//! - `GET /plugins`: `[]` (filters checked as dockerd checks them); a
//!   named plugin: 404 `plugin "NAME" not found`; installing or creating
//!   one: 400 saying plugins are not supported.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wharf_engine::ErrorKind;
use wharf_engine::filters::{FilterError, Filters};

use super::query;
use super::volumes::chained;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Why a swarm or plugin request failed.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// Every manager request (dockerd's wording).
    #[error(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    )]
    NotManager,
    /// `POST /swarm/leave` (dockerd's wording).
    #[error("This node is not part of a swarm")]
    NotInSwarm,
    /// `POST /swarm/init` or `/swarm/join`.
    #[error("wharf cannot {op} a swarm: swarm mode is not supported by wharf")]
    Unsupported { op: &'static str },
    /// A bad `filters` parameter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// No plugin has this name or ID (dockerd's wording).
    #[error("plugin {name:?} not found")]
    NoSuchPlugin { name: String },
    /// Installing, creating or asking the privileges of a plugin.
    #[error("plugins are not supported by wharf")]
    PluginsUnsupported,
}

impl SwarmError {
    fn kind(&self) -> ErrorKind {
        match self {
            SwarmError::NotManager | SwarmError::NotInSwarm | SwarmError::Unsupported { .. } => {
                ErrorKind::Unavailable
            }
            SwarmError::Filter(f) => f.kind(),
            SwarmError::NoSuchPlugin { .. } => ErrorKind::NotFound,
            SwarmError::PluginsUnsupported => ErrorKind::InvalidArgument,
        }
    }
}

impl From<SwarmError> for ApiError {
    fn from(e: SwarmError) -> ApiError {
        chained(e.kind(), &e)
    }
}

// Handlers that refuse still read the request body (`_body`): answering
// and closing before it is read makes a client that is still sending it
// fail with a broken pipe instead of reading the error.

/// Any request a swarm manager serves (`/swarm`, `/services`, `/nodes`,
/// `/tasks`, `/secrets`, `/configs` and below). A malformed `filters`
/// parameter is still a 400, as with dockerd, which parses it first.
pub async fn manager_only(uri: Uri, _body: Bytes) -> ApiResult<Response> {
    query(&uri).filters()?;
    Err(SwarmError::NotManager.into())
}

/// `POST /swarm/leave`.
pub async fn leave(_body: Bytes) -> ApiResult<Response> {
    Err(SwarmError::NotInSwarm.into())
}

/// `POST /swarm/init`.
pub async fn init(_body: Bytes) -> ApiResult<Response> {
    Err(SwarmError::Unsupported { op: "init" }.into())
}

/// `POST /swarm/join`.
pub async fn join(_body: Bytes) -> ApiResult<Response> {
    Err(SwarmError::Unsupported { op: "join" }.into())
}

/// `GET /plugins?filters=`: no plugin is installed.
pub async fn plugins(State(_s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let f = Filters::from(query(&uri).filters()?);
    f.validate(&["enabled", "capability"])
        .map_err(SwarmError::from)?;
    f.bool_or("enabled", false).map_err(SwarmError::from)?;
    Ok(axum::Json(json!([])).into_response())
}

/// `POST /plugins/pull`, `/plugins/create`, `GET /plugins/privileges`.
pub async fn plugin_install(_body: Bytes) -> ApiResult<Response> {
    Err(SwarmError::PluginsUnsupported.into())
}

/// `/plugins/{name}/{json,enable,disable,push,upgrade,set}` and
/// `DELETE /plugins/{name}` (names contain slashes).
pub async fn plugin_by_name(
    method: Method,
    Path(rest): Path<String>,
    _body: Bytes,
) -> ApiResult<Response> {
    let (name, action) = match rest.rsplit_once('/') {
        Some((n, a))
            if method != Method::DELETE
                && matches!(
                    a,
                    "json" | "enable" | "disable" | "push" | "upgrade" | "set"
                ) =>
        {
            (n, a)
        }
        _ => (rest.as_str(), ""),
    };
    match (&method, action) {
        (&Method::GET, "json") | (&Method::DELETE, "") | (&Method::POST, _) if !name.is_empty() => {
            Err(SwarmError::NoSuchPlugin {
                name: name.to_owned(),
            }
            .into())
        }
        _ => Err(ApiError::not_found(format!(
            "page not found: {method} /plugins/{rest}"
        ))),
    }
}
