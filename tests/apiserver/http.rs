//! The HTTP face of the test API server: apiserver paths onto store operations, errors as
//! `kind: Status` bodies shaped like the real ones, watch as newline-delimited JSON events.
// Handlers return `Result<_, Response>`: the error is the answer, built once and sent.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::apply;
use super::store::{self, Event, Key, RecordedRequest, Resource, Selector, Snapshot, Store};

/// Shared server state.
pub type Shared = Arc<Mutex<Store>>;

pub fn lock(s: &Shared) -> MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A response with a Status body.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if details.as_object().is_some_and(|d| !d.is_empty()) {
        body["details"] = details;
    }
    json_response(code, &body)
}

fn json_response(code: u16, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn details(r: &Resource, name: &str) -> Value {
    let mut d = json!({ "kind": r.plural });
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !r.group.is_empty() {
        d["group"] = json!(r.group);
    }
    d
}

fn not_found(r: &Resource, name: &str) -> Response {
    status(
        404,
        "NotFound",
        &format!("{} {name:?} not found", r.qualified()),
        details(r, name),
    )
}

fn unknown_resource() -> Response {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource",
        json!({}),
    )
}

fn bad_request(message: &str) -> Response {
    status(400, "BadRequest", message, json!({}))
}

fn conflict(r: &Resource, name: &str) -> Response {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
            r.qualified()
        ),
        details(r, name),
    )
}

fn invalid(r: &Resource, name: &str, field: &str, message: &str) -> Response {
    let mut d = details(r, name);
    d["kind"] = json!(r.kind);
    d["causes"] = json!([{ "reason": "FieldValueInvalid", "message": message, "field": field }]);
    status(
        422,
        "Invalid",
        &format!(
            "{} {name:?} is invalid: {field}: {message}",
            r.qualified_kind()
        ),
        d,
    )
}

fn gone_continue() -> Response {
    status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        json!({}),
    )
}

/// Where a request points.
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Discovery(Value),
    Target(Target),
}

fn route(store: &Store, path: &str) -> Result<Route, Response> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => {
            return Ok(Route::Discovery(
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
            ));
        }
        ["apis"] => return Ok(Route::Discovery(group_list(store))),
        ["api", "v1"] => return Ok(Route::Discovery(resource_list(store, "", "v1")?)),
        ["apis", g, v] => return Ok(Route::Discovery(resource_list(store, g, v)?)),
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(unknown_resource()),
    };
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, res, tail @ ..] if *res != "status" && *res != "finalize" => {
            (Some(*ns), *res, tail.first().copied(), tail.get(1).copied())
        }
        [res, tail @ ..] => (None, *res, tail.first().copied(), tail.get(1).copied()),
        [] => return Err(unknown_resource()),
    };
    if rest.len() > 5 {
        return Err(unknown_resource());
    }
    let resource = store
        .resource(group, version, plural)
        .filter(|r| r.served)
        .ok_or_else(unknown_resource)?
        .clone();
    if namespace.is_some() && !resource.namespaced {
        return Err(unknown_resource());
    }
    if namespace.is_none() && resource.namespaced && name.is_some() {
        return Err(unknown_resource());
    }
    Ok(Route::Target(Target {
        resource,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    }))
}

fn group_list(store: &Store) -> Value {
    let mut groups: Vec<(String, String)> = store
        .resources
        .iter()
        .filter(|r| r.served && !r.group.is_empty())
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(store: &Store, group: &str, version: &str) -> Result<Value, Response> {
    let resources: Vec<Value> = store
        .resources
        .iter()
        .filter(|r| r.served && r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.kind.to_lowercase(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
        })
        .collect();
    if resources.is_empty() {
        return Err(unknown_resource());
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// The verb RBAC would check.
fn verb(method: &Method, target: &Target, query: &HashMap<String, String>) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "unknown",
    }
}

fn forbidden(store: &Store, verb: &str, t: &Target) -> Option<Response> {
    let r = &t.resource;
    let hit = store.forbidden.iter().any(|f| {
        f.verb == verb
            && f.group == r.group
            && f.resource == r.plural
            && f.namespace
                .as_deref()
                .is_none_or(|ns| t.namespace.as_deref() == Some(ns))
    });
    if !hit {
        return None;
    }
    let who = match (&t.name, verb) {
        (Some(n), _) => format!("{} {n:?}", r.qualified()),
        (None, _) => r.qualified(),
    };
    let scope = match &t.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{who} is forbidden: User {:?} cannot {verb} resource {:?} in API group {:?} {scope}",
        store.user, r.plural, r.group
    );
    Some(status(
        403,
        "Forbidden",
        &message,
        details(r, t.name.as_deref().unwrap_or("")),
    ))
}

