//! envoy-examples/kubernetes/ against the Kubernetes API stand-in, with the real kubectl:
//! the grants the manifests make are the ones the README promises. kubectl's `--as` flags send
//! the impersonation headers kubegate would add, with the gateway's service-account token.

use kube_apiserver_standin::{start, RunningApiServer, StandinConfig};
use kubegate_testkit::kubectl::{Kubectl, Output};

const TOKEN: &str = "examples-service-account-token";

fn manifest(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("envoy-examples/kubernetes")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn apiserver(files: &[&str]) -> RunningApiServer {
    start(StandinConfig {
        service_account_token: TOKEN.to_string(),
        manifests: files.iter().map(|f| manifest(f)).collect(),
        ..StandinConfig::default()
    })
    .await
    .expect("the stand-in loads the example manifests")
}

async fn kubectl(server: &RunningApiServer, args: &[&str]) -> Output {
    let kubectl = Kubectl::with_static_token(&server.url(), server.ca_pem(), TOKEN).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl.run(&args).unwrap()
    })
    .await
    .unwrap()
}

const BASE: [&str; 4] = [
    "namespace.yaml",
    "service-account.yaml",
    "rbac.yaml",
    "user-binding.yaml",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_account_only_impersonates_and_the_user_binding_reads() {
    let server = apiserver(&BASE).await;
    // On its own, the gateway's service account can read nothing.
    let alone = kubectl(&server, &["get", "pods"]).await;
    assert!(!alone.success);
    assert!(
        alone.stderr.contains(
            "User \"system:serviceaccount:kubegate-system:kubegate\" cannot list resource \"pods\""
        ),
        "{}",
        alone.text()
    );
    // Impersonating the example user: what `view` allows, and nothing more.
    let as_user = ["--as", "someuser@example.com", "--as-group", "developers"];
    let list = kubectl(&server, &[&as_user[..], &["get", "pods"]].concat()).await;
    assert!(list.success, "{}", list.text());
    assert!(list.stdout.contains("nginx-1"), "{}", list.text());
    let delete = kubectl(
        &server,
        &[&as_user[..], &["delete", "pod", "nginx-1"]].concat(),
    )
    .await;
    assert!(!delete.success);
    assert!(
        delete
            .stderr
            .contains("User \"someuser@example.com\" cannot delete resource \"pods\""),
        "{}",
        delete.text()
    );
    // Someone without a binding gets the API server's refusal.
    let stranger = kubectl(&server, &["--as", "stranger@example.com", "get", "pods"]).await;
    assert!(!stranger.success);
    assert!(
        stranger
            .stderr
            .contains("User \"stranger@example.com\" cannot list resource \"pods\""),
        "{}",
        stranger.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_impersonation_needs_the_optional_role() {
    let as_user_with_uid = [
        "--as",
        "someuser@example.com",
        "--as-uid",
        "1234",
        "get",
        "pods",
    ];
    let without = apiserver(&BASE).await;
    let refused = kubectl(&without, &as_user_with_uid).await;
    assert!(!refused.success);
    // kubectl's discovery client prints "unknown" for a 403 Status (as against a real API
    // server), so the refusal is read from what the stand-in answered.
    let decisions: Vec<String> = without.requests().into_iter().map(|r| r.decision).collect();
    assert!(
        decisions
            .iter()
            .any(|d| d.contains("cannot impersonate resource \"uids\"")),
        "{decisions:#?}"
    );

    let mut files = BASE.to_vec();
    files.push("rbac-uid-extra.yaml");
    let with = apiserver(&files).await;
    let allowed = kubectl(&with, &as_user_with_uid).await;
    assert!(allowed.success, "{}", allowed.text());
}
