//! Image search (`GET /images/search`): the registry index's v1 search API,
//! as dockerd calls it.
//!
//! 1. The term picks the index: `host[:port]/name` when its first component
//!    looks like a host (has a `.` or `:`, or is `localhost`), Docker Hub
//!    (`index.docker.io`, where `library/` is dropped from the name)
//!    otherwise; a term with a URL scheme is refused.
//! 2. The index is reached at `https://index.docker.io` for Docker Hub.
//!    Any other index is pinged at `/v1/_ping` over HTTPS (certificates
//!    verified unless the host is insecure: loopback or
//!    `--insecure-registry`), and an insecure one over plain HTTP when
//!    HTTPS fails. Mirrors are not used: they serve the v2 API only (so
//!    does dockerd).
//! 3. `GET /v1/search?q=<name>&n=<limit>` (limit 25 by default, at most
//!    100) with `X-Docker-Token: true` and, when the request carried a
//!    username, Basic credentials (dockerd's v1 auth; identity tokens, which
//!    dockerd exchanges for a `registry:catalog:search` token, are not sent).
//! 4. The results are filtered by `is-official` and `stars` (`is-automated`
//!    is deprecated: `true` finds nothing, every result says `false`).

use std::time::Duration;

use wharf_registry::Credentials;
use wharf_registry::endpoint::{is_insecure, split_host_port};

use crate::error::ErrorKind;
use crate::filters::{FilterError, Filters};
use crate::images::ImageService;

/// Docker Hub's index, where unqualified terms are searched.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io";

/// Results when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 25;

/// Largest search answer read.
const MAX_RESPONSE: usize = 8 << 20;

/// Filters `GET /images/search` accepts.
pub const FILTERS: [&str; 3] = ["is-automated", "is-official", "stars"];

/// `GET /images/search?term=&limit=&filters=`.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub term: String,
    /// 0: the default.
    pub limit: u32,
    pub filters: Filters,
    /// From `X-Registry-Auth` (an invalid header is no credentials).
    pub credentials: Option<Credentials>,
}

/// One search result (the index's JSON, also dockerd's answer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    pub name: String,
    #[serde(default)]
    pub is_automated: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, serde::Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A bad `filters` parameter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `stars` is not a number (dockerd's wording).
    #[error("invalid filter 'stars={value}': strconv.Atoi: parsing {value:?}: invalid syntax")]
    BadStars { value: String },
    /// The term is a URL (dockerd's wording).
    #[error("invalid repository name: repository name ({term}) should not have a scheme")]
    Scheme { term: String },
    /// The index part of the term is not `host[:port]`.
    #[error("invalid registry host in search term {term:?}")]
    BadIndex { term: String },
    /// `limit` out of range (dockerd's wording).
    #[error("limit {limit} is outside the range of [1, 100]")]
    Limit { limit: u32 },
    /// A secure index did not answer over verified HTTPS.
    #[error(
        "invalid registry endpoint {endpoint}: {reason}. If this private registry supports only HTTP or HTTPS with an unknown CA certificate, please add `--insecure-registry {host}` to the daemon's arguments"
    )]
    SecureEndpoint {
        endpoint: String,
        host: String,
        reason: String,
    },
    /// An insecure index answered neither HTTPS nor HTTP (dockerd's wording).
    #[error("invalid registry endpoint {endpoint:?}. HTTPS attempt: {https}. HTTP attempt: {http}")]
    Endpoint {
        endpoint: String,
        https: String,
        http: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot initialise the HTTP client for index {index}")]
    Client {
        index: String,
        #[source]
        source: reqwest::Error,
    },
    /// The search request failed in transit.
    #[error("search request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The index answered something else than 200 (dockerd's wording).
    #[error("Unexpected status code {status}")]
    Status { status: u16 },
    /// The answer is not search results (dockerd's wording).
    #[error("error decoding registry search results")]
    Decode {
        #[source]
        source: serde_json::Error,
    },
    /// The answer is larger than any real one.
    #[error("search answer from {url} exceeds {MAX_RESPONSE} bytes")]
    TooLarge { url: String },
}

impl SearchError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use SearchError as E;
        match self {
            E::Filter(f) => f.kind(),
            E::BadStars { .. }
            | E::Scheme { .. }
            | E::BadIndex { .. }
            | E::Limit { .. }
            | E::SecureEndpoint { .. }
            | E::Endpoint { .. } => ErrorKind::InvalidArgument,
            E::Client { .. }
            | E::Request { .. }
            | E::Status { .. }
            | E::Decode { .. }
            | E::TooLarge { .. } => ErrorKind::Internal,
        }
    }
}

