//! API version negotiation: requests may be prefixed with `/v1.NN`; the
//! prefix is stripped before routing and the version is kept in the
//! request's extensions ([`ApiVersion`]). Versions outside
//! [`MIN_API_VERSION`]..=[`MAX_API_VERSION`] are refused with Docker's
//! messages; unprefixed requests use the maximum.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The newest API version served (the docker CLI 28.2 speaks 1.50).
pub const MAX_API_VERSION: ApiVersion = ApiVersion(1, 50);
/// The oldest API version served.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);

/// An API version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    /// Parses `1.43`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Splits `/v1.43/containers/json` into the version and `/containers/json`.
pub fn split_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (v, tail) = rest.split_at(end);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((v, if tail.is_empty() { "/" } else { tail }))
}

/// Middleware: strips the prefix, checks the version, records it.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut version = MAX_API_VERSION;
    if let Some((v, tail)) = split_prefix(&path) {
        let Some(parsed) = ApiVersion::parse(v) else {
            return ApiError::invalid(format!("invalid API version: {v}")).into_response();
        };
        if parsed < MIN_API_VERSION {
            return ApiError::invalid(format!(
                "client version {parsed} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
            .into_response();
        }
        if parsed > MAX_API_VERSION {
            return ApiError::invalid(format!(
                "client version {parsed} is too new. Maximum supported API version is {MAX_API_VERSION}"
            ))
            .into_response();
        }
        version = parsed;
        let pq = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            split_prefix("/v1.43/containers/json"),
            Some(("1.43", "/containers/json"))
        );
        assert_eq!(split_prefix("/v1.50/_ping"), Some(("1.50", "/_ping")));
        assert_eq!(split_prefix("/containers/json"), None);
        assert_eq!(split_prefix("/version"), None);
        assert!(ApiVersion::parse("1.24").unwrap() < ApiVersion::parse("1.100").unwrap());
        assert!(ApiVersion(1, 9) < ApiVersion(1, 24));
    }
}
