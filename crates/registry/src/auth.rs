//! Registry credentials, stored the way the docker CLI stores them.
//!
//! [`CredentialStore`] reads and writes `config.json` in `$DOCKER_CONFIG`
//! (default `~/.docker`):
//!
//! ```text
//! {
//!   "auths": {
//!     "https://index.docker.io/v1/": { "auth": "base64(user:password)" },
//!     "localhost:5000": { "username": "u", "password": "p" },
//!     "ghcr.io": { "auth": "...", "identitytoken": "..." }
//!   },
//!   "credsStore": "pass",                  // default helper for every host
//!   "credHelpers": { "gcr.io": "gcloud" }, // per-host helpers
//!   ...                                    // other keys, preserved untouched
//! }
//! ```
//!
//! Docker Hub is keyed as `https://index.docker.io/v1/`; other registries by
//! `host[:port]` (keys written with a scheme or path by older tools still
//! match by host name). When a helper applies (`credHelpers` first, then
//! `credsStore`), secrets go through `docker-credential-<name>` using its
//! protocol: `get`/`erase` read the server URL on stdin, `get` prints
//! `{"ServerURL","Username","Secret"}`, `store` reads that JSON; a username
//! of `<token>` marks an identity token. The file then only keeps an empty
//! entry for the host, as docker does.
//!
//! Writes are atomic (temporary file in the same directory, fsync, rename)
//! and the file is created with mode 0600. [`login`] checks the credentials
//! against the registry before storing them; [`logout`] removes them.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::client::{ClientError, RegistryClient};
use crate::endpoint::{RegistryOptions, is_docker_hub};

/// The `config.json` key of Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Username a credential helper uses to mark an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// Why credentials could not be read, stored or checked.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Neither `$DOCKER_CONFIG` nor `$HOME` is set.
    #[error("cannot locate the docker config directory: neither DOCKER_CONFIG nor HOME is set")]
    NoConfigDir,
    /// Reading or writing the config file failed.
    #[error("cannot access docker config {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid JSON or not an object.
    #[error("invalid docker config {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A config entry has an `auth` field that is not base64 `user:password`.
    #[error("invalid auth entry for {key} in {path}")]
    BadAuthField { key: String, path: PathBuf },
    /// The credential helper program cannot be found.
    #[error("credential helper docker-credential-{helper} not found")]
    HelperMissing { helper: String },
    /// The credential helper could not be run.
    #[error("cannot run credential helper docker-credential-{helper} {action}")]
    HelperSpawn {
        helper: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The credential helper failed.
    #[error("credential helper docker-credential-{helper} {action} failed: {message}")]
    HelperFailed {
        helper: String,
        action: &'static str,
        message: String,
    },
    /// The credential helper printed something that is not its JSON.
    #[error("credential helper docker-credential-{helper} returned invalid output")]
    HelperOutput {
        helper: String,
        #[source]
        source: serde_json::Error,
    },
    /// The registry rejected the credentials (or could not be reached).
    #[error("login to {host} failed")]
    Login {
        host: String,
        #[source]
        source: Box<ClientError>,
    },
    /// A blocking task was cancelled.
    #[error("credential store task for {host} did not complete")]
    Task { host: String },
}

/// A user's credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username (may be empty with an identity token).
    pub username: String,
    /// Password or personal access token.
    pub password: String,
    /// OAuth2 refresh token (`identitytoken`), exchanged at the token server.
    pub identity_token: Option<String>,
}

impl Credentials {
    /// Username and password credentials.
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
            identity_token: None,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where the client gets credentials when a registry challenges it.
///
/// Called lazily, only after a `401` (anonymous first), from a blocking
/// thread (helpers are external programs).
pub trait CredentialProvider: Send + Sync {
    /// The credentials for a registry host (`docker.io`, `host:port`).
    fn credentials(&self, host: &str) -> Result<Option<Credentials>, AuthError>;
}

/// No credentials: every registry is accessed anonymously.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialProvider for Anonymous {
    fn credentials(&self, _host: &str) -> Result<Option<Credentials>, AuthError> {
        Ok(None)
    }
}

/// The same fixed credentials for every host (used by [`login`] and tests).
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Credentials);

impl CredentialProvider for StaticCredentials {
    fn credentials(&self, _host: &str) -> Result<Option<Credentials>, AuthError> {
        Ok(Some(self.0.clone()))
    }
}

