//! The HTTP front end to end: TLS with HTTP/1.1 and HTTP/2 clients, the test
//! filter in the path, a local upstream that echoes what it received, bodies
//! streamed both ways, and upgrade tunnels (WebSocket and SPDY/3.1).

mod common;

use bytes::Bytes;
use common::{test_spec, wait_until};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kubegate_host::{start_gateway, GatewayConfig, RunningGateway, TlsMode, UpstreamSpec};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(10);

/// A response body fed from a channel (the upstream's streaming answer).
struct Streamed(mpsc::Receiver<Bytes>);

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

type UpstreamBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// One request as the upstream received it: method, path, headers, body.
type SeenRequest = (String, String, Vec<(String, String)>, Vec<u8>);

/// What the upstream saw (for assertions).
#[derive(Default)]
struct Seen {
    requests: Vec<SeenRequest>,
    version: Option<hyper::Version>,
}

struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    /// Fired by the test to let `/stream` send its second chunk.
    release: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

async fn upstream_handler(
    mut request: hyper::Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
    release: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
) -> Result<hyper::Response<UpstreamBody>, Infallible> {
    let upgrade = request.headers().get("upgrade").cloned();
    let on_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let method = request.method().to_string();
    let path = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    seen.lock().unwrap().version = Some(request.version());
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .requests
        .push((method, path.clone(), headers, body.clone()));
    if let (Some(protocol), Some(on_upgrade)) = (upgrade, on_upgrade) {
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let response = hyper::Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", protocol)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap();
        return Ok(response);
    }
    if path == "/stream" {
        let (tx, rx) = mpsc::channel(4);
        let gate = release.lock().unwrap().take();
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"first-chunk;")).await;
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            let _ = tx.send(Bytes::from_static(b"second-chunk")).await;
        });
        return Ok(hyper::Response::builder()
            .status(200)
            .body(Streamed(rx).boxed())
            .unwrap());
    }
    let response = hyper::Response::builder()
        .status(200)
        .header("x-upstream-secret", "hide-me")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap();
    Ok(response)
}

