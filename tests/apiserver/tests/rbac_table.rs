//! The RBAC authorizer against a table of requests: bindings and their scope, subjects,
//! wildcards, resource names, subresources, non-resource URLs, missing roles, the
//! bootstrap policy and the aggregated roles.

use kube_apiserver_standin::manifests;
use kube_apiserver_standin::rbac::{Attributes, Rbac};
use kube_apiserver_standin::{UserInfo, BOOTSTRAP_POLICY};

const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
  - {apiGroups: [""], resources: ["pods"], verbs: ["get", "list"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-reads-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-writer, namespace: team-a}
rules:
  - {apiGroups: [""], resources: ["secrets"], verbs: ["*"]}
  - {apiGroups: [""], resources: ["configmaps"], resourceNames: ["app-config"], verbs: ["get", "update"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-write-secrets, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-writer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: devs}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: everything-and-metrics}
rules:
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
  - {nonResourceURLs: ["/metrics", "/logs/*"], verbs: ["get"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-owns-team-b, namespace: team-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: everything-and-metrics}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: monitor-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-only}
subjects: [{kind: ServiceAccount, name: prometheus, namespace: monitoring}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-only}
rules:
  - {nonResourceURLs: ["/metrics"], verbs: ["get"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: subresource-roles}
rules:
  - {apiGroups: [""], resources: ["pods/exec"], verbs: ["create"]}
  - {apiGroups: ["apps"], resources: ["*/scale"], verbs: ["update"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-subresources, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: subresource-roles}
subjects:
  - {kind: ServiceAccount, name: deployer}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dangling, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ghost}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dave}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: erin-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: erin}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: frank-edits}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: frank}]
"#;

fn rbac() -> Rbac {
    let mut objects = manifests::parse(BOOTSTRAP_POLICY).unwrap();
    objects.extend(manifests::parse(POLICY).unwrap());
    Rbac::from_objects(objects.iter()).unwrap()
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    let mut groups: Vec<String> = groups.iter().map(|group| group.to_string()).collect();
    groups.push("system:authenticated".to_string());
    UserInfo {
        username: name.to_string(),
        groups,
        ..UserInfo::default()
    }
}

/// `verb group/resource[/subresource] namespace name` or `verb /path`.
fn request(user: &UserInfo, what: &str) -> Attributes {
    let words: Vec<&str> = what.split_whitespace().collect();
    if words[1].starts_with('/') {
        return Attributes {
            user: user.clone(),
            verb: words[0].to_string(),
            resource_request: false,
            path: words[1].to_string(),
            ..Attributes::default()
        };
    }
    let (group, resource) = words[1].split_once(':').unwrap_or(("", words[1]));
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let field = |index: usize| {
        words
            .get(index)
            .filter(|word| **word != "-")
            .unwrap_or(&"")
            .to_string()
    };
    Attributes {
        user: user.clone(),
        verb: words[0].to_string(),
        resource_request: true,
        api_group: group.to_string(),
        api_version: "v1".to_string(),
        namespace: field(2),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        name: field(3),
        path: String::new(),
    }
}

