//! Shared test helpers: an HTTP/1.1 or HTTP/2 client that trusts the stand-in's CA, and
//! the real kubectl with a fresh HOME and a kubeconfig for the stand-in.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube_apiserver_standin::{start, RunningApiServer, StandinConfig};
use serde_json::Value;

/// The RBAC of kubegate's demo: the gateway's service account may impersonate users,
/// groups and service accounts; someuser@example.com reads pods and may exec.
pub const DEMO_RBAC: &str = include_str!("../../../testkit/manifests/demo-rbac.yaml");

/// Bounds every network step of a test.
pub const STEP: Duration = Duration::from_secs(20);

/// A stand-in with the demo RBAC, HTTPS, WebSocket exec and the default pods.
pub async fn demo_server() -> RunningApiServer {
    server_with(StandinConfig {
        manifests: vec![DEMO_RBAC.to_string()],
        ..StandinConfig::default()
    })
    .await
}

pub async fn server_with(config: StandinConfig) -> RunningApiServer {
    start(config).await.expect("the stand-in starts")
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub version: hyper::Version,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// How to reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// Sends one request on a new connection (TLS when the server has a CA).
pub async fn send(
    server: &RunningApiServer,
    protocol: Protocol,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    tokio::time::timeout(
        STEP,
        send_unbounded(server, protocol, method, target, headers, body),
    )
    .await
    .expect("the request completes in time")
}

async fn send_unbounded(
    server: &RunningApiServer,
    protocol: Protocol,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let tcp = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let mut builder = Request::builder().method(method).uri(target);
    if protocol == Protocol::Http2 {
        builder = builder.uri(format!("{}{target}", server.url()));
    } else {
        builder = builder.header("host", server.addr().to_string());
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    if server.ca_pem().is_empty() {
        exchange(tcp, protocol, request).await
    } else {
        let tls = connector(server.ca_pem(), protocol)
            .connect(
                rustls::pki_types::ServerName::IpAddress(server.addr().ip().into()),
                tcp,
            )
            .await
            .expect("TLS handshake");
        exchange(tls, protocol, request).await
    }
}

fn connector(ca_pem: &str, protocol: Protocol) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots
            .add(certificate.expect("CA PEM"))
            .expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = match protocol {
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
        Protocol::Http2 => vec![b"h2".to_vec()],
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn exchange<S>(stream: S, protocol: Protocol, request: Request<Full<Bytes>>) -> Reply
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let response = match protocol {
        Protocol::Http1 => {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("HTTP/1.1 handshake");
            tokio::spawn(connection);
            sender
                .send_request(request)
                .await
                .expect("HTTP/1.1 response")
        }
        Protocol::Http2 => {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("HTTP/2 response")
        }
    };
    let status = response.status().as_u16();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
        version,
    }
}

/// A GET as the service account, optionally impersonating.
pub async fn get_as(
    server: &RunningApiServer,
    target: &str,
    impersonation: &[(&str, &str)],
) -> Reply {
    let authorization = format!("Bearer {}", server.token());
    let mut headers = vec![("authorization", authorization.as_str())];
    headers.extend_from_slice(impersonation);
    send(server, Protocol::Http1, "GET", target, &headers, b"").await
}

/// A scratch directory removed on drop.
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "standin-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("scratch directory");
        ScratchDir { path }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What kubectl did.
#[derive(Debug)]
pub struct KubectlRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The real kubectl, pointed at one stand-in with the service account's token, with a
/// HOME of its own (so no discovery cache hides requests).
pub struct Kubectl {
    home: ScratchDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn for_server(server: &RunningApiServer) -> Self {
        use base64::Engine;
        let home = ScratchDir::new("kubectl-home");
        let kubeconfig = home.path.join("kubeconfig");
        let ca = base64::engine::general_purpose::STANDARD.encode(server.ca_pem());
        let cluster = if server.ca_pem().is_empty() {
            format!("    server: {}\n", server.url())
        } else {
            format!(
                "    server: {}\n    certificate-authority-data: {ca}\n",
                server.url()
            )
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n{cluster}users:\n- name: gateway\n  user:\n    token: {}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    user: gateway\n    namespace: default\ncurrent-context: standin\n",
            server.token()
        );
        std::fs::write(&kubeconfig, text).expect("kubeconfig");
        Kubectl { home, kubeconfig }
    }

    /// Runs kubectl with `arguments` (and `stdin`), bounded in time.
    pub async fn run_with_stdin(&self, arguments: &[&str], stdin: Option<&[u8]>) -> KubectlRun {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new("kubectl");
        command
            .args(arguments)
            .env_clear()
            .env("HOME", &self.home.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .expect("kubectl v1.32 must be installed (/usr/bin/kubectl)");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).await.expect("kubectl stdin");
            drop(pipe);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finishes in time")
            .expect("kubectl runs");
        KubectlRun {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub async fn run(&self, arguments: &[&str]) -> KubectlRun {
        self.run_with_stdin(arguments, None).await
    }
}
