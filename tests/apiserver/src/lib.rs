//! A Kubernetes API server stand-in for kubegate's tests and demo.
//!
//! It authenticates one service-account token, applies impersonation and RBAC the way
//! kube-apiserver does (same refusals, byte for byte), serves discovery, a small object
//! store (namespaces, nodes, pods, secrets, configmaps, services, service accounts, RBAC
//! objects) with Table output, the self reviews behind `kubectl auth whoami` and
//! `kubectl auth can-i`, and `pods/exec` over WebSocket (with a refusable upgrade so
//! kubectl falls back to SPDY). Every request is recorded for assertions.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let server = kube_apiserver_standin::start(kube_apiserver_standin::StandinConfig::default()).await?;
//! println!("{} trusts {}", server.url(), server.ca_pem());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod clock;
pub mod discovery;
pub mod exec;
pub mod identity;
pub mod impersonation;
pub mod manifests;
pub mod proto;
pub mod rbac;
pub mod record;
pub mod requestinfo;
pub mod resources;
pub mod reviews;
pub mod seed;
pub mod selectors;
pub mod server;
pub mod status;
pub mod table;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

pub use identity::UserInfo;
pub use record::RecordedRequest;
pub use seed::Seed;
pub use status::Status;

/// The API server's own bootstrap RBAC policy (cluster-admin, discovery, basic-user,
/// public-info-viewer, and the aggregated view/edit/admin roles).
pub const BOOTSTRAP_POLICY: &str = include_str!("bootstrap-policy.yaml");

/// How to run the stand-in.
#[derive(Clone, Debug)]
pub struct StandinConfig {
    /// The one bearer token that authenticates (as the service account below).
    pub service_account_token: String,
    /// The token's service account: (namespace, name).
    pub service_account: (String, String),
    /// YAML manifests (multi-document) to load: RBAC objects and any served kind.
    pub manifests: Vec<String>,
    /// HTTPS with a certificate made at start (else plain HTTP).
    pub tls: bool,
    /// Accept kubectl's WebSocket exec (else refuse it with 400, so kubectl falls back to
    /// SPDY).
    pub websocket_exec: bool,
    /// The pods to start with.
    pub seed: Seed,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Extra names (DNS or IP) for the serving certificate.
    pub extra_certificate_names: Vec<String>,
}

impl Default for StandinConfig {
    fn default() -> Self {
        StandinConfig {
            service_account_token: "standin-service-account-token".to_string(),
            service_account: ("kubegate-system".to_string(), "kubegate".to_string()),
            manifests: Vec::new(),
            tls: true,
            websocket_exec: true,
            seed: Seed::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_certificate_names: Vec::new(),
        }
    }
}

/// A running stand-in. Dropping it stops the server too.
pub struct RunningApiServer {
    address: SocketAddr,
    tls: bool,
    ca_pem: String,
    cert_pem: String,
    state: Arc<server::State>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningApiServer {
    /// The bound address (127.0.0.1 and the port chosen).
    pub fn addr(&self) -> SocketAddr {
        self.address
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.address
        )
    }

    /// The CA certificate (PEM) that verifies the server; empty without TLS.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The serving certificate (PEM); empty without TLS.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The service account's user, as requests without impersonation act.
    pub fn service_account_user(&self) -> &UserInfo {
        &self.state.service_account
    }

    /// The accepted bearer token.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Every request received so far, in arrival order of completion.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.snapshot()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state.recorder.clear()
    }

    /// Loads more manifests into the running server (RBAC takes effect at once).
    pub fn apply_manifest(&self, yaml: &str) -> anyhow::Result<()> {
        let objects = manifests::parse(yaml).map_err(anyhow::Error::msg)?;
        let mut world = match self.state.world.write() {
            Ok(world) => world,
            Err(poisoned) => poisoned.into_inner(),
        };
        for object in objects {
            world
                .store
                .put_manifest_object(object, clock::now_seconds())
                .map_err(anyhow::Error::msg)?;
        }
        let rbac = authorizer_for(&mut world.store)?;
        world.rbac = rbac;
        Ok(())
    }

    /// Stops accepting and drops every connection.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RunningApiServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The authorizer for the store's RBAC objects; aggregated ClusterRoles get their rules
/// written back, so `kubectl get clusterrole view -o yaml` shows them as on a cluster.
fn authorizer_for(store: &mut resources::ObjectStore) -> anyhow::Result<rbac::Rbac> {
    let rbac = rbac::Rbac::from_objects(store.objects()).map_err(anyhow::Error::msg)?;
    for (name, rules) in rbac.aggregated_rules() {
        store.set_cluster_role_rules(&name, &rules);
    }
    Ok(rbac)
}

/// Starts the stand-in on `config.listen` (a Tokio runtime must be running).
pub async fn start(config: StandinConfig) -> anyhow::Result<RunningApiServer> {
    let started_at = clock::now_seconds();
    let certificate = if config.tls {
        Some(tls::ServingCertificate::generate(
            &config.extra_certificate_names,
        )?)
    } else {
        None
    };
    let ca_pem = certificate
        .as_ref()
        .map(|c| c.ca_pem.clone())
        .unwrap_or_default();

    let mut store = resources::ObjectStore::default();
    let (namespace, name) = (&config.service_account.0, &config.service_account.1);
    seed::populate(
        &mut store,
        &config.seed,
        (namespace, name),
        &ca_pem,
        started_at,
    )
    .map_err(anyhow::Error::msg)?;
    let mut documents = vec![BOOTSTRAP_POLICY.to_string()];
    documents.extend(config.manifests.iter().cloned());
    for (index, document) in documents.iter().enumerate() {
        let objects = manifests::parse(document)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("manifest {index}"))?;
        for object in objects {
            if let Some(namespace) = object
                .pointer("/metadata/namespace")
                .and_then(serde_json::Value::as_str)
            {
                seed::ensure_namespace(&mut store, namespace, started_at, &ca_pem)
                    .map_err(anyhow::Error::msg)?;
            }
            let kind = object.get("kind").cloned();
            let served = store
                .put_manifest_object(object, started_at)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("manifest {index}"))?;
            if !served {
                log::warn!(
                    "manifest {index}: skipping {kind:?}, a kind the stand-in does not serve"
                );
            }
        }
    }
    let rbac = authorizer_for(&mut store)?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    let state = Arc::new(server::State::new(
        config.service_account_token.clone(),
        UserInfo::service_account(namespace, name),
        config.websocket_exec,
        server::server_address(address),
        server::World { store, rbac },
    ));
    let acceptor = match &certificate {
        Some(certificate) => Some(tokio_rustls::TlsAcceptor::from(
            certificate.server_config()?,
        )),
        None => None,
    };
    let task = tokio::spawn(server::serve(listener, acceptor, state.clone()));
    Ok(RunningApiServer {
        address,
        tls: config.tls,
        ca_pem,
        cert_pem: certificate.map(|c| c.cert_pem).unwrap_or_default(),
        state,
        task: Some(task),
    })
}
