//! Every hostcall family against a real filter built with the proxy-wasm Rust
//! SDK 0.2 (tests/host/testdata-filter).

mod common;

use common::{action, test_spec, wait_until};
use kubegate_host::{
    FilterOutcome, FilterRequest, FilterResponse, LogLevel, ManualClock, Plugin, PluginSpec,
};
use std::time::{Duration, UNIX_EPOCH};

fn forwarded(outcome: &FilterOutcome) -> &Vec<(String, String)> {
    match outcome {
        FilterOutcome::Forward { headers, .. } => headers,
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn header<'a>(outcome: &'a FilterOutcome, name: &str) -> &'a str {
    outcome
        .forwarded_header(name)
        .unwrap_or_else(|| panic!("no forwarded header {name} in {outcome:?}"))
}

#[tokio::test]
async fn first_value_only_from_get_but_every_pair_from_get_pairs() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let request = action("headers")
        .header("x-dup", "first")
        .header("X-Other", "o")
        .header("x-dup", "second");
    let outcome = plugin.handle(request).await;
    assert_eq!(header(&outcome, "x-dup-first"), "first");
    assert_eq!(header(&outcome, "x-dup-all"), "first|second");
    assert_eq!(header(&outcome, "x-missing"), "none");
    let order = header(&outcome, "x-header-order");
    assert!(
        order.starts_with(":method,:path,:authority,:scheme,x-test-action,x-dup,x-other,x-dup"),
        "pseudo-headers first, names lower case, order kept: {order}"
    );
}

#[tokio::test]
async fn add_replace_remove_and_path_rewrite() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let request = action("mutate")
        .header("x-replace", "old1")
        .header("x-replace", "old2")
        .header("x-remove", "a")
        .header("x-remove", "b")
        .header("x-multi", "first");
    let outcome = plugin.handle(request).await;
    let headers = forwarded(&outcome);
    let values = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values("x-replace"),
        vec!["new"],
        "replace leaves exactly one value"
    );
    assert!(values("x-remove").is_empty(), "remove drops every value");
    assert_eq!(values("x-multi"), vec!["first", "second"], "add appends");
    assert_eq!(values("x-added"), vec!["1"]);
    assert_eq!(values(":path"), vec!["/rewritten?by=filter"]);
    assert_eq!(headers[0].0, ":method", "pseudo-headers stay in front");
}

#[tokio::test]
async fn set_pairs_replaces_the_whole_map() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let outcome = plugin
        .handle(action("set-pairs").header("x-gone", "1"))
        .await;
    let names: Vec<&str> = forwarded(&outcome)
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        vec![":method", ":path", ":authority", ":scheme", "x-only"]
    );
    assert_eq!(header(&outcome, ":path"), "/replaced");
}

#[tokio::test]
async fn local_reply_ends_the_stream_and_passes_the_response_callbacks() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let outcome = plugin.handle(action("local-reply")).await;
    let FilterOutcome::LocalReply {
        status,
        headers,
        body,
    } = outcome
    else {
        panic!("expected a local reply, got {outcome:?}");
    };
    assert_eq!(status, 403);
    assert_eq!(body, b"denied by filter");
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("x-reason"), Some("denied"));
    assert_eq!(get("content-type"), Some("text/plain"));
    assert_eq!(get("content-length"), Some("16"));
    // Envoy sends the local reply through this filter's on_response_headers.
    assert_eq!(get("x-response-filtered"), Some("1"));
}

