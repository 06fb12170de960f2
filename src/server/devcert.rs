//! The fresh-checkout default: with no `--tls-cert`/`--tls-key` and neither default file
//! present, create a development CA and a `localhost`/`127.0.0.1` serving certificate in
//! `certs/`. Explicit paths are never replaced: if they do not exist, that is an error.

use super::{DEFAULT_TLS_CERT, DEFAULT_TLS_KEY};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Validity of the development certificates.
const DEV_CERT_DAYS: u32 = 365;

/// Decides which cert/key paths to serve, creating the development pair when allowed.
pub fn resolve(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<(PathBuf, PathBuf)> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        (Some(_), None) | (None, Some(_)) => {
            bail!("--tls-cert and --tls-key must be given together")
        }
        (None, None) => {
            let cert = PathBuf::from(DEFAULT_TLS_CERT);
            let key = PathBuf::from(DEFAULT_TLS_KEY);
            match (exists(&cert), exists(&key)) {
                (true, true) => {}
                (false, false) => create_dev_pair(&cert)?,
                (true, false) | (false, true) => bail!(
                    "only one of {} and {} exists; remove it or run `podgate certs`",
                    cert.display(),
                    key.display()
                ),
            }
            Ok((cert, key))
        }
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn create_dev_pair(cert: &Path) -> anyhow::Result<()> {
    let dir = cert.parent().unwrap_or(Path::new("."));
    let bundle = crate::certs::generate(&crate::certs::CertSpec::localhost(DEV_CERT_DAYS))
        .context("generating a development certificate")?;
    crate::certs::write_bundle(dir, &bundle, false).with_context(|| {
        format!(
            "writing a development certificate to {} (remove stale files there or run `podgate certs`)",
            dir.display()
        )
    })?;
    tracing::warn!(
        ca = %dir.join("ca.crt").display(),
        cert = %cert.display(),
        "no certificate found at the default paths: created a development CA and a localhost certificate; trust the CA to call the webhook, use `podgate certs` or cert-manager for a cluster"
    );
    Ok(())
}
