//! What podgate's certificate Secret holds, read into checked values and written back.
//!
//! Keys of the Secret's `data` (all PEM):
//! - `ca.crt`, `ca.key`: the CA that signs the serving certificate now;
//! - `tls.crt`, `tls.key`: the serving pair (the names of a `kubernetes.io/tls` Secret);
//! - `ca-next.crt`, `ca-next.key`: during a CA rotation, the new CA, already trusted by the
//!   webhooks' caBundle but not yet signing;
//! - `ca-previous.crt`: after the switch, the old CA, still trusted until every replica serves
//!   a certificate from the new one (its key is gone: nothing can sign with it any more).
//!
//! The caBundle is previous + current + next, in that order ([`Material::ca_bundle`]).
//!
//! Replicas report what they serve in annotations `serving.podgate.dev/<replica>` with the
//! value `<fingerprint of the CA behind the served certificate> <unix seconds>`.
//!
//! A CA that cannot be read is an error for a human (the Secret is not podgate's, or was
//! damaged): podgate never overwrites it. A serving pair that is missing, damaged, expired or
//! not from the CA is only a reason to issue a new one.

use crate::certs::PemPair;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The current CA certificate.
pub(crate) const CA_CERT: &str = "ca.crt";
/// The current CA key.
pub(crate) const CA_KEY: &str = "ca.key";
/// The serving certificate.
pub(crate) const TLS_CERT: &str = "tls.crt";
/// The serving key.
pub(crate) const TLS_KEY: &str = "tls.key";
/// The staged next CA certificate.
pub(crate) const NEXT_CA_CERT: &str = "ca-next.crt";
/// The staged next CA key.
pub(crate) const NEXT_CA_KEY: &str = "ca-next.key";
/// The previous CA certificate, kept in the caBundle for the overlap.
pub(crate) const PREVIOUS_CA_CERT: &str = "ca-previous.crt";

/// Annotation prefix of the replicas' reports.
pub(crate) const REPORT_PREFIX: &str = "serving.podgate.dev/";
/// When the next CA was staged (Unix seconds).
pub(crate) const NEXT_STAGED_AT: &str = "podgate.dev/ca-next-staged-at";
/// When the current CA started signing (Unix seconds); the previous CA goes no earlier than
/// the propagation delay after it.
pub(crate) const PROMOTED_AT: &str = "podgate.dev/ca-promoted-at";
/// Set by `podgate uninstall-webhooks`: replicas neither register nor repair the webhooks.
pub(crate) const WEBHOOKS_ANNOTATION: &str = "podgate.dev/webhooks";
/// The value of [`WEBHOOKS_ANNOTATION`] that switches registration off.
pub(crate) const WEBHOOKS_UNINSTALLED: &str = "uninstalled";

/// Why the Secret's CA cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MaterialError {
    #[error("key {key} is missing")]
    Missing { key: &'static str },
    #[error("key {key}: {reason}")]
    Bad { key: &'static str, reason: String },
}

/// Validity and identity of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFacts {
    /// notBefore, Unix seconds
    pub not_before: i64,
    /// notAfter, Unix seconds
    pub not_after: i64,
    /// First 16 hex digits of the SHA-256 of the DER.
    pub fingerprint: String,
}

impl CertFacts {
    /// Two thirds into the validity window: when a certificate is renewed.
    pub(crate) fn renew_at(&self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}

/// A CA with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ca {
    pub pair: PemPair,
    pub facts: CertFacts,
}

/// A serving pair that verifies against the current CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Serving {
    pub pair: PemPair,
    pub facts: CertFacts,
}

/// The Secret's contents, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Material {
    pub ca: Ca,
    pub next: Option<Ca>,
    /// The previous CA certificate (PEM) and its facts.
    pub previous: Option<(String, CertFacts)>,
    /// The serving pair, or why there is no usable one.
    pub serving: Result<Serving, String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn text(data: &BTreeMap<String, Vec<u8>>, key: &'static str) -> Result<String, MaterialError> {
    let bytes = data.get(key).ok_or(MaterialError::Missing { key })?;
    String::from_utf8(bytes.clone()).map_err(|_| MaterialError::Bad {
        key,
        reason: "not utf-8 PEM text".into(),
    })
}

