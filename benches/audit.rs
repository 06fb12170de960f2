//! Benchmark (not a test): `podgate audit` over 10,000 Pods and 2,000 workloads served by the
//! in-process test API server (tests/apiserver/), through kube's client over loopback HTTP.
//!
//!     cargo bench --bench audit
//!
//! The API server runs in a child process (this binary with `--serve`), so that the measuring
//! process holds only the audit: each measurement is a fresh child (`--measure <policies>`)
//! that runs one audit (list with paging, group, evaluate, render JSON) and prints its wall
//! time and its peak RSS (VmHWM, /proc/self/status). The baseline in the same run is the same
//! audit with no policies (listing, decoding and grouping only), and the floor: the same
//! process auditing an empty namespace (runtime, client and code, nothing listed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

const NAMESPACES: usize = 50;

fn container(name: &str, image: &str, hosts_edit: bool) -> Value {
    let command = if hosts_edit {
        json!([
            "sh",
            "-c",
            "echo 10.0.0.7 db.internal >> /etc/hosts && exec /app/server --port 8080"
        ])
    } else {
        json!(["/app/server", "--port", "8080"])
    };
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true},
    })
}

fn spec(i: usize) -> Value {
    json!({
        "containers": [
            container("app", &format!("registry.example/app-{}:1.{}", i % 40, i % 7), i.is_multiple_of(10)),
            container("sidecar", "registry.example/proxy:latest", false),
        ],
        "volumes": [{"name": "config", "configMap": {"name": "app-config"}}],
        "serviceAccountName": "app",
        "restartPolicy": "Always",
    })
}

fn meta(ns: &str, name: &str, owner: Option<(&str, &str, &str, &str)>) -> Value {
    let mut m = json!({"name": name, "namespace": ns, "labels": {"app": name, "team": "t"}});
    if let Some((api_version, kind, owner_name, uid)) = owner {
        m["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind, "name": owner_name, "uid": uid, "controller": true}]);
    }
    m
}

fn workload(
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
    i: usize,
    owner: Option<(&str, &str, &str, &str)>,
) -> Value {
    let template = json!({"metadata": {"labels": {"app": name}}, "spec": spec(i)});
    let spec = if kind == "CronJob" {
        json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}})
    } else if kind == "ReplicationController" {
        // A ReplicationController's selector is a plain map of labels.
        json!({"selector": {"app": name}, "template": template})
    } else {
        json!({"selector": {"matchLabels": {"app": name}}, "template": template})
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": meta(ns, name, owner), "spec": spec})
}

fn pod(ns: &str, name: &str, i: usize, owner: Option<(&str, &str, &str, &str)>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(ns, name, owner), "spec": spec(i)})
}

/// 2,000 workloads and 10,000 Pods over 50 namespaces. Returns (workloads, pods).
fn populate(server: &apiserver::ApiServer) -> (usize, usize) {
    let (mut workloads, mut pods) = (0, 0);
    let mut put = |v: Value| -> String {
        let kind = v["kind"].as_str().unwrap().to_string();
        let stored = server.insert(v);
        if kind == "Pod" {
            pods += 1;
        } else {
            workloads += 1;
        }
        stored["metadata"]["uid"].as_str().unwrap().to_string()
    };
    let ns = |i: usize| format!("team-{:02}", i % NAMESPACES);
    for i in 0..500 {
        let n = ns(i);
        let d = put(workload(
            "apps/v1",
            "Deployment",
            &n,
            &format!("web-{i}"),
            i,
            None,
        ));
        let rs_name = format!("web-{i}-5d8f7");
        let rs = put(workload(
            "apps/v1",
            "ReplicaSet",
            &n,
            &rs_name,
            i,
            Some(("apps/v1", "Deployment", &format!("web-{i}"), &d)),
        ));
        for p in 0..10 {
            put(pod(
                &n,
                &format!("{rs_name}-{p}"),
                i,
                Some(("apps/v1", "ReplicaSet", &rs_name, &rs)),
            ));
        }
    }
    for (kind, count, pods_each) in [("StatefulSet", 300, 5), ("DaemonSet", 200, 5)] {
        for i in 0..count {
            let n = ns(i);
            let name = format!("{}-{i}", kind.to_lowercase());
            let uid = put(workload("apps/v1", kind, &n, &name, i, None));
            for p in 0..pods_each {
                put(pod(
                    &n,
                    &format!("{name}-{p}"),
                    i,
                    Some(("apps/v1", kind, &name, &uid)),
                ));
            }
        }
    }
    for i in 0..100 {
        let n = ns(i);
        let cj_name = format!("nightly-{i}");
        let cj = put(workload("batch/v1", "CronJob", &n, &cj_name, i, None));
        for j in 0..2 {
            let job_name = format!("{cj_name}-{j}");
            let mut job = workload(
                "batch/v1",
                "Job",
                &n,
                &job_name,
                i,
                Some(("batch/v1", "CronJob", &cj_name, &cj)),
            );
            job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
            let job_uid = put(job);
            put(pod(
                &n,
                &format!("{job_name}-x"),
                i,
                Some(("batch/v1", "Job", &job_name, &job_uid)),
            ));
        }
    }
    for i in 0..100 {
        let n = ns(i);
        let name = format!("batch-{i}");
        let mut job = workload("batch/v1", "Job", &n, &name, i, None);
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let uid = put(job);
        put(pod(
            &n,
            &format!("{name}-x"),
            i,
            Some(("batch/v1", "Job", &name, &uid)),
        ));
    }
    for i in 0..100 {
        let n = ns(i);
        let name = format!("legacy-{i}");
        let uid = put(workload("v1", "ReplicationController", &n, &name, i, None));
        for p in 0..2 {
            put(pod(
                &n,
                &format!("{name}-{p}"),
                i,
                Some(("v1", "ReplicationController", &name, &uid)),
            ));
        }
    }
    for i in 0..2000 {
        put(pod(&ns(i), &format!("bare-{i}"), i, None));
    }
    (workloads, pods)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn serve() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = apiserver::ApiServer::start().await;
        server.record_requests(false);
        let (workloads, pods) = populate(&server);
        println!("{} {workloads} {pods}", server.url());
        std::io::stdout().flush().unwrap();
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await
        .unwrap();
    });
}