/// The one handler.
pub async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
    let path = parts.uri.path().to_string();
    let routed = {
        let mut store = lock(&shared);
        if store.down {
            return status(
                503,
                "ServiceUnavailable",
                "the test API server is unavailable",
                json!({}),
            );
        }
        if store.record_requests {
            store.requests.push(RecordedRequest {
                method: parts.method.to_string(),
                path: path.clone(),
                query: parts.uri.query().unwrap_or("").to_string(),
                content_type: content_type.clone(),
                field_manager: query.get("fieldManager").cloned(),
            });
        }
        match route(&store, &path) {
            Ok(Route::Discovery(v)) if parts.method == Method::GET => {
                return json_response(200, &v);
            }
            Ok(Route::Discovery(_)) => {
                return status(405, "MethodNotAllowed", "method not allowed", json!({}));
            }
            Ok(Route::Target(t)) => {
                let verb = verb(&parts.method, &t, &query);
                if let Some(resp) = forbidden(&store, verb, &t) {
                    return resp;
                }
                if t.subresource.as_deref().is_some_and(|s| s != "status") {
                    return unknown_resource();
                }
                (t, verb)
            }
            Err(resp) => return resp,
        }
    };
    let (target, verb) = routed;
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return bad_request(&format!("cannot read the body: {e}")),
    };
    match verb {
        "list" => list(&shared, &target, &query),
        "watch" => watch(&shared, &target, &query),
        "get" => get(&shared, &target),
        "create" => create(&shared, &target, &query, &body),
        "update" => update(&shared, &target, &query, &body),
        "patch" => patch(
            &shared,
            &target,
            &query,
            content_type.as_deref().unwrap_or(""),
            &body,
        ),
        "delete" => delete(&shared, &target, &body),
        _ => status(405, "MethodNotAllowed", "method not allowed", json!({})),
    }
}

fn key(t: &Target, name: &str) -> Key {
    Key {
        group: t.resource.group.clone(),
        version: t.resource.version.clone(),
        resource: t.resource.plural.clone(),
        namespace: t.namespace.clone().unwrap_or_default(),
        name: name.to_string(),
    }
}

fn selectors(query: &HashMap<String, String>) -> Result<(Selector, Selector), Response> {
    let labels = Selector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| bad_request(&e))?;
    let fields = Selector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| bad_request(&e))?;
    Ok((labels, fields))
}

#[derive(serde::Deserialize, Serialize)]
struct ContinueToken {
    v: String,
    snapshot: u64,
    offset: usize,
}

fn encode_continue(snapshot: u64, offset: usize) -> String {
    let token = ContinueToken {
        v: "podgate.test/v1".into(),
        snapshot,
        offset,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(text: &str) -> Option<ContinueToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Items of built-in kinds come without apiVersion and kind in a list, as from the real server.
struct ListItem<'a> {
    obj: &'a Value,
    strip: bool,
}

impl Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.obj.as_object() {
            Some(m) if self.strip => {
                let mut out = s.serialize_map(None)?;
                for (k, v) in m {
                    if k != "apiVersion" && k != "kind" {
                        out.serialize_entry(k, v)?;
                    }
                }
                out.end()
            }
            _ => self.obj.serialize(s),
        }
    }
}

#[derive(Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Map<String, Value>,
    items: Vec<ListItem<'a>>,
}

fn builtin(r: &Resource) -> bool {
    r.group.is_empty() || !r.group.contains('.') || r.group.ends_with(".k8s.io")
}