fn first_cert(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| "no PEM certificate".to_string())?
        .map_err(|e| format!("bad PEM: {e}"))
}

/// Validity, fingerprint and CA flag of a DER certificate.
fn facts(der: &[u8]) -> Result<(CertFacts, bool), String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not X.509: {e}"))?;
    let validity = cert.validity();
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    let digest = Sha256::digest(der);
    let fingerprint = digest
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok((
        CertFacts {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            fingerprint,
        },
        is_ca,
    ))
}

/// The facts of the first certificate of a PEM text.
pub(crate) fn cert_facts(pem: &str) -> Result<CertFacts, String> {
    let der = first_cert(pem)?;
    facts(&der).map(|(f, _)| f)
}

fn key_matches(cert: CertificateDer<'static>, key_pem: &str) -> Result<(), String> {
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("no usable private key: {e}"))?;
    CertifiedKey::from_der(vec![cert], key, &provider())
        .map(|_| ())
        .map_err(|e| format!("key does not match the certificate: {e}"))
}

fn read_ca(
    data: &BTreeMap<String, Vec<u8>>,
    cert_key: &'static str,
    key_key: &'static str,
) -> Result<Ca, MaterialError> {
    let cert_pem = text(data, cert_key)?;
    let key_pem = text(data, key_key)?;
    let bad = |key: &'static str| move |reason: String| MaterialError::Bad { key, reason };
    let der = first_cert(&cert_pem).map_err(bad(cert_key))?;
    let (facts, is_ca) = facts(&der).map_err(bad(cert_key))?;
    if !is_ca {
        return Err(MaterialError::Bad {
            key: cert_key,
            reason: "not a CA certificate (basicConstraints CA is not set)".into(),
        });
    }
    key_matches(der, &key_pem).map_err(bad(key_key))?;
    Ok(Ca {
        pair: PemPair { cert_pem, key_pem },
        facts,
    })
}

/// Does `leaf_pem` chain to `ca_pem`, name `server_name` and hold at `now`?
pub(crate) fn verify_serving(
    ca_pem: &str,
    leaf_pem: &str,
    server_name: &str,
    now: i64,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("bad CA PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("bad CA: {e}"))?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("no CA to verify with: {e}"))?;
    let leaf = first_cert(leaf_pem)?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| format!("bad server name {server_name}: {e}"))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now).unwrap_or(0),
    ));
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], at)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn read_serving(
    data: &BTreeMap<String, Vec<u8>>,
    ca: &Ca,
    server_name: &str,
    now: i64,
) -> Result<Serving, String> {
    let cert_pem = text(data, TLS_CERT).map_err(|e| e.to_string())?;
    let key_pem = text(data, TLS_KEY).map_err(|e| e.to_string())?;
    let der = first_cert(&cert_pem).map_err(|e| format!("key {TLS_CERT}: {e}"))?;
    let (facts, _) = facts(&der).map_err(|e| format!("key {TLS_CERT}: {e}"))?;
    key_matches(der, &key_pem).map_err(|e| format!("key {TLS_KEY}: {e}"))?;
    verify_serving(&ca.pair.cert_pem, &cert_pem, server_name, now).map_err(|e| {
        format!("{TLS_CERT} does not verify against {CA_CERT} for {server_name}: {e}")
    })?;
    Ok(Serving {
        pair: PemPair { cert_pem, key_pem },
        facts,
    })
}

impl Material {
    /// Reads and checks a Secret's `data`. `server_name` is the name the apiserver verifies
    /// (`<service>.<namespace>.svc`); `now` is Unix seconds.
    pub fn read(
        data: &BTreeMap<String, Vec<u8>>,
        server_name: &str,
        now: i64,
    ) -> Result<Material, MaterialError> {
        let ca = read_ca(data, CA_CERT, CA_KEY)?;
        let next = if data.contains_key(NEXT_CA_CERT) || data.contains_key(NEXT_CA_KEY) {
            Some(read_ca(data, NEXT_CA_CERT, NEXT_CA_KEY)?)
        } else {
            None
        };
        let previous = match data.get(PREVIOUS_CA_CERT) {
            None => None,
            Some(_) => {
                let pem = text(data, PREVIOUS_CA_CERT)?;
                let facts = cert_facts(&pem).map_err(|reason| MaterialError::Bad {
                    key: PREVIOUS_CA_CERT,
                    reason,
                })?;
                Some((pem, facts))
            }
        };
        let serving = read_serving(data, &ca, server_name, now);
        Ok(Material {
            ca,
            next,
            previous,
            serving,
        })
    }

