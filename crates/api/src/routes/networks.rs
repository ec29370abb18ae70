//! `/networks/...` handlers: list, inspect, create, connect, disconnect,
//! remove and prune, over the engine's [`wharf_engine::Networks`] (the
//! predefined `host` and `none` networks; see that module for what is
//! refused and why). Bodies are dockerd's `network.Inspect` shape.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use wharf_engine::EngineError;
use wharf_engine::filters::Filters;
use wharf_engine::networks::{CreateNetworkRequest, Network, NetworkError};

use super::{json_body, query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::version::ApiVersion;

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> ApiError {
        ApiError::from(EngineError::from(e))
    }
}

/// Go's `strconv.ParseBool`, as dockerd parses `verbose`.
fn go_bool(k: &str, v: &str) -> ApiResult<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "invalid value for {k}: {v}: strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

/// One network in dockerd's JSON.
pub(crate) fn render(n: &Network) -> Value {
    let containers: Map<String, Value> = n
        .containers
        .iter()
        .map(|(id, ep)| {
            (
                id.clone(),
                json!({
                    "Name": ep.name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac_address,
                    "IPv4Address": ep.ipv4_address,
                    "IPv6Address": ep.ipv6_address,
                }),
            )
        })
        .collect();
    json!({
        "Name": n.record.name,
        "Id": n.record.id,
        "Created": n.record.created,
        "Scope": n.scope,
        "Driver": n.record.driver,
        "EnableIPv4": n.enable_ipv4,
        "EnableIPv6": n.enable_ipv6,
        // The predefined networks allocate no addresses: no options, no pools.
        "IPAM": {"Driver": n.ipam_driver, "Options": null, "Config": null},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": n.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": n.config_only,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

/// `GET /networks?filters=`.
pub async fn list(
    State(s): State<Arc<AppState>>,
    Extension(version): Extension<ApiVersion>,
    uri: Uri,
) -> ApiResult<Response> {
    let filters = Filters::from(query(&uri).filters()?);
    // API versions before 1.28 list each network's containers too.
    let detailed = version < ApiVersion(1, 28);
    let nets = s.engine.networks.list(&filters, detailed)?;
    Ok(axum::Json(nets.iter().map(render).collect::<Vec<_>>()).into_response())
}

/// `GET /networks/{id}?verbose=&scope=`.
pub async fn inspect(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query(&uri);
    if let Some(v) = q.str("verbose").filter(|v| !v.is_empty()) {
        // Services exist only in swarm mode: verbose adds nothing here.
        go_bool("verbose", v)?;
    }
    let n = s.engine.networks.inspect(&id, q.str("scope"))?;
    Ok(axum::Json(render(&n)).into_response())
}

/// The fields of `network.CreateRequest` the refusal looks at.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateBody {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Driver")]
    driver: String,
}

/// `POST /networks/create`.
pub async fn create(State(s): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = json_body(&body)?;
    let n = s.engine.networks.create(&CreateNetworkRequest {
        name: b.name,
        driver: b.driver,
    })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"Id": n.record.id, "Warning": ""})),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConnectBody {
    #[serde(rename = "Container")]
    container: String,
}

async fn connect_or_disconnect(
    s: &AppState,
    id: &str,
    body: &[u8],
    connect: bool,
) -> ApiResult<Response> {
    let b: ConnectBody = json_body(body)?;
    s.engine.networks.connect(id, &b.container, connect)?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    connect_or_disconnect(&s, &id, &body, true).await
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    connect_or_disconnect(&s, &id, &body, false).await
}

/// `DELETE /networks/{id}`.
pub async fn remove(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Response> {
    s.engine.networks.remove(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /networks/prune?filters=`.
pub async fn prune(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let filters = Filters::from(query(&uri).filters()?);
    let deleted = s.engine.networks.prune(&filters)?;
    // dockerd's nil slice: `null` when nothing was deleted.
    let deleted = if deleted.is_empty() {
        Value::Null
    } else {
        json!(deleted)
    };
    Ok(axum::Json(json!({ "NetworksDeleted": deleted })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_parses_as_go_does() {
        assert!(go_bool("verbose", "T").unwrap());
        assert!(!go_bool("verbose", "0").unwrap());
        let e = go_bool("verbose", "yes").unwrap_err();
        assert!(e.message.starts_with("invalid value for verbose: yes"));
    }
}
