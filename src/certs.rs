//! Development and cluster certificates for the webhook server: the `podgate certs` subcommand.
//!
//! [`generate`] is pure (no I/O): it makes an ECDSA P-256 CA and a serving certificate signed by
//! it. [`write_bundle`] is the only file I/O; [`run`] is the CLI edge. The kube-apiserver checks
//! the serving certificate against the webhook's `caBundle` with the server name
//! `<svc>.<ns>.svc`, and Go ignores the CN, so every name must be a SAN (see
//! `docs/apiserver-contract.md` section 1).
//!
//! The dev overlay (`deploy/overlays/dev`) includes the kustomize component in `certs/`, which
//! reads `tls.crt` and `tls.key` and the caBundle from `ca-bundle.env` in the same folder
//! ([`run`] writes it). The caBundle cannot come from `ca.crt` through a secretGenerator:
//! kustomize wraps long base64 Secret data over several lines, which the apiserver's Go decoder
//! tolerates but which is not the single-line `caBundle` this command prints.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::OffsetDateTime;

/// File names written by [`write_bundle`], as the dev kustomize component and the server expect.
pub(crate) const CA_CERT_FILE: &str = "ca.crt";
/// CA private key; needed only to issue another serving certificate from the same CA.
pub(crate) const CA_KEY_FILE: &str = "ca.key";
/// Serving certificate (`--tls-cert`).
pub(crate) const CERT_FILE: &str = "tls.crt";
/// Serving private key (`--tls-key`).
pub(crate) const KEY_FILE: &str = "tls.key";

/// `caBundle=<base64 of ca.crt>`, read by `certs/kustomization.yaml` (a kustomize env file).
pub(crate) const CA_BUNDLE_ENV_FILE: &str = "ca-bundle.env";

/// Longest validity accepted (ten years); longer certificates only hide a missing rotation.
pub(crate) const MAX_DAYS: u32 = 3650;

/// How far `notBefore` is backdated, so that nodes with a slightly late clock accept the
/// certificate right away.
const BACKDATE_SECONDS: i64 = 3600;

/// What to put in the certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// DNS SANs of the serving certificate; the first one is also its CN.
    pub dns_names: Vec<String>,
    /// IP SANs of the serving certificate.
    pub ip_addresses: Vec<IpAddr>,
    /// Validity of both certificates, counted from now.
    pub days: u32,
    /// Common name of the CA certificate.
    pub ca_common_name: String,
}

impl CertSpec {
    /// A spec for a local development server: `localhost`, `127.0.0.1` and `::1`.
    pub fn localhost(days: u32) -> Self {
        Self {
            dns_names: vec!["localhost".to_owned()],
            ip_addresses: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
            ],
            days,
            ca_common_name: "podgate development CA".to_owned(),
        }
    }
}

/// PEM-encoded CA and serving certificate with their PKCS#8 private keys.
#[derive(Clone, PartialEq, Eq)]
pub struct CertBundle {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertBundle {
    // Keep private keys out of logs and test failure output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertBundle")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("ca_key_pem", &"<redacted>")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl CertBundle {
    /// The webhook configurations' `caBundle`: standard base64 (with padding) of the CA PEM.
    pub(crate) fn ca_bundle_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_cert_pem.as_bytes())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate spec has no dns names or ip addresses")]
    NoNames,
    #[error("validity of {days} days is out of range (1 to {max})", max = MAX_DAYS)]
    InvalidDays { days: u32 },
    #[error("invalid dns name {name:?}")]
    InvalidName {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("validity of {seconds} seconds is out of range (1 second to {max} days)", max = MAX_DAYS)]
    InvalidValidity { seconds: i64 },
    #[error("the CA certificate or key cannot be used for signing")]
    LoadCa {
        #[source]
        source: rcgen::Error,
    },
    #[error("system clock is before 1970")]
    Clock,
    #[error("generating the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("refusing to overwrite existing file {path} (pass --force to replace it)", path = path.display())]
    Exists { path: PathBuf },
    #[error("creating directory {path}", path = path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}", path = path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The four names the apiserver and in-cluster clients may use for a Service:
/// `svc`, `svc.ns`, `svc.ns.svc` (the apiserver's TLS server name) and `svc.ns.svc.cluster.local`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Generates a CA (`isCA`, `keyCertSign`) and a serving certificate (`serverAuth`) signed by it,
/// both ECDSA P-256 with SHA-256, valid from one hour ago for `spec.days` days.
pub fn generate(spec: &CertSpec) -> Result<CertBundle, CertError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CertError::Clock)?
        .as_secs();
    let now = i64::try_from(now).map_err(|_| CertError::Clock)?;
    generate_at(spec, now)
}

