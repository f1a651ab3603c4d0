//! Server-side printing: `meta.k8s.io/v1` Tables, which kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` and prints as columns.
//!
//! Columns follow the API server's printers (pods: Name, Ready, Status, Restarts, Age,
//! and IP, Node, Nominated Node, Readiness Gates at priority 1 for `-o wide`). Each row
//! carries the object's metadata as a `PartialObjectMetadata` (the default
//! `includeObject=Metadata`), the whole object for `Object`, nothing for `None`.

use serde_json::{json, Value};

use crate::clock;
use crate::discovery::ResourceType;

/// Whether an `Accept` header asks for a Table (`as=Table;g=meta.k8s.io`, v1 or v1beta1).
pub fn accepts_table(accept: &str) -> bool {
    accept.split(',').any(|media_type| {
        let parameters: Vec<String> = media_type
            .split(';')
            .skip(1)
            .map(|parameter| parameter.trim().to_ascii_lowercase().replace(' ', ""))
            .collect();
        parameters.iter().any(|p| p == "as=table")
            && parameters.iter().any(|p| p == "g=meta.k8s.io")
            && parameters.iter().any(|p| p == "v=v1" || p == "v=v1beta1")
    })
}

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const fn column(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, description: &'static str) -> Column {
    Column {
        priority: 1,
        ..column(name, description)
    }
}