/// Splits a term into the index and the name searched for (dockerd's
/// `splitReposSearchTerm`); `None` as index means Docker Hub.
pub fn split_term(term: &str) -> (Option<&str>, &str) {
    match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if matches!(first, "docker.io" | "index.docker.io") {
                (None, rest)
            } else {
                (Some(first), rest)
            }
        }
        _ => (None, term),
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A one-line description of a transport failure and its causes.
fn reason(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl ImageService {
    fn search_client(&self, index: &str, verify: bool) -> Result<reqwest::Client, SearchError> {
        let o = &self.registry;
        reqwest::Client::builder()
            .user_agent(o.user_agent.clone())
            .connect_timeout(o.connect_timeout)
            .read_timeout(o.read_timeout)
            .timeout(Duration::from_secs(120))
            .danger_accept_invalid_certs(!verify)
            .build()
            .map_err(|source| SearchError::Client {
                index: index.to_owned(),
                source,
            })
    }

    /// The base URL of a non-Hub index and the client that reached it.
    async fn v1_endpoint(&self, index: &str) -> Result<(String, reqwest::Client), SearchError> {
        let insecure = is_insecure(index, &self.registry.insecure_registries).map_err(|_| {
            SearchError::BadIndex {
                term: index.to_owned(),
            }
        })?;
        let client = self.search_client(index, !insecure)?;
        let ping = |base: String| {
            let client = client.clone();
            async move {
                // Any answer will do: dockerd only reads the standalone flag.
                client
                    .get(format!("{base}/v1/_ping"))
                    .send()
                    .await
                    .map(|_| base)
                    .map_err(|e| reason(&e))
            }
        };
        let https = match ping(format!("https://{index}")).await {
            Ok(base) => return Ok((base, client)),
            Err(e) => e,
        };
        if !insecure {
            return Err(SearchError::SecureEndpoint {
                endpoint: format!("https://{index}/v1/"),
                host: index.to_owned(),
                reason: https,
            });
        }
        tracing::debug!(%index, error = %https, "index is insecure: trying plain HTTP");
        match ping(format!("http://{index}")).await {
            Ok(base) => Ok((base, client)),
            Err(http) => Err(SearchError::Endpoint {
                endpoint: format!("https://{index}/v1/"),
                https,
                http,
            }),
        }
    }

    /// `GET /images/search`.
    pub async fn search(&self, req: SearchRequest) -> Result<Vec<SearchResult>, SearchError> {
        let f = &req.filters;
        f.validate(&FILTERS)?;
        if f.bool_or("is-automated", false)? {
            return Ok(Vec::new());
        }
        let official = f.bool_or("is-official", false)?;
        let mut min_stars = 0i64;
        for v in f.get("stars") {
            let n: i64 = v
                .parse()
                .map_err(|_| SearchError::BadStars { value: v.clone() })?;
            min_stars = min_stars.max(n);
        }
        let term = req.term.as_str();
        if term.starts_with("http://") || term.starts_with("https://") {
            return Err(SearchError::Scheme {
                term: term.to_owned(),
            });
        }
        let limit = if req.limit == 0 {
            DEFAULT_LIMIT
        } else {
            req.limit
        };
        if !(1..=100).contains(&limit) {
            return Err(SearchError::Limit { limit });
        }
        let (index, name) = split_term(term);
        let (base, client, name) = match index {
            None => (
                DOCKER_HUB_INDEX.to_owned(),
                self.search_client("docker.io", true)?,
                name.strip_prefix("library/").unwrap_or(name),
            ),
            Some(index) => {
                split_host_port(index).map_err(|_| SearchError::BadIndex {
                    term: term.to_owned(),
                })?;
                let (base, client) = self.v1_endpoint(index).await?;
                (base, client, name)
            }
        };
        let url = format!("{base}/v1/search?q={}&n={limit}", query_escape(name));
        let mut request = client.get(&url).header("X-Docker-Token", "true");
        if let Some(c) = req.credentials.as_ref().filter(|c| !c.username.is_empty()) {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        tracing::debug!(%url, "image search");
        let transit = |source| SearchError::Request {
            url: url.clone(),
            source,
        };
        let mut resp = request.send().await.map_err(transit)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(SearchError::Status {
                status: resp.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transit)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE {
                return Err(SearchError::TooLarge { url });
            }
        }
        let results: SearchResults =
            serde_json::from_slice(&body).map_err(|source| SearchError::Decode { source })?;
        Ok(results
            .results
            .into_iter()
            .filter(|r| !f.contains("is-official") || r.is_official == official)
            .filter(|r| !f.contains("stars") || r.star_count >= min_stars)
            .map(|r| SearchResult {
                is_automated: false,
                ..r
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_pick_the_index_as_dockerd() {
        assert_eq!(split_term("busybox"), (None, "busybox"));
        assert_eq!(split_term("library/busybox"), (None, "library/busybox"));
        assert_eq!(split_term("team/app"), (None, "team/app"));
        assert_eq!(split_term("docker.io/team/app"), (None, "team/app"));
        assert_eq!(
            split_term("127.0.0.1:5000/foo"),
            (Some("127.0.0.1:5000"), "foo")
        );
        assert_eq!(split_term("localhost/a/b"), (Some("localhost"), "a/b"));
        assert_eq!(split_term("quay.io/x"), (Some("quay.io"), "x"));
        assert_eq!(query_escape("a b/c&d"), "a+b%2Fc%26d");
    }
}
