//! Request-info resolution against a table, as kube-apiserver's RequestInfoFactory
//! resolves the same requests.

use kube_apiserver_standin::requestinfo::{resolve, ResolveError};

/// (method, target, verb, api group, version, namespace, resource, subresource, name);
/// every row is a resource request.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const TABLE: &[Row] = &[
    (
        "GET",
        "/api/v1/namespaces/default/pods",
        "list",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods?watch=true",
        "watch",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods?watch=1",
        "watch",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods?watch=false",
        "list",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods?watch=0",
        "list",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/watch/namespaces/default/pods",
        "watch",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/watch/pods",
        "watch",
        "",
        "v1",
        "",
        "pods",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods/web",
        "get",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "HEAD",
        "/api/v1/namespaces/default/pods/web",
        "get",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods/web/log",
        "get",
        "",
        "v1",
        "default",
        "pods",
        "log",
        "web",
    ),
    (
        "POST",
        "/api/v1/namespaces/default/pods/web/exec?command=ls",
        "create",
        "",
        "v1",
        "default",
        "pods",
        "exec",
        "web",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods/web/exec?command=ls",
        "get",
        "",
        "v1",
        "default",
        "pods",
        "exec",
        "web",
    ),
    (
        "POST",
        "/api/v1/namespaces/default/pods",
        "create",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "PUT",
        "/api/v1/namespaces/default/pods/web",
        "update",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "PATCH",
        "/api/v1/namespaces/default/pods/web",
        "patch",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "DELETE",
        "/api/v1/namespaces/default/pods/web",
        "delete",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "DELETE",
        "/api/v1/namespaces/default/pods",
        "deletecollection",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    (
        "OPTIONS",
        "/api/v1/namespaces/default/pods",
        "",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    // Cluster scope, and namespaces themselves.
    ("GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""),
    (
        "GET",
        "/api/v1/namespaces",
        "list",
        "",
        "v1",
        "",
        "namespaces",
        "",
        "",
    ),
    (
        "GET",
        "/api/v1/namespaces/default",
        "get",
        "",
        "v1",
        "default",
        "namespaces",
        "",
        "default",
    ),
    (
        "PUT",
        "/api/v1/namespaces/default/status",
        "update",
        "",
        "v1",
        "default",
        "namespaces",
        "status",
        "default",
    ),
    (
        "PUT",
        "/api/v1/namespaces/default/finalize",
        "update",
        "",
        "v1",
        "default",
        "namespaces",
        "finalize",
        "default",
    ),
    (
        "GET",
        "/api/v1/nodes/n1",
        "get",
        "",
        "v1",
        "",
        "nodes",
        "",
        "n1",
    ),
    // API groups.
    (
        "GET",
        "/apis/apps/v1/namespaces/prod/deployments/web/scale",
        "get",
        "apps",
        "v1",
        "prod",
        "deployments",
        "scale",
        "web",
    ),
    (
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "create",
        "authorization.k8s.io",
        "v1",
        "",
        "selfsubjectaccessreviews",
        "",
        "",
    ),
    (
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
        "get",
        "rbac.authorization.k8s.io",
        "v1",
        "",
        "clusterroles",
        "",
        "view",
    ),
    // A list pinned to one name by a field selector names it.
    (
        "GET",
        "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb",
        "list",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3D%3Dweb&watch=true",
        "watch",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%21%3Dweb",
        "list",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
    // Proxy has no subresource: everything after the name is the proxied path.
    (
        "GET",
        "/api/v1/proxy/namespaces/default/pods/web/a/b",
        "proxy",
        "",
        "v1",
        "default",
        "pods",
        "",
        "web",
    ),
    // Percent-decoded before splitting, as Go's URL.Path is.
    (
        "GET",
        "/api/v1/namespaces/de%66ault/pods",
        "list",
        "",
        "v1",
        "default",
        "pods",
        "",
        "",
    ),
];

/// Non-resource requests: the verb is the lower-cased method.
const NON_RESOURCE: &[(&str, &str, &str)] = &[
    ("GET", "/", "get"),
    ("GET", "/version", "get"),
    ("GET", "/api", "get"),
    ("GET", "/api/v1", "get"),
    ("GET", "/apis", "get"),
    ("GET", "/apis/apps", "get"),
    ("GET", "/apis/apps/v1", "get"),
    ("POST", "/healthz", "post"),
    ("GET", "/openapi/v2", "get"),
    ("GET", "/metrics", "get"),
];

#[test]
fn resource_requests() {
    for (method, target, verb, group, version, namespace, resource, subresource, name) in TABLE {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let info = resolve(method, path, query)
            .unwrap_or_else(|error| panic!("{method} {target}: {error:?}"));
        let got = (
            info.is_resource_request,
            info.verb.as_str(),
            info.api_group.as_str(),
            info.api_version.as_str(),
            info.namespace.as_str(),
            info.resource.as_str(),
            info.subresource.as_str(),
            info.name.as_str(),
        );
        assert_eq!(
            got,
            (
                true,
                *verb,
                *group,
                *version,
                *namespace,
                *resource,
                *subresource,
                *name
            ),
            "{method} {target}"
        );
    }
}

#[test]
fn non_resource_requests() {
    for (method, path, verb) in NON_RESOURCE {
        let info = resolve(method, path, "").unwrap();
        assert!(!info.is_resource_request, "{path}");
        assert_eq!((info.verb.as_str(), info.path.as_str()), (*verb, *path));
    }
}

#[test]
fn unresolvable_requests() {
    assert!(matches!(
        resolve("GET", "/api/v1/watch", ""),
        Err(ResolveError::NoResource(_))
    ));
    assert!(matches!(
        resolve("GET", "/api/v1/proxy", ""),
        Err(ResolveError::NoResource(_))
    ));
    assert_eq!(
        resolve("GET", "/api/v1/namespaces/%zz/pods", ""),
        Err(ResolveError::BadPath)
    );
}
