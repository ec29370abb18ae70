//! `wharf-api`: the Docker Engine API over HTTP/1.1 for `wharfd`.
//!
//! One route table ([`router`]) maps requests to handlers; a handler parses
//! and validates the request into a typed call on an engine service
//! (`wharf_engine::Containers`, `System`, `Events`) and renders the result in
//! Docker's JSON. The engine never sees HTTP; engine error kinds become
//! statuses in [`error::status_for`] only. Requests may carry a `/v1.NN`
//! prefix ([`version`]). Attach and exec streams are hijacked connections
//! ([`hijack`]). [`serve`] runs the router on a listener with graceful
//! shutdown and a tracing span per request.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod error;
pub mod hijack;
pub mod query;
mod routes;
pub mod server;
pub mod version;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};
use wharf_engine::Engine;

pub use server::serve;

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub engine: Engine,
}

/// Largest accepted JSON request body.
pub const MAX_BODY: usize = 4 << 20;

/// The route table.
pub fn router(engine: Engine) -> Router {
    let state = Arc::new(AppState { engine });
    use routes::archive as ar;
    use routes::networks as n;
    use routes::{auth, containers as c, exec as x, images as i, system as s, system_df};
    use routes::{build as b, swarm as sw, volumes as v};
    let table = Router::new()
        .route("/_ping", get(s::ping).head(s::ping))
        .route("/version", get(s::version))
        .route("/info", get(s::info))
        .route("/events", get(s::events))
        .route("/containers/json", get(c::list))
        .route("/containers/create", post(c::create))
        .route("/containers/prune", post(c::prune))
        .route("/containers/{id}/json", get(c::inspect))
        .route("/containers/{id}/start", post(c::start))
        .route("/containers/{id}/stop", post(c::stop))
        .route("/containers/{id}/restart", post(c::restart))
        .route("/containers/{id}/kill", post(c::kill))
        .route("/containers/{id}/pause", post(c::pause))
        .route("/containers/{id}/unpause", post(c::unpause))
        .route("/containers/{id}/rename", post(c::rename))
        .route("/containers/{id}/wait", post(c::wait))
        .route("/containers/{id}/resize", post(c::resize))
        .route("/containers/{id}/logs", get(c::logs))
        .route("/containers/{id}/top", get(c::top))
        .route("/containers/{id}/stats", get(c::stats))
        .route("/containers/{id}/attach", post(c::attach))
        .route(
            "/containers/{id}/attach/ws",
            get(routes::attach_ws::attach_ws),
        )
        .route(
            "/containers/{id}/archive",
            get(ar::get).head(ar::head).put(ar::put),
        )
        .route("/containers/{id}/export", get(ar::export))
        .route("/containers/{id}/changes", get(ar::changes))
        .route("/containers/{id}/update", post(ar::update))
        .route("/containers/{id}", axum::routing::delete(c::remove))
        .route("/containers/{id}/exec", post(x::create))
        .route("/exec/{id}/start", post(x::start))
        .route("/exec/{id}/resize", post(x::resize))
        .route("/exec/{id}/json", get(x::inspect))
        .route("/images/json", get(i::list))
        .route("/images/create", post(i::create))
        .route("/images/prune", post(i::prune))
        .route("/images/get", get(i::save_many))
        .route("/images/load", post(i::load))
        .route("/images/search", get(routes::search::search))
        .route("/images/{*name}", any(i::by_name))
        .route("/commit", post(routes::commit::commit))
        .route("/auth", post(auth::login))
        .route("/system/df", get(system_df::df))
        .route("/networks", get(n::list))
        .route("/networks/", get(n::list))
        .route("/networks/create", post(n::create))
        .route("/networks/prune", post(n::prune))
        .route("/networks/{id}", get(n::inspect).delete(n::remove))
        .route("/networks/{id}/connect", post(n::connect))
        .route("/networks/{id}/disconnect", post(n::disconnect))
        .route("/volumes", get(v::list))
        .route("/volumes/create", post(v::create))
        .route("/volumes/prune", post(v::prune))
        .route(
            "/volumes/{name}",
            get(v::inspect).delete(v::remove).put(v::update),
        )
        .route("/build", post(b::build))
        .route("/build/prune", post(b::prune))
        .route("/build/cancel", post(b::cancel))
        .route("/swarm", get(sw::manager_only))
        .route("/swarm/unlockkey", get(sw::manager_only))
        .route("/swarm/update", post(sw::manager_only))
        .route("/swarm/unlock", post(sw::manager_only))
        .route("/swarm/leave", post(sw::leave))
        .route("/swarm/init", post(sw::init))
        .route("/swarm/join", post(sw::join))
        .route("/services", get(sw::manager_only))
        .route("/services/create", post(sw::manager_only))
        .route(
            "/services/{id}",
            get(sw::manager_only).delete(sw::manager_only),
        )
        .route("/services/{id}/update", post(sw::manager_only))
        .route("/services/{id}/logs", get(sw::manager_only))
        .route("/nodes", get(sw::manager_only))
        .route(
            "/nodes/{id}",
            get(sw::manager_only).delete(sw::manager_only),
        )
        .route("/nodes/{id}/update", post(sw::manager_only))
        .route("/tasks", get(sw::manager_only))
        .route("/tasks/{id}", get(sw::manager_only))
        .route("/tasks/{id}/logs", get(sw::manager_only))
        .route("/secrets", get(sw::manager_only))
        .route("/secrets/create", post(sw::manager_only))
        .route(
            "/secrets/{id}",
            get(sw::manager_only).delete(sw::manager_only),
        )
        .route("/secrets/{id}/update", post(sw::manager_only))
        .route("/configs", get(sw::manager_only))
        .route("/configs/create", post(sw::manager_only))
        .route(
            "/configs/{id}",
            get(sw::manager_only).delete(sw::manager_only),
        )
        .route("/configs/{id}/update", post(sw::manager_only))
        .route("/distribution/{*rest}", get(routes::distribution::inspect))
        .route("/plugins", get(sw::plugins))
        .route("/plugins/pull", post(sw::plugin_install))
        .route("/plugins/create", post(sw::plugin_install))
        .route("/plugins/privileges", get(sw::plugin_install))
        .route("/plugins/{*rest}", any(sw::plugin_by_name))
        .fallback(any(s::not_found))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    Router::new()
        .fallback_service(table)
        .layer(axum::middleware::from_fn(version::negotiate))
        .layer(axum::middleware::from_fn(server::trace_request))
}