/// The `config.json` key for a registry host: Docker Hub's aliases map to
/// [`DOCKER_HUB_KEY`], other hosts are used as given.
pub fn config_key(host: &str) -> String {
    let host = key_hostname(host);
    if host.is_empty() || is_docker_hub(host) {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// The host name of a `config.json` key or a login argument: the scheme and
/// any path are dropped (`https://index.docker.io/v1/` → `index.docker.io`).
pub fn key_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or_default()
}

/// The docker config directory: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn config_dir(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    match docker_config.filter(|d| !d.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// `config.json` plus the credential helpers it names.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    helper_path: Option<Vec<PathBuf>>,
}

impl CredentialStore {
    /// The store in `$DOCKER_CONFIG` or `~/.docker`.
    pub fn from_env() -> Result<CredentialStore, AuthError> {
        let dir = config_dir(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
            .ok_or(AuthError::NoConfigDir)?;
        Ok(CredentialStore::in_dir(&dir))
    }

    /// The store whose `config.json` lives in `dir`.
    pub fn in_dir(dir: &Path) -> CredentialStore {
        CredentialStore {
            path: dir.join("config.json"),
            helper_path: None,
        }
    }

    /// Looks credential helpers up in `dirs` instead of `$PATH`.
    pub fn with_helper_path(mut self, dirs: Vec<PathBuf>) -> CredentialStore {
        self.helper_path = Some(dirs);
        self
    }

    /// Path of the config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored credentials for `host`, if any.
    pub fn get(&self, host: &str) -> Result<Option<Credentials>, AuthError> {
        let config = self.load()?;
        let key = config_key(host);
        if let Some(helper) = helper_for(&config, &key) {
            match self.helper_get(&helper, &key)? {
                Some(c) => return Ok(Some(c)),
                None => return self.file_entry(&config, &key),
            }
        }
        self.file_entry(&config, &key)
    }

    /// Stores credentials for `host` (in its helper when one applies).
    pub fn store(&self, host: &str, creds: &Credentials) -> Result<(), AuthError> {
        let mut config = self.load()?;
        let key = config_key(host);
        let mut entry = Map::new();
        if let Some(helper) = helper_for(&config, &key) {
            let (username, secret) = match &creds.identity_token {
                Some(tok) => (TOKEN_USERNAME.to_owned(), tok.clone()),
                None => (creds.username.clone(), creds.password.clone()),
            };
            let input =
                serde_json::json!({"ServerURL": key, "Username": username, "Secret": secret});
            self.run_helper(&helper, "store", input.to_string().as_bytes())?;
        } else {
            let auth = BASE64.encode(format!("{}:{}", creds.username, creds.password));
            entry.insert("auth".into(), Value::String(auth));
            if let Some(tok) = &creds.identity_token {
                entry.insert("identitytoken".into(), Value::String(tok.clone()));
            }
        }
        auths_mut(&mut config).insert(key, Value::Object(entry));
        self.save(&config)
    }

    /// Removes the credentials for `host`; `Ok(false)` when none were stored.
    pub fn erase(&self, host: &str) -> Result<bool, AuthError> {
        let mut config = self.load()?;
        let key = config_key(host);
        let mut removed = false;
        if let Some(helper) = helper_for(&config, &key) {
            match self.run_helper(&helper, "erase", key.as_bytes()) {
                Ok(_) => removed = true,
                Err(AuthError::HelperFailed { message, .. }) if is_not_found(&message) => {}
                Err(e) => return Err(e),
            }
        }
        let hostname = key_hostname(&key).to_owned();
        let auths = auths_mut(&mut config);
        let before = auths.len();
        auths.retain(|k, _| k != &key && key_hostname(k) != hostname);
        if auths.len() != before {
            removed = true;
            self.save(&config)?;
        }
        Ok(removed)
    }

    fn load(&self) -> Result<Map<String, Value>, AuthError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => {
                return Err(AuthError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse {
            path: self.path.clone(),
            source,
        })
    }

    /// Atomic replace: temp file (0600) in the same directory, fsync, rename.
    /// A symlinked config.json is written through to its target, as docker does.
    fn save(&self, config: &Map<String, Value>) -> Result<(), AuthError> {
        let io_err = |path: &Path, source| AuthError::Io {
            path: path.to_owned(),
            source,
        };
        let target = match std::fs::canonicalize(&self.path) {
            Ok(p) => p,
            Err(_) => self.path.clone(),
        };
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err(dir, e))?;
        let mut buf = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
        serde::Serialize::serialize(config, &mut ser).map_err(|source| AuthError::Parse {
            path: target.clone(),
            source,
        })?;
        buf.push(b'\n');
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tmp = dir.join(format!(".config.json.{}.{nanos}.tmp", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&target, e));
        }
        Ok(())
    }

    fn file_entry(
        &self,
        config: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        let Some(Value::Object(auths)) = config.get("auths") else {
            return Ok(None);
        };
        let hostname = key_hostname(key);
        let found = auths.get_key_value(key).or_else(|| {
            auths.iter().find(|(k, _)| {
                key_hostname(k) == hostname
                    || (is_docker_hub(hostname) && is_docker_hub(key_hostname(k)))
            })
        });
        let Some((found_key, Value::Object(entry))) = found else {
            return Ok(None);
        };
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let identity_token = field("identitytoken").map(str::to_owned);
        let (username, password) = if let Some(auth) = field("auth") {
            let bad = || AuthError::BadAuthField {
                key: found_key.clone(),
                path: self.path.clone(),
            };
            let decoded = BASE64.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
            (u.to_owned(), p.to_owned())
        } else {
            (
                field("username").unwrap_or_default().to_owned(),
                field("password").unwrap_or_default().to_owned(),
            )
        };
        if username.is_empty() && password.is_empty() && identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username,
            password,
            identity_token,
        }))
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<Credentials>, AuthError> {
        let out = match self.run_helper(helper, "get", key.as_bytes()) {
            Ok(out) => out,
            Err(AuthError::HelperFailed { message, .. }) if is_not_found(&message) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct HelperCreds {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let c: HelperCreds =
            serde_json::from_slice(&out).map_err(|source| AuthError::HelperOutput {
                helper: helper.to_owned(),
                source,
            })?;
        if c.username == TOKEN_USERNAME {
            return Ok(Some(Credentials {
                username: String::new(),
                password: String::new(),
                identity_token: Some(c.secret),
            }));
        }
        if c.username.is_empty() && c.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: c.username,
            password: c.secret,
            identity_token: None,
        }))
    }

    fn find_helper(&self, helper: &str) -> Result<PathBuf, AuthError> {
        let missing = || AuthError::HelperMissing {
            helper: helper.to_owned(),
        };
        if helper.is_empty() || helper.contains('/') {
            return Err(missing());
        }
        let program = format!("docker-credential-{helper}");
        let dirs: Vec<PathBuf> = match &self.helper_path {
            Some(dirs) => dirs.clone(),
            None => std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        };
        dirs.iter()
            .map(|d| d.join(&program))
            .find(|p| p.is_file())
            .ok_or_else(missing)
    }

    fn run_helper(
        &self,
        helper: &str,
        action: &'static str,
        input: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        let program = self.find_helper(helper)?;
        let spawn_err = |source| AuthError::HelperSpawn {
            helper: helper.to_owned(),
            action,
            source,
        };
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading its input; that is its answer.
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if !out.status.success() {
            let mut message = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if message.is_empty() {
                message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            }
            return Err(AuthError::HelperFailed {
                helper: helper.to_owned(),
                action,
                message,
            });
        }
        Ok(out.stdout)
    }
}

