//! `dispatch_http_call` to named clusters on 127.0.0.1: pause, response on the
//! root context, resume; Envoy's statuses for bad calls.

mod common;

use common::{action, spawn_auth_server, test_spec};
use kubegate_host::{ClusterSpec, FilterOutcome, Plugin};
use std::time::Duration;

fn plugin_with_cluster(addr: std::net::SocketAddr) -> Plugin {
    let mut spec = test_spec("");
    spec.clusters
        .insert("auth".to_string(), ClusterSpec::http(addr));
    Plugin::load(spec).unwrap()
}

#[tokio::test]
async fn paused_request_resumes_after_the_call_answers() {
    let addr = spawn_auth_server(200, Duration::from_millis(50)).await;
    let plugin = plugin_with_cluster(addr);
    let outcome = plugin
        .handle(
            action("dispatch")
                .header("x-cluster", "auth")
                .header("x-call-path", "/check"),
        )
        .await;
    assert_eq!(
        outcome.forwarded_header("x-call-status"),
        Some("200"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.forwarded_header("x-call-body"),
        Some("auth for /check host=auth.local")
    );
    assert_eq!(
        outcome.forwarded_header("x-call-echo"),
        Some("yes"),
        "request headers reached the cluster"
    );
}

#[tokio::test]
async fn a_call_answer_can_end_in_a_local_reply() {
    let addr = spawn_auth_server(403, Duration::ZERO).await;
    let plugin = plugin_with_cluster(addr);
    let outcome = plugin
        .handle(action("dispatch-then-deny").header("x-cluster", "auth"))
        .await;
    let FilterOutcome::LocalReply { status, body, .. } = outcome else {
        panic!("expected a local reply, got {outcome:?}");
    };
    assert_eq!(status, 401);
    assert_eq!(body, b"denied after call");
}

#[tokio::test]
async fn unknown_cluster_and_missing_authority_are_bad_arguments() {
    let addr = spawn_auth_server(200, Duration::ZERO).await;
    let plugin = plugin_with_cluster(addr);
    let outcome = plugin
        .handle(action("dispatch").header("x-cluster", "nope"))
        .await;
    assert!(
        matches!(&outcome, FilterOutcome::LocalReply { status: 502, body, .. } if body == b"dispatch failed: BadArgument"),
        "{outcome:?}"
    );
    let outcome = plugin
        .handle(action("dispatch-no-authority").header("x-cluster", "auth"))
        .await;
    assert!(
        matches!(&outcome, FilterOutcome::LocalReply { status: 502, body, .. } if body == b"dispatch failed: BadArgument"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_call_timeout_answers_504_like_envoys_async_client() {
    let addr = spawn_auth_server(200, Duration::from_secs(3)).await;
    let plugin = plugin_with_cluster(addr);
    let outcome = plugin
        .handle(
            action("dispatch")
                .header("x-cluster", "auth")
                .header("x-call-timeout-ms", "100"),
        )
        .await;
    assert_eq!(
        outcome.forwarded_header("x-call-status"),
        Some("504"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.forwarded_header("x-call-body"),
        Some("upstream request timeout")
    );
}

#[tokio::test]
async fn an_unreachable_cluster_answers_503() {
    // Bind and drop a listener to get a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let plugin = plugin_with_cluster(addr);
    let outcome = plugin
        .handle(action("dispatch").header("x-cluster", "auth"))
        .await;
    assert_eq!(
        outcome.forwarded_header("x-call-status"),
        Some("503"),
        "{outcome:?}"
    );
}
