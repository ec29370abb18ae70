//! [`RegistryClient`]: the OCI distribution API of one registry host.
//!
//! A client is created per registry host (`docker.io`, `localhost:5000`) and
//! is cheap to clone (shared state behind an `Arc`), so concurrent layer
//! transfers share its connection pool, ping results and token cache.
//!
//! Every request goes through the same steps:
//! 1. pick an endpoint ([`crate::endpoint::endpoints_for`]): Docker Hub
//!    mirrors first for reads, HTTPS before HTTP for insecure hosts. An
//!    endpoint is used once its anonymous `GET /v2/` ping answered `200` or
//!    `401`; the ping's `WWW-Authenticate` challenges are remembered;
//! 2. authorize: nothing when the ping was `200`; for a `Bearer` challenge a
//!    token for the request's scopes (cached, refreshed before expiry) fetched
//!    from the realm, with the user's credentials when the provider has some
//!    (asked lazily: anonymous first); for `Basic`, the credentials;
//! 3. send, retrying transient failures ([`crate::retry`]); on a `401` the
//!    token is dropped and fetched again once, with the scope the registry
//!    asked for added;
//! 4. for blob downloads, follow redirects by hand, never forwarding the
//!    `Authorization` header to another origin.
//!
//! Methods map one-to-one to registry API calls and return typed results;
//! unexpected statuses become [`ClientError::Status`] carrying the
//! registry's error code and message.
//!
//! Split in three: this module (endpoint selection, authorization, retries,
//! the request pipeline), `api` (one method per registry API call and their
//! result types) and `http` (response helpers and error mapping).

mod api;
mod http;

pub use api::{
    BlobResponse, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, ManifestResponse, MountOutcome, UploadBody,
    UploadSession, parse_content_range, pull_scope, push_scope,
};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::OnceCell;

use crate::auth::{AuthError, CredentialProvider, Credentials};
use crate::challenge::{AuthScheme, Challenge, ChallengeError, parse_www_authenticate};
use crate::endpoint::{Endpoint, EndpointError, RegistryOptions, endpoints_for};
use crate::retry::is_retryable_status;
use crate::token::{TokenCache, TokenError, TokenKey, parse_token_response};
use http::{
    basic_header, error_from_response, header_str, header_value, is_insecure_url, is_reset,
    location, parse_url, read_limited, registry_message,
};

const MAX_REDIRECTS: usize = 5;

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host or options do not yield a usable endpoint list.
    #[error("invalid registry configuration for {host}")]
    Config {
        host: String,
        #[source]
        source: EndpointError,
    },
    /// The HTTP client could not be built (TLS roots, options).
    #[error("cannot initialise HTTP client for {host}")]
    HttpClient {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    /// Connecting or talking to the registry failed (after retries).
    #[error("{method} {url} failed")]
    Transport {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// `GET /v2/` answered something other than 200 or 401.
    #[error("{url} is not a registry v2 endpoint (status {status})")]
    NotARegistry { url: String, status: u16 },
    /// The registry (or its token server) refused the credentials.
    #[error("unauthorized: authentication required for {host}: {detail}")]
    Unauthorized { host: String, detail: String },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: status {status}: {message}")]
    Status {
        method: Method,
        url: String,
        status: u16,
        /// The registry's error code (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, ...).
        code: Option<String>,
        message: String,
    },
    /// A `WWW-Authenticate` header could not be parsed.
    #[error("invalid authentication challenge from {url}")]
    Challenge {
        url: String,
        #[source]
        source: ChallengeError,
    },
    /// A Bearer challenge without a usable realm URL.
    #[error("bearer challenge from {host} has no valid realm: {realm:?}")]
    BadRealm { host: String, realm: Option<String> },
    /// The token server answered with an error status.
    #[error("token server {realm} returned status {status}")]
    TokenStatus { realm: String, status: u16 },
    /// The token server's answer was unusable.
    #[error("invalid token from {realm}")]
    Token {
        realm: String,
        #[source]
        source: TokenError,
    },
    /// The credential provider failed.
    #[error("cannot get credentials for {host}")]
    Credentials {
        host: String,
        #[source]
        source: Box<AuthError>,
    },
    /// A redirect or upload `Location` header is missing or invalid.
    #[error("invalid Location header {location:?} in response to {url}")]
    BadLocation {
        url: String,
        location: Option<String>,
    },
    /// More than the allowed number of redirects.
    #[error("too many redirects fetching {url}")]
    TooManyRedirects { url: String },
    /// A response body exceeded its size limit.
    #[error("response from {url} exceeds {limit} bytes")]
    TooLarge { url: String, limit: usize },
    /// A `206` response whose `Content-Range` does not match the request.
    #[error("registry answered range {got:?} to a request from byte {requested} of {url}")]
    BadRange {
        url: String,
        requested: u64,
        got: Option<String>,
    },
    /// Reading a local upload source failed.
    #[error("cannot read upload source {path}")]
    UploadSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A blocking task (credential lookup) was cancelled.
    #[error("credential lookup for {host} did not complete")]
    Task { host: String },
}

impl ClientError {
    /// The HTTP status when the registry answered with an unexpected one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } | ClientError::NotARegistry { status, .. } => {
                Some(*status)
            }
            ClientError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// Whether the registry said the manifest, blob or repository is unknown.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// The result of the anonymous `GET /v2/` ping of an endpoint.
#[derive(Debug, Clone)]
pub struct PingInfo {
    /// The endpoint base URL that answered.
    pub base: String,
    /// Its challenges (empty when the registry needs no authentication).
    pub challenges: Vec<Challenge>,
}

struct EndpointSlot {
    endpoint: Endpoint,
    ping: OnceCell<PingInfo>,
}

struct Inner {
    host: String,
    endpoints: Vec<EndpointSlot>,
    /// Index of the first endpoint worth trying (earlier ones failed to ping).
    preferred: AtomicUsize,
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    options: RegistryOptions,
    provider: Arc<dyn CredentialProvider>,
    credentials: OnceCell<Option<Credentials>>,
    tokens: TokenCache,
}

/// A client for one registry host. Clones share state.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("host", &self.inner.host)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Pulls: mirrors allowed.
    Read,
    /// Pushes and logins: the registry itself only.
    Write,
}