/// [`generate`] with an explicit "now" (Unix seconds), so tests can pin the validity window.
fn generate_at(spec: &CertSpec, now_unix: i64) -> Result<CertBundle, CertError> {
    if spec.dns_names.is_empty() && spec.ip_addresses.is_empty() {
        return Err(CertError::NoNames);
    }
    if spec.days == 0 || spec.days > MAX_DAYS {
        return Err(CertError::InvalidDays { days: spec.days });
    }
    let validity = i64::from(spec.days) * 86_400;
    let ca = generate_ca_at(&spec.ca_common_name, validity, now_unix)?;
    let leaf = issue_serving_at(&ca, &spec.dns_names, &spec.ip_addresses, validity, now_unix)?;
    Ok(CertBundle {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    })
}

/// A PEM certificate with its PKCS#8 private key (a CA or a serving pair).
#[derive(Clone, PartialEq, Eq)]
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// How far `notBefore` goes back for a certificate valid `validity_secs`: an hour, or a tenth
/// of the validity for short-lived certificates (tests, and anyone who asks for minutes).
pub(crate) fn backdate_for(validity_secs: i64) -> i64 {
    (validity_secs / 10).clamp(0, BACKDATE_SECONDS)
}

fn window(
    validity_secs: i64,
    now_unix: i64,
) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    if validity_secs <= 0 || validity_secs > i64::from(MAX_DAYS) * 86_400 {
        return Err(CertError::InvalidValidity {
            seconds: validity_secs,
        });
    }
    let not_before = OffsetDateTime::from_unix_timestamp(now_unix - backdate_for(validity_secs))
        .map_err(|_| CertError::Clock)?;
    let not_after = OffsetDateTime::from_unix_timestamp(now_unix + validity_secs)
        .map_err(|_| CertError::Clock)?;
    Ok((not_before, not_after))
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = distinguished_name(common_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
}

/// A self-signed ECDSA P-256 CA valid from a little before `now_unix` for `validity_secs`.
pub(crate) fn generate_ca_at(
    common_name: &str,
    validity_secs: i64,
    now_unix: i64,
) -> Result<PemPair, CertError> {
    let (not_before, not_after) = window(validity_secs, now_unix)?;
    let gen_err = |what: &'static str| move |source| CertError::Generate { what, source };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err("ca key"))?;
    let mut params = ca_params(common_name);
    params.not_before = not_before;
    params.not_after = not_after;
    let ca_cert = params
        .self_signed(&ca_key)
        .map_err(gen_err("ca certificate"))?;
    Ok(PemPair {
        cert_pem: ca_cert.pem(),
        key_pem: ca_key.serialize_pem(),
    })
}

