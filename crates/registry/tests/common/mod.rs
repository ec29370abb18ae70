//! Test fixtures: a real `docker-registry` on loopback, a logging fault
//! injecting HTTP proxy in front of it, and a small Bearer token server.
//!
//! Everything listens on 127.0.0.1 with ports picked by the kernel; every
//! fixture stops its process or tasks on drop.
#![allow(dead_code)]

pub mod images;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How a test registry authenticates.
pub enum RegistryAuth {
    None,
    /// htpasswd Basic auth with one user.
    Htpasswd {
        user: String,
        pass: String,
    },
}

/// A `docker-registry serve` process with its own storage; killed on drop.
pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub async fn start(auth: RegistryAuth) -> anyhow::Result<Registry> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("storage");
        std::fs::create_dir(&root)?;
        let auth_yaml = match &auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Htpasswd { user, pass } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()?;
                if !out.status.success() {
                    bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: wharf-test-realm\n    path: {}\n",
                    path.display()
                )
            }
        };
        // The port is picked by binding :0 and released just before the
        // registry binds it; retry a few times in the unlikely case of a race.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: wharf-test-secret\n{auth_yaml}",
                    root.display()
                ),
            )?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawn docker-registry")?;
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let mut child = child;
            if wait_ready(&mut child, addr).await {
                return Ok(Registry { child, addr, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "docker-registry did not become ready on port {port}; log:\n{}",
                std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
            );
        }
        bail!("no free port for docker-registry")
    }

    /// `127.0.0.1:PORT`, usable as a registry host in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

async fn wait_ready(child: &mut Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let req = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).await.is_ok() {
                let mut buf = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
                let head = String::from_utf8_lossy(&buf);
                if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 401") {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request seen by a [`Proxy`].
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub status: u16,
}

impl Logged {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Tokens issued by the [`TokenServer`]: token → (granted scopes, expiry).
type Grants = Arc<Mutex<HashMap<String, (Vec<String>, Instant)>>>;

/// Fault and auth behaviours of a [`Proxy`], changeable while it runs.
#[derive(Default)]
pub struct Behaviour {
    /// Answer this many next requests with this status (500, 429, ...).
    pub fail_next: AtomicUsize,
    pub fail_status: Mutex<Option<(u16, Option<String>)>>,
    /// Cut the connection after this many body bytes of the next GET of a
    /// blob whose path ends with the digest.
    pub cut_blob: Mutex<Option<(String, usize)>>,
    /// Flip a byte in every GET of this blob.
    pub corrupt_blob: Mutex<Option<String>>,
    /// Drop `Range` headers (the registry then answers 200).
    pub ignore_range: std::sync::atomic::AtomicBool,
    /// Redirect blob GETs to this base URL (same path).
    pub redirect_blobs_to: Mutex<Option<String>>,
    /// Require Bearer tokens from this token server.
    pub bearer: Mutex<Option<BearerCheck>>,
}

#[derive(Clone)]
pub struct BearerCheck {
    pub realm: String,
    pub service: String,
    pub grants: Grants,
}

/// A logging HTTP/1.1 proxy in front of a registry, speaking just enough
/// HTTP for reqwest and the registry.
pub struct Proxy {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Logged>>>,
    pub behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Behaviour::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .build()?;
        let (l2, b2) = (log.clone(), behaviour.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let (log, behaviour, client) = (l2.clone(), b2.clone(), client.clone());
                tokio::spawn(async move {
                    let _ = serve_conn(sock, upstream, log, behaviour, client).await;
                });
            }
        });
        Ok(Proxy {
            addr,
            log,
            behaviour,
            task,
        })
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }

    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<&str>) {
        *self.behaviour.fail_status.lock().unwrap() =
            Some((status, retry_after.map(str::to_owned)));
        self.behaviour.fail_next.store(n, Ordering::SeqCst);
    }
}

struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> anyhow::Result<Option<RawRequest>> {
    // Anything that does not start like an HTTP request line (a TLS
    // ClientHello from a client trying HTTPS first) is hung up on.
    let first = r.fill_buf().await?;
    if first.is_empty() {
        return Ok(None);
    }
    if !first[0].is_ascii_uppercase() {
        bail!("not an HTTP request");
    }
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        bail!("bad request line {line:?}");
    };
    if !version.starts_with("HTTP/1.") {
        bail!("not HTTP/1: {line:?}");
    }
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await? == 0 {
            bail!("eof in headers");
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').context("bad header")?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut req = RawRequest {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            if size == 0 {
                // Trailers until the empty line.
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t).await?;
                    if t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk).await?;
            chunk.truncate(size);
            req.body.extend_from_slice(&chunk);
        }
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse()?;
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        req.body = body;
    }
    Ok(Some(req))
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status")
}