fn list(shared: &Shared, t: &Target, query: &HashMap<String, String>) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut store = lock(shared);
    let (snapshot, snapshot_id, offset) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            if store.expire_next_continues > 0 {
                store.expire_next_continues -= 1;
                store.expire_continue_tokens();
                return gone_continue();
            }
            let Some(tok) = decode_continue(token) else {
                return bad_request("continue key is not valid: illegal base64 data");
            };
            match store.snapshots.get(&tok.snapshot) {
                Some(s) => (s.clone(), Some(tok.snapshot), tok.offset),
                None => return gone_continue(),
            }
        }
        None => {
            let items: Vec<Arc<Value>> = store
                .range(&t.resource, t.namespace.as_deref())
                .map(|(_, v)| v)
                .filter(|v| labels.matches_labels(v) && fields.matches_fields(v))
                .cloned()
                .collect();
            let snapshot = Arc::new(Snapshot {
                rv: store.rv,
                items,
            });
            (snapshot, None, 0)
        }
    };
    let total = snapshot.items.len();
    let start = offset.min(total);
    let end = if limit > 0 {
        (start + limit).min(total)
    } else {
        total
    };
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(snapshot.rv.to_string()));
    if end < total {
        let id = match snapshot_id {
            Some(id) => id,
            None => store.keep_snapshot(Snapshot {
                rv: snapshot.rv,
                items: snapshot.items.clone(),
            }),
        };
        metadata.insert("continue".into(), json!(encode_continue(id, end)));
        metadata.insert("remainingItemCount".into(), json!(total - end));
    }
    drop(store);
    let strip = builtin(&t.resource);
    let body = ListBody {
        kind: format!("{}List", t.resource.kind),
        api_version: t.resource.api_version(),
        metadata,
        items: snapshot.items[start..end]
            .iter()
            .map(|obj| ListItem { obj, strip })
            .collect(),
    };
    json_response(200, &body)
}

fn get(shared: &Shared, t: &Target) -> Response {
    let name = t.name.clone().unwrap_or_default();
    let store = lock(shared);
    match store.objects.get(&key(t, &name)) {
        Some(obj) => json_response(200, &**obj),
        None => not_found(&t.resource, &name),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .or_else(|_| {
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
        })
        .map_err(|e| {
            bad_request(&format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })
}

fn check_type(t: &Target, obj: &Value) -> Result<(), Response> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if (!api_version.is_empty() && api_version != t.resource.api_version())
        || (!kind.is_empty() && kind != t.resource.kind)
    {
        return Err(bad_request(&format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}) or kind {kind} is not {}",
            t.resource.api_version(),
            t.resource.kind
        )));
    }
    Ok(())
}

/// Sets apiVersion, kind and namespace; refuses a namespace that differs from the path's.
fn normalise(t: &Target, obj: &mut Value) -> Result<(), Response> {
    check_type(t, obj)?;
    if !obj.is_object() {
        return Err(bad_request("the body is not an object"));
    }
    obj["apiVersion"] = json!(t.resource.api_version());
    obj["kind"] = json!(t.resource.kind);
    let meta = store::metadata_mut(obj);
    match (&t.namespace, meta.get("namespace").and_then(Value::as_str)) {
        (Some(path_ns), Some(ns)) if !ns.is_empty() && ns != path_ns => {
            return Err(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (Some(path_ns), _) => {
            meta.insert("namespace".into(), json!(path_ns));
        }
        (None, _) => {
            meta.remove("namespace");
        }
    }
    Ok(())
}

fn validate(store: &Store, t: &Target, obj: &Value) -> Result<(), Response> {
    let name = store::meta_str(obj, "name").unwrap_or("");
    if let Some(v) = store.validators.get(&t.resource.kind) {
        v(obj).map_err(|m| invalid(&t.resource, name, "spec", &m))?;
    }
    Ok(())
}

fn dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn manager(query: &HashMap<String, String>) -> String {
    query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

/// Everything outside metadata and status: a change there bumps `generation`.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(old) != strip(new)
}

/// The object without the times in managedFields: equal means a no-op write.
fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(list) = v
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for e in list {
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
        }
    }
    v
}

