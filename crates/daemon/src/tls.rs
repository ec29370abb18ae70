//! TLS for `tcp://` hosts, as dockerd's `--tlsverify`: the server presents
//! `--tlscert`/`--tlskey` and accepts only clients whose certificate chains
//! to `--tlscacert`. Plain TCP is refused (the API is root on the host).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};

use crate::config::Tls;

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let v = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM certificate in {}", path.display()))?;
    if v.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(v)
}

/// The acceptor for `--tlsverify` hosts.
pub fn acceptor(tls: &Tls) -> anyhow::Result<TlsAcceptor> {
    if !tls.verify {
        bail!(
            "tcp hosts need --tlsverify (client certificates): anyone reaching a plain or server-only TLS socket would be root on this host"
        );
    }
    let (Some(ca), Some(cert), Some(key)) = (&tls.cacert, &tls.cert, &tls.key) else {
        bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey");
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .with_context(|| format!("invalid CA certificate in {}", ca.display()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("cannot build the client certificate verifier")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read private key {}", key.display()))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert)?, key)
        .with_context(|| format!("certificate {} does not match its key", cert.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TCP listener whose connections are TLS-accepted in their own task.
pub struct TlsListener {
    pub tcp: tokio::net::TcpListener,
    pub acceptor: TlsAcceptor,
}

impl wharf_api::server::Accept for TlsListener {
    type Io = tokio::net::TcpStream;
    type Conn = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        self.tcp.accept().await.map(|(s, _)| s)
    }

    fn prepare(
        &self,
        io: Self::Io,
    ) -> impl Future<Output = std::io::Result<Self::Conn>> + Send + 'static {
        let accept = self.acceptor.accept(io);
        async move {
            tokio::time::timeout(std::time::Duration::from_secs(10), accept)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })?
        }
    }
}
