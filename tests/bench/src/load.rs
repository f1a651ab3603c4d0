//! The load run: kubectl-like clients (one HTTP/2 connection over TLS each, one request
//! after another, each with its own session token) against the host's gateway in front
//! of a trivial upstream, once with kubegate and once with a filter that only continues.
//! Everything listens on 127.0.0.1 and each run stops after its duration.

use crate::scenarios::{ACCEPT, PATH, USER_AGENT};
use crate::timing::percentile;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kubegate_host::{start_gateway, GatewayConfig, PluginSpec, RunningGateway, UpstreamSpec};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// A filter that lets every request through untouched: the host's own cost.
pub const PASS_THROUGH_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1)))"#;

/// What a list of pods looks like to kubectl, small enough not to be the bottleneck.
const POD_LIST: &str =
    r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#;

pub struct LoadResult {
    pub requests: usize,
    /// Answers other than 200 (counted, not timed).
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl LoadResult {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Serves `POD_LIST` to every request on 127.0.0.1 until the process ends.
pub async fn start_upstream() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(POD_LIST.as_bytes())))
                            .expect("a static response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The host's TLS front with `plugin` before `upstream`.
pub async fn gateway(plugin: PluginSpec, upstream: SocketAddr) -> Result<RunningGateway> {
    start_gateway(GatewayConfig::new(plugin, UpstreamSpec::http(upstream))).await
}

fn tls_connector(ca_pem: &str) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // client-go speaks HTTP/2 whenever the server offers it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// One client: its own connection, requests back to back until `until`; latencies of
/// requests started after `record_from`.
async fn client(
    gateway: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    token: String,
    record_from: Instant,
    until: Instant,
) -> Result<(Vec<Duration>, usize)> {
    let tcp = TcpStream::connect(gateway).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let tls = connector.connect(name, tcp).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let uri = format!("https://localhost:{}{PATH}", gateway.port());
    let (mut latencies, mut errors) = (Vec::new(), 0);
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let request = hyper::Request::get(uri.as_str())
            .header("user-agent", USER_AGENT)
            .header("accept", ACCEPT)
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let ok = response.status() == hyper::StatusCode::OK;
        response.into_body().collect().await?;
        if started >= record_from {
            if ok {
                latencies.push(started.elapsed());
            } else {
                errors += 1;
            }
        }
    }
    Ok((latencies, errors))
}

/// `tokens.len()` clients against `gateway` for `warm_up` (not recorded) then `duration`.
pub async fn run(
    gateway: &RunningGateway,
    tokens: &[String],
    warm_up: Duration,
    duration: Duration,
) -> Result<LoadResult> {
    let connector = tls_connector(&gateway.ca_pem)?;
    let record_from = Instant::now() + warm_up;
    let until = record_from + duration;
    let clients: Vec<_> = tokens
        .iter()
        .map(|token| {
            tokio::spawn(client(
                gateway.addr,
                connector.clone(),
                token.clone(),
                record_from,
                until,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for client in clients {
        let (mine, failed) = client
            .await
            .map_err(|e| anyhow!("a load client panicked: {e}"))?
            .context("a load client failed")?;
        latencies.extend(mine);
        errors += failed;
    }
    let elapsed = Instant::now().saturating_duration_since(record_from);
    Ok(LoadResult {
        requests: latencies.len(),
        errors,
        elapsed,
        p50: percentile(&mut latencies, 50.0),
        p99: percentile(&mut latencies, 99.0),
    })
}
