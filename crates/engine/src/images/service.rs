//! [`ImageService`]: the engine's image operations, served under `/images`,
//! `/auth` and `/system/df`.
//!
//! It wraps the image library ([`wharf_image::ops::Images`]: resolve, tag,
//! list, inspect, history, remove, prune, save, load, import) and the
//! registry client (`wharf_registry`: pull, push, login), runs their
//! blocking work off the async threads, tells the library which images
//! containers use ([`super::usage::ContainerImages`]), and publishes
//! Docker's image events (`pull`, `push`, `tag`, `untag`, `delete`,
//! `prune`, `load`, `save`, `import`). Pulls and pushes report
//! [`super::progress::Progress`] through an [`Operation`]; concurrent pulls
//! of one reference share a single transfer.
//!
//! Registry credentials come with each request (Docker's `X-Registry-Auth`);
//! the daemon stores none.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;
use wharf_image::Digest;
use wharf_image::manifest::Platform;
use wharf_image::ops::{
    DeleteItem, HistoryItem, ImageFilters, ImageInspect, ImageSummary, Images as Ops,
    ImportOptions, ListOptions, PruneOptions, PruneReport, RemoveOptions,
};
use wharf_registry::{
    Anonymous, CredentialProvider, Credentials, RegistryClient, RegistryOptions, StaticCredentials,
};

use super::error::ImageServiceError;
use super::progress::Broadcast;
use crate::events::{Actor, Event, Events};

/// `POST /images/create?fromSrc=-`: an import.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `fromSrc`: only `-` (the body) is supported.
    pub source: String,
    /// `repo` (may carry a tag) and `tag`.
    pub repo: String,
    pub tag: String,
    /// Dockerfile-like `changes` (`CMD ["/bin/sh"]`, `ENV A=b`, ...).
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<String>,
}

/// `POST /auth`.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    pub server_address: String,
    pub username: String,
    pub password: String,
    pub identity_token: Option<String>,
}

/// The image service.
pub struct ImageService {
    pub(crate) ops: Ops,
    pub(crate) registry: RegistryOptions,
    pub(crate) events: Arc<Events>,
    /// Pulls in flight, by reference and platform.
    pub(crate) pulls: Mutex<HashMap<String, Arc<Broadcast>>>,
}

impl std::fmt::Debug for ImageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageService")
            .field("ops", &self.ops)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// Registry options from the daemon's settings.
pub fn registry_options(s: &crate::system::RegistrySettings) -> RegistryOptions {
    RegistryOptions {
        insecure_registries: s.insecure_registries.clone(),
        mirrors: s.mirrors.clone(),
        ..RegistryOptions::default()
    }
}

impl ImageService {
    /// The service over `ops` (already told which images containers use).
    pub fn new(ops: Ops, registry: RegistryOptions, events: Arc<Events>) -> ImageService {
        if let Err(e) = wharf_registry::endpoint::endpoints_for("docker.io", &registry) {
            tracing::warn!(error = %e, "registry configuration is invalid: pulls from Docker Hub will fail");
        }
        ImageService {
            ops,
            registry,
            events,
            pulls: Mutex::new(HashMap::new()),
        }
    }

    /// The library operations (for reads the API does not need a task for).
    pub fn ops(&self) -> &Ops {
        &self.ops
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(Ops) -> Result<T, ImageServiceError> + Send + 'static,
    ) -> Result<T, ImageServiceError> {
        let ops = self.ops.clone();
        tokio::task::spawn_blocking(move || f(ops))
            .await
            .map_err(|_| ImageServiceError::Task { what })?
    }

