//! Never take the cluster down (#11), against the real binary over real TLS: a broken policy
//! ConfigMap is denied at apply time with every position, a broken policy set at startup leaves
//! the process up and not Ready until a valid one appears, and metric labels stay bounded
//! whatever a caller sends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// A valid set of one Enforce policy.
const GOOD: &str = DENY_HOST_NETWORK;

/// The same policy with an unknown action (line 6, column 11).
const BROKEN: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: deny-host-network
spec:
  action: Block
  validate:
    hostNamespaces:
      forbiddenCombinations:
        - [hostNetwork]
";

fn serve_args(layout: &Layout) -> Vec<String> {
    let certs = layout.certs();
    vec![
        "--tls-cert".into(),
        certs.join("tls.crt").display().to_string(),
        "--tls-key".into(),
        certs.join("tls.key").display().to_string(),
        "--policies".into(),
        layout.policies().display().to_string(),
        "--log-format".into(),
        "json".into(),
        "--reload-interval".into(),
        "200ms".into(),
    ]
}

/// `podgate serve` on `layout`, checked to be up (liveness answers) but not Ready, and still
/// running a second later, despite `what` is wrong.
async fn spawn_up_not_ready(layout: &Layout, what: &str) -> Process {
    let args = serve_args(layout);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = Process::spawn(
        layout.root.path(),
        &args,
        layout.root.path().join("podgate.log"),
    );
    let probe = process.probe;
    let live = wait_until(Duration::from_secs(20), async || {
        matches!(probe_get(probe, "/healthz").await, Some((200, _)))
    })
    .await;
    assert!(
        live.is_some(),
        "never answered /healthz:\n{}",
        process.log_text()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        process.child.try_wait().unwrap().is_none(),
        "podgate exited on {what}:\n{}",
        process.log_text()
    );
    assert_eq!(probe_get(probe, "/readyz").await.map(|r| r.0), Some(503));
    assert_eq!(metric(probe, "podgate_ready").await, 0.0);
    process
}

/// The hostNetwork Pod `pod` is denied (the set is enforced); then the process exits, cleanly,
/// only when told to.
async fn denies_then_stops(
    mut process: Process,
    client: &reqwest::Client,
    url: &str,
    pod: Vec<u8>,
) {
    let reply = post_review(client, url, pod.clone()).await.unwrap();
    let out = assert_contract(&pod, &reply, Hook::Validate);
    assert_eq!(
        out["response"]["allowed"], false,
        "hostNetwork denied: {out}"
    );
    process.signal("TERM");
    let exit = process.wait_exit(Duration::from_secs(30)).await;
    assert!(exit.success(), "{exit:?}");
}

async fn start(layout: &Layout) -> Process {
    let args = serve_args(layout);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Process::start(
        layout.root.path(),
        &args,
        layout.root.path().join("podgate.log"),
    )
    .await
}

