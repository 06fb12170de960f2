//! `podgate serve --manage-webhooks` (issue #10) against the in-process test API server
//! (tests/apiserver), through kube's real client and podgate's real server: replicas are
//! `podgate::server::serve` on the test's runtime, each with its own listener, and every
//! webhook call goes over TLS with a client that trusts only the caBundle registered at that
//! moment, as kube-apiserver does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apiserver;
mod common;
mod rbac;

use apiserver::ApiServer;
use base64::Engine;
use common::{DENY_HOST_NETWORK, Layout, probe_get, wait_until};
use podgate::cluster::ManagedArgs;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NS: &str = "podgate-system";
const SERVER_NAME: &str = "podgate.podgate-system.svc";
const ADMISSION: &str = "admissionregistration.k8s.io";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Durations for a replica: production-shaped but fast.
#[derive(Clone, Copy)]
struct Timing {
    ca_validity: Duration,
    cert_validity: Duration,
    propagation: Duration,
    report: Duration,
    sync: Duration,
}

impl Timing {
    fn fast() -> Timing {
        Timing {
            ca_validity: Duration::from_secs(365 * 86_400),
            cert_validity: Duration::from_secs(90 * 86_400),
            propagation: Duration::from_secs(1),
            report: Duration::from_secs(60),
            sync: Duration::from_millis(300),
        }
    }
}

/// One podgate replica in this process.
struct Replica {
    addr: SocketAddr,
    probe: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _layout: Layout,
}

impl Replica {
    fn start(api: &ApiServer, kubeconfig: &std::path::Path, name: &str, timing: Timing) -> Replica {
        Replica::start_on(
            &tokio::runtime::Handle::current(),
            api,
            kubeconfig,
            name,
            timing,
        )
    }

    /// On `runtime`: a replica on its own runtime keeps answering while the test API server
    /// holds its lock in a validator that calls the replica (see the first test).
    fn start_on(
        runtime: &tokio::runtime::Handle,
        api: &ApiServer,
        kubeconfig: &std::path::Path,
        name: &str,
        timing: Timing,
    ) -> Replica {
        common::install_provider();
        let layout = Layout::new(&[("deny-host-network.yaml", DENY_HOST_NETWORK)]);
        let mut args = layout.args();
        args.tls_cert = None;
        args.tls_key = None;
        args.managed = ManagedArgs {
            manage_webhooks: true,
            webhooks: Some(repo().join("deploy/overlays/managed/webhooks.yaml")),
            namespace: Some(NS.into()),
            kubeconfig: Some(kubeconfig.to_path_buf()),
            replica_id: Some(name.into()),
            ca_validity: timing.ca_validity,
            cert_validity: timing.cert_validity,
            propagation_delay: timing.propagation,
            report_interval: timing.report,
            sync_interval: timing.sync,
            retry_max: Duration::from_secs(1),
            ..ManagedArgs::default()
        };
        let _ = api;
        let (addr, probe) = (args.listen, args.probe_listen);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(podgate::server::serve(args, async move {
            let _ = rx.await;
            "test"
        }));
        Replica {
            addr,
            probe,
            stop: Some(tx),
            task,
            _layout: layout,
        }
    }

    async fn ready(&self) -> bool {
        matches!(probe_get(self.probe, "/readyz").await, Some((200, _)))
    }

    async fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        while !self.ready().await {
            if self.task.is_finished() {
                // Say why, so that a failure on a busy CI machine can be told apart.
                let ended = (&mut self.task).await;
                panic!("replica exited before it was ready: {ended:?}");
            }
            assert!(
                start.elapsed() < limit,
                "replica not ready within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

struct Cluster {
    api: ApiServer,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let api = ApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig);
        Cluster {
            api,
            kubeconfig,
            _dir: dir,
        }
    }

    fn replica(&self, name: &str, timing: Timing) -> Replica {
        Replica::start(&self.api, &self.kubeconfig, name, timing)
    }

    fn secret(&self) -> Option<Value> {
        self.api.get("", "secrets", NS, "podgate-tls")
    }

    fn secret_pem(&self, key: &str) -> String {
        let secret = self.secret().expect("the Secret exists");
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key}"));
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    }

    fn config(&self, resource: &str) -> Option<Value> {
        self.api.get(ADMISSION, resource, "", "podgate")
    }

