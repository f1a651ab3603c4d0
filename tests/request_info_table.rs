//! Real kubectl v1.32 requests, captured from kubectl talking to a logging stand-in for the
//! API server, and what the API server's authorizer sees for each.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use kubegate::request_info::{resolve, RequestInfo};

/// The authorization-relevant fields of a `RequestInfo`, compared as one value.
#[derive(Debug, PartialEq, Eq)]
struct Seen<'a> {
    resource_request: bool,
    verb: &'a str,
    policy_verb: &'a str,
    api_prefix: &'a str,
    api_group: &'a str,
    api_version: &'a str,
    namespace: &'a str,
    resource: &'a str,
    subresource: &'a str,
    name: &'a str,
}

impl<'a> Seen<'a> {
    fn of(info: &'a RequestInfo) -> Self {
        Seen {
            resource_request: info.is_resource_request,
            verb: &info.verb,
            policy_verb: info.policy_verb(),
            api_prefix: &info.api_prefix,
            api_group: &info.api_group,
            api_version: &info.api_version,
            namespace: &info.namespace,
            resource: &info.resource,
            subresource: &info.subresource,
            name: &info.name,
        }
    }

    fn with_policy_verb(self, policy_verb: &'a str) -> Self {
        Seen {
            policy_verb,
            ..self
        }
    }
}

/// A resource request: `group_version` is `v1` for the core group or `group/version`;
/// `resource` may be `resource/subresource`.
fn resource<'a>(
    verb: &'a str,
    group_version: &'a str,
    namespace: &'a str,
    resource: &'a str,
    name: &'a str,
) -> Seen<'a> {
    let (api_prefix, api_group, api_version) = match group_version.split_once('/') {
        Some((group, version)) => ("apis", group, version),
        None => ("api", "", group_version),
    };
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    Seen {
        resource_request: true,
        verb,
        policy_verb: verb,
        api_prefix,
        api_group,
        api_version,
        namespace,
        resource,
        subresource,
        name,
    }
}

fn non_resource(verb: &str) -> Seen<'_> {
    Seen {
        resource_request: false,
        verb,
        policy_verb: verb,
        api_prefix: "",
        api_group: "",
        api_version: "",
        namespace: "",
        resource: "",
        subresource: "",
        name: "",
    }
}

