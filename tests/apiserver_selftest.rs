//! The test API server (tests/apiserver/) through kube's real client: each semantic the other
//! tests rely on, so a test that passes against it passes for the right reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apiserver;

use std::time::Duration;

use apiserver::ApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn pod(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
    })
}

fn config_map(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data,
    }))
    .unwrap()
}

#[tokio::test]
async fn get_of_a_missing_object_is_404_not_found_with_details() {
    let server = ApiServer::start().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "ns1");
    let s = api_error(pods.get("nope").await.unwrap_err());
    assert_eq!(s.code, 404);
    assert_eq!(s.reason, "NotFound");
    assert_eq!(s.message, "pods \"nope\" not found");
    let d = s.details.unwrap();
    assert_eq!(d.name, "nope");
    assert_eq!(d.kind, "pods");
    assert_eq!(pods.get_opt("nope").await.unwrap(), None);
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "ns1");
    let s = api_error(deployments.get("d").await.unwrap_err());
    assert_eq!(s.message, "deployments.apps \"d\" not found");
}

#[tokio::test]
async fn create_sets_identity_and_refuses_a_duplicate_with_409() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let made = cms
        .create(&PostParams::default(), &config_map("a", json!({"k": "v"})))
        .await
        .unwrap();
    assert_eq!(made.metadata.namespace.as_deref(), Some("default"));
    assert!(made.metadata.uid.is_some());
    assert!(made.metadata.creation_timestamp.is_some());
    let rv1: u64 = made.metadata.resource_version.unwrap().parse().unwrap();
    let s = api_error(
        cms.create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "configmaps \"a\" already exists");
    let b = cms
        .create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    let rv2: u64 = b.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv2 > rv1, "one global counter: {rv2} after {rv1}");
    assert_eq!(
        server.get("", "configmaps", "default", "a").unwrap()["data"]["k"],
        "v"
    );
}

