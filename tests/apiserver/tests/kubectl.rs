//! The real kubectl (v1.32) against the stand-in directly: kubectl's own `--as` and
//! `--as-group` make it send the impersonation headers a gateway would add.

mod common;

use common::{demo_server, server_with, Kubectl, DEMO_RBAC};
use kube_apiserver_standin::StandinConfig;

const AS_SOMEUSER: [&str; 4] = ["--as", "someuser@example.com", "--as-group", "g1"];

fn with_user<'a>(arguments: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = AS_SOMEUSER.to_vec();
    all.extend_from_slice(arguments);
    all
}

#[tokio::test]
async fn get_pods_prints_the_table() {
    let server = demo_server().await;
    let kubectl = Kubectl::for_server(&server);
    let run = kubectl.run(&with_user(&["get", "pods"])).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(lines[1][..4], ["nginx-1", "1/1", "Running", "0"]);
    assert_eq!(lines[2][0], "nginx-2");
    // kubectl asked for a Table, as the impersonated user, with one group header.
    let list = server
        .requests()
        .into_iter()
        .find(|request| {
            request
                .path_and_query
                .starts_with("/api/v1/namespaces/default/pods")
        })
        .expect("the list request");
    assert!(list.header("accept").unwrap_or("").contains("as=Table"));
    assert_eq!(list.header_values("impersonate-group"), ["g1"]);
    let acting = list.impersonated.expect("impersonated");
    assert_eq!(acting.username, "someuser@example.com");
    assert_eq!(acting.groups, ["g1", "system:authenticated"]);
    assert_eq!(list.status, 200);
}

#[tokio::test]
async fn auth_whoami_prints_the_impersonated_user() {
    let server = demo_server().await;
    let run = Kubectl::for_server(&server)
        .run(&with_user(&["auth", "whoami"]))
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("someuser@example.com"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[g1 system:authenticated]"),
        "{}",
        run.stdout
    );
    // Without impersonation kubectl sees the gateway's service account.
    let own = Kubectl::for_server(&server)
        .run(&["auth", "whoami", "-o", "json"])
        .await;
    let review: serde_json::Value = serde_json::from_str(&own.stdout).expect("JSON");
    assert_eq!(
        review["status"]["userInfo"]["username"],
        "system:serviceaccount:kubegate-system:kubegate"
    );
}

#[tokio::test]
async fn a_user_without_a_binding_is_forbidden() {
    let server = demo_server().await;
    let run = Kubectl::for_server(&server)
        .run(&["--as", "nobody@example.com", "get", "pods"])
        .await;
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr.trim(),
        "Error from server (Forbidden): pods is forbidden: User \"nobody@example.com\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
}

#[tokio::test]
async fn exec_echo_prints_hi_over_websocket() {
    let server = demo_server().await;
    let run = Kubectl::for_server(&server)
        .run(&with_user(&["exec", "nginx-1", "--", "echo", "hi"]))
        .await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "hi\n"),
        "{run:?}"
    );
    let exec = server
        .requests()
        .into_iter()
        .find(|request| request.path_and_query.contains("/exec?"))
        .expect("the exec request");
    assert_eq!(exec.method, "GET");
    assert_eq!(exec.status, 101);
    assert_eq!(exec.header("upgrade"), Some("websocket"));
    assert!(exec
        .header("sec-websocket-protocol")
        .unwrap_or("")
        .contains("v5.channel.k8s.io"));
    assert!(exec.path_and_query.contains("command=echo&command=hi"));
}

#[tokio::test]
async fn exec_streams_stdin_and_reports_exit_codes() {
    let server = demo_server().await;
    let kubectl = Kubectl::for_server(&server);
    let cat = kubectl
        .run_with_stdin(
            &with_user(&["exec", "-i", "nginx-1", "--", "cat"]),
            Some(b"through stdin\n"),
        )
        .await;
    assert_eq!(
        (cat.code, cat.stdout.as_str()),
        (Some(0), "through stdin\n"),
        "{cat:?}"
    );
    let failing = kubectl
        .run(&with_user(&["exec", "nginx-1", "--", "false"]))
        .await;
    assert_eq!(failing.code, Some(1));
    assert!(
        failing
            .stderr
            .contains("command terminated with exit code 1"),
        "{failing:?}"
    );
}

