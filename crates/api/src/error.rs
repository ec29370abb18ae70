//! API errors: every failure a handler returns becomes Docker's
//! `{"message": "..."}` body with the status [`status_for`] picks from the
//! engine's [`ErrorKind`]; that function is the only place kinds become
//! HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use wharf_engine::{EngineError, ErrorKind};

/// The one mapping from engine error kinds to HTTP statuses.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failed request: a kind and the message shown to the client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    /// A malformed request (bad JSON, bad query value).
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
        }
    }

    /// A route or object that does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let kind = e.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(error = %e.full_message(), "request failed");
        }
        ApiError {
            kind,
            message: e.full_message(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_for(self.kind);
        if status == StatusCode::NOT_MODIFIED {
            // 304 carries no body.
            return status.into_response();
        }
        (
            status,
            axum::Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(status_for(ErrorKind::NotFound), 404);
        assert_eq!(status_for(ErrorKind::Conflict), 409);
        assert_eq!(status_for(ErrorKind::InvalidArgument), 400);
        assert_eq!(status_for(ErrorKind::NotModified), 304);
        assert_eq!(status_for(ErrorKind::Forbidden), 403);
        assert_eq!(status_for(ErrorKind::Unauthorized), 401);
        assert_eq!(status_for(ErrorKind::Unavailable), 503);
        assert_eq!(status_for(ErrorKind::Internal), 500);
        let r = ApiError::from(EngineError::NoSuchContainer { id: "x".into() }).into_response();
        assert_eq!(r.status(), 404);
    }
}
