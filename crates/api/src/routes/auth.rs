//! Registry credentials: `POST /auth` (checks a login with the registry;
//! the client stores the credentials, the daemon none) and the
//! `X-Registry-Auth` header of pulls and pushes (base64url of Docker's
//! `AuthConfig` JSON: `username`/`password`, or `auth` as base64
//! `user:pass`, or an `identitytoken`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use wharf_engine::images::{Credentials, LoginRequest};

use super::json_body;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Docker's `AuthConfig` (Go decodes JSON keys case-insensitively; clients
/// send lowercase, some capitalised).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuthConfig {
    #[serde(alias = "Username")]
    username: String,
    #[serde(alias = "Password")]
    password: String,
    #[serde(alias = "Auth")]
    auth: String,
    #[serde(alias = "ServerAddress")]
    serveraddress: String,
    #[serde(alias = "IdentityToken")]
    identitytoken: String,
    #[serde(alias = "RegistryToken")]
    registrytoken: String,
    #[serde(alias = "Email")]
    #[allow(dead_code)]
    email: String,
}

impl AuthConfig {
    /// Username and password, from the fields or from `auth`.
    fn user_pass(&self) -> Result<(String, String), ApiError> {
        if !self.username.is_empty() || self.auth.is_empty() {
            return Ok((self.username.clone(), self.password.clone()));
        }
        let raw = decode_base64(self.auth.trim())
            .ok_or_else(|| ApiError::invalid("invalid auth configuration: auth is not base64"))?;
        let s = String::from_utf8(raw)
            .map_err(|_| ApiError::invalid("invalid auth configuration: auth is not UTF-8"))?;
        let (u, p) = s.split_once(':').ok_or_else(|| {
            ApiError::invalid("invalid auth configuration: auth is not user:password")
        })?;
        Ok((u.to_owned(), p.to_owned()))
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The credentials of an `X-Registry-Auth` header; `None` when absent or
/// empty (`{}`), a 400 when it cannot be decoded.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<Credentials>> {
    let Some(v) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let raw = v.to_str().unwrap_or("").trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| ApiError::invalid(format!("invalid X-Registry-Auth header: {why}"));
    let json = decode_base64(raw).ok_or_else(|| bad("not base64"))?;
    let cfg: AuthConfig =
        serde_json::from_slice(&json).map_err(|e| bad(&format!("invalid JSON: {e}")))?;
    let (username, password) = cfg.user_pass()?;
    let token = [cfg.identitytoken, cfg.registrytoken]
        .into_iter()
        .find(|t| !t.is_empty());
    if username.is_empty() && password.is_empty() && token.is_none() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username,
        password,
        identity_token: token,
    }))
}

/// `POST /auth`.
pub async fn login(State(s): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let cfg: AuthConfig = json_body(&body)?;
    let (username, password) = cfg.user_pass()?;
    let req = LoginRequest {
        server_address: cfg.serveraddress.clone(),
        username,
        password,
        identity_token: Some(cfg.identitytoken.clone()).filter(|t| !t.is_empty()),
    };
    s.engine.image_service.login(req).await?;
    Ok(axum::Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Registry-Auth", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn header_forms() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        assert!(registry_auth(&HeaderMap::new()).unwrap().is_none());
        assert!(
            registry_auth(&header(&URL_SAFE.encode("{}")))
                .unwrap()
                .is_none()
        );
        let c = registry_auth(&header(
            &URL_SAFE.encode(r#"{"username":"u","password":"p?>","serveraddress":"r"}"#),
        ))
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        let auth = STANDARD.encode("me:secret");
        let c = registry_auth(&header(&STANDARD.encode(format!(r#"{{"auth":"{auth}"}}"#))))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "secret"));
        let c = registry_auth(&header(&URL_SAFE.encode(r#"{"identitytoken":"tok"}"#)))
            .unwrap()
            .unwrap();
        assert_eq!(c.identity_token.as_deref(), Some("tok"));
        let e = registry_auth(&header("%%%")).unwrap_err();
        assert!(
            e.message.starts_with("invalid X-Registry-Auth header"),
            "{}",
            e.message
        );
        let e = registry_auth(&header(&URL_SAFE.encode("not json"))).unwrap_err();
        assert_eq!(e.kind, wharf_engine::ErrorKind::InvalidArgument);
    }
}
