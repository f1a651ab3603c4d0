//! The real kubegate.wasm under a host that misbehaves (tests/host `HostFaults`): header
//! writes that fail or silently do nothing, reads and other hostcalls that answer errors.
//! Whatever the host does, the filter never traps and never forwards a request that is not
//! exactly what its plan says: it refuses it (500, a Kubernetes Status) or, when even the
//! local reply fails, stops it.

mod common;
mod hostile;

use common::{example_config, spec, SA_TOKEN};
use hostile::{assert_clean_upstream, claims, sign};
use kubegate_host::{FilterOutcome, FilterRequest, HostFaults, Plugin};
use serde_json::Value;

fn bearer_header(token: &str) -> String {
    format!("Bearer {token}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn load_with(config: &Value, faults: HostFaults) -> Plugin {
    Plugin::load(kubegate_host::PluginSpec {
        faults,
        ..spec(config, 1)
    })
    .expect("kubegate.wasm loads")
}

/// A request that needs every kind of write: a client Authorization to replace, a
/// Proxy-Authorization, X-Remote-User and a session cookie to remove, identity to add
/// (strip mode, so a smuggled Impersonate-User must be removed too).
fn full_request(token: &str) -> FilterRequest {
    FilterRequest::new("GET", "/api/v1/namespaces/default/pods", hostile::HOST)
        .header("authorization", &bearer_header(token))
        .header("proxy-authorization", "Basic eDp5")
        .header("x-remote-user", "admin")
        .header("impersonate-user", "admin")
        .header(
            "cookie",
            &format!("theme=dark; {}={token}", hostile::SESSION_COOKIE),
        )
}

/// The outcome is a 500 Status naming no secret, and nothing went upstream.
fn assert_refused_500(outcome: &FilterOutcome, token: &str, what: &str) {
    match outcome {
        FilterOutcome::LocalReply { status, body, .. } => {
            assert_eq!(*status, 500, "{what}");
            let body: Value = serde_json::from_slice(body).expect("a Status body");
            assert_eq!(body["kind"], "Status", "{what}");
            assert_eq!(body["reason"], "InternalError", "{what}");
            let text = body.to_string();
            assert!(!text.contains(token) && !text.contains(SA_TOKEN), "{what}");
        }
        other => panic!("{what}: expected a 500 local reply, got {other:?}"),
    }
}

fn assert_not_forwarded(outcome: &FilterOutcome, what: &str) {
    assert!(
        !matches!(outcome, FilterOutcome::Forward { .. }),
        "{what}: the request was forwarded: {outcome:?}"
    );
}

fn assert_no_trap(plugin: &Plugin, what: &str) {
    let traps: Vec<String> = plugin
        .logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.contains("fail closed") || m.contains("trapped") || m.contains("panicked"))
        .collect();
    assert!(traps.is_empty(), "{what}: the filter trapped: {traps:?}");
}

fn logged(plugin: &Plugin, text: &str) -> bool {
    plugin.logs().iter().any(|l| l.message.contains(text))
}

