//! TLS material: loading and checking a certificate/key pair, the hot-swappable certificate
//! resolver and the rustls `ServerConfig` (ring only, TLS 1.2/1.3, ALPN `h2` + `http/1.1`).
//!
//! Must not fall back silently: a pair that does not load is an error the caller reports.

use arc_swap::ArcSwapOption;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("{path}: no usable private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("private key {key} does not match certificate {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("{path}: certificate expired at {not_after}")]
    Expired { path: PathBuf, not_after: String },
    #[error("{path}: certificate validity could not be read")]
    NoValidity { path: PathBuf },
    #[error("client CA {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Minimum TLS version accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMinVersion {
    #[value(name = "1.2")]
    V1_2,
    #[value(name = "1.3")]
    V1_3,
}

/// The ring provider, independent of whatever process default is installed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A loaded serving pair and what we know about it.
pub(crate) struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// notAfter of the leaf, Unix seconds
    pub not_after: i64,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    // `fs::read` follows symlinks, so the kubelet's `tls.crt -> ..data/tls.crt` reads the current version.
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a PEM cert chain and key, checks that the key matches the leaf and the leaf has
/// not expired at `now` (Unix seconds).
pub(crate) fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<LoadedCert, TlsError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    pair_from_pem(&cert_pem, &key_pem, cert_path, key_path, provider, now)
}

/// [`load_pair`] on PEM already in memory (a Secret read through the API); `cert_path` and
/// `key_path` only name the sources in errors.
pub(crate) fn pair_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<LoadedCert, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    };
    let not_after = not_after(leaf).ok_or_else(|| TlsError::NoValidity {
        path: cert_path.to_path_buf(),
    })?;
    if not_after <= now {
        return Err(TlsError::Expired {
            path: cert_path.to_path_buf(),
            not_after: format_ts(not_after),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            reason: e.to_string(),
        },
        other => TlsError::BadKey {
            path: key_path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        not_after,
    })
}

/// Reads a PEM bundle of CA certificates for client authentication.
pub(crate) fn load_client_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::ClientCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::ClientCa {
            path: path.to_path_buf(),
            reason: "no PEM certificate found".into(),
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::ClientCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Serves whatever `CertifiedKey` is current; a reload swaps it without touching open connections.
/// Without one (a replica that started with an invalid pair), every handshake is refused
/// until a valid pair is swapped in.
#[derive(Debug)]
pub(crate) struct CertResolver {
    current: ArcSwapOption<CertifiedKey>,
}

impl CertResolver {
    pub fn new(initial: Arc<CertifiedKey>) -> CertResolver {
        CertResolver {
            current: ArcSwapOption::new(Some(initial)),
        }
    }
    /// No certificate yet: handshakes are refused until [`CertResolver::swap`].
    pub fn empty() -> CertResolver {
        CertResolver {
            current: ArcSwapOption::empty(),
        }
    }
    pub fn swap(&self, key: Arc<CertifiedKey>) {
        self.current.store(Some(key));
    }
    #[cfg(test)]
    pub(crate) fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// Builds the server config: ring, TLS 1.2+ (or 1.3 only), rustls' default AEAD suites,
/// ALPN `h2` and `http/1.1` (the apiserver offers only `http/1.1` to service webhooks,
/// kubernetes/kubernetes#75791), client certificates only when `client_roots` is set.
pub(crate) fn server_config(
    provider: Arc<CryptoProvider>,
    min_version: TlsMinVersion,
    resolver: Arc<CertResolver>,
    client_roots: Option<RootCertStore>,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsMinVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsMinVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    let builder = match client_roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Formats Unix seconds as RFC 3339 for messages.
pub(crate) fn format_ts(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// notAfter of a DER X.509 certificate, Unix seconds (`x509-parser`); `None` when the bytes
/// are not a certificate.
pub(crate) fn not_after(der: &[u8]) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_after_rejects_truncated_der_without_panicking() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}

#[cfg(test)]
mod cert_tests {
    use super::*;

    fn pair(days_valid: i64) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(30);
        params.not_after = now + time::Duration::days(days_valid);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }

    #[test]
    fn loads_a_matching_pair_and_reads_its_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(10);
        let (c, k) = write(dir.path(), &cert, &key);
        let now = jiff::Timestamp::now().as_second();
        let loaded = load_pair(&c, &k, &provider(), now).unwrap();
        let days = (loaded.not_after - now) / 86_400;
        assert!((9..=10).contains(&days), "not_after {days} days away");
    }

    #[test]
    fn refuses_a_key_that_does_not_match_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = pair(10);
        let (_, other_key) = pair(10);
        let (c, k) = write(dir.path(), &cert, &other_key);
        let error = load_pair(&c, &k, &provider(), jiff::Timestamp::now().as_second());
        assert!(
            matches!(error, Err(TlsError::Mismatch { .. })),
            "{:?}",
            error.err()
        );
    }

    #[test]
    fn refuses_an_expired_certificate_and_garbage_pem() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(-1);
        let (c, k) = write(dir.path(), &cert, &key);
        let now = jiff::Timestamp::now().as_second();
        assert!(matches!(
            load_pair(&c, &k, &provider(), now),
            Err(TlsError::Expired { .. })
        ));
        let (c, k) = write(dir.path(), "not a pem", &key);
        assert!(matches!(
            load_pair(&c, &k, &provider(), now),
            Err(TlsError::NoCertificate { .. })
        ));
    }
}