    /// The Secret `data` for this material.
    pub(crate) fn to_data(&self) -> BTreeMap<String, Vec<u8>> {
        let mut data = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            data.insert(key.to_string(), value.as_bytes().to_vec());
        };
        put(CA_CERT, &self.ca.pair.cert_pem);
        put(CA_KEY, &self.ca.pair.key_pem);
        if let Ok(serving) = &self.serving {
            put(TLS_CERT, &serving.pair.cert_pem);
            put(TLS_KEY, &serving.pair.key_pem);
        }
        if let Some(next) = &self.next {
            put(NEXT_CA_CERT, &next.pair.cert_pem);
            put(NEXT_CA_KEY, &next.pair.key_pem);
        }
        if let Some((pem, _)) = &self.previous {
            put(PREVIOUS_CA_CERT, pem);
        }
        data
    }

    /// The PEM caBundle: previous, current and next CA, each once.
    pub fn ca_bundle(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if let Some((pem, _)) = &self.previous {
            parts.push(pem);
        }
        parts.push(&self.ca.pair.cert_pem);
        if let Some(next) = &self.next {
            parts.push(&next.pair.cert_pem);
        }
        let mut bundle = String::new();
        let mut seen: Vec<String> = Vec::new();
        for part in parts {
            let trimmed = part.trim();
            if seen.iter().any(|s| s == trimmed) {
                continue;
            }
            seen.push(trimmed.to_string());
            bundle.push_str(trimmed);
            bundle.push('\n');
        }
        bundle
    }
}

/// The DER certificates of a PEM bundle (unreadable blocks are skipped).
pub(crate) fn bundle_certs(pem: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// Does the PEM bundle `bundle` contain the certificate `cert_pem`?
pub(crate) fn bundle_contains(bundle: &str, cert_pem: &str) -> bool {
    let Ok(wanted) = first_cert(cert_pem) else {
        return false;
    };
    bundle_certs(bundle)
        .iter()
        .any(|c| c.as_slice() == wanted.as_ref())
}

/// One replica's report: which CA its served certificate comes from, and when it said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub replica: String,
    pub ca_fingerprint: String,
    pub at: i64,
}

/// The annotation key for a replica's report. Annotation names are at most 63 characters of
/// `[A-Za-z0-9._-]`, starting and ending alphanumeric; other characters become `-`, and a
/// longer id is cut and suffixed with a hash so that two ids never share a key.
pub(crate) fn report_key(replica: &str) -> String {
    let mut name: String = replica
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.len() > 63 || name != replica {
        let digest = Sha256::digest(replica.as_bytes());
        let suffix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        name.truncate(54);
        name = format!("{name}-{suffix}");
    }
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if name.is_empty() { "replica" } else { name };
    format!("{REPORT_PREFIX}{name}")
}

/// The annotation value of a report.
pub(crate) fn report_value(ca_fingerprint: &str, at: i64) -> String {
    format!("{ca_fingerprint} {at}")
}