/// An AdmissionReview for a ConfigMap in podgate-system carrying `files`.
fn config_map_review(
    uid: &str,
    operation: &str,
    labelled: bool,
    files: &[(&str, &str)],
) -> Vec<u8> {
    let labels = if labelled {
        json!({"podgate.dev/policies": "true"})
    } else {
        json!({})
    };
    let data: serde_json::Map<String, Value> = files
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "podgate-policies", "namespace": "podgate-system", "labels": labels},
        "data": data});
    let old = if operation == "UPDATE" {
        object.clone()
    } else {
        Value::Null
    };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "podgate-policies",
            "namespace": "podgate-system",
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:masters"]},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_config_map_is_denied_with_every_position() {
    let layout = Layout::new(&[("deny-host-network.yaml", GOOD)]);
    let process = start(&layout).await;
    let url = format!(
        "https://localhost:{}/validate?timeout=5s",
        process.addr.port()
    );
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);

    let body = config_map_review(
        "c0000000-0000-4000-8000-000000000001",
        "UPDATE",
        true,
        &[
            ("good.yaml", GOOD),
            ("broken.yaml", BROKEN),
            ("copy.yaml", GOOD),
            ("yaml.yml", "a: ["),
        ],
    );
    let reply = post_review(&client, &url, body.clone()).await.unwrap();
    let out = assert_contract(&body, &reply, Hook::Validate);
    assert_eq!(out["response"]["allowed"], false, "{out}");
    assert_eq!(out["response"]["status"]["code"], 422, "{out}");
    let message = out["response"]["status"]["message"].as_str().unwrap();
    for needle in [
        "podgate-system/podgate-policies",
        "(3 errors)",
        "\nbroken.yaml:6:11: ",
        "\nyaml.yml:1:",
        // good.yaml names the same policy as copy.yaml (read first, in name order).
        "\ngood.yaml:4:0: duplicate policy name",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }

    // A valid set, and a ConfigMap without the label, are allowed.
    for (uid, labelled, files) in [
        (
            "c0000000-0000-4000-8000-000000000002",
            true,
            vec![("good.yaml", GOOD)],
        ),
        (
            "c0000000-0000-4000-8000-000000000003",
            false,
            vec![("x.yaml", BROKEN)],
        ),
    ] {
        let body = config_map_review(uid, "CREATE", labelled, &files);
        let reply = post_review(&client, &url, body.clone()).await.unwrap();
        let out = assert_contract(&body, &reply, Hook::Validate);
        assert_eq!(out["response"]["allowed"], true, "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_set_at_startup_keeps_the_process_up_and_not_ready_until_a_valid_one_appears() {
    let layout = Layout::new(&[("broken.yaml", BROKEN)]);
    let process = spawn_up_not_ready(&layout, "a broken policy set").await;
    let probe = process.probe;
    assert_eq!(
        metric(probe, "podgate_policy_last_reload_successful").await,
        0.0
    );
    // Every error is in the log, with its position as fields.
    let log = process.log_text();
    for needle in [
        "broken.yaml:6:11",
        "\"line\":6",
        "\"column\":11",
        "not Ready",
    ] {
        assert!(log.contains(needle), "{needle:?} not in the log:\n{log}");
    }

    // A Pod review that reaches it anyway is refused with 503 (the failurePolicy decides),
    // never answered from an empty set; a policy ConfigMap is still judged.
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);
    let url = format!("https://localhost:{}/validate", process.addr.port());
    let pod = pod_review("d0000000-0000-4000-8000-000000000001", true);
    let reply = post_review(&client, &url, pod).await.unwrap();
    assert_eq!(
        reply.status,
        503,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.json()["response"]["uid"],
        "d0000000-0000-4000-8000-000000000001"
    );
    let fix = config_map_review(
        "d0000000-0000-4000-8000-000000000002",
        "UPDATE",
        true,
        &[("broken.yaml", GOOD)],
    );
    let reply = post_review(&client, &url, fix.clone()).await.unwrap();
    let out = assert_contract(&fix, &reply, Hook::Validate);
    assert_eq!(out["response"]["allowed"], true, "{out}");

    // The kubelet swaps in a fixed ConfigMap: Ready, and the set is enforced.
    layout.publish_policies(&[("broken.yaml", GOOD)]);
    let ready = wait_until(Duration::from_secs(20), async || {
        matches!(probe_get(probe, "/readyz").await, Some((200, _)))
    })
    .await;
    assert!(
        ready.is_some(),
        "not Ready after the fix:\n{}",
        process.log_text()
    );
    assert_eq!(metric(probe, "podgate_ready").await, 1.0);
    assert_eq!(
        metric(probe, "podgate_policy_last_reload_successful").await,
        1.0
    );
    let pod = pod_review("d0000000-0000-4000-8000-000000000003", true);
    denies_then_stops(process, &client, &url, pod).await;
}

