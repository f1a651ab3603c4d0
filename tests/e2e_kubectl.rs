//! End to end with the real kubectl: kubectl (fresh HOME, exec credential plugin printing
//! a JWT signed by the dev key) -> our host's HTTPS front running the built kubegate.wasm
//! with filter-config/dev.json -> the Kubernetes API stand-in (service-account token,
//! impersonation permission, RBAC from the demo manifest), which records what it received.

mod common;

use common::{example_config, spec, SA_TOKEN};
use kube_apiserver_standin::{start, RecordedRequest, RunningApiServer, StandinConfig};
use kubegate_host::{start_gateway, GatewayConfig, RunningGateway, UpstreamSpec};
use kubegate_testkit::kubectl::{Kubectl, Output};
use kubegate_testkit::tokens::{now, SessionClaims, Signer};

const DEMO_RBAC: &str = include_str!("testkit/manifests/demo-rbac.yaml");
const SERVICE_ACCOUNT: &str = "system:serviceaccount:kubegate-system:kubegate";
const SOMEUSER: &str = "someuser@example.com";

/// The stand-in, kubegate in front of it, and where kubectl should connect.
struct Stack {
    apiserver: RunningApiServer,
    gateway: RunningGateway,
}

impl Stack {
    async fn start() -> Stack {
        Stack::start_with(StandinConfig::default()).await
    }

    async fn start_with(apiserver: StandinConfig) -> Stack {
        Stack::start_with_config(example_config("dev.json"), apiserver).await
    }

    async fn start_with_config(config: serde_json::Value, apiserver: StandinConfig) -> Stack {
        let apiserver = start(StandinConfig {
            service_account_token: SA_TOKEN.to_string(),
            manifests: vec![DEMO_RBAC.to_string()],
            ..apiserver
        })
        .await
        .expect("the stand-in starts");
        let gateway = start_gateway(GatewayConfig::new(
            spec(&config, 2),
            UpstreamSpec {
                url: apiserver.url(),
                ca_pem: Some(apiserver.ca_pem().to_string()),
                ..UpstreamSpec::default()
            },
        ))
        .await
        .expect("the gateway starts");
        Stack { apiserver, gateway }
    }

    /// kubectl whose exec plugin hands over `token`; the server is `https://localhost:PORT`,
    /// the host dev.json routes.
    fn kubectl(&self, token: &str) -> Kubectl {
        let kubectl = Kubectl::with_exec_plugin(&self.server(), &self.gateway.ca_pem).unwrap();
        kubectl.set_token(token).unwrap();
        kubectl
    }

    fn server(&self) -> String {
        format!("https://localhost:{}", self.gateway.addr.port())
    }

    fn received(&self, path_part: &str) -> Vec<RecordedRequest> {
        self.apiserver
            .requests()
            .into_iter()
            .filter(|r| r.path_and_query.contains(path_part))
            .collect()
    }
}

fn token(email: &str, groups: &[&str]) -> String {
    Signer::dev()
        .unwrap()
        .sign(&SessionClaims::dev(email, groups, now()))
        .unwrap()
}

/// kubectl blocks: it runs off the runtime that serves the gateway and the stand-in.
async fn run(kubectl: Kubectl, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl.run(&args).expect("kubectl runs")
    })
    .await
    .unwrap()
}

/// kubectl failed and printed `needle` on stderr.
fn assert_failed_with(out: &Output, needle: &str) {
    assert!(!out.success, "{}", out.text());
    assert!(out.stderr.contains(needle), "{}", out.text());
}