#[tokio::test]
async fn generate_name_makes_a_fresh_name_and_no_name_is_invalid() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let mut cm = config_map("", json!({}));
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".into());
    let a = cms.create(&PostParams::default(), &cm).await.unwrap();
    let b = cms.create(&PostParams::default(), &cm).await.unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
    cm.metadata.generate_name = None;
    let s = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn validator_hook_answers_422_invalid() {
    let server = ApiServer::start().await;
    server.set_validator("ConfigMap", |obj| {
        if obj["data"].get("bad").is_some() {
            Err("Invalid value: \"bad\": not allowed".into())
        } else {
            Ok(())
        }
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    cms.create(
        &PostParams::default(),
        &config_map("ok", json!({"good": "1"})),
    )
    .await
    .unwrap();
    let s = api_error(
        cms.create(
            &PostParams::default(),
            &config_map("no", json!({"bad": "1"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message.starts_with("ConfigMap \"no\" is invalid"),
        "{}",
        s.message
    );
    assert!(server.get("", "configmaps", "default", "no").is_none());
}

#[tokio::test]
async fn replace_needs_the_current_resource_version() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let s = api_error(
        cms.replace("a", &PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    let made = cms
        .create(&PostParams::default(), &config_map("a", json!({"v": "1"})))
        .await
        .unwrap();
    let mut first = made.clone();
    first.data = Some([("v".to_string(), "2".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        made.metadata.resource_version
    );
    assert_eq!(replaced.metadata.uid, made.metadata.uid);
    // The same stale copy again: someone else (us) changed it in between.
    let s = api_error(
        cms.replace("a", &PostParams::default(), &first)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Without a resourceVersion the replace is unconditional.
    let mut blind = config_map("a", json!({"v": "3"}));
    blind.metadata.resource_version = None;
    let r = cms
        .replace("a", &PostParams::default(), &blind)
        .await
        .unwrap();
    assert_eq!(r.data.unwrap()["v"], "3");
}

#[tokio::test]
async fn lists_page_over_a_consistent_snapshot_across_namespaces() {
    let server = ApiServer::start().await;
    for i in 0..25 {
        let ns = ["a", "b", "c"][i % 3];
        server.insert(pod(ns, &format!("p{i:02}"), json!({"i": i.to_string()})));
    }
    let pods: Api<Pod> = Api::all(server.client());
    let first = pods.list(&ListParams::default().limit(10)).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.metadata.remaining_item_count, Some(15));
    let token = first.metadata.continue_.clone().unwrap();
    // Written after the first page: not part of this list.
    server.insert(pod("a", "late", json!({})));
    let mut names: Vec<String> = first
        .items
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap(),
                p.metadata.name.as_deref().unwrap()
            )
        })
        .collect();
    let mut token = Some(token);
    let mut pages = 1;
    while let Some(t) = token {
        let page = pods
            .list(&ListParams::default().limit(10).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        names.extend(page.items.iter().map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap(),
                p.metadata.name.as_deref().unwrap()
            )
        }));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert!(!names.contains(&"a/late".to_string()));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "key order: namespace, then name");
    // A namespaced list sees only its namespace, the new pod included.
    let in_a: Api<Pod> = Api::namespaced(server.client(), "a");
    let all_a = in_a.list(&ListParams::default()).await.unwrap();
    assert_eq!(all_a.items.len(), 10);
    assert_eq!(all_a.metadata.continue_.as_deref().unwrap_or(""), "");
}

#[tokio::test]
async fn list_items_of_built_in_kinds_lack_kind_as_from_the_real_server() {
    let server = ApiServer::start().await;
    server.insert(pod("a", "p", json!({})));
    let raw = server.client();
    let req = axum::http::Request::get("/api/v1/namespaces/a/pods")
        .body(Vec::new())
        .unwrap();
    let v: Value = raw.request(req).await.unwrap();
    assert_eq!(v["kind"], "PodList");
    assert_eq!(v["apiVersion"], "v1");
    assert!(v["items"][0].get("kind").is_none());
    assert_eq!(v["items"][0]["metadata"]["name"], "p");
}

#[tokio::test]
async fn an_expired_continue_token_is_410_expired() {
    let server = ApiServer::start().await;
    for i in 0..5 {
        server.insert(pod("a", &format!("p{i}"), json!({})));
    }
    let pods: Api<Pod> = Api::all(server.client());
    let first = pods.list(&ListParams::default().limit(2)).await.unwrap();
    server.expire_continue_tokens();
    let s = api_error(
        pods.list(
            &ListParams::default()
                .limit(2)
                .continue_token(first.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
    assert!(
        s.message
            .starts_with("The provided continue parameter is too old"),
        "{}",
        s.message
    );
    // A fresh list works.
    let again = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(again.items.len(), 5);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let server = ApiServer::start().await;
    server.insert(pod("a", "web", json!({"app": "web", "tier": "front"})));
    server.insert(pod("a", "db", json!({"app": "db"})));
    server.insert(pod("b", "web", json!({"app": "web"})));
    let pods: Api<Pod> = Api::all(server.client());
    let names = |l: kube::core::ObjectList<Pod>| -> Vec<String> {
        l.items
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap(),
                    p.metadata.name.as_deref().unwrap()
                )
            })
            .collect()
    };
    let cases = [
        ("app=web", None, vec!["a/web", "b/web"]),
        ("app!=web", None, vec!["a/db"]),
        ("tier", None, vec!["a/web"]),
        ("!tier", None, vec!["a/db", "b/web"]),
        ("", Some("metadata.namespace=b"), vec!["b/web"]),
        (
            "app=web",
            Some("metadata.name=web,metadata.namespace=a"),
            vec!["a/web"],
        ),
    ];
    for (labels, fields, want) in cases {
        let mut lp = ListParams::default();
        if !labels.is_empty() {
            lp = lp.labels(labels);
        }
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        assert_eq!(
            names(pods.list(&lp).await.unwrap()),
            want,
            "{labels} {fields:?}"
        );
    }
}

#[tokio::test]
async fn server_side_apply_creates_merges_owns_and_conflicts() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let pp = PatchParams::apply("podgate");
    let applied = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"app.kubernetes.io/managed-by": "podgate"}},
        "data": {"a": "1", "b": "2"},
    });
    let made = cms.patch("c", &pp, &Patch::Apply(&applied)).await.unwrap();
    let mf = made.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("podgate"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(&mf[0].fields_v1).unwrap();
    assert!(fields["f:data"].get("f:a").is_some(), "{fields}");
    let req = server.requests().pop().unwrap();
    assert_eq!(req.method, "PATCH");
    assert_eq!(
        req.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(req.field_manager.as_deref(), Some("podgate"));

    // The same apply again is a no-op: no new resourceVersion.
    let same = cms.patch("c", &pp, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(
        same.metadata.resource_version,
        made.metadata.resource_version
    );

    // Another manager setting a field podgate owns to another value: 409, unless forced.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "other"}});
    let s = api_error(
        cms.patch("c", &PatchParams::apply("kubectl"), &Patch::Apply(&other))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"podgate\" using v1: .data.a"
    );
    let forced = cms
        .patch(
            "c",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "other");
    assert_eq!(forced.data.as_ref().unwrap()["b"], "2");

    // podgate stops applying "b": it goes. It no longer owns "a", so "a" stays kubectl's.
    let fewer = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"app.kubernetes.io/managed-by": "podgate"}},
        "data": {"c": "3"},
    });
    let after = cms.patch("c", &pp, &Patch::Apply(&fewer)).await.unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("b"), None);
    assert_eq!(data["a"], "other");
    assert_eq!(data["c"], "3");

    // Apply without a field manager is refused; a stale resourceVersion is 409.
    let s = api_error(
        cms.patch("c", &PatchParams::default(), &Patch::Apply(&fewer))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 400);
    let stale = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "resourceVersion": made.metadata.resource_version},
        "data": {"c": "3"},
    });
    let s = api_error(
        cms.patch("c", &pp, &Patch::Apply(&stale))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 409);
}

