//! HTTP/1.1 over a unix socket or TCP with hyper: one connection per
//! request, the status checked once ([`Client::send`]), JSON helpers on
//! top, and connection hijacking for attach/exec.

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::{ClientError, Host, MAX_API_VERSION};

/// A request body: empty, in memory, or streamed from a reader.
#[derive(Debug)]
pub struct Body(BoxBody<Bytes, std::io::Error>);

impl Body {
    pub fn empty() -> Body {
        Body(Empty::new().map_err(|never| match never {}).boxed())
    }

    pub fn bytes(b: impl Into<Bytes>) -> Body {
        Body(Full::new(b.into()).map_err(|never| match never {}).boxed())
    }

    /// A JSON document.
    pub fn json<T: serde::Serialize>(v: &T) -> Body {
        // Serializing plain data to a Vec cannot fail.
        Body::bytes(serde_json::to_vec(v).unwrap_or_default())
    }

    /// Streams `r` until EOF (image load, import, archive uploads).
    pub fn reader(r: impl tokio::io::AsyncRead + Send + Sync + 'static) -> Body {
        let s = tokio_util::io::ReaderStream::new(r).map_ok(Frame::data);
        Body(http_body_util::BodyExt::boxed(StreamBody::new(s)))
    }
}

/// A hijacked attach/exec connection: raw bytes both ways. Shutting down
/// its write half tells the daemon that stdin ended.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// The TLS connector of a `tcp://` client.
#[derive(Clone)]
struct Tls(tokio_rustls::TlsConnector);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

/// A Docker Engine API client bound to one host and API version.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: String,
    tls: Option<Tls>,
}

impl Client {
    /// A client speaking [`MAX_API_VERSION`] without asking the daemon.
    pub fn new(host: Host) -> Client {
        Client {
            host,
            version: MAX_API_VERSION.to_owned(),
            tls: None,
        }
    }

    /// Pings the daemon and settles on the lower of its API version and ours.
    pub async fn connect(host: Host) -> Result<Client, ClientError> {
        Client::connect_tls(host, None).await
    }