/// What every request kubegate let through must look like at the API server.
fn assert_gateway_identity(request: &RecordedRequest, user: &str, groups: &[&str]) {
    assert_eq!(
        request.header_values("authorization"),
        [format!("Bearer {SA_TOKEN}")],
        "{request:#?}"
    );
    assert_eq!(
        request.caller.as_deref(),
        Some(SERVICE_ACCOUNT),
        "{request:#?}"
    );
    assert_eq!(
        request.header_values("impersonate-user"),
        [user],
        "{request:#?}"
    );
    assert_eq!(
        request.header_values("impersonate-group"),
        groups,
        "{request:#?}"
    );
    let acting = request
        .impersonated
        .as_ref()
        .expect("impersonation accepted");
    assert_eq!(acting.username, user);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_user_lists_pods_as_themself() {
    let stack = Stack::start().await;
    let jwt = token(SOMEUSER, &[]);
    let out = run(stack.kubectl(&jwt), &["get", "pods"]).await;
    assert!(out.success, "{}", out.text());
    assert!(out.stdout.contains("nginx-1"), "{}", out.text());

    let lists = stack.received("/api/v1/namespaces/default/pods");
    assert!(!lists.is_empty());
    for list in &lists {
        assert_gateway_identity(list, SOMEUSER, &[]);
        assert_eq!(list.status, 200);
    }
    // The session JWT never reaches the API server, in any header.
    for request in stack.apiserver.requests() {
        assert!(
            !request.headers.iter().any(|(_, v)| v.contains(&jwt)),
            "{request:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_arrive_as_separate_headers_and_whoami_shows_them() {
    let stack = Stack::start().await;
    let jwt = token(SOMEUSER, &["developers", "oncall"]);
    let out = run(stack.kubectl(&jwt), &["auth", "whoami"]).await;
    assert!(out.success, "{}", out.text());
    assert!(out.stdout.contains(SOMEUSER), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("[developers oncall system:authenticated]"),
        "{}",
        out.stdout
    );
    let reviews = stack.received("selfsubjectreviews");
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_gateway_identity(&reviews[0], SOMEUSER, &["developers", "oncall"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_outside_the_domain_gets_kubegates_403_and_nothing_reaches_the_api_server() {
    let stack = Stack::start().await;
    let jwt = token("mallory@evil.example", &["developers"]);
    let out = run(stack.kubectl(&jwt), &["get", "pods"]).await;
    assert_failed_with(&out, "Error from server (Forbidden)");
    assert_failed_with(
        &out,
        "kubegate: user \"mallory@evil.example\" is not allowed",
    );
    assert!(stack.apiserver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_user_without_a_binding_gets_the_api_servers_403() {
    let stack = Stack::start().await;
    let jwt = token("newcomer@example.com", &[]);
    let out = run(stack.kubectl(&jwt), &["get", "pods"]).await;
    assert_failed_with(
        &out,
        "pods is forbidden: User \"newcomer@example.com\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
    );
    let lists = stack.received("/api/v1/namespaces/default/pods");
    assert!(!lists.is_empty());
    for list in &lists {
        assert_gateway_identity(list, "newcomer@example.com", &[]);
        assert_eq!(list.status, 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_an_expired_one_means_you_must_be_logged_in() {
    let stack = Stack::start().await;
    // No token at all: a kubeconfig with a client certificate (kubectl with no credentials
    // would stop at its password prompt before sending anything).
    let (_, cert, key) = kubegate_host::generate_certificates(&[]).unwrap();
    let no_token =
        Kubectl::with_client_certificate(&stack.server(), &stack.gateway.ca_pem, &cert, &key)
            .unwrap();
    let out = run(no_token, &["get", "pods"]).await;
    assert_failed_with(&out, "error: You must be logged in to the server");

    let mut claims = SessionClaims::dev(SOMEUSER, &[], now() - 3_600);
    claims.expires_at = now() - 600;
    let expired = Signer::dev().unwrap().sign(&claims).unwrap();
    let out = run(stack.kubectl(&expired), &["get", "pods"]).await;
    assert_failed_with(&out, "error: You must be logged in to the server");
    assert!(stack.apiserver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_as_is_refused_with_a_message_saying_to_drop_it() {
    let stack = Stack::start().await;
    let jwt = token(SOMEUSER, &["developers"]);
    for args in [
        &["--as", "admin", "get", "pods"][..],
        &[
            "--as-group",
            "system:masters",
            "--as",
            "someone",
            "get",
            "pods",
        ],
        &["--as", "admin", "--as-uid", "0", "get", "deployments"],
    ] {
        let out = run(stack.kubectl(&jwt), args).await;
        assert_failed_with(&out, "Error from server (Forbidden)");
        assert_failed_with(
            &out,
            "it already impersonates you as yourself; remove --as, --as-group and --as-uid",
        );
        // Nothing the user asked to become is echoed back.
        assert!(!out.stderr.contains("system:masters"), "{}", out.text());
    }
    assert!(stack.apiserver.requests().is_empty());
    // The same kubectl without --as works.
    let out = run(stack.kubectl(&jwt), &["get", "pods"]).await;
    assert!(out.success, "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_impersonation_strip_kubectl_as_runs_as_the_verified_user() {
    let mut config = example_config("dev.json");
    config["routes"][0]["client_impersonation"] = serde_json::json!("strip");
    let stack = Stack::start_with_config(config, StandinConfig::default()).await;
    let jwt = token(SOMEUSER, &["developers"]);
    // kubectl's own --as/--as-group/--as-uid send Impersonate-* headers of the client's
    // choosing: kubegate drops them and impersonates the verified user instead.
    let out = run(
        stack.kubectl(&jwt),
        &[
            "--as",
            "cluster-admin@example.com",
            "--as-group",
            "system:masters",
            "--as-uid",
            "0",
            "get",
            "pods",
        ],
    )
    .await;
    assert!(out.success, "{}", out.text());
    let lists = stack.received("/api/v1/namespaces/default/pods");
    assert!(!lists.is_empty());
    for request in stack.apiserver.requests() {
        assert_gateway_identity(&request, SOMEUSER, &["developers"]);
        assert!(request.header_values("impersonate-uid").is_empty());
        assert!(
            !request
                .headers
                .iter()
                .any(|(_, v)| v.contains("system:masters") || v.contains("cluster-admin")),
            "{request:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_over_websocket_is_authorized_and_streams() {
    let stack = Stack::start().await;
    let jwt = token(SOMEUSER, &[]);
    let out = run(
        stack.kubectl(&jwt),
        &["exec", "nginx-1", "--", "echo", "hi"],
    )
    .await;
    assert!(out.success, "{}", out.text());
    assert_eq!(out.stdout.trim(), "hi");
    let attempts = stack.received("/exec?");
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(
        (attempts[0].method.as_str(), attempts[0].status),
        ("GET", 101)
    );
    assert_eq!(attempts[0].header("upgrade"), Some("websocket"));
    assert_gateway_identity(&attempts[0], SOMEUSER, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_falls_back_to_spdy_and_both_attempts_are_authorized() {
    let stack = Stack::start_with(StandinConfig {
        websocket_exec: false,
        ..StandinConfig::default()
    })
    .await;
    let jwt = token(SOMEUSER, &[]);
    let _ = run(
        stack.kubectl(&jwt),
        &["exec", "nginx-1", "--", "echo", "hi"],
    )
    .await;
    // The stand-in refuses the WebSocket attempt and accepts the SPDY upgrade: both came
    // through kubegate as the verified user.
    let attempts = stack.received("/exec?");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(
        (attempts[0].method.as_str(), attempts[0].status),
        ("GET", 400)
    );
    assert_eq!(
        (attempts[1].method.as_str(), attempts[1].status),
        ("POST", 101)
    );
    assert_eq!(attempts[1].header("upgrade"), Some("SPDY/3.1"));
    for attempt in &attempts {
        assert_gateway_identity(attempt, SOMEUSER, &[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_by_a_refused_user_never_reaches_the_api_server() {
    let stack = Stack::start_with(StandinConfig {
        websocket_exec: false,
        ..StandinConfig::default()
    })
    .await;
    let jwt = token("mallory@evil.example", &[]);
    let out = run(
        stack.kubectl(&jwt),
        &["exec", "nginx-1", "--", "echo", "hi"],
    )
    .await;
    assert_failed_with(&out, "kubegate: user");
    assert!(stack.apiserver.requests().is_empty());
}
