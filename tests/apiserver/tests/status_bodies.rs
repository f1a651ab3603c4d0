//! Refusals byte for byte as a real kube-apiserver (v1.36) answers them (observed with curl, RBAC and impersonation on)
//! (the API server's JSON encoder ends the body with a newline).

mod common;

use common::{demo_server, get_as, send, server_with, Protocol};
use kube_apiserver_standin::StandinConfig;

const NOBODY: [(&str, &str); 1] = [("impersonate-user", "nobody@example.com")];

fn body(reply: &common::Reply) -> &str {
    std::str::from_utf8(&reply.body).expect("UTF-8")
}

#[tokio::test]
async fn list_in_a_namespace() {
    let server = demo_server().await;
    let reply = get_as(&server, "/api/v1/namespaces/default/pods", &NOBODY).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        body(&reply),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods is forbidden: User \\\"nobody@example.com\\\" cannot list resource \\\"pods\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"kind\":\"pods\"},\"code\":403}\n"
    );
}

#[tokio::test]
async fn cluster_scope() {
    let server = demo_server().await;
    let reply = get_as(&server, "/api/v1/namespaces", &NOBODY).await;
    assert_eq!(
        body(&reply),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"namespaces is forbidden: User \\\"nobody@example.com\\\" cannot list resource \\\"namespaces\\\" in API group \\\"\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"kind\":\"namespaces\"},\"code\":403}\n"
    );
}

#[tokio::test]
async fn named_object() {
    let server = demo_server().await;
    let reply = get_as(&server, "/api/v1/namespaces/default/secrets/x", &NOBODY).await;
    assert_eq!(
        body(&reply),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"secrets \\\"x\\\" is forbidden: User \\\"nobody@example.com\\\" cannot get resource \\\"secrets\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"x\",\"kind\":\"secrets\"},\"code\":403}\n"
    );
}

#[tokio::test]
async fn exec_is_a_create_on_pods_exec_checked_before_the_pod_exists() {
    let server = demo_server().await;
    let authorization = format!("Bearer {}", server.token());
    let post = |user: &'static str, pod: &'static str| {
        let authorization = authorization.clone();
        let server = &server;
        async move {
            send(
                server,
                Protocol::Http1,
                "POST",
                &format!("/api/v1/namespaces/default/pods/{pod}/exec?command=ls&stdout=true"),
                &[
                    ("authorization", authorization.as_str()),
                    ("impersonate-user", user),
                ],
                b"",
            )
            .await
        }
    };
    let refused = post("nobody@example.com", "does-not-exist").await;
    assert_eq!(
        body(&refused),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"does-not-exist\\\" is forbidden: User \\\"nobody@example.com\\\" cannot create resource \\\"pods/exec\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"does-not-exist\",\"kind\":\"pods\"},\"code\":403}\n"
    );
    let missing = post("someuser@example.com", "does-not-exist").await;
    assert_eq!(
        body(&missing),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"does-not-exist\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"does-not-exist\",\"kind\":\"pods\"},\"code\":404}\n"
    );
}

#[tokio::test]
async fn not_found_for_an_allowed_user() {
    let server = demo_server().await;
    let reply = get_as(
        &server,
        "/api/v1/namespaces/default/pods/nope",
        &[("impersonate-user", "someuser@example.com")],
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        body(&reply),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"nope\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"nope\",\"kind\":\"pods\"},\"code\":404}\n"
    );
}

#[tokio::test]
async fn unauthorized_for_a_bad_or_missing_token() {
    let server = demo_server().await;
    let expected = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n";
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("authorization", "Bearer wrong")],
        &[("authorization", "Basic c2E6dG9rZW4=")],
        &[("authorization", "Bearer ")],
        // Only the first Authorization header is read: the right token in a second one
        // does not count.
        &[
            ("authorization", "Bearer wrong"),
            ("authorization", "Bearer standin-service-account-token"),
        ],
    ];
    for headers in cases {
        let reply = send(
            &server,
            Protocol::Http1,
            "GET",
            "/api/v1/namespaces/default/pods",
            headers,
            b"",
        )
        .await;
        assert_eq!((reply.status, body(&reply)), (401, expected), "{headers:?}");
    }
    // The scheme is matched in any letter case.
    let lower_case = send(
        &server,
        Protocol::Http1,
        "GET",
        "/version",
        &[("authorization", "bearer standin-service-account-token")],
        b"",
    )
    .await;
    assert_eq!(lower_case.status, 200);
    // Unauthenticated requests get 401 before impersonation is even looked at.
    let with_impersonation = send(
        &server,
        Protocol::Http1,
        "GET",
        "/api",
        &[("impersonate-group", "g1")],
        b"",
    )
    .await;
    assert_eq!(with_impersonation.status, 401);
}

#[tokio::test]
async fn impersonation_refused_for_a_caller_without_the_verb() {
    // No manifests: the service account holds no impersonate permission.
    let server = server_with(StandinConfig::default()).await;
    let reply = get_as(
        &server,
        "/api/v1/namespaces/default/pods",
        &[("impersonate-user", "x")],
    )
    .await;
    assert_eq!(
        body(&reply),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"users \\\"x\\\" is forbidden: User \\\"system:serviceaccount:kubegate-system:kubegate\\\" cannot impersonate resource \\\"users\\\" in API group \\\"\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"x\",\"kind\":\"users\"},\"code\":403}\n"
    );
}

#[tokio::test]
async fn group_without_user_is_a_bad_request() {
    let server = demo_server().await;
    let reply = get_as(
        &server,
        "/api/v1/namespaces/default/pods",
        &[("impersonate-group", "g1")],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        body(&reply),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"requested [{Group  g1    }] without impersonating a user\",\"reason\":\"BadRequest\",\"code\":400}\n"
    );
}

#[tokio::test]
async fn unknown_paths_are_go_not_found_pages() {
    let server = demo_server().await;
    for target in [
        "/apis/apps/v1/namespaces/default/deployments",
        "/api/v2",
        "/nothing-here",
    ] {
        let reply = get_as(
            &server,
            target,
            &[
                ("impersonate-user", "admin"),
                ("impersonate-group", "system:masters"),
            ],
        )
        .await;
        assert_eq!(
            (reply.status, body(&reply)),
            (404, "404 page not found\n"),
            "{target}"
        );
    }
}
