//! Shared helpers for the server tests: PKI, kubelet-style volumes, in-process and
//! out-of-process servers, TLS clients, and the apiserver's response checks (docs/apiserver-contract.md section 4).
#![allow(dead_code)]
// Test helpers: failing loudly is their job (clippy.toml allows this inside #[test] only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;

pub mod contract;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

// ---------------------------------------------------------------- fixtures

#[path = "../fixture_set/mod.rs"]
pub mod fixture_set;

/// Every fixture (the own set, plus the extra corpus when present) as request bytes.
pub fn fixture_reviews() -> Vec<(String, Vec<u8>)> {
    fixture_set::suite()
        .all()
        .into_iter()
        .map(|f| {
            let bytes = f.bytes();
            (f.name, bytes)
        })
        .collect()
}

/// An own fixture by file name, as request bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    fixture_set::own_bytes(name)
}

/// A Pod CREATE review with a fresh uid, that `DENY_HOST_NETWORK` denies (hostNetwork: true)
/// and `PULL_ALWAYS` patches (`nginx:latest`, IfNotPresent).
pub fn pod_review(uid: &str, host_network: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
                "spec": {
                    "hostNetwork": host_network,
                    "containers": [{"name": "web", "image": "nginx:latest", "imagePullPolicy": "IfNotPresent"}]
                },
                "status": {}
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap()
}

pub const DENY_HOST_NETWORK: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: deny-host-network
spec:
  action: Enforce
  validate:
    hostNamespaces:
      forbiddenCombinations:
        - [hostNetwork]
";

pub const PULL_ALWAYS: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: pull-always
spec:
  action: Enforce
  mutate:
    imagePullPolicy: {}
";

pub const AUDIT_HOSTS_FILE: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: audit-hosts-file
spec:
  action: Audit
  validate:
    hostsFile: {}
";