async fn write_response(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let mut has_len = false;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("content-length") {
            has_len = true;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    w.write_all(out.as_bytes()).await?;
    if !head_only {
        w.write_all(body).await?;
    }
    w.flush().await
}

fn registry_repo(path: &str) -> Option<(String, &'static str)> {
    // /v2/<name>/(manifests|blobs|tags)/...
    let p = path
        .split('?')
        .next()
        .unwrap_or(path)
        .strip_prefix("/v2/")?;
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some(i) = p.find(marker) {
            return Some((p[..i].to_owned(), marker));
        }
    }
    None
}

fn query_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let q = path.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// The scopes a request needs (pull for reads, pull,push for writes, plus
/// pull on a mount source).
fn needed_scopes(method: &str, path: &str) -> Vec<String> {
    let Some((repo, _)) = registry_repo(path) else {
        return vec![];
    };
    let write = !matches!(method, "GET" | "HEAD");
    let mut out = vec![format!(
        "repository:{repo}:{}",
        if write { "pull,push" } else { "pull" }
    )];
    if let Some(from) = query_param(path, "from") {
        out.push(format!("repository:{from}:pull"));
    }
    out
}

fn scope_granted(grants: &[String], needed: &str) -> bool {
    let Some((res, actions)) = needed.rsplit_once(':') else {
        return false;
    };
    actions.split(',').all(|a| {
        grants.iter().any(|g| {
            g.rsplit_once(':')
                .is_some_and(|(gr, ga)| gr == res && ga.split(',').any(|x| x == a || x == "*"))
        })
    })
}

async fn serve_conn(
    sock: TcpStream,
    upstream: SocketAddr,
    log: Arc<Mutex<Vec<Logged>>>,
    behaviour: Arc<Behaviour>,
    client: reqwest::Client,
) -> anyhow::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    while let Some(req) = read_request(&mut r).await? {
        let head_only = req.method == "HEAD";
        let logged = Logged {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.iter().cloned().collect(),
            status: 0,
        };
        let record = |mut l: Logged, status: u16| {
            l.status = status;
            log.lock().unwrap().push(l);
        };

        // 1. Injected failures.
        if behaviour
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let (status, retry_after) = behaviour
                .fail_status
                .lock()
                .unwrap()
                .clone()
                .unwrap_or((500, None));
            let mut h = vec![("content-type".to_owned(), "text/plain".to_owned())];
            if let Some(ra) = retry_after {
                h.push(("retry-after".to_owned(), ra));
            }
            record(logged, status);
            write_response(&mut w, status, &h, b"injected failure", head_only).await?;
            continue;
        }

        // 2. Bearer auth in front of the registry.
        let bearer = behaviour.bearer.lock().unwrap().clone();
        if let Some(b) = bearer {
            let needed = needed_scopes(&req.method, &req.path);
            let token = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "));
            let ok = token.is_some_and(|t| {
                let grants = b.grants.lock().unwrap();
                grants.get(t).is_some_and(|(g, exp)| {
                    Instant::now() < *exp && needed.iter().all(|n| scope_granted(g, n))
                })
            });
            if !ok {
                let mut ch = format!(r#"Bearer realm="{}",service="{}""#, b.realm, b.service);
                if !needed.is_empty() {
                    ch.push_str(&format!(r#",scope="{}""#, needed.join(" ")));
                }
                let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
                let h = vec![
                    ("www-authenticate".to_owned(), ch),
                    ("content-type".to_owned(), "application/json".to_owned()),
                    (
                        "docker-distribution-api-version".to_owned(),
                        "registry/2.0".to_owned(),
                    ),
                ];
                record(logged, 401);
                write_response(&mut w, 401, &h, body, head_only).await?;
                continue;
            }
        }

        let is_blob_get = req.method == "GET" && req.path.contains("/blobs/sha256:");

        // 3. Redirect blob downloads elsewhere.
        let redirect = behaviour.redirect_blobs_to.lock().unwrap().clone();
        if let (true, Some(base)) = (is_blob_get, redirect) {
            let h = vec![("location".to_owned(), format!("{base}{}", req.path))];
            record(logged, 307);
            write_response(&mut w, 307, &h, b"", head_only).await?;
            continue;
        }

        // 4. Forward.
        let url = format!("http://{upstream}{}", req.path);
        let method = reqwest::Method::from_bytes(req.method.as_bytes())?;
        let mut rb = client.request(method, &url);
        let ignore_range = behaviour.ignore_range.load(Ordering::SeqCst);
        for (k, v) in &req.headers {
            if matches!(
                k.as_str(),
                "connection" | "transfer-encoding" | "content-length" | "keep-alive"
            ) {
                continue;
            }
            if ignore_range && k == "range" {
                continue;
            }
            rb = rb.header(k.as_str(), v.as_str());
        }
        if !req.body.is_empty() || matches!(req.method.as_str(), "PUT" | "POST" | "PATCH") {
            rb = rb.body(req.body.clone());
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let mut headers = Vec::new();
        for (k, v) in resp.headers() {
            let k = k.as_str().to_ascii_lowercase();
            if matches!(
                k.as_str(),
                "connection" | "transfer-encoding" | "keep-alive"
            ) {
                continue;
            }
            if k == "content-length" && !head_only {
                continue;
            }
            headers.push((k, v.to_str().unwrap_or_default().to_owned()));
        }
        let mut body = resp.bytes().await?.to_vec();
        record(logged.clone(), status);

        if is_blob_get && status / 100 == 2 {
            let corrupt = behaviour.corrupt_blob.lock().unwrap().clone();
            if corrupt.is_some_and(|d| req.path.ends_with(&d)) && !body.is_empty() {
                let i = body.len() / 2;
                body[i] ^= 0xff;
            }
            let cut = {
                let mut c = behaviour.cut_blob.lock().unwrap();
                match c.as_ref() {
                    Some((d, n)) if req.path.ends_with(d.as_str()) && *n < body.len() => c.take(),
                    _ => None,
                }
            };
            if let Some((_, n)) = cut {
                // Announce the full length, send part of it, hang up.
                headers.push(("content-length".to_owned(), body.len().to_string()));
                let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                for (k, v) in &headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                w.write_all(out.as_bytes()).await?;
                w.write_all(&body[..n]).await?;
                w.flush().await?;
                let _ = w.shutdown().await;
                return Ok(());
            }
        }
        write_response(&mut w, status, &headers, &body, head_only).await?;
        if req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            break;
        }
    }
    Ok(())
}

/// A token request seen by the [`TokenServer`].
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    pub service: Option<String>,
    pub user: Option<String>,
}

