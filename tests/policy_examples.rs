//! The Kubernetes-aware policy examples in filter-config/, through the real kubegate.wasm:
//! - contractors-read-only.json: "contractors may read but never exec, attach, port-forward,
//!   proxy or upgrade" (or write);
//! - no-kube-system-secrets.json: "nobody reads secrets in kube-system through the gateway";
//! - office-weekdays.json: "production only from the office network, on weekdays".
//!
//! Each shows the allowed and the refused request, and that the refusal names its rule.

mod common;

use common::{example_config, spec};
use kubegate_host::{FilterOutcome, FilterRequest, ManualClock, Plugin};
use kubegate_testkit::tokens::{now, SessionClaims, Signer};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

fn token(email: &str, groups: &[&str], at: u64) -> String {
    Signer::dev()
        .unwrap()
        .sign(&SessionClaims::dev(email, groups, at))
        .unwrap()
}

fn request(method: &str, path: &str, token: &str) -> FilterRequest {
    FilterRequest::new(method, path, "localhost:8443")
        .header("authorization", &format!("Bearer {token}"))
}

fn load(name: &str) -> Plugin {
    Plugin::load(spec(&example_config(name), 1)).expect("the example loads")
}

/// The status the client sees: 200 stands for "forwarded to the API server".
async fn status(plugin: &Plugin, request: FilterRequest) -> u16 {
    match plugin.handle(request).await {
        FilterOutcome::Forward { .. } => 200,
        FilterOutcome::LocalReply { status, .. } => status,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// The refusal's Status message.
async fn refusal_message(plugin: &Plugin, request: FilterRequest) -> String {
    match plugin.handle(request).await {
        FilterOutcome::LocalReply { status, body, .. } => {
            assert_eq!(status, 403);
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            body["message"].as_str().unwrap().to_string()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

const EXEC_QUERY: &str = "command=sh&container=c&stderr=true&stdin=true&stdout=true&tty=true";

/// kubectl's WebSocket attempt (exec, attach, port-forward since 1.30/1.31).
fn websocket(request: FilterRequest) -> FilterRequest {
    request
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
}

/// kubectl's SPDY fallback.
fn spdy(request: FilterRequest) -> FilterRequest {
    request
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
}

#[tokio::test]
async fn contractors_read_but_never_exec_proxy_or_write() {
    let plugin = load("contractors-read-only.json");
    let contractor = token("pat@example.com", &["contractors"], now());
    let employee = token("sam@example.com", &["developers"], now());
    let exec = format!("/api/v1/namespaces/default/pods/web-0/exec?{EXEC_QUERY}");

    // Reads: get, list, watch, logs (also followed), discovery.
    for (method, path) in [
        ("GET", "/api/v1/namespaces/default/pods?limit=500"),
        ("GET", "/api/v1/namespaces/default/pods/web-0"),
        (
            "GET",
            "/api/v1/namespaces/default/pods/web-0/log?container=c",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods/web-0/log?container=c&follow=true",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion=7",
        ),
        ("GET", "/api/v1/watch/namespaces/default/pods"),
        ("GET", "/apis/apps/v1/namespaces/default/deployments/web"),
        ("GET", "/api/v1/nodes"),
        ("GET", "/api"),
        ("GET", "/version"),
    ] {
        assert_eq!(
            status(&plugin, request(method, path, &contractor)).await,
            200,
            "contractor {method} {path}"
        );
    }

    let refused: Vec<(&str, FilterRequest)> =
        vec![
        // kubectl exec: a WebSocket GET (verb create since 1.35), then an SPDY POST.
        ("exec, WebSocket", websocket(request("GET", &exec, &contractor))),
        ("exec, SPDY", spdy(request("POST", &exec, &contractor))),
        ("exec, bare POST", request("POST", &exec, &contractor)),
        (
            "attach, WebSocket",
            websocket(request(
                "GET",
                "/api/v1/namespaces/default/pods/web-0/attach?stdout=true",
                &contractor,
            )),
        ),
        (
            "attach, SPDY",
            spdy(request(
                "POST",
                "/api/v1/namespaces/default/pods/web-0/attach?stdout=true",
                &contractor,
            )),
        ),
        (
            "port-forward, WebSocket",
            websocket(request(
                "GET",
                "/api/v1/namespaces/default/pods/web-0/portforward?ports=8080",
                &contractor,
            )),
        ),
        (
            "port-forward, SPDY",
            spdy(request(
                "POST",
                "/api/v1/namespaces/default/pods/web-0/portforward",
                &contractor,
            )),
        ),
        // The kubelet's exec through nodes/proxy: authorized as `get nodes/proxy` only.
        (
            "nodes/proxy exec, WebSocket",
            websocket(request(
                "GET",
                "/api/v1/nodes/node-1/proxy/exec/default/web-0/c?command=sh&input=1&output=1&tty=1",
                &contractor,
            )),
        ),
        (
            "nodes/proxy run, POST",
            request(
                "POST",
                "/api/v1/nodes/node-1/proxy/run/default/web-0/c?cmd=id",
                &contractor,
            ),
        ),
        (
            "nodes/proxy, plain GET",
            request("GET", "/api/v1/nodes/node-1:10250/proxy/pods", &contractor),
        ),
        // pods/proxy and services/proxy reach any backend port with `get` alone.
        (
            "pods/proxy, WebSocket",
            websocket(request(
                "GET",
                "/api/v1/namespaces/default/pods/web-0:8080/proxy/ws",
                &contractor,
            )),
        ),
        (
            "pods/proxy, plain GET",
            request(
                "GET",
                "/api/v1/namespaces/default/pods/web-0/proxy/admin",
                &contractor,
            ),
        ),
        (
            "services/proxy, WebSocket",
            websocket(request(
                "GET",
                "/api/v1/namespaces/default/services/http:web:80/proxy/",
                &contractor,
            )),
        ),
        (
            "services/proxy, plain GET",
            request(
                "GET",
                "/api/v1/namespaces/default/services/web/proxy/metrics",
                &contractor,
            ),
        ),
        // The deprecated proxy prefix.
        (
            "/api/v1/proxy/ prefix",
            request(
                "GET",
                "/api/v1/proxy/namespaces/default/pods/web-0/admin",
                &contractor,
            ),
        ),
        (
            "/api/v1/proxy/ prefix to a node",
            websocket(request(
                "GET",
                "/api/v1/proxy/nodes/node-1/exec/default/web-0/c?command=sh",
                &contractor,
            )),
        ),
        // Any upgrade, on any path: after it the stream is bytes no policy sees.
        (
            "upgrade on a list",
            websocket(request(
                "GET",
                "/api/v1/namespaces/default/pods",
                &contractor,
            )),
        ),
        (
            "Connection: upgrade alone",
            request("GET", "/api/v1/namespaces/default/pods", &contractor)
                .header("Connection", "keep-alive, Upgrade"),
        ),
        (
            "Upgrade alone, odd case",
            request("GET", "/version", &contractor).header("UPGRADE", "h2c"),
        ),
        (
            "HTTP/2 extended CONNECT",
            request("GET", "/api/v1/namespaces/default/pods", &contractor)
                .header(":protocol", "websocket"),
        ),
        // Writes.
        (
            "delete",
            request("DELETE", "/api/v1/namespaces/default/pods/web-0", &contractor),
        ),
        (
            "patch",
            request(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/web",
                &contractor,
            ),
        ),
        (
            "create",
            request("POST", "/api/v1/namespaces/default/configmaps", &contractor),
        ),
    ];
    for (what, request) in refused {
        assert_eq!(status(&plugin, request).await, 403, "contractor: {what}");
    }

    // The refusal names the rule and the criterion an operator should look at.
    let message = refusal_message(
        &plugin,
        websocket(request(
            "GET",
            "/api/v1/nodes/node-1/proxy/exec/default/web-0/c?command=sh",
            &contractor,
        )),
    )
    .await;
    assert!(
        message.contains("deny rule policy[1].deny matched (and: every criterion held)"),
        "{message}"
    );

    // Everyone else in the domain keeps exec (RBAC decides the rest).
    assert_eq!(
        status(&plugin, websocket(request("GET", &exec, &employee))).await,
        200
    );
    assert_eq!(
        status(&plugin, spdy(request("POST", &exec, &employee))).await,
        200
    );
    assert_eq!(
        status(
            &plugin,
            websocket(request(
                "GET",
                "/api/v1/nodes/node-1/proxy/exec/default/web-0/c?command=sh",
                &employee
            ))
        )
        .await,
        200
    );
}

/// `domain` compares ignoring ASCII case, as DNS names compare (Pomerium compares exactly);
/// `email` compares its local part exactly and its domain ignoring case.
#[tokio::test]
async fn domain_rules_ignore_the_letter_case_of_the_domain() {
    let mut config = example_config("contractors-read-only.json");
    config["routes"][0]["policy"] = serde_json::json!([
        {"allow": {"or": [{"authenticated_user": true}]}},
        {"deny": {"or": [
            {"domain": "partner.example"},
            {"email": "mallory@evil.example"},
        ]}},
    ]);
    let plugin = Plugin::load(spec(&config, 1)).expect("the configuration loads");
    let pods = "/api/v1/namespaces/default/pods";
    for (email, expected) in [
        ("bob@partner.example", 403),
        ("bob@PARTNER.EXAMPLE", 403),
        ("Bob@Partner.Example", 403),
        ("bob@partner.example.org", 200),
        ("bob@notpartner.example", 200),
        ("mallory@evil.example", 403),
        ("mallory@EVIL.Example", 403),
        // The local part stays exact, as RFC 5321 leaves it to the mailbox's host.
        ("Mallory@evil.example", 200),
        ("alice@example.com", 200),
    ] {
        let session = token(email, &[], now());
        assert_eq!(
            status(&plugin, request("GET", pods, &session)).await,
            expected,
            "{email}"
        );
    }
}

#[tokio::test]
async fn nobody_reads_secrets_in_kube_system() {
    let plugin = load("no-kube-system-secrets.json");
    let admin = token("admin@example.com", &["platform-admins"], now());

    for (method, path) in [
        ("GET", "/api/v1/namespaces/kube-system/secrets"),
        (
            "GET",
            "/api/v1/namespaces/kube-system/secrets/bootstrap-token-abc",
        ),
        ("GET", "/api/v1/namespaces/kube-system/secrets?watch=1"),
        ("GET", "/api/v1/watch/namespaces/kube-system/secrets"),
        // A cluster-wide list or watch (`kubectl get secrets -A`) would include them.
        ("GET", "/api/v1/secrets"),
        ("GET", "/api/v1/secrets?watch=true"),
        ("DELETE", "/api/v1/namespaces/kube-system/secrets/x"),
        // Encoded or dotted spellings of the same target never slip past.
        ("GET", "/api/v1/namespaces/kube%2Dsystem/secrets"),
        ("GET", "/api/v1/namespaces/kube-system/./secrets"),
        ("GET", "/api/v1/namespaces/default/../kube-system/secrets"),
        ("GET", "/api/v1/namespaces/kube-system//secrets"),
    ] {
        assert_eq!(
            status(&plugin, request(method, path, &admin)).await,
            403,
            "{method} {path}"
        );
    }
    for (method, path) in [
        ("GET", "/api/v1/namespaces/default/secrets/app-tls"),
        (
            "GET",
            "/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt",
        ),
        ("GET", "/api/v1/namespaces/kube-system/pods"),
        ("GET", "/api/v1/namespaces/kube-system"),
    ] {
        assert_eq!(
            status(&plugin, request(method, path, &admin)).await,
            200,
            "{method} {path}: {}",
            refusal_message(&plugin, request(method, path, &admin)).await
        );
    }
    let message = refusal_message(
        &plugin,
        request("GET", "/api/v1/namespaces/kube-system/secrets", &admin),
    )
    .await;
    assert!(
        message.contains("deny rule policy[1].deny matched"),
        "{message}"
    );
}

/// The ways around a path-prefix rule on kube-system's secrets: a cluster-wide list (with or
/// without a field selector on the namespace), the deprecated watch prefix, and encoded
/// spellings. Each reads kube-system's secrets, so every example that guards them refuses each.
const SECRETS_BYPASSES: [&str; 14] = [
    "/api/v1/secrets",
    "/api/v1/secrets?fieldSelector=metadata.namespace%3Dkube-system",
    "/api/v1/secrets?fieldSelector=metadata.namespace=kube-system",
    "/api/v1/secrets?watch=true&fieldSelector=metadata.namespace%3Dkube-system",
    "/api/v1/watch/secrets",
    "/api/v1/watch/namespaces/kube-system/secrets",
    "/api/v1/watch/namespaces/kube-system/secrets/bootstrap-token-abc",
    "/api/v1/namespaces/kube-system/secrets",
    "/api/v1/namespaces/kube-system/secrets/bootstrap-token-abc",
    "/api/v1/namespaces/kube-system/secrets?watch=1",
    "/api/v1/namespaces/kube%2Dsystem/secrets",
    "/api/v1/watch/namespaces/kube%2dsystem/%73ecrets",
    "/api/v1/%73ecrets",
    "/api/v1/namespaces/kube-system/secrets/?fieldSelector=metadata.name%3Dx",
];

/// Every example whose policy names secrets, with a host it serves and a session its allow
/// rule admits. The test fails when an example that mentions secrets is missing here.
fn secrets_guards() -> Vec<(&'static str, &'static str, String)> {
    let sre = SessionClaims {
        issuer: "https://idp.example.com".into(),
        audience: "k8s.example.com".into(),
        ..SessionClaims::dev("sre@example.com", &["sre"], now())
    };
    vec![
        (
            "no-kube-system-secrets.json",
            "localhost:8443",
            token("admin@example.com", &["platform-admins"], now()),
        ),
        (
            "multi-cluster.json",
            "prod.k8s.example.com",
            Signer::dev().unwrap().sign(&sre).unwrap(),
        ),
    ]
}

#[tokio::test]
async fn every_example_guarding_kube_system_secrets_refuses_the_bypasses() {
    let guards = secrets_guards();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("filter-config");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let config = example_config(&name);
        let mentions_secrets = config["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|route| route["policy"].to_string().contains("secrets"));
        assert_eq!(
            mentions_secrets,
            guards.iter().any(|(file, _, _)| *file == name),
            "{name}: add it to secrets_guards()"
        );
    }
    for (file, authority, session) in guards {
        let config = example_config(file);
        let plugin = Plugin::load(kubegate_host::PluginSpec {
            env: vec![
                ("KUBEGATE_SA_TOKEN".into(), "sa".into()),
                ("PROD_SA_TOKEN".into(), "prod-sa".into()),
                ("DEV_SA_TOKEN".into(), "dev-sa".into()),
                (
                    "LEGACY_HMAC_SECRET_BASE64".into(),
                    "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=".into(),
                ),
            ],
            ..spec(&config, 1)
        })
        .expect("the example loads");
        // The cluster Envoy routes the host to: the route's upstream_clusters.
        let cluster = config["routes"][0]["upstream_clusters"][0]
            .as_str()
            .unwrap()
            .to_string();
        let get = |path: &str| {
            FilterRequest::new("GET", path, authority)
                .header("authorization", &format!("Bearer {session}"))
                .upstream_cluster(&cluster)
        };
        for path in SECRETS_BYPASSES {
            assert_eq!(status(&plugin, get(path)).await, 403, "{file}: GET {path}");
        }
        assert_eq!(
            status(
                &plugin,
                FilterRequest::new(
                    "DELETE",
                    "/api/v1/namespaces/kube-system/secrets",
                    authority
                )
                .header("authorization", &format!("Bearer {session}"))
                .upstream_cluster(&cluster)
            )
            .await,
            403,
            "{file}: deletecollection"
        );
        // Still allowed: other namespaces' secrets, and kube-system's other objects. A list
        // in `default` with a field selector on kube-system lists `default` only (the path's
        // namespace scopes the list; the selector filters within it), so it reads nothing of
        // kube-system's.
        for path in [
            "/api/v1/namespaces/default/secrets/app-tls",
            "/api/v1/namespaces/default/secrets?fieldSelector=metadata.namespace%3Dkube-system",
            "/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt",
            "/api/v1/namespaces/kube-system/pods",
        ] {
            assert_eq!(status(&plugin, get(path)).await, 200, "{file}: GET {path}");
        }
    }
}

/// 2026-11-25 12:00:00 UTC, a Wednesday.
const WEDNESDAY_NOON_UTC: u64 = 1_795_608_000;

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn from(source: &str, request: FilterRequest) -> FilterRequest {
    FilterRequest {
        source: source.parse::<SocketAddr>().unwrap(),
        ..request
    }
}

#[tokio::test]
async fn production_only_from_the_office_on_weekdays() {
    let clock = ManualClock::new(at(WEDNESDAY_NOON_UTC));
    let plugin = Plugin::load(kubegate_host::PluginSpec {
        clock: Some(clock.clock()),
        ..spec(&example_config("office-weekdays.json"), 1)
    })
    .unwrap();
    let pods = "/api/v1/namespaces/prod/pods";
    let user = |clock: &ManualClock| {
        let now = clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        token("sam@example.com", &["developers"], now)
    };

    // Wednesday, from the office (IPv4 and IPv6 ranges): allowed.
    let t = user(&clock);
    assert_eq!(
        status(&plugin, from("10.20.3.4:51000", request("GET", pods, &t))).await,
        200
    );
    assert_eq!(
        status(
            &plugin,
            from("[2001:db8:20::5]:51000", request("GET", pods, &t))
        )
        .await,
        200
    );
    // From elsewhere: refused, even an address that only looks close.
    for source in [
        "192.0.2.10:51000",
        "10.21.0.1:51000",
        "[2001:db8:21::5]:443",
        "127.0.0.1:40000",
    ] {
        assert_eq!(
            status(&plugin, from(source, request("GET", pods, &t))).await,
            403,
            "{source}"
        );
    }
    let message =
        refusal_message(&plugin, from("192.0.2.10:51000", request("GET", pods, &t))).await;
    assert!(
        message.contains("no allow rule matched (policy[0].allow: and[1] source_ip did not hold)"),
        "{message}"
    );

    // Friday 23:30 UTC is Saturday 00:30 at +01:00, the office's time: refused.
    clock.set(at(WEDNESDAY_NOON_UTC + 2 * 86_400 + 11 * 3_600 + 1_800));
    let t = user(&clock);
    assert_eq!(
        status(&plugin, from("10.20.3.4:51000", request("GET", pods, &t))).await,
        403
    );
    // Saturday noon: refused.
    clock.set(at(WEDNESDAY_NOON_UTC + 3 * 86_400));
    let t = user(&clock);
    assert_eq!(
        status(&plugin, from("10.20.3.4:51000", request("GET", pods, &t))).await,
        403
    );
    // Sunday 23:30 UTC is Monday 00:30 at +01:00: allowed again.
    clock.set(at(WEDNESDAY_NOON_UTC + 4 * 86_400 + 11 * 3_600 + 1_800));
    let t = user(&clock);
    assert_eq!(
        status(&plugin, from("10.20.3.4:51000", request("GET", pods, &t))).await,
        200
    );
}
