//! docker's `--tls` without `--tlsverify` (also `DOCKER_TLS=1`): TLS to a
//! `tcp://` daemon whose certificate is not checked against any CA or
//! name, as docker's client does with `InsecureSkipVerify`. The handshake
//! itself is still verified: the server must prove, by signing the
//! handshake, that it holds the key of the certificate it presented. The
//! client certificate is sent when one is configured.
//!
//! wharf-client only speaks TLS with CA verification, so the CLI puts a
//! private relay in front of it: a unix socket in a fresh `0700` directory
//! under the temp dir, served by a task of this process, that opens one
//! TLS connection to the daemon per accepted connection and copies bytes
//! both ways (hijacked attach/exec streams included). The client talks
//! plain HTTP to the relay. Before the relay starts, one direct
//! connection (handshake and `GET /_ping`) checks that the daemon is
//! reachable and accepts us, so a dead daemon or a refused handshake is
//! reported against the daemon's address. Dropping the
//! [`Relay`] stops the task and removes the directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// What stops an unverified TLS connection from being set up.
#[derive(Debug, thiserror::Error)]
pub enum InsecureTlsError {
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    #[error("--tlscert and --tlskey must be given together")]
    HalfPair,
    #[error("the client certificate {path} does not match its key")]
    Pair {
        path: PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    #[error("cannot set up tls")]
    Config(#[source] tokio_rustls::rustls::Error),
    #[error("invalid server name {0:?} for tls")]
    Name(String),
    #[error("Cannot connect to the wharf daemon at tcp://{addr}. Is the wharf daemon running?")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls handshake with the daemon at tcp://{addr} failed")]
    Handshake {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the tls relay socket under {path}")]
    Relay {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Accepts any server certificate; checks the handshake signatures with
/// the certificate's key.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connector that does not verify the server, with the client pair
/// when both files are given.
pub fn connector(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<TlsConnector, InsecureTlsError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(InsecureTlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)));
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let read = |what, path: &Path, e| InsecureTlsError::Read {
                what,
                path: path.to_owned(),
                source: e,
            };
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| read("certificate", cert, e))?;
            let k = PrivateKeyDer::from_pem_file(key).map_err(|e| read("private key", key, e))?;
            builder
                .with_client_auth_cert(chain, k)
                .map_err(|source| InsecureTlsError::Pair {
                    path: cert.to_owned(),
                    source,
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(InsecureTlsError::HalfPair),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn server_name(addr: &str) -> Result<ServerName<'static>, InsecureTlsError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| InsecureTlsError::Name(host.to_owned()))
}

async fn dial(
    tls: &TlsConnector,
    addr: &str,
    name: ServerName<'static>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, InsecureTlsError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| InsecureTlsError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    tls.connect(name, tcp)
        .await
        .map_err(|source| InsecureTlsError::Handshake {
            addr: addr.to_owned(),
            source,
        })
}

/// The running relay: its socket, and the task serving it.
pub struct Relay {
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Checks one handshake with `addr` (`host:port`), then serves the
    /// relay socket until dropped.
    pub async fn start(addr: &str, tls: TlsConnector) -> Result<Relay, InsecureTlsError> {
        let name = server_name(addr)?;
        // The daemon answers and accepts us: report failures against it.
        // With TLS 1.3 a refused client certificate only shows on the
        // first read, so one ping is exchanged.
        let mut first = dial(&tls, addr, name.clone()).await?;
        let refused = |source| InsecureTlsError::Handshake {
            addr: addr.to_owned(),
            source,
        };
        first
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: wharf\r\nConnection: close\r\n\r\n")
            .await
            .map_err(refused)?;
        let mut byte = [0u8; 1];
        match first.read(&mut byte).await {
            Ok(1..) => {}
            Ok(0) => {
                return Err(refused(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Err(e) => return Err(refused(e)),
        }
        drop(first);
        let tmp = std::env::temp_dir();
        let relay_err = |source| InsecureTlsError::Relay {
            path: tmp.clone(),
            source,
        };
        // tempfile makes the directory 0700: only this user reaches it.
        let dir = tempfile::Builder::new()
            .prefix("wharf-tls-")
            .tempdir()
            .map_err(relay_err)?;
        let listener =
            tokio::net::UnixListener::bind(dir.path().join("sock")).map_err(relay_err)?;
        let addr = addr.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let (tls, addr, name) = (tls.clone(), addr.clone(), name.clone());
                tokio::spawn(async move {
                    // A failed dial closes the local side: the client
                    // sees the connection end, as with a daemon going away.
                    if let Ok(mut remote) = dial(&tls, &addr, name).await {
                        let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                    }
                });
            }
        });
        Ok(Relay { dir, task })
    }

    /// The socket the client connects to.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_pair_rules() {
        assert!(connector(None, None).is_ok());
        assert!(matches!(
            connector(Some(Path::new("/nonexistent/cert.pem")), None),
            Err(InsecureTlsError::HalfPair)
        ));
        let e = connector(
            Some(Path::new("/nonexistent/cert.pem")),
            Some(Path::new("/nonexistent/key.pem")),
        )
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            "cannot read certificate /nonexistent/cert.pem"
        );
        assert!(matches!(
            server_name("127.0.0.1:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
    }
}
