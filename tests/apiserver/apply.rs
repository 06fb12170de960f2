//! Server-side apply, simplified: field ownership per manager kept in `metadata.managedFields`
//! (fieldsV1, `f:` keys), conflicts with other managers (409 unless `force`), removal of the
//! fields a manager stops applying, and a deep merge of maps.
//!
//! Simplification of the real structured-merge-diff: every list is atomic (replaced whole and
//! owned as one field, like `x-kubernetes-list-type: atomic`); there are no associative lists
//! (`k:` keys) or sets. Updates (create, replace, patches) take ownership of the leaves they
//! change, so a later apply of a field someone else changed conflicts, as in the real server.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field path: map keys from the object's root.
pub type Path = Vec<String>;

/// Fields that belong to the server or identify the object: never owned.
fn unowned(path: &[String]) -> bool {
    match path {
        [top] => top == "apiVersion" || top == "kind",
        [meta, field, ..] if meta == "metadata" => matches!(
            field.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "selfLink"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
        ),
        _ => false,
    }
}

/// Every owned leaf of `v`: scalars, lists and empty maps.
pub fn leaves(v: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    collect(v, &mut Vec::new(), &mut out);
    out
}

fn collect(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.push(k.clone());
                if !unowned(at) {
                    collect(child, at, out);
                }
                at.pop();
            }
        }
        _ => {
            if !at.is_empty() {
                out.insert(at.clone());
            }
        }
    }
}

/// The value at `path`, if any.
pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Leaves whose value differs between `old` and `new` (present in `new`).
pub fn changed(old: Option<&Value>, new: &Value) -> BTreeSet<Path> {
    leaves(new)
        .into_iter()
        .filter(|p| old.and_then(|o| get(o, p)) != get(new, p))
        .collect()
}

/// Maps deep-merged, everything else replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// One managedFields entry, parsed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: BTreeSet<Path>,
}

/// Reads `metadata.managedFields`.
pub fn entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |f: &str| e.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let mut fields = BTreeSet::new();
            if let Some(f) = e.get("fieldsV1") {
                parse_fields(f, &mut Vec::new(), &mut fields);
            }
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                fields,
            }
        })
        .collect()
}

fn parse_fields(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(m) = v.as_object() else {
        return;
    };
    let named: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
    let other = m.keys().any(|k| !k.starts_with("f:") && k != ".");
    if (named.is_empty() || other || m.contains_key(".")) && !at.is_empty() {
        out.insert(at.clone());
    }
    for (k, child) in named {
        at.push(k[2..].to_string());
        parse_fields(child, at, out);
        at.pop();
    }
}

/// fieldsV1 for a set of paths.
pub fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            let entry = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            cur = match entry.as_object_mut() {
                Some(m) => m,
                None => unreachable!("made an object above"),
            };
        }
    }
    Value::Object(root)
}

fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(&e.fields),
            })
        })
        .collect();
    let meta = super::store::metadata_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub path: Path,
}

impl Conflict {
    /// `.data.key`, as the apiserver prints field paths.
    pub fn dotted(&self) -> String {
        self.path.iter().map(|k| format!(".{k}")).collect()
    }
}

/// Applies `applied` as `manager` onto `existing` (or a new object). `Err` lists conflicts.
pub fn apply(
    existing: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut owners = existing.map(entries).unwrap_or_default();
    let wanted = leaves(applied);
    let mut conflicts = Vec::new();
    for e in owners.iter_mut().filter(|e| e.manager != manager) {
        let mut lost = Vec::new();
        for owned in &e.fields {
            for p in wanted.iter().filter(|p| overlaps(p, owned)) {
                if get(applied, p) != existing.and_then(|x| get(x, p)) {
                    if force {
                        lost.push(owned.clone());
                    } else {
                        conflicts.push(Conflict {
                            manager: e.manager.clone(),
                            api_version: e.api_version.clone(),
                            path: owned.clone(),
                        });
                    }
                    break;
                }
            }
        }
        for p in lost {
            e.fields.remove(&p);
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.path.cmp(&b.path));
        conflicts.dedup();
        return Err(conflicts);
    }
    let mut obj = existing.cloned().unwrap_or_else(|| json!({}));
    // Fields this manager applied before and no longer applies go, unless someone else owns them.
    let before: BTreeSet<Path> = owners
        .iter()
        .filter(|e| e.manager == manager && e.operation == "Apply")
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    for p in before.difference(&wanted) {
        let shared = owners
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.fields.contains(p));
        if !shared {
            remove(&mut obj, p);
        }
    }
    merge(&mut obj, applied);
    owners.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    owners.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version,
        time: now.to_string(),
        fields: wanted,
    });
    write_entries(&mut obj, &owners);
    Ok(obj)
}

/// After a create, replace or patch: `manager` owns what it changed; others lose those fields.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // A replace may send managedFields back as they were; ownership is the server's business.
    let mut owners = old.map(entries).unwrap_or_default();
    let mut stripped = new.clone();
    remove(&mut stripped, &["metadata".into(), "managedFields".into()]);
    let changed = changed(old, &stripped);
    let present = leaves(&stripped);
    for e in owners.iter_mut() {
        e.fields
            .retain(|p| !changed.contains(p) && present.iter().any(|q| overlaps(p, q)));
    }
    if !changed.is_empty() {
        let mut mine: BTreeSet<Path> = owners
            .iter()
            .filter(|e| e.manager == manager && e.operation == "Update")
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        mine.extend(changed);
        owners.retain(|e| !(e.manager == manager && e.operation == "Update"));
        owners.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: now.to_string(),
            fields: mine,
        });
    }
    let mut by_key: BTreeMap<(String, String), Entry> = BTreeMap::new();
    for e in owners {
        by_key
            .entry((e.manager.clone(), e.operation.clone()))
            .and_modify(|x| x.fields.extend(e.fields.iter().cloned()))
            .or_insert(e);
    }
    let owners: Vec<Entry> = by_key.into_values().collect();
    write_entries(new, &owners);
}