#[tokio::test]
async fn a_local_reply_wins_even_when_the_callback_returns_continue() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let outcome = plugin.handle(action("local-reply-continue")).await;
    assert!(
        matches!(outcome, FilterOutcome::LocalReply { status: 401, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_paused_request_that_nobody_resumes_fails_closed() {
    let mut spec = test_spec("");
    spec.pause_timeout = Duration::from_millis(300);
    let plugin = Plugin::load(spec).unwrap();
    let outcome = plugin.handle(action("pause-forever")).await;
    assert!(
        matches!(outcome, FilterOutcome::Failed { status: 503, .. }),
        "{outcome:?}"
    );
    // The host keeps serving.
    let next = plugin.handle(action("headers")).await;
    assert!(matches!(next, FilterOutcome::Forward { .. }), "{next:?}");
}

#[tokio::test]
async fn a_trap_fails_the_request_closed_and_a_fresh_vm_serves_the_next() {
    let plugin = Plugin::load(test_spec("greeting=hi")).unwrap();
    let warm = plugin.handle(action("headers")).await;
    assert_eq!(header(&warm, "x-vm-requests"), "1");
    let outcome = plugin.handle(action("trap")).await;
    let FilterOutcome::Failed { status, reason } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(status, 500);
    assert!(reason.contains("trapped"), "{reason}");
    let next = plugin.handle(action("headers")).await;
    // A new VM: its per-VM counter restarted, and it was configured again.
    assert_eq!(header(&next, "x-vm-requests"), "1");
    assert_eq!(header(&next, "x-greeting"), "hi");
    let logs = plugin.logs();
    assert!(
        logs.iter()
            .any(|l| l.level == LogLevel::Critical && l.message.contains("asked to trap")),
        "{logs:?}"
    );
    assert!(logs
        .iter()
        .any(|l| l.message.contains("failed, streams fail closed")));
}

#[tokio::test]
async fn trap_status_can_be_envoys_503() {
    let mut spec = test_spec("");
    spec.trap_status = 503;
    let plugin = Plugin::load(spec).unwrap();
    let outcome = plugin.handle(action("trap")).await;
    assert!(
        matches!(outcome, FilterOutcome::Failed { status: 503, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn on_configure_false_refuses_the_plugin() {
    let error = Plugin::load(test_spec("reject")).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("on_configure returned false"), "{message}");
    let error = Plugin::load(test_spec("trap_on_configure")).unwrap_err();
    assert!(
        format!("{error:#}").contains("proxy_on_configure trapped"),
        "{error:#}"
    );
}

#[tokio::test]
async fn on_vm_start_false_refuses_the_plugin() {
    let mut spec = test_spec("");
    spec.vm_configuration = b"fail_vm_start".to_vec();
    let error = Plugin::load(spec).unwrap_err();
    assert!(
        format!("{error:#}").contains("on_vm_start returned false"),
        "{error:#}"
    );
}

#[tokio::test]
async fn reconfigure_takes_a_good_configuration_and_refuses_a_bad_one() {
    let mut spec = test_spec("greeting=hello");
    spec.vms = 2;
    let plugin = Plugin::load(spec).unwrap();
    assert_eq!(
        header(&plugin.handle(action("")).await, "x-greeting"),
        "hello"
    );

    let refused = plugin.reconfigure("reject").unwrap_err();
    assert!(format!("{refused:#}").contains("refused"), "{refused:#}");
    for _ in 0..2 {
        assert_eq!(
            header(&plugin.handle(action("")).await, "x-greeting"),
            "hello"
        );
    }

    plugin.reconfigure("greeting=bye").unwrap();
    for _ in 0..2 {
        let outcome = plugin.handle(action("")).await;
        assert_eq!(header(&outcome, "x-greeting"), "bye");
        assert_eq!(
            header(&outcome, "x-vm-requests"),
            "1",
            "fresh VMs serve the new configuration"
        );
    }
}

#[tokio::test]
async fn environment_comes_only_from_the_configured_env() {
    std::env::set_var("KUBEGATE_HOST_TEST_SECRET", "from-the-host");
    let mut spec = test_spec("");
    spec.env = vec![("SA_TOKEN".to_string(), "token-value".to_string())];
    let plugin = Plugin::load(spec).unwrap();
    let outcome = plugin
        .handle(action("env").header("x-env-name", "SA_TOKEN"))
        .await;
    assert_eq!(header(&outcome, "x-env-value"), "token-value");
    assert_eq!(header(&outcome, "x-env-count"), "1");
    let outcome = plugin
        .handle(action("env").header("x-env-name", "KUBEGATE_HOST_TEST_SECRET"))
        .await;
    assert_eq!(header(&outcome, "x-env-value"), "<unset>");
    let outcome = plugin
        .handle(action("env").header("x-env-name", "PATH"))
        .await;
    assert_eq!(header(&outcome, "x-env-value"), "<unset>");
}

#[tokio::test]
async fn properties_have_envoys_names_and_encodings() {
    let mut spec = test_spec("");
    spec.name = "kubegate_filter".to_string();
    let plugin = Plugin::load(spec).unwrap();
    let mut request = FilterRequest::new("POST", "/apis/x/y?watch=1", "k8s.example.com:8443")
        .header("x-test-action", "props")
        .header("x-request-id", "rid-1")
        .header("user-agent", "kubectl/v1.32")
        .body("{}");
    request.source = "127.0.0.1:51234".parse().unwrap();
    request.destination = "127.0.0.1:8443".parse().unwrap();
    request.protocol = "HTTP/2".to_string();
    let outcome = plugin.handle(request).await;
    let prop = |name: &str| header(&outcome, &format!("x-prop-{name}")).to_string();
    assert_eq!(prop("request-path"), "/apis/x/y?watch=1");
    assert_eq!(prop("request-url_path"), "/apis/x/y");
    assert_eq!(prop("request-host"), "k8s.example.com:8443");
    assert_eq!(prop("request-method"), "POST");
    assert_eq!(prop("request-scheme"), "https");
    assert_eq!(prop("request-protocol"), "HTTP/2");
    assert_eq!(prop("request-id"), "rid-1");
    assert_eq!(prop("source-address"), "127.0.0.1:51234");
    assert_eq!(prop("source-port"), "51234");
    assert_eq!(prop("destination-address"), "127.0.0.1:8443");
    assert_eq!(prop("plugin_name"), "kubegate_filter");
    assert_eq!(prop("plugin_root_id"), "test_root");
    assert_eq!(prop("plugin_vm_id"), "test_vm");
    assert_eq!(prop("node-id"), "kubegate-host");
    assert_eq!(prop("connection-mtls"), "false");
    assert_eq!(prop("user-agent"), "kubectl/v1.32");
    assert_eq!(
        prop("no_such-property"),
        "<none>",
        "unknown property is NotFound, not a trap"
    );
}

#[tokio::test]
async fn shared_data_cas_is_shared_across_vms() {
    let mut spec = test_spec("");
    spec.vms = 2;
    let plugin = Plugin::load(spec).unwrap();
    let set = |value: &str, cas: Option<u32>| {
        let mut request = action("shared-set")
            .header("x-key", "k")
            .header("x-value", value);
        if let Some(cas) = cas {
            request = request.header("x-cas", &cas.to_string());
        }
        request
    };
    // Requests alternate between the two VMs (round robin).
    let first = plugin.handle(set("v1", None)).await; // VM 0
    assert_eq!(header(&first, "x-shared-result"), "ok");
    let read = plugin
        .handle(action("shared-get").header("x-key", "k"))
        .await; // VM 1
    assert_eq!(
        header(&read, "x-shared-value"),
        "v1",
        "VM 1 sees VM 0's write"
    );
    let cas: u32 = header(&read, "x-shared-cas").parse().unwrap();
    let update = plugin.handle(set("v2", Some(cas))).await; // VM 0
    assert_eq!(header(&update, "x-shared-result"), "ok");
    let stale = plugin.handle(set("v3", Some(cas))).await; // VM 1
    assert_eq!(header(&stale, "x-shared-result"), "CasMismatch");
    assert_eq!(plugin.shared_data("k").as_deref(), Some(&b"v2"[..]));
    let vm_counts: Vec<String> = [first, read, update, stale]
        .iter()
        .map(|o| header(o, "x-vm-requests").to_string())
        .collect();
    assert_eq!(vm_counts, vec!["1", "1", "2", "2"], "two VMs took turns");
}

#[tokio::test]
async fn tick_fires_on_the_root_context() {
    let plugin = Plugin::load(test_spec("tick_ms=20")).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || plugin
            .metric("test_ticks_total")
            .unwrap_or(0)
            >= 3),
        "ticks: {:?}",
        plugin.metric("test_ticks_total")
    );
    let ticks: u64 = String::from_utf8(plugin.shared_data("ticks").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(ticks >= 3);
}

#[tokio::test]
async fn metrics_are_readable_from_the_host() {
    let mut spec = test_spec("");
    spec.vms = 2;
    let plugin = Plugin::load(spec).unwrap();
    for _ in 0..3 {
        plugin.handle(action("")).await;
    }
    let outcome = plugin.handle(action("metrics")).await;
    assert_eq!(
        header(&outcome, "x-metric-requests"),
        "4",
        "one counter across both VMs"
    );
    assert_eq!(
        header(&outcome, "x-metric-negative-counter"),
        "Err(BadArgument)"
    );
    assert_eq!(plugin.metric("test_requests_total"), Some(4));
    assert_eq!(plugin.metric("test_gauge"), Some(3));
    assert_eq!(
        plugin.metric_details("test_histogram").unwrap().samples,
        vec![42]
    );
    assert_eq!(plugin.metric("no_such_metric"), None);
}

#[tokio::test]
async fn the_clock_can_be_set_by_the_test() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let mut spec = test_spec("");
    spec.clock = Some(clock.clock());
    let plugin = Plugin::load(spec).unwrap();
    let outcome = plugin.handle(action("time")).await;
    assert_eq!(header(&outcome, "x-time-nanos"), "1700000000000000000");
    clock.advance(Duration::from_secs(5));
    let outcome = plugin.handle(action("time")).await;
    assert_eq!(header(&outcome, "x-time-nanos"), "1700000005000000000");
}

#[tokio::test]
async fn logs_follow_the_level_and_stdout_becomes_log_lines() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let outcome = plugin.handle(action("log")).await;
    assert_eq!(header(&outcome, "x-log-level"), "Ok(\"Info\")");
    let logs = plugin.logs();
    let has =
        |level: LogLevel, text: &str| logs.iter().any(|l| l.level == level && l.message == text);
    assert!(has(LogLevel::Info, "info line"));
    assert!(has(LogLevel::Warn, "warn line"));
    assert!(has(LogLevel::Error, "error line"));
    assert!(has(LogLevel::Info, "stdout line"), "{logs:?}");
    assert!(has(LogLevel::Error, "stderr line"));
    assert!(
        !logs
            .iter()
            .any(|l| l.message == "debug line" || l.message == "trace line"),
        "below info is dropped"
    );
    assert!(
        wait_until(Duration::from_secs(5), || plugin
            .logs()
            .iter()
            .any(
                |l| l.message.starts_with("access ") && l.message.contains("/api/v1/pods")
            )),
        "on_log ran and read the final request headers"
    );

    let mut spec = test_spec("");
    spec.log_level = LogLevel::Trace;
    let verbose = Plugin::load(spec).unwrap();
    verbose.handle(action("log")).await;
    assert!(verbose
        .logs()
        .iter()
        .any(|l| l.level == LogLevel::Trace && l.message == "trace line"));
}

#[tokio::test]
async fn request_body_is_buffered_and_rewritten() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let mut stream = plugin.open_stream(kubegate_host::StreamInfo::default());
    let request = action("body-upper");
    let headers = kubegate_host::HeaderMap::from_pairs(
        request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    assert!(matches!(
        stream.request_headers(headers, false).await,
        kubegate_host::HeadersVerdict::Continue(_)
    ));
    assert_eq!(
        stream.request_body(b"hello ".to_vec(), false).await,
        kubegate_host::BodyVerdict::Buffered
    );
    assert_eq!(
        stream.request_body(b"world".to_vec(), true).await,
        kubegate_host::BodyVerdict::Continue(b"HELLO WORLD".to_vec())
    );
}

#[tokio::test]
async fn body_can_be_refused_after_buffering() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let outcome = plugin
        .handle(action("body-deny").body("please forbid this"))
        .await;
    assert!(
        matches!(outcome, FilterOutcome::LocalReply { status: 403, .. }),
        "{outcome:?}"
    );
    let outcome = plugin.handle(action("body-deny").body("fine")).await;
    assert!(
        matches!(&outcome, FilterOutcome::Forward { body, .. } if body == b"fine"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn response_callbacks_modify_headers_and_body() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let response = FilterResponse {
        status: 200,
        headers: vec![
            ("x-upstream-secret".to_string(), "s".to_string()),
            ("content-type".to_string(), "text/plain".to_string()),
        ],
        body: b"pods".to_vec(),
    };
    let (outcome, client) = plugin
        .handle_with_response(action("response-body-upper"), response)
        .await;
    assert!(matches!(outcome, FilterOutcome::Forward { .. }));
    let client = client.unwrap();
    assert_eq!(client.status, 200);
    assert_eq!(client.header("x-response-filtered"), Some("1"));
    assert_eq!(client.header("x-upstream-secret"), None);
    assert_eq!(client.body, b"PODS");
}

#[tokio::test]
async fn request_headers_are_gone_in_the_response_phase_as_in_envoy() {
    // Envoy drops its request header map once the request continued; the SDK
    // then panics on BadArgument, which fails the stream closed.
    let plugin = Plugin::load(test_spec("")).unwrap();
    let response = FilterResponse {
        status: 200,
        headers: vec![],
        body: vec![],
    };
    let (_, client) = plugin
        .handle_with_response(action("response-read-request"), response)
        .await;
    assert_eq!(client.unwrap().status, 500);
}

#[tokio::test]
async fn shared_queue_delivers_to_the_root_context() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    let outcome = plugin
        .handle(action("enqueue").header("x-value", "item-1"))
        .await;
    assert_eq!(header(&outcome, "x-enqueue"), "Ok(())");
    assert!(wait_until(Duration::from_secs(5), || plugin
        .shared_data("dequeued")
        .is_some()));
    assert_eq!(plugin.shared_data("dequeued").unwrap(), b"item-1");
}

#[tokio::test]
async fn random_get_serves_std_hashmaps() {
    let plugin = Plugin::load(test_spec("")).unwrap();
    assert_eq!(
        header(&plugin.handle(action("random")).await, "x-random"),
        "1"
    );
}

#[tokio::test]
async fn a_missing_module_or_one_without_the_abi_is_refused() {
    let spec = PluginSpec {
        wasm_path: "/nonexistent/filter.wasm".into(),
        ..PluginSpec::default()
    };
    assert!(Plugin::load(spec).is_err());
    let spec = PluginSpec {
        wasm_bytes: Some(b"(module (memory (export \"memory\") 1))".to_vec()),
        ..PluginSpec::default()
    };
    let error = Plugin::load(spec).unwrap_err();
    assert!(format!("{error:#}").contains("ABI version"), "{error:#}");
}
