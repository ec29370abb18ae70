//! TLS for `tcp://` hosts, as the docker CLI's `--tlsverify`: the daemon's
//! certificate must chain to `--tlscacert` and name the host dialled; the
//! client presents `--tlscert`/`--tlskey` when given. [`TlsOptions`] holds
//! the paths; [`TlsOptions::connector`] reads them once per client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Certificate paths for a verified TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// TLS material that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("no certificate in {path}")]
    Empty { path: PathBuf },
    #[error("invalid CA certificate in {path}")]
    BadCa {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    #[error("--tlscert and --tlskey go together")]
    HalfPair,
    #[error("client certificate {path} does not match its key")]
    Pair {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    #[error("tls protocol versions")]
    Versions(#[source] tokio_rustls::rustls::Error),
    #[error("invalid server name {0:?} for tls")]
    Name(String),
}

fn certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let v: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })?;
    if v.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(v)
}

impl TlsOptions {
    /// A connector trusting only `ca`, with the client pair when given.
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for c in certs(&self.ca, "CA certificate")? {
            roots.add(c).map_err(|source| TlsError::BadCa {
                path: self.ca.clone(),
                source,
            })?;
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Versions)?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let k = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
                    what: "private key",
                    path: key.clone(),
                    source,
                })?;
                builder
                    .with_client_auth_cert(certs(cert, "certificate")?, k)
                    .map_err(|source| TlsError::Pair {
                        path: cert.clone(),
                        source,
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfPair),
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }
}

/// The name to verify for `host:port` (an IP address or a DNS name).
pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match addr.rfind(':') {
        Some(i) => &addr[..i],
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Name(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_addresses() {
        assert!(matches!(
            server_name("127.0.0.1:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("docker.example:2376").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn missing_files_are_named() {
        let o = TlsOptions {
            ca: "/nonexistent/ca.pem".into(),
            cert: None,
            key: None,
        };
        let e = o.connector().err().unwrap().to_string();
        assert_eq!(e, "cannot read CA certificate /nonexistent/ca.pem");
    }
}