/// The reports found in a Secret's annotations; malformed ones are ignored (they can only
/// come from a hand edit and would otherwise block a rotation forever).
pub fn reports(annotations: &BTreeMap<String, String>) -> Vec<Report> {
    annotations
        .iter()
        .filter_map(|(key, value)| {
            let replica = key.strip_prefix(REPORT_PREFIX)?;
            let (fingerprint, at) = value.split_once(' ')?;
            Some(Report {
                replica: replica.to_string(),
                ca_fingerprint: fingerprint.to_string(),
                at: at.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The fingerprint of the CA that issued `serving` among the CAs `material` knows (current,
/// previous, next), by verifying the chain.
pub(crate) fn issuing_ca(
    material: &Material,
    leaf_pem: &str,
    server_name: &str,
    now: i64,
) -> Option<String> {
    let mut candidates: Vec<(&str, &str)> =
        vec![(&material.ca.pair.cert_pem, &material.ca.facts.fingerprint)];
    if let Some((pem, facts)) = &material.previous {
        candidates.push((pem, &facts.fingerprint));
    }
    if let Some(next) = &material.next {
        candidates.push((&next.pair.cert_pem, &next.facts.fingerprint));
    }
    candidates
        .into_iter()
        .find(|(ca, _)| verify_serving(ca, leaf_pem, server_name, now).is_ok())
        .map(|(_, fp)| fp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{generate_ca_at, issue_serving_at};

    const NAME: &str = "podgate.podgate-system.svc";
    const NOW: i64 = 1_900_000_000;

    fn ca(validity: i64) -> PemPair {
        generate_ca_at("test CA", validity, NOW).unwrap()
    }

    fn leaf(ca: &PemPair, validity: i64) -> PemPair {
        issue_serving_at(ca, &[NAME.to_string()], &[], validity, NOW).unwrap()
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn reads_a_complete_secret_and_writes_the_same_data_back() {
        let ca = ca(3600);
        let leaf = leaf(&ca, 600);
        let input = data(&[
            (CA_CERT, &ca.cert_pem),
            (CA_KEY, &ca.key_pem),
            (TLS_CERT, &leaf.cert_pem),
            (TLS_KEY, &leaf.key_pem),
        ]);
        let material = Material::read(&input, NAME, NOW + 10).unwrap();
        let serving = material.serving.as_ref().unwrap();
        assert_eq!(serving.facts.not_after, NOW + 600);
        assert_eq!(material.ca.facts.not_after, NOW + 3600);
        assert_eq!(material.to_data(), input);
    }

    #[test]
    fn a_missing_or_damaged_ca_is_an_error_naming_the_key() {
        let ca1 = ca(3600);
        let ca2 = ca(3600);
        assert_eq!(
            Material::read(&data(&[(CA_KEY, &ca1.key_pem)]), NAME, NOW),
            Err(MaterialError::Missing { key: CA_CERT })
        );
        let garbage = Material::read(&data(&[(CA_CERT, "junk"), (CA_KEY, "junk")]), NAME, NOW);
        assert!(
            matches!(garbage, Err(MaterialError::Bad { key: CA_CERT, .. })),
            "{garbage:?}"
        );
        let mismatch = Material::read(
            &data(&[(CA_CERT, &ca1.cert_pem), (CA_KEY, &ca2.key_pem)]),
            NAME,
            NOW,
        );
        assert!(
            matches!(mismatch, Err(MaterialError::Bad { key: CA_KEY, .. })),
            "{mismatch:?}"
        );
        let leaf = leaf(&ca1, 600);
        let not_ca = Material::read(
            &data(&[(CA_CERT, &leaf.cert_pem), (CA_KEY, &leaf.key_pem)]),
            NAME,
            NOW,
        );
        assert!(
            matches!(&not_ca, Err(MaterialError::Bad { key: CA_CERT, reason }) if reason.contains("not a CA")),
            "{not_ca:?}"
        );
    }

    #[test]
    fn a_bad_serving_pair_is_a_reason_to_reissue_not_an_error() {
        let ca1 = ca(3600);
        let other = ca(3600);
        let foreign = leaf(&other, 600);
        type Case<'a> = (&'a str, BTreeMap<String, Vec<u8>>, i64, &'a str);
        let cases: Vec<Case> = vec![
            (
                "missing",
                data(&[(CA_CERT, &ca1.cert_pem), (CA_KEY, &ca1.key_pem)]),
                NOW,
                "missing",
            ),
            (
                "from another CA",
                data(&[
                    (CA_CERT, &ca1.cert_pem),
                    (CA_KEY, &ca1.key_pem),
                    (TLS_CERT, &foreign.cert_pem),
                    (TLS_KEY, &foreign.key_pem),
                ]),
                NOW,
                "does not verify",
            ),
            (
                "expired",
                {
                    let l = leaf(&ca1, 60);
                    data(&[
                        (CA_CERT, &ca1.cert_pem),
                        (CA_KEY, &ca1.key_pem),
                        (TLS_CERT, &l.cert_pem),
                        (TLS_KEY, &l.key_pem),
                    ])
                },
                NOW + 61,
                "does not verify",
            ),
            (
                "wrong key",
                {
                    let l = leaf(&ca1, 60);
                    data(&[
                        (CA_CERT, &ca1.cert_pem),
                        (CA_KEY, &ca1.key_pem),
                        (TLS_CERT, &l.cert_pem),
                        (TLS_KEY, &ca1.key_pem),
                    ])
                },
                NOW,
                "does not match",
            ),
        ];
        for (name, input, now, expect) in cases {
            let material = Material::read(&input, NAME, now).unwrap();
            let reason = material.serving.unwrap_err();
            assert!(reason.contains(expect), "{name}: {reason}");
        }
    }

    #[test]
    fn the_bundle_is_previous_current_next_each_once() {
        let (a, b, c) = (ca(3600), ca(3600), ca(3600));
        let material = Material {
            ca: Ca {
                facts: cert_facts(&b.cert_pem).unwrap(),
                pair: b.clone(),
            },
            next: Some(Ca {
                facts: cert_facts(&c.cert_pem).unwrap(),
                pair: c.clone(),
            }),
            previous: Some((a.cert_pem.clone(), cert_facts(&a.cert_pem).unwrap())),
            serving: Err("none".into()),
        };
        let bundle = material.ca_bundle();
        assert_eq!(
            bundle_certs(&bundle),
            [&a, &b, &c]
                .iter()
                .map(|p| first_cert(&p.cert_pem).unwrap().as_ref().to_vec())
                .collect::<Vec<_>>()
        );
        assert!(bundle_contains(&bundle, &c.cert_pem));
        assert!(!bundle_contains(&b.cert_pem, &c.cert_pem));
        let mut only = material.clone();
        only.previous = Some((b.cert_pem.clone(), cert_facts(&b.cert_pem).unwrap()));
        only.next = None;
        assert_eq!(bundle_certs(&only.ca_bundle()).len(), 1);
    }

    #[test]
    fn report_keys_are_valid_annotation_names_and_reports_round_trip() {
        assert_eq!(
            report_key("podgate-7d9f-abcde"),
            "serving.podgate.dev/podgate-7d9f-abcde"
        );
        let long = "x".repeat(80);
        let key = report_key(&long);
        let name = key.strip_prefix(REPORT_PREFIX).unwrap();
        assert!(name.len() <= 63, "{name}");
        assert_ne!(report_key("a/b"), report_key("a:b"));
        assert!(report_key("/").starts_with(REPORT_PREFIX));
        let mut annotations = BTreeMap::new();
        annotations.insert(report_key("r1"), report_value("abcd", 42));
        annotations.insert(report_key("r2"), "garbage".to_string());
        annotations.insert("other".to_string(), "x 1".to_string());
        assert_eq!(
            reports(&annotations),
            vec![Report {
                replica: "r1".into(),
                ca_fingerprint: "abcd".into(),
                at: 42
            }]
        );
    }

    #[test]
    fn finds_which_known_ca_issued_a_leaf() {
        let (a, b) = (ca(3600), ca(3600));
        let material = Material {
            ca: Ca {
                facts: cert_facts(&b.cert_pem).unwrap(),
                pair: b.clone(),
            },
            next: None,
            previous: Some((a.cert_pem.clone(), cert_facts(&a.cert_pem).unwrap())),
            serving: Err("none".into()),
        };
        let from_a = leaf(&a, 60);
        assert_eq!(
            issuing_ca(&material, &from_a.cert_pem, NAME, NOW),
            Some(cert_facts(&a.cert_pem).unwrap().fingerprint)
        );
        let stranger = leaf(&ca(3600), 60);
        assert_eq!(issuing_ca(&material, &stranger.cert_pem, NAME, NOW), None);
    }
}