#[test]
fn decisions() {
    let rbac = rbac();
    let alice = user("alice", &[]);
    let dev = user("dana", &["devs"]);
    let bob = user("bob", &[]);
    let prometheus = UserInfo::service_account("monitoring", "prometheus");
    let deployer = UserInfo::service_account("default", "deployer");
    let other_deployer = UserInfo::service_account("team-a", "deployer");
    let erin = user("erin", &[]);
    let frank = user("frank", &[]);
    let table: &[(&UserInfo, &str, bool)] = &[
        // A ClusterRoleBinding grants in every namespace and at the cluster scope.
        (&alice, "list pods default", true),
        (&alice, "get pods kube-system web", true),
        (&alice, "list pods -", true),
        (&alice, "watch pods default", false),
        (&alice, "get pods/log default web", false),
        (&alice, "list apps:pods default", false),
        // A RoleBinding grants only in its namespace; group subjects.
        (&dev, "create secrets team-a", true),
        (&dev, "delete secrets team-a x", true),
        (&dev, "create secrets team-b", false),
        (&dev, "list secrets -", false),
        (&alice, "create secrets team-a", false),
        // resourceNames: the named object only, never a list.
        (&dev, "get configmaps team-a app-config", true),
        (&dev, "update configmaps team-a app-config", true),
        (&dev, "get configmaps team-a other", false),
        (&dev, "list configmaps team-a", false),
        // A ClusterRole through a RoleBinding: everything, but only in that namespace, and
        // its non-resource URLs never apply.
        (&bob, "delete apps:deployments team-b web", true),
        (&bob, "create pods/exec team-b web", true),
        (&bob, "list pods team-a", false),
        (&bob, "list namespaces -", false),
        (&bob, "get /metrics", false),
        // Service accounts: explicit namespace, or the RoleBinding's own.
        (&prometheus, "get /metrics", true),
        (&prometheus, "get /metrics/extra", false),
        (&prometheus, "post /metrics", false),
        (&deployer, "create pods/exec default web", true),
        (&other_deployer, "create pods/exec default web", false),
        // Subresources: `pods/exec` is not `pods`; `*/scale` matches any resource's scale.
        (&deployer, "create pods default web", false),
        (&deployer, "get pods/exec default web", false),
        (&deployer, "update apps:deployments/scale default web", true),
        (&deployer, "update apps:statefulsets/scale default db", true),
        (&deployer, "update apps:deployments default web", false),
        (
            &deployer,
            "update :replicationcontrollers/scale default rc",
            false,
        ),
        // The bootstrap policy: discovery and self reviews for every authenticated user.
        (&alice, "get /version", true),
        (&alice, "get /api", true),
        (&alice, "get /apis/apps/v1", true),
        (&alice, "get /healthz", true),
        (&alice, "get /metrics", false),
        (
            &alice,
            "create authentication.k8s.io:selfsubjectreviews -",
            true,
        ),
        (
            &alice,
            "create authorization.k8s.io:selfsubjectaccessreviews -",
            true,
        ),
        (
            &alice,
            "create authorization.k8s.io:subjectaccessreviews -",
            false,
        ),
        // Aggregated view and edit.
        (&erin, "list pods default", true),
        (&erin, "get apps:deployments kube-system x", true),
        (&erin, "get secrets default x", false),
        (&erin, "create pods/exec default web", false),
        (&frank, "create pods/exec default web", true),
        (&frank, "get secrets default x", true),
        (&frank, "list pods default", true),
        (&frank, "impersonate serviceaccounts default x", true),
        (
            &frank,
            "create rbac.authorization.k8s.io:roles default",
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (who, what, expected) in table {
        let decision = rbac.authorize(&request(who, what));
        if decision.allowed != *expected {
            failures.push(format!(
                "{} {what}: expected {expected}, reason {:?}",
                who.username, decision.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reasons_name_the_binding_or_the_missing_role() {
    let rbac = rbac();
    let allowed = rbac.authorize(&request(&user("alice", &[]), "list pods default"));
    assert_eq!(
        allowed.reason,
        "RBAC: allowed by ClusterRoleBinding \"alice-reads-pods\" of ClusterRole \"pod-reader\" to User \"alice\""
    );
    let namespaced = rbac.authorize(&request(
        &UserInfo::service_account("default", "deployer"),
        "create pods/exec default web",
    ));
    assert_eq!(
        namespaced.reason,
        "RBAC: allowed by RoleBinding \"carol-subresources/default\" of ClusterRole \"subresource-roles\" to ServiceAccount \"deployer/default\""
    );
    let dangling = rbac.authorize(&request(&user("dave", &[]), "get pods default x"));
    assert!(!dangling.allowed);
    assert_eq!(
        dangling.reason,
        "RBAC: role.rbac.authorization.k8s.io \"ghost\" not found"
    );
    // A missing ClusterRole behind a binding that does not apply is not mentioned.
    let unrelated = rbac.authorize(&request(&user("zed", &[]), "get pods default x"));
    assert_eq!(unrelated.reason, "");
}

#[test]
fn malformed_rbac_objects_are_refused() {
    let no_name = manifests::parse(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nrules: []\n",
    )
    .unwrap();
    assert!(Rbac::from_objects(no_name.iter()).is_err());
    let no_namespace = manifests::parse(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: x}\nroleRef: {kind: Role, name: y}\n",
    )
    .unwrap();
    assert!(Rbac::from_objects(no_namespace.iter()).is_err());
    let bad_rules = manifests::parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\nrules: 7\n").unwrap();
    assert!(Rbac::from_objects(bad_rules.iter()).is_err());
}