    /// The caBundle (PEM) of every webhook of a configuration.
    fn bundles(&self, resource: &str) -> Vec<String> {
        let Some(config) = self.config(resource) else {
            return Vec::new();
        };
        config["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let b64 = h["clientConfig"]["caBundle"].as_str().unwrap_or("");
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                )
                .unwrap()
            })
            .collect()
    }
}

fn certs_in(pem: &str) -> Vec<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap().as_ref().to_vec())
        .collect()
}

/// An HTTPS client as kube-apiserver: trusts only `bundle_pem`, verifies the Service name,
/// offers only http/1.1, a new connection per request.
fn apiserver_client(bundle_pem: &str, addr: SocketAddr) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for der in certs_in(bundle_pem) {
        roots.add(der.into()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tls_info(true)
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(0)
        .resolve(SERVER_NAME, addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One review, as the apiserver sends it; `Ok(peer certificate DER)` when the answer is an
/// AdmissionReview for the request's uid.
async fn review(
    bundle_pem: &str,
    addr: SocketAddr,
    path: &str,
    uid: &str,
) -> Result<Vec<u8>, String> {
    let client = apiserver_client(bundle_pem, addr);
    let url = format!("https://{SERVER_NAME}:{}{path}", addr.port());
    let reply = common::post(
        &client,
        &url,
        "application/json",
        common::pod_review(uid, false),
    )
    .await
    .map_err(|e| format!("{e:?}"))?;
    if reply.status != 200 {
        return Err(format!("status {}", reply.status));
    }
    let body = reply.json();
    if body["response"]["uid"] != uid {
        return Err(format!("wrong answer: {body}"));
    }
    reply.peer_cert.ok_or_else(|| "no peer certificate".into())
}

/// Every request podgate sent so far is one the overlay's RBAC allows
/// (deploy/overlays/managed/rbac.yaml as `kubectl kustomize` renders it).
fn expect_rbac_allows_every_request(api: &ApiServer) {
    static RENDERED: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    let objects = RENDERED.get_or_init(|| {
        let output = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(repo().join("deploy/overlays/managed"))
            .output()
            .expect("kubectl on PATH");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap()
    });
    let rbac = rbac::Rbac {
        objects: objects.clone(),
        sa: "podgate".into(),
        sa_ns: NS.into(),
    };
    let requests = api.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        if r.path == "/api" || r.path == "/apis" || r.path.starts_with("/version") {
            continue;
        }
        let asks = rbac::asks_for(&r.method, &r.path, &r.query, r.content_type.as_deref());
        assert!(!asks.is_empty(), "unrecognised request {r:?}");
        for a in asks {
            assert!(rbac.can(&a), "rbac.yaml does not allow {a:?} ({r:?})");
        }
    }
}

fn patches_to_webhooks(api: &ApiServer) -> Vec<apiserver::RecordedRequest> {
    api.requests()
        .into_iter()
        .filter(|r| r.path.contains("webhookconfigurations") && r.method != "GET")
        .collect()
}

/// Sum of a counter's samples whose labels contain `labels`.
fn counter_sum(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// GET /metrics with a blocking socket (usable inside the API server's validator hook).
fn metrics_blocking(probe: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(probe).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_start_creates_the_secret_and_registers_only_after_answering_a_review_over_tls() {
    let cluster = Cluster::start().await;
    // At the moment of every webhook configuration write, how many reviews had this replica
    // answered? The API server asks the replica's own metrics from inside the write.
    let seen: Arc<Mutex<Vec<(f64, f64)>>> = Arc::default();
    // The validator below blocks while the API server holds its store lock; the replica runs on
    // its own runtime so that API server handlers waiting for that lock cannot starve it.
    let own = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut replica = Replica::start_on(
        own.handle(),
        &cluster.api,
        &cluster.kubeconfig,
        "first",
        Timing::fast(),
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let (seen, probe) = (seen.clone(), replica.probe);
        cluster.api.set_validator(kind, move |_| {
            let text = metrics_blocking(probe);
            let name = "podgate_admission_requests_total{";
            seen.lock().unwrap().push((
                counter_sum(&text, name, "webhook=\"validate\""),
                counter_sum(&text, name, "webhook=\"mutate\""),
            ));
            Ok(())
        });
    }
    replica.wait_ready(Duration::from_secs(60)).await;

    // The Secret: one CA and a serving pair for the Service's names.
    let secret = cluster.secret().unwrap();
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "podgate"
    );
    let ca = cluster.secret_pem("ca.crt");
    assert_eq!(certs_in(&ca).len(), 1);
    for key in ["ca.key", "tls.crt", "tls.key"] {
        assert!(!cluster.secret_pem(key).is_empty(), "{key}");
    }

    // Both configurations, every webhook pointed at the Service with the CA as caBundle.
    for resource in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        let config = cluster
            .config(resource)
            .unwrap_or_else(|| panic!("no {resource}"));
        for hook in config["webhooks"].as_array().unwrap() {
            let service = &hook["clientConfig"]["service"];
            assert_eq!(service["name"], "podgate", "{hook}");
            assert_eq!(service["namespace"], NS, "{hook}");
            assert_eq!(service["port"], 443, "{hook}");
        }
        assert!(
            cluster
                .bundles(resource)
                .iter()
                .all(|b| certs_in(b) == certs_in(&ca))
        );
        let managers: Vec<&str> = config["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["podgate"], "{resource}");
    }
    // Written by server-side apply with field manager podgate.
    let writes = patches_to_webhooks(&cluster.api);
    assert_eq!(writes.len(), 2, "{writes:?}");
    for w in &writes {
        assert_eq!(w.method, "PATCH");
        assert_eq!(
            w.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(w.field_manager.as_deref(), Some("podgate"));
        assert!(w.query.contains("force=true"), "{w:?}");
    }
    // Each write came after the replica had answered a validating and a mutating review.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|(v, m)| *v >= 1.0 && *m >= 1.0), "{seen:?}");

    // The apiserver's view: the registered caBundle verifies what the replica serves.
    let bundle = &cluster.bundles("validatingwebhookconfigurations")[0];
    let peer = review(bundle, replica.addr, "/validate", "u-1")
        .await
        .unwrap();
    assert_eq!(peer, certs_in(&cluster.secret_pem("tls.crt"))[0]);
    expect_rbac_allows_every_request(&cluster.api);
    replica.stop().await;
    own.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_starting_together_end_with_exactly_one_ca() {
    let cluster = Cluster::start().await;
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|n| cluster.replica(n, Timing::fast()))
        .collect();
    for r in &mut replicas {
        r.wait_ready(Duration::from_secs(90)).await;
    }
    let creates = cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/secrets"))
        .count();
    assert!(creates >= 1, "no Secret create");
    let ca = cluster.secret_pem("ca.crt");
    assert_eq!(certs_in(&ca).len(), 1);
    for resource in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        for bundle in cluster.bundles(resource) {
            assert_eq!(certs_in(&bundle), certs_in(&ca), "{resource}");
        }
    }
    // Every replica serves the Secret's certificate, which the one CA verifies.
    let served: BTreeSet<Vec<u8>> = {
        let mut s = BTreeSet::new();
        for (i, r) in replicas.iter().enumerate() {
            s.insert(
                review(&ca, r.addr, "/validate", &format!("u-{i}"))
                    .await
                    .unwrap(),
            );
        }
        s
    };
    assert_eq!(served.len(), 1);
    assert_eq!(
        served.first().unwrap(),
        &certs_in(&cluster.secret_pem("tls.crt"))[0]
    );
    expect_rbac_allows_every_request(&cluster.api);
    for r in replicas {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serving_renewal_and_ca_rotation_fail_no_request_of_a_client_trusting_the_current_bundle() {
    let cluster = Cluster::start().await;
    let timing = Timing {
        ca_validity: Duration::from_secs(30),
        cert_validity: Duration::from_secs(10),
        propagation: Duration::from_secs(1),
        report: Duration::from_secs(2),
        sync: Duration::from_millis(200),
    };
    // No watch: replicas learn of Secret changes only at their periodic sync, and r3 syncs
    // every 2.5 s, so it serves an older certificate for a while after each change. The
    // overlap must cover it (a rotation that dropped the old CA as soon as the fast replicas
    // moved would fail r3's requests here).
    cluster.api.forbid("watch", "", "secrets");
    let slow = Timing {
        sync: Duration::from_millis(2500),
        ..timing
    };
    let mut replicas: Vec<Replica> = [("r1", timing), ("r2", timing), ("r3", slow)]
        .iter()
        .map(|(n, t)| cluster.replica(n, *t))
        .collect();
    for r in &mut replicas {
        r.wait_ready(Duration::from_secs(90)).await;
    }
    let first_ca = certs_in(&cluster.secret_pem("ca.crt"))[0].clone();

    let mut failures = Vec::new();
    let mut requests = 0usize;
    let mut leaves = BTreeSet::new();
    let mut cas = BTreeSet::new();
    let mut bundle_sizes = BTreeSet::new();
    let start = Instant::now();
    let mut n = 0u64;
    // Until the first CA has been rotated out of the bundle (it expires at 30 s), and at least
    // until two serving renewals.
    while start.elapsed() < Duration::from_secs(75) {
        for (hook, resource) in [
            ("/validate", "validatingwebhookconfigurations"),
            ("/mutate", "mutatingwebhookconfigurations"),
        ] {
            let bundle = cluster.bundles(resource)[0].clone();
            let in_bundle = certs_in(&bundle);
            bundle_sizes.insert(in_bundle.len());
            cas.extend(in_bundle.iter().cloned());
            for r in &replicas {
                n += 1;
                requests += 1;
                match review(&bundle, r.addr, hook, &format!("u-{n}")).await {
                    Ok(peer) => {
                        leaves.insert(peer);
                    }
                    Err(e) => {
                        failures.push(format!("{:?} {hook} -> {}: {e}", start.elapsed(), r.addr))
                    }
                }
            }
        }
        let done = !certs_in(&cluster.bundles("validatingwebhookconfigurations")[0])
            .contains(&first_ca)
            && !certs_in(&cluster.bundles("mutatingwebhookconfigurations")[0]).contains(&first_ca)
            && leaves.len() >= 3;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {failures:#?}",
        failures.len()
    );
    // What happened: the serving certificate was renewed, a second CA came, both were trusted
    // together for a while, and the first one left the bundle.
    assert!(
        leaves.len() >= 3,
        "serving certificates seen: {}",
        leaves.len()
    );
    assert!(cas.len() >= 2, "CAs seen in the bundle: {}", cas.len());
    assert!(
        bundle_sizes.contains(&2),
        "bundle sizes seen: {bundle_sizes:?}"
    );
    let now_bundle = certs_in(&cluster.bundles("validatingwebhookconfigurations")[0]);
    assert!(
        !now_bundle.contains(&first_ca),
        "the first CA is still trusted after 75 s"
    );
    assert!(!certs_in(&cluster.secret_pem("ca.crt")).contains(&first_ca));
    // Creates, updates and reports of a whole rotation: all within the overlay's RBAC.
    expect_rbac_allows_every_request(&cluster.api);
    for r in replicas {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_is_repaired_and_a_later_replica_only_checks() {
    let cluster = Cluster::start().await;
    let mut a = cluster.replica("a", Timing::fast());
    a.wait_ready(Duration::from_secs(60)).await;

    // A later replica: reads, finds nothing to repair, writes nothing to the configurations.
    cluster.api.clear_requests();
    let mut b = cluster.replica("b", Timing::fast());
    b.wait_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(patches_to_webhooks(&cluster.api), Vec::new());
    assert!(
        cluster
            .api
            .requests()
            .iter()
            .any(|r| r.method == "GET"
                && r.path.ends_with("validatingwebhookconfigurations/podgate")),
        "the later replica did not check the configurations"
    );

    // Someone edits the validating webhook: failure policy and caBundle.
    let mut edited = cluster.config("validatingwebhookconfigurations").unwrap();
    edited["webhooks"][0]["failurePolicy"] = json!("Ignore");
    edited["webhooks"][0]["clientConfig"]["caBundle"] = json!("Z2FyYmFnZQ==");
    cluster.api.insert(edited);
    let repaired = wait_until(Duration::from_secs(20), async || {
        let config = cluster.config("validatingwebhookconfigurations").unwrap();
        config["webhooks"][0]["failurePolicy"] == "Fail"
            && certs_in(&cluster.bundles("validatingwebhookconfigurations")[0])
                == certs_in(&cluster.secret_pem("ca.crt"))
    })
    .await
    .is_some();
    assert!(repaired, "drift not repaired");
    // Someone deletes the mutating configuration: registered again.
    cluster
        .api
        .remove(ADMISSION, "mutatingwebhookconfigurations", "", "podgate");
    let back = wait_until(Duration::from_secs(20), async || {
        cluster.config("mutatingwebhookconfigurations").is_some()
    })
    .await
    .is_some();
    assert!(back, "deleted configuration not registered again");
    expect_rbac_allows_every_request(&cluster.api);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_api_server_delays_readiness_at_start_and_never_stops_serving_later() {
    let cluster = Cluster::start().await;
    cluster.api.set_down(true);
    let mut r = cluster.replica("a", Timing::fast());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!r.ready().await, "ready without an API server");
    assert!(!r.task.is_finished(), "exited without an API server");
    cluster.api.set_down(false);
    r.wait_ready(Duration::from_secs(60)).await;

    // Lost again while serving: still ready, still answering with the registered bundle.
    let bundle = cluster.bundles("validatingwebhookconfigurations")[0].clone();
    cluster.api.set_down(true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        r.ready().await,
        "went unready when the API server went away"
    );
    review(&bundle, r.addr, "/validate", "u-down")
        .await
        .unwrap();
    assert!(!r.task.is_finished());
    // Back: repairs resume.
    cluster.api.set_down(false);
    cluster
        .api
        .remove(ADMISSION, "validatingwebhookconfigurations", "", "podgate");
    let back = wait_until(Duration::from_secs(30), async || {
        cluster.config("validatingwebhookconfigurations").is_some()
    })
    .await
    .is_some();
    assert!(back, "no repair after the API server came back");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_rbac_keeps_the_replica_unready_and_retrying_until_granted() {
    let cluster = Cluster::start().await;
    // No access to Secrets at all.
    cluster.api.forbid("get", "", "secrets");
    let mut r = cluster.replica("a", Timing::fast());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!r.ready().await);
    assert!(!r.task.is_finished(), "exited on 403");
    assert!(cluster.secret().is_none());
    let gets_before = cluster
        .api
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.ends_with("/secrets/podgate-tls"))
        .count();
    assert!(gets_before >= 2, "no retry: {gets_before} reads");
    assert!(gets_before <= 10, "no backoff: {gets_before} reads in 3 s");

    // Secrets allowed, webhook configurations not: serving, but not ready and not registered.
    cluster.api.allow_all();
    cluster
        .api
        .forbid("patch", ADMISSION, "validatingwebhookconfigurations");
    let secret_made =
        wait_until(Duration::from_secs(20), async || cluster.secret().is_some()).await;
    assert!(secret_made.is_some());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!r.ready().await, "ready without its webhook registered");
    assert!(cluster.config("validatingwebhookconfigurations").is_none());

    cluster.api.allow_all();
    r.wait_ready(Duration::from_secs(30)).await;
    assert!(cluster.config("validatingwebhookconfigurations").is_some());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_with_garbage_is_never_overwritten_and_keeps_the_replica_unready() {
    let cluster = Cluster::start().await;
    let garbage = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "podgate-tls", "namespace": NS},
        "data": {"ca.crt": "bm90IGEgY2VydGlmaWNhdGU=", "ca.key": "bm8ga2V5"}
    });
    cluster.api.insert(garbage.clone());
    let mut r = cluster.replica("a", Timing::fast());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!r.ready().await);
    assert!(!r.task.is_finished());
    assert_eq!(cluster.secret().unwrap()["data"], garbage["data"]);
    assert!(cluster.config("validatingwebhookconfigurations").is_none());
    // The documented fix: delete the Secret; podgate makes a new one.
    cluster.api.remove("", "secrets", NS, "podgate-tls");
    r.wait_ready(Duration::from_secs(30)).await;
    assert_eq!(certs_in(&cluster.secret_pem("ca.crt")).len(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uninstall_webhooks_removes_both_and_running_replicas_do_not_register_again() {
    let cluster = Cluster::start().await;
    let mut r = cluster.replica("a", Timing::fast());
    r.wait_ready(Duration::from_secs(60)).await;
    let args = podgate::cluster::uninstall::UninstallArgs {
        namespace: NS.into(),
        secret: "podgate-tls".into(),
        webhook_config: "podgate".into(),
        kubeconfig: Some(cluster.kubeconfig.clone()),
    };
    let mut out = Vec::new();
    podgate::cluster::uninstall::uninstall(&args, &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("deleted MutatingWebhookConfiguration podgate"),
        "{out}"
    );
    assert!(
        out.contains("deleted ValidatingWebhookConfiguration podgate"),
        "{out}"
    );
    assert!(cluster.config("mutatingwebhookconfigurations").is_none());
    assert!(cluster.config("validatingwebhookconfigurations").is_none());
    // Several syncs later, still gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(cluster.config("mutatingwebhookconfigurations").is_none());
    assert!(cluster.config("validatingwebhookconfigurations").is_none());
    // A second run finds nothing to delete and says so.
    let mut again = Vec::new();
    podgate::cluster::uninstall::uninstall(&args, &mut again)
        .await
        .unwrap();
    assert!(
        String::from_utf8(again)
            .unwrap()
            .contains("ValidatingWebhookConfiguration podgate not found")
    );
    // Removing the annotation switches registration back on.
    let mut secret = cluster.secret().unwrap();
    secret["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("podgate.dev/webhooks");
    cluster.api.insert(secret);
    let back = wait_until(Duration::from_secs(20), async || {
        cluster.config("validatingwebhookconfigurations").is_some()
    })
    .await
    .is_some();
    assert!(back);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_change_is_served_at_once_through_the_watch() {
    let cluster = Cluster::start().await;
    // A sync every 10 minutes: only the watch can bring the change in quickly.
    let timing = Timing {
        sync: Duration::from_secs(600),
        ..Timing::fast()
    };
    let mut r = cluster.replica("a", timing);
    r.wait_ready(Duration::from_secs(60)).await;
    let ca = podgate::certs::PemPair {
        cert_pem: cluster.secret_pem("ca.crt"),
        key_pem: cluster.secret_pem("ca.key"),
    };
    let before = review(&ca.cert_pem, r.addr, "/validate", "u-before")
        .await
        .unwrap();
    // Someone (another replica, say) renews the serving certificate in the Secret.
    let now = jiff::Timestamp::now().as_second();
    let leaf = podgate::certs::issue_serving_at(
        &ca,
        &podgate::certs::service_names("podgate", NS),
        &[],
        3600,
        now,
    )
    .unwrap();
    let mut secret = cluster.secret().unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    secret["data"]["tls.crt"] = json!(b64(&leaf.cert_pem));
    secret["data"]["tls.key"] = json!(b64(&leaf.key_pem));
    cluster.api.insert(secret);
    let wanted = certs_in(&leaf.cert_pem)[0].clone();
    assert_ne!(before, wanted);
    let mut n = 0;
    let served = wait_until(Duration::from_secs(10), async || {
        n += 1;
        review(&ca.cert_pem, r.addr, "/validate", &format!("u-{n}"))
            .await
            .unwrap()
            == wanted
    })
    .await;
    assert!(
        served.is_some(),
        "the new certificate was not served within 10 s"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_loses_the_create_race_uses_the_winners_secret() {
    use k8s_openapi::api::core::v1::Secret;
    use podgate::cluster::secret::{Got, get_or_create};
    let cluster = Cluster::start().await;
    let api: kube::Api<Secret> = kube::Api::namespaced(cluster.api.client(), NS);
    // The winner's Secret appears between this replica's read (404) and its create (409).
    let winner = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "podgate-tls", "namespace": NS},
        "data": {"ca.crt": "d2lubmVy"}
    });
    let got = get_or_create(&api, "podgate-tls", || {
        cluster.api.insert(winner.clone());
        Ok::<_, ()>(std::collections::BTreeMap::from([(
            "ca.crt".to_string(),
            b"loser".to_vec(),
        )]))
    })
    .await
    .unwrap()
    .unwrap();
    let Got::LostRace(secret) = got else {
        panic!("expected to lose the race: {got:?}");
    };
    assert_eq!(secret.data.unwrap()["ca.crt"].0, b"winner");
    let creates: Vec<_> = cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    // And with the Secret there, nobody creates.
    let got = get_or_create(&api, "podgate-tls", || {
        Err::<std::collections::BTreeMap<String, Vec<u8>>, _>("must not be called")
    })
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(got, Got::Existing(_)), "{got:?}");
}