#[tokio::test]
async fn the_positive_control_passes_on_a_well_behaved_host() {
    let plugin = load_with(&hostile::config(), HostFaults::default());
    let c = claims("alice@example.com", &["dev"], now());
    let t = sign(&c);
    match plugin.handle(full_request(&t)).await {
        FilterOutcome::Forward { headers, .. } => {
            assert_clean_upstream(&headers, SA_TOKEN, &c, Some(&t));
            assert!(!headers.iter().any(|(n, _)| n == "x-remote-user"));
        }
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[tokio::test]
async fn header_writes_that_fail_refuse_the_request_whatever_the_status() {
    let c = claims("alice@example.com", &["dev"], now());
    let t = sign(&c);
    // BadArgument (Envoy's answer for a map that is gone), NotFound, InternalFailure, and
    // numbers no ABI version defines.
    for status in [2, 1, 10, 12, 99, u32::MAX] {
        let faults = HostFaults::failing(&HostFaults::HEADER_WRITES).with_status(status);
        let plugin = load_with(&hostile::config(), faults);
        let outcome = plugin.handle(full_request(&t)).await;
        assert_refused_500(&outcome, &t, &format!("status {status}"));
        assert_no_trap(&plugin, &format!("status {status}"));
        assert!(logged(&plugin, "decision=internal_error"));
        assert_eq!(plugin.metric("kubegate.requests.internal_errors"), Some(1));
        assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(0));
    }
}

#[tokio::test]
async fn each_kind_of_header_write_failing_or_silently_ignored_alone_is_caught() {
    let c = claims("alice@example.com", &["dev"], now());
    let t = sign(&c);
    for name in HostFaults::HEADER_WRITES {
        if name == "proxy_set_header_map_pairs" {
            continue; // kubegate never replaces the whole map
        }
        for (mode, faults) in [
            ("failing", HostFaults::failing(&[name])),
            ("ignored", HostFaults::ignoring(&[name])),
        ] {
            let what = format!("{name} {mode}");
            let plugin = load_with(&hostile::config(), faults);
            let outcome = plugin.handle(full_request(&t)).await;
            assert_refused_500(&outcome, &t, &what);
            assert_no_trap(&plugin, &what);
        }
    }
}

#[tokio::test]
async fn header_writes_that_silently_do_nothing_are_caught_by_the_read_back() {
    let c = claims("alice@example.com", &["dev"], now());
    let t = sign(&c);
    let plugin = load_with(
        &hostile::config(),
        HostFaults::ignoring(&HostFaults::HEADER_WRITES),
    );
    // Even a request with nothing to remove lacks the identity the plan adds.
    for request in [
        full_request(&t),
        FilterRequest::new("GET", "/api/v1/namespaces/default/pods", hostile::HOST)
            .header("authorization", &bearer_header(&t)),
    ] {
        let outcome = plugin.handle(request).await;
        assert_refused_500(&outcome, &t, "ignored writes");
    }
    assert!(logged(
        &plugin,
        "the rewritten headers are not what kubegate set"
    ));
    assert_no_trap(&plugin, "ignored writes");
}

#[tokio::test]
async fn a_request_whose_headers_cannot_be_read_is_refused() {
    let t = sign(&claims("alice@example.com", &["dev"], now()));
    for (mode, faults) in [
        (
            "failing",
            HostFaults::failing(&["proxy_get_header_map_pairs"]),
        ),
        // Ok without an answer: an empty request, which has no route and no token.
        (
            "ignored",
            HostFaults::ignoring(&["proxy_get_header_map_pairs"]),
        ),
    ] {
        let plugin = load_with(&hostile::config(), faults);
        let outcome = plugin.handle(full_request(&t)).await;
        assert_not_forwarded(&outcome, mode);
        if mode == "failing" {
            assert_refused_500(&outcome, &t, mode);
        }
        assert_no_trap(&plugin, mode);
    }
}

#[tokio::test]
async fn properties_that_cannot_be_read_refuse_a_route_bound_to_its_clusters() {
    let t = sign(&claims("alice@example.com", &["dev"], now()));
    for (mode, faults) in [
        ("failing", HostFaults::failing(&["proxy_get_property"])),
        ("ignored", HostFaults::ignoring(&["proxy_get_property"])),
    ] {
        let plugin = load_with(&hostile::config(), faults);
        let outcome = plugin.handle(full_request(&t)).await;
        assert_refused_500(&outcome, &t, mode);
        assert_no_trap(&plugin, mode);
    }
    // Without upstream_clusters nothing needs the property: the request passes (and a
    // source_ip criterion would be false).
    let mut config = hostile::config();
    config["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("upstream_clusters");
    let plugin = load_with(&config, HostFaults::failing(&["proxy_get_property"]));
    let outcome = plugin.handle(full_request(&t)).await;
    assert!(
        matches!(outcome, FilterOutcome::Forward { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn failing_logs_metrics_and_timers_change_nothing() {
    let c = claims("alice@example.com", &["dev"], now());
    let t = sign(&c);
    let faults = HostFaults::failing(&[
        "proxy_log",
        "proxy_define_metric",
        "proxy_increment_metric",
        "proxy_record_metric",
        "proxy_set_tick_period_milliseconds",
        "proxy_register_shared_queue",
        "proxy_get_shared_data",
        "proxy_set_shared_data",
    ]);
    let plugin = load_with(&hostile::config(), faults);
    match plugin.handle(full_request(&t)).await {
        FilterOutcome::Forward { headers, .. } => {
            assert_clean_upstream(&headers, SA_TOKEN, &c, Some(&t))
        }
        other => panic!("expected a forward, got {other:?}"),
    }
    let outcome = plugin
        .handle(FilterRequest::new("GET", "/api", hostile::HOST))
        .await;
    assert!(matches!(
        outcome,
        FilterOutcome::LocalReply { status: 401, .. }
    ));
}

#[tokio::test]
async fn a_clock_that_cannot_be_read_refuses_tokens() {
    let t = sign(&claims("alice@example.com", &["dev"], now()));
    let plugin = load_with(
        &hostile::config(),
        HostFaults::failing(&["proxy_get_current_time_nanoseconds"]),
    );
    // The time reads as 0 (1970): every real token is from the future, so it is refused.
    let outcome = plugin.handle(full_request(&t)).await;
    assert!(
        matches!(outcome, FilterOutcome::LocalReply { status: 401, .. }),
        "{outcome:?}"
    );
    assert_no_trap(&plugin, "clock");
}

#[tokio::test]
async fn a_refusal_the_proxy_will_not_send_still_never_forwards() {
    let t = sign(&claims("alice@example.com", &["dev"], now()));
    let mut s = spec(&hostile::config(), 1);
    s.faults = HostFaults::failing(&["proxy_send_local_response"]);
    s.pause_timeout = std::time::Duration::from_millis(500);
    let plugin = Plugin::load(s).unwrap();
    // A 401 (no token), a 403 (client impersonation in refuse mode would be another
    // config; here policy) and a 500 (misrouted).
    for request in [
        FilterRequest::new("GET", "/api/v1/namespaces/default/pods", hostile::HOST),
        FilterRequest::new("DELETE", "/api/v1/namespaces/default/pods/x", hostile::HOST)
            .header("authorization", &bearer_header(&t)),
        full_request(&t).upstream_cluster("elsewhere"),
    ] {
        let outcome = plugin.handle(request).await;
        assert_not_forwarded(&outcome, "send_local_response failing");
    }
    assert!(logged(&plugin, "the proxy refused the local reply"));
    assert_no_trap(&plugin, "send_local_response failing");
    // Neither the reply nor the reset: the request stays stopped until the proxy's timeout.
    let mut s = spec(&hostile::config(), 1);
    s.faults = HostFaults::failing(&["proxy_send_local_response", "proxy_close_stream"]);
    s.pause_timeout = std::time::Duration::from_millis(300);
    let plugin = Plugin::load(s).unwrap();
    let outcome = plugin
        .handle(FilterRequest::new("GET", "/api", hostile::HOST))
        .await;
    assert_not_forwarded(&outcome, "send_local_response and close_stream failing");
    assert_no_trap(&plugin, "send_local_response and close_stream failing");
}

#[tokio::test]
async fn a_configuration_the_proxy_will_not_hand_over_refuses_the_plugin_without_a_trap() {
    for faults in [
        HostFaults::failing(&["proxy_get_buffer_bytes"]),
        HostFaults::ignoring(&["proxy_get_buffer_bytes"]),
    ] {
        let s = kubegate_host::PluginSpec {
            faults,
            print_logs: false,
            ..spec(&example_config("dev.json"), 1)
        };
        let error = format!("{:#}", Plugin::load(s).expect_err("refused"));
        assert!(error.contains("configuration refused"), "{error}");
        assert!(
            !error.contains("trap") && !error.contains("panicked"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn every_hostcall_failing_at_once_never_traps_and_never_forwards() {
    let t = sign(&claims("alice@example.com", &["dev"], now()));
    // Everything a request touches, apart from reading its headers (without which it is
    // refused before anything else, see above).
    let mut s = spec(&hostile::config(), 1);
    s.faults = HostFaults::failing(&[
        "proxy_log",
        "proxy_get_property",
        "proxy_get_current_time_nanoseconds",
        "proxy_add_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_increment_metric",
        "proxy_define_metric",
        "proxy_send_local_response",
        "proxy_continue_stream",
    ]);
    s.pause_timeout = std::time::Duration::from_millis(300);
    let plugin = Plugin::load(s).unwrap();
    for request in [
        full_request(&t),
        FilterRequest::new("GET", "/api", hostile::HOST),
        full_request(&t).header("impersonate-group", "system:masters"),
    ] {
        let outcome = plugin.handle(request).await;
        assert_not_forwarded(&outcome, "every hostcall failing");
    }
    assert_no_trap(&plugin, "every hostcall failing");
}
