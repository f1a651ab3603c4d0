//! The real kubegate.wasm tells the proxy what it decided: five filter state values set with
//! `proxy_set_property` (Envoy keeps them as `wasm.kubegate.*`, for access logs), on allowed
//! and on refused requests, never a token; and, with `"decision_log": "audit_json"`, one JSON
//! line per decision shaped like a Kubernetes audit event.

mod common;

use common::{example_config, load, SA_TOKEN};
use kubegate_host::{HeaderMap, HeadersVerdict, Plugin, StreamInfo};
use kubegate_testkit::tokens::{now, SessionClaims, Signer};
use serde_json::Value;
use std::collections::BTreeMap;

fn token(email: &str, groups: &[&str]) -> String {
    Signer::dev()
        .unwrap()
        .sign(&SessionClaims::dev(email, groups, now()))
        .unwrap()
}

/// Runs one request's headers through a stream and reads the filter state it left, as an
/// access log would at the end of the stream.
async fn decide(
    plugin: &Plugin,
    path: &str,
    token: Option<&str>,
) -> (bool, BTreeMap<String, String>) {
    let mut pairs = vec![
        (":method", "GET".to_string()),
        (":path", path.to_string()),
        (":authority", "localhost:8443".to_string()),
        (":scheme", "https".to_string()),
        ("x-request-id", "7f0c2d7e-0001".to_string()),
    ];
    if let Some(token) = token {
        pairs.push(("authorization", format!("Bearer {token}")));
    }
    let headers = HeaderMap::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_bytes())));
    let mut stream = plugin.open_stream(StreamInfo::default());
    let forwarded = match stream.request_headers(headers, true).await {
        HeadersVerdict::Continue(_) => true,
        HeadersVerdict::LocalReply(_) => false,
        HeadersVerdict::Failed(failure) => panic!("failed: {failure:?}"),
    };
    let state = stream.filter_state().await;
    stream.finish();
    (forwarded, state)
}

fn assert_no_token(token: &str, texts: &[&str]) {
    for text in texts {
        assert!(!text.contains(SA_TOKEN), "{text}");
        for part in token.split('.').filter(|p| p.len() >= 8) {
            assert!(!text.contains(part), "a piece of the token in {text}");
        }
    }
}

const PODS: &str = "/api/v1/namespaces/default/pods?limit=500";

#[tokio::test]
async fn allowed_and_refused_requests_leave_who_and_what_in_filter_state() {
    let plugin = load(&example_config("dev.json"));

    let good = token("someuser@example.com", &["developers", "oncall"]);
    let (forwarded, state) = decide(&plugin, PODS, Some(&good)).await;
    assert!(forwarded);
    assert_eq!(
        state.get("kubegate.user").map(String::as_str),
        Some("someuser@example.com")
    );
    assert_eq!(
        state.get("kubegate.groups").map(String::as_str),
        Some("developers,oncall")
    );
    assert_eq!(
        state.get("kubegate.decision").map(String::as_str),
        Some("allowed")
    );
    assert_eq!(
        state.get("kubegate.route").map(String::as_str),
        Some("https://localhost")
    );
    assert!(state.contains_key("kubegate.reason"));
    assert_eq!(state.len(), 5, "{state:?}");
    assert_no_token(
        &good,
        &state.values().map(String::as_str).collect::<Vec<_>>(),
    );

    // Refused by the policy: the user is known and recorded with the refusal.
    let outsider = token("mallory@evil.example", &["developers"]);
    let (forwarded, state) = decide(&plugin, PODS, Some(&outsider)).await;
    assert!(!forwarded);
    assert_eq!(
        state.get("kubegate.user").map(String::as_str),
        Some("mallory@evil.example")
    );
    assert_eq!(
        state.get("kubegate.groups").map(String::as_str),
        Some("developers")
    );
    assert_eq!(
        state.get("kubegate.decision").map(String::as_str),
        Some("forbidden")
    );
    assert_eq!(
        state.get("kubegate.route").map(String::as_str),
        Some("https://localhost")
    );
    assert!(!state["kubegate.reason"].is_empty());
    assert_no_token(
        &outsider,
        &state.values().map(String::as_str).collect::<Vec<_>>(),
    );

    // Refused before anyone is known: set all the same, the user empty.
    let (forwarded, state) = decide(&plugin, PODS, None).await;
    assert!(!forwarded);
    assert_eq!(state.get("kubegate.user").map(String::as_str), Some(""));
    assert_eq!(
        state.get("kubegate.decision").map(String::as_str),
        Some("unauthenticated")
    );
    assert!(state["kubegate.reason"].contains("no session token"));

    let mut tampered = good.clone();
    tampered.truncate(good.len() - 6);
    tampered.push_str("AAAAAA");
    let (forwarded, state) = decide(&plugin, PODS, Some(&tampered)).await;
    assert!(!forwarded);
    assert_eq!(
        state.get("kubegate.decision").map(String::as_str),
        Some("unauthenticated")
    );
    assert_no_token(
        &tampered,
        &state.values().map(String::as_str).collect::<Vec<_>>(),
    );

    // The text line stays the default.
    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    assert!(logs
        .iter()
        .any(|l| l.starts_with("kubegate: decision=allowed user=\"someuser@example.com\"")));
    assert!(!logs.iter().any(|l| l.starts_with('{')));
}

#[tokio::test]
async fn audit_json_writes_one_kubernetes_audit_event_per_decision() {
    let mut config = example_config("dev.json");
    config["decision_log"] = Value::String("audit_json".into());
    let plugin = load(&config);
    let good = token("someuser@example.com", &["developers"]);
    let outsider = token("mallory@evil.example", &[]);
    assert!(
        decide(
            &plugin,
            "/api/v1/namespaces/default/pods/web-1/log?follow=true",
            Some(&good)
        )
        .await
        .0
    );
    assert!(
        !decide(
            &plugin,
            "/apis/apps/v1/namespaces/prod/deployments/web",
            Some(&outsider)
        )
        .await
        .0
    );

    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    let events: Vec<Value> = logs
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 2, "{logs:?}");
    assert!(
        !logs.iter().any(|l| l.contains("decision=")),
        "no text line as well"
    );

    let allowed = &events[0];
    assert_eq!(allowed["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(allowed["auditID"], "7f0c2d7e-0001");
    assert_eq!(allowed["verb"], "get");
    assert_eq!(allowed["user"]["username"], "someuser@example.com");
    assert_eq!(allowed["user"]["groups"], serde_json::json!(["developers"]));
    assert_eq!(
        allowed["objectRef"],
        serde_json::json!({"resource": "pods", "namespace": "default", "name": "web-1", "apiVersion": "v1", "subresource": "log"})
    );
    assert_eq!(allowed["annotations"]["kubegate.io/decision"], "allowed");

    let refused = &events[1];
    assert_eq!(refused["user"]["username"], "mallory@evil.example");
    assert_eq!(refused["verb"], "get");
    assert_eq!(refused["objectRef"]["resource"], "deployments");
    assert_eq!(refused["objectRef"]["apiGroup"], "apps");
    assert_eq!(refused["objectRef"]["namespace"], "prod");
    assert_eq!(refused["responseStatus"]["code"], 403);
    assert_eq!(
        refused["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );

    let all: Vec<&str> = logs.iter().map(String::as_str).collect();
    assert_no_token(&good, &all);
    assert_no_token(&outsider, &all);
}