    /// [`Client::connect`], over TLS when `tls` is given (tcp hosts only).
    pub async fn connect_tls(
        host: Host,
        tls: Option<&crate::tls::TlsOptions>,
    ) -> Result<Client, ClientError> {
        let mut c = Client::new(host);
        if let Some(t) = tls {
            c.tls = Some(Tls(t.connector().map_err(ClientError::Tls)?));
        }
        let server = c.ping().await?;
        if let Some(v) = server {
            c.version = lower_version(&v, MAX_API_VERSION).to_owned();
        }
        Ok(c)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The negotiated API version (`1.50`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `GET /_ping`: the daemon's `Api-Version` header, if any.
    pub async fn ping(&self) -> Result<Option<String>, ClientError> {
        let resp = self.send(Method::GET, "/_ping", Body::empty(), &[]).await?;
        Ok(resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    async fn sender(&self) -> Result<SendRequest<BoxBody<Bytes, std::io::Error>>, ClientError> {
        let connect_err = |source| ClientError::Connect {
            host: self.host.to_string(),
            source,
        };
        match &self.host {
            Host::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(connect_err)?;
                handshake(s).await
            }
            Host::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                match &self.tls {
                    None => handshake(s).await,
                    Some(Tls(connector)) => {
                        let name = crate::tls::server_name(a).map_err(ClientError::Tls)?;
                        let s = connector.connect(name, s).await.map_err(|source| {
                            ClientError::TlsHandshake {
                                host: self.host.to_string(),
                                source,
                            }
                        })?;
                        handshake(s).await
                    }
                }
            }
        }
    }

    /// A failed request; a TLS alert from the daemon is reported as a
    /// failed handshake: a TLS 1.3 server refuses a client certificate
    /// only after the client's side of the handshake has completed, so the
    /// refusal arrives with the first response.
    fn request_failed(&self, source: hyper::Error) -> ClientError {
        if self.tls.is_some() {
            let mut cause = std::error::Error::source(&source);
            while let Some(e) = cause {
                let tls = e
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
                    .or_else(|| e.downcast_ref::<tokio_rustls::rustls::Error>());
                if let Some(tls) = tls {
                    return ClientError::TlsHandshake {
                        host: self.host.to_string(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, tls.clone()),
                    };
                }
                cause = e.source();
            }
        }
        ClientError::Http {
            what: "request",
            source,
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Request<BoxBody<Bytes, std::io::Error>>, ClientError> {
        let uri = if path.starts_with("/_ping") {
            path.to_owned()
        } else {
            format!("/v{}{path}", self.version)
        };
        let mut b = Request::builder()
            .method(method)
            .uri(&uri)
            .header("host", "docker")
            .header("user-agent", concat!("wharf/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        b.body(body.0).map_err(|e| ClientError::Request {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Sends a request; a status >= 400 becomes [`ClientError::Daemon`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError> {
        let req = self.request(method, path, body, headers)?;
        let mut tx = self.sender().await?;
        let resp = tx
            .send_request(req)
            .await
            .map_err(|source| self.request_failed(source))?;
        check(resp).await
    }

    /// `GET path` decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.send(Method::GET, path, Body::empty(), &[]).await?;
        decode(path, resp).await
    }

    /// `GET path`, the body as sent (key order kept).
    pub async fn get_raw(&self, path: &str) -> Result<Bytes, ClientError> {
        let resp = self.send(Method::GET, path, Body::empty(), &[]).await?;
        read_all(resp.into_body()).await
    }

    /// `POST path` with an optional JSON body, the answer decoded as JSON.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let (body, headers) = json_body(body);
        let resp = self.send(Method::POST, path, body, &headers).await?;
        decode(path, resp).await
    }

    /// `POST path` with an optional JSON body; the answer is read and dropped.
    pub async fn post(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(), ClientError> {
        let (body, headers) = json_body(body);
        let resp = self.send(Method::POST, path, body, &headers).await?;
        read_all(resp.into_body()).await.map(drop)
    }

    /// `DELETE path`, the answer decoded as JSON (`null` when empty).
    pub async fn delete(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let resp = self.send(Method::DELETE, path, Body::empty(), &[]).await?;
        let body = read_all(resp.into_body()).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })
    }

    /// `POST path` with `Upgrade: tcp`; after `101 Switching Protocols` the
    /// connection is a raw stream.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, ClientError> {
        let (body, mut headers) = json_body(body);
        headers.push(("connection", "Upgrade".to_owned()));
        headers.push(("upgrade", "tcp".to_owned()));
        let req = self.request(Method::POST, path, body, &headers)?;
        let mut tx = self.sender().await?;
        let resp = tx
            .send_request(req)
            .await
            .map_err(|source| self.request_failed(source))?;
        let resp = check(resp).await?;
        let status = resp.status().as_u16();
        if status != 101 {
            return Err(ClientError::NoUpgrade {
                path: path.to_owned(),
                status,
            });
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|source| ClientError::Http {
                what: "upgrade",
                source,
            })?;
        Ok(TokioIo::new(up))
    }
}

/// HTTP/1.1 over an established stream; the connection is driven (with
/// upgrades, for attach/exec) by its own task.
async fn handshake<S>(s: S) -> Result<SendRequest<BoxBody<Bytes, std::io::Error>>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|source| ClientError::Http {
            what: "handshake",
            source,
        })?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            tracing::debug!(?err, "connection closed with an error");
        }
    });
    Ok(tx)
}

fn json_body(body: Option<&serde_json::Value>) -> (Body, Vec<(&'static str, String)>) {
    match body {
        Some(v) => (
            Body::json(v),
            vec![("content-type", "application/json".to_owned())],
        ),
        None => (Body::empty(), Vec::new()),
    }
}

/// The lower of two `major.minor` versions.
pub(crate) fn lower_version<'a>(a: &'a str, b: &'a str) -> &'a str {
    let key = |v: &str| -> (u32, u32) {
        let (maj, min) = v.split_once('.').unwrap_or((v, "0"));
        (maj.parse().unwrap_or(0), min.parse().unwrap_or(0))
    };
    if key(a) <= key(b) { a } else { b }
}

async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
    let status = resp.status().as_u16();
    if status < 400 {
        return Ok(resp);
    }
    let body = read_all(resp.into_body()).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(&body).trim().to_owned();
            if t.is_empty() {
                format!("status {status}")
            } else {
                t
            }
        });
    Err(ClientError::Daemon { status, message })
}

/// Reads a whole response body.
pub(crate) async fn read_all(body: Incoming) -> Result<Bytes, ClientError> {
    Ok(body
        .collect()
        .await
        .map_err(|source| ClientError::Http {
            what: "response body",
            source,
        })?
        .to_bytes())
}

async fn decode<T: DeserializeOwned>(
    path: &str,
    resp: Response<Incoming>,
) -> Result<T, ClientError> {
    let body = read_all(resp.into_body()).await?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|source| ClientError::Decode {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_version_compares_numerically() {
        assert_eq!(lower_version("1.51", "1.50"), "1.50");
        assert_eq!(lower_version("1.9", "1.50"), "1.9");
        assert_eq!(lower_version("1.45", "1.50"), "1.45");
    }
}
