//! Before podgate registers or repairs a webhook configuration it calls itself as the
//! apiserver would: over TLS to its own listener, trusting only the caBundle it is about to
//! write, verifying the Service's name `<svc>.<ns>.svc`, ALPN `http/1.1`, and a real
//! AdmissionReview to `/validate` and `/mutate`. Registration waits until both answer with
//! the request's uid.

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long one self-check may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The address to dial for a listener bound to `listen` (an unspecified address means this
/// host's loopback).
pub(crate) fn dial_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

fn review(uid: &str) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": "podgate-self-check",
            "name": "self-check",
            "userInfo": {"username": "system:serviceaccount:podgate:self-check"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "self-check", "namespace": "podgate-self-check"},
                "spec": {"containers": [{
                    "name": "c",
                    "image": "registry.k8s.io/pause:3.10",
                    "imagePullPolicy": "IfNotPresent"
                }]}
            },
            "dryRun": true
        }
    })
    .to_string()
    .into_bytes()
}

/// Sends one review to `path` on `addr`, trusting only `ca_bundle_pem`, verifying
/// `server_name`; `Ok` when the answer is an AdmissionReview for the same uid.
pub async fn check(
    addr: SocketAddr,
    server_name: &str,
    ca_bundle_pem: &str,
    path: &str,
) -> Result<(), String> {
    tokio::time::timeout(TIMEOUT, check_inner(addr, server_name, ca_bundle_pem, path))
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
}

async fn check_inner(
    addr: SocketAddr,
    server_name: &str,
    ca_bundle_pem: &str,
    path: &str,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_bundle_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("caBundle: {e}"))?;
        roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(dial_addr(addr))
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake as {server_name}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP/1.1: {e}"))?;
    let driver = tokio::spawn(connection);
    let uid = format!(
        "podgate-self-check-{}",
        jiff::Timestamp::now().as_nanosecond()
    );
    let request = Request::post(path)
        .header(hyper::header::HOST, server_name)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes::Bytes::from(review(&uid))))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer to POST {path}: {e}"))?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(format!("POST {path} answered {status}"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("POST {path}: not JSON: {e}"))?;
    let answered = value.pointer("/response/uid").and_then(|u| u.as_str());
    if value.get("kind").and_then(|k| k.as_str()) != Some("AdmissionReview")
        || answered != Some(uid.as_str())
    {
        return Err(format!("POST {path}: not an AdmissionReview for uid {uid}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_dialled_on_loopback() {
        let cases = [
            ("0.0.0.0:8443", "127.0.0.1:8443"),
            ("[::]:8443", "[::1]:8443"),
            ("10.0.0.7:8443", "10.0.0.7:8443"),
        ];
        for (listen, dial) in cases {
            assert_eq!(
                dial_addr(listen.parse().unwrap()),
                dial.parse().unwrap(),
                "{listen}"
            );
        }
    }
}
