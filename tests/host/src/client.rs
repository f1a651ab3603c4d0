//! HTTP/1.1 client connections to an upstream or cluster on this machine,
//! plain or TLS (verification by a CA PEM, the system roots, or skipped on
//! request). The TLS server name is the URL's host unless `sni` is set.

use crate::spec::UpstreamSpec;
use anyhow::{anyhow, bail, Context};
use hyper::body::Body;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Where and how to connect, parsed from an [`UpstreamSpec`] URL.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// `host[:port]` as written in the URL.
    pub authority: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("bad upstream URL {url:?}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => bail!("upstream URL {url:?} must be http:// or https://, not {other:?}"),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("upstream URL {url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            host,
            port,
            tls,
            authority: authority.as_str().to_string(),
        })
    }
}

/// Accepts any server certificate (`tls_skip_verify`); signatures are still checked.
#[derive(Debug)]
struct SkipVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM document.
pub(crate) fn certificates_from_pem(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading certificates from PEM")?;
    if certs.is_empty() {
        bail!("no certificate in the PEM data");
    }
    Ok(certs)
}

/// The rustls client configuration for `spec` with the given ALPN protocols.
pub(crate) fn tls_config(
    spec: &UpstreamSpec,
    alpn: &[&[u8]],
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let mut config = if spec.tls_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let pem = match &spec.ca_pem {
            Some(pem) => pem.clone(),
            None => std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
                .context("no ca_pem given and no system CA bundle to verify the upstream")?,
        };
        for cert in certificates_from_pem(&pem)? {
            // A bundle may hold certificates rustls cannot use; the rest still count.
            let _ = roots.add(cert);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Opens an HTTP/1.1 connection (with upgrade support) to `spec`.
pub(crate) async fn connect<B>(spec: &UpstreamSpec) -> anyhow::Result<http1::SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let target = Target::parse(&spec.url)?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("connecting to {}", target.authority))?;
    let _ = tcp.set_nodelay(true);
    if target.tls {
        let config = tls_config(spec, &[b"http/1.1"])?;
        let name = spec.sni.clone().unwrap_or_else(|| target.host.clone());
        let server_name = ServerName::try_from(name.clone())
            .with_context(|| format!("bad TLS server name {name:?}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {}", target.authority))?;
        handshake(TokioIo::new(tls)).await
    } else {
        handshake(TokioIo::new(tcp)).await
    }
}

async fn handshake<B, IO>(io: IO) -> anyhow::Result<http1::SendRequest<B>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, connection) = http1::handshake(io).await.context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}
