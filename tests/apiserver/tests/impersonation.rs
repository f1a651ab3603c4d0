//! Impersonation through the server: who the request acts as, which permission each
//! header needs, and what the recorder keeps.

mod common;

use common::{demo_server, get_as, send, server_with, Protocol, DEMO_RBAC};
use kube_apiserver_standin::StandinConfig;
use serde_json::{json, Value};

/// The SelfSubjectReview the server answers for `headers` (who the request acts as).
async fn whoami(
    server: &kube_apiserver_standin::RunningApiServer,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let authorization = format!("Bearer {}", server.token());
    let mut all = vec![
        ("authorization", authorization.as_str()),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    let reply = send(
        server,
        Protocol::Http1,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &all,
        br#"{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1"}"#,
    )
    .await;
    let body = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    (reply.status, body)
}

/// The demo RBAC plus permission to impersonate uids and the `acme.com/project` extra.
const EXTRA_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-uid-and-project}
rules:
  - {apiGroups: ["authentication.k8s.io"], resources: ["uids", "userextras/acme.com/project"], verbs: ["impersonate"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gateway-impersonates-uid-and-project}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-uid-and-project}
subjects: [{kind: ServiceAccount, name: kubegate, namespace: kubegate-system}]
"#;

#[tokio::test]
async fn without_headers_the_caller_is_the_service_account() {
    let server = demo_server().await;
    let (status, review) = whoami(&server, &[]).await;
    assert_eq!(status, 201);
    assert_eq!(
        review["status"]["userInfo"]["username"],
        "system:serviceaccount:kubegate-system:kubegate"
    );
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:kubegate-system",
            "system:authenticated"
        ])
    );
}

#[tokio::test]
async fn groups_accumulate_one_per_header_and_system_authenticated_is_added() {
    let server = demo_server().await;
    let (status, review) = whoami(
        &server,
        &[
            ("impersonate-user", "someuser@example.com"),
            ("impersonate-group", "g1"),
            ("impersonate-group", "a,b"),
            ("Impersonate-Group", "g3"),
        ],
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "someuser@example.com", "groups": ["g1", "a,b", "g3", "system:authenticated"]})
    );
    // The recorder keeps every value of the repeated header, in order.
    let recorded = server.requests().pop().expect("recorded");
    assert_eq!(
        recorded.header_values("impersonate-group"),
        ["g1", "a,b", "g3"]
    );
    assert_eq!(
        recorded.caller.as_deref(),
        Some("system:serviceaccount:kubegate-system:kubegate")
    );
    assert_eq!(recorded.effective_user(), Some("someuser@example.com"));
    assert!(recorded
        .decision
        .starts_with("allowed: RBAC: allowed by ClusterRoleBinding \"system:basic-user\""));
}

#[tokio::test]
async fn system_authenticated_is_not_doubled_and_anonymous_is_unauthenticated() {
    let server = demo_server().await;
    let (_, explicit) = whoami(
        &server,
        &[
            ("impersonate-user", "u"),
            ("impersonate-group", "system:authenticated"),
        ],
    )
    .await;
    assert_eq!(
        explicit["status"]["userInfo"]["groups"],
        json!(["system:authenticated"])
    );
    let (_, anonymous) = whoami(&server, &[("impersonate-user", "system:anonymous")]).await;
    // system:unauthenticated lacks system:basic-user, so the review itself is refused.
    assert_eq!(anonymous["code"], 403);
    let recorded = server.requests().pop().expect("recorded");
    assert_eq!(
        recorded.impersonated.expect("impersonated").groups,
        ["system:unauthenticated"]
    );
}

#[tokio::test]
async fn service_accounts_are_impersonated_as_serviceaccounts() {
    let server = demo_server().await;
    let (status, review) = whoami(
        &server,
        &[("impersonate-user", "system:serviceaccount:team-a:builder")],
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "system:serviceaccount:team-a:builder",
               "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"]})
    );
    // Explicit groups replace a service account's own.
    let (_, grouped) = whoami(
        &server,
        &[
            ("impersonate-user", "system:serviceaccount:team-a:builder"),
            ("impersonate-group", "g"),
        ],
    )
    .await;
    assert_eq!(
        grouped["status"]["userInfo"]["groups"],
        json!(["g", "system:authenticated"])
    );
}