enum Target {
    Path(String),
    Url(Url),
}

struct Request {
    method: Method,
    target: Target,
    headers: HeaderMap,
    body: Option<UploadBody>,
    scopes: Vec<String>,
    follow_redirects: bool,
}

impl Request {
    fn new(method: Method, path: String, scopes: Vec<String>) -> Request {
        Request {
            method,
            target: Target::Path(path),
            headers: HeaderMap::new(),
            body: None,
            scopes,
            follow_redirects: false,
        }
    }
}

impl RegistryClient {
    /// A client for `host` (a reference's domain, e.g. `docker.io` or
    /// `localhost:5000`). Credentials are asked from `provider` only when the
    /// registry challenges.
    pub fn new(
        host: &str,
        options: &RegistryOptions,
        provider: Arc<dyn CredentialProvider>,
    ) -> Result<RegistryClient, ClientError> {
        let endpoints = endpoints_for(host, options).map_err(|source| ClientError::Config {
            host: host.to_owned(),
            source,
        })?;
        let build = |verify: bool| {
            reqwest::Client::builder()
                .user_agent(options.user_agent.clone())
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
                .danger_accept_invalid_certs(!verify)
                .build()
                .map_err(|source| ClientError::HttpClient {
                    host: host.to_owned(),
                    source,
                })
        };
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                host: host.to_owned(),
                endpoints: endpoints
                    .into_iter()
                    .map(|endpoint| EndpointSlot {
                        endpoint,
                        ping: OnceCell::new(),
                    })
                    .collect(),
                preferred: AtomicUsize::new(0),
                http: build(true)?,
                http_insecure: build(false)?,
                options: options.clone(),
                provider,
                credentials: OnceCell::new(),
                tokens: TokenCache::default(),
            }),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The options it was built with.
    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// Pings the registry (first reachable endpoint, mirrors excluded).
    pub async fn ping(&self) -> Result<PingInfo, ClientError> {
        let idx = self.resolve(Access::Write).await?;
        Ok(self.inner.endpoints[idx]
            .ping
            .get()
            .cloned()
            .expect("resolved endpoint was pinged"))
    }

    /// Checks that the client's credentials are accepted: `GET /v2/` must
    /// succeed once authorized as the ping's challenge demands.
    pub async fn check_login(&self) -> Result<(), ClientError> {
        let idx = self.resolve(Access::Write).await?;
        let ping = self.inner.endpoints[idx]
            .ping
            .get()
            .cloned()
            .expect("resolved endpoint was pinged");
        if let Some(ch) = preferred_challenge(&ping.challenges) {
            // A challenged login needs credentials; fetch a fresh token.
            if self.credentials().await?.is_none() {
                return Err(self.unauthorized("no credentials"));
            }
            if ch.scheme == AuthScheme::Bearer {
                let key = self.token_key(ch, &[])?;
                self.inner.tokens.remove(&key);
            }
        }
        let req = Request::new(Method::GET, "/v2/".into(), vec![]);
        let resp = self.execute(idx, &req).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized("credentials rejected")),
            _ => Err(error_from_response(&Method::GET, resp).await),
        }
    }

    // ---- endpoint selection -------------------------------------------

    /// The first endpoint that answers its ping, for `access`.
    async fn resolve(&self, access: Access) -> Result<usize, ClientError> {
        let eps = &self.inner.endpoints;
        let first = match access {
            Access::Read => 0,
            Access::Write => eps.iter().position(|e| !e.endpoint.mirror).unwrap_or(0),
        };
        let start = self.inner.preferred.load(Ordering::Relaxed).max(first);
        let mut last_err = None;
        for idx in start..eps.len() {
            let is_last = idx + 1 == eps.len();
            match self.ensure_ping(idx, is_last).await {
                Ok(()) => {
                    if idx > start {
                        // Endpoints before this one did not answer: skip
                        // them from now on (HTTPS on a plain-HTTP registry,
                        // a dead mirror).
                        self.inner.preferred.fetch_max(idx, Ordering::Relaxed);
                    }
                    return Ok(idx);
                }
                Err(e) => {
                    tracing::debug!(host = %self.inner.host, base = %eps[idx].endpoint.base, error = %e, "endpoint ping failed");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("at least one endpoint"))
    }

    /// Runs a read request, falling back from a failing mirror to the next
    /// endpoint (docker's mirror behaviour).
    async fn execute_read(&self, req: &Request) -> Result<reqwest::Response, ClientError> {
        let eps = &self.inner.endpoints;
        let mut idx = self.resolve(Access::Read).await?;
        loop {
            let mirror = eps[idx].endpoint.mirror;
            let result = self.execute(idx, req).await;
            let fall_back = mirror
                && match &result {
                    Ok(resp) => {
                        !resp.status().is_success() && resp.status() != StatusCode::PARTIAL_CONTENT
                    }
                    Err(_) => true,
                };
            if !fall_back || idx + 1 >= eps.len() {
                return result;
            }
            tracing::info!(host = %self.inner.host, mirror = %eps[idx].endpoint.base, "mirror failed, trying the next endpoint");
            // Next endpoint that answers its ping.
            let mut next = None;
            for j in idx + 1..eps.len() {
                if self.ensure_ping(j, j + 1 == eps.len()).await.is_ok() {
                    next = Some(j);
                    break;
                }
            }
            match next {
                Some(j) => idx = j,
                None => return result,
            }
        }
    }

    async fn ensure_ping(&self, idx: usize, with_retries: bool) -> Result<(), ClientError> {
        let slot = &self.inner.endpoints[idx];
        slot.ping
            .get_or_try_init(|| self.ping_endpoint(&slot.endpoint, with_retries))
            .await?;
        Ok(())
    }

    async fn ping_endpoint(
        &self,
        ep: &Endpoint,
        with_retries: bool,
    ) -> Result<PingInfo, ClientError> {
        let url = parse_url(&format!("{}/v2/", ep.base))?;
        let attempts = if with_retries {
            self.inner.options.retry.max_attempts
        } else {
            1
        };
        let resp = self
            .send_with_retry(
                ep.tls_verify,
                &Method::GET,
                &url,
                &HeaderMap::new(),
                None,
                attempts,
            )
            .await?;
        let status = resp.status();
        let challenges = match status {
            s if s.is_success() => Vec::new(),
            StatusCode::UNAUTHORIZED => challenges_of(&resp)?,
            _ => {
                return Err(ClientError::NotARegistry {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
        };
        tracing::debug!(base = %ep.base, status = status.as_u16(), "registry ping");
        Ok(PingInfo {
            base: ep.base.clone(),
            challenges,
        })
    }

    // ---- one request on one endpoint ------------------------------------

    async fn execute(&self, idx: usize, req: &Request) -> Result<reqwest::Response, ClientError> {
        let slot = &self.inner.endpoints[idx];
        self.ensure_ping(idx, true).await?;
        let ping = slot.ping.get().expect("pinged");
        let verify = slot.endpoint.tls_verify;
        let url = match &req.target {
            Target::Path(p) => parse_url(&format!("{}{p}", slot.endpoint.base))?,
            Target::Url(u) => u.clone(),
        };
        let attempts = self.inner.options.retry.max_attempts;

        let mut challenge = preferred_challenge(&ping.challenges).cloned();
        let mut scopes = req.scopes.clone();
        let mut auth = self.authorization(challenge.as_ref(), &scopes).await?;
        let mut headers = req.headers.clone();
        if let Some(a) = &auth {
            headers.insert(header::AUTHORIZATION, a.clone());
        }
        let mut resp = self
            .send_with_retry(
                verify,
                &req.method,
                &url,
                &headers,
                req.body.as_ref(),
                attempts,
            )
            .await?;

        if resp.status() == StatusCode::UNAUTHORIZED {
            // The token expired, lacks a scope, or the registry's challenge
            // changed: take the challenge from this response and retry once.
            let fresh = challenges_of(&resp)?;
            if let Some(c) = preferred_challenge(&fresh) {
                challenge = Some(c.clone());
            }
            let Some(ch) = challenge.as_ref() else {
                return Ok(resp);
            };
            if ch.scheme == AuthScheme::Bearer {
                if let Ok(old) = self.token_key(ch, &scopes) {
                    self.inner.tokens.remove(&old);
                }
                if let Some(s) = ch.param("scope") {
                    for s in s.split(' ').filter(|s| !s.is_empty()) {
                        if !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_owned());
                        }
                    }
                }
            } else if auth.is_some() {
                // Basic credentials were already sent and rejected.
                return Err(self.unauthorized(&registry_message(resp).await));
            }
            auth = self.authorization(Some(ch), &scopes).await?;
            let Some(a) = &auth else {
                return Err(self.unauthorized(&registry_message(resp).await));
            };
            headers.insert(header::AUTHORIZATION, a.clone());
            resp = self
                .send_with_retry(
                    verify,
                    &req.method,
                    &url,
                    &headers,
                    req.body.as_ref(),
                    attempts,
                )
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED {
                return Err(self.unauthorized(&registry_message(resp).await));
            }
        }

        if req.follow_redirects {
            let mut hops = 0;
            let mut current = url;
            while resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(ClientError::TooManyRedirects {
                        url: current.to_string(),
                    });
                }
                let next = location(&resp)?;
                if next.origin() != current.origin() {
                    // Never leak the registry credentials to a blob host.
                    headers.remove(header::AUTHORIZATION);
                }
                tracing::debug!(from = %current, to = %next, "following blob redirect");
                let next_verify = !is_insecure_url(&next, &self.inner.options) && verify;
                resp = self
                    .send_with_retry(next_verify, &req.method, &next, &headers, None, attempts)
                    .await?;
                current = next;
            }
        }
        Ok(resp)
    }

    async fn send_with_retry(
        &self,
        tls_verify: bool,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&UploadBody>,
        attempts: u32,
    ) -> Result<reqwest::Response, ClientError> {
        let client = if tls_verify {
            &self.inner.http
        } else {
            &self.inner.http_insecure
        };
        let policy = &self.inner.options.retry;
        let attempts = attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = body {
                rb = rb.body(b.to_body().await?);
            }
            match rb.send().await {
                Ok(resp) if is_retryable_status(resp.status()) && attempt < attempts => {
                    let retry_after = header_str(&resp, "retry-after");
                    let delay = policy.delay_for(attempt, retry_after.as_deref());
                    tracing::warn!(%method, %url, status = resp.status().as_u16(), attempt, ?delay, "transient registry error, retrying");
                    drop(resp);
                    tokio::time::sleep(delay).await;
                }
                Ok(resp) => return Ok(resp),
                Err(e)
                    if (e.is_connect() || e.is_timeout() || is_reset(&e)) && attempt < attempts =>
                {
                    let delay = policy.backoff(attempt);
                    tracing::warn!(%method, %url, error = %e, attempt, ?delay, "registry connection failed, retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(source) => {
                    return Err(ClientError::Transport {
                        method: method.clone(),
                        url: url.to_string(),
                        source,
                    });
                }
            }
        }
    }

    // ---- authorization ---------------------------------------------------

    async fn credentials(&self) -> Result<Option<Credentials>, ClientError> {
        let inner = &self.inner;
        inner
            .credentials
            .get_or_try_init(|| async {
                let provider = inner.provider.clone();
                let host = inner.host.clone();
                let task_host = host.clone();
                tokio::task::spawn_blocking(move || provider.credentials(&task_host))
                    .await
                    .map_err(|_| ClientError::Task { host: host.clone() })?
                    .map_err(|source| ClientError::Credentials {
                        host,
                        source: Box::new(source),
                    })
            })
            .await
            .cloned()
    }

    async fn authorization(
        &self,
        challenge: Option<&Challenge>,
        scopes: &[String],
    ) -> Result<Option<HeaderValue>, ClientError> {
        let Some(ch) = challenge else {
            return Ok(None);
        };
        match ch.scheme {
            AuthScheme::Basic => Ok(self
                .credentials()
                .await?
                .map(|c| basic_header(&c.username, &c.password))),
            AuthScheme::Bearer => {
                let token = self.bearer_token(ch, scopes).await?;
                Ok(Some(header_value(&format!("Bearer {token}"))))
            }
            AuthScheme::Other(_) => Ok(None),
        }
    }

    fn token_key(&self, ch: &Challenge, scopes: &[String]) -> Result<TokenKey, ClientError> {
        let realm = ch.realm().ok_or_else(|| ClientError::BadRealm {
            host: self.inner.host.clone(),
            realm: None,
        })?;
        Ok(TokenKey::new(realm, ch.param("service"), scopes))
    }

    async fn bearer_token(&self, ch: &Challenge, scopes: &[String]) -> Result<String, ClientError> {
        let key = self.token_key(ch, scopes)?;
        if let Some(t) = self.inner.tokens.get(&key) {
            return Ok(t);
        }
        let realm_str = ch.realm().unwrap_or_default().to_owned();
        let bad_realm = || ClientError::BadRealm {
            host: self.inner.host.clone(),
            realm: Some(realm_str.clone()),
        };
        let mut realm = Url::parse(&realm_str).map_err(|_| bad_realm())?;
        if !matches!(realm.scheme(), "http" | "https") {
            return Err(bad_realm());
        }
        let creds = self.credentials().await?;
        let service = ch.param("service");
        let verify = !is_insecure_url(&realm, &self.inner.options);
        let mut headers = HeaderMap::new();
        let (method, body) = match creds.as_ref().and_then(|c| c.identity_token.as_ref()) {
            Some(refresh) => {
                // OAuth2 refresh-token grant, as docker does for identity tokens.
                let mut form = Url::parse("http://form.invalid/").expect("static url");
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token");
                    q.append_pair("refresh_token", refresh);
                    q.append_pair("client_id", "wharf");
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    if !scopes.is_empty() {
                        q.append_pair("scope", &scopes.join(" "));
                    }
                }
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                let body = form.query().unwrap_or_default().to_owned();
                (Method::POST, Some(UploadBody::Bytes(Bytes::from(body))))
            }
            None => {
                {
                    let mut q = realm.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                if let Some(c) = &creds {
                    headers.insert(
                        header::AUTHORIZATION,
                        basic_header(&c.username, &c.password),
                    );
                }
                (Method::GET, None)
            }
        };
        let received = Instant::now();
        let resp = self
            .send_with_retry(
                verify,
                &method,
                &realm,
                &headers,
                body.as_ref(),
                self.inner.options.retry.max_attempts,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if creds.is_some() => {
                return Err(self.unauthorized("incorrect username or password"));
            }
            s => {
                return Err(ClientError::TokenStatus {
                    realm: realm_str,
                    status: s.as_u16(),
                });
            }
        }
        let body = read_limited(resp, MAX_MANIFEST_SIZE).await?;
        let issued =
            parse_token_response(&realm_str, &body).map_err(|source| ClientError::Token {
                realm: realm_str.clone(),
                source,
            })?;
        tracing::debug!(realm = %realm_str, ?scopes, expires_in = ?issued.expires_in, "bearer token issued");
        self.inner.tokens.insert(key, &issued, received);
        Ok(issued.token)
    }

    fn unauthorized(&self, detail: &str) -> ClientError {
        ClientError::Unauthorized {
            host: self.inner.host.clone(),
            detail: detail.to_owned(),
        }
    }
}

/// Bearer is preferred over Basic when a registry offers both.
fn preferred_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.scheme == AuthScheme::Bearer)
        .or_else(|| challenges.iter().find(|c| c.scheme == AuthScheme::Basic))
}

fn challenges_of(resp: &reqwest::Response) -> Result<Vec<Challenge>, ClientError> {
    let mut out = Vec::new();
    for v in resp.headers().get_all(header::WWW_AUTHENTICATE) {
        let Ok(v) = v.to_str() else { continue };
        let parsed = parse_www_authenticate(v).map_err(|source| ClientError::Challenge {
            url: resp.url().to_string(),
            source,
        })?;
        out.extend(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_preferred() {
        let c = parse_www_authenticate(r#"Basic realm="b", Bearer realm="t""#).unwrap();
        assert_eq!(preferred_challenge(&c).unwrap().scheme, AuthScheme::Bearer);
        let c = parse_www_authenticate(r#"Basic realm="b""#).unwrap();
        assert_eq!(preferred_challenge(&c).unwrap().scheme, AuthScheme::Basic);
        assert!(preferred_challenge(&[]).is_none());
    }
}
