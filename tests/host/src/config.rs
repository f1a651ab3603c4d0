//! The `kubegate-host` configuration file (YAML or JSON), mapped onto
//! [`GatewayConfig`]. Unknown fields are errors. Relative paths are relative
//! to the file. Example:
//!
//! ```yaml
//! listen: 127.0.0.1:8443            # the default; binds loopback only unless changed
//! tls:                              # or `plain: true`, or `cert:` + `key:` files
//!   names: [k8s.example.com]        # extra names for the generated certificate
//! wasm: target/wasm32-wasip1/release/kubegate.wasm
//! plugin:
//!   name: kubegate
//!   configuration: {routes: []}     # inline (JSON/YAML value or string), or configuration_file
//!   vms: 2
//!   log_level: info
//! vm_env:                           # Envoy's vm_config.environment_variables
//!   key_values: {KUBEGATE_SA_TOKEN: "..."}
//!   host_env_keys: [HOME]
//! upstream: {url: "https://127.0.0.1:6443", ca_file: ca.crt}   # or tls_skip_verify: true
//! clusters:
//!   idp: {url: "http://127.0.0.1:9000"}
//! ```

use crate::gateway::GatewayConfig;
use crate::spec::{LogLevel, NodeInfo, PluginSpec, UpstreamSpec};
use crate::tls::TlsMode;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default)]
    tls: TlsFile,
    wasm: PathBuf,
    #[serde(default)]
    plugin: PluginFile,
    #[serde(default)]
    vm_env: EnvFile,
    upstream: UpstreamFile,
    #[serde(default)]
    clusters: BTreeMap<String, UpstreamFile>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    plain: bool,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct PluginFile {
    name: Option<String>,
    #[serde(default)]
    root_id: String,
    #[serde(default)]
    vm_id: String,
    configuration: Option<serde_json::Value>,
    configuration_file: Option<PathBuf>,
    #[serde(default)]
    vm_configuration: String,
    vms: Option<usize>,
    log_level: Option<LogLevel>,
    pause_timeout_ms: Option<u64>,
    trap_status: Option<u16>,
    node_id: Option<String>,
    node_cluster: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct EnvFile {
    #[serde(default)]
    key_values: BTreeMap<String, String>,
    #[serde(default)]
    host_env_keys: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct UpstreamFile {
    url: String,
    #[serde(default)]
    tls_skip_verify: bool,
    ca_file: Option<PathBuf>,
    ca_pem: Option<String>,
    sni: Option<String>,
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

impl UpstreamFile {
    fn into_spec(self, base: &Path) -> anyhow::Result<UpstreamSpec> {
        crate::client::Target::parse(&self.url)?;
        let ca_pem = match (self.ca_pem, self.ca_file) {
            (Some(_), Some(_)) => bail!("give ca_pem or ca_file, not both"),
            (Some(pem), None) => Some(pem),
            (None, Some(file)) => {
                let file = resolve(base, &file);
                Some(
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?,
                )
            }
            (None, None) => None,
        };
        Ok(UpstreamSpec {
            url: self.url,
            tls_skip_verify: self.tls_skip_verify,
            ca_pem,
            sni: self.sni,
        })
    }
}

/// Parses configuration text; `base` anchors relative paths; `host_env` looks
/// up `host_env_keys` (the process environment in the binary).
pub fn parse_config(
    text: &str,
    base: &Path,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<GatewayConfig> {
    let file: FileConfig = serde_yaml::from_str(text).context("parsing the configuration")?;
    let tls = match (file.tls.plain, file.tls.cert, file.tls.key) {
        (true, None, None) => TlsMode::Plain,
        (false, Some(cert), Some(key)) => TlsMode::Files {
            cert: resolve(base, &cert),
            key: resolve(base, &key),
        },
        (false, None, None) => TlsMode::Generate {
            names: file.tls.names,
        },
        _ => bail!("tls: give `plain: true`, or both `cert` and `key`, or neither (generate)"),
    };
    let plugin_file = file.plugin;
    let configuration = match (plugin_file.configuration, plugin_file.configuration_file) {
        (Some(_), Some(_)) => bail!("plugin: give configuration or configuration_file, not both"),
        // A string is passed as is (Envoy's StringValue); anything else as JSON.
        (Some(serde_json::Value::String(text)), None) => text.into_bytes(),
        (Some(value), None) => serde_json::to_vec(&value)?,
        (None, Some(path)) => {
            let path = resolve(base, &path);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => Vec::new(),
    };
    // Like Envoy: key_values as given, host_env_keys copied from the host if set.
    let mut env: Vec<(String, String)> = file.vm_env.key_values.into_iter().collect();
    for key in file.vm_env.host_env_keys {
        if let Some(value) = host_env(&key) {
            env.push((key, value));
        }
    }
    let mut clusters = HashMap::new();
    for (name, cluster) in file.clusters {
        clusters.insert(
            name.clone(),
            cluster
                .into_spec(base)
                .with_context(|| format!("cluster {name}"))?,
        );
    }
    let defaults = PluginSpec::default();
    let node = NodeInfo {
        id: plugin_file
            .node_id
            .unwrap_or_else(|| defaults.node.id.clone()),
        cluster: plugin_file
            .node_cluster
            .unwrap_or_else(|| defaults.node.cluster.clone()),
    };
    let plugin = PluginSpec {
        wasm_path: resolve(base, &file.wasm),
        configuration,
        vm_configuration: plugin_file.vm_configuration.into_bytes(),
        env,
        root_id: plugin_file.root_id,
        vm_id: plugin_file.vm_id,
        name: plugin_file.name.unwrap_or(defaults.name.clone()),
        vms: plugin_file.vms.unwrap_or(2).max(1),
        clusters,
        log_level: plugin_file.log_level.unwrap_or(LogLevel::Info),
        pause_timeout: plugin_file
            .pause_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.pause_timeout),
        trap_status: plugin_file.trap_status.unwrap_or(defaults.trap_status),
        node,
        ..defaults
    };
    let upstream = file.upstream.into_spec(base).context("upstream")?;
    Ok(GatewayConfig {
        listen: file.listen,
        tls,
        plugin,
        upstream,
    })
}

/// Reads and parses a configuration file, with the process environment for `host_env_keys`.
pub fn load_config(path: &Path) -> anyhow::Result<GatewayConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_config(&text, &base, &|key| std::env::var(key).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn minimal_file_binds_loopback_and_generates_a_certificate() {
        let config = parse_config(
            "wasm: f.wasm\nupstream: {url: 'http://127.0.0.1:9'}\n",
            Path::new("/etc/kg"),
            &no_env,
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(config.tls, TlsMode::Generate { names: vec![] });
        assert_eq!(config.plugin.wasm_path, PathBuf::from("/etc/kg/f.wasm"));
        assert_eq!(config.plugin.vms, 2);
    }

    #[test]
    fn full_file_maps_every_section() {
        let text = r#"
listen: 127.0.0.1:9443
tls: {names: [k8s.example.com]}
wasm: /abs/kubegate.wasm
plugin:
  name: kg
  root_id: r
  vm_id: v
  configuration: {routes: [{from: "https://k8s.example.com"}]}
  vms: 3
  log_level: debug
  pause_timeout_ms: 1500
vm_env:
  key_values: {SA_TOKEN: secret}
  host_env_keys: [FROM_HOST, MISSING]
upstream: {url: "https://127.0.0.1:6443", tls_skip_verify: true, sni: kubernetes}
clusters:
  idp: {url: "http://127.0.0.1:9000"}
"#;
        let host_env = |key: &str| (key == "FROM_HOST").then(|| "h".to_string());
        let config = parse_config(text, Path::new("/x"), &host_env).unwrap();
        assert_eq!(
            config.tls,
            TlsMode::Generate {
                names: vec!["k8s.example.com".to_string()]
            }
        );
        assert_eq!(
            config.plugin.configuration,
            br#"{"routes":[{"from":"https://k8s.example.com"}]}"#.to_vec()
        );
        assert_eq!(
            config.plugin.env,
            vec![
                ("SA_TOKEN".to_string(), "secret".to_string()),
                ("FROM_HOST".to_string(), "h".to_string())
            ]
        );
        assert_eq!(config.plugin.vms, 3);
        assert_eq!(config.plugin.log_level, LogLevel::Debug);
        assert_eq!(config.plugin.pause_timeout, Duration::from_millis(1500));
        assert!(config.upstream.tls_skip_verify);
        assert_eq!(config.upstream.sni.as_deref(), Some("kubernetes"));
        assert_eq!(config.plugin.clusters["idp"].url, "http://127.0.0.1:9000");
    }

    #[test]
    fn json_files_and_string_configurations_work() {
        let text = r#"{"wasm": "f.wasm", "tls": {"plain": true}, "plugin": {"configuration": "{\"a\":1}"},
                      "upstream": {"url": "http://127.0.0.1:1"}}"#;
        let config = parse_config(text, Path::new("/"), &no_env).unwrap();
        assert_eq!(config.tls, TlsMode::Plain);
        assert_eq!(config.plugin.configuration, br#"{"a":1}"#.to_vec());
    }

    #[test]
    fn mistakes_are_errors() {
        let typo = "wasm: f.wasm\nupstream: {url: 'http://127.0.0.1:9'}\nlisten_addr: 0.0.0.0:1\n";
        assert!(parse_config(typo, Path::new("/"), &no_env).is_err());
        let half_tls = "wasm: f.wasm\ntls: {cert: c.pem}\nupstream: {url: 'http://127.0.0.1:9'}\n";
        assert!(parse_config(half_tls, Path::new("/"), &no_env).is_err());
        let bad_url = "wasm: f.wasm\nupstream: {url: 'ftp://127.0.0.1:9'}\n";
        assert!(parse_config(bad_url, Path::new("/"), &no_env).is_err());
    }
}
