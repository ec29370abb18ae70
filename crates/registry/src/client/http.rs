//! Response helpers of the client: header access, `Location` resolution,
//! size-limited bodies, and the mapping of registry error bodies
//! (`{"errors":[{"code","message"}]}`) to [`ClientError`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode, Url};

use super::ClientError;
use crate::endpoint::{RegistryOptions, is_insecure};

const MAX_ERROR_BODY: usize = 64 << 10;

pub(super) fn basic_header(user: &str, pass: &str) -> HeaderValue {
    let mut v = header_value(&format!(
        "Basic {}",
        BASE64.encode(format!("{user}:{pass}"))
    ));
    v.set_sensitive(true);
    v
}

/// A header value from text the client produced itself (URLs, numbers,
/// base64, media types): invalid bytes are impossible, but map them to an
/// empty value rather than panicking.
pub(super) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn header_str(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(super) fn content_type(resp: &reqwest::Response) -> Option<String> {
    header_str(resp, "content-type")
        .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_owned())
}

pub(super) fn parse_url(s: &str) -> Result<Url, ClientError> {
    Url::parse(s).map_err(|_| ClientError::BadLocation {
        url: s.to_owned(),
        location: None,
    })
}

pub(super) fn location(resp: &reqwest::Response) -> Result<Url, ClientError> {
    let loc = header_str(resp, "location");
    let bad = || ClientError::BadLocation {
        url: resp.url().to_string(),
        location: loc.clone(),
    };
    let l = loc.as_deref().ok_or_else(bad)?;
    resp.url().join(l).map_err(|_| bad())
}

pub(super) fn is_insecure_url(url: &Url, options: &RegistryOptions) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let hostport = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    is_insecure(&hostport, &options.insecure_registries).unwrap_or(false)
}

pub(super) fn is_reset(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        src = s.source();
    }
    false
}

pub(super) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Bytes, ClientError> {
    let url = resp.url().to_string();
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(ClientError::TooLarge { url, limit });
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|source| ClientError::Transport {
            method: Method::GET,
            url: url.clone(),
            source,
        })?
    {
        if buf.len() + chunk.len() > limit {
            return Err(ClientError::TooLarge { url, limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

#[derive(serde::Deserialize)]
struct RegistryErrors {
    #[serde(default)]
    errors: Vec<RegistryErrorItem>,
}

#[derive(serde::Deserialize)]
struct RegistryErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `code: message` of the registry's first error, or the body text.
pub(super) async fn registry_message(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
    match serde_json::from_slice::<RegistryErrors>(&body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let text = String::from_utf8_lossy(&body).trim().to_owned();
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("unknown status")
                    .to_lowercase()
            } else {
                text
            }
        }
    }
}

pub(super) async fn error_from_response(method: &Method, resp: reqwest::Response) -> ClientError {
    let status = resp.status().as_u16();
    let url = resp.url().to_string();
    let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<RegistryErrors>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            (Some(e.errors[0].code.clone()), e.errors[0].message.clone())
        }
        _ => {
            let text = String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect::<String>();
            let text = if text.is_empty() {
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("unexpected status")
                    .to_lowercase()
            } else {
                text
            };
            (None, text)
        }
    };
    ClientError::Status {
        method: method.clone(),
        url,
        status,
        code,
        message,
    }
}
