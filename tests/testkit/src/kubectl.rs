//! The real kubectl as the client: a fresh HOME and kubeconfig per instance (kubectl's
//! discovery cache would otherwise hide requests), credentials from an exec plugin.

use anyhow::{Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// One kubectl "installation": its own HOME, kubeconfig and credential file.
pub struct Kubectl {
    dir: PathBuf,
    kubeconfig: PathBuf,
    credential: PathBuf,
}

/// What one kubectl run printed.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, for assertions and failure messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

fn fresh_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "kubegate-kubectl-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

impl Kubectl {
    /// kubectl talking to `server` (an https URL), trusting `ca_pem`, with credentials from
    /// an exec plugin that prints whatever `set_token` last stored.
    pub fn with_exec_plugin(server: &str, ca_pem: &str) -> Result<Kubectl> {
        let dir = fresh_dir()?;
        let credential = dir.join("exec-credential.json");
        let user = json!({
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "/bin/sh",
                "args": ["-c", format!("cat '{}'", credential.display())],
                "interactiveMode": "Never",
                "provideClusterInfo": false
            }
        });
        Kubectl::write(dir, credential, server, ca_pem, user)
    }

    /// kubectl that presents a client certificate and no token (an admin kubeconfig pointed
    /// at the gateway): its requests carry no Authorization header.
    pub fn with_client_certificate(
        server: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<Kubectl> {
        use base64::Engine;
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let dir = fresh_dir()?;
        let credential = dir.join("unused");
        let user =
            json!({"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)});
        Kubectl::write(dir, credential, server, ca_pem, user)
    }

    /// kubectl with a static bearer token in the kubeconfig (no exec plugin).
    pub fn with_static_token(server: &str, ca_pem: &str, token: &str) -> Result<Kubectl> {
        let dir = fresh_dir()?;
        let credential = dir.join("unused");
        Kubectl::write(dir, credential, server, ca_pem, json!({"token": token}))
    }

    fn write(
        dir: PathBuf,
        credential: PathBuf,
        server: &str,
        ca_pem: &str,
        user: serde_json::Value,
    ) -> Result<Kubectl> {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
        let kubeconfig = dir.join("kubeconfig");
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "via-kubegate", "cluster": {"server": server, "certificate-authority-data": ca}}],
            "users": [{"name": "session", "user": user}],
            "contexts": [{"name": "via-kubegate", "context": {"cluster": "via-kubegate", "user": "session", "namespace": "default"}}],
            "current-context": "via-kubegate"
        });
        std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&config)?)?;
        Ok(Kubectl {
            dir,
            kubeconfig,
            credential,
        })
    }

    /// The token the exec plugin hands kubectl from now on.
    pub fn set_token(&self, token: &str) -> Result<()> {
        std::fs::write(&self.credential, crate::tokens::exec_credential(token))
            .context("writing the exec credential")
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Runs kubectl with `args`, a fresh HOME and a bounded request timeout.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        // The flag goes first: after `--` (kubectl exec) it would be part of the command.
        let output = Command::new("kubectl")
            .arg("--request-timeout=20s")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .context("running kubectl (is it installed?)")?;
        Ok(Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
