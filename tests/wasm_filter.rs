//! The real kubegate.wasm in our proxy-wasm host (Envoy's semantics): what reaches the
//! upstream, what is answered locally, what is counted and logged.

mod common;

use common::{example_config, load, spec, SA_TOKEN};
use kubegate_host::{FilterOutcome, FilterRequest, Plugin};
use kubegate_testkit::tokens::{now, SessionClaims, Signer};
use serde_json::{json, Value};

fn token(email: &str, groups: &[&str]) -> String {
    Signer::dev()
        .unwrap()
        .sign(&SessionClaims::dev(email, groups, now()))
        .unwrap()
}

fn pods() -> FilterRequest {
    FilterRequest::new(
        "GET",
        "/api/v1/namespaces/default/pods?limit=500",
        "localhost:8443",
    )
}

fn forwarded(outcome: &FilterOutcome) -> &Vec<(String, String)> {
    match outcome {
        FilterOutcome::Forward { headers, .. } => headers,
        other => panic!("expected the request to be forwarded, got {other:?}"),
    }
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn local_reply(outcome: &FilterOutcome) -> (u16, Vec<(String, String)>, Value) {
    match outcome {
        FilterOutcome::LocalReply {
            status,
            headers,
            body,
        } => (
            *status,
            headers.clone(),
            serde_json::from_slice(body).unwrap(),
        ),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

#[tokio::test]
async fn allowed_request_reaches_upstream_as_the_service_account_impersonating_the_user() {
    let plugin = load(&example_config("dev.json"));
    let t = token("someuser@example.com", &["developers", "oncall"]);
    let outcome = plugin
        .handle(pods().header("authorization", &format!("Bearer {t}")))
        .await;
    let headers = forwarded(&outcome);
    assert_eq!(
        values(headers, "authorization"),
        vec![format!("Bearer {SA_TOKEN}")]
    );
    assert_eq!(
        values(headers, "impersonate-user"),
        vec!["someuser@example.com"]
    );
    assert_eq!(
        values(headers, "impersonate-group"),
        vec!["developers", "oncall"]
    );
    assert_eq!(
        values(headers, ":path"),
        vec!["/api/v1/namespaces/default/pods?limit=500"]
    );
    assert!(!headers.iter().any(|(_, v)| v.contains(&t)));
    assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(1));
    assert_eq!(plugin.metric("kubegate.jwt.cache_misses"), Some(1));
    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    let decision = logs
        .iter()
        .find(|l| l.contains("decision=allowed"))
        .expect("one decision line");
    assert!(decision.contains("someuser@example.com") && decision.contains("GET"));
    assert!(!logs.iter().any(|l| l.contains(&t) || l.contains(SA_TOKEN)));
}

#[tokio::test]
async fn client_impersonation_is_refused_by_default_before_any_token_work() {
    let plugin = load(&example_config("dev.json"));
    let t = token("someuser@example.com", &["developers"]);
    for name in [
        "Impersonate-User",
        "impersonate-group",
        "IMPERSONATE-UID",
        "Impersonate-Extra-Scopes",
        "impersonate-",
    ] {
        let outcome = plugin
            .handle(
                pods()
                    .header("authorization", &format!("Bearer {t}"))
                    .header(name, "system:masters")
                    .header(name, "admin"),
            )
            .await;
        let (status, _, body) = local_reply(&outcome);
        assert_eq!(status, 403, "{name}");
        assert_eq!(body["reason"], "Forbidden");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("--as") && message.contains("--as-group"),
            "{message}"
        );
        // The refusal names nothing the client sent.
        assert!(!message.contains("system:masters") && !message.contains("admin"));
    }
    // Refused before the token was looked at: nothing verified, nothing cached.
    assert_eq!(plugin.metric("kubegate.jwt.cache_misses"), Some(0));
    assert_eq!(plugin.metric("kubegate.requests.forbidden"), Some(5));
}

#[tokio::test]
async fn smuggled_identity_headers_in_any_case_and_repeated_are_stripped_in_strip_mode() {
    let mut config = example_config("dev.json");
    config["routes"][0]["client_impersonation"] = json!("strip");
    let plugin = load(&config);
    let t = token("someuser@example.com", &["developers"]);
    let request = pods()
        .header("authorization", &format!("Bearer {t}"))
        .header("Impersonate-User", "admin")
        .header("IMPERSONATE-GROUP", "system:masters")
        .header("impersonate-group", "system:masters")
        .header("Impersonate-Uid", "0")
        .header("impersonate-extra-scopes", "all")
        .header("Proxy-Authorization", "Basic eDp5");
    let outcome = plugin.handle(request).await;
    let headers = forwarded(&outcome);
    assert_eq!(
        values(headers, "impersonate-user"),
        vec!["someuser@example.com"]
    );
    assert_eq!(values(headers, "impersonate-group"), vec!["developers"]);
    for name in [
        "impersonate-uid",
        "impersonate-extra-scopes",
        "proxy-authorization",
    ] {
        assert!(values(headers, name).is_empty(), "{name} passed");
    }
}

#[tokio::test]
async fn front_proxy_and_configured_headers_never_reach_the_upstream() {
    let mut config = example_config("dev.json");
    config["strip_request_headers"] = json!(["X-Forwarded-Client-Cert", "x-internal-secret"]);
    let plugin = load(&config);
    let t = token("someuser@example.com", &["developers"]);
    let mut request = pods().header("authorization", &format!("Bearer {t}"));
    for name in [
        "X-Remote-User",
        "x-remote-user",
        "X-REMOTE-GROUP",
        "x-remote-group",
        "X-Remote-Extra-Scopes",
        "x-remote-extra-acme.com%2fproject",
        "x-forwarded-client-cert",
        "X-Internal-Secret",
    ] {
        request = request.header(name, "system:masters").header(name, "admin");
    }
    let outcome = plugin.handle(request.header("x-kept", "yes")).await;
    let headers = forwarded(&outcome);
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        assert!(
            !lower.starts_with("x-remote-")
                && lower != "x-forwarded-client-cert"
                && lower != "x-internal-secret",
            "{name}: {value} passed"
        );
    }
    assert_eq!(values(headers, "x-kept"), vec!["yes"]);
    assert_eq!(
        values(headers, "impersonate-user"),
        vec!["someuser@example.com"]
    );
}

