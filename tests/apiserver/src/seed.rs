//! The cluster a fresh stand-in starts with: the usual namespaces, a node, the
//! `kubernetes` service, a `default` service account and `kube-root-ca.crt` in every
//! namespace, the configured service account, and the seeded pods (running nginx).

use serde_json::{json, Value};

use crate::resources::ObjectStore;

/// What to seed beyond the fixed objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// The namespace of the seeded pods.
    pub namespace: String,
    /// Pod names, each a running single-container nginx pod.
    pub pods: Vec<String>,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            namespace: "default".to_string(),
            pods: vec!["nginx-1".to_string(), "nginx-2".to_string()],
        }
    }
}

impl Seed {
    /// Only the fixed objects: no pods.
    pub fn empty() -> Self {
        Seed {
            namespace: "default".to_string(),
            pods: Vec::new(),
        }
    }
}

/// The node every pod runs on.
pub const NODE_NAME: &str = "standin-node";

/// Seeded objects are this old when the server starts, so ages read like a real cluster's.
const SEED_AGE_SECONDS: i64 = 600;

/// Fills `store` with the fixed objects, `seed`'s pods and the service account.
pub fn populate(
    store: &mut ObjectStore,
    seed: &Seed,
    service_account: (&str, &str),
    ca_pem: &str,
    started_at: i64,
) -> Result<(), String> {
    let created = started_at - SEED_AGE_SECONDS;
    let mut namespaces = vec![
        "default".to_string(),
        "kube-node-lease".to_string(),
        "kube-public".to_string(),
        "kube-system".to_string(),
    ];
    for extra in [service_account.0, seed.namespace.as_str()] {
        if !namespaces.iter().any(|namespace| namespace == extra) {
            namespaces.push(extra.to_string());
        }
    }
    for namespace in &namespaces {
        ensure_namespace(store, namespace, created, ca_pem)?;
    }
    store.put_manifest_object(node(), created)?;
    store.put_manifest_object(
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}
        }),
        created,
    )?;
    store.put_manifest_object(
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": service_account.1, "namespace": service_account.0}}),
        created,
    )?;
    for (index, name) in seed.pods.iter().enumerate() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": seed.namespace, "labels": {"app": "nginx"},
                         "creationTimestamp": crate::clock::rfc3339(created)},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                                     "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}
        });
        start_pod(&mut pod, index as u64 + 1);
        store.put_manifest_object(pod, created)?;
    }
    Ok(())
}

/// Adds a namespace with its `default` service account and `kube-root-ca.crt` (the CA that
/// signs the serving certificate, as in a real cluster), unless it exists.
pub fn ensure_namespace(
    store: &mut ObjectStore,
    namespace: &str,
    created: i64,
    ca_pem: &str,
) -> Result<(), String> {
    if store.namespace_exists(namespace) {
        return Ok(());
    }
    store.put_manifest_object(
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        created,
    )?;
    store.put_manifest_object(
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "default", "namespace": namespace}}),
        created,
    )?;
    store.put_manifest_object(
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
               "data": {"ca.crt": ca_pem}}),
        created,
    )?;
    Ok(())
}

fn node() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
            "node-role.kubernetes.io/control-plane": ""}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.10"},
                          {"type": "Hostname", "address": NODE_NAME}],
            "nodeInfo": {"kubeletVersion": crate::discovery::GIT_VERSION, "osImage": "Stand-in Linux",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0.0",
                         "operatingSystem": "linux", "architecture": "amd64"}
        }
    })
}

/// Schedules and "runs" a pod at once: node, IP, Running phase and ready containers.
pub fn start_pod(pod: &mut Value, ordinal: u64) {
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let started = pod
        .pointer("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    let statuses: Vec<Value> = containers
        .iter()
        .map(|container| {
            json!({
                "name": container.get("name").cloned().unwrap_or(Value::Null),
                "image": container.get("image").cloned().unwrap_or(Value::Null),
                "imageID": "", "containerID": format!("containerd://{:064x}", ordinal),
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": started}}
            })
        })
        .collect();
    let Some(fields) = pod.as_object_mut() else {
        return;
    };
    if let Some(spec) = fields.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("nodeName").or_insert_with(|| json!(NODE_NAME));
    }
    let ip = format!("10.244.0.{}", 10 + ordinal % 240);
    fields.entry("status").or_insert_with(|| {
        json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "hostIP": "10.0.0.10", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": started, "containerStatuses": statuses, "qosClass": "BestEffort"
        })
    });
}

/// What the namespace controller and admission add to a new namespace: the name label,
/// the `kubernetes` finalizer and the Active phase.
pub fn activate_namespace(namespace: &mut Value, name: &str) {
    if let Some(labels) = namespace
        .pointer_mut("/metadata")
        .and_then(Value::as_object_mut)
        .map(|metadata| metadata.entry("labels").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(fields) = namespace.as_object_mut() {
        fields.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        fields.insert("status".into(), json!({"phase": "Active"}));
    }
}