/// A serving certificate (`serverAuth`, every name a SAN, the first DNS name also the CN)
/// signed by `ca`, ECDSA P-256, valid from a little before `now_unix` for `validity_secs`.
/// Callers that must not outlive the CA pass a shorter validity.
pub fn issue_serving_at(
    ca: &PemPair,
    dns_names: &[String],
    ip_addresses: &[IpAddr],
    validity_secs: i64,
    now_unix: i64,
) -> Result<PemPair, CertError> {
    if dns_names.is_empty() && ip_addresses.is_empty() {
        return Err(CertError::NoNames);
    }
    let (not_before, not_after) = window(validity_secs, now_unix)?;
    let mut sans = Vec::with_capacity(dns_names.len() + ip_addresses.len());
    for name in dns_names {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|source| CertError::InvalidName {
                name: name.clone(),
                source,
            })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ip_addresses.iter().copied().map(SanType::IpAddress));
    let leaf_cn = dns_names
        .first()
        .cloned()
        .or_else(|| ip_addresses.first().map(IpAddr::to_string))
        .ok_or(CertError::NoNames)?;

    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|source| CertError::LoadCa { source })?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)
        .map_err(|source| CertError::LoadCa { source })?;

    let gen_err = |what: &'static str| move |source| CertError::Generate { what, source };
    let leaf_key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err("serving key"))?;
    let mut leaf_params = CertificateParams::default();
    leaf_params.distinguished_name = distinguished_name(&leaf_cn);
    leaf_params.subject_alt_names = sans;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = not_before;
    leaf_params.not_after = not_after;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(gen_err("serving certificate"))?;
    Ok(PemPair {
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` into `dir` (created if missing). Keys get
/// mode 0600, certificates 0644. Without `force`, nothing is written if any of the four files
/// exists; with `force`, each file is replaced atomically (write a temporary file, then rename).
pub(crate) fn write_bundle(dir: &Path, bundle: &CertBundle, force: bool) -> Result<(), CertError> {
    let files: [(&str, &str, u32); 4] = [
        (CA_CERT_FILE, &bundle.ca_cert_pem, 0o644),
        (CA_KEY_FILE, &bundle.ca_key_pem, 0o600),
        (CERT_FILE, &bundle.cert_pem, 0o644),
        (KEY_FILE, &bundle.key_pem, 0o600),
    ];
    fs::create_dir_all(dir).map_err(|source| CertError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    if !force {
        // Check all four first so a refusal leaves the directory untouched.
        for (name, _, _) in &files {
            let path = dir.join(name);
            if fs::symlink_metadata(&path).is_ok() {
                return Err(CertError::Exists { path });
            }
        }
    }
    for (name, contents, mode) in files {
        let path = dir.join(name);
        let result = if force {
            replace_file(dir, name, contents, mode)
        } else {
            create_new_file(&path, contents, mode)
        };
        result.map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CertError::Exists { path: path.clone() }
            } else {
                CertError::Write {
                    path: path.clone(),
                    source,
                }
            }
        })?;
    }
    Ok(())
}

/// Creates `path`, failing if it exists (no window between the check and the write).
fn create_new_file(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    let mut file = open_with_mode(OpenOptions::new().write(true).create_new(true), mode, path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Replaces `dir/name` atomically, so a server watching the folder never reads half a key.
fn replace_file(dir: &Path, name: &str, contents: &str, mode: u32) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    // A leftover from an interrupted run may carry other permissions; start from scratch.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = open_with_mode(OpenOptions::new().write(true).create_new(true), mode, &tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))
}

#[cfg(unix)]
fn open_with_mode(opts: &mut OpenOptions, mode: u32, path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = opts.mode(mode).open(path)?;
    // The umask may have removed bits from a certificate's 0644; keys only ever lose bits.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_with_mode(opts: &mut OpenOptions, _mode: u32, path: &Path) -> std::io::Result<fs::File> {
    opts.open(path)
}

/// Arguments of `podgate certs`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct CertsArgs {
    /// Name of the webhook's Service.
    #[arg(long, default_value = "podgate")]
    pub service: String,
    /// Namespace of the webhook's Service.
    #[arg(long, default_value = "podgate-system")]
    pub namespace: String,
    /// Directory for ca.crt, ca.key, tls.crt and tls.key (created if missing).
    #[arg(long, default_value = "certs/")]
    pub out: PathBuf,
    /// Validity of the certificates in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    pub days: u32,
    /// Extra SAN for the serving certificate; IP addresses become IP SANs (repeatable).
    #[arg(long = "host", value_name = "EXTRA")]
    pub hosts: Vec<String>,
    /// Replace existing files in --out.
    #[arg(long)]
    pub force: bool,
}

impl CertsArgs {
    /// The certificate spec these arguments describe: the four Service names plus `--host`s.
    pub fn spec(&self) -> CertSpec {
        let mut dns_names = service_names(&self.service, &self.namespace);
        let mut ip_addresses = Vec::new();
        for host in &self.hosts {
            match host.parse::<IpAddr>() {
                Ok(ip) if !ip_addresses.contains(&ip) => ip_addresses.push(ip),
                Ok(_) => {}
                Err(_) if !dns_names.contains(host) => dns_names.push(host.clone()),
                Err(_) => {}
            }
        }
        CertSpec {
            dns_names,
            ip_addresses,
            days: self.days,
            ca_common_name: format!("podgate CA for {}.{}", self.service, self.namespace),
        }
    }
}

/// `podgate certs`: generates the bundle, writes it to `--out` together with
/// `ca-bundle.env` for the dev overlay, and prints the base64 `caBundle` on stdout (alone, so
/// `CA_BUNDLE=$(podgate certs ...)` works); progress goes to stderr.
pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    let bundle = generate(&args.spec()).context("generating certificates")?;
    write_bundle(&args.out, &bundle, args.force)?;
    // Derived from the ca.crt just written, so it is always replaced, never refused.
    let env = format!("caBundle={}\n", bundle.ca_bundle_base64());
    replace_file(&args.out, CA_BUNDLE_ENV_FILE, &env, 0o644).map_err(|source| {
        CertError::Write {
            path: args.out.join(CA_BUNDLE_ENV_FILE),
            source,
        }
    })?;
    eprintln!(
        "wrote {CA_CERT_FILE}, {CA_KEY_FILE}, {CERT_FILE}, {KEY_FILE} and {CA_BUNDLE_ENV_FILE} to {} \
         (valid {} days); caBundle follows",
        args.out.display(),
        args.days
    );
    println!("{}", bundle.ca_bundle_base64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::*;

    fn der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }

    fn service_spec() -> CertSpec {
        CertsArgs {
            service: "podgate".into(),
            namespace: "podgate-system".into(),
            out: PathBuf::from("unused"),
            days: 30,
            hosts: vec!["podgate.example.com".into(), "10.0.0.7".into()],
            force: false,
        }
        .spec()
    }

    #[test]
    fn service_names_are_the_four_in_cluster_forms() {
        assert_eq!(
            service_names("podgate", "podgate-system"),
            [
                "podgate",
                "podgate.podgate-system",
                "podgate.podgate-system.svc",
                "podgate.podgate-system.svc.cluster.local"
            ]
        );
    }

    #[test]
    fn hosts_split_into_dns_and_ip_sans_without_duplicates() {
        let args = CertsArgs {
            service: "s".into(),
            namespace: "n".into(),
            out: PathBuf::from("x"),
            days: 1,
            hosts: vec![
                "127.0.0.1".into(),
                "::1".into(),
                "extra.local".into(),
                "s.n.svc".into(),
                "127.0.0.1".into(),
            ],
            force: false,
        };
        let spec = args.spec();
        assert_eq!(
            spec.dns_names,
            [
                "s",
                "s.n",
                "s.n.svc",
                "s.n.svc.cluster.local",
                "extra.local"
            ]
        );
        assert_eq!(
            spec.ip_addresses,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn leaf_carries_every_san_cn_server_auth_and_no_ca_flag() {
        let spec = service_spec();
        let bundle = generate(&spec).unwrap();
        let leaf_der = der(&bundle.cert_pem);
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();

        let san = leaf.subject_alternative_name().unwrap().unwrap();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => ips.push(b.to_vec()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!(dns, spec.dns_names);
        assert_eq!(ips, [vec![10u8, 0, 0, 7]]);

        let cn: Vec<_> = leaf
            .subject()
            .iter_common_name()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(cn, ["podgate"]);
        let eku = leaf.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth);
        let bc = leaf.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca);
        assert_eq!(
            leaf.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
    }

    #[test]
    fn ca_is_a_ca_that_can_sign_certificates() {
        let bundle = generate(&service_spec()).unwrap();
        let ca_der = der(&bundle.ca_cert_pem);
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        assert!(ca.basic_constraints().unwrap().unwrap().value.ca);
        assert!(ca.key_usage().unwrap().unwrap().value.key_cert_sign());
        let cn: Vec<_> = ca
            .subject()
            .iter_common_name()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(cn, ["podgate CA for podgate.podgate-system"]);
    }

    #[test]
    fn validity_starts_one_hour_back_and_lasts_the_requested_days() {
        let now = 1_800_000_000;
        let bundle = generate_at(&service_spec(), now).unwrap();
        for pem in [&bundle.ca_cert_pem, &bundle.cert_pem] {
            let d = der(pem);
            let (_, cert) = X509Certificate::from_der(&d).unwrap();
            assert_eq!(cert.validity().not_before.timestamp(), now - 3600);
            assert_eq!(cert.validity().not_after.timestamp(), now + 30 * 86_400);
        }
    }

    /// The check a TLS client makes (rustls/webpki, ring): does `leaf_pem` chain to
    /// `ca_pem` as the only root and carry `name`?
    fn verifies(ca_pem: &str, leaf_pem: &str, name: &str) -> bool {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        use std::sync::Arc;

        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(der(ca_pem))).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from(der(leaf_pem));
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    /// `podgate.podgate-system.svc` is the server name the apiserver sends.
    #[test]
    fn ca_verifies_the_leaf_for_the_apiserver_server_name() {
        let bundle = generate(&service_spec()).unwrap();
        for name in [
            "podgate.podgate-system.svc",
            "podgate.podgate-system.svc.cluster.local",
            "podgate.example.com",
            "10.0.0.7",
        ] {
            assert!(
                verifies(&bundle.ca_cert_pem, &bundle.cert_pem, name),
                "{name}"
            );
        }
        assert!(!verifies(
            &bundle.ca_cert_pem,
            &bundle.cert_pem,
            "other.podgate-system.svc"
        ));
    }

    #[test]
    fn a_different_ca_does_not_verify_the_leaf() {
        let bundle = generate(&service_spec()).unwrap();
        let other = generate(&service_spec()).unwrap();
        assert!(!verifies(
            &other.ca_cert_pem,
            &bundle.cert_pem,
            "podgate.podgate-system.svc"
        ));
    }

    #[test]
    fn localhost_spec_verifies_for_loopback_ip_and_name() {
        let bundle = generate(&CertSpec::localhost(1)).unwrap();
        for name in ["localhost", "127.0.0.1", "::1"] {
            assert!(
                verifies(&bundle.ca_cert_pem, &bundle.cert_pem, name),
                "{name}"
            );
        }
    }

    #[test]
    fn keys_are_pkcs8_p256_and_match_their_certificates() {
        let bundle = generate(&service_spec()).unwrap();
        for (key_pem, cert_pem) in [
            (&bundle.ca_key_pem, &bundle.ca_cert_pem),
            (&bundle.key_pem, &bundle.cert_pem),
        ] {
            assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let key = KeyPair::from_pem(key_pem).unwrap();
            assert_eq!(key.algorithm(), &PKCS_ECDSA_P256_SHA256);
            let d = der(cert_pem);
            let (_, cert) = X509Certificate::from_der(&d).unwrap();
            assert_eq!(
                cert.public_key().subject_public_key.data.as_ref(),
                key.public_key_raw()
            );
        }
    }

    #[test]
    fn rejects_empty_names_and_out_of_range_days() {
        let mut spec = service_spec();
        spec.days = 0;
        assert!(matches!(
            generate(&spec),
            Err(CertError::InvalidDays { days: 0 })
        ));
        spec.days = MAX_DAYS + 1;
        assert!(matches!(
            generate(&spec),
            Err(CertError::InvalidDays { .. })
        ));
        let empty = CertSpec {
            dns_names: vec![],
            ip_addresses: vec![],
            days: 1,
            ca_common_name: "ca".into(),
        };
        assert!(matches!(generate(&empty), Err(CertError::NoNames)));
        let bad = CertSpec {
            dns_names: vec!["bäd.example".into()],
            ..empty
        };
        assert!(matches!(generate(&bad), Err(CertError::InvalidName { .. })));
    }

    #[test]
    fn debug_output_redacts_private_keys() {
        let bundle = generate(&service_spec()).unwrap();
        let debug = format!("{bundle:?}");
        assert!(!debug.contains("PRIVATE KEY"));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn ca_bundle_is_standard_padded_base64_of_the_ca_pem() {
        let bundle = generate(&service_spec()).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(bundle.ca_bundle_base64())
            .unwrap();
        assert_eq!(decoded, bundle.ca_cert_pem.as_bytes());
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn writes_four_files_with_private_keys_mode_0600_into_a_new_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/certs");
        let bundle = generate(&service_spec()).unwrap();
        write_bundle(&dir, &bundle, false).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("ca.crt")).unwrap(),
            bundle.ca_cert_pem
        );
        assert_eq!(
            fs::read_to_string(dir.join("ca.key")).unwrap(),
            bundle.ca_key_pem
        );
        assert_eq!(
            fs::read_to_string(dir.join("tls.crt")).unwrap(),
            bundle.cert_pem
        );
        assert_eq!(
            fs::read_to_string(dir.join("tls.key")).unwrap(),
            bundle.key_pem
        );
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(mode(&dir.join("tls.key")), 0o600);
        assert_eq!(mode(&dir.join("ca.crt")), 0o644);
        assert_eq!(mode(&dir.join("tls.crt")), 0o644);
    }

    #[test]
    fn refuses_to_overwrite_any_existing_file_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("tls.key");
        fs::write(&existing, "keep me").unwrap();
        let bundle = generate(&service_spec()).unwrap();
        let err = write_bundle(tmp.path(), &bundle, false).unwrap_err();
        assert!(matches!(&err, CertError::Exists { path } if path == &existing));
        assert!(err.to_string().contains("--force"));
        assert_eq!(fs::read_to_string(&existing).unwrap(), "keep me");
        for name in ["ca.crt", "ca.key", "tls.crt"] {
            assert!(!tmp.path().join(name).exists(), "{name} was written");
        }
    }

    #[cfg(unix)]
    #[test]
    fn force_replaces_files_and_tightens_a_loose_key_mode() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let first = generate(&service_spec()).unwrap();
        write_bundle(tmp.path(), &first, false).unwrap();
        fs::set_permissions(
            tmp.path().join("tls.key"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let second = generate(&service_spec()).unwrap();
        write_bundle(tmp.path(), &second, true).unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("tls.crt")).unwrap(),
            second.cert_pem
        );
        assert_eq!(mode(&tmp.path().join("tls.key")), 0o600);
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn run_writes_the_bundle_and_refuses_a_second_run_without_force() {
        let tmp = tempfile::tempdir().unwrap();
        let args = CertsArgs {
            service: "podgate".into(),
            namespace: "podgate-system".into(),
            out: tmp.path().join("certs"),
            days: 365,
            hosts: vec![],
            force: false,
        };
        run(&args).unwrap();
        let ca = fs::read_to_string(args.out.join("ca.crt")).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let env = fs::read_to_string(args.out.join(CA_BUNDLE_ENV_FILE)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
        assert_eq!(env, format!("caBundle={b64}\n"));
        let err = run(&args).unwrap_err();
        assert!(format!("{err:#}").contains("refusing to overwrite"));
        run(&CertsArgs {
            force: true,
            ..args.clone()
        })
        .unwrap();
        let new_ca = fs::read_to_string(args.out.join("ca.crt")).unwrap();
        assert_ne!(new_ca, ca);
        let env = fs::read_to_string(args.out.join(CA_BUNDLE_ENV_FILE)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(new_ca.as_bytes());
        assert_eq!(
            env,
            format!("caBundle={b64}\n"),
            "ca-bundle.env follows ca.crt"
        );
    }

    #[test]
    fn cli_defaults_match_the_documented_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            certs: CertsArgs,
        }
        let cli = Cli::try_parse_from(["podgate"]).unwrap();
        assert_eq!(
            cli.certs,
            CertsArgs {
                service: "podgate".into(),
                namespace: "podgate-system".into(),
                out: PathBuf::from("certs/"),
                days: 365,
                hosts: vec![],
                force: false,
            }
        );
        let cli = Cli::try_parse_from([
            "podgate",
            "--host",
            "a.example",
            "--host",
            "10.1.2.3",
            "--days",
            "7",
            "--force",
        ])
        .unwrap();
        assert_eq!(cli.certs.hosts, ["a.example", "10.1.2.3"]);
        assert_eq!(cli.certs.days, 7);
        assert!(cli.certs.force);
        assert!(Cli::try_parse_from(["podgate", "--days", "0"]).is_err());
    }
}
