//! The TLS server over real sockets on 127.0.0.1, with real TLS, as the apiserver calls it.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn standard_policies() -> Vec<(&'static str, &'static str)> {
    vec![
        ("deny-host-network.yaml", DENY_HOST_NETWORK),
        ("pull-always.yaml", PULL_ALWAYS),
        ("audit-hosts-file.yaml", AUDIT_HOSTS_FILE),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_gets_a_contract_valid_answer_on_both_webhooks_over_http1_and_h2() {
    let layout = Layout::new(&standard_policies());
    let server = TestServer::start(layout.args()).await;
    let ca = layout.pki.ca_pem.as_str();
    let mut answered = 0;
    for proto in [Proto::Http1, Proto::H2] {
        let client = client(&[ca], proto, None, false);
        for (name, body) in fixture_reviews() {
            for hook in [Hook::Validate, Hook::Mutate] {
                let reply = post_review(&client, &server.url(hook.path()), body.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{name} {hook:?} {proto:?}: {e}"));
                let want = match proto {
                    Proto::Http1 => reqwest::Version::HTTP_11,
                    Proto::H2 => reqwest::Version::HTTP_2,
                };
                assert_eq!(reply.version, want, "{name}");
                assert_contract(&body, &reply, hook);
                answered += 1;
            }
        }
    }
    assert!(answered >= 40);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_denies_and_mutate_patches_with_the_loaded_policies() {
    let layout = Layout::new(&standard_policies());
    let server = TestServer::start(layout.args()).await;
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);

    let denied = pod_review("11111111-0000-0000-0000-000000000001", true);
    let reply = post_review(&client, &server.url("/validate"), denied.clone())
        .await
        .unwrap();
    let out = assert_contract(&denied, &reply, Hook::Validate);
    assert_eq!(out["response"]["allowed"], false, "{out}");
    assert_eq!(out["response"]["status"]["code"], 403, "{out}");

    let patched = pod_review("11111111-0000-0000-0000-000000000002", false);
    let reply = post_review(&client, &server.url("/mutate"), patched.clone())
        .await
        .unwrap();
    let out = assert_contract(&patched, &reply, Hook::Mutate);
    assert_eq!(out["response"]["allowed"], true, "{out}");
    assert_eq!(out["response"]["patchType"], "JSONPatch", "{out}");

    assert_eq!(
        metric(server.probe, r#"podgate_admission_requests_total{webhook="validate",operation="CREATE",kind="Pod",decision="deny"}"#).await,
        1.0
    );
    assert_eq!(
        metric(server.probe, r#"podgate_policy_violations_total{policy="deny-host-network",rule="hostNamespaces",action="Enforce"}"#).await,
        1.0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_style_request_with_timeout_query_and_http1_only_alpn_succeeds() {
    let layout = Layout::new(&standard_policies());
    let server = TestServer::start(layout.args()).await;
    // The apiserver offers only `http/1.1` in ALPN to service webhooks and appends ?timeout=.
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);
    for (query, hook) in [
        ("?timeout=10s", Hook::Validate),
        ("?timeout=7s", Hook::Mutate),
        ("?timeout=1m30s&x=y", Hook::Validate),
    ] {
        let body = pod_review("22222222-0000-0000-0000-000000000001", false);
        let reply = post_review(
            &client,
            &server.url(&format!("{}{query}", hook.path())),
            body.clone(),
        )
        .await
        .unwrap();
        assert_eq!(reply.version, reqwest::Version::HTTP_11);
        assert_contract(&body, &reply, hook);
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_errors_get_4xx_with_a_json_reason() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    args.max_body = 64 * 1024;
    let server = TestServer::start(args).await;
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, false);
    let review = pod_review("33333333-0000-0000-0000-000000000001", false);

    let cases: Vec<(&str, &str, &str, Vec<u8>, u16)> = vec![
        (
            "too large",
            "POST",
            "/validate",
            vec![b' '; 64 * 1024 + 1],
            413,
        ),
        ("text/plain", "POST", "/validate", review.clone(), 415),
        ("bad json", "POST", "/mutate", b"{not json".to_vec(), 400),
        (
            "not a review",
            "POST",
            "/validate",
            br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(),
            400,
        ),
        (
            "review without request",
            "POST",
            "/validate",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            400,
        ),
        ("unknown path", "POST", "/admit", review.clone(), 404),
        ("root path", "POST", "/", review.clone(), 404),
        ("wrong method", "GET", "/validate", Vec::new(), 405),
        ("wrong method put", "PUT", "/mutate", review.clone(), 405),
    ];
    for (name, method, path, body, want) in cases {
        let content_type = if name == "text/plain" {
            "text/plain"
        } else {
            "application/json"
        };
        let response = client
            .request(method.parse().unwrap(), server.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(response.status().as_u16(), want, "{name}");
        let ct = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(ct.as_deref(), Some("application/json"), "{name}");
        let json: serde_json::Value = response.json().await.unwrap();
        let message = json["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!message.is_empty(), "{name}: no reason in {json}");
        assert_eq!(json["response"]["allowed"], false, "{name}");
        assert_eq!(json["response"]["status"]["code"], want, "{name}");
    }
    assert!(metric(server.probe, r#"podgate_http_errors_total{code="413"}"#).await >= 1.0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_chunked_body_is_cut_off_at_the_cap_with_413() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    args.max_body = 256 * 1024;
    let server = TestServer::start(args).await;
    let stream = raw_tls(server.addr, &[&layout.pki.ca_pem], &[b"http/1.1"])
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    writer.write_all(head.as_bytes()).await.unwrap();
    // Keep sending chunks until the server stops reading; count what it accepted.
    let sender = tokio::spawn(async move {
        let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
        let mut sent = 0usize;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && sent < 64 * 1024 * 1024 {
            match tokio::time::timeout(Duration::from_secs(2), writer.write_all(chunk.as_bytes()))
                .await
            {
                Ok(Ok(())) => sent += 16 * 1024,
                _ => break,
            }
        }
        sent
    });
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), read_http1_response(&mut reader))
            .await
            .expect("answer within 10 s")
            .expect("a response");
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let sent = sender.await.unwrap();
    assert!(
        sent < 64 * 1024 * 1024,
        "server kept reading an endless body ({sent} bytes)"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_of_almost_seven_mib_is_accepted_under_the_default_cap() {
    let layout = Layout::new(&standard_policies());
    let server = TestServer::start(layout.args()).await;
    let client = client(&[&layout.pki.ca_pem], Proto::H2, None, false);
    // 3 MiB object + 3 MiB oldObject, like an UPDATE at the apiserver's own limit.
    let mut review: serde_json::Value =
        serde_json::from_slice(&pod_review("44444444-0000-0000-0000-000000000001", false)).unwrap();
    let filler = "x".repeat(3 * 1024 * 1024);
    review["request"]["operation"] = "UPDATE".into();
    review["request"]["object"]["metadata"]["annotations"] = serde_json::json!({"big": filler});
    review["request"]["oldObject"] = review["request"]["object"].clone();
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() > 6 * 1024 * 1024 && body.len() < 7 * 1024 * 1024);
    let reply = post_review(&client, &server.url("/validate"), body.clone())
        .await
        .unwrap();
    assert_contract(&body, &reply, Hook::Validate);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_report_health_readiness_and_the_required_metrics() {
    let layout = Layout::new(&standard_policies());
    let server = TestServer::start(layout.args()).await;
    assert_eq!(probe_get(server.probe, "/healthz").await.unwrap().0, 200);
    assert_eq!(probe_get(server.probe, "/readyz").await.unwrap().0, 200);
    let client = client(&[&layout.pki.ca_pem], Proto::H2, None, false);
    let body = pod_review("55555555-0000-0000-0000-000000000001", true);
    post_review(&client, &server.url("/validate"), body)
        .await
        .unwrap();
    let (status, text) = probe_get(server.probe, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    for name in [
        "podgate_admission_requests_total{",
        "podgate_admission_duration_seconds_bucket{le=\"0.00005\"}",
        "podgate_admission_duration_seconds_bucket{le=\"1.0\"}",
        "podgate_policy_violations_total{",
        "podgate_policies_loaded 3",
        "podgate_tls_certificate_expiry_timestamp_seconds ",
        "podgate_exemptions_expiring_total ",
        "podgate_panics_total 0",
        "podgate_admission_in_flight ",
        "podgate_policy_reloads_total{result=\"error\"} 0",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
    let expiry = metric(
        server.probe,
        "podgate_tls_certificate_expiry_timestamp_seconds",
    )
    .await;
    assert!(
        expiry > jiff::Timestamp::now().as_second() as f64,
        "expiry {expiry}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_is_off_by_default_and_when_on_only_certs_from_the_client_ca_pass() {
    let layout = Layout::new(&standard_policies());
    let ca = layout.pki.ca_pem.clone();
    let body = pod_review("66666666-0000-0000-0000-000000000001", false);

    // Off by default: no client certificate needed (the apiserver sends none).
    let server = TestServer::start(layout.args()).await;
    let reply = post_review(
        &client(&[&ca], Proto::Http1, None, true),
        &server.url("/validate"),
        body.clone(),
    )
    .await;
    assert_contract(&body, &reply.unwrap(), Hook::Validate);
    server.stop().await.unwrap();

    let client_pki = Pki::new("apiserver client CA");
    let other_pki = Pki::new("some other CA");
    let ca_file = layout.root.path().join("client-ca.crt");
    std::fs::write(&ca_file, &client_pki.ca_pem).unwrap();
    let mut args = layout.args();
    args.client_ca = Some(ca_file);
    let server = TestServer::start(args).await;
    let url = server.url("/validate");

    for proto in [Proto::Http1, Proto::H2] {
        let none = post_review(&client(&[&ca], proto, None, true), &url, body.clone()).await;
        assert!(
            none.is_err(),
            "{proto:?}: no client cert was accepted: {none:?}"
        );
        let stranger = other_pki.client("intruder");
        let wrong = post_review(
            &client(&[&ca], proto, Some(&stranger), true),
            &url,
            body.clone(),
        )
        .await;
        assert!(
            wrong.is_err(),
            "{proto:?}: cert from another CA was accepted: {wrong:?}"
        );
        let apiserver = client_pki.client("kube-apiserver");
        let right = post_review(
            &client(&[&ca], proto, Some(&apiserver), true),
            &url,
            body.clone(),
        )
        .await;
        assert_contract(&body, &right.unwrap(), Hook::Validate);
    }
    assert!(metric(server.probe, "podgate_tls_handshake_errors_total").await >= 2.0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_min_version_13_refuses_a_tls12_only_client() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    args.tls_min_version = podgate::server::TlsMinVersion::V1_3;
    let server = TestServer::start(args).await;
    install_provider();
    let mut store = rustls::RootCertStore::empty();
    store.add(leaf_der(&layout.pki.ca_pem).into()).unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls12));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let result = connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await;
    assert!(
        result.is_err(),
        "a TLS 1.2 handshake succeeded against --tls-min-version 1.3"
    );
    // TLS 1.3 still works.
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, true);
    let body = pod_review("77777777-0000-0000-0000-000000000001", false);
    assert_contract(
        &body,
        &post_review(&client, &server.url("/validate"), body.clone())
            .await
            .unwrap(),
        Hook::Validate,
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_is_cut_off_without_affecting_other_clients() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    args.header_read_timeout = Duration::from_secs(1);
    let server = TestServer::start(args).await;
    let mut slow = raw_tls(server.addr, &[&layout.pki.ca_pem], &[b"http/1.1"])
        .await
        .unwrap();
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile a normal client is served at once.
    let client = client(&[&layout.pki.ca_pem], Proto::Http1, None, true);
    let body = pod_review("88888888-0000-0000-0000-000000000001", false);
    assert_contract(
        &body,
        &post_review(&client, &server.url("/validate"), body.clone())
            .await
            .unwrap(),
        Hook::Validate,
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    // The slow one is closed after the header-read timeout.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "half-sent header kept the connection open for 5 s"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_cert_paths_that_do_not_exist_are_an_error_not_replaced() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    let missing = layout.root.path().join("nowhere/tls.crt");
    args.tls_cert = Some(missing.clone());
    args.tls_key = Some(layout.root.path().join("nowhere/tls.key"));
    let error = podgate::server::serve(args, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("nowhere/tls.crt"),
        "{error:#}"
    );
    assert!(
        !missing.exists(),
        "a certificate was generated at an explicit path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_with_a_broken_policy_serves_not_ready_instead_of_exiting() {
    // #11: exiting would crash-loop every restarting replica while the webhook stays
    // registered. tests/availability.rs covers the rest (the log, 503s, Ready after a fix).
    let layout = Layout::new(&[
        ("ok.yaml", DENY_HOST_NETWORK),
        ("broken.yaml", BROKEN_POLICY),
    ]);
    let args = layout.args();
    let probe = args.probe_listen;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(podgate::server::serve(args, async move {
        let _ = rx.await;
        "test"
    }));
    let live = wait_until(Duration::from_secs(10), async || {
        matches!(probe_get(probe, "/healthz").await, Some((200, _)))
    })
    .await;
    assert!(live.is_some(), "no /healthz");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "serve returned on a broken policy set");
    assert_eq!(probe_get(probe, "/readyz").await.map(|r| r.0), Some(503));
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_rotation_by_kubelet_symlink_swap_is_served_within_15s_without_failed_requests() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    args.reload_interval = Duration::from_secs(10); // production poll; the watch should beat it
    let server = TestServer::start(args).await;
    let ca = layout.pki.ca_pem.clone();
    let first = leaf_der(&std::fs::read_to_string(layout.certs().join("tls.crt")).unwrap());

    // New connection per request (sees the new cert) plus long-lived h1 and h2 connections.
    let fresh = Load::start(
        client(&[&ca], Proto::Http1, None, true),
        server.url("/validate"),
        Hook::Validate,
    );
    let kept_h1 = Load::start(
        client(&[&ca], Proto::Http1, None, false),
        server.url("/mutate"),
        Hook::Mutate,
    );
    let kept_h2 = Load::start(
        client(&[&ca], Proto::H2, None, false),
        server.url("/validate?timeout=10s"),
        Hook::Validate,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fresh.cert().as_deref(), Some(first.as_slice()));

    let second = layout.pki.server();
    let second_der = leaf_der(&second.cert_pem);
    layout.publish_cert(&second);
    let took = wait_until(Duration::from_secs(15), async || {
        fresh.cert().as_deref() == Some(second_der.as_slice())
    })
    .await;
    let took = took.expect("new certificate not served within 15 s");
    eprintln!("cert rotation: new certificate served after {took:?}");

    // A broken version (key of another pair) is refused; the second cert keeps serving.
    let stranger = layout.pki.server();
    layout.publish_cert(&Pair {
        cert_pem: second.cert_pem.clone(),
        key_pem: stranger.key_pem,
    });
    let probe = server.probe;
    let refused = wait_until(Duration::from_secs(15), async || {
        metric(
            probe,
            r#"podgate_tls_certificate_reloads_total{result="error"}"#,
        )
        .await
            >= 1.0
    })
    .await;
    assert!(
        refused.is_some(),
        "mismatched key was not counted as a reload error"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fresh.cert().as_deref(), Some(second_der.as_slice()));
    assert_eq!(probe_get(probe, "/readyz").await.unwrap().0, 200);

    for (name, load) in [("fresh", fresh), ("kept h1", kept_h1), ("kept h2", kept_h2)] {
        let (ok, failures) = load.finish().await;
        assert!(
            failures.is_empty(),
            "{name}: {} failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
        // The fresh loop saw the old cert before and the new one after, so it spans the swap;
        // the counts only show each loop kept going (a debug build on a loaded 2-core box is slow).
        assert!(ok >= 3, "{name}: only {ok} requests");
    }
    assert_eq!(
        metric(
            probe,
            r#"podgate_tls_certificate_reloads_total{result="success"}"#
        )
        .await,
        1.0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reload_applies_a_valid_set_and_refuses_a_broken_one_without_failed_requests() {
    let layout = Layout::new(&[("audit-hosts-file.yaml", AUDIT_HOSTS_FILE)]);
    let mut args = layout.args();
    args.reload_interval = Duration::from_secs(10);
    let server = TestServer::start(args).await;
    let client = client(&[&layout.pki.ca_pem], Proto::H2, None, false);
    let url = server.url("/validate?timeout=10s");
    let probe = server.probe;

    // One sequential loop: answers must go allow... -> deny... and never back.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let phase_deny = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, p) = (stop.clone(), phase_deny.clone());
    let looper = tokio::spawn(async move {
        let (mut ok, mut failures, mut i) = (0usize, Vec::new(), 0u32);
        let deadline = Instant::now() + Duration::from_secs(40);
        while !s.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            i += 1;
            let body = pod_review(&format!("bbbbbbbb-0000-0000-0000-{i:012}"), true);
            match post_review(&client, &url, body.clone()).await {
                Ok(reply) => {
                    let out = assert_contract(&body, &reply, Hook::Validate);
                    let allowed = out["response"]["allowed"].as_bool().unwrap();
                    if !allowed {
                        assert_eq!(out["response"]["status"]["code"], 403);
                        p.store(true, std::sync::atomic::Ordering::SeqCst);
                    } else if p.load(std::sync::atomic::Ordering::SeqCst) {
                        failures.push("allowed again after the deny policy was loaded".to_string());
                    }
                    ok += 1;
                }
                Err(e) => failures.push(format!("{e:?}")),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (ok, failures)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!phase_deny.load(std::sync::atomic::Ordering::SeqCst));

    layout.publish_policies(&[
        ("audit-hosts-file.yaml", AUDIT_HOSTS_FILE),
        ("deny-host-network.yaml", DENY_HOST_NETWORK),
    ]);
    let took = wait_until(Duration::from_secs(15), async || {
        phase_deny.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    let took = took.expect("new policy not applied within 15 s");
    eprintln!("policy reload: applied after {took:?}");
    assert_eq!(
        metric(probe, r#"podgate_policy_reloads_total{result="success"}"#).await,
        1.0
    );
    assert_eq!(metric(probe, "podgate_policies_loaded").await, 2.0);

    layout.publish_policies(&[
        ("deny-host-network.yaml", DENY_HOST_NETWORK),
        ("broken.yaml", BROKEN_POLICY),
    ]);
    let refused = wait_until(Duration::from_secs(15), async || {
        metric(probe, r#"podgate_policy_reloads_total{result="error"}"#).await >= 1.0
    })
    .await;
    assert!(refused.is_some(), "broken policy set was not counted");
    assert_eq!(
        metric(probe, "podgate_policies_loaded").await,
        2.0,
        "broken set was applied"
    );
    assert_eq!(
        probe_get(probe, "/readyz").await.unwrap().0,
        200,
        "readiness dropped on a bad reload"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failures) = looper.await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 20, "only {ok} requests");
    assert_eq!(
        metric(probe, r#"podgate_policy_reloads_total{result="success"}"#).await,
        1.0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_review_finish_refuses_new_connections_and_exits_zero() {
    let layout = Layout::new(&standard_policies());
    let certs = layout.certs();
    let policies = layout.policies();
    let (cert, key) = (certs.join("tls.crt"), certs.join("tls.key"));
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
        "--shutdown-grace",
        "10s",
        "--log-format",
        "json",
    ];
    let mut process = Process::start(
        layout.root.path(),
        &args,
        layout.root.path().join("podgate.log"),
    )
    .await;

    // A review whose body trickles in: first half now, the rest after SIGTERM.
    let body = pod_review("cccccccc-0000-0000-0000-000000000001", true);
    let (first, rest) = body.split_at(body.len() / 2);
    let mut conn = raw_tls(process.addr, &[&layout.pki.ca_pem], &[b"http/1.1"])
        .await
        .unwrap();
    let head = format!(
        "POST /validate?timeout=10s HTTP/1.1\r\nHost: podgate.podgate.svc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(first).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    process.signal("TERM");
    let probe = process.probe;
    let unready = wait_until(Duration::from_secs(2), async || {
        matches!(probe_get(probe, "/readyz").await, Some((503, _)))
    })
    .await;
    assert!(unready.is_some(), "/readyz still ready after SIGTERM");
    let addr = process.addr;
    let refused = wait_until(Duration::from_secs(2), async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(
        refused.is_some(),
        "new connections still accepted after SIGTERM"
    );

    for piece in rest.chunks(rest.len() / 4 + 1) {
        conn.write_all(piece).await.unwrap();
        conn.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, reply_body) =
        tokio::time::timeout(Duration::from_secs(5), read_http1_response(&mut conn))
            .await
            .expect("in-flight review answered")
            .expect("a response");
    let reply = Reply {
        status,
        content_type: "application/json".into(),
        version: reqwest::Version::HTTP_11,
        peer_cert: None,
        body: reply_body,
    };
    let out = assert_contract(&body, &reply, Hook::Validate);
    assert_eq!(out["response"]["allowed"], false);

    let exit = process.wait_exit(Duration::from_secs(10)).await;
    assert!(
        exit.success(),
        "exit {exit:?}; log:\n{}",
        process.log_text()
    );

    // One JSON log line for the review, with the agreed fields and no object body.
    let log = process.log_text();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "review")
        .unwrap_or_else(|| panic!("no review log line in:\n{log}"));
    for field in [
        "uid",
        "kind",
        "namespace",
        "name",
        "operation",
        "webhook",
        "user",
        "decision",
        "violations",
        "patch_ops",
        "latency_us",
        "policy_hash",
    ] {
        assert!(line.get(field).is_some(), "log line lacks {field}: {line}");
    }
    assert_eq!(line["uid"], "cccccccc-0000-0000-0000-000000000001");
    assert_eq!(line["decision"], "deny");
    assert!(
        line["violations"]
            .as_str()
            .unwrap()
            .contains("deny-host-network"),
        "{line}"
    );
    assert!(
        !log.contains("nginx:latest"),
        "object body leaked into the info log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_run_command_works_on_a_fresh_checkout_with_no_certs() {
    // The repository layout `cargo run --release -- serve` sees: policies/ and no certificates.
    let root = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(root.path().join("policies")).unwrap();
    for entry in std::fs::read_dir(repo.join("policies")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(
                entry.path(),
                root.path().join("policies").join(entry.file_name()),
            )
            .unwrap();
        }
    }
    // certs/ as committed: its kustomization but no key material (.gitignore keeps PEMs out).
    std::fs::create_dir(root.path().join("certs")).unwrap();
    for entry in std::fs::read_dir(repo.join("certs")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let key_material = [".crt", ".key", ".pem"]
            .iter()
            .any(|ext| name.ends_with(ext));
        if entry.file_type().unwrap().is_file() && !key_material {
            std::fs::copy(entry.path(), root.path().join("certs").join(&name)).unwrap();
        }
    }
    assert!(!root.path().join("certs/tls.crt").exists());
    let mut process = Process::start(
        root.path(),
        &["--log-format", "text"],
        root.path().join("podgate.log"),
    )
    .await;

    let ca_file = root.path().join("certs/ca.crt");
    assert!(ca_file.exists() && root.path().join("certs/tls.key").exists());
    assert!(
        process.log_text().contains("certs/ca.crt"),
        "CA location not logged:\n{}",
        process.log_text()
    );
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let client = client(&[&ca], Proto::Http1, None, true);
    let url = format!(
        "https://localhost:{}/validate?timeout=10s",
        process.addr.port()
    );
    let body = pod_review("dddddddd-0000-0000-0000-000000000001", false);
    let reply = post_review(&client, &url, body.clone()).await.unwrap();
    assert_contract(&body, &reply, Hook::Validate);

    process.signal("TERM");
    let exit = process.wait_exit(Duration::from_secs(10)).await;
    assert!(
        exit.success(),
        "exit {exit:?}; log:\n{}",
        process.log_text()
    );

    // A second start reuses the generated pair instead of failing or regenerating.
    let before = std::fs::read(root.path().join("certs/tls.crt")).unwrap();
    let mut again = Process::start(root.path(), &[], root.path().join("podgate2.log")).await;
    again.signal("INT");
    assert!(again.wait_exit(Duration::from_secs(10)).await.success());
    assert_eq!(
        std::fs::read(root.path().join("certs/tls.crt")).unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_outlives_the_header_timeout_and_closes_after_the_idle_timeout() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    args.header_read_timeout = Duration::from_millis(500);
    args.idle_timeout = Duration::from_secs(2);
    let server = TestServer::start(args).await;
    let mut conn = raw_tls(server.addr, &[&layout.pki.ca_pem], &[b"http/1.1"])
        .await
        .unwrap();
    let send = async |conn: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
                      uid: &str| {
        let body = pod_review(uid, false);
        let head = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&body).await.unwrap();
        read_http1_response(conn).await.unwrap().0
    };
    assert_eq!(
        send(&mut conn, "eeeeeeee-0000-0000-0000-000000000001").await,
        200
    );
    // Idle for three header timeouts: a keep-alive wait is not a slow header.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        send(&mut conn, "eeeeeeee-0000-0000-0000-000000000002").await,
        200
    );
    let idle_from = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut buf),
    )
    .await;
    assert!(closed.is_ok(), "idle connection kept open past 5 s");
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(1900) && idle < Duration::from_secs(4),
        "closed after {idle:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_h2_streams_on_one_connection_all_get_answers_quickly() {
    let layout = Layout::new(&standard_policies());
    let server = TestServer::start(layout.args()).await;
    let client = client(&[&layout.pki.ca_pem], Proto::H2, None, false);
    let url = server.url("/mutate?timeout=10s");
    // Warm the single h2 connection, then 250 reviews at once (beyond the 100-stream cap).
    let warm = pod_review("ffffffff-0000-0000-0000-000000000000", false);
    post_review(&client, &url, warm).await.unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 1..=250u32 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let body = pod_review(&format!("ffffffff-0000-0000-0000-{i:012}"), i % 2 == 0);
            let reply = post_review(&client, &url, body.clone()).await.unwrap();
            assert_eq!(reply.version, reqwest::Version::HTTP_2);
            assert_contract(&body, &reply, Hook::Mutate);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = started.elapsed();
    eprintln!("250 concurrent h2 reviews in {took:?}");
    // Without TCP_NODELAY each round trip can wait ~40 ms for a delayed ACK.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_is_reloaded_for_new_connections() {
    let layout = Layout::new(&standard_policies());
    let old_ca = Pki::new("old apiserver client CA");
    let new_ca = Pki::new("new apiserver client CA");
    let ca_dir = layout.root.path().join("client-ca");
    kubelet_publish(&ca_dir, &[("ca.crt", old_ca.ca_pem.as_bytes())]);
    let mut args = layout.args();
    args.client_ca = Some(ca_dir.join("ca.crt"));
    let server = TestServer::start(args).await;
    let url = server.url("/validate");
    let body = pod_review("12121212-0000-0000-0000-000000000001", false);
    let (old_id, new_id) = (old_ca.client("apiserver"), new_ca.client("apiserver"));
    let ca = layout.pki.ca_pem.as_str();

    assert!(
        post_review(
            &client(&[ca], Proto::Http1, Some(&old_id), true),
            &url,
            body.clone()
        )
        .await
        .is_ok()
    );
    assert!(
        post_review(
            &client(&[ca], Proto::Http1, Some(&new_id), true),
            &url,
            body.clone()
        )
        .await
        .is_err()
    );

    kubelet_publish(&ca_dir, &[("ca.crt", new_ca.ca_pem.as_bytes())]);
    let took = wait_until(Duration::from_secs(15), async || {
        post_review(
            &client(&[ca], Proto::Http1, Some(&new_id), true),
            &url,
            body.clone(),
        )
        .await
        .is_ok()
    })
    .await;
    assert!(took.is_some(), "new client CA not in force within 15 s");
    assert!(
        post_review(
            &client(&[ca], Proto::Http1, Some(&old_id), true),
            &url,
            body.clone()
        )
        .await
        .is_err()
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemptions_expiring_within_7_days_are_reported() {
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let soon = today.checked_add(jiff::Span::new().days(3)).unwrap();
    let later = today.checked_add(jiff::Span::new().days(30)).unwrap();
    let policy = format!(
        "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: deny-host-network-exempt
spec:
  action: Enforce
  exemptions:
    - namespaces: [monitoring]
      expires: \"{soon}\"
      reason: node exporter migration
    - namespaces: [logging]
      expires: \"{later}\"
      reason: log shipper migration
  validate:
    hostNamespaces:
      forbiddenCombinations:
        - [hostNetwork]
"
    );
    let layout = Layout::new(&[("exempt.yaml", policy.as_str())]);
    let server = TestServer::start(layout.args()).await;
    let probe = server.probe;
    let reported = wait_until(Duration::from_secs(5), async || {
        metric(probe, "podgate_exemptions_expiring_total").await == 1.0
    })
    .await;
    assert!(reported.is_some(), "expected 1 expiring exemption");
    server.stop().await.unwrap();
}

/// Over HTTP/2 (reqwest, prior knowledge, TLS with ALPN h2, as a loopback URL webhook may be
/// called), a body over the cap gets the same 413 with a JSON reason as over HTTP/1.1, not a
/// reset stream: just over the cap (read and discarded), and far over it (answered before the
/// body is read). The connection stays usable for the next review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_gets_413_with_a_json_reason_over_h2_as_over_http1() {
    let layout = Layout::new(&standard_policies());
    let mut args = layout.args();
    let cap = 64 * 1024;
    args.max_body = cap;
    let server = TestServer::start(args).await;
    let ok = pod_review("44444444-0000-0000-0000-000000000001", false);
    // Kept-alive and fresh connections; each size a few times, since a reset racing the
    // answer would show up only sometimes.
    for (proto, fresh) in [
        (Proto::H2, false),
        (Proto::H2, true),
        (Proto::Http1, false),
        (Proto::Http1, true),
    ] {
        let client = client(&[&layout.pki.ca_pem], proto, None, fresh);
        let sizes = [
            ("cap + 1", cap + 1),
            ("cap + 600 KiB", cap + 600 * 1024),
            ("8 MiB", 8 * 1024 * 1024),
        ];
        for (name, size) in sizes.iter().cycle().take(sizes.len() * 5).copied() {
            let reply = post_review(&client, &server.url("/validate"), vec![b' '; size])
                .await
                .unwrap_or_else(|e| panic!("{proto:?} {name}: no answer: {e:?}"));
            let want = match proto {
                Proto::Http1 => reqwest::Version::HTTP_11,
                Proto::H2 => reqwest::Version::HTTP_2,
            };
            assert_eq!(reply.version, want, "{proto:?} {name}");
            assert_eq!(reply.status, 413, "{proto:?} {name}");
            assert!(reply.content_type.starts_with("application/json"));
            let json = reply.json();
            assert_eq!(json["response"]["allowed"], false, "{json}");
            assert_eq!(json["response"]["status"]["code"], 413, "{json}");
            let message = json["response"]["status"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("limit of {cap} bytes")),
                "{message}"
            );
            // The next review on the same client is answered normally.
            let next = post_review(&client, &server.url("/validate"), ok.clone())
                .await
                .unwrap_or_else(|e| panic!("{proto:?} after {name}: {e:?}"));
            assert_eq!(next.status, 200, "{proto:?} after {name}");
        }
    }
    server.stop().await.unwrap();
}