impl CredentialProvider for CredentialStore {
    fn credentials(&self, host: &str) -> Result<Option<Credentials>, AuthError> {
        self.get(host)
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains("credentials not found")
}

fn helper_for(config: &Map<String, Value>, key: &str) -> Option<String> {
    let hostname = key_hostname(key);
    if let Some(Value::Object(helpers)) = config.get("credHelpers") {
        let found = helpers.get(key).or_else(|| helpers.get(hostname));
        if let Some(Value::String(h)) = found
            && !h.is_empty()
        {
            return Some(h.clone());
        }
    }
    match config.get("credsStore") {
        Some(Value::String(h)) if !h.is_empty() => Some(h.clone()),
        _ => None,
    }
}

fn auths_mut(config: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let slot = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("auths was just made an object"),
    }
}

/// Normalises what a user passes to `login`/`logout` (`""`, `docker.io`,
/// `https://index.docker.io/v1/`, `localhost:5000`) into a registry host.
pub fn login_host(server: &str) -> String {
    let host = key_hostname(server.trim());
    if host.is_empty() || is_docker_hub(host) {
        crate::endpoint::DOCKER_IO.to_owned()
    } else {
        host.to_owned()
    }
}

/// Checks `username`/`password` against the registry (ping, challenge, then
/// a token or Basic request that must succeed) and stores them on success.
/// Returns the `config.json` key they were stored under.
pub async fn login(
    store: &CredentialStore,
    options: &RegistryOptions,
    server: &str,
    username: &str,
    password: &str,
) -> Result<String, AuthError> {
    let host = login_host(server);
    let creds = Credentials::basic(username, password);
    let login_err = |source: ClientError| AuthError::Login {
        host: host.clone(),
        source: Box::new(source),
    };
    let client = RegistryClient::new(
        &host,
        options,
        std::sync::Arc::new(StaticCredentials(creds.clone())),
    )
    .map_err(login_err)?;
    client.check_login().await.map_err(login_err)?;
    let store = store.clone();
    let key = config_key(&host);
    let task_host = host.clone();
    tokio::task::spawn_blocking(move || store.store(&task_host, &creds))
        .await
        .map_err(|_| AuthError::Task { host: host.clone() })??;
    tracing::info!(host = %host, key = %key, "login succeeded, credentials stored");
    Ok(key)
}

