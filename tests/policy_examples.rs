//! The Kubernetes-aware policy examples in filter-config/, through the real kubegate.wasm:
//! - contractors-read-only.json: "contractors may read but never exec" (or write);
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

#[tokio::test]
async fn contractors_read_but_never_exec_or_write() {
    let plugin = load("contractors-read-only.json");
    let contractor = token("pat@example.com", &["contractors"], now());
    let employee = token("sam@example.com", &["developers"], now());
    let exec = format!("/api/v1/namespaces/default/pods/web-0/exec?{EXEC_QUERY}");

    for (method, path) in [
        ("GET", "/api/v1/namespaces/default/pods?limit=500"),
        (
            "GET",
            "/api/v1/namespaces/default/pods/web-0/log?container=c",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion=7",
        ),
        ("GET", "/apis/apps/v1/namespaces/default/deployments/web"),
        ("GET", "/api"),
        ("GET", "/version"),
    ] {
        assert_eq!(
            status(&plugin, request(method, path, &contractor)).await,
            200,
            "contractor {method} {path}"
        );
    }
    // kubectl exec tries a WebSocket GET, then an SPDY POST: both are verb create on
    // pods/exec, and both are refused; so are attach, port-forward and every write.
    for (method, path) in [
        ("GET", exec.as_str()),
        ("POST", exec.as_str()),
        (
            "POST",
            "/api/v1/namespaces/default/pods/web-0/attach?stdout=true",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods/web-0/portforward?ports=8080",
        ),
        ("DELETE", "/api/v1/namespaces/default/pods/web-0"),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web"),
        ("POST", "/api/v1/namespaces/default/configmaps"),
    ] {
        assert_eq!(
            status(&plugin, request(method, path, &contractor)).await,
            403,
            "contractor {method} {path}"
        );
    }
    // The refusal names the rule and the criterion an operator should look at.
    let message = refusal_message(&plugin, request("POST", &exec, &contractor)).await;
    assert!(
        message.contains("deny rule policy[1].deny matched"),
        "{message}"
    );

    // Everyone else in the domain keeps exec (RBAC decides the rest).
    assert_eq!(status(&plugin, request("GET", &exec, &employee)).await, 200);
    assert_eq!(
        status(&plugin, request("POST", &exec, &employee)).await,
        200
    );
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