async fn spawn_upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let release = Arc::new(Mutex::new(None));
    let (s, r) = (seen.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (s, r) = (s.clone(), r.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| upstream_handler(req, s.clone(), r.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Upstream {
        addr,
        seen,
        release,
    }
}

async fn gateway(upstream: &Upstream, tls: TlsMode) -> RunningGateway {
    let mut config = GatewayConfig::new(test_spec(""), UpstreamSpec::http(upstream.addr));
    config.tls = tls;
    start_gateway(config).await.unwrap()
}

fn tls_connector(ca_pem: &str, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_stream(
    gateway: &RunningGateway,
    alpn: &[u8],
    server_name: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    tls_connector(&gateway.ca_pem, alpn)
        .connect(name, tcp)
        .await
        .unwrap()
}

type ClientRequest = hyper::Request<Full<Bytes>>;

async fn send_h1(gateway: &RunningGateway, request: ClientRequest) -> hyper::Response<Incoming> {
    let tls = tls_stream(gateway, b"http/1.1", "localhost").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    tokio::time::timeout(LIMIT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn send_h2(gateway: &RunningGateway, request: ClientRequest) -> hyper::Response<Incoming> {
    let tls = tls_stream(gateway, b"h2", "127.0.0.1").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    tokio::time::timeout(LIMIT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

fn request(method: &str, uri: &str, action: &str, body: &'static [u8]) -> ClientRequest {
    hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("x-test-action", action)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

async fn body_of(response: hyper::Response<Incoming>) -> Vec<u8> {
    tokio::time::timeout(LIMIT, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn last_seen(upstream: &Upstream) -> SeenRequest {
    upstream
        .seen
        .lock()
        .unwrap()
        .requests
        .last()
        .cloned()
        .expect("the upstream saw a request")
}

fn seen_header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn http1_over_tls_forwards_with_the_filters_changes() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    let mut req = hyper::Request::builder()
        .uri("/api/v1/pods")
        .header("host", "k8s.example.com")
        .header("x-test-action", "mutate")
        .header("x-remove", "gone")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "hop-by-hop by connection")
        .header("te", "trailers")
        .body(Full::new(Bytes::new()))
        .unwrap();
    req.headers_mut().append("x-replace", "a".parse().unwrap());
    req.headers_mut().append("x-replace", "b".parse().unwrap());
    let response = send_h1(&gateway, req).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("x-response-filtered").unwrap(), "1");
    assert!(
        response.headers().get("x-upstream-secret").is_none(),
        "the response callback removed it"
    );
    let (method, path, headers, _) = last_seen(&upstream);
    assert_eq!(method, "GET");
    assert_eq!(path, "/rewritten?by=filter", ":path change honoured");
    assert_eq!(
        seen_header(&headers, "host"),
        vec!["k8s.example.com"],
        "Host is the :authority"
    );
    assert_eq!(seen_header(&headers, "x-replace"), vec!["new"]);
    assert!(seen_header(&headers, "x-remove").is_empty());
    assert_eq!(seen_header(&headers, "x-added"), vec!["1"]);
    assert!(
        seen_header(&headers, "te").is_empty(),
        "hop-by-hop headers are not forwarded"
    );
    assert!(!seen_header(&headers, "connection").contains(&"keep-alive, x-hop"));
    assert!(
        seen_header(&headers, "x-hop").is_empty(),
        "headers nominated by Connection are hop-by-hop"
    );
    assert_eq!(seen_header(&headers, "x-forwarded-proto"), vec!["https"]);
    assert_eq!(
        seen_header(&headers, "x-request-id").len(),
        1,
        "Envoy generates a request id"
    );
    assert_eq!(
        upstream.seen.lock().unwrap().version,
        Some(hyper::Version::HTTP_11)
    );
}

#[tokio::test]
async fn http2_over_tls_is_served_and_forwarded_as_http1() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(
        &upstream,
        TlsMode::Generate {
            names: vec!["k8s.example.com".to_string()],
        },
    )
    .await;
    let req = request("GET", "https://k8s.example.com/api?x=1", "props", b"");
    let response = send_h2(&gateway, req).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let (_, path, headers, _) = last_seen(&upstream);
    assert_eq!(path, "/api?x=1");
    assert_eq!(seen_header(&headers, "host"), vec!["k8s.example.com"]);
    assert_eq!(
        seen_header(&headers, "x-prop-request-protocol"),
        vec!["HTTP/2"]
    );
    assert_eq!(
        seen_header(&headers, "x-prop-request-host"),
        vec!["k8s.example.com"]
    );
    assert_eq!(seen_header(&headers, "x-prop-source-address").len(), 1);
    assert_eq!(
        upstream.seen.lock().unwrap().version,
        Some(hyper::Version::HTTP_11)
    );
}

#[tokio::test]
async fn a_local_reply_goes_back_with_status_headers_and_body_and_nothing_is_forwarded() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    for h2 in [false, true] {
        let req = request("GET", "https://localhost/secret", "local-reply", b"");
        let response = if h2 {
            send_h2(&gateway, req).await
        } else {
            send_h1(&gateway, req).await
        };
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers().get("x-reason").unwrap(), "denied");
        assert_eq!(body_of(response).await, b"denied by filter");
    }
    assert!(upstream.seen.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn request_bodies_stream_through_the_body_callbacks() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    let response = send_h2(
        &gateway,
        request(
            "POST",
            "https://localhost/apis",
            "body-upper",
            b"{\"kind\":\"pod\"}",
        ),
    )
    .await;
    assert_eq!(response.status(), 200);
    // The upstream echoes the body it received: the filter's version.
    assert_eq!(body_of(response).await, b"{\"KIND\":\"POD\"}");
    let response = send_h1(
        &gateway,
        request("POST", "/apis", "body-deny", b"please forbid"),
    )
    .await;
    assert_eq!(response.status(), 403);
    assert_eq!(body_of(response).await, b"body refused");
}

#[tokio::test]
async fn response_bodies_stream_as_they_arrive() {
    let upstream = spawn_upstream().await;
    let (release, gate) = oneshot::channel();
    *upstream.release.lock().unwrap() = Some(gate);
    let gateway = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    let response = send_h2(
        &gateway,
        request("GET", "https://localhost/stream", "", b""),
    )
    .await;
    let mut body = response.into_body();
    // The first chunk arrives while the upstream still holds the second back.
    let first = tokio::time::timeout(LIMIT, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first.into_data().unwrap(),
        Bytes::from_static(b"first-chunk;")
    );
    release.send(()).unwrap();
    let rest = tokio::time::timeout(LIMIT, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, Bytes::from_static(b"second-chunk"));
}

/// Sends a raw HTTP/1.1 upgrade request and returns the response head and the stream.
async fn raw_upgrade(
    gateway: &RunningGateway,
    head: &str,
) -> (
    String,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) {
    let mut tls = tls_stream(gateway, b"http/1.1", "localhost").await;
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(LIMIT, tls.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed during the response head: {}",
            String::from_utf8_lossy(&response)
        );
        response.push(byte[0]);
    }
    (String::from_utf8(response).unwrap(), tls)
}

async fn echo_through(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    message: &[u8],
) {
    tls.write_all(message).await.unwrap();
    let mut echoed = vec![0u8; message.len()];
    tokio::time::timeout(LIMIT, tls.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, message);
}

#[tokio::test]
async fn websocket_and_spdy_upgrades_become_tunnels() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    let websocket = "GET /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: localhost\r\n\
        Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\
        x-test-action: headers\r\n\r\n";
    let (head, mut tls) = raw_upgrade(&gateway, websocket).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    echo_through(&mut tls, b"\x01hello from kubectl").await;
    echo_through(&mut tls, b"second message").await;
    let (_, _, headers, _) = last_seen(&upstream);
    assert_eq!(seen_header(&headers, "upgrade"), vec!["websocket"]);
    assert_eq!(
        seen_header(&headers, "sec-websocket-protocol"),
        vec!["v5.channel.k8s.io"]
    );
    assert_eq!(
        seen_header(&headers, "x-dup-first"),
        vec!["<none>"],
        "the filter ran on the upgrade request"
    );

    let spdy = "POST /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: localhost\r\n\
        Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
        Content-Length: 0\r\n\r\n";
    let (head, mut tls) = raw_upgrade(&gateway, spdy).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    echo_through(&mut tls, b"spdy frames").await;
}

#[tokio::test]
async fn a_refused_upgrade_gets_the_filters_reply() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    let head =
        "GET /exec HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
        x-test-action: local-reply\r\n\r\n";
    let (head, _tls) = raw_upgrade(&gateway, head).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(upstream.seen.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn plain_http_works_for_tests_and_a_trap_fails_closed() {
    let upstream = spawn_upstream().await;
    let gateway = gateway(&upstream, TlsMode::Plain).await;
    assert!(gateway.url().starts_with("http://127.0.0.1:"));
    let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let trap = request("GET", "/x", "trap", b"");
    let response = sender.send_request(trap).await.unwrap();
    assert_eq!(response.status(), 500);
    let _ = body_of(response).await;
    let ok = sender
        .send_request(request("GET", "/x", "headers", b""))
        .await
        .unwrap();
    assert_eq!(
        ok.status(),
        200,
        "the next request on the same connection is served"
    );
    let _ = body_of(ok).await;
    assert!(wait_until(LIMIT, || gateway
        .plugin
        .logs()
        .iter()
        .any(|l| l.message.starts_with("access "))));
}

#[tokio::test]
async fn an_unreachable_upstream_is_503() {
    let upstream = spawn_upstream().await;
    let mut config = GatewayConfig::new(test_spec(""), UpstreamSpec::http(upstream.addr));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    config.upstream = UpstreamSpec::http(closed);
    let gateway = start_gateway(config).await.unwrap();
    let response = send_h1(&gateway, request("GET", "/", "", b"")).await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn a_tls_upstream_is_verified_by_its_ca_or_skipped_on_request() {
    // The gateway itself serves as a TLS upstream for a second gateway.
    let upstream = spawn_upstream().await;
    let inner = gateway(&upstream, TlsMode::Generate { names: vec![] }).await;
    let verified = UpstreamSpec {
        url: format!("https://localhost:{}", inner.addr.port()),
        ca_pem: Some(inner.ca_pem.clone()),
        ..UpstreamSpec::default()
    };
    let outer = start_gateway(GatewayConfig::new(test_spec(""), verified))
        .await
        .unwrap();
    assert_eq!(
        send_h1(&outer, request("GET", "/ok", "", b""))
            .await
            .status(),
        200
    );

    let unknown_ca = kubegate_host::generate_certificates(&[]).unwrap().0;
    let wrong = UpstreamSpec {
        url: format!("https://localhost:{}", inner.addr.port()),
        ca_pem: Some(unknown_ca),
        ..UpstreamSpec::default()
    };
    let outer = start_gateway(GatewayConfig::new(test_spec(""), wrong))
        .await
        .unwrap();
    assert_eq!(
        send_h1(&outer, request("GET", "/ok", "", b""))
            .await
            .status(),
        503,
        "an unknown CA is refused"
    );

    let skip = UpstreamSpec {
        url: format!("https://127.0.0.1:{}", inner.addr.port()),
        tls_skip_verify: true,
        ..UpstreamSpec::default()
    };
    let outer = start_gateway(GatewayConfig::new(test_spec(""), skip))
        .await
        .unwrap();
    assert_eq!(
        send_h1(&outer, request("GET", "/ok", "", b""))
            .await
            .status(),
        200
    );
}