    /// Publishes an image event (Docker's shape: the actor is an image ID or
    /// reference, `name` its reference or ID).
    pub(crate) fn event(&self, action: &str, id: &str, name: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_owned(), name.to_owned());
        self.events.publish(Event {
            typ: "image",
            action: action.to_owned(),
            actor: Actor {
                id: id.to_owned(),
                attributes,
            },
            scope: "local",
            time: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            time_nano: i64::try_from(now.as_nanos()).unwrap_or(i64::MAX),
            status: Some(action.to_owned()),
            id: Some(id.to_owned()),
            from: None,
        });
    }

    /// A registry client for `host` with the request's credentials (used only
    /// when the registry asks for them).
    pub(crate) fn client(
        &self,
        host: &str,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient, ImageServiceError> {
        let provider: Arc<dyn CredentialProvider> = match credentials {
            Some(c) => Arc::new(StaticCredentials(c)),
            None => Arc::new(Anonymous),
        };
        RegistryClient::new(host, &self.registry, provider).map_err(|source| {
            ImageServiceError::Client {
                host: host.to_owned(),
                source: Box::new(source),
            }
        })
    }

    /// `GET /images/json`.
    pub async fn list(
        &self,
        filters: BTreeMap<String, Vec<String>>,
        shared_size: bool,
    ) -> Result<Vec<ImageSummary>, ImageServiceError> {
        self.blocking("list", move |ops| {
            let opts = ListOptions {
                filters: ImageFilters::from_map(&filters)?,
                shared_size,
            };
            Ok(ops.list(&opts)?)
        })
        .await
    }

    /// `GET /images/{name}/json`.
    pub async fn inspect(&self, name: &str) -> Result<ImageInspect, ImageServiceError> {
        let name = name.to_owned();
        self.blocking("inspect", move |ops| Ok(ops.inspect(&name)?))
            .await
    }

    /// `GET /images/{name}/history`.
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ImageServiceError> {
        let name = name.to_owned();
        self.blocking("history", move |ops| Ok(ops.history(&name)?))
            .await
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), ImageServiceError> {
        let target = if tag.is_empty() {
            repo.to_owned()
        } else {
            format!("{repo}:{tag}")
        };
        let source = source.to_owned();
        let t = target.clone();
        let (id, familiar) = self
            .blocking("tag", move |ops| {
                let id = ops.resolve(&source)?.id;
                ops.tag(&source, &t)?;
                let familiar = wharf_image::Reference::parse(&t)
                    .map(|r| r.familiar_string())
                    .unwrap_or(t);
                Ok((id, familiar))
            })
            .await?;
        self.event("tag", &id.to_string(), &familiar);
        Ok(())
    }

    /// A lease on the image store's GC lock (`wharf_image::gc_lock`), taken
    /// on a blocking thread: it waits while an image removal runs.
    pub(crate) async fn gc_lease(&self) -> Option<wharf_image::gc_lock::Lease> {
        let gc = self.ops.store().gc().clone();
        tokio::task::spawn_blocking(move || gc.lease()).await.ok()
    }

    /// `DELETE /images/{name}?force=`.
    pub async fn remove(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<DeleteItem>, ImageServiceError> {
        let name = name.to_owned();
        let (id, items) = self
            .blocking("remove", move |ops| {
                let id = ops.resolve(&name)?.id;
                let items = ops.remove(&name, RemoveOptions { force })?;
                Ok((id, items))
            })
            .await?;
        self.delete_events(&id.to_string(), &items);
        Ok(items)
    }

    fn delete_events(&self, id: &str, items: &[DeleteItem]) {
        for it in items {
            if let Some(r) = &it.untagged {
                self.event("untag", id, r);
            }
            if let Some(d) = &it.deleted {
                self.event("delete", d, d);
            }
        }
    }

    /// `POST /images/prune?filters=`.
    pub async fn prune(
        &self,
        filters: BTreeMap<String, Vec<String>>,
    ) -> Result<PruneReport, ImageServiceError> {
        let report = self
            .blocking("prune", move |ops| {
                Ok(ops.prune(&PruneOptions::from_map(&filters)?)?)
            })
            .await?;
        for it in &report.images_deleted {
            match (&it.untagged, &it.deleted) {
                (Some(r), _) => self.event("untag", r, r),
                (_, Some(d)) => self.event("delete", d, d),
                _ => {}
            }
        }
        self.event("prune", "", &report.space_reclaimed.to_string());
        Ok(report)
    }

    /// `GET /images/get?names=...`: a `docker save` archive as a stream of
    /// chunks. Every name is resolved first (a missing one fails the request
    /// before any byte is sent); a failure while writing ends the stream
    /// with an error.
    pub async fn save(
        &self,
        names: Vec<String>,
    ) -> Result<mpsc::Receiver<Result<Bytes, io::Error>>, ImageServiceError> {
        let check = names.clone();
        let ids = self
            .blocking("save", move |ops| {
                check
                    .iter()
                    .map(|n| Ok(ops.resolve(n)?.id))
                    .collect::<Result<Vec<Digest>, ImageServiceError>>()
            })
            .await?;
        let (tx, rx) = mpsc::channel(8);
        let ops = self.ops.clone();
        tokio::task::spawn_blocking(move || {
            let out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = ops.save(&names, out) {
                tracing::warn!(error = %e, "image save failed mid-stream");
                let _ = tx.blocking_send(Err(io::Error::other(
                    ImageServiceError::from(e).full_message(),
                )));
            }
        });
        for id in ids {
            self.event("save", &id.to_string(), &id.to_string());
        }
        Ok(rx)
    }

    /// `POST /images/load`: reads a `docker save` archive; returns Docker's
    /// `Loaded image: ...` lines. Nothing is recorded for an image whose
    /// archive part is broken.
    pub async fn load(
        &self,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Vec<String>, ImageServiceError> {
        let mut reader = SyncIoBridge::new(body);
        let report = self
            .blocking("load", move |ops| {
                let r = ops.load(&mut reader);
                drain_on_error(r.is_err(), &mut reader);
                Ok(r?)
            })
            .await?;
        for (id, tags) in &report.images {
            let name = tags.first().cloned().unwrap_or_else(|| id.to_string());
            self.event("load", &id.to_string(), &name);
        }
        Ok(report.messages())
    }

    /// `POST /images/create?fromSrc=-`: a root filesystem tarball becomes an
    /// image; returns its ID.
    pub async fn import(
        &self,
        req: ImportRequest,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Digest, ImageServiceError> {
        if req.source != "-" {
            return Err(ImageServiceError::ImportSource { src: req.source });
        }
        let platform = match req.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(p.parse::<Platform>()?),
            None => None,
        };
        let reference = match (req.repo.is_empty(), req.tag.is_empty()) {
            (true, _) => None,
            (false, true) => Some(req.repo.clone()),
            (false, false) => Some(format!("{}:{}", req.repo, req.tag)),
        };
        let opts = ImportOptions {
            reference,
            changes: req.changes,
            message: req.message,
            platform,
        };
        let mut reader = SyncIoBridge::new(body);
        let id = self
            .blocking("import", move |ops| {
                let r = ops.import(&mut reader, &opts);
                drain_on_error(r.is_err(), &mut reader);
                Ok(r?)
            })
            .await?;
        self.event("import", &id.to_string(), &id.to_string());
        Ok(id)
    }

    /// `POST /auth`: checks the credentials against the registry (nothing is
    /// stored: the client keeps them).
    pub async fn login(&self, req: LoginRequest) -> Result<(), ImageServiceError> {
        let host = wharf_registry::auth::login_host(&req.server_address);
        let creds = Credentials {
            username: req.username,
            password: req.password,
            identity_token: req.identity_token.filter(|t| !t.is_empty()),
        };
        let client = self.client(&host, Some(creds))?;
        client
            .check_login()
            .await
            .map_err(|source| ImageServiceError::Login {
                host: host.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(registry = %host, "login checked");
        Ok(())
    }
}

/// Most bytes of a failed upload read (and discarded) so the client, still
/// sending, receives the error rather than a broken pipe.
const DRAIN_LIMIT: u64 = 1 << 30;

fn drain_on_error(failed: bool, reader: &mut impl io::Read) {
    if failed {
        let _ = io::copy(&mut io::Read::take(reader, DRAIN_LIMIT), &mut io::sink());
    }
}

/// Bytes per chunk of a save stream.
const CHUNK: usize = 64 << 10;

/// A `Write` that sends what it is given as chunks over a channel, from a
/// blocking thread.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