/// `(kubectl command, method, target as sent, expected)`.
type Case<'a> = (&'a str, &'a str, &'a str, Seen<'a>);

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for (kubectl, method, target, expected) in cases {
        let request = format!("{kubectl}: {method} {target}");
        match resolve(method, target) {
            Ok(info) => {
                let path = target.split('?').next().unwrap_or_default();
                if Seen::of(&info) != *expected || info.path != path {
                    failures.push(format!(
                        "{request}\n  expected {expected:?}\n  got      {:?} (path {:?})",
                        Seen::of(&info),
                        info.path
                    ));
                }
            }
            Err(refusal) => failures.push(format!("{request}\n  refused: {refusal}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn discovery_and_other_non_resource_urls() {
    check(&[
        (
            "any command (dispatcher probe)",
            "GET",
            "/version?timeout=5s",
            non_resource("get"),
        ),
        (
            "kubectl get pods",
            "GET",
            "/api?timeout=32s",
            non_resource("get"),
        ),
        (
            "kubectl get pods",
            "GET",
            "/apis?timeout=32s",
            non_resource("get"),
        ),
        (
            "kubectl get pods",
            "GET",
            "/api/v1?timeout=32s",
            non_resource("get"),
        ),
        (
            "kubectl get deploy",
            "GET",
            "/apis/apps/v1?timeout=32s",
            non_resource("get"),
        ),
        (
            "kubectl get --raw /apis/apps",
            "GET",
            "/apis/apps",
            non_resource("get"),
        ),
        (
            "kubectl apply",
            "GET",
            "/openapi/v3?timeout=32s",
            non_resource("get"),
        ),
        (
            "kubectl apply",
            "GET",
            "/openapi/v2?timeout=32s",
            non_resource("get"),
        ),
        (
            "kubectl get --raw /openapi/v3",
            "GET",
            "/openapi/v3",
            non_resource("get"),
        ),
        (
            "kubectl get --raw /healthz",
            "GET",
            "/healthz",
            non_resource("get"),
        ),
        (
            "kubectl get --raw /metrics",
            "GET",
            "/metrics",
            non_resource("get"),
        ),
        (
            "kubectl create --raw /x",
            "POST",
            "/x",
            non_resource("post"),
        ),
        (
            "kubectl get pods",
            "GET",
            "/apis/authentication.k8s.io/v1?timeout=32s",
            non_resource("get"),
        ),
    ]);
}

#[test]
fn reads_of_collections_and_objects() {
    check(&[
        (
            "kubectl get pods",
            "GET",
            "/api/v1/namespaces/default/pods?limit=500",
            resource("list", "v1", "default", "pods", ""),
        ),
        (
            "kubectl get pods -w",
            "GET",
            "/api/v1/namespaces/default/pods?resourceVersion=7&watch=true",
            resource("watch", "v1", "default", "pods", ""),
        ),
        (
            "kubectl get pods -A",
            "GET",
            "/api/v1/pods?limit=500",
            resource("list", "v1", "", "pods", ""),
        ),
        (
            "kubectl get pod x",
            "GET",
            "/api/v1/namespaces/default/pods/x",
            resource("get", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl get pod x -w",
            "GET",
            "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dx&resourceVersion=0&watch=true",
            resource("watch", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl get pods -l app=web --field-selector metadata.name=x",
            "GET",
            "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dx&labelSelector=app%3Dweb&limit=500",
            resource("list", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl get nodes",
            "GET",
            "/api/v1/nodes?limit=500",
            resource("list", "v1", "", "nodes", ""),
        ),
        (
            "kubectl get ns",
            "GET",
            "/api/v1/namespaces?limit=500",
            resource("list", "v1", "", "namespaces", ""),
        ),
        (
            "kubectl get ns kube-system",
            "GET",
            "/api/v1/namespaces/kube-system",
            resource("get", "v1", "kube-system", "namespaces", "kube-system"),
        ),
        (
            "kubectl get deploy -n kube-system",
            "GET",
            "/apis/apps/v1/namespaces/kube-system/deployments?limit=500",
            resource("list", "apps/v1", "kube-system", "deployments", ""),
        ),
        (
            "kubectl get secrets -n kube-system x",
            "GET",
            "/api/v1/namespaces/kube-system/secrets/x",
            resource("get", "v1", "kube-system", "secrets", "x"),
        ),
        (
            "kubectl logs x",
            "GET",
            "/api/v1/namespaces/default/pods/x/log?container=c",
            resource("get", "v1", "default", "pods/log", "x"),
        ),
        (
            "kubectl get widgets.example.com y -n x --subresource=status",
            "GET",
            "/apis/example.com/v1/namespaces/x/widgets/y/status",
            resource("get", "example.com/v1", "x", "widgets/status", "y"),
        ),
    ]);
}

#[test]
fn writes_and_deletes() {
    check(&[
        (
            "kubectl create -f pod.yaml",
            "POST",
            "/api/v1/namespaces/default/pods?fieldManager=kubectl-create&fieldValidation=Ignore",
            resource("create", "v1", "default", "pods", ""),
        ),
        (
            "kubectl apply --server-side -f pod.yaml (application/apply-patch+yaml)",
            "PATCH",
            "/api/v1/namespaces/default/pods/x?fieldManager=kubectl&fieldValidation=Ignore&force=false",
            resource("patch", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl apply -f pod.yaml (strategic merge patch)",
            "PATCH",
            "/api/v1/namespaces/default/pods/x?fieldManager=kubectl-client-side-apply&fieldValidation=Ignore",
            resource("patch", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl edit pod x",
            "PATCH",
            "/api/v1/namespaces/default/pods/x?fieldManager=kubectl-edit&fieldValidation=Ignore",
            resource("patch", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl replace -f pod.yaml",
            "PUT",
            "/api/v1/namespaces/default/pods/x?fieldManager=kubectl-replace&fieldValidation=Ignore",
            resource("update", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl delete pod x",
            "DELETE",
            "/api/v1/namespaces/default/pods/x",
            resource("delete", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl delete pod x (waiting: list)",
            "GET",
            "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dx&limit=500&resourceVersion=0",
            resource("list", "v1", "default", "pods", "x"),
        ),
        (
            "kubectl delete pod x (waiting: watch)",
            "GET",
            "/api/v1/namespaces/default/pods?allowWatchBookmarks=true&fieldSelector=metadata.name%3Dx&resourceVersion=7&timeoutSeconds=335&watch=true",
            resource("watch", "v1", "default", "pods", "x"),
        ),
        // kubectl deletes --all and -l matches one by one, after listing them.
        (
            "kubectl delete pods --all",
            "GET",
            "/api/v1/namespaces/default/pods",
            resource("list", "v1", "default", "pods", ""),
        ),
        (
            "kubectl delete pods -l app=web",
            "GET",
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
            resource("list", "v1", "default", "pods", ""),
        ),
        (
            "kubectl delete pods --all",
            "DELETE",
            "/api/v1/namespaces/default/pods/x",
            resource("delete", "v1", "default", "pods", "x"),
        ),
        (
            "client-go DeleteCollection",
            "DELETE",
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
            resource("deletecollection", "v1", "default", "pods", ""),
        ),
    ]);
}

/// Both of kubectl's attempts, WebSocket then SPDY, must be decided alike.
#[test]
fn exec_attach_and_port_forward_streams() {
    check(&[
        (
            "kubectl exec x -- sh (WebSocket)",
            "GET",
            "/api/v1/namespaces/default/pods/x/exec?command=sh&container=c&stderr=true&stdout=true",
            resource("get", "v1", "default", "pods/exec", "x").with_policy_verb("create"),
        ),
        (
            "kubectl exec x -- sh (SPDY)",
            "POST",
            "/api/v1/namespaces/default/pods/x/exec?command=sh&container=c&stderr=true&stdout=true",
            resource("create", "v1", "default", "pods/exec", "x"),
        ),
        (
            "kubectl exec -it x -- sh (WebSocket)",
            "GET",
            "/api/v1/namespaces/default/pods/x/exec?command=sh&container=c&stderr=true&stdin=true&stdout=true",
            resource("get", "v1", "default", "pods/exec", "x").with_policy_verb("create"),
        ),
        (
            "kubectl exec -it x -- sh (SPDY)",
            "POST",
            "/api/v1/namespaces/default/pods/x/exec?command=sh&container=c&stderr=true&stdin=true&stdout=true",
            resource("create", "v1", "default", "pods/exec", "x"),
        ),
        (
            "kubectl attach x (WebSocket)",
            "GET",
            "/api/v1/namespaces/default/pods/x/attach?container=c&stderr=true&stdout=true",
            resource("get", "v1", "default", "pods/attach", "x").with_policy_verb("create"),
        ),
        (
            "kubectl attach x (SPDY)",
            "POST",
            "/api/v1/namespaces/default/pods/x/attach?container=c&stderr=true&stdout=true",
            resource("create", "v1", "default", "pods/attach", "x"),
        ),
        (
            "kubectl port-forward pod/x 8080:80 (WebSocket)",
            "GET",
            "/api/v1/namespaces/default/pods/x/portforward",
            resource("get", "v1", "default", "pods/portforward", "x").with_policy_verb("create"),
        ),
        (
            "kubectl port-forward pod/x 8080:80 (SPDY)",
            "POST",
            "/api/v1/namespaces/default/pods/x/portforward",
            resource("create", "v1", "default", "pods/portforward", "x"),
        ),
        (
            "kubectl exec (looks the pod up first)",
            "GET",
            "/api/v1/namespaces/default/pods/x",
            resource("get", "v1", "default", "pods", "x"),
        ),
    ]);
}

#[test]
fn proxied_paths_are_not_part_of_the_name() {
    check(&[
        (
            "kubectl proxy; curl :8001/api/v1/namespaces/ns/services/x/proxy/some/path?q=1",
            "GET",
            "/api/v1/namespaces/ns/services/x/proxy/some/path?q=1",
            resource("get", "v1", "ns", "services/proxy", "x"),
        ),
        (
            "kubectl proxy; curl :8001/api/v1/namespaces/ns/services/https:x:443/proxy/",
            "GET",
            "/api/v1/namespaces/ns/services/https:x:443/proxy/",
            resource("get", "v1", "ns", "services/proxy", "https:x:443"),
        ),
    ]);
    let info = resolve(
        "GET",
        "/api/v1/namespaces/ns/services/x/proxy/some/path?q=1",
    );
    assert_eq!(
        info.map(|info| info.parts),
        Ok(vec![
            "services".to_string(),
            "x".to_string(),
            "proxy".to_string(),
            "some".to_string(),
            "path".to_string()
        ])
    );
}

#[test]
fn auth_commands_create_reviews() {
    check(&[
        (
            "kubectl auth whoami",
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            resource(
                "create",
                "authentication.k8s.io/v1",
                "",
                "selfsubjectreviews",
                "",
            ),
        ),
        (
            "kubectl auth can-i get pods",
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            resource(
                "create",
                "authorization.k8s.io/v1",
                "",
                "selfsubjectaccessreviews",
                "",
            ),
        ),
    ]);
}