#[tokio::test]
async fn the_service_account_token_goes_only_to_the_routes_clusters() {
    let plugin = load(&example_config("dev.json"));
    let t = token("someuser@example.com", &["developers"]);
    let request = || pods().header("authorization", &format!("Bearer {t}"));
    // dev.json binds the route to kube_apiserver, the host's default cluster.
    let outcome = plugin.handle(request()).await;
    assert_eq!(
        values(forwarded(&outcome), "authorization"),
        vec![format!("Bearer {SA_TOKEN}")]
    );
    for cluster in [
        "idp",
        "outbound|443||kubernetes.default.svc.cluster.local",
        "kube_apiserver2",
    ] {
        let outcome = plugin.handle(request().upstream_cluster(cluster)).await;
        let (status, _, body) = local_reply(&outcome);
        assert_eq!(status, 500, "{cluster}");
        assert_eq!(body["reason"], "InternalError");
        // The client is not told the cluster names; the log is.
        assert!(!body["message"].as_str().unwrap().contains(cluster));
    }
    assert_eq!(plugin.metric("kubegate.requests.internal_errors"), Some(3));
    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("decision=internal_error") && l.contains("\\\"idp\\\"")),
        "{logs:#?}"
    );

    // A proxy that does not say where the request goes: refused too.
    let mut s = spec(&example_config("dev.json"), 1);
    s.upstream_cluster = None;
    let plugin = Plugin::load(s).unwrap();
    let (status, _, _) = local_reply(&plugin.handle(request()).await);
    assert_eq!(status, 500);

    // Without upstream_clusters the cluster is not checked (and a note says so at load).
    let mut config = example_config("dev.json");
    config["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("upstream_clusters");
    let plugin = load(&config);
    let outcome = plugin.handle(request().upstream_cluster("anything")).await;
    assert_eq!(
        values(forwarded(&outcome), "authorization"),
        vec![format!("Bearer {SA_TOKEN}")]
    );
    assert!(plugin
        .logs()
        .iter()
        .any(|l| l.message.contains("has no upstream_clusters")));
}

#[tokio::test]
async fn one_route_without_from_is_a_warning_at_load() {
    let mut config = example_config("dev.json");
    config["routes"][0].as_object_mut().unwrap().remove("from");
    let plugin = load(&config);
    assert!(
        plugin
            .logs()
            .iter()
            .any(|l| l.level == kubegate_host::LogLevel::Warn
                && l.message.contains("routes[0] has no \"from\"")),
        "{:#?}",
        plugin.logs()
    );
}

