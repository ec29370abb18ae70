//! Typed calls for the endpoints the `wharf` command line uses. Each is a
//! thin wrapper: it builds the path and query, sends, and decodes. Bodies
//! that stream (logs, stats, export, save, progress, events) come back as
//! the open response body for the caller to consume as it arrives.

use hyper::Method;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::Value;

use crate::stream::JsonStream;
use crate::transport::read_all;
use crate::{Body, Client, ClientError, Hijacked, Query, encode};

/// `POST /containers/create` and `POST /containers/{id}/exec` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    pub id: String,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

/// `POST /containers/{id}/wait` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    #[serde(default)]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    #[serde(default)]
    pub message: String,
}

/// A pending `wait`: the daemon has acknowledged it (headers received);
/// [`PendingWait::result`] gives the exit once it happens.
#[derive(Debug)]
pub struct PendingWait {
    body: Incoming,
}

impl PendingWait {
    pub async fn result(self) -> Result<WaitResponse, ClientError> {
        let b = read_all(self.body).await?;
        serde_json::from_slice(&b).map_err(|source| ClientError::Decode {
            path: "/containers/wait".into(),
            source,
        })
    }
}

fn id_path(kind: &str, id: &str, tail: &str) -> String {
    format!("/{kind}/{}{tail}", encode(id))
}

/// Image names keep their slashes and colons in paths.
fn image_path(name: &str, tail: &str) -> String {
    let enc: String = name
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
        .replace("%3A", ":")
        .replace("%40", "@");
    format!("/images/{enc}{tail}")
}

