//! The API's shape: the resource catalog and the discovery documents (`/version`, `/api`,
//! `/apis`, `/api/v1`, `/apis/GROUP[/VERSION]`).
//!
//! Only the legacy discovery format is served. kubectl 1.32 first asks `/api` and `/apis`
//! for the aggregated form (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;
//! as=APIGroupDiscoveryList,...,application/json`); an `application/json` answer without
//! those parameters makes it fall back to fetching each group version, which works.

use serde_json::{json, Value};

/// One resource (or subresource, `pods/exec`) the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    /// The plural, with `/subresource` for a subresource.
    pub name: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
}

impl ResourceType {
    /// `v1` or `GROUP/VERSION`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn is_subresource(&self) -> bool {
        self.name.contains('/')
    }

    /// Kept in the object store (as opposed to reviews, which are computed).
    pub fn is_stored(&self) -> bool {
        !self.is_subresource() && self.verbs.contains(&"get")
    }
}

const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const READ_ONLY: &[&str] = &["get", "list", "watch"];
const CREATE_ONLY: &[&str] = &["create"];

const fn resource(
    group: &'static str,
    name: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        name,
        singular,
        kind,
        namespaced,
        verbs,
        short_names,
        categories: &[],
    }
}

/// Everything served, in discovery order.
pub const RESOURCES: &[ResourceType] = &[
    resource(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        READ_WRITE,
        &["cm"],
    ),
    resource(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        READ_WRITE,
        &["ns"],
    ),
    resource("", "nodes", "node", "Node", false, READ_ONLY, &["no"]),
    ResourceType {
        categories: &["all"],
        ..resource("", "pods", "pod", "Pod", true, READ_WRITE, &["po"])
    },
    resource(
        "",
        "pods/exec",
        "",
        "PodExecOptions",
        true,
        &["create", "get"],
        &[],
    ),
    resource("", "pods/log", "", "Pod", true, &["get"], &[]),
    resource("", "pods/status", "", "Pod", true, &["get"], &[]),
    resource("", "secrets", "secret", "Secret", true, READ_WRITE, &[]),
    resource(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        READ_WRITE,
        &["sa"],
    ),
    ResourceType {
        categories: &["all"],
        ..resource(
            "",
            "services",
            "service",
            "Service",
            true,
            READ_WRITE,
            &["svc"],
        )
    },
    resource(
        "authentication.k8s.io",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        false,
        CREATE_ONLY,
        &[],
    ),
    resource(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
        CREATE_ONLY,
        &[],
    ),
    resource(
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        false,
        CREATE_ONLY,
        &[],
    ),
    resource(
        "authorization.k8s.io",
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        false,
        CREATE_ONLY,
        &[],
    ),
    resource(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        READ_ONLY,
        &[],
    ),
    resource(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        READ_ONLY,
        &[],
    ),
    resource(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        READ_ONLY,
        &[],
    ),
    resource(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        READ_ONLY,
        &[],
    ),
];

/// The API groups (other than the legacy core group), in `/apis` order.
pub const GROUPS: &[&str] = &[
    "authentication.k8s.io",
    "authorization.k8s.io",
    "rbac.authorization.k8s.io",
];

/// The served resource `group/version/name` (`name` may be `pods/exec`).
pub fn find(group: &str, version: &str, name: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|candidate| {
        candidate.group == group && candidate.version == version && candidate.name == name
    })
}

/// The stored resource for an object's `apiVersion` and `kind`.
pub fn for_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|candidate| {
        !candidate.is_subresource()
            && candidate.kind == kind
            && candidate.api_version() == api_version
    })
}

/// The version the stand-in reports.
pub const GIT_VERSION: &str = "v1.32.4-standin";

/// `/version` (`version.Info`).
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api` (`APIVersions`).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_document(group: &str) -> Value {
    let version = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [version.clone()], "preferredVersion": version})
}

/// `/apis` (`APIGroupList`).
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|group| group_document(group)).collect::<Vec<_>>()
    })
}

/// `/apis/GROUP` (`APIGroup`), if served.
pub fn api_group(group: &str) -> Option<Value> {
    if !GROUPS.contains(&group) {
        return None;
    }
    let mut document = group_document(group);
    if let Some(object) = document.as_object_mut() {
        object.insert("kind".into(), json!("APIGroup"));
        object.insert("apiVersion".into(), json!("v1"));
    }
    Some(document)
}

/// `/api/v1` or `/apis/GROUP/v1` (`APIResourceList`), if served. The core list has no
/// `apiVersion`, the group lists do, as the API server writes them.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|candidate| candidate.group == group)
        .map(|candidate| {
            let mut entry = json!({
                "name": candidate.name,
                "singularName": candidate.singular,
                "namespaced": candidate.namespaced,
                "kind": candidate.kind,
                "verbs": candidate.verbs,
            });
            if let Some(object) = entry.as_object_mut() {
                if !candidate.short_names.is_empty() {
                    object.insert("shortNames".into(), json!(candidate.short_names));
                }
                if !candidate.categories.is_empty() {
                    object.insert("categories".into(), json!(candidate.categories));
                }
            }
            entry
        })
        .collect();
    let mut list = json!({"kind": "APIResourceList"});
    if let Some(object) = list.as_object_mut() {
        if group.is_empty() {
            object.insert("groupVersion".into(), json!("v1"));
        } else {
            object.insert("apiVersion".into(), json!("v1"));
            object.insert("groupVersion".into(), json!(format!("{group}/{version}")));
        }
        object.insert("resources".into(), Value::Array(resources));
    }
    Some(list)
}
