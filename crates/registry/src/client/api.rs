//! The registry API calls of [`RegistryClient`], one method each, and the
//! types they return: manifests by tag or digest, blob existence checks and
//! (ranged) downloads, upload sessions (monolithic, chunked, cross-repository
//! mounts). Every call goes through the parent module's request pipeline.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::http::{
    content_type, error_from_response, header_str, header_value, location, read_limited,
};
use super::{Access, ClientError, RegistryClient, Request, Target};

/// Media types a manifest GET accepts: Docker schema 2 manifest and list,
/// OCI manifest and index.
pub const MANIFEST_ACCEPT: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// Largest manifest accepted (docker uses the same 4 MiB bound).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

const ACCEPT_VALUE: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A request body that can be rebuilt for each retry.
#[derive(Debug, Clone)]
pub enum UploadBody {
    /// Bytes in memory.
    Bytes(Bytes),
    /// `len` bytes of a local file starting at `offset`.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl UploadBody {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            UploadBody::Bytes(b) => b.len() as u64,
            UploadBody::File { len, .. } => *len,
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) async fn to_body(&self) -> Result<reqwest::Body, ClientError> {
        match self {
            UploadBody::Bytes(b) => Ok(reqwest::Body::from(b.clone())),
            UploadBody::File { path, offset, len } => {
                use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
                let err = |source| ClientError::UploadSource {
                    path: path.clone(),
                    source,
                };
                let mut f = tokio::fs::File::open(path).await.map_err(err)?;
                f.seek(std::io::SeekFrom::Start(*offset))
                    .await
                    .map_err(err)?;
                let stream = futures_util::stream::unfold(
                    (f.take(*len), false),
                    |(mut r, done)| async move {
                        if done {
                            return None;
                        }
                        let mut buf = vec![0u8; 64 << 10];
                        match r.read(&mut buf).await {
                            Ok(0) => None,
                            Ok(n) => {
                                buf.truncate(n);
                                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), (r, false)))
                            }
                            Err(e) => Some((Err(e), (r, true))),
                        }
                    },
                );
                Ok(reqwest::Body::wrap_stream(stream))
            }
        }
    }
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct ManifestResponse {
    /// `Content-Type` of the response, without parameters.
    pub media_type: Option<String>,
    /// The `Docker-Content-Digest` header, when sent.
    pub digest: Option<String>,
    /// The manifest bytes, exactly as served.
    pub bytes: Bytes,
}

/// A blob download in progress.
pub struct BlobResponse {
    response: reqwest::Response,
    url: String,
    /// Byte offset in the blob of the first byte of this body (`0` when the
    /// registry ignored the `Range` request).
    pub offset: u64,
    /// Total blob size, when the registry told it.
    pub total: Option<u64>,
}

impl BlobResponse {
    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.response
            .chunk()
            .await
            .map_err(|source| ClientError::Transport {
                method: Method::GET,
                url: self.url.clone(),
                source,
            })
    }
}

/// An open blob upload session.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub(super) endpoint: usize,
    pub(super) location: Url,
    /// Bytes the registry has received so far.
    pub offset: u64,
}

/// What a cross-repository mount request achieved.
#[derive(Debug)]
pub enum MountOutcome {
    /// The blob is now in the target repository.
    Mounted,
    /// The registry could not mount it and opened an upload instead.
    Upload(UploadSession),
}

/// The `pull` scope of a repository.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The `pull,push` scope of a repository.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