#[tokio::test]
async fn reserved_prefixes_refuse_kubeadm_admins_by_default_and_are_configurable() {
    let plugin = load(&example_config("dev.json"));
    for groups in [
        &["kubeadm:cluster-admins"][..],
        &["dev", "KUBEADM:Cluster-Admins"],
    ] {
        let t = token("someuser@example.com", groups);
        let (status, _, body) = local_reply(
            &plugin
                .handle(pods().header("authorization", &format!("Bearer {t}")))
                .await,
        );
        assert_eq!(status, 403, "{groups:?}");
        assert!(body["message"].as_str().unwrap().contains("reserved"));
    }
    // A configured list replaces the default; system: stays whatever it says.
    let mut config = example_config("dev.json");
    config["reserved_name_prefixes"] = json!({"groups": ["corp-admins:"]});
    let plugin = load(&config);
    for (groups, allowed) in [
        (&["kubeadm:cluster-admins"][..], true),
        (&["corp-admins:root"][..], false),
        (&["system:masters"][..], false),
    ] {
        let t = token("someuser@example.com", groups);
        let outcome = plugin
            .handle(pods().header("authorization", &format!("Bearer {t}")))
            .await;
        match (&outcome, allowed) {
            (FilterOutcome::Forward { .. }, true) => {}
            (FilterOutcome::LocalReply { status: 403, .. }, false) => {}
            _ => panic!("{groups:?}: {outcome:?}"),
        }
    }
}

#[tokio::test]
async fn refusals_are_kubernetes_status_bodies_and_are_counted() {
    let plugin = load(&example_config("dev.json"));
    // No token: 401 without invalid_token.
    let (status, headers, body) = local_reply(&plugin.handle(pods()).await);
    assert_eq!(status, 401);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");
    assert_eq!(
        values(&headers, "www-authenticate"),
        vec!["Bearer realm=\"kubegate\""]
    );
    assert_eq!(values(&headers, "content-type"), vec!["application/json"]);

    // Foreign domain: 403 naming the user.
    let t = token("mallory@evil.example", &[]);
    let (status, _, body) = local_reply(
        &plugin
            .handle(pods().header("authorization", &format!("Bearer {t}")))
            .await,
    );
    assert_eq!(status, 403);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("mallory@evil.example"));

    // Garbage token: 401 invalid_token.
    let (status, headers, _) = local_reply(
        &plugin
            .handle(pods().header("authorization", "Bearer not.a.jwt"))
            .await,
    );
    assert_eq!(status, 401);
    assert!(values(&headers, "www-authenticate")[0].contains("invalid_token"));

    // Repeated Authorization (the second could be the real one): 401.
    let good = token("someuser@example.com", &[]);
    let (status, _, _) = local_reply(
        &plugin
            .handle(
                pods()
                    .header("authorization", "Bearer x.y.z")
                    .header("Authorization", &format!("Bearer {good}")),
            )
            .await,
    );
    assert_eq!(status, 401);

    // Unknown host: 404.
    let (status, _, body) = local_reply(
        &plugin
            .handle(
                FilterRequest::new("GET", "/api/v1/pods", "elsewhere.example.com")
                    .header("authorization", &format!("Bearer {good}")),
            )
            .await,
    );
    assert_eq!(status, 404);
    assert_eq!(body["reason"], "NotFound");

    assert_eq!(plugin.metric("kubegate.requests.unauthenticated"), Some(3));
    assert_eq!(plugin.metric("kubegate.requests.forbidden"), Some(1));
    assert_eq!(plugin.metric("kubegate.requests.not_found"), Some(1));
    assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(0));
}