#[tokio::test]
async fn exec_falls_back_to_spdy_when_websocket_is_refused() {
    let server = server_with(StandinConfig {
        manifests: vec![DEMO_RBAC.to_string()],
        websocket_exec: false,
        ..StandinConfig::default()
    })
    .await;
    let run = Kubectl::for_server(&server)
        .run(&with_user(&["exec", "nginx-1", "--", "echo", "hi"]))
        .await;
    // The stand-in answers the SPDY upgrade and closes: kubectl reports the broken stream.
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.starts_with("error:"), "{run:?}");
    let attempts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|request| request.path_and_query.contains("/exec?"))
        .collect();
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
    assert!(attempts[1].header("x-stream-protocol-version").is_some());
}

#[tokio::test]
async fn exec_needs_create_on_pods_exec() {
    let server = server_with(StandinConfig {
        manifests: vec![
            DEMO_RBAC.to_string(),
            // A reader who may get pods and pods/exec but not create: refused by the
            // compound check kube 1.35+ makes on a WebSocket upgrade.
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: reader-views}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: reader@example.com}]\n".to_string(),
        ],
        ..StandinConfig::default()
    })
    .await;
    let run = Kubectl::for_server(&server)
        .run(&[
            "--as",
            "reader@example.com",
            "exec",
            "nginx-1",
            "--",
            "echo",
            "hi",
        ])
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("pods \"nginx-1\" is forbidden: User \"reader@example.com\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""),
        "{run:?}"
    );
}

#[tokio::test]
async fn auth_can_i_answers_per_rbac() {
    let server = demo_server().await;
    let kubectl = Kubectl::for_server(&server);
    let yes = kubectl
        .run(&with_user(&["auth", "can-i", "list", "pods"]))
        .await;
    assert_eq!((yes.code, yes.stdout.trim()), (Some(0), "yes"), "{yes:?}");
    let no = kubectl
        .run(&with_user(&["auth", "can-i", "delete", "secrets"]))
        .await;
    assert_eq!((no.code, no.stdout.trim()), (Some(1), "no"), "{no:?}");
    let list = kubectl.run(&with_user(&["auth", "can-i", "--list"])).await;
    assert_eq!(list.code, Some(0), "{list:?}");
    assert!(list
        .stdout
        .lines()
        .any(|line| line.starts_with("pods/exec ") && line.ends_with("[create get]")));
}

#[tokio::test]
async fn admin_writes_through_kubectl() {
    let server = demo_server().await;
    let kubectl = Kubectl::for_server(&server);
    let admin = ["--as", "admin", "--as-group", "system:masters"];
    let run = |extra: &[&'static str]| {
        let mut arguments = admin.to_vec();
        arguments.extend_from_slice(extra);
        arguments
    };
    let created = kubectl
        .run(&run(&["create", "configmap", "demo", "--from-literal=a=b"]))
        .await;
    assert_eq!(
        created.stdout.trim(),
        "configmap/demo created",
        "{created:?}"
    );
    let labelled = kubectl
        .run(&run(&["label", "configmap", "demo", "x=y"]))
        .await;
    assert_eq!(
        labelled.stdout.trim(),
        "configmap/demo labeled",
        "{labelled:?}"
    );
    let listed = kubectl
        .run(&run(&["get", "configmaps", "-l", "x=y", "-o", "name"]))
        .await;
    assert_eq!(listed.stdout.trim(), "configmap/demo", "{listed:?}");
    let deleted = kubectl.run(&run(&["delete", "configmap", "demo"])).await;
    assert_eq!(
        deleted.stdout.trim(),
        "configmap \"demo\" deleted",
        "{deleted:?}"
    );
}
