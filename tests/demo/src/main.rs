//! `kubegate-demo` (what `make run` starts): kubegate.wasm in our proxy-wasm host on
//! https://localhost:8443, in front of the Kubernetes API stand-in (or an API server you
//! name), plus a kubeconfig whose exec credential plugin is `kubegate-dev-credential`.
//! Everything listens on 127.0.0.1 only.

use anyhow::{bail, Context, Result};
use base64::Engine;
use kube_apiserver_standin::{start, RunningApiServer, StandinConfig};
use kubegate_host::{start_gateway, GatewayConfig, PluginSpec, TlsMode, UpstreamSpec};
use serde_json::{json, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const HELP: &str = "\
kubegate-demo: run kubegate.wasm in front of a Kubernetes API and write a kubeconfig for it

USAGE:
    kubegate-demo [OPTIONS]

OPTIONS:
    --wasm FILE             the filter (default target/wasm32-wasip1/release/kubegate.wasm)
    --config FILE           kubegate configuration (default filter-config/dev.json)
    --listen ADDR           where kubegate listens (default 127.0.0.1:8443)
    --out DIR               where the kubeconfig and CA go (default build/demo)
    --upstream URL          a real API server instead of the stand-in; the service-account
                            token comes from KUBEGATE_SA_TOKEN
    --upstream-ca FILE      the CA of --upstream (PEM)
    --upstream-skip-verify  do not verify --upstream's certificate (tls_skip_verify)
    -h, --help              print this help
";

const DEMO_RBAC: &str = include_str!("../../testkit/manifests/demo-rbac.yaml");
/// The user the demo's kubeconfig signs in as, and one the dev policy refuses.
const USER: (&str, &str) = ("someuser@example.com", "developers");
const OUTSIDER: (&str, &str) = ("mallory@evil.example", "developers");

struct Options {
    wasm: PathBuf,
    config: PathBuf,
    listen: SocketAddr,
    out: PathBuf,
    upstream: Option<String>,
    upstream_ca: Option<PathBuf>,
    upstream_skip_verify: bool,
}

fn parse_args() -> Result<Option<Options>> {
    let mut options = Options {
        wasm: PathBuf::from("target/wasm32-wasip1/release/kubegate.wasm"),
        config: PathBuf::from("filter-config/dev.json"),
        listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
        out: PathBuf::from("build/demo"),
        upstream: None,
        upstream_ca: None,
        upstream_skip_verify: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--wasm" => options.wasm = value()?.into(),
            "--config" => options.config = value()?.into(),
            "--listen" => options.listen = value()?.parse().context("--listen")?,
            "--out" => options.out = value()?.into(),
            "--upstream" => options.upstream = Some(value()?),
            "--upstream-ca" => options.upstream_ca = Some(value()?.into()),
            "--upstream-skip-verify" => options.upstream_skip_verify = true,
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(Some(options))
}

#[tokio::main]
async fn main() {
    match parse_args() {
        Ok(None) => print!("{HELP}"),
        Ok(Some(options)) => {
            if let Err(error) = run(options).await {
                eprintln!("kubegate-demo: {error:#}");
                std::process::exit(1);
            }
        }
        Err(error) => {
            eprintln!("kubegate-demo: {error:#}");
            std::process::exit(2);
        }
    }
}

async fn run(options: Options) -> Result<()> {
    let configuration = std::fs::read(&options.config)
        .with_context(|| format!("reading {}", options.config.display()))?;
    let config: Value = serde_json::from_slice(&configuration)
        .with_context(|| format!("{} is not JSON", options.config.display()))?;
    if !options.wasm.exists() {
        bail!("{} is missing: run `make build`", options.wasm.display());
    }

    // The API server: the stand-in with a fresh service-account token, or the one named.
    let (upstream, token, apiserver): (UpstreamSpec, String, Option<RunningApiServer>) =
        match &options.upstream {
            None => {
                let token = random_token()?;
                let apiserver = start(StandinConfig {
                    service_account_token: token.clone(),
                    manifests: vec![DEMO_RBAC.to_string()],
                    ..StandinConfig::default()
                })
                .await
                .context("starting the Kubernetes API stand-in")?;
                let upstream = UpstreamSpec {
                    url: apiserver.url(),
                    ca_pem: Some(apiserver.ca_pem().to_string()),
                    ..UpstreamSpec::default()
                };
                (upstream, token, Some(apiserver))
            }
            Some(url) => {
                let token = std::env::var("KUBEGATE_SA_TOKEN")
                    .context("--upstream needs the service-account token in KUBEGATE_SA_TOKEN")?;
                let ca_pem = match &options.upstream_ca {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    ),
                    None => None,
                };
                let upstream = UpstreamSpec {
                    url: url.clone(),
                    ca_pem,
                    tls_skip_verify: options.upstream_skip_verify,
                    ..UpstreamSpec::default()
                };
                (upstream, token, None)
            }
        };

    // Every token variable the configuration names gets the service-account token, as
    // Envoy's vm_config.environment_variables would.
    let env = token_variables(&config)
        .into_iter()
        .map(|name| (name, token.clone()))
        .collect();
    let gateway = start_gateway(GatewayConfig {
        listen: options.listen,
        tls: TlsMode::Generate { names: Vec::new() },
        plugin: PluginSpec {
            wasm_path: options.wasm.clone(),
            configuration,
            env,
            vms: 2,
            print_logs: true,
            ..PluginSpec::default()
        },
        upstream: upstream.clone(),
    })
    .await
    .context("starting kubegate (the configuration is checked by the filter itself)")?;

    let host = route_host(&config);
    let server = format!("https://{host}:{}", gateway.addr.port());
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let kubeconfig = options.out.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        serde_json::to_vec_pretty(&kubeconfig_for(&server, &gateway.ca_pem)?)?,
    )?;
    std::fs::write(options.out.join("kubegate-ca.pem"), &gateway.ca_pem)?;

    let kubeconfig = kubeconfig.display();
    let target = match &apiserver {
        Some(apiserver) => format!("the Kubernetes API stand-in at {}", apiserver.url()),
        None => upstream.url.clone(),
    };
    println!(
        "\nkubegate is serving {server} ({}, {}) in front of {target}.\n\
         \nTry:\n\
         \x20 export KUBECONFIG={kubeconfig}\n\
         \x20 kubectl get pods                      # {}: allowed by the policy, RBAC lets them read pods\n\
         \x20 kubectl auth whoami                   # who the API server sees\n\
         \x20 kubectl exec nginx-1 -- echo hi       # exec through kubegate (WebSocket)\n\
         \x20 kubectl --context outsider get pods   # {}: refused by kubegate's policy\n\
         \nCtrl-C stops it.",
        options.wasm.display(),
        options.config.display(),
        USER.0,
        OUTSIDER.0,
    );
    if host != "localhost" {
        println!(
            "note: the first route's host is {host:?}; make it resolve to 127.0.0.1 (e.g. in /etc/hosts)"
        );
    }

    tokio::signal::ctrl_c().await?;
    gateway.shutdown().await;
    if let Some(apiserver) = apiserver {
        apiserver.shutdown().await;
    }
    Ok(())
}

