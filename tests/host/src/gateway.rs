//! The listener: TLS with ALPN h2 and http/1.1 (or plain HTTP/1.1 for
//! tests), every request through the plugin, then to the upstream.

use crate::exchange::TlsInfo;
use crate::front::{serve, Connection, Front};
use crate::plugin::Plugin;
use crate::spec::{PluginSpec, UpstreamSpec};
use crate::tls::{server_tls, TlsMode};
use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the gateway runs from.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Where to listen; 127.0.0.1 unless configured otherwise.
    pub listen: SocketAddr,
    pub tls: TlsMode,
    pub plugin: PluginSpec,
    pub upstream: UpstreamSpec,
}

impl GatewayConfig {
    /// 127.0.0.1 on a free port, with a generated certificate.
    pub fn new(plugin: PluginSpec, upstream: UpstreamSpec) -> GatewayConfig {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: TlsMode::Generate { names: Vec::new() },
            plugin,
            upstream,
        }
    }
}

/// A gateway that is serving. Dropping it stops accepting connections.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// PEM of the CA clients should trust (the certificate itself when loaded
    /// from files; empty for plain HTTP).
    pub ca_pem: String,
    /// PEM of the server certificate.
    pub cert_pem: String,
    pub plugin: Arc<Plugin>,
    pub tls: bool,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningGateway {
    /// `https://127.0.0.1:PORT` (or `http://` for plain).
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Stops accepting and waits for the accept loop to end; open
    /// connections finish on their own.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Loads the plugin, binds the listener and serves in the background.
pub async fn start_gateway(config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    crate::client::Target::parse(&config.upstream.url)?;
    let spec = config.plugin.clone();
    let plugin = Arc::new(
        tokio::task::spawn_blocking(move || Plugin::load(spec))
            .await
            .context("loading the plugin")??,
    );
    let tls = server_tls(&config.tls)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (ca_pem, cert_pem) = tls
        .as_ref()
        .map(|t| (t.ca_pem.clone(), t.cert_pem.clone()))
        .unwrap_or_default();
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
    let front = Arc::new(Front {
        plugin: plugin.clone(),
        upstream: config.upstream.clone(),
    });
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut next_id: u64 = 0;
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    next_id += 1;
                    tokio::spawn(serve_connection(front.clone(), acceptor.clone(), tcp, peer, addr, next_id));
                }
            }
        }
    });
    Ok(RunningGateway {
        addr,
        ca_pem,
        cert_pem,
        plugin,
        tls: acceptor_present(&config.tls),
        stop,
        task: Some(task),
    })
}

fn acceptor_present(mode: &TlsMode) -> bool {
    !matches!(mode, TlsMode::Plain)
}

fn tls_version_name(version: Option<rustls::ProtocolVersion>) -> String {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

async fn serve_connection(
    front: Arc<Front>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    tcp: TcpStream,
    source: SocketAddr,
    destination: SocketAddr,
    id: u64,
) {
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        let connection = Arc::new(Connection {
            source,
            destination,
            protocol: "HTTP/1.1",
            tls: None,
            id,
        });
        let service = service_fn(move |request| serve(front.clone(), connection.clone(), request));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades()
            .await;
        return;
    };
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let (_, session) = tls.get_ref();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let info = TlsInfo {
        sni: session.server_name().map(str::to_string),
        version: tls_version_name(session.protocol_version()),
        peer_certificate: session.peer_certificates().is_some_and(|c| !c.is_empty()),
    };
    let protocol = if h2 { "HTTP/2" } else { "HTTP/1.1" };
    let connection = Arc::new(Connection {
        source,
        destination,
        protocol,
        tls: Some(info),
        id,
    });
    let service = service_fn(move |request| serve(front.clone(), connection.clone(), request));
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tls), service)
            .with_upgrades()
            .await;
    }
}
