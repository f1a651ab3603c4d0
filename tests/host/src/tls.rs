//! The listener's certificate: files given in the configuration, or a CA and
//! a server certificate generated at start (rcgen) for 127.0.0.1, localhost,
//! ::1 and any configured names. The CA PEM is what clients such as kubectl
//! trust (`certificate-authority-data`).

use anyhow::{bail, Context};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// How the front listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Generate a CA and a server certificate for the loopback names plus these.
    Generate { names: Vec<String> },
    /// Certificate chain and private key files (PEM).
    Files { cert: PathBuf, key: PathBuf },
    /// Plain HTTP/1.1 (tests).
    Plain,
}

/// A server TLS configuration and the PEM clients should trust.
pub(crate) struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: String,
    pub cert_pem: String,
}

/// The names every generated certificate covers.
pub const DEFAULT_NAMES: &[&str] = &["127.0.0.1", "localhost", "::1"];

/// Generates a CA and a server certificate signed by it: (ca_pem, cert_pem, key_pem).
pub fn generate_certificates(extra_names: &[String]) -> anyhow::Result<(String, String, String)> {
    let ca_key = KeyPair::generate().context("CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kubegate-host local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).context("CA certificate")?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let mut names: Vec<String> = DEFAULT_NAMES.iter().map(|n| n.to_string()).collect();
    for name in extra_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let key = KeyPair::generate().context("server key")?;
    let mut params = CertificateParams::new(names).context("server certificate names")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kubegate-host");
    let cert = params
        .signed_by(&key, &issuer)
        .context("server certificate")?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

fn private_key(pem: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    match rustls_pemfile::private_key(&mut pem.as_bytes()).context("reading the private key")? {
        Some(key) => Ok(key),
        None => bail!("no private key in the PEM data"),
    }
}

pub(crate) fn server_tls(mode: &TlsMode) -> anyhow::Result<Option<ServerTls>> {
    let (ca_pem, cert_pem, key_pem) = match mode {
        TlsMode::Plain => return Ok(None),
        TlsMode::Generate { names } => generate_certificates(names)?,
        TlsMode::Files { cert, key } => {
            let cert_pem = std::fs::read_to_string(cert)
                .with_context(|| format!("reading {}", cert.display()))?;
            let key_pem = std::fs::read_to_string(key)
                .with_context(|| format!("reading {}", key.display()))?;
            (cert_pem.clone(), cert_pem, key_pem)
        }
    };
    let chain: Vec<CertificateDer<'static>> = crate::client::certificates_from_pem(&cert_pem)?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::client::provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private_key(&key_pem)?)
        .context("server certificate and key")?;
    // Both protocols, as Envoy offers them to kubectl.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(ServerTls {
        config: Arc::new(config),
        ca_pem,
        cert_pem,
    }))
}