/// A fresh service-account token for the stand-in (it is only ever used on 127.0.0.1).
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(format!(
        "demo-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The `kubernetes_service_account_token_env` variables the routes name.
fn token_variables(config: &Value) -> Vec<String> {
    let mut names: Vec<String> = config["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|route| route["kubernetes_service_account_token_env"].as_str())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The host kubectl should connect to: the first route's (a wildcard or no `from` is
/// served as localhost).
fn route_host(config: &Value) -> String {
    let from = config["routes"][0]["from"].as_str().unwrap_or("localhost");
    let host = from
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("localhost");
    if host.is_empty() || host.starts_with('*') {
        "localhost".to_string()
    } else {
        host.to_string()
    }
}

/// Two users on one cluster: the default signs in as someuser@example.com, `outsider` as
/// someone the dev policy refuses. Both get their JWT from kubegate-dev-credential.
fn kubeconfig_for(server: &str, ca_pem: &str) -> Result<Value> {
    let helper = credential_helper()?;
    let exec = |(email, groups): (&str, &str)| {
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": helper.display().to_string(),
            "args": ["--email", email, "--groups", groups],
            "interactiveMode": "Never",
            "provideClusterInfo": false
        }})
    };
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubegate", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [
            {"name": USER.0, "user": exec(USER)},
            {"name": OUTSIDER.0, "user": exec(OUTSIDER)}
        ],
        "contexts": [
            {"name": "kubegate", "context": {"cluster": "kubegate", "user": USER.0, "namespace": "default"}},
            {"name": "outsider", "context": {"cluster": "kubegate", "user": OUTSIDER.0, "namespace": "default"}}
        ],
        "current-context": "kubegate"
    }))
}

/// `kubegate-dev-credential`, built next to this binary.
fn credential_helper() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating kubegate-demo")?;
    let helper = me
        .parent()
        .unwrap_or(Path::new("."))
        .join("kubegate-dev-credential");
    if !helper.exists() {
        bail!(
            "{} is missing: build it with `cargo build -p kubegate-demo --bins`",
            helper.display()
        );
    }
    Ok(helper)
}