pub const BROKEN_POLICY: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: broken
spec:
  action: Sometimes
  unknownField: [
";

// ---------------------------------------------------------------- PKI

/// A test CA that signs server and client certificates.
pub struct Pki {
    pub ca_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            params,
            key,
        }
    }

    fn leaf(&self, cn: &str, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) -> Pair {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A serving certificate for `localhost` and 127.0.0.1 (and the in-cluster name).
    pub fn server(&self) -> Pair {
        self.leaf(
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::DnsName("podgate.podgate.svc".try_into().unwrap()),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate (for mTLS).
    pub fn client(&self, cn: &str) -> Pair {
        self.leaf(cn, vec![], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// The DER of the first certificate in `pem`.
pub fn leaf_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

// ---------------------------------------------------------------- kubelet-style volumes

static VERSION: AtomicU64 = AtomicU64::new(0);

/// Publishes `files` into `dir` the way the kubelet's AtomicWriter updates ConfigMap and
/// Secret volumes: a fresh `..<timestamp>` folder, `..data_tmp -> it` renamed over `..data`,
/// and visible names that are symlinks `name -> ..data/name`. Old versions are removed.
pub fn kubelet_publish(dir: &Path, files: &[(&str, &[u8])]) {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(dir).unwrap();
    let version = format!(
        "..2026_11_27_{}_{}",
        std::process::id(),
        VERSION.fetch_add(1, Ordering::SeqCst)
    );
    let vdir = dir.join(&version);
    std::fs::create_dir(&vdir).unwrap();
    for (name, bytes) in files {
        std::fs::write(vdir.join(name), bytes).unwrap();
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    // Visible names: create missing links, drop links to files no longer published.
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
}

// ---------------------------------------------------------------- servers

pub fn free_addr() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Where a test server keeps its volumes.
pub struct Layout {
    pub root: tempfile::TempDir,
    pub pki: Pki,
}

impl Layout {
    /// `certs/` (Secret-style) with a serving pair from a fresh CA and `policies/`
    /// (ConfigMap-style) with `policies`.
    pub fn new(policies: &[(&str, &str)]) -> Layout {
        let root = tempfile::tempdir().unwrap();
        let pki = Pki::new("podgate test CA");
        let layout = Layout { root, pki };
        let pair = layout.pki.server();
        layout.publish_cert(&pair);
        layout.publish_policies(policies);
        layout
    }
    pub fn certs(&self) -> PathBuf {
        self.root.path().join("certs")
    }
    pub fn policies(&self) -> PathBuf {
        self.root.path().join("policies")
    }
    pub fn publish_cert(&self, pair: &Pair) {
        kubelet_publish(
            &self.certs(),
            &[
                ("tls.crt", pair.cert_pem.as_bytes()),
                ("tls.key", pair.key_pem.as_bytes()),
            ],
        );
    }
    pub fn publish_policies(&self, policies: &[(&str, &str)]) {
        let files: Vec<(&str, &[u8])> = policies.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
        kubelet_publish(&self.policies(), &files);
    }
    pub fn args(&self) -> podgate::server::ServeArgs {
        podgate::server::ServeArgs {
            listen: free_addr(),
            tls_cert: Some(self.certs().join("tls.crt")),
            tls_key: Some(self.certs().join("tls.key")),
            policies: self.policies(),
            client_ca: None,
            probe_listen: free_addr(),
            max_body: 7 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(5),
            log_format: podgate::server::LogFormat::Text,
            tls_min_version: podgate::server::TlsMinVersion::V1_2,
            reload_interval: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_evaluation_time: Duration::from_secs(30),
            evaluation_slots: None,
            inline_max_body: 64 << 10,
            managed: Default::default(),
            audit: Default::default(),
        }
    }
}

/// A server running in this process (its own tasks on the test's runtime).
pub struct TestServer {
    pub addr: SocketAddr,
    pub probe: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts the server and waits for `/readyz`. The ports come from `free_addr`, so another
    /// socket can grab one before the server binds it: then it retries on fresh ports.
    pub async fn start(mut args: podgate::server::ServeArgs) -> TestServer {
        install_provider();
        for _ in 0..5 {
            let (addr, probe) = (args.listen, args.probe_listen);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(podgate::server::serve(args.clone(), async move {
                let _ = rx.await;
                "test"
            }));
            let start = Instant::now();
            loop {
                if task.is_finished() {
                    let error = task.await.unwrap().expect_err("server stopped by itself");
                    assert!(
                        format!("{error:#}").contains("binding"),
                        "server failed: {error:#}"
                    );
                    break;
                }
                if let Some((200, _)) = probe_get(probe, "/readyz").await {
                    return TestServer {
                        addr,
                        probe,
                        stop: Some(tx),
                        task: Some(task),
                    };
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "server not ready within 10 s"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            args.listen = free_addr();
            args.probe_listen = free_addr();
        }
        panic!("no free ports after 5 attempts");
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Plain-HTTP GET on the probe port: (status, body).
pub async fn probe_get(probe: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(probe))
        .await
        .ok()?
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    // The probe server may answer chunked; the metrics parser copes with chunk-size lines.
    Some((status, body))
}

pub async fn wait_ready(probe: SocketAddr, limit: Duration) {
    let start = Instant::now();
    loop {
        if let Some((200, _)) = probe_get(probe, "/readyz").await {
            return;
        }
        assert!(start.elapsed() < limit, "server not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Value of one sample on `/metrics`, e.g. `podgate_policy_reloads_total{result="error"}`;
/// 0 when absent.
pub async fn metric(probe: SocketAddr, sample: &str) -> f64 {
    let (status, body) = probe_get(probe, "/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------- clients

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// ALPN offers only `http/1.1`, as the apiserver does for service webhooks.
    Http1,
    /// ALPN `h2` only, HTTP/2.
    H2,
}

pub fn client_tls(roots: &[&str], alpn: &[&[u8]], identity: Option<&Pair>) -> rustls::ClientConfig {
    install_provider();
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        store.add(leaf_der(pem).into()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(pair) => {
            use rustls_pki_types::pem::PemObject;
            let certs = vec![leaf_der(&pair.cert_pem).into()];
            let key =
                rustls_pki_types::PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes only: a resumed session reports the certificate of the first one.
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// An HTTPS client trusting `roots`, speaking `proto`. `fresh` = a new connection per request.
pub fn client(
    roots: &[&str],
    proto: Proto,
    identity: Option<&Pair>,
    fresh: bool,
) -> reqwest::Client {
    let alpn: &[&[u8]] = match proto {
        Proto::Http1 => &[b"http/1.1"],
        Proto::H2 => &[b"h2"],
    };
    let tls = client_tls(roots, alpn, identity);
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tls_info(true)
        .no_proxy()
        .timeout(Duration::from_secs(10));
    builder = match proto {
        Proto::Http1 => builder.http1_only(),
        Proto::H2 => builder.http2_prior_knowledge(),
    };
    if fresh {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().unwrap()
}

/// What came back, with what `assert_contract` needs.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub version: reqwest::Version,
    pub peer_cert: Option<Vec<u8>>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Result<Reply> {
    let response = client
        .post(url)
        .header("content-type", content_type)
        .header("accept", "application/json, */*")
        .header("user-agent", "kube-apiserver-admission")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let version = response.version();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let peer_cert = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec));
    let body = response.bytes().await?.to_vec();
    Ok(Reply {
        status,
        content_type,
        version,
        peer_cert,
        body,
    })
}

pub async fn post_review(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::Result<Reply> {
    post(client, url, "application/json", body).await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Validate,
    Mutate,
}

impl Hook {
    pub fn path(self) -> &'static str {
        match self {
            Hook::Validate => "/validate",
            Hook::Mutate => "/mutate",
        }
    }
}

fn is_qualified_name_part(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Every check the apiserver applies to a webhook response (docs/apiserver-contract.md sections 4 and 9), plus the
/// HTTP framing it needs: 200, `application/json`, uid/apiVersion/kind echoed, patch rules per
/// webhook (and the patch applies to the request object), denials with a code >= 400 and a
/// message, warnings without control characters, audit annotation keys without `/`.
pub fn assert_contract(request: &[u8], reply: &Reply, hook: Hook) -> Value {
    let ctx = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status, 200, "status: {ctx}");
    assert!(
        reply.content_type.starts_with("application/json"),
        "content type {:?}",
        reply.content_type
    );
    let req: Value = serde_json::from_slice(request).unwrap();
    let out = reply.json();
    assert_eq!(out["kind"], "AdmissionReview", "{ctx}");
    assert_eq!(out["apiVersion"], req["apiVersion"], "{ctx}");
    // The apiserver sends the first version it knows of the webhook's list and reads the
    // answer as that version.
    assert!(
        out["apiVersion"] == "admission.k8s.io/v1"
            || out["apiVersion"] == "admission.k8s.io/v1beta1",
        "{ctx}"
    );
    let response = out
        .get("response")
        .filter(|r| r.is_object())
        .unwrap_or_else(|| panic!("response absent: {ctx}"));
    assert_eq!(
        response["uid"], req["request"]["uid"],
        "uid not echoed: {ctx}"
    );
    let allowed = response["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("allowed missing: {ctx}"));
    let patch = response.get("patch").filter(|p| !p.is_null());
    let patch_type = response.get("patchType").filter(|p| !p.is_null());
    match hook {
        Hook::Validate => {
            assert!(
                patch.is_none() && patch_type.is_none(),
                "validate sent a patch: {ctx}"
            );
        }
        Hook::Mutate => {
            assert_eq!(
                patch.is_some(),
                patch_type.is_some(),
                "patch without patchType: {ctx}"
            );
            if let (Some(patch), Some(patch_type)) = (patch, patch_type) {
                assert_eq!(patch_type, "JSONPatch", "{ctx}");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(patch.as_str().expect("patch is a base64 string"))
                    .unwrap_or_else(|e| panic!("patch is not standard base64: {e}"));
                let ops: json_patch::Patch = serde_json::from_slice(&decoded)
                    .unwrap_or_else(|e| panic!("patch is not a JSON Patch: {e}"));
                let mut object = req["request"]["object"].clone();
                json_patch::patch(&mut object, &ops)
                    .unwrap_or_else(|e| panic!("patch does not apply to the object: {e}; {ctx}"));
            }
        }
    }
    if !allowed {
        let status = &response["status"];
        let code = status["code"].as_u64().unwrap_or(0);
        assert!(code >= 400, "denial code {code}: {ctx}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "denial without message: {ctx}"
        );
    }
    if let Some(warnings) = response.get("warnings").and_then(Value::as_array) {
        for w in warnings {
            let w = w.as_str().expect("warning is a string");
            assert!(!w.is_empty(), "empty warning");
            assert!(
                !w.chars().any(char::is_control),
                "control character in warning {w:?}"
            );
            assert!(w.chars().count() <= 256, "warning longer than 256: {w:?}");
        }
    }
    // And the core's own model of the apiserver's checks (evanphx v4 patch semantics).
    let webhook = match hook {
        Hook::Validate => podgate::admission::Webhook::Validate,
        Hook::Mutate => podgate::admission::Webhook::Mutate,
    };
    if let Err(e) = contract::verify_response(request, &reply.body, webhook) {
        panic!("verify_response: {e}; {ctx}");
    }
    if let Some(annotations) = response.get("auditAnnotations").and_then(Value::as_object) {
        for key in annotations.keys() {
            assert!(
                !key.contains('/') && is_qualified_name_part(key),
                "bad audit annotation key {key:?}"
            );
        }
    }
    out
}

// ---------------------------------------------------------------- raw TLS

/// A raw TLS connection to `addr` (SNI `localhost`), for byte-level tests.
pub async fn raw_tls(
    addr: SocketAddr,
    roots: &[&str],
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let config = client_tls(roots, alpn, None);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// Reads an HTTP/1.1 response head and a Content-Length body: (status, body).
pub async fn read_http1_response<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Ok((status, body));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

// ---------------------------------------------------------------- load

/// Sends reviews in a loop until `stop` flips, counting failures; keeps the peer certificate
/// of the last reply.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
    last_cert: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl Load {
    pub fn start(client: reqwest::Client, url: String, hook: Hook) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let last_cert = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (s, c) = (stop.clone(), last_cert.clone());
        let task = tokio::spawn(async move {
            let mut ok = 0usize;
            let mut failures = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(40);
            let mut i = 0u32;
            while !s.load(std::sync::atomic::Ordering::SeqCst)
                && Instant::now() < deadline
                && ok < 200_000
            {
                i += 1;
                let body = pod_review(&format!("aaaaaaaa-0000-0000-0000-{i:012}"), false);
                match post_review(&client, &url, body.clone()).await {
                    Ok(reply) => {
                        let checked =
                            std::panic::catch_unwind(|| assert_contract(&body, &reply, hook));
                        match checked {
                            Ok(_) => ok += 1,
                            Err(_) => failures.push(format!(
                                "bad reply {}",
                                String::from_utf8_lossy(&reply.body)
                            )),
                        }
                        if reply.peer_cert.is_some() {
                            *c.lock().unwrap() = reply.peer_cert;
                        }
                    }
                    Err(e) => failures.push(format!("{e:?}")),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failures)
        });
        Load {
            stop,
            task,
            last_cert,
        }
    }
    pub fn cert(&self) -> Option<Vec<u8>> {
        self.last_cert.lock().unwrap().clone()
    }
    pub async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// Polls `condition` every 20 ms up to `limit`; how long it took, if it came true.
pub async fn wait_until<F: AsyncFnMut() -> bool>(
    limit: Duration,
    mut condition: F,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

// ---------------------------------------------------------------- the real binary

/// `podgate serve` as a child process, stderr captured to a file.
pub struct Process {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    pub probe: SocketAddr,
    pub log: PathBuf,
}

impl Process {
    /// Spawns `podgate serve` in `cwd` with `args` (listen/probe addresses via env) and
    /// waits for `/readyz`, retrying on fresh ports if one was taken meanwhile.
    pub async fn start(cwd: &Path, args: &[&str], log: PathBuf) -> Process {
        for _ in 0..5 {
            let mut process = Process::spawn(cwd, args, log.clone());
            let start = Instant::now();
            loop {
                if let Some(status) = process.child.try_wait().unwrap() {
                    let text = process.log_text();
                    assert!(
                        text.contains("binding"),
                        "podgate exited with {status}:\n{text}"
                    );
                    break;
                }
                if let Some((200, _)) = probe_get(process.probe, "/readyz").await {
                    return process;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "podgate not ready within 20 s; log:\n{}",
                    process.log_text()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("no free ports after 5 attempts");
    }

    /// Spawns `podgate serve` without waiting for anything (for a process that is meant to
    /// stay not-Ready).
    pub fn spawn(cwd: &Path, args: &[&str], log: PathBuf) -> Process {
        let (addr, probe) = (free_addr(), free_addr());
        let log_file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
            .arg("serve")
            .args(args)
            .current_dir(cwd)
            .env("PODGATE_LISTEN", addr.to_string())
            .env("PODGATE_PROBE_LISTEN", probe.to_string())
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Process {
            child,
            addr,
            probe,
            log,
        }
    }

    /// Sends `TERM` or `INT` to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
        let signal = match name {
            "TERM" => rustix::process::Signal::TERM,
            "INT" => rustix::process::Signal::INT,
            other => panic!("unsupported signal {other}"),
        };
        rustix::process::kill_process(pid, signal).unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "podgate did not exit within {limit:?}; log:\n{}",
                self.log_text()
            ),
        }
    }
}