fn create(shared: &Shared, t: &Target, query: &HashMap<String, String>, body: &Bytes) -> Response {
    let mut obj = match parse_body(body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(r) = normalise(t, &mut obj) {
        return r;
    }
    let mut store = lock(shared);
    let name = match (
        store::meta_str(&obj, "name").filter(|n| !n.is_empty()),
        store::meta_str(&obj, "generateName").filter(|n| !n.is_empty()),
    ) {
        (Some(n), _) => n.to_string(),
        (None, Some(prefix)) => {
            let n = format!("{prefix}{}", suffix(store.uid_counter + 1));
            store::metadata_mut(&mut obj).insert("name".into(), json!(n));
            n
        }
        (None, None) => {
            return invalid(
                &t.resource,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            );
        }
    };
    let k = key(t, &name);
    if store.objects.contains_key(&k) {
        return status(
            409,
            "AlreadyExists",
            &format!("{} {name:?} already exists", t.resource.qualified()),
            details(&t.resource, &name),
        );
    }
    if let Err(r) = validate(&store, t, &obj) {
        return r;
    }
    finish_create(&mut store, t, k, obj, &manager(query), dry_run(query))
}

fn suffix(n: u64) -> String {
    // Five characters from the apiserver's alphabet (no vowels), derived from a counter.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = n.wrapping_mul(2_654_435_761) % 14_348_907;
    let mut out = String::new();
    for _ in 0..5 {
        out.push(ALPHABET[(n % 27) as usize] as char);
        n /= 27;
    }
    out
}

fn finish_create(
    store: &mut Store,
    t: &Target,
    k: Key,
    mut obj: Value,
    manager: &str,
    dry_run: bool,
) -> Response {
    let now = store::now();
    if manager != "unknown" || obj.pointer("/metadata/managedFields").is_none() {
        apply::record_update(None, &mut obj, manager, &now);
    }
    let uid = store.next_uid();
    let rv = if dry_run { store.rv } else { store.next_rv() };
    let meta = store::metadata_mut(&mut obj);
    meta.insert("uid".into(), json!(uid));
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    meta.insert("creationTimestamp".into(), json!(now));
    meta.insert("generation".into(), json!(1));
    if dry_run {
        return json_response(201, &obj);
    }
    let obj = Arc::new(obj);
    store.objects.insert(k.clone(), obj.clone());
    store.publish("ADDED", k, obj.clone());
    let _ = t;
    json_response(201, &*obj)
}

fn current_rv(obj: &Value) -> &str {
    store::meta_str(obj, "resourceVersion").unwrap_or("")
}

/// Writes `new` over `old` (same key): resourceVersion, generation, identity kept.
fn finish_update(
    store: &mut Store,
    t: &Target,
    k: Key,
    old: &Value,
    mut new: Value,
    dry_run: bool,
) -> Response {
    for field in ["uid", "creationTimestamp"] {
        if let Some(v) = old.get("metadata").and_then(|m| m.get(field)) {
            store::metadata_mut(&mut new).insert(field.into(), v.clone());
        }
    }
    let generation = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = if spec_changed(old, &new) {
        generation + 1
    } else {
        generation
    };
    store::metadata_mut(&mut new).insert("generation".into(), json!(generation));
    store::metadata_mut(&mut new).insert("resourceVersion".into(), json!(current_rv(old)));
    if comparable(&new) == comparable(old) {
        // A no-op write: no new resourceVersion, no event.
        return json_response(200, old);
    }
    if let Err(r) = validate(store, t, &new) {
        return r;
    }
    if dry_run {
        return json_response(200, &new);
    }
    let rv = store.next_rv();
    store::metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
    let new = Arc::new(new);
    store.objects.insert(k.clone(), new.clone());
    store.publish("MODIFIED", k, new.clone());
    json_response(200, &*new)
}

fn update(shared: &Shared, t: &Target, query: &HashMap<String, String>, body: &Bytes) -> Response {
    let name = t.name.clone().unwrap_or_default();
    let mut new = match parse_body(body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(r) = normalise(t, &mut new) {
        return r;
    }
    if store::meta_str(&new, "name").is_some_and(|n| n != name) {
        return bad_request("the name of the object does not match the name on the URL");
    }
    store::metadata_mut(&mut new).insert("name".into(), json!(name));
    let mut store = lock(shared);
    let k = key(t, &name);
    let Some(old) = store.objects.get(&k).cloned() else {
        return not_found(&t.resource, &name);
    };
    let sent_rv = current_rv(&new).to_string();
    if !sent_rv.is_empty() && sent_rv != current_rv(&old) {
        return conflict(&t.resource, &name);
    }
    if t.subresource.as_deref() == Some("status") {
        // Only status changes through the status subresource.
        let status = new.get("status").cloned();
        new = (*old).clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    apply::record_update(Some(&old), &mut new, &manager(query), &store::now());
    finish_update(&mut store, t, k, &old, new, dry_run(query))
}

fn patch(
    shared: &Shared,
    t: &Target,
    query: &HashMap<String, String>,
    content_type: &str,
    body: &Bytes,
) -> Response {
    let name = t.name.clone().unwrap_or_default();
    let mut store = lock(shared);
    let k = key(t, &name);
    let old = store.objects.get(&k).cloned();
    match content_type {
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
                return bad_request(
                    "PATCH /apply requires fieldManager (fieldManager is required for apply requests)",
                );
            };
            let mut applied = match parse_body(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            if applied.get("apiVersion").is_none() || applied.get("kind").is_none() {
                return bad_request("apiVersion and kind must be set in an apply request");
            }
            if let Err(r) = check_type(t, &applied) {
                return r;
            }
            if store::meta_str(&applied, "name").is_some_and(|n| n != name) {
                return bad_request("the name of the object does not match the name on the URL");
            }
            if let Err(r) = normalise(t, &mut applied) {
                return r;
            }
            store::metadata_mut(&mut applied).insert("name".into(), json!(name));
            let sent_rv = current_rv(&applied).to_string();
            if let Some(old) = &old
                && !sent_rv.is_empty()
                && sent_rv != current_rv(old)
            {
                return conflict(&t.resource, &name);
            }
            if let Some(m) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
            let force = query.get("force").is_some_and(|f| f == "true");
            let merged = match apply::apply(old.as_deref(), &applied, manager, force, &store::now())
            {
                Ok(m) => m,
                Err(conflicts) => return apply_conflict(&t.resource, &name, &conflicts),
            };
            match old {
                None => {
                    if let Err(r) = validate(&store, t, &merged) {
                        return r;
                    }
                    let mut created = merged;
                    // Ownership was recorded by the apply; keep it as is.
                    let now = store::now();
                    let uid = store.next_uid();
                    let dry = dry_run(query);
                    let rv = if dry { store.rv } else { store.next_rv() };
                    let meta = store::metadata_mut(&mut created);
                    meta.insert("uid".into(), json!(uid));
                    meta.insert("resourceVersion".into(), json!(rv.to_string()));
                    meta.insert("creationTimestamp".into(), json!(now));
                    meta.insert("generation".into(), json!(1));
                    if dry {
                        return json_response(201, &created);
                    }
                    let created = Arc::new(created);
                    store.objects.insert(k.clone(), created.clone());
                    store.publish("ADDED", k, created.clone());
                    json_response(201, &*created)
                }
                Some(old) => finish_update(&mut store, t, k, &old, merged, dry_run(query)),
            }
        }
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => {
            let Some(old) = old else {
                return not_found(&t.resource, &name);
            };
            let patch_body = match parse_body(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let mut new = (*old).clone();
            if content_type == "application/json-patch+json" {
                let ops: json_patch::Patch = match serde_json::from_value(patch_body) {
                    Ok(p) => p,
                    Err(e) => return bad_request(&format!("invalid JSON patch: {e}")),
                };
                if let Err(e) = json_patch::patch(&mut new, &ops) {
                    return status(
                        422,
                        "Invalid",
                        &format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                        json!({}),
                    );
                }
            } else {
                json_patch::merge(&mut new, &patch_body);
            }
            let sent_rv = current_rv(&new).to_string();
            if !sent_rv.is_empty() && sent_rv != current_rv(&old) {
                return conflict(&t.resource, &name);
            }
            if store::meta_str(&new, "name") != Some(name.as_str()) {
                return bad_request("the name of the object cannot be changed by a patch");
            }
            if let Err(r) = check_type(t, &new) {
                return r;
            }
            apply::record_update(Some(&old), &mut new, &manager(query), &store::now());
            finish_update(&mut store, t, k, &old, new, dry_run(query))
        }
        other => status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
            ),
            json!({}),
        ),
    }
}

fn apply_conflict(r: &Resource, name: &str, conflicts: &[apply::Conflict]) -> Response {
    let n = conflicts.len();
    let mut message = format!(
        "Apply failed with {n} conflict{}:",
        if n == 1 { "" } else { "s" }
    );
    let mut causes = Vec::new();
    for c in conflicts {
        let who = format!("conflict with {:?} using {}", c.manager, c.api_version);
        message.push_str(&format!(" {who}: {}", c.dotted()));
        causes.push(json!({"reason": "FieldManagerConflict", "message": who, "field": c.dotted()}));
    }
    let mut d = details(r, name);
    d["causes"] = json!(causes);
    status(409, "Conflict", &message, d)
}

fn delete(shared: &Shared, t: &Target, body: &Bytes) -> Response {
    let name = t.name.clone().unwrap_or_default();
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| json!({}))
    };
    let mut store = lock(shared);
    let k = key(t, &name);
    let Some(old) = store.objects.get(&k).cloned() else {
        return not_found(&t.resource, &name);
    };
    if let Some(rv) = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        && rv != current_rv(&old)
    {
        return conflict(&t.resource, &name);
    }
    if let Some(uid) = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        && Some(uid) != store::meta_str(&old, "uid")
    {
        return conflict(&t.resource, &name);
    }
    if options
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x == "All"))
    {
        return json_response(200, &*old);
    }
    store.objects.remove(&k);
    let rv = store.next_rv();
    let mut gone = (*old).clone();
    store::metadata_mut(&mut gone).insert("resourceVersion".into(), json!(rv.to_string()));
    let gone = Arc::new(gone);
    store.publish("DELETED", k, gone.clone());
    json_response(200, &*gone)
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(shared: &Shared, t: &Target, query: &HashMap<String, String>) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let initial_events = query.get("sendInitialEvents").is_some_and(|b| b == "true");
    let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
    let resource = t.resource.clone();
    let namespace = t.namespace.clone();
    let matches = {
        let (resource, namespace) = (resource.clone(), namespace.clone());
        move |e: &Event| {
            e.key.group == resource.group
                && e.key.version == resource.version
                && e.key.resource == resource.plural
                && namespace.as_deref().is_none_or(|ns| e.key.namespace == ns)
                && labels.matches_labels(&e.object)
                && fields.matches_fields(&e.object)
        }
    };
    let store = lock(shared);
    let receiver = store.events.subscribe();
    let mut first: Vec<Bytes> = Vec::new();
    let start_rv: u64;
    if rv_param.is_empty() || rv_param == "0" || initial_events {
        // Synthetic ADDED events for the current state, then changes.
        start_rv = store.rv;
        for (k, obj) in store.range(&resource, namespace.as_deref()) {
            let e = Event {
                rv: start_rv,
                kind: "ADDED",
                key: k.clone(),
                object: obj.clone(),
            };
            if matches(&e) {
                first.push(event_line("ADDED", obj));
            }
        }
        if initial_events {
            first.push(event_line(
                "BOOKMARK",
                &json!({
                    "kind": resource.kind,
                    "apiVersion": resource.api_version(),
                    "metadata": {
                        "resourceVersion": start_rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }),
            ));
        }
    } else {
        let Ok(rv) = rv_param.parse::<u64>() else {
            return bad_request(&format!("invalid resource version: {rv_param:?}"));
        };
        if rv < store.history_floor {
            // As the real server does: 200, then one ERROR event with a 410 Status.
            let error = json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": format!("too old resource version: {rv} ({})", store.history_floor + 1),
                "reason": "Expired",
                "code": 410,
            });
            let resp = Response::new(Body::from(event_line("ERROR", &error)));
            return with_json(resp);
        }
        start_rv = rv;
        for e in store.history.iter().filter(|e| e.rv > rv) {
            if matches(e) {
                first.push(event_line(e.kind, &e.object));
            }
        }
    }
    let last_rv = store
        .history
        .back()
        .map_or(start_rv, |e| e.rv.max(start_rv));
    drop(store);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let shared = shared.clone();
    let stream = futures::stream::unfold(
        (
            first.into_iter(),
            receiver,
            last_rv,
            matches,
            false,
            resource,
        ),
        move |(mut first, mut rx, mut last, matches, done, resource)| {
            let shared = shared.clone();
            async move {
                if let Some(b) = first.next() {
                    return Some((
                        Ok::<Bytes, Infallible>(b),
                        (first, rx, last, matches, done, resource),
                    ));
                }
                if done {
                    return None;
                }
                loop {
                    let next = tokio::time::timeout_at(deadline, rx.recv()).await;
                    match next {
                        Ok(Ok(e)) => {
                            if e.rv <= last {
                                continue;
                            }
                            last = e.rv;
                            if lock(&shared).down {
                                return None;
                            }
                            if matches(&e) {
                                let b = event_line(e.kind, &e.object);
                                return Some((Ok(b), (first, rx, last, matches, done, resource)));
                            }
                        }
                        // Lagged or closed: end the watch; the client starts a new one.
                        Ok(Err(_)) => return None,
                        Err(_) => {
                            if !bookmarks {
                                return None;
                            }
                            let rv = lock(&shared).rv;
                            let b = event_line(
                                "BOOKMARK",
                                &json!({
                                    "kind": resource.kind,
                                    "apiVersion": resource.api_version(),
                                    "metadata": {"resourceVersion": rv.to_string()},
                                }),
                            );
                            return Some((Ok(b), (first, rx, last, matches, true, resource)));
                        }
                    }
                }
            }
        },
    );
    with_json(Response::new(Body::from_stream(stream)))
}

fn with_json(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.into_response()
}