impl RegistryClient {
    /// Fetches a manifest by tag or digest, accepting the four manifest and
    /// index media types.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<ManifestResponse, ClientError> {
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{repo}/manifests/{reference}"),
            vec![pull_scope(repo)],
        );
        req.headers
            .insert(header::ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
        let resp = self.execute_read(&req).await?;
        if !resp.status().is_success() {
            return Err(error_from_response(&req.method, resp).await);
        }
        let media_type = content_type(&resp);
        let digest = header_str(&resp, "docker-content-digest");
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE).await?;
        Ok(ManifestResponse {
            media_type,
            digest,
            bytes,
        })
    }

    /// Uploads a manifest under a tag (or digest); returns the digest the
    /// registry reports, when it does.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Option<String>, ClientError> {
        let mut req = Request::new(
            Method::PUT,
            format!("/v2/{repo}/manifests/{reference}"),
            vec![push_scope(repo)],
        );
        req.headers
            .insert(header::CONTENT_TYPE, header_value(media_type));
        req.body = Some(UploadBody::Bytes(bytes));
        let idx = self.resolve(Access::Write).await?;
        let resp = self.execute(idx, &req).await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(error_from_response(&req.method, resp).await);
        }
        Ok(header_str(&resp, "docker-content-digest"))
    }

    /// The size of a blob in `repo`, or `None` when it does not exist there.
    pub async fn head_blob(&self, repo: &str, digest: &str) -> Result<Option<u64>, ClientError> {
        let mut req = Request::new(
            Method::HEAD,
            format!("/v2/{repo}/blobs/{digest}"),
            vec![push_scope(repo)],
        );
        req.follow_redirects = true;
        let idx = self.resolve(Access::Write).await?;
        let resp = self.execute(idx, &req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            // HEAD has no body: the size is in the header, not the body hint.
            s if s.is_success() => Ok(Some(
                header_str(&resp, "content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or_default(),
            )),
            _ => Err(error_from_response(&req.method, resp).await),
        }
    }

    /// Starts downloading a blob from byte `offset` (`Range: bytes=N-`).
    /// When the registry ignores the range, [`BlobResponse::offset`] is 0.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
        offset: u64,
    ) -> Result<BlobResponse, ClientError> {
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{repo}/blobs/{digest}"),
            vec![pull_scope(repo)],
        );
        req.follow_redirects = true;
        if offset > 0 {
            req.headers
                .insert(header::RANGE, header_value(&format!("bytes={offset}-")));
        }
        let resp = self.execute_read(&req).await?;
        let url = resp.url().to_string();
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let range = header_str(&resp, "content-range");
                let parsed = range.as_deref().and_then(parse_content_range);
                match parsed {
                    Some((start, total)) if start == offset => Ok(BlobResponse {
                        response: resp,
                        url,
                        offset,
                        total,
                    }),
                    _ => Err(ClientError::BadRange {
                        url,
                        requested: offset,
                        got: range,
                    }),
                }
            }
            StatusCode::OK => {
                let total = resp.content_length();
                Ok(BlobResponse {
                    response: resp,
                    url,
                    offset: 0,
                    total,
                })
            }
            _ => Err(error_from_response(&req.method, resp).await),
        }
    }

    /// Opens an upload session in `repo` (`POST /v2/<repo>/blobs/uploads/`).
    pub async fn start_upload(&self, repo: &str) -> Result<UploadSession, ClientError> {
        let req = Request::new(
            Method::POST,
            format!("/v2/{repo}/blobs/uploads/"),
            vec![push_scope(repo)],
        );
        let idx = self.resolve(Access::Write).await?;
        let resp = self.execute(idx, &req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(error_from_response(&req.method, resp).await);
        }
        Ok(UploadSession {
            endpoint: idx,
            location: location(&resp)?,
            offset: 0,
        })
    }

    /// Asks the registry to mount `digest` from repository `from` (same
    /// registry) into `repo` without uploading it.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &str,
        from: &str,
    ) -> Result<MountOutcome, ClientError> {
        let req = Request::new(
            Method::POST,
            format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
            vec![push_scope(repo), pull_scope(from)],
        );
        let idx = self.resolve(Access::Write).await?;
        let resp = self.execute(idx, &req).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(UploadSession {
                endpoint: idx,
                location: location(&resp)?,
                offset: 0,
            })),
            _ => Err(error_from_response(&req.method, resp).await),
        }
    }

    /// Sends one chunk (`PATCH` with `Content-Range`) and returns the
    /// session advanced past it.
    pub async fn upload_chunk(
        &self,
        repo: &str,
        session: UploadSession,
        chunk: UploadBody,
    ) -> Result<UploadSession, ClientError> {
        let len = chunk.len();
        if len == 0 {
            return Ok(session);
        }
        let end = session.offset + len - 1;
        let mut req = Request {
            method: Method::PATCH,
            target: Target::Url(session.location.clone()),
            headers: HeaderMap::new(),
            body: Some(chunk),
            scopes: vec![push_scope(repo)],
            follow_redirects: false,
        };
        req.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        req.headers
            .insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
        req.headers.insert(
            "content-range",
            header_value(&format!("{}-{end}", session.offset)),
        );
        let resp = self.execute(session.endpoint, &req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(error_from_response(&req.method, resp).await);
        }
        Ok(UploadSession {
            endpoint: session.endpoint,
            location: location(&resp)?,
            offset: end + 1,
        })
    }

    /// Completes an upload (`PUT ?digest=`), sending `body` as its last (or
    /// only, for a monolithic upload) part.
    pub async fn finish_upload(
        &self,
        repo: &str,
        session: UploadSession,
        digest: &str,
        body: Option<UploadBody>,
    ) -> Result<(), ClientError> {
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let len = body.as_ref().map_or(0, UploadBody::len);
        let mut req = Request {
            method: Method::PUT,
            target: Target::Url(url),
            headers: HeaderMap::new(),
            body,
            scopes: vec![push_scope(repo)],
            follow_redirects: false,
        };
        req.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        req.headers
            .insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
        let resp = self.execute(session.endpoint, &req).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(error_from_response(&req.method, resp).await);
        }
        Ok(())
    }
}

/// Parses `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
pub fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn accept_value_lists_all_types() {
        for t in MANIFEST_ACCEPT {
            assert!(ACCEPT_VALUE.contains(t));
        }
    }
}