#[tokio::test]
async fn each_item_needs_its_own_permission() {
    let server = demo_server().await;
    // The demo role allows users, groups and service accounts, but not uids or extras.
    let (status, refused) = whoami(
        &server,
        &[("impersonate-user", "u"), ("impersonate-uid", "1234")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        refused["message"],
        "uids.authentication.k8s.io \"1234\" is forbidden: User \"system:serviceaccount:kubegate-system:kubegate\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
    assert_eq!(
        refused["details"],
        json!({"name": "1234", "group": "authentication.k8s.io", "kind": "uids"})
    );
    let (_, extra) = whoami(
        &server,
        &[
            ("impersonate-user", "u"),
            ("impersonate-extra-acme.com%2fproject", "p1"),
        ],
    )
    .await;
    assert_eq!(
        extra["message"],
        "userextras.authentication.k8s.io \"p1\" is forbidden: User \"system:serviceaccount:kubegate-system:kubegate\" cannot impersonate resource \"userextras/acme.com/project\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
}

#[tokio::test]
async fn uid_and_percent_decoded_lower_cased_extras() {
    let server = server_with(StandinConfig {
        manifests: vec![DEMO_RBAC.to_string(), EXTRA_RBAC.to_string()],
        ..StandinConfig::default()
    })
    .await;
    let (status, review) = whoami(
        &server,
        &[
            ("impersonate-user", "someuser@example.com"),
            ("impersonate-uid", "u-42"),
            ("Impersonate-Extra-ACME.com%2Fproject", "p1"),
            ("impersonate-extra-acme.com%2fproject", "p2"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{review}");
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "someuser@example.com", "uid": "u-42", "groups": ["system:authenticated"],
               "extra": {"acme.com/project": ["p1", "p2"]}})
    );
}

#[tokio::test]
async fn uid_or_extra_without_user_is_a_bad_request() {
    let server = demo_server().await;
    let (status, uid) = whoami(&server, &[("impersonate-uid", "1")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        uid["message"],
        "requested [{UID  1  authentication.k8s.io/v1  }] without impersonating a user"
    );
    let (_, extra) = whoami(&server, &[("impersonate-extra-k", "v")]).await;
    assert_eq!(extra["reason"], "BadRequest");
    // An empty user value is no user.
    let (status, _) = whoami(
        &server,
        &[("impersonate-user", ""), ("impersonate-group", "g")],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_impersonated_user_is_authorized_not_the_caller() {
    let server = demo_server().await;
    let acting = get_as(
        &server,
        "/api/v1/namespaces/default/pods",
        &[("impersonate-user", "someuser@example.com")],
    )
    .await;
    assert_eq!(acting.status, 200);
    // The gateway's account itself may only impersonate and review.
    let itself = get_as(&server, "/api/v1/namespaces/default/pods", &[]).await;
    assert_eq!(itself.status, 403);
    assert!(itself
        .text()
        .contains("User \\\"system:serviceaccount:kubegate-system:kubegate\\\" cannot list"));
}

#[tokio::test]
async fn can_i_reviews_answer_for_the_impersonated_user() {
    let server = demo_server().await;
    let authorization = format!("Bearer {}", server.token());
    let review = |verb: &str, resource: &str| {
        format!(
            r#"{{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{{"resourceAttributes":{{"namespace":"default","verb":"{verb}","resource":"{resource}"}}}}}}"#
        )
    };
    for (verb, resource, allowed) in [("list", "pods", true), ("delete", "pods", false)] {
        let reply = send(
            &server,
            Protocol::Http2,
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &[
                ("authorization", authorization.as_str()),
                ("impersonate-user", "someuser@example.com"),
            ],
            review(verb, resource).as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 201);
        assert_eq!(
            reply.json()["status"]["allowed"],
            json!(allowed),
            "{verb} {resource}"
        );
    }
}
