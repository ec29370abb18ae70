//! `/images/...` handlers: pull and import (`/images/create`), list,
//! inspect, history, tag, push, remove, prune, save (`/images/get`,
//! `/images/{name}/get`) and load.
//!
//! Image names contain slashes (`127.0.0.1:5000/team/app`), so every
//! `/images/{name}/<action>` route is one catch-all ([`by_name`]) that
//! splits the action off the end, as Docker's `{name:.*}` routes do.
//! Pulls and pushes answer Docker's chunked JSON progress stream; an
//! error before the first message is an HTTP error, one after it is sent
//! in-band (`{"errorDetail":{"message":...},"error":...}`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use serde_json::{Value, json};
use wharf_engine::ErrorKind;
use wharf_engine::images::{
    ImageServiceError, ImportRequest, Operation, Progress, PullRequest, PushRequest, Step,
};

use super::auth::registry_auth;
use super::query;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

impl From<ImageServiceError> for ApiError {
    fn from(e: ImageServiceError) -> ApiError {
        let kind = e.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(error = %e.full_message(), "image request failed");
        }
        ApiError {
            kind,
            message: e.full_message(),
        }
    }
}

/// Go's zero `time.Time`, as Docker renders it.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Every value of a repeated query parameter (`names=a&names=b`).
pub(crate) fn query_all(uri: &Uri, key: &str) -> Vec<String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (crate::query::decode(k) == key).then(|| crate::query::decode(v))
        })
        .collect()
}

fn json_stream(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\r');
    b.push(b'\n');
    Bytes::from(b)
}

/// Docker's `units.HumanSize`: decimal units, four significant digits.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig4(v), UNITS[i])
}

/// `%.4g` for values in `[0, 1000]`.
fn sig4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    #[allow(clippy::cast_possible_truncation)]
    let exp = v.log10().floor() as i32;
    let decimals = usize::try_from(3 - exp).unwrap_or(0);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Docker's progress text (`[=====>     ]  1.2MB/3.4MB`) for a wide output.
pub(crate) fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct =
        usize::try_from((u128::from(current) * 100 / u128::from(total) / 2).min(50)).unwrap_or(50);
    let numbers = if current > total {
        String::new()
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    format!("[{}>{}] {numbers}", "=".repeat(pct), " ".repeat(50 - pct))
}

/// One progress message in Docker's JSON.
pub(crate) fn render(p: &Progress) -> Value {
    match p {
        Progress::Status {
            id: Some(id),
            status,
        } => json!({"status": status, "id": id}),
        Progress::Status { id: None, status } => json!({"status": status}),
        Progress::Layer { id, status, bytes } => match bytes {
            Some((current, total)) => json!({
                "status": status,
                "progressDetail": {"current": current, "total": total},
                "progress": progress_bar(*current, *total),
                "id": id,
            }),
            None => json!({"status": status, "progressDetail": {}, "id": id}),
        },
        Progress::Pushed { tag, digest, size } => json!({
            "progressDetail": {},
            "aux": {"Tag": tag, "Digest": digest, "Size": size},
        }),
    }
}

fn error_line(message: &str) -> Value {
    json!({"errorDetail": {"message": message}, "error": message})
}

/// Streams an operation's progress; fails the request when the operation
/// fails before its first message.
async fn progress_response(mut op: Operation) -> ApiResult<Response> {
    let first = match op.next().await {
        Some(Step::Done(Some(e))) => {
            return Err(ApiError {
                kind: e.kind(),
                message: e.full_message(),
            });
        }
        other => other,
    };
    let stream = futures_util::stream::unfold((op, first), |(mut op, pending)| async move {
        let step = match pending {
            Some(s) => Some(s),
            None => op.next().await,
        };
        let bytes = match step? {
            Step::Progress(p) => line(&render(&p)),
            Step::Done(None) => return None,
            Step::Done(Some(e)) => line(&error_line(&e.full_message())),
        };
        Some((Ok::<_, std::io::Error>(bytes), (op, None)))
    });
    Ok(json_stream(Body::from_stream(stream)))
}

/// The request body as an `AsyncRead` (unbounded: image archives are large).
fn body_reader(req: Request) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    tokio_util::io::StreamReader::new(stream)
}

/// `POST /images/create`: a pull (`fromImage`) or an import (`fromSrc`).
pub async fn create(State(s): State<Arc<AppState>>, req: Request) -> ApiResult<Response> {
    let q = query(req.uri());
    let str_of = |k: &str| q.str(k).unwrap_or("").to_owned();
    let platform = q.str("platform").map(str::to_owned);
    if let Some(src) = q.str("fromSrc") {
        let import = ImportRequest {
            source: src.to_owned(),
            repo: str_of("repo"),
            tag: str_of("tag"),
            changes: query_all(req.uri(), "changes"),
            message: q
                .str("message")
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
            platform,
        };
        let id = s
            .engine
            .image_service
            .import(import, body_reader(req))
            .await?;
        return Ok(json_stream(Body::from(line(
            &json!({"status": id.to_string()}),
        ))));
    }
    let image = str_of("fromImage");
    if image.is_empty() {
        return Err(ApiError::invalid("fromImage or fromSrc is required"));
    }
    let pull = PullRequest {
        image,
        tag: str_of("tag"),
        platform,
        credentials: registry_auth(req.headers())?,
    };
    let op = s.engine.image_service.pull(pull)?;
    progress_response(op).await
}