/// An invalid serving certificate at startup (here: a key that does not belong to the
/// certificate, as in a Secret half-updated by hand) keeps the process up and not Ready, refusing handshakes, until the kubelet
/// publishes a valid pair; then it is Ready and serves with it, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_certificate_at_startup_keeps_the_process_up_and_not_ready_until_a_valid_one_appears()
 {
    let layout = Layout::new(&[("good.yaml", GOOD)]);
    let other = podgate::certs::generate(&podgate::certs::CertSpec::localhost(30)).unwrap();
    kubelet_publish(
        &layout.certs(),
        &[
            ("tls.crt", layout.pki.server().cert_pem.as_bytes()),
            ("tls.key", other.key_pem.as_bytes()),
        ],
    );
    let process = spawn_up_not_ready(&layout, "an invalid certificate").await;
    let probe = process.probe;
    let log = process.log_text();
    for needle in ["no valid serving certificate", "tls.key", "not Ready"] {
        assert!(log.contains(needle), "{needle:?} not in the log:\n{log}");
    }
    // No certificate to present: the handshake fails, whatever the client trusts.
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, true);
    let url = format!("https://localhost:{}/validate", process.addr.port());
    let pod = pod_review("ce000000-0000-4000-8000-000000000001", true);
    assert!(post_review(&client, &url, pod.clone()).await.is_err());

    // The kubelet publishes the renewed Secret: Ready, and reviews are served.
    layout.publish_cert(&layout.pki.server());
    let ready = wait_until(Duration::from_secs(20), async || {
        matches!(probe_get(probe, "/readyz").await, Some((200, _)))
    })
    .await;
    assert!(
        ready.is_some(),
        "not Ready after the fix:\n{}",
        process.log_text()
    );
    denies_then_stops(process, &client, &url, pod).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_labels_stay_bounded_whatever_the_request_says() {
    let layout = Layout::new(&[("deny-host-network.yaml", GOOD)]);
    let process = start(&layout).await;
    let url = format!("https://localhost:{}/validate", process.addr.port());
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);

    // 200 distinct hostile kinds and operations: new names, case variants, control
    // characters, label-syntax injection, megabyte-long values are not needed to make the point.
    let mut sent = 0;
    for i in 0..200 {
        let kind = match i % 5 {
            0 => format!("Kind{i}"),
            1 => "pod".to_owned(),
            2 => format!("Pod\"}} evil{{x=\"{i}"),
            3 => format!("Pod\n{i}"),
            _ => "ConfigMap ".to_owned() + &"x".repeat(i),
        };
        let operation = match i % 4 {
            0 => format!("OP{i}"),
            1 => "create".to_owned(),
            2 => "*".to_owned(),
            _ => "CREATE".to_owned(),
        };
        let body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": format!("e0000000-0000-4000-8000-{i:012}"),
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "default",
                "operation": operation,
                "userInfo": {"username": "mallory"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}
            }
        }))
        .unwrap();
        let reply = post_review(&client, &url, body).await.unwrap();
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        sent += 1;
    }
    // And real ones, so the known values show up too.
    let pod = pod_review("e0000000-0000-4000-8000-100000000000", true);
    post_review(&client, &url, pod).await.unwrap();
    sent += 1;

    let (status, text) = probe_get(process.probe, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("podgate_admission_requests_total{"))
        .collect();
    let mut kinds = BTreeSet::new();
    let mut operations = BTreeSet::new();
    let mut total = 0.0;
    for line in &series {
        let value = |name: &str| -> String {
            let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let end = start + line[start..].find('"').unwrap();
            line[start..end].to_owned()
        };
        kinds.insert(value("kind"));
        operations.insert(value("operation"));
        total += line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap();
    }
    let allowed_kinds: BTreeSet<String> = podgate::server::metrics::KINDS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    let allowed_operations: BTreeSet<String> = podgate::server::metrics::OPERATIONS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    assert!(kinds.is_subset(&allowed_kinds), "{kinds:?}");
    assert!(operations.is_subset(&allowed_operations), "{operations:?}");
    assert!(
        kinds.contains("other") && kinds.contains("Pod"),
        "{kinds:?}"
    );
    assert!(operations.contains("other") && operations.contains("CREATE"));
    // webhook x operation x kind x decision, all from fixed sets: a handful, not 200.
    assert!(
        series.len() <= 8,
        "{} series:\n{}",
        series.len(),
        series.join("\n")
    );
    assert_eq!(total, f64::from(sent), "every review is still counted");
}

/// Series names a scrape of the running binary can carry, from its `# TYPE` lines (families
/// without samples yet, such as error counters, are listed there too).
fn exported_series(metrics_text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics_text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                out.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// Every `podgate_*` name in `text`.
fn referenced_series(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("podgate_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exported() {
    let layout = Layout::new(&[("deny-host-network.yaml", GOOD)]);
    let process = start(&layout).await;
    // Families show up once they have a sample: a denied review and a refused request.
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);
    let url = format!("https://localhost:{}/validate", process.addr.port());
    let pod = pod_review("f0000000-0000-4000-8000-000000000001", true);
    post_review(&client, &url, pod).await.unwrap();
    let reply = post(&client, &url, "text/plain", b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(reply.status, 415);
    let (status, text) = probe_get(process.probe, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let exported = exported_series(&text);
    assert!(exported.contains("podgate_ready"), "{exported:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "deploy/components/prometheus/prometheusrule.yaml",
        "deploy/components/grafana-dashboard/dashboard.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let used = referenced_series(&text);
        assert!(used.len() >= 5, "{file}: {used:?}");
        let missing: Vec<&String> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} uses series podgate does not export: {missing:?}"
        );
    }
}
