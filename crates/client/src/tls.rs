//! TLS for `tcp://` hosts, in the docker CLI's two modes. With
//! [`ServerCheck::Ca`] (`--tlsverify`) the daemon's certificate must chain
//! to the CA and name the host dialled. With
//! [`ServerCheck::InsecureSkipVerify`] (`--tls` alone, `DOCKER_TLS`, or
//! `--tlsverify=false`) any certificate is accepted, as Go's
//! `InsecureSkipVerify` does; the handshake is still verified, so the
//! server must prove with its signature that it holds the key of the
//! certificate it presented. In both modes the client presents
//! `--tlscert`/`--tlskey` when given. [`TlsOptions`] holds the choice and
//! the paths; [`TlsOptions::connector`] reads the files once per client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the daemon's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCheck {
    /// It must chain to the CA certificates in this file and name the
    /// host dialled (`--tlsverify`).
    Ca(PathBuf),
    /// Not checked at all; only the handshake signatures are (docker's
    /// `--tls` without `--tlsverify`). Anyone on the path can pose as the
    /// daemon.
    InsecureSkipVerify,
}

/// How to speak TLS to a daemon: the server check, and the client pair
/// (both or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub server: ServerCheck,
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
    /// A connector checking the server as [`TlsOptions::server`] says,
    /// with the client pair when given.
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Versions)?;
        let builder = match &self.server {
            ServerCheck::Ca(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs(ca, "CA certificate")? {
                    roots.add(c).map_err(|source| TlsError::BadCa {
                        path: ca.clone(),
                        source,
                    })?;
                }
                builder.with_root_certificates(roots)
            }
            ServerCheck::InsecureSkipVerify => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider))),
        };
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

/// [`ServerCheck::InsecureSkipVerify`]: any certificate chain is accepted
/// for any name, at any time; the handshake signatures are checked against
/// the key of the certificate presented, with the provider's algorithms.
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
            server: ServerCheck::Ca("/nonexistent/ca.pem".into()),
            cert: None,
            key: None,
        };
        let e = o.connector().err().unwrap().to_string();
        assert_eq!(e, "cannot read CA certificate /nonexistent/ca.pem");
        // Without verification no CA is read (docker's client reads none).
        let skip = TlsOptions {
            server: ServerCheck::InsecureSkipVerify,
            ..o
        };
        assert!(skip.connector().is_ok());
        let half = TlsOptions {
            cert: Some("/nonexistent/cert.pem".into()),
            ..skip
        };
        assert!(matches!(half.connector(), Err(TlsError::HalfPair)));
    }

    /// Handshakes over an in-memory pipe with a server presenting
    /// certificates made here, none of which the client was told of.
    mod handshake {
        use super::*;
        use tokio_rustls::TlsAcceptor;
        use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
        use tokio_rustls::rustls::sign::CertifiedKey;
        use tokio_rustls::rustls::version::{TLS12, TLS13};
        use tokio_rustls::rustls::{
            CertificateError, Error as RustlsError, ServerConfig, SupportedProtocolVersion,
        };

        /// A fresh self-signed P-256 certificate for 127.0.0.1 and its key
        /// (PEM), from openssl.
        fn self_signed(cn: &str) -> (String, PrivateKeyDer<'static>) {
            let out = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
                .args(["-keyout", "/dev/stdout", "-out", "/dev/stdout"])
                .args(["-subj", &format!("/CN={cn}")])
                .args(["-addext", "subjectAltName=IP:127.0.0.1"])
                .output()
                .expect("openssl must be installed");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let pem = String::from_utf8(out.stdout).unwrap();
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
            (pem, key)
        }

        fn cert_of(pem: &str) -> CertificateDer<'static> {
            CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
        }

        /// Presents one certificate and signs the handshake with a key
        /// that need not be its own.
        #[derive(Debug)]
        struct Present(Arc<CertifiedKey>);

        impl ResolvesServerCert for Present {
            fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
                Some(self.0.clone())
            }
        }

        /// The client's side of a handshake with a server presenting
        /// `cert` and signing with `key`, in protocol `version`.
        async fn client_side(
            client: &TlsOptions,
            cert: CertificateDer<'static>,
            key: &PrivateKeyDer<'static>,
            version: &'static SupportedProtocolVersion,
        ) -> Result<(), std::io::Error> {
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let signer = provider
                .key_provider
                .load_private_key(key.clone_key())
                .unwrap();
            let server = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(Present(Arc::new(CertifiedKey::new(
                    vec![cert],
                    signer,
                )))));
            let (c, s) = tokio::io::duplex(64 * 1024);
            let accept = TlsAcceptor::from(Arc::new(server));
            let server = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                if let Ok(mut s) = accept.accept(s).await {
                    let _ = s.write_all(b"ok").await;
                    let _ = s.flush().await;
                }
            });
            let connector = client.connector().unwrap();
            let name = server_name("127.0.0.1:2376").unwrap();
            let result = async {
                use tokio::io::AsyncReadExt as _;
                let mut tls = connector.connect(name, c).await?;
                let mut buf = [0u8; 2];
                tls.read_exact(&mut buf).await?;
                assert_eq!(&buf, b"ok");
                Ok(())
            }
            .await;
            server.abort();
            result
        }

        fn rustls_error(e: &std::io::Error) -> &RustlsError {
            e.get_ref()
                .and_then(|i| i.downcast_ref::<RustlsError>())
                .unwrap_or_else(|| panic!("not a tls error: {e:?}"))
        }

        const SKIP: TlsOptions = TlsOptions {
            server: ServerCheck::InsecureSkipVerify,
            cert: None,
            key: None,
        };

        #[tokio::test]
        async fn any_certificate_is_accepted_without_verification() {
            let (pem, key) = self_signed("wharf-client-test-unknown");
            for version in [&TLS13, &TLS12] {
                client_side(&SKIP, cert_of(&pem), &key, version)
                    .await
                    .unwrap_or_else(|e| panic!("{version:?}: {e}"));
            }
            // The same server is refused when verifying against a CA
            // that did not sign it (rustls first finds that the server's
            // self-signed certificate is a CA one).
            let (other, _) = self_signed("wharf-client-test-other-ca");
            let ca = std::env::temp_dir().join(format!(
                "wharf-client-test-ca-{}-{:?}.pem",
                std::process::id(),
                std::thread::current().id()
            ));
            struct Remove(PathBuf);
            impl Drop for Remove {
                fn drop(&mut self) {
                    let _ = std::fs::remove_file(&self.0);
                }
            }
            let _guard = Remove(ca.clone());
            std::fs::write(&ca, &other).unwrap();
            let verified = TlsOptions {
                server: ServerCheck::Ca(ca),
                cert: None,
                key: None,
            };
            let e = client_side(&verified, cert_of(&pem), &key, &TLS13)
                .await
                .unwrap_err();
            assert!(
                matches!(rustls_error(&e), RustlsError::InvalidCertificate(_)),
                "{e:?}"
            );
        }

        #[tokio::test]
        async fn a_handshake_signed_with_another_key_fails() {
            // The server presents A's certificate but signs with B's key:
            // it cannot prove it holds A's key.
            let (a, _) = self_signed("wharf-client-test-a");
            let (_, b_key) = self_signed("wharf-client-test-b");
            for version in [&TLS13, &TLS12] {
                let e = client_side(&SKIP, cert_of(&a), &b_key, version)
                    .await
                    .unwrap_err();
                assert_eq!(
                    rustls_error(&e),
                    &RustlsError::InvalidCertificate(CertificateError::BadSignature),
                    "{version:?}"
                );
            }
        }
    }
}