/// `GET /images/json`.
pub async fn list(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let q = query(&uri);
    let rows = s
        .engine
        .image_service
        .list(q.filters()?, q.bool("shared-size")?)
        .await?;
    Ok(axum::Json(rows).into_response())
}

/// `POST /images/prune`.
pub async fn prune(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    let report = s.engine.image_service.prune(query(&uri).filters()?).await?;
    let deleted = if report.images_deleted.is_empty() {
        Value::Null
    } else {
        json!(report.images_deleted)
    };
    Ok(axum::Json(json!({
        "ImagesDeleted": deleted,
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}

async fn save_response(s: &AppState, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::invalid("no image names given (names=...)"));
    }
    let mut rx = s.engine.image_service.save(names).await?;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(State(s): State<Arc<AppState>>, uri: Uri) -> ApiResult<Response> {
    save_response(&s, query_all(&uri, "names")).await
}

/// `POST /images/load?quiet=`.
pub async fn load(State(s): State<Arc<AppState>>, req: Request) -> ApiResult<Response> {
    query(req.uri()).bool("quiet")?;
    let messages = s.engine.image_service.load(body_reader(req)).await?;
    let body: Vec<u8> = messages
        .iter()
        .flat_map(|m| line(&json!({"stream": format!("{m}\n")})).to_vec())
        .collect();
    Ok(json_stream(Body::from(body)))
}

/// `/images/{name}/{json,history,get,push,tag}` and `DELETE /images/{name}`.
pub async fn by_name(
    State(s): State<Arc<AppState>>,
    method: Method,
    Path(rest): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (name, action) = match rest.rsplit_once('/') {
        Some((n, a))
            if method != Method::DELETE
                && matches!(a, "json" | "history" | "get" | "push" | "tag") =>
        {
            (n.to_owned(), a)
        }
        _ => (rest.clone(), ""),
    };
    let q = query(req.uri());
    let svc = &s.engine.image_service;
    match (method.clone(), action) {
        (Method::GET, "json") => {
            let mut v = json!(svc.inspect(&name).await?);
            // Go clients parse these as times: Docker sends the zero time
            // rather than an empty string.
            for ptr in ["/Created", "/Metadata/LastTagTime"] {
                if let Some(t) = v.pointer_mut(ptr)
                    && t.as_str() == Some("")
                {
                    *t = json!(ZERO_TIME);
                }
            }
            Ok(axum::Json(v).into_response())
        }
        (Method::GET, "history") => Ok(axum::Json(svc.history(&name).await?).into_response()),
        (Method::GET, "get") => save_response(&s, vec![name]).await,
        (Method::POST, "tag") => {
            let repo = q.str("repo").unwrap_or("");
            if repo.is_empty() {
                return Err(ApiError::invalid("repository name (repo) is required"));
            }
            svc.tag(&name, repo, q.str("tag").unwrap_or("")).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        (Method::POST, "push") => {
            let push = PushRequest {
                name,
                tag: q.str("tag").unwrap_or("").to_owned(),
                credentials: registry_auth(req.headers())?,
            };
            progress_response(svc.push(push)?).await
        }
        (Method::DELETE, "") => {
            // `noprune` keeps untagged parents; wharf keeps no parent chain,
            // so there is nothing for it to keep.
            q.bool("noprune")?;
            let items = svc.remove(&name, q.bool("force")?).await?;
            Ok(axum::Json(items).into_response())
        }
        _ => Err(ApiError::not_found(format!(
            "page not found: {method} /images/{rest}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(528), "528B");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(2_290_000), "2.29MB");
        assert_eq!(human_size(999_999), "1000kB");
        assert_eq!(human_size(10_000_000_000), "10GB");
        let bar = progress_bar(500, 1000);
        assert_eq!(
            bar,
            format!("[{}>{}]     500B/1kB", "=".repeat(25), " ".repeat(25))
        );
        assert!(progress_bar(5, 0).ends_with("5B"));
    }

    #[test]
    fn progress_json() {
        let v = render(&Progress::Status {
            id: Some("latest".into()),
            status: "Pulling from library/busybox".into(),
        });
        assert_eq!(
            v,
            json!({"status": "Pulling from library/busybox", "id": "latest"})
        );
        let v = render(&Progress::Layer {
            id: "abc".into(),
            status: "Pull complete".into(),
            bytes: None,
        });
        assert_eq!(v["progressDetail"], json!({}));
        let v = render(&Progress::Layer {
            id: "abc".into(),
            status: "Downloading".into(),
            bytes: Some((1, 2)),
        });
        assert_eq!(v["progressDetail"], json!({"current": 1, "total": 2}));
        assert_eq!(error_line("boom")["errorDetail"]["message"], "boom");
    }

    #[test]
    fn repeated_parameters() {
        let uri: Uri = "/images/get?names=a%2Fb&x=1&names=c".parse().unwrap();
        assert_eq!(query_all(&uri, "names"), vec!["a/b", "c"]);
    }
}
