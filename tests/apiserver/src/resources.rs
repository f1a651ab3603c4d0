//! The in-memory object store behind get, list, create, update, patch and delete.
//!
//! Objects are kept as JSON, keyed by resource, namespace and name. Writes bump one
//! resource version for the whole store, as etcd's revision does. The answers follow the
//! API server: `pods "nope" not found`, `... already exists`, a create in a missing
//! namespace is `namespaces "x" not found`, lists carry no per-item kind/apiVersion.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::clock;
use crate::discovery::{self, ResourceType};
use crate::identity::stable_uid;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::Status;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    group: &'static str,
    resource: &'static str,
    namespace: String,
    name: String,
}

/// The cluster's objects.
#[derive(Clone, Debug, Default)]
pub struct ObjectStore {
    objects: BTreeMap<ObjectKey, Value>,
    revision: u64,
}

impl ObjectStore {
    /// The current resource version, as lists report it.
    pub fn resource_version(&self) -> String {
        self.revision.to_string()
    }

    /// Every object, for rebuilding the RBAC authorizer.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.objects.values()
    }

    /// Adds or replaces an object from a manifest (its `apiVersion` and `kind` pick the
    /// resource); `Ok(false)` for a kind the stand-in does not serve.
    pub fn put_manifest_object(
        &mut self,
        mut object: Value,
        created_at: i64,
    ) -> Result<bool, String> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(resource) = discovery::for_kind(api_version, kind) else {
            return Ok(false);
        };
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| format!("{kind} without metadata.name"))?
            .to_string();
        let namespace = if resource.namespaced {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|namespace| !namespace.is_empty())
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        self.revision += 1;
        complete_metadata(
            &mut object,
            resource,
            &namespace,
            &name,
            created_at,
            self.revision,
        );
        self.objects
            .insert(key(resource, &namespace, &name), object);
        Ok(true)
    }

    /// Replaces a ClusterRole's rules (for aggregated roles), leaving its resource version.
    pub fn set_cluster_role_rules(&mut self, name: &str, rules: &[crate::rbac::PolicyRule]) {
        let Some(resource) = discovery::find(crate::rbac::RBAC_GROUP, "v1", "clusterroles") else {
            return;
        };
        if let Some(object) = self
            .objects
            .get_mut(&key(resource, "", name))
            .and_then(Value::as_object_mut)
        {
            object.insert(
                "rules".into(),
                serde_json::to_value(rules).unwrap_or(Value::Null),
            );
        }
    }

    /// Whether the namespace exists.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.objects.contains_key(&ObjectKey {
            group: "",
            resource: "namespaces",
            namespace: String::new(),
            name: namespace.to_string(),
        })
    }

    pub fn get(&self, resource: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&key(resource, scoped(resource, namespace), name))
    }

    /// The objects of a resource, in one namespace or (empty `namespace`) all, that match
    /// the selectors, ordered by namespace and name.
    pub fn list(
        &self,
        resource: &ResourceType,
        namespace: &str,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|(candidate, _)| {
                candidate.group == resource.group
                    && candidate.resource == resource.name
                    && (namespace.is_empty()
                        || !resource.namespaced
                        || candidate.namespace == namespace)
            })
            .map(|(_, object)| object)
            .filter(|object| labels.matches(object) && fields.matches(object))
            .collect()
    }

    /// Creates an object posted to a collection.
    pub fn create(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, Status> {
        check_kind(resource, &mut object)?;
        let mut name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            let prefix = object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if prefix.is_empty() {
                return Err(Status::bad_request(format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    resource.kind
                )));
            }
            name = format!(
                "{prefix}{}",
                &stable_uid(&format!("{prefix}{}", self.revision))[..5]
            );
        }
        check_namespace(resource, namespace, &object)?;
        let namespace = scoped(resource, namespace);
        if resource.namespaced && !self.namespace_exists(namespace) {
            return Err(Status::not_found("", "namespaces", namespace));
        }
        let object_key = key(resource, namespace, &name);
        if self.objects.contains_key(&object_key) {
            return Err(Status::already_exists(resource.group, resource.name, &name));
        }
        self.revision += 1;
        complete_metadata(
            &mut object,
            resource,
            namespace,
            &name,
            clock::now_seconds(),
            self.revision,
        );
        if resource.name == "pods" {
            crate::seed::start_pod(&mut object, self.revision);
        }
        if resource.name == "namespaces" {
            crate::seed::activate_namespace(&mut object, &name);
        }
        self.objects.insert(object_key, object.clone());
        Ok(object)
    }

    /// Replaces an existing object (PUT).
    pub fn update(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Result<Value, Status> {
        check_kind(resource, &mut object)?;
        check_namespace(resource, namespace, &object)?;
        let body_name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if body_name != name {
            return Err(Status::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let namespace = scoped(resource, namespace);
        let object_key = key(resource, namespace, name);
        let Some(existing) = self.objects.get(&object_key) else {
            return Err(Status::not_found(resource.group, resource.name, name));
        };
        let created = existing
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(clock::parse_rfc3339)
            .unwrap_or_else(clock::now_seconds);
        self.revision += 1;
        complete_metadata(
            &mut object,
            resource,
            namespace,
            name,
            created,
            self.revision,
        );
        self.objects.insert(object_key, object.clone());
        Ok(object)
    }

    /// Applies a JSON merge patch (also used for strategic merge patches, which agree on
    /// the maps and scalars kubectl's label, annotate and scale commands change).
    pub fn patch(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, Status> {
        let namespace = scoped(resource, namespace);
        let Some(existing) = self.objects.get(&key(resource, namespace, name)) else {
            return Err(Status::not_found(resource.group, resource.name, name));
        };
        let mut patched = existing.clone();
        merge_patch(&mut patched, patch);
        self.update(resource, namespace, name, patched)
    }

    /// Deletes one object, answering what the API server answers: the object.
    pub fn delete(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, Status> {
        let namespace = scoped(resource, namespace);
        let Some(removed) = self.objects.remove(&key(resource, namespace, name)) else {
            return Err(Status::not_found(resource.group, resource.name, name));
        };
        self.revision += 1;
        if resource.name == "namespaces" {
            // The namespace controller would empty it; do it at once.
            self.objects
                .retain(|candidate, _| candidate.namespace != name);
        }
        Ok(removed)
    }

    /// Deletes every matching object of a collection; answers the list of them.
    pub fn delete_collection(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Value {
        let doomed: Vec<(String, String)> = self
            .list(resource, namespace, labels, fields)
            .into_iter()
            .map(|object| {
                (
                    object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        let mut removed = Vec::new();
        for (object_namespace, name) in doomed {
            if let Ok(object) = self.delete(resource, &object_namespace, &name) {
                removed.push(object);
            }
        }
        list_document(
            resource,
            &removed.iter().collect::<Vec<_>>(),
            &self.resource_version(),
        )
    }
}

/// A `<Kind>List` document.
pub fn list_document(resource: &ResourceType, items: &[&Value], resource_version: &str) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut item = (*item).clone();
            if let Some(object) = item.as_object_mut() {
                object.remove("kind");
                object.remove("apiVersion");
            }
            item
        })
        .collect();
    json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    })
}

fn key(resource: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: resource.group,
        resource: resource.name,
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// Cluster-scoped objects have no namespace, whatever the path said.
fn scoped<'a>(resource: &ResourceType, namespace: &'a str) -> &'a str {
    if resource.namespaced {
        namespace
    } else {
        ""
    }
}

fn check_kind(resource: &ResourceType, object: &mut Value) -> Result<(), Status> {
    let Some(fields) = object.as_object_mut() else {
        return Err(Status::bad_request(
            "the body of the request is not a JSON object",
        ));
    };
    let kind = fields
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or(resource.kind)
        .to_string();
    let api_version = fields
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| resource.api_version());
    if kind != resource.kind || api_version != resource.api_version() {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    fields.insert("kind".into(), json!(kind));
    fields.insert("apiVersion".into(), json!(api_version));
    Ok(())
}

fn check_namespace(resource: &ResourceType, namespace: &str, object: &Value) -> Result<(), Status> {
    let body_namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if resource.namespaced && !body_namespace.is_empty() && body_namespace != namespace {
        return Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Fills the metadata the API server owns: name, namespace, uid, resourceVersion,
/// creationTimestamp (kept when the object brings one).
fn complete_metadata(
    object: &mut Value,
    resource: &ResourceType,
    namespace: &str,
    name: &str,
    created: i64,
    revision: u64,
) {
    let Some(fields) = object.as_object_mut() else {
        return;
    };
    fields.insert("kind".into(), json!(resource.kind));
    fields.insert("apiVersion".into(), json!(resource.api_version()));
    let metadata = fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.insert("name".into(), json!(name));
        if resource.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.entry("uid").or_insert_with(|| {
            json!(stable_uid(&format!(
                "{}/{}/{namespace}/{name}",
                resource.group, resource.name
            )))
        });
        metadata.insert("resourceVersion".into(), json!(revision.to_string()));
        let has_timestamp = metadata
            .get("creationTimestamp")
            .and_then(Value::as_str)
            .and_then(clock::parse_rfc3339)
            .is_some();
        if !has_timestamp {
            metadata.insert("creationTimestamp".into(), json!(clock::rfc3339(created)));
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(target_fields) = target.as_object_mut() {
        for (name, value) in patch_fields {
            if value.is_null() {
                target_fields.remove(name);
            } else {
                merge_patch(
                    target_fields.entry(name.clone()).or_insert(Value::Null),
                    value,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> &'static ResourceType {
        discovery::find("", "v1", "pods").unwrap()
    }

    fn store_with_default_namespace() -> ObjectStore {
        let mut store = ObjectStore::default();
        store
            .put_manifest_object(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
                0,
            )
            .unwrap();
        store
    }

    #[test]
    fn create_get_patch_delete() {
        let mut store = store_with_default_namespace();
        let created = store
            .create(pods(), "default", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}))
            .unwrap();
        assert_eq!(created["status"]["phase"], "Running");
        assert_eq!(
            store
                .create(pods(), "default", json!({"metadata": {"name": "p"}}))
                .unwrap_err()
                .message,
            "pods \"p\" already exists"
        );
        assert_eq!(
            store
                .create(pods(), "elsewhere", json!({"metadata": {"name": "p"}}))
                .unwrap_err()
                .message,
            "namespaces \"elsewhere\" not found"
        );
        let patched = store
            .patch(
                pods(),
                "default",
                "p",
                &json!({"metadata": {"labels": {"a": "b"}}}),
            )
            .unwrap();
        assert_eq!(patched["metadata"]["labels"]["a"], "b");
        assert_eq!(patched["metadata"]["uid"], created["metadata"]["uid"]);
        let selector = LabelSelector::parse("a=b").unwrap();
        assert_eq!(
            store
                .list(pods(), "default", &selector, &FieldSelector::default())
                .len(),
            1
        );
        store.delete(pods(), "default", "p").unwrap();
        assert_eq!(store.get(pods(), "default", "p"), None);
        assert_eq!(
            store.delete(pods(), "default", "p").unwrap_err().message,
            "pods \"p\" not found"
        );
    }

    #[test]
    fn merge_patch_removes_with_null() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(&mut target, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(target, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }
}