#[tokio::test]
async fn discovery_refusals_are_text_so_kubectl_prints_them() {
    let plugin = load(&example_config("dev.json"));
    let t = token("mallory@evil.example", &[]);
    let discovery = FilterRequest::new("GET", "/api?timeout=32s", "localhost:8443")
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .header("authorization", &format!("Bearer {t}"));
    match plugin.handle(discovery).await {
        FilterOutcome::LocalReply {
            status,
            headers,
            body,
        } => {
            assert_eq!(status, 403);
            assert_eq!(
                values(&headers, "content-type"),
                vec!["text/plain; charset=utf-8"]
            );
            let text = String::from_utf8(body).unwrap();
            assert!(
                text.starts_with(
                    "kubegate: user \"mallory@evil.example\" is not allowed to GET /api"
                ),
                "{text}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(plugin.metric("kubegate.requests.forbidden"), Some(1));
}

#[tokio::test]
async fn upgrades_are_authorized_like_any_request() {
    let plugin = load(&example_config("dev.json"));
    let t = token("someuser@example.com", &[]);
    let exec =
        "/api/v1/namespaces/default/pods/nginx-1/exec?command=sh&stdin=true&stdout=true&tty=true";
    let websocket = FilterRequest::new("GET", exec, "localhost:8443")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
        .header("authorization", &format!("Bearer {t}"));
    let spdy = FilterRequest::new("POST", exec, "localhost:8443")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .header("authorization", &format!("Bearer {t}"));
    for request in [websocket.clone(), spdy.clone()] {
        let outcome = plugin.handle(request).await;
        assert_eq!(
            values(forwarded(&outcome), "impersonate-user"),
            vec!["someuser@example.com"]
        );
    }
    let mallory = token("mallory@evil.example", &[]);
    for mut request in [websocket, spdy] {
        request.headers.retain(|(n, _)| n != "authorization");
        let request = request.header("authorization", &format!("Bearer {mallory}"));
        assert_eq!(local_reply(&plugin.handle(request).await).0, 403);
    }
}

#[tokio::test]
async fn the_service_account_token_comes_from_the_vm_environment() {
    let mut config = example_config("dev.json");
    config["routes"][0]["kubernetes_service_account_token_env"] = json!("OTHER_SA_TOKEN");
    let mut plugin_spec = spec(&config, 1);
    plugin_spec.env = vec![("OTHER_SA_TOKEN".into(), "from-environment".into())];
    let plugin = Plugin::load(plugin_spec).unwrap();
    let t = token("someuser@example.com", &[]);
    let outcome = plugin
        .handle(pods().header("authorization", &format!("Bearer {t}")))
        .await;
    assert_eq!(
        values(forwarded(&outcome), "authorization"),
        vec!["Bearer from-environment"]
    );
}

#[tokio::test]
async fn a_bad_configuration_is_refused_at_load_with_the_field_named() {
    let mut config = example_config("dev.json");
    config["jwt"][0]["issuer"]["audience"] = json!("typo");
    let Err(error) = Plugin::load(spec(&config, 1)) else {
        panic!("a configuration with an unknown field was accepted")
    };
    let error = format!("{error:#}");
    assert!(
        error.contains("configuration refused: jwt[0].issuer.audience: unknown field `audience`"),
        "{error}"
    );
    // The refusal is logged by the filter with the field's name.
    let mut config = example_config("dev.json");
    config["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("kubernetes_service_account_token_env");
    let mut s = spec(&config, 1);
    s.print_logs = false;
    assert!(Plugin::load(s).is_err());
    // Missing environment variable: refused too, never a route without credentials.
    let mut s = spec(&example_config("dev.json"), 1);
    s.env.clear();
    assert!(Plugin::load(s).is_err());
}

#[tokio::test]
async fn reconfiguration_keeps_the_old_config_when_the_new_one_is_bad() {
    let plugin = load(&example_config("dev.json"));
    let t = token("someone@pomerium.com", &[]);
    let request = || pods().header("authorization", &format!("Bearer {t}"));
    assert_eq!(local_reply(&plugin.handle(request()).await).0, 403);

    let mut bad = example_config("dev.json");
    bad["routes"][0]["policy"] = json!([{"allow": {"or": [{"domian": {"is": "pomerium.com"}}]}}]);
    assert!(plugin.reconfigure(bad.to_string()).is_err());
    assert_eq!(local_reply(&plugin.handle(request()).await).0, 403);

    let mut good = example_config("dev.json");
    good["routes"][0]["policy"] = json!([{"allow": {"or": [{"domain": {"is": "pomerium.com"}}]}}]);
    plugin.reconfigure(good.to_string()).unwrap();
    let outcome = plugin.handle(request()).await;
    assert_eq!(
        values(forwarded(&outcome), "impersonate-user"),
        vec!["someone@pomerium.com"]
    );
}

#[tokio::test]
async fn a_repeated_token_is_verified_once_per_vm() {
    let plugin = Plugin::load(spec(&example_config("dev.json"), 1)).unwrap();
    let t = token("someuser@example.com", &[]);
    for _ in 0..5 {
        let outcome = plugin
            .handle(pods().header("authorization", &format!("Bearer {t}")))
            .await;
        forwarded(&outcome);
    }
    assert_eq!(plugin.metric("kubegate.jwt.cache_misses"), Some(1));
    assert_eq!(plugin.metric("kubegate.jwt.cache_hits"), Some(4));
}