/// A tiny Bearer token server: Basic credentials (one user) get every scope
/// they ask for; anonymous callers get `pull` only; wrong credentials get 401.
pub struct TokenServer {
    pub addr: SocketAddr,
    pub grants: Grants,
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenServer {
    pub async fn start(user: &str, pass: &str, expires_in: u64) -> anyhow::Result<TokenServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let grants: Grants = Arc::default();
        let requests: Arc<Mutex<Vec<TokenRequest>>> = Arc::default();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let user = user.to_owned();
        let (g2, r2) = (grants.clone(), requests.clone());
        let counter = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let (grants, requests, expected, user, counter) = (
                    g2.clone(),
                    r2.clone(),
                    expected.clone(),
                    user.clone(),
                    counter.clone(),
                );
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    while let Ok(Some(req)) = read_request(&mut r).await {
                        let query = req.path.split_once('?').map(|x| x.1).unwrap_or_default();
                        let mut scopes = Vec::new();
                        let mut service = None;
                        for kv in query.split('&') {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            let v = url_decode(v);
                            match k {
                                "scope" => scopes.extend(
                                    v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned),
                                ),
                                "service" => service = Some(v),
                                _ => {}
                            }
                        }
                        let auth = req.header("authorization");
                        let authed = auth == Some(expected.as_str());
                        requests.lock().unwrap().push(TokenRequest {
                            scopes: scopes.clone(),
                            service,
                            user: authed.then(|| user.clone()),
                        });
                        if auth.is_some() && !authed {
                            let _ = write_response(
                                &mut w,
                                401,
                                &[],
                                br#"{"details":"incorrect username or password"}"#,
                                false,
                            )
                            .await;
                            continue;
                        }
                        let granted: Vec<String> = if authed {
                            scopes
                        } else {
                            scopes
                                .iter()
                                .filter_map(|s| {
                                    let (res, actions) = s.rsplit_once(':')?;
                                    actions
                                        .split(',')
                                        .any(|a| a == "pull")
                                        .then(|| format!("{res}:pull"))
                                })
                                .collect()
                        };
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let token = format!("tok-{n}-{}", std::process::id());
                        grants.lock().unwrap().insert(
                            token.clone(),
                            (granted, Instant::now() + Duration::from_secs(expires_in)),
                        );
                        // Alternate the field name to exercise both spellings.
                        let field = if n % 2 == 0 { "token" } else { "access_token" };
                        let body = format!(r#"{{"{field}":"{token}","expires_in":{expires_in}}}"#);
                        let h = vec![("content-type".to_owned(), "application/json".to_owned())];
                        if write_response(&mut w, 200, &h, body.as_bytes(), false)
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        Ok(TokenServer {
            addr,
            grants,
            requests,
            task,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Makes `proxy` demand this server's tokens.
    pub fn protect(&self, proxy: &Proxy) {
        *proxy.behaviour.bearer.lock().unwrap() = Some(BearerCheck {
            realm: self.realm(),
            service: "wharf-test-registry".to_owned(),
            grants: self.grants.clone(),
        });
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A temp directory for a docker config.
pub fn config_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A unique repository name for this test.
pub fn unique_repo(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