/// One audit of everything (`scope` "all") or of one namespace, in this process.
fn measure(url: &str, policies: &str, scope: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let set = if policies == "none" {
        podgate::policy::PolicySet::empty()
    } else {
        podgate::policy::PolicySet::load_dir(std::path::Path::new(policies)).unwrap()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (objects, pods, json_len, denied) = rt.block_on(async {
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let excluded = podgate::audit::exclusions(&[], podgate::audit::DEFAULT_PODGATE_NAMESPACE);
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let run = podgate::audit::audit(
            &client,
            &set,
            &if scope == "all" {
                podgate::audit::Scope::All
            } else {
                podgate::audit::Scope::Namespaces(vec![scope.to_string()])
            },
            &excluded,
            500,
            today,
        )
        .await;
        assert!(run.complete(), "{:?}", run.errors);
        let unreadable: Vec<_> = run
            .objects
            .iter()
            .filter_map(|o| o.error.as_ref())
            .collect();
        assert!(unreadable.is_empty(), "{unreadable:?}");
        let json = serde_json::to_string(&run).unwrap();
        let pods: usize = run.objects.iter().map(|o| o.pods).sum();
        let denied = run.objects.iter().filter(|o| o.denied).count();
        (run.objects.len(), pods, json.len(), denied)
    });
    let wall = started.elapsed();
    println!(
        "{:.3} {} {objects} {pods} {denied} {json_len}",
        wall.as_secs_f64(),
        peak_rss_kib()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        return serve();
    }
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        return measure(&args[i + 1], &args[i + 2], &args[i + 3]);
    }
    let me = std::env::current_exe().unwrap();
    let mut server = Command::new(&me)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (url, workloads, pods) = (parts[0], parts[1], parts[2]);
    println!(
        "audit benchmark: {workloads} workloads and {pods} Pods in {NAMESPACES} namespaces, pages of 500, test API server over loopback HTTP"
    );
    println!(
        "{:<28} {:>8} {:>14} {:>8} {:>6} {:>7} {:>10}",
        "policies", "wall s", "peak RSS MiB", "objects", "Pods", "denied", "JSON KiB"
    );
    let policies_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    for round in 1..=2 {
        for (label, policies, scope) in [
            // The process alone: runtime, client, code; lists that find nothing.
            ("empty namespace (floor)", "none", "empty"),
            ("none (baseline)", "none", "all"),
            ("policies/ (shipped)", policies_dir, "all"),
        ] {
            let out = Command::new(&me)
                .args(["--measure", url, policies, scope])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = text.split_whitespace().collect();
            let rss_mib = f[1].parse::<f64>().unwrap() / 1024.0;
            let json_kib = f[5].parse::<f64>().unwrap() / 1024.0;
            println!(
                "{:<28} {:>8} {:>14.1} {:>8} {:>6} {:>7} {:>10.0}",
                format!("{label} #{round}"),
                f[0],
                rss_mib,
                f[2],
                f[3],
                f[4],
                json_kib
            );
        }
    }
    drop(server.stdin.take());
    let _ = server.wait();
}