impl Client {
    // ---- containers -------------------------------------------------------

    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        config: &Value,
    ) -> Result<CreateResponse, ClientError> {
        let q = Query::new().opt("name", name).opt("platform", platform);
        self.post_json(&format!("/containers/create{q}"), Some(config))
            .await
    }

    pub async fn container_list(&self, q: Query) -> Result<Vec<Value>, ClientError> {
        self.get_json(&format!("/containers/json{q}")).await
    }

    pub async fn container_inspect(&self, id: &str, size: bool) -> Result<Value, ClientError> {
        let q = Query::new().flag("size", size);
        self.get_json(&id_path("containers", id, &format!("/json{q}")))
            .await
    }

    /// The inspect document as the daemon wrote it (key order kept).
    pub async fn container_inspect_raw(
        &self,
        id: &str,
        size: bool,
    ) -> Result<bytes::Bytes, ClientError> {
        let q = Query::new().flag("size", size);
        self.get_raw(&id_path("containers", id, &format!("/json{q}")))
            .await
    }

    pub async fn container_start(&self, id: &str) -> Result<(), ClientError> {
        self.post(&id_path("containers", id, "/start"), None).await
    }

    pub async fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ClientError> {
        let q = Query::new()
            .opt("t", timeout.map(|t| t.to_string()))
            .opt("signal", signal);
        self.post(&id_path("containers", id, &format!("/stop{q}")), None)
            .await
    }

    pub async fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ClientError> {
        let q = Query::new()
            .opt("t", timeout.map(|t| t.to_string()))
            .opt("signal", signal);
        self.post(&id_path("containers", id, &format!("/restart{q}")), None)
            .await
    }

    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ClientError> {
        let q = Query::new().opt("signal", signal);
        self.post(&id_path("containers", id, &format!("/kill{q}")), None)
            .await
    }

    pub async fn container_remove(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
        link: bool,
    ) -> Result<(), ClientError> {
        let q = Query::new()
            .flag("force", force)
            .flag("v", volumes)
            .flag("link", link);
        self.delete(&id_path("containers", id, &q.to_string()))
            .await
            .map(drop)
    }

    pub async fn container_pause(&self, id: &str) -> Result<(), ClientError> {
        self.post(&id_path("containers", id, "/pause"), None).await
    }

    pub async fn container_unpause(&self, id: &str) -> Result<(), ClientError> {
        self.post(&id_path("containers", id, "/unpause"), None)
            .await
    }

    pub async fn container_rename(&self, id: &str, name: &str) -> Result<(), ClientError> {
        let q = Query::new().set("name", name);
        self.post(&id_path("containers", id, &format!("/rename{q}")), None)
            .await
    }

    pub async fn container_update(&self, id: &str, update: &Value) -> Result<Value, ClientError> {
        self.post_json(&id_path("containers", id, "/update"), Some(update))
            .await
    }

    pub async fn container_resize(&self, id: &str, h: u16, w: u16) -> Result<(), ClientError> {
        let q = Query::new().set("h", h.to_string()).set("w", w.to_string());
        self.post(&id_path("containers", id, &format!("/resize{q}")), None)
            .await
    }

    /// Starts waiting; returns once the daemon acknowledged the wait.
    pub async fn container_wait(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<PendingWait, ClientError> {
        let q = Query::new().opt("condition", condition);
        let resp = self
            .send(
                Method::POST,
                &id_path("containers", id, &format!("/wait{q}")),
                Body::empty(),
                &[],
            )
            .await?;
        Ok(PendingWait {
            body: resp.into_body(),
        })
    }

    /// The logs body: framed unless the container has a TTY.
    pub async fn container_logs(&self, id: &str, q: Query) -> Result<Incoming, ClientError> {
        let path = id_path("containers", id, &format!("/logs{q}"));
        Ok(self
            .send(Method::GET, &path, Body::empty(), &[])
            .await?
            .into_body())
    }

    pub async fn container_attach(&self, id: &str, q: Query) -> Result<Hijacked, ClientError> {
        self.hijack(&id_path("containers", id, &format!("/attach{q}")), None)
            .await
    }

    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<Value, ClientError> {
        let q = Query::new().opt("ps_args", ps_args);
        self.get_json(&id_path("containers", id, &format!("/top{q}")))
            .await
    }

    /// The stats body: one JSON document per interval (one only when
    /// `stream` is false).
    pub async fn container_stats(&self, id: &str, stream: bool) -> Result<JsonStream, ClientError> {
        let q = Query::new().bool("stream", stream);
        let path = id_path("containers", id, &format!("/stats{q}"));
        let r = self.send(Method::GET, &path, Body::empty(), &[]).await?;
        Ok(JsonStream::new(r.into_body()))
    }

    pub async fn container_changes(&self, id: &str) -> Result<Value, ClientError> {
        self.get_json(&id_path("containers", id, "/changes")).await
    }

    pub async fn container_export(&self, id: &str) -> Result<Incoming, ClientError> {
        let path = id_path("containers", id, "/export");
        Ok(self
            .send(Method::GET, &path, Body::empty(), &[])
            .await?
            .into_body())
    }

    /// `HEAD /containers/{id}/archive`: the decoded path stat.
    pub async fn archive_stat(&self, id: &str, path: &str) -> Result<Value, ClientError> {
        let q = Query::new().set("path", path);
        let p = id_path("containers", id, &format!("/archive{q}"));
        let r = self.send(Method::HEAD, &p, Body::empty(), &[]).await?;
        decode_path_stat(r.headers())
    }

    /// `GET /containers/{id}/archive`: the stat and the tar body.
    pub async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(Value, Incoming), ClientError> {
        let q = Query::new().set("path", path);
        let p = id_path("containers", id, &format!("/archive{q}"));
        let r = self.send(Method::GET, &p, Body::empty(), &[]).await?;
        let stat = decode_path_stat(r.headers()).unwrap_or(Value::Null);
        Ok((stat, r.into_body()))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar at `path`.
    pub async fn archive_put(
        &self,
        id: &str,
        path: &str,
        tar: Body,
        copy_uid_gid: bool,
    ) -> Result<(), ClientError> {
        let q = Query::new()
            .set("path", path)
            .flag("copyUIDGID", copy_uid_gid);
        let p = id_path("containers", id, &format!("/archive{q}"));
        let r = self
            .send(
                Method::PUT,
                &p,
                tar,
                &[("content-type", "application/x-tar".to_owned())],
            )
            .await?;
        read_all(r.into_body()).await.map(drop)
    }

    pub async fn container_prune(&self, filters: Option<&str>) -> Result<Value, ClientError> {
        let q = Query::new().opt("filters", filters);
        self.post_json(&format!("/containers/prune{q}"), None).await
    }

    /// `POST /commit`.
    pub async fn commit(&self, q: Query, config: Option<&Value>) -> Result<Value, ClientError> {
        self.post_json(&format!("/commit{q}"), config).await
    }

    // ---- exec -------------------------------------------------------------

    pub async fn exec_create(
        &self,
        id: &str,
        config: &Value,
    ) -> Result<CreateResponse, ClientError> {
        self.post_json(&id_path("containers", id, "/exec"), Some(config))
            .await
    }

    /// Starts an exec attached: a hijacked stream.
    pub async fn exec_start_attached(
        &self,
        exec_id: &str,
        tty: bool,
    ) -> Result<Hijacked, ClientError> {
        let body = serde_json::json!({"Detach": false, "Tty": tty});
        self.hijack(&id_path("exec", exec_id, "/start"), Some(&body))
            .await
    }

    pub async fn exec_start_detached(&self, exec_id: &str, tty: bool) -> Result<(), ClientError> {
        let body = serde_json::json!({"Detach": true, "Tty": tty});
        self.post(&id_path("exec", exec_id, "/start"), Some(&body))
            .await
    }

    pub async fn exec_resize(&self, exec_id: &str, h: u16, w: u16) -> Result<(), ClientError> {
        let q = Query::new().set("h", h.to_string()).set("w", w.to_string());
        self.post(&id_path("exec", exec_id, &format!("/resize{q}")), None)
            .await
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<Value, ClientError> {
        self.get_json(&id_path("exec", exec_id, "/json")).await
    }

    // ---- images -----------------------------------------------------------

    pub async fn image_list(&self, q: Query) -> Result<Vec<Value>, ClientError> {
        self.get_json(&format!("/images/json{q}")).await
    }

    pub async fn image_inspect(&self, name: &str) -> Result<Value, ClientError> {
        self.get_json(&image_path(name, "/json")).await
    }

    /// The inspect document as the daemon wrote it (key order kept).
    pub async fn image_inspect_raw(&self, name: &str) -> Result<bytes::Bytes, ClientError> {
        self.get_raw(&image_path(name, "/json")).await
    }

    pub async fn image_history(&self, name: &str) -> Result<Value, ClientError> {
        self.get_json(&image_path(name, "/history")).await
    }

    /// `POST /images/create?fromImage=`: progress messages.
    pub async fn image_pull(
        &self,
        image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<&str>,
    ) -> Result<JsonStream, ClientError> {
        let q = Query::new()
            .set("fromImage", image)
            .opt("tag", tag)
            .opt("platform", platform);
        let headers = auth_header(auth);
        let r = self
            .send(
                Method::POST,
                &format!("/images/create{q}"),
                Body::empty(),
                &headers,
            )
            .await?;
        Ok(JsonStream::new(r.into_body()))
    }

    /// `POST /images/create?fromSrc=-`: import a tarball.
    pub async fn image_import(&self, q: Query, tar: Body) -> Result<JsonStream, ClientError> {
        let r = self
            .send(
                Method::POST,
                &format!("/images/create{q}"),
                tar,
                &[("content-type", "application/x-tar".to_owned())],
            )
            .await?;
        Ok(JsonStream::new(r.into_body()))
    }

    pub async fn image_push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<&str>,
    ) -> Result<JsonStream, ClientError> {
        let q = Query::new().opt("tag", tag);
        let headers = auth_header(auth);
        let r = self
            .send(
                Method::POST,
                &image_path(name, &format!("/push{q}")),
                Body::empty(),
                &headers,
            )
            .await?;
        Ok(JsonStream::new(r.into_body()))
    }

    pub async fn image_tag(
        &self,
        source: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<(), ClientError> {
        let q = Query::new().set("repo", repo).opt("tag", tag);
        self.post(&image_path(source, &format!("/tag{q}")), None)
            .await
    }

    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> Result<Value, ClientError> {
        let q = Query::new().flag("force", force).flag("noprune", no_prune);
        self.delete(&image_path(name, &q.to_string())).await
    }

    /// `GET /images/get?names=...`: a docker-save tar body.
    pub async fn image_save(&self, names: &[String]) -> Result<Incoming, ClientError> {
        let mut q = Query::new();
        for n in names {
            q = q.set("names", n);
        }
        let r = self
            .send(Method::GET, &format!("/images/get{q}"), Body::empty(), &[])
            .await?;
        Ok(r.into_body())
    }

    /// `POST /images/load`: progress messages.
    pub async fn image_load(&self, tar: Body, quiet: bool) -> Result<JsonStream, ClientError> {
        let q = Query::new().flag("quiet", quiet);
        let r = self
            .send(
                Method::POST,
                &format!("/images/load{q}"),
                tar,
                &[("content-type", "application/x-tar".to_owned())],
            )
            .await?;
        Ok(JsonStream::new(r.into_body()))
    }

    pub async fn image_prune(&self, filters: Option<&str>) -> Result<Value, ClientError> {
        let q = Query::new().opt("filters", filters);
        self.post_json(&format!("/images/prune{q}"), None).await
    }

    // ---- system -----------------------------------------------------------

    pub async fn version_info(&self) -> Result<Value, ClientError> {
        self.get_json("/version").await
    }

    pub async fn info(&self) -> Result<Value, ClientError> {
        self.get_json("/info").await
    }

    pub async fn disk_usage(&self) -> Result<Value, ClientError> {
        self.get_json("/system/df").await
    }

    pub async fn events(&self, q: Query) -> Result<JsonStream, ClientError> {
        let r = self
            .send(Method::GET, &format!("/events{q}"), Body::empty(), &[])
            .await?;
        Ok(JsonStream::new(r.into_body()))
    }

    /// `POST /auth`.
    pub async fn auth(&self, creds: &Value) -> Result<Value, ClientError> {
        self.post_json("/auth", Some(creds)).await
    }

    pub async fn volume_prune(&self, filters: Option<&str>) -> Result<Value, ClientError> {
        let q = Query::new().opt("filters", filters);
        self.post_json(&format!("/volumes/prune{q}"), None).await
    }

    pub async fn network_prune(&self, filters: Option<&str>) -> Result<Value, ClientError> {
        let q = Query::new().opt("filters", filters);
        self.post_json(&format!("/networks/prune{q}"), None).await
    }

    pub async fn build_prune(&self, all: bool) -> Result<Value, ClientError> {
        let q = Query::new().flag("all", all);
        self.post_json(&format!("/build/prune{q}"), None).await
    }
}

fn auth_header(auth: Option<&str>) -> Vec<(&'static str, String)> {
    auth.map(|a| vec![("x-registry-auth", a.to_owned())])
        .unwrap_or_default()
}

fn decode_path_stat(h: &hyper::HeaderMap) -> Result<Value, ClientError> {
    use base64::Engine as _;
    let raw = h
        .get("x-docker-container-path-stat")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(raw))
        .unwrap_or_default();
    serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
        path: "X-Docker-Container-Path-Stat".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_keep_separators() {
        assert_eq!(
            image_path("localhost:5000/a/b:1.0", "/json"),
            "/images/localhost:5000/a/b:1.0/json"
        );
        assert_eq!(
            image_path("busybox@sha256:ab", ""),
            "/images/busybox@sha256:ab"
        );
        assert_eq!(
            id_path("containers", "a b", "/start"),
            "/containers/a%20b/start"
        );
    }
}