#[tokio::test]
async fn an_update_by_another_manager_makes_the_next_apply_conflict() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let pp = PatchParams::apply("podgate");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    cms.patch("c", &pp, &Patch::Apply(&applied)).await.unwrap();
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    cms.patch("c", &edit, &Patch::Merge(json!({"data": {"a": "edited"}})))
        .await
        .unwrap();
    let again = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let s = api_error(
        cms.patch("c", &pp, &Patch::Apply(&again))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 409);
    assert!(s.message.contains("kubectl-edit"), "{}", s.message);
    let forced = cms
        .patch(
            "c",
            &PatchParams::apply("podgate").force(),
            &Patch::Apply(&again),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "1");
}

#[tokio::test]
async fn merge_and_json_patches_apply_and_a_stale_version_is_409() {
    let server = ApiServer::start().await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "podgate");
    let s = api_error(
        secrets
            .patch(
                "tls",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    let made = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "tls"}, "type": "Opaque", "data": {"a": "YQ=="}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let merged = secrets
        .patch(
            "tls",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "Yg=="}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap().len(), 2);
    let strategic = secrets
        .patch(
            "tls",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.metadata.labels.unwrap()["x"], "y");
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/a"}])).unwrap();
    let patched = secrets
        .patch("tls", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 1);
    let stale = json!({"metadata": {"resourceVersion": made.metadata.resource_version}, "data": {"c": "Yw=="}});
    let s = api_error(
        secrets
            .patch("tls", &PatchParams::default(), &Patch::Merge(stale))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/type", "value": "nope"}])).unwrap();
    let s = api_error(
        secrets
            .patch("tls", &PatchParams::default(), &Patch::<()>::Json(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
}

#[tokio::test]
async fn delete_removes_and_a_missing_object_is_404() {
    let server = ApiServer::start().await;
    server.insert(pod("a", "p", json!({})));
    let pods: Api<Pod> = Api::namespaced(server.client(), "a");
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(server.get("", "pods", "a", "p").is_none());
    let s = api_error(
        pods.delete("p", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    // A precondition on a stale resourceVersion is 409.
    let stored = server.insert(pod("a", "q", json!({})));
    server.insert(pod("a", "q", json!({"changed": "yes"})));
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: stored["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    let s = api_error(pods.delete("q", &dp).await.unwrap_err());
    assert_eq!(s.code, 409);
}

#[tokio::test]
async fn forbidden_verbs_answer_403_with_the_apiservers_message() {
    let server = ApiServer::start().await;
    server.forbid("get", "", "secrets");
    server.forbid("list", "apps", "deployments");
    server.forbid_in("create", "", "configmaps", "kube-system");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "ns");
    let s = api_error(secrets.get("x").await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        s.message,
        "secrets \"x\" is forbidden: User \"system:serviceaccount:podgate:podgate\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\""
    );
    let deployments: Api<Deployment> = Api::all(server.client());
    let s = api_error(deployments.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        s.message,
        "deployments.apps is forbidden: User \"system:serviceaccount:podgate:podgate\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
    );
    let in_ks: Api<ConfigMap> = Api::namespaced(server.client(), "kube-system");
    let s = api_error(
        in_ks
            .create(&PostParams::default(), &config_map("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 403);
    let elsewhere: Api<ConfigMap> = Api::namespaced(server.client(), "other");
    elsewhere
        .create(&PostParams::default(), &config_map("x", json!({})))
        .await
        .unwrap();
    server.allow_all();
    assert_eq!(secrets.get_opt("x").await.unwrap(), None);
}

#[tokio::test]
async fn an_unserved_resource_is_404_and_discovery_follows() {
    let server = ApiServer::start().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport"),
        "policyreports",
    );
    let reports: Api<DynamicObject> = Api::namespaced_with(server.client(), "a", &ar);
    assert!(
        reports
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let groups = server.client().list_api_groups().await.unwrap();
    assert!(groups.groups.iter().any(|g| g.name == "wgpolicyk8s.io"));
    server.set_served("wgpolicyk8s.io", "policyreports", false);
    server.set_served("wgpolicyk8s.io", "clusterpolicyreports", false);
    let s = api_error(reports.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    let groups = server.client().list_api_groups().await.unwrap();
    assert!(!groups.groups.iter().any(|g| g.name == "wgpolicyk8s.io"));
    let s = api_error(
        server
            .client()
            .list_api_group_resources("wgpolicyk8s.io/v1alpha2")
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    let apps = server
        .client()
        .list_api_group_resources("apps/v1")
        .await
        .unwrap();
    assert!(
        apps.resources
            .iter()
            .any(|r| r.name == "deployments" && r.namespaced)
    );
}

#[tokio::test]
async fn a_down_server_fails_requests_and_recovers() {
    let server = ApiServer::start().await;
    let pods: Api<Pod> = Api::all(server.client());
    pods.list(&ListParams::default()).await.unwrap();
    server.set_down(true);
    assert!(pods.list(&ListParams::default()).await.is_err());
    // A fresh client (new connection) fails too.
    let fresh: Api<Pod> = Api::all(server.client());
    assert!(fresh.list(&ListParams::default()).await.is_err());
    server.set_down(false);
    pods.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let a = cms
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.clone().unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    let mut events = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        if seen.len() == 2 {
            // Live events after the history.
            cms.delete("a", &DeleteParams::default()).await.unwrap();
        }
        let e = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["MODIFIED a", "ADDED b", "DELETED a"]);
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_410_and_selectors_filter() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let a = cms
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &config_map("z", json!({})))
        .await
        .unwrap();
    // History from after "z" only: a watch from "a" cannot be served.
    server.compact();
    let mut events = cms
        .watch(
            &WatchParams::default().timeout(5),
            a.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    match events.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    let rv = server.resource_version().to_string();
    let mut only_b = cms
        .watch(
            &WatchParams::default().fields("metadata.name=b").timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &config_map("c", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), only_b.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected ADDED b, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watcher_follows_the_store() {
    use kube::runtime::{WatchStreamExt, watcher};
    let server = ApiServer::start().await;
    server.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}));
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let mut stream = watcher::watcher(cms.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    cms.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("b"));
}