const NAME: Column = Column {
    format: "name",
    ..column(
        "Name",
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.",
    )
};
const AGE: Column = column(
    "Age",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

fn columns(resource: &ResourceType) -> Vec<Column> {
    match resource.name {
        "pods" => vec![
            NAME,
            column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            column("Status", "The aggregate status of the containers in this pod."),
            column("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            wide("IP", "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            wide("Node", "NodeName indicates in which node this pod is scheduled."),
            wide("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node."),
            wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness."),
        ],
        "namespaces" => vec![NAME, column("Status", "The status of the namespace"), AGE],
        "nodes" => vec![
            NAME,
            column("Status", "The status of the node"),
            column("Roles", "The roles of the node"),
            AGE,
            column("Version", "Kubelet Version reported by the node."),
            wide("Internal-IP", "List of addresses reachable to the node."),
            wide("External-IP", "List of addresses reachable to the node."),
            wide("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            wide("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ],
        "secrets" => vec![
            NAME,
            column("Type", "The type of secret"),
            column("Data", "The number of entries in the secret"),
            AGE,
        ],
        "configmaps" => vec![NAME, column("Data", "The number of entries in the configmap"), AGE],
        "serviceaccounts" => vec![NAME, column("Secrets", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE],
        "services" => vec![
            NAME,
            column("Type", "type determines how the Service is exposed."),
            column("Cluster-IP", "clusterIP is the IP address of the service."),
            column("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            column("Port(s)", "The list of ports that are exposed by this service."),
            AGE,
            wide("Selector", "Route service traffic to pods with label keys and values matching this selector."),
        ],
        "clusterrolebindings" | "rolebindings" => vec![
            NAME,
            column("Role", "Role is the role that this binding refers to."),
            AGE,
            wide("Users", "Users in the binding"),
            wide("Groups", "Groups in the binding"),
            wide("ServiceAccounts", "ServiceAccounts in the binding"),
        ],
        _ => vec![NAME, column("Created At", "CreationTimestamp is a timestamp representing the server time when this object was created.")],
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn or_none(value: String) -> String {
    if value.is_empty() {
        "<none>".to_string()
    } else {
        value
    }
}

fn age(object: &Value, now: i64) -> String {
    clock::parse_rfc3339(text(object, "/metadata/creationTimestamp"))
        .map(|created| clock::human_duration(now - created))
        .unwrap_or_else(|| "<unknown>".to_string())
}

fn count(object: &Value, pointer: &str) -> usize {
    match object.pointer(pointer) {
        Some(Value::Object(map)) => map.len(),
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    }
}

fn cells(resource: &ResourceType, object: &Value, now: i64) -> Vec<Value> {
    let name = json!(text(object, "/metadata/name"));
    match resource.name {
        "pods" => {
            let containers = count(object, "/spec/containers");
            let statuses: Vec<Value> = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = statuses
                .iter()
                .filter(|status| status["ready"] == json!(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|status| status["restartCount"].as_i64())
                .sum();
            let phase = text(object, "/status/phase");
            let reason = text(object, "/status/reason");
            let status = if !reason.is_empty() {
                reason
            } else if object.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating"
            } else if phase.is_empty() {
                "Pending"
            } else {
                phase
            };
            vec![
                name,
                json!(format!("{ready}/{containers}")),
                json!(status),
                json!(restarts.to_string()),
                json!(age(object, now)),
                json!(or_none(text(object, "/status/podIP").to_string())),
                json!(or_none(text(object, "/spec/nodeName").to_string())),
                json!(or_none(
                    text(object, "/status/nominatedNodeName").to_string()
                )),
                json!("<none>"),
            ]
        }
        "namespaces" => vec![
            name,
            json!(text(object, "/status/phase")),
            json!(age(object, now)),
        ],
        "nodes" => {
            let ready = object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|conditions| {
                    conditions
                        .iter()
                        .find(|condition| condition["type"] == "Ready")
                })
                .map(|condition| condition["status"] == "True")
                .unwrap_or(false);
            let roles: Vec<&str> = object
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .keys()
                        .filter_map(|key| key.strip_prefix("node-role.kubernetes.io/"))
                        .collect()
                })
                .unwrap_or_default();
            let address = |kind: &str| {
                object
                    .pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|addresses| addresses.iter().find(|address| address["type"] == kind))
                    .and_then(|address| address["address"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!(or_none(roles.join(","))),
                json!(age(object, now)),
                json!(text(object, "/status/nodeInfo/kubeletVersion")),
                json!(or_none(address("InternalIP"))),
                json!(or_none(address("ExternalIP"))),
                json!(text(object, "/status/nodeInfo/osImage")),
                json!(text(object, "/status/nodeInfo/kernelVersion")),
                json!(text(object, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        "secrets" => {
            let kind = match text(object, "/type") {
                "" => "Opaque",
                other => other,
            };
            vec![
                name,
                json!(kind),
                json!(count(object, "/data") + count(object, "/stringData")),
                json!(age(object, now)),
            ]
        }
        "configmaps" => vec![
            name,
            json!(count(object, "/data") + count(object, "/binaryData")),
            json!(age(object, now)),
        ],
        "serviceaccounts" => vec![
            name,
            json!(count(object, "/secrets")),
            json!(age(object, now)),
        ],
        "services" => {
            let ports: Vec<String> = object
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|port| {
                            format!(
                                "{}/{}",
                                port["port"].as_i64().unwrap_or(0),
                                port["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let selector: Vec<String> = object
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            let service_type = match text(object, "/spec/type") {
                "" => "ClusterIP",
                other => other,
            };
            vec![
                name,
                json!(service_type),
                json!(or_none(text(object, "/spec/clusterIP").to_string())),
                json!("<none>"),
                json!(or_none(ports.join(","))),
                json!(age(object, now)),
                json!(or_none(selector.join(","))),
            ]
        }
        "clusterrolebindings" | "rolebindings" => {
            let subjects: Vec<Value> = object
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let of_kind = |kind: &str| -> String {
                subjects
                    .iter()
                    .filter(|subject| subject["kind"] == kind)
                    .map(|subject| {
                        let name = subject["name"].as_str().unwrap_or("");
                        match subject["namespace"].as_str() {
                            Some(namespace) if kind == "ServiceAccount" => {
                                format!("{namespace}/{name}")
                            }
                            _ => name.to_string(),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    text(object, "/roleRef/kind"),
                    text(object, "/roleRef/name")
                )),
                json!(age(object, now)),
                json!(of_kind("User")),
                json!(of_kind("Group")),
                json!(of_kind("ServiceAccount")),
            ]
        }
        _ => vec![name, json!(text(object, "/metadata/creationTimestamp"))],
    }
}

/// A Table of `objects` of `resource`.
pub fn table(
    resource: &ResourceType,
    objects: &[&Value],
    resource_version: &str,
    include_object: &str,
    now: i64,
) -> Value {
    let column_definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|column| {
            json!({"name": column.name, "type": column.kind, "format": column.format,
                   "description": column.description, "priority": column.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({"cells": cells(resource, object, now)});
            let embedded = match include_object {
                "None" => None,
                "Object" => Some((*object).clone()),
                _ => Some(json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or(Value::Null),
                })),
            };
            if let (Some(embedded), Some(fields)) = (embedded, row.as_object_mut()) {
                fields.insert("object".into(), embedded);
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_header_asks_for_a_table() {
        assert!(accepts_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!accepts_table("application/json, */*"));
    }

    #[test]
    fn pod_row() {
        let pods = crate::discovery::find("", "v1", "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p", "creationTimestamp": clock::rfc3339(1000)},
                             "spec": {"containers": [{"name": "c"}]}});
        crate::seed::start_pod(&mut pod, 1);
        let table = table(pods, &[&pod], "7", "Metadata", 1300);
        assert_eq!(
            table["rows"][0]["cells"],
            json!([
                "p",
                "1/1",
                "Running",
                "0",
                "5m",
                "10.244.0.11",
                "standin-node",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["columnDefinitions"][4]["name"], "Age");
    }
}