/// Removes stored credentials for `server`; `Ok(false)` when there were none.
pub fn logout(store: &CredentialStore, server: &str) -> Result<bool, AuthError> {
    store.erase(&login_host(server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn keys_and_hosts() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("registry-1.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("localhost:5000"), "localhost:5000");
        assert_eq!(key_hostname(DOCKER_HUB_KEY), "index.docker.io");
        assert_eq!(key_hostname("http://reg:5000/v2/"), "reg:5000");
        assert_eq!(login_host(""), "docker.io");
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn config_dir_rules() {
        assert_eq!(
            config_dir(Some("/x".into()), Some("/home/u".into())),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            config_dir(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(config_dir(None, None), None);
    }

    #[test]
    fn reads_docker_written_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{
              "auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "http://old.example:5000/v1/": {"username": "u2", "password": "p2"},
                "tok.example": {"auth": "bWU6", "identitytoken": "refresh"},
                "empty.example": {}
              }
            }"#,
        )
        .unwrap();
        let s = CredentialStore::in_dir(dir.path());
        assert_eq!(
            s.get("docker.io").unwrap(),
            Some(Credentials::basic("hub", "secret"))
        );
        assert_eq!(
            s.get("old.example:5000").unwrap(),
            Some(Credentials::basic("u2", "p2"))
        );
        let t = s.get("tok.example").unwrap().unwrap();
        assert_eq!(t.username, "me");
        assert_eq!(t.identity_token.as_deref(), Some("refresh"));
        assert_eq!(s.get("empty.example").unwrap(), None);
        assert_eq!(s.get("other.example").unwrap(), None);
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = CredentialStore::in_dir(dir.path());
        assert_eq!(
            s.get("x").unwrap(),
            None,
            "missing file means no credentials"
        );
        std::fs::write(s.path(), "{not json").unwrap();
        assert!(matches!(s.get("x"), Err(AuthError::Parse { .. })));
        std::fs::write(s.path(), r#"{"auths":{"x":{"auth":"!!!"}}}"#).unwrap();
        assert!(matches!(s.get("x"), Err(AuthError::BadAuthField { .. })));
    }

    #[test]
    fn store_preserves_other_keys_atomically_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let s = CredentialStore::in_dir(&dir.path().join("nested"));
        std::fs::create_dir_all(dir.path().join("nested")).unwrap();
        std::fs::write(
            s.path(),
            r#"{"psFormat":"table {{.ID}}","auths":{"keep.example":{"auth":"YTpi"}},"proxies":{"default":{"httpProxy":"x"}}}"#,
        )
        .unwrap();
        s.store("docker.io", &Credentials::basic("alice", "pw:with:colons"))
            .unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(s.path()).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert_eq!(v["proxies"]["default"]["httpProxy"], "x");
        assert_eq!(v["auths"]["keep.example"]["auth"], "YTpi");
        assert_eq!(
            v["auths"][DOCKER_HUB_KEY]["auth"],
            BASE64.encode("alice:pw:with:colons")
        );
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            s.get("index.docker.io").unwrap(),
            Some(Credentials::basic("alice", "pw:with:colons"))
        );
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);

        assert!(s.erase("docker.io").unwrap());
        assert!(!s.erase("docker.io").unwrap());
        assert_eq!(s.get("docker.io").unwrap(), None);
        let v: Value = serde_json::from_slice(&std::fs::read(s.path()).unwrap()).unwrap();
        assert_eq!(v["auths"]["keep.example"]["auth"], "YTpi");
        assert_eq!(v["psFormat"], "table {{.ID}}");
    }

    #[test]
    fn store_creates_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = CredentialStore::in_dir(&dir.path().join("a/b"));
        s.store("localhost:5000", &Credentials::basic("u", "p"))
            .unwrap();
        assert_eq!(
            s.get("localhost:5000").unwrap(),
            Some(Credentials::basic("u", "p"))
        );
        let mode = std::fs::metadata(dir.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }

    /// A credential helper written in shell that keeps secrets in files
    /// under its own directory, speaking docker's helper protocol.
    fn fake_helper(dir: &Path, name: &str) {
        let script = format!(
            r#"#!/bin/sh
set -e
db="{db}"
mkdir -p "$db"
echo "$1" >> "$db/calls"
case "$1" in
  get)
    url=$(cat)
    f="$db/$(echo "$url" | tr '/:' '__')"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    json=$(cat)
    url=$(echo "$json" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
    echo "$json" > "$db/$(echo "$url" | tr '/:' '__')" ;;
  erase)
    url=$(cat)
    f="$db/$(echo "$url" | tr '/:' '__')"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action" ; exit 2 ;;
esac
"#,
            db = dir.join(format!("{name}-db")).display()
        );
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn creds_store_and_cred_helpers_go_through_programs() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        fake_helper(&bin, "fakestore");
        fake_helper(&bin, "fakehelper");
        let cfg = dir.path().join("cfg");
        std::fs::create_dir(&cfg).unwrap();
        std::fs::write(
            cfg.join("config.json"),
            r#"{"credsStore":"fakestore","credHelpers":{"special.example:5000":"fakehelper"}}"#,
        )
        .unwrap();
        let s = CredentialStore::in_dir(&cfg).with_helper_path(vec![bin.clone()]);

        assert_eq!(s.get("docker.io").unwrap(), None);
        s.store("docker.io", &Credentials::basic("hub", "s3cret"))
            .unwrap();
        s.store("special.example:5000", &Credentials::basic("sp", "pw"))
            .unwrap();
        assert_eq!(
            s.get("docker.io").unwrap(),
            Some(Credentials::basic("hub", "s3cret"))
        );
        assert_eq!(
            s.get("special.example:5000").unwrap(),
            Some(Credentials::basic("sp", "pw"))
        );

        // Secrets stayed out of config.json: only empty entries were written.
        let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("pw"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auths"][DOCKER_HUB_KEY], serde_json::json!({}));
        assert_eq!(v["credsStore"], "fakestore");

        // The per-host helper handled its host, the default store the rest.
        let calls = |n: &str| {
            std::fs::read_to_string(bin.join(format!("{n}-db/calls"))).unwrap_or_default()
        };
        assert_eq!(
            calls("fakehelper").lines().collect::<Vec<_>>(),
            vec!["store", "get"]
        );
        assert_eq!(
            calls("fakestore").lines().collect::<Vec<_>>(),
            vec!["get", "store", "get"]
        );

        // Identity tokens use the <token> username convention.
        s.store(
            "tok.example",
            &Credentials {
                username: "x".into(),
                password: String::new(),
                identity_token: Some("refresh-tok".into()),
            },
        )
        .unwrap();
        let t = s.get("tok.example").unwrap().unwrap();
        assert_eq!(t.identity_token.as_deref(), Some("refresh-tok"));

        assert!(s.erase("docker.io").unwrap());
        assert_eq!(s.get("docker.io").unwrap(), None);
        let v: Value =
            serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap();
        assert!(v["auths"].get(DOCKER_HUB_KEY).is_none());
    }

    #[test]
    fn missing_or_failing_helper_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore":"nope"}"#).unwrap();
        let s = CredentialStore::in_dir(dir.path()).with_helper_path(vec![dir.path().to_owned()]);
        let e = s.get("docker.io").unwrap_err();
        assert!(matches!(e, AuthError::HelperMissing { .. }));
        assert_eq!(
            e.to_string(),
            "credential helper docker-credential-nope not found"
        );

        let p = dir.path().join("docker-credential-broken");
        std::fs::write(&p, "#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore":"broken"}"#).unwrap();
        let e = s.get("docker.io").unwrap_err();
        assert!(
            matches!(&e, AuthError::HelperFailed { message, action: "get", .. } if message == "keychain locked"),
            "{e:?}"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
            identity_token: Some("tok".into()),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains("tok\""), "{s}");
    }
}
