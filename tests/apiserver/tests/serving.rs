//! Serving: HTTP/1.1 and HTTP/2 over TLS (by ALPN) and plain HTTP, discovery documents,
//! Tables, watches, the recorder, and the binary's flags.

mod common;

use std::time::Duration;

use common::{demo_server, get_as, send, server_with, Protocol, ScratchDir, DEMO_RBAC, STEP};
use kube_apiserver_standin::{Seed, StandinConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const SOMEUSER: [(&str, &str); 1] = [("impersonate-user", "someuser@example.com")];
const ADMIN: [(&str, &str); 2] = [
    ("impersonate-user", "admin"),
    ("impersonate-group", "system:masters"),
];

#[tokio::test]
async fn tls_offers_http2_and_http1() {
    let server = demo_server().await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    assert!(server.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let authorization = format!("Bearer {}", server.token());
    for (protocol, version) in [
        (Protocol::Http1, hyper::Version::HTTP_11),
        (Protocol::Http2, hyper::Version::HTTP_2),
    ] {
        let reply = send(
            &server,
            protocol,
            "GET",
            "/version",
            &[("authorization", authorization.as_str())],
            b"",
        )
        .await;
        assert_eq!((reply.status, reply.version), (200, version));
        assert_eq!(reply.json()["gitVersion"], "v1.32.4-standin");
    }
    let recorded: Vec<String> = server
        .requests()
        .iter()
        .map(|request| request.version.clone())
        .collect();
    assert_eq!(recorded, ["HTTP/1.1", "HTTP/2.0"]);
}

#[tokio::test]
async fn plain_http_serves_http1_and_prior_knowledge_http2() {
    let server = server_with(StandinConfig {
        tls: false,
        manifests: vec![DEMO_RBAC.to_string()],
        ..StandinConfig::default()
    })
    .await;
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.ca_pem(), "");
    let authorization = format!("Bearer {}", server.token());
    for (protocol, version) in [
        (Protocol::Http1, hyper::Version::HTTP_11),
        (Protocol::Http2, hyper::Version::HTTP_2),
    ] {
        let reply = send(
            &server,
            protocol,
            "GET",
            "/api/v1/namespaces/default/pods",
            &[("authorization", authorization.as_str()), SOMEUSER[0]],
            b"",
        )
        .await;
        assert_eq!((reply.status, reply.version), (200, version));
    }
}

#[tokio::test]
async fn discovery_documents() {
    let server = demo_server().await;
    let api = get_as(&server, "/api", &SOMEUSER).await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let groups = get_as(&server, "/apis", &SOMEUSER).await.json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|group| group["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "authentication.k8s.io",
            "authorization.k8s.io",
            "rbac.authorization.k8s.io"
        ]
    );
    let core = get_as(&server, "/api/v1", &SOMEUSER).await.json();
    assert_eq!(core["groupVersion"], "v1");
    assert!(
        core.get("apiVersion").is_none(),
        "the core list has no apiVersion"
    );
    let resources: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for expected in [
        "pods",
        "pods/exec",
        "pods/log",
        "namespaces",
        "secrets",
        "configmaps",
        "services",
    ] {
        assert!(resources.contains(&expected), "{expected} in {resources:?}");
    }
    let authentication = get_as(&server, "/apis/authentication.k8s.io/v1", &SOMEUSER)
        .await
        .json();
    assert_eq!(authentication["resources"][0]["name"], "selfsubjectreviews");
    assert_eq!(authentication["resources"][0]["verbs"], json!(["create"]));
    // /version is written indented, like the API server's raw JSON writer.
    let version = get_as(&server, "/version", &SOMEUSER).await;
    assert!(version.text().starts_with("{\n  \""), "{}", version.text());
    assert_eq!(get_as(&server, "/healthz", &SOMEUSER).await.text(), "ok");
}

#[tokio::test]
async fn lists_and_tables() {
    let server = server_with(StandinConfig {
        manifests: vec![DEMO_RBAC.to_string()],
        seed: Seed {
            namespace: "apps".to_string(),
            pods: vec!["a-1".to_string(), "b-1".to_string()],
        },
        ..StandinConfig::default()
    })
    .await;
    let list = get_as(
        &server,
        "/api/v1/namespaces/apps/pods?labelSelector=app%3Dnginx&limit=500",
        &SOMEUSER,
    )
    .await
    .json();
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind"
    );
    let one = get_as(
        &server,
        "/api/v1/namespaces/apps/pods?fieldSelector=metadata.name%3Db-1",
        &SOMEUSER,
    )
    .await
    .json();
    assert_eq!(one["items"][0]["metadata"]["name"], "b-1");
    let bad = get_as(
        &server,
        "/api/v1/namespaces/apps/pods?fieldSelector=spec.foo%3D1",
        &SOMEUSER,
    )
    .await;
    assert_eq!(
        (bad.status, bad.json()["message"].as_str()),
        (400, Some("field label not supported: spec.foo"))
    );
    let mut headers = SOMEUSER.to_vec();
    headers.push(("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
    let table = get_as(&server, "/api/v1/namespaces/apps/pods", &headers)
        .await
        .json();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(
        table["rows"][0]["cells"].as_array().unwrap()[..4],
        [json!("a-1"), json!("1/1"), json!("Running"), json!("0")]
    );
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    // All namespaces: only the seeded pods exist.
    let everywhere = get_as(&server, "/api/v1/pods", &SOMEUSER).await.json();
    assert_eq!(everywhere["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn watch_streams_existing_and_new_objects() {
    let server = demo_server().await;
    let authorization = format!("Bearer {}", server.token());
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    // Plain HTTP/1.1 over TLS by hand, to read the chunked stream as it arrives.
    let connector = {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_pemfile::certs(&mut server.ca_pem().as_bytes()) {
            roots.add(certificate.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
    };
    let mut tls = connector
        .connect(
            rustls::pki_types::ServerName::IpAddress(server.addr().ip().into()),
            tcp,
        )
        .await
        .unwrap();
    let request = format!(
        "GET /api/v1/namespaces/default/pods?watch=true&timeoutSeconds=20 HTTP/1.1\r\nhost: x\r\nauthorization: {authorization}\r\nimpersonate-user: admin\r\nimpersonate-group: system:masters\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut reader = tokio::io::BufReader::new(tls);
    let mut received = String::new();
    let added = tokio::time::timeout(STEP, async {
        let mut line = String::new();
        while received.matches("\"ADDED\"").count() < 2 {
            line.clear();
            if reader.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            received.push_str(&line);
        }
    })
    .await;
    assert!(added.is_ok(), "initial events: {received}");
    assert!(received.starts_with("HTTP/1.1 200 OK"));
    // A pod created now arrives as ADDED on the open watch.
    let created = send(
        &server,
        Protocol::Http2,
        "POST",
        "/api/v1/namespaces/default/pods",
        &[("authorization", authorization.as_str()), ADMIN[0], ADMIN[1], ("content-type", "application/json")],
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"late"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let late = tokio::time::timeout(STEP, async {
        let mut line = String::new();
        while !received.contains("\"late\"") {
            line.clear();
            if reader.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            received.push_str(&line);
        }
    })
    .await;
    assert!(
        late.is_ok() && received.contains("{\"type\":\"ADDED\",\"object\":{"),
        "{received}"
    );
}

#[tokio::test]
async fn recorder_keeps_method_target_headers_and_decision_and_clears() {
    let server = demo_server().await;
    let reply = get_as(
        &server,
        "/api/v1/namespaces/default/pods?limit=500&x=a%2Fb",
        &[
            ("impersonate-user", "nobody@example.com"),
            ("x-repeated", "1"),
            ("x-repeated", "2"),
        ],
    )
    .await;
    assert_eq!(reply.status, 403);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path_and_query,
        "/api/v1/namespaces/default/pods?limit=500&x=a%2Fb"
    );
    assert_eq!(request.header_values("x-repeated"), ["1", "2"]);
    assert_eq!(
        request.header("authorization"),
        Some("Bearer standin-service-account-token")
    );
    assert_eq!(request.status, 403);
    assert!(
        request.decision.starts_with("forbidden: pods is forbidden"),
        "{}",
        request.decision
    );
    assert_eq!(request.effective_user(), Some("nobody@example.com"));
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn manifests_applied_later_take_effect() {
    let server = demo_server().await;
    assert_eq!(
        get_as(&server, "/api/v1/namespaces", &SOMEUSER)
            .await
            .status,
        403
    );
    server
        .apply_manifest(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: someuser-views}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: User, name: someuser@example.com}]\n",
        )
        .unwrap();
    let namespaces = get_as(&server, "/api/v1/namespaces", &SOMEUSER).await;
    assert_eq!(namespaces.status, 200);
    // The aggregated role shows its rules, as the controller manager fills them in.
    let view = get_as(
        &server,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
        &ADMIN,
    )
    .await
    .json();
    assert!(
        view["rules"]
            .as_array()
            .is_some_and(|rules| rules.len() >= 4),
        "{view}"
    );
    let listed = namespaces.json();
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "kubegate-system"
        ]
    );
}

/// Starts the binary; returns the child and the URL it printed.
async fn start_binary(arguments: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-apiserver-standin"))
        .args(arguments)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(STEP, tokio::io::BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("the binary prints its URL")
        .unwrap();
    let url = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string();
    (child, url)
}

async fn raw_get(address: &str, token: Option<&str>) -> String {
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let authorization = token
        .map(|token| format!("authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    tcp.write_all(
        format!("GET /version HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{authorization}\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    answer
}

#[tokio::test]
async fn binary_flags() {
    let scratch = ScratchDir::new("binary");
    let token_file = scratch.path.join("token");
    std::fs::write(&token_file, "file-token\n").unwrap();
    let manifest = scratch.path.join("rbac.yaml");
    std::fs::write(&manifest, DEMO_RBAC).unwrap();
    let (_plain, url) = start_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        token_file.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--plain-http",
    ])
    .await;
    let address = url.strip_prefix("http://").expect("a plain URL");
    assert!(raw_get(address, None).await.starts_with("HTTP/1.1 401"));
    assert!(raw_get(address, Some("file-token"))
        .await
        .starts_with("HTTP/1.1 200"));

    let ca_file = scratch.path.join("ca.pem");
    let (_tls, url) = start_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--token",
        "t",
        "--print-ca",
        ca_file.to_str().unwrap(),
    ])
    .await;
    assert!(url.starts_with("https://127.0.0.1:"));
    assert!(std::fs::read_to_string(&ca_file)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-apiserver-standin"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a token is required"));
}

#[tokio::test]
async fn websocket_subprotocol_bearer_tokens_authenticate_upgrades() {
    let server = demo_server().await;
    // `standin-service-account-token` in unpadded base64url.
    let protocol = "base64url.bearer.authorization.k8s.io.c3RhbmRpbi1zZXJ2aWNlLWFjY291bnQtdG9rZW4, v5.channel.k8s.io";
    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-protocol", protocol),
        ("impersonate-user", "someuser@example.com"),
    ];
    let reply = send(
        &server,
        Protocol::Http1,
        "GET",
        "/api/v1/namespaces/default/pods/nginx-1/exec?command=true&stdout=true",
        &upgrade,
        b"",
    )
    .await;
    assert_eq!(reply.status, 101);
    assert_eq!(
        reply.headers["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(reply.headers["sec-websocket-protocol"], "v5.channel.k8s.io");
    // Outside an upgrade the protocol header is no credential.
    let plain = send(
        &server,
        Protocol::Http1,
        "GET",
        "/version",
        &[("sec-websocket-protocol", protocol)],
        b"",
    )
    .await;
    assert_eq!(plain.status, 401);
}
